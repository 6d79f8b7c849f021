/* Event files for TensorBoard (mf_summary_writer): TFRecord-framed Event
 * protocol buffers in "<logdir>/events.out.tfevents.<secs>.<hostname>".
 *
 * Records are queued in memory and appended by flush: each write goes to the
 * end of the file (O_APPEND) and is followed by fdatasync, so a crash loses
 * at most the records not yet flushed (and perhaps leaves the last record
 * cut short, which readers skip); a failed write is cut off again
 * (ftruncate to the last whole record), so earlier records are never
 * followed by garbage that later ones would sit behind. */
/* protoc-c's initializer macros cast its const empty string to char *. */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32.h"
#include "json.h"
#include "proto/event.pb-c.h"
#include "strbuf.h"
#include "summary.h"

/* Queued events beyond this many, or older than this many seconds, are
 * flushed by the next add (TF's FileWriter: max_queue 10, flush_secs 120). */
#define MAX_QUEUE 10
#define FLUSH_SECS 120.0

struct mf_summary_writer {
  pthread_mutex_t lock;
  int fd; /* -1 once closed */
  char *path;
  off_t good;  /* bytes of whole records on disk */
  bool broken; /* a torn record could not be cut off: no more writes */
  mfi_strbuf queue;
  int queued;
  double first_queued; /* wall time of the oldest queued event */
};

static double wall_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void le64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes what is queued; the caller holds the lock. */
static bool flush_locked(mf_summary_writer *w, const char *what, mf_status *s)
{
  if (w->broken) {
    mfi_set(s, MF_INTERNAL, "%s: event file '%s' could not be repaired after a failed write", what,
            w->path);
    w->queue.n = 0, w->queued = 0;
    return false;
  }
  if (w->queue.oom) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory queueing events for '%s'", what, w->path);
    w->queue.n = 0, w->queue.oom = false, w->queued = 0;
    return false;
  }
  size_t done = 0;
  while (done < w->queue.n) {
    ssize_t r = write(w->fd, w->queue.p + done, w->queue.n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int e = r < 0 ? errno : EIO;
      /* Cut the torn record off; when even that fails, later records
       * would sit behind it: the writer stops. */
      if (ftruncate(w->fd, w->good) != 0) w->broken = true;
      mfi_set(s, MF_INTERNAL, "%s: cannot write event file '%s': %s", what, w->path, strerror(e));
      w->queue.n = 0, w->queued = 0;
      return false;
    }
    done += (size_t)r;
  }
  /* The records are whole in the file now, synced or not. */
  w->good += (off_t)w->queue.n;
  size_t n = w->queue.n;
  w->queue.n = 0, w->queued = 0;
  if (n && fdatasync(w->fd) != 0) {
    mfi_set(s, MF_INTERNAL, "%s: cannot sync event file '%s': %s", what, w->path, strerror(errno));
    return false;
  }
  return true;
}

/* Queues one serialized Event as a TFRecord. */
static bool add_record(mf_summary_writer *w, const char *what, const uint8_t *data, size_t n,
                       mf_status *s)
{
  uint8_t head[12], tail[4];
  le64(head, (uint64_t)n);
  le32(head + 8, mfi_crc32c_masked(head, 8));
  le32(tail, mfi_crc32c_masked(data, n));
  pthread_mutex_lock(&w->lock);
  bool ok = true;
  if (w->fd < 0) {
    mfi_set(s, MF_FAILED_PRECONDITION, "%s: the summary writer for '%s' is closed", what, w->path);
    ok = false;
  } else {
    double now = wall_now();
    if (!w->queued) w->first_queued = now;
    mfi_sb_add(&w->queue, head, sizeof head);
    mfi_sb_add(&w->queue, data, n);
    mfi_sb_add(&w->queue, tail, sizeof tail);
    w->queued++;
    if (w->queued >= MAX_QUEUE || now - w->first_queued >= FLUSH_SECS)
      ok = flush_locked(w, what, s);
  }
  pthread_mutex_unlock(&w->lock);
  return ok;
}

/* Packs ev (wall time now) and queues it. */
static bool add_event(mf_summary_writer *w, const char *what, Tensorflow__Event *ev, mf_status *s)
{
  ev->wall_time = wall_now();
  size_t len = tensorflow__event__get_packed_size(ev);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory for a %zu-byte event", what, len);
    return false;
  }
  tensorflow__event__pack(ev, buf);
  bool ok = add_record(w, what, buf, len, s);
  free(buf);
  return ok;
}

static bool check_writer(const mf_summary_writer *w, const char *what, mf_status *s)
{
  if (!s) return false;
  mfi_clear(s);
  if (!w) mfi_set(s, MF_INVALID_ARGUMENT, "%s: writer must not be NULL", what);
  return w != NULL;
}

/* mkdir -p; false with errno set. */
static bool make_dirs(const char *dir)
{
  char *p = strdup(dir);
  if (!p) return false;
  for (char *q = p + 1;; q++) {
    if (*q != '/' && *q) continue;
    char c = *q;
    *q = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      int e = errno;
      free(p);
      errno = e;
      return false;
    }
    *q = c;
    if (!c) break;
  }
  free(p);
  struct stat st;
  if (stat(dir, &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return false;
  }
  return true;
}

mf_summary_writer *mf_summary_writer_new(const char *logdir, mf_status *s)
{
  static const char what[] = "mf_summary_writer_new";
  if (!s) return NULL;
  mfi_clear(s);
  if (!logdir || !*logdir) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: logdir must be a directory name, got %s", what,
            logdir ? "\"\"" : "NULL");
    return NULL;
  }
  if (!make_dirs(logdir)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: cannot create logdir '%s': %s", what, logdir,
            strerror(errno));
    return NULL;
  }
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
  host[sizeof host - 1] = 0;
  mf_summary_writer *w = calloc(1, sizeof *w);
  if (!w) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    return NULL;
  }
  double now = wall_now();
  /* TF's name; another writer's file of the same second gets a suffix. */
  mfi_strbuf name = {0};
  w->fd = -1;
  for (int k = 0; k < 1000 && w->fd < 0; k++) {
    name.n = 0;
    mfi_sb_fmt(&name, "%s/events.out.tfevents.%010lld.%s", logdir, (long long)now, host);
    if (k) mfi_sb_fmt(&name, ".%ld.%d", (long)getpid(), k);
    if (name.oom) break;
    w->fd = open(name.p, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0666);
    if (w->fd < 0 && errno != EEXIST) break;
  }
  if (w->fd < 0) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: cannot create an event file in '%s': %s", what, logdir,
            name.oom ? "out of memory" : strerror(errno));
    free(name.p), free(w);
    return NULL;
  }
  w->path = name.p;
  pthread_mutex_init(&w->lock, NULL);
  Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
  ev.what_case = TENSORFLOW__EVENT__WHAT_FILE_VERSION;
  ev.file_version = (char *)(uintptr_t) "brain.Event:2";
  bool ok = add_event(w, what, &ev, s);
  if (ok) {
    pthread_mutex_lock(&w->lock);
    ok = flush_locked(w, what, s);
    pthread_mutex_unlock(&w->lock);
  }
  if (!ok) {
    mf_summary_writer_delete(w);
    return NULL;
  }
  return w;
}

const char *mf_summary_writer_path(const mf_summary_writer *w) { return w ? w->path : NULL; }

/* Queues a serialized Summary, which must parse, as the Event at step. */
static void add_summary_bytes(mf_summary_writer *w, const char *what, const void *bytes, size_t n,
                              int64_t step, mf_status *s)
{
  Tensorflow__Summary *sum = tensorflow__summary__unpack(NULL, n, bytes);
  if (!sum) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: summary (%zu bytes) is not a serialized Summary", what, n);
    return;
  }
  mfi_proto_strip_unknown(&sum->base);
  Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
  ev.step = step;
  ev.what_case = TENSORFLOW__EVENT__WHAT_SUMMARY;
  ev.summary = sum;
  add_event(w, what, &ev, s);
  tensorflow__summary__free_unpacked(sum, NULL);
}

/* Queues encoded (from one of the mfi_summary_ encoders; NULL: failed). */
static void add_encoded(mf_summary_writer *w, const char *what, uint8_t *enc, size_t n,
                        int64_t step, mf_status *s)
{
  if (!enc) return;
  add_summary_bytes(w, what, enc, n, step, s);
  free(enc);
}

void mf_summary_writer_add_scalar(mf_summary_writer *w, const char *tag, double value, int64_t step,
                                  mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_scalar";
  if (!check_writer(w, what, s)) return;
  size_t n = 0;
  uint8_t *enc = mfi_summary_scalar(what, tag, value, &n, s);
  add_encoded(w, what, enc, n, step, s);
}

void mf_summary_writer_add_histogram(mf_summary_writer *w, const char *tag, const double *values,
                                     int64_t n_values, int64_t step, mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_histogram";
  if (!check_writer(w, what, s)) return;
  size_t n = 0;
  uint8_t *enc = mfi_summary_histogram(what, tag, values, n_values, &n, s);
  add_encoded(w, what, enc, n, step, s);
}

void mf_summary_writer_add_text(mf_summary_writer *w, const char *tag, const char *text,
                                int64_t step, mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_text";
  if (!check_writer(w, what, s)) return;
  if (!text) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: text must be a string, got NULL", what);
    return;
  }
  size_t n = 0;
  uint8_t *enc = mfi_summary_text(what, tag, text, strlen(text), &n, s);
  add_encoded(w, what, enc, n, step, s);
}

void mf_summary_writer_add_image(mf_summary_writer *w, const char *tag, const uint8_t *pixels,
                                 int height, int width, int channels, int64_t step, mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_image";
  if (!check_writer(w, what, s)) return;
  size_t n = 0;
  uint8_t *enc = mfi_summary_image(what, tag, pixels, height, width, channels, &n, s);
  add_encoded(w, what, enc, n, step, s);
}

void mf_summary_writer_add_summary(mf_summary_writer *w, const void *bytes, size_t n, int64_t step,
                                   mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_summary";
  if (!check_writer(w, what, s)) return;
  if (!bytes && n) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: bytes must hold %zu bytes, got NULL", what, n);
    return;
  }
  add_summary_bytes(w, what, bytes, n, step, s);
}

void mf_summary_writer_add_event_bytes(mf_summary_writer *w, const void *bytes, size_t n,
                                       mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_event_bytes";
  if (!check_writer(w, what, s)) return;
  if (!bytes && n) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: bytes must hold %zu bytes, got NULL", what, n);
    return;
  }
  size_t len = 0;
  uint8_t *ev = mfi_event_reencode(bytes, n, &len);
  if (!ev) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: event (%zu bytes) is not a serialized Event", what, n);
    return;
  }
  add_record(w, what, ev, len, s);
  free(ev);
}

void mf_summary_writer_add_graph(mf_summary_writer *w, mf_graph *g, int64_t step, mf_status *s)
{
  static const char what[] = "mf_summary_writer_add_graph";
  if (!check_writer(w, what, s)) return;
  size_t n = 0;
  uint8_t *gd = mfi_graph_def(what, g, &n, s);
  if (!gd) return;
  Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
  ev.step = step;
  ev.what_case = TENSORFLOW__EVENT__WHAT_GRAPH_DEF;
  ev.graph_def.data = gd, ev.graph_def.len = n;
  add_event(w, what, &ev, s);
  free(gd);
}

void mf_summary_writer_flush(mf_summary_writer *w, mf_status *s)
{
  static const char what[] = "mf_summary_writer_flush";
  if (!check_writer(w, what, s)) return;
  pthread_mutex_lock(&w->lock);
  if (w->fd < 0)
    mfi_set(s, MF_FAILED_PRECONDITION, "%s: the summary writer for '%s' is closed", what, w->path);
  else
    flush_locked(w, what, s);
  pthread_mutex_unlock(&w->lock);
}

void mf_summary_writer_close(mf_summary_writer *w, mf_status *s)
{
  static const char what[] = "mf_summary_writer_close";
  if (!check_writer(w, what, s)) return;
  pthread_mutex_lock(&w->lock);
  if (w->fd >= 0) {
    flush_locked(w, what, s);
    if (close(w->fd) != 0 && mfi_ok(s))
      mfi_set(s, MF_INTERNAL, "%s: cannot close event file '%s': %s", what, w->path,
              strerror(errno));
    w->fd = -1;
  }
  pthread_mutex_unlock(&w->lock);
}

void mf_summary_writer_delete(mf_summary_writer *w)
{
  if (!w) return;
  if (w->fd >= 0) {
    mf_status st;
    mfi_clear(&st);
    mf_summary_writer_close(w, &st);
  }
  pthread_mutex_destroy(&w->lock);
  free(w->queue.p);
  free(w->path);
  free(w);
}

int64_t mf_summary_metadata(const char *plugin_name, void *buf, size_t size, mf_status *s)
{
  static const char what[] = "mf_summary_metadata";
  if (!s) return -1;
  mfi_clear(s);
  if (!plugin_name) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: plugin_name must be a string, got NULL", what);
    return -1;
  }
  if (!mfi_utf8_valid(plugin_name, strlen(plugin_name))) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: plugin_name must be UTF-8 text", what);
    return -1;
  }
  if (!buf && size) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: buf must hold %zu bytes, got NULL", what, size);
    return -1;
  }
  size_t n;
  uint8_t *md = mfi_summary_plugin_metadata(plugin_name, &n);
  if (!md) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    return -1;
  }
  if (n <= size) memcpy(buf, md, n);
  free(md);
  return (int64_t)n;
}
