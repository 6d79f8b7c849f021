/* Status objects: how every failure reaches the caller. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mf_version(void) { return MF_VERSION_STRING; }

mf_status *mf_status_new(void)
{
  mf_status *s = calloc(1, sizeof *s);
  return s;
}

void mf_status_delete(mf_status *s) { free(s); }
/* A NULL status reads as a failure that says so, never as success. */
mf_code mf_status_code(const mf_status *s) { return s ? s->code : MF_INVALID_ARGUMENT; }
const char *mf_status_message(const mf_status *s)
{
  return s ? s->msg : "mf_status_message: status is NULL";
}

void mf_status_set(mf_status *s, mf_code code, const char *message)
{
  if (!s) return;
  s->code = code;
  snprintf(s->msg, sizeof s->msg, "%s", code == MF_OK || !message ? "" : message);
}

void mfi_set(mf_status *s, mf_code code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  s->code = code;
  vsnprintf(s->msg, sizeof s->msg, fmt, ap);
  va_end(ap);
}
