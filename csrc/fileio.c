/* Whole-file reading and atomic (temporary file + fsync + rename) writing,
 * declared in fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned char *mfi_read_file(const char *path, const char *what, size_t *size, mf_status *s)
{
  *size = 0;
  /* O_NONBLOCK: opening a FIFO for reading would wait for a writer for
   * ever. The descriptor's own fstat then refuses anything but a regular
   * file (no window between a stat and the open), and reads block again. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT)
      mfi_set(s, MF_NOT_FOUND, "%s '%s' not found (%s)", what, path, strerror(e));
    else
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot open %s '%s': %s", what, path, strerror(e));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s '%s' is not a regular file", what, path);
    close(fd);
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  FILE *f = fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0 ? fdopen(fd, "rb") : NULL;
  if (!f) {
    mfi_set(s, MF_INVALID_ARGUMENT, "cannot open %s '%s': %s", what, path, strerror(errno));
    close(fd);
    return NULL;
  }
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      unsigned char *b = realloc(buf, cap * 2);
      if (!b) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = b, cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  if (!buf) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading %s '%s'", what, path);
  } else if (ferror(f)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "cannot read %s '%s': %s", what, path, strerror(errno));
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = n;
  return buf;
}

bool mfi_fwrite_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

/* fsync of the directory holding path, so the rename itself is durable.
 * Best effort: the file is complete and in place either way, and some
 * filesystems refuse to fsync a directory. */
static void sync_dir(const char *path)
{
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

bool mfi_write_file_atomic(const char *path, const char *what, bool (*fill)(FILE *f, void *ctx),
                           void *ctx, mf_status *s)
{
  size_t tlen = strlen(path) + 32;
  char *tmp = malloc(tlen);
  if (!tmp) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving %s '%s'", what, path);
    return false;
  }
  snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    mfi_set(s, e == ENOENT ? MF_NOT_FOUND : MF_INVALID_ARGUMENT,
            "cannot save %s '%s': cannot create '%s': %s", what, path, tmp, strerror(e));
    free(tmp);
    return false;
  }
  bool ok = fill(f, ctx);
  if (ok) ok = fflush(f) == 0;
  if (ok) ok = fsync(fileno(f)) == 0;
  int e = errno;
  if (fclose(f) != 0 && ok) ok = false, e = errno;
  if (ok && rename(tmp, path) != 0) ok = false, e = errno;
  if (!ok) {
    mfi_set(s, MF_INVALID_ARGUMENT, "cannot save %s '%s': writing '%s' failed: %s", what, path, tmp,
            strerror(e));
    unlink(tmp);
  } else {
    sync_dir(path);
  }
  free(tmp);
  return ok;
}
