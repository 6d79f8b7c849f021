/* A growable byte buffer for building text (declared in strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the terminating NUL; false (and oom) if not. */
static bool reserve(mfi_strbuf *b, size_t n)
{
  if (b->oom) return false;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return false;
    }
    b->p = p, b->cap = cap;
  }
  return true;
}

void mfi_sb_add(mfi_strbuf *b, const void *s, size_t n)
{
  if (!reserve(b, n)) return;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

void mfi_sb_str(mfi_strbuf *b, const char *s) { mfi_sb_add(b, s, strlen(s)); }

void mfi_sb_fmt(mfi_strbuf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0 || !reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}
