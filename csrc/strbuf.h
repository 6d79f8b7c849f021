/* A growable, NUL-terminated byte buffer for building text (file headers,
 * JSON, canonical descriptions). Appending never fails loudly: once memory
 * runs out the buffer sets `oom` and ignores further appends, so a caller
 * checks once at the end. */
#ifndef MOONFLOW_STRBUF_H
#define MOONFLOW_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char *p; /* NULL until the first append; free() it when done */
  size_t n, cap;
  bool oom;
} mfi_strbuf;

void mfi_sb_add(mfi_strbuf *b, const void *s, size_t n);
void mfi_sb_str(mfi_strbuf *b, const char *s);
void mfi_sb_fmt(mfi_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
