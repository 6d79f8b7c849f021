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

/* Removes the temporary files "<prefix>*.tmp.<pid>" (in prefix's directory)
 * that mfi_write_file_atomic left when its process died mid-write. A file
 * is removed only if no live writer can own it: its pid names no process
 * (kill(pid, 0) fails with ESRCH), or names this process and none of this
 * process's atomic writes is in progress (so an earlier process with the
 * same pid wrote it). Files of other live pids (a concurrent writer, or a
 * reused pid: kept until that process ends), of unreaped zombies, and
 * anything but regular files are kept. Returns the number removed, or -1
 * with status if the directory cannot be read. */
int mfi_remove_stale_temps(const char *prefix, mf_status *s);

/* fwrite of all n bytes (n may be 0); false with errno set if not. */
bool mfi_fwrite_all(FILE *f, const void *p, size_t n);

#endif
