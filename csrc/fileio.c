/* Whole-file reading and atomic (temporary file + fsync + rename) writing,
 * declared in fileio.h. */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- this process's writes
 *
 * Temporary files are named "<path>.tmp.<pid>". A file with this process's
 * pid is one of its own writes in progress (another thread) or one left by
 * an earlier process that had the same pid (pids are reused; a restarted
 * container often gets the same one). Writes count themselves in `writing`
 * while their temporary file exists; with none in progress, a file of this
 * pid is an earlier process's. */

static pthread_mutex_t writing_lock = PTHREAD_MUTEX_INITIALIZER;
static long writing;

static void count_write(int d)
{
  pthread_mutex_lock(&writing_lock);
  writing += d;
  pthread_mutex_unlock(&writing_lock);
}

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
  count_write(1); /* before the file exists */
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    count_write(-1);
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
  count_write(-1); /* the file is renamed or removed */
  free(tmp);
  return ok;
}

/* ---------------------------------------------------------------- stale temporary files */

/* The pid of a temporary file's name "<base>...tmp.<pid>", or 0 if the
 * name is not one (or the pid is out of range). */
static long temp_pid(const char *name, const char *base)
{
  size_t blen = strlen(base);
  if (strncmp(name, base, blen) != 0) return 0;
  const char *t = NULL;
  for (const char *p = strstr(name + blen, ".tmp."); p; p = strstr(p + 1, ".tmp.")) t = p;
  if (!t || t[5] == '\0') return 0;
  long pid = 0;
  for (const char *d = t + 5; *d; d++) {
    if (*d < '0' || *d > '9') return 0;
    pid = pid * 10 + (*d - '0');
    if (pid > INT_MAX) return 0;
  }
  return pid;
}

/* Whether a temporary file of pid `pid` at path is stale (no live writer can
 * own it): another pid that names no process (kill(pid, 0) fails with ESRCH;
 * a pid refused with EPERM exists, and an unreaped zombie counts as alive),
 * or this process's pid while none of its writes is in progress. Then it is
 * removed, under the lock for this process's own files, so that a write
 * cannot start in between. Returns whether it was removed. */
static bool remove_if_stale(long pid, const char *path)
{
  if ((pid_t)pid != getpid())
    return !(kill((pid_t)pid, 0) == 0 || errno != ESRCH) && unlink(path) == 0;
  pthread_mutex_lock(&writing_lock);
  bool removed = writing == 0 && unlink(path) == 0;
  pthread_mutex_unlock(&writing_lock);
  return removed;
}

int mfi_remove_stale_temps(const char *prefix, mf_status *s)
{
  const char *slash = strrchr(prefix, '/');
  const char *base = slash ? slash + 1 : prefix;
  char *dir = slash ? strndup(prefix, slash == prefix ? 1 : (size_t)(slash - prefix)) : strdup(".");
  size_t cap = strlen(prefix) + 300;
  char *path = malloc(cap);
  if (!dir || !path) {
    free(dir);
    free(path);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory removing temporary files of '%s'", prefix);
    return -1;
  }
  DIR *d = opendir(dir);
  if (!d) {
    int e = errno;
    mfi_set(s, e == ENOENT ? MF_NOT_FOUND : MF_INVALID_ARGUMENT,
            "cannot remove temporary files of '%s': cannot read directory '%s': %s", prefix, dir,
            strerror(e));
    free(dir);
    free(path);
    return -1;
  }
  int removed = 0;
  for (struct dirent *de; (de = readdir(d));) {
    long pid = temp_pid(de->d_name, base);
    if (pid <= 0) continue;
    snprintf(path, cap, "%s/%s", dir, de->d_name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (remove_if_stale(pid, path)) removed++; /* gone already (another cleaner) is fine */
  }
  closedir(d);
  free(dir);
  free(path);
  return removed;
}
