/* Whole-file reading and all-or-nothing file writing. Errors name the file
 * as "<what> '<path>'" (what: "checkpoint", "event file", ...). */
#ifndef MOONFLOW_FILEIO_H
#define MOONFLOW_FILEIO_H

#include <stdio.h>

#include "internal.h"

/* The contents of the regular file at path (malloc'ed; *size bytes), or
 * NULL with status. */
unsigned char *mfi_read_file(const char *path, const char *what, size_t *size, mf_status *s);

/* Writes the file at path atomically: fill(f, ctx) writes the contents to a
 * temporary file beside it (returning false with errno set on failure),
 * which is flushed, fsynced and renamed over path, and the directory is
 * fsynced; on any failure the temporary file is removed and path is left
 * as it was. False with status on error. */
bool mfi_write_file_atomic(const char *path, const char *what, bool (*fill)(FILE *f, void *ctx),
                           void *ctx, mf_status *s);

/* fwrite of all n bytes (n may be 0); false with errno set if not. */
bool mfi_fwrite_all(FILE *f, const void *p, size_t n);

#endif
