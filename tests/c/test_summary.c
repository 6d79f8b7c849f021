/* Event files for TensorBoard: CRC-32C, TF's histogram buckets, the summary
 * writer's records read back frame by frame, a torn tail, and the errors. */
#include "../../csrc/crc32.h"
#include "../../csrc/json.h"
#include "../../csrc/summary.h"
#include "check.h"

#include <dirent.h>
#include <pthread.h>
#include <float.h>
#include <unistd.h>

typedef struct {
  mfi_event_info ev[32];
  int n;
} events;

static bool collect(void *ctx, const uint8_t *rec, size_t len)
{
  events *e = ctx;
  if (e->n < 32) CHECK(mfi_event_info_parse(rec, len, &e->ev[e->n++]));
  return true;
}

static uint8_t *slurp(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
  *n = fread(p, 1, (size_t)len, f);
  fclose(f);
  return p;
}

static void test_crc32c(void)
{
  /* the standard check value, and TFRecord's mask of it */
  CHECK(mfi_crc32c(0, "123456789", 9) == 0xE3069283u);
  uint32_t c = 0xE3069283u;
  CHECK(mfi_crc32c_masked("123456789", 9) == ((c >> 15) | (c << 17)) + 0xa282ead8u);
  CHECK(mfi_crc32c(mfi_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u);
}

static void test_buckets(void)
{
  int n;
  const double *lim = mfi_histogram_default_limits(&n);
  CHECK(n % 2 == 1 && lim[n / 2] == 0.0);
  CHECK(lim[0] == -DBL_MAX && lim[n - 1] == DBL_MAX);
  CHECK(lim[n / 2 + 1] == 1e-12 && lim[n / 2 - 1] == -1e-12);
  CHECK(lim[n - 2] < 1e20 && lim[n - 2] * 1.1 >= 1e20);
  for (int i = 1; i < n; i++) CHECK(lim[i] > lim[i - 1]);
  /* 774 positive edges below 1e20, as TF's (float64) loop makes them */
  CHECK(n == 2 * 775 + 1);
}

static void test_writer(mf_status *s)
{
  char dir[] = "/tmp/mf_summary_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char logdir[64];
  snprintf(logdir, sizeof logdir, "%s/run/a", dir); /* created, parents too */
  mf_summary_writer *w = mf_summary_writer_new(logdir, s);
  CHECK_OK(s);
  CHECK(w != NULL);
  const char *path = mf_summary_writer_path(w);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  CHECK(strstr(path, "/events.out.tfevents.") != NULL);
  CHECK(strstr(path, host) != NULL);

  mf_summary_writer_add_scalar(w, "loss", 0.25, 7, s);
  CHECK_OK(s);
  double vals[] = {0, 1, 1, -2, 3.5};
  mf_summary_writer_add_histogram(w, "weights", vals, 5, 7, s);
  CHECK_OK(s);
  mf_summary_writer_add_text(w, "sample", "hello, world", 8, s);
  CHECK_OK(s);
  uint8_t px[2 * 3 * 3];
  for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 13);
  mf_summary_writer_add_image(w, "img", px, 2, 3, 3, 9, s);
  CHECK_OK(s);
  /* a serialized Summary, as a summary op produces */
  size_t n = 0;
  uint8_t *enc = mfi_summary_scalar("test", "acc", 0.5, &n, s);
  CHECK_OK(s);
  mf_summary_writer_add_summary(w, enc, n, 10, s);
  CHECK_OK(s);
  free(enc);
  /* a graph */
  mf_graph *g = mf_graph_new();
  mf_output x = placeholder(g, "scope/x", MF_FLOAT32, 1, (int64_t[]){3}, HERE, s);
  mf_output c = const_f32(g, "scope/c", 1, (int64_t[]){3}, (float[]){1, 2, 3}, s);
  mf_output y = binary(g, "Add", "scope/y", x, c, s);
  CHECK_OK(s);
  CHECK(y.op != NULL);
  mf_summary_writer_add_graph(w, g, 0, s);
  CHECK_OK(s);
  mf_graph_delete(g);

  /* errors name the function and parameter; nothing is written */
  mf_summary_writer_add_histogram(w, "bad", (double[]){1, NAN}, 2, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "NaN in summary histogram for: bad");
  mf_summary_writer_add_image(w, "bad", px, 2, 3, 5, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_image: channels");
  mf_summary_writer_add_summary(w, "\xff\xff\xff", 3, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_summary: summary");
  mf_summary_writer_add_event_bytes(w, "\x0a", 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_event_bytes: event");
  mf_summary_writer_add_scalar(w, "\xff", 1, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_scalar: tag must be UTF-8");
  mf_summary_writer_add_text(w, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\xff bytes are fine",
                             1, s);
  CHECK_OK(s);
  CHECK(!mfi_utf8_valid("\xc0\x80", strlen("\xc0\x80")) &&
        !mfi_utf8_valid("\xed\xa0\x80", strlen("\xed\xa0\x80")) &&
        !mfi_utf8_valid("\xe2\x82", strlen("\xe2\x82")));
  CHECK(!mfi_utf8_valid("\xf4\x90\x80\x80", strlen("\xf4\x90\x80\x80")) &&
        mfi_utf8_valid("\xf4\x8f\xbf\xbf", strlen("\xf4\x8f\xbf\xbf")));
  mf_summary_writer_add_scalar(w, NULL, 1, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_scalar: tag");

  /* flushed records are on disk before close */
  mf_summary_writer_flush(w, s);
  CHECK_OK(s);
  size_t len = 0;
  uint8_t *data = slurp(path, &len);
  events e = {0};
  CHECK(mfi_tfrecord_walk("test", data, len, false, collect, &e, s) == 8);
  CHECK_OK(s);
  CHECK(e.n == 8);
  CHECK(e.ev[7].value_kind == 't' &&
        strcmp(e.ev[7].tag, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == 0);
  CHECK(e.ev[0].kind == 'v' && e.ev[0].wall_time > 1.5e9);
  CHECK(e.ev[1].kind == 's' && e.ev[1].step == 7 && strcmp(e.ev[1].tag, "loss") == 0 &&
        e.ev[1].value_kind == 'f' && e.ev[1].value == 0.25);
  CHECK(e.ev[2].value_kind == 'h' && e.ev[2].value == 5 && strcmp(e.ev[2].tag, "weights") == 0);
  CHECK(e.ev[3].value_kind == 't' && e.ev[3].value == 12 && e.ev[3].step == 8);
  CHECK(e.ev[4].value_kind == 'i' && e.ev[4].value == 6);
  CHECK(e.ev[5].value_kind == 'f' && e.ev[5].step == 10 && strcmp(e.ev[5].tag, "acc") == 0);
  CHECK(e.ev[6].kind == 'g' && e.ev[6].graph_nodes == 3);

  /* a whole Event passes through as it is */
  mf_summary_writer_add_event_bytes(w, data + 12, (size_t)(data[0]), s);
  CHECK_OK(s);
  free(data);
  mf_summary_writer_close(w, s);
  CHECK_OK(s);
  mf_summary_writer_close(w, s); /* again: nothing */
  CHECK_OK(s);
  mf_summary_writer_add_scalar(w, "late", 1, 1, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "mf_summary_writer_add_scalar: the summary writer");
  mf_summary_writer_flush(w, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed");
  mf_status_set(s, MF_OK, "");
  data = slurp(path, &len);
  e.n = 0;
  CHECK(mfi_tfrecord_walk("test", data, len, false, collect, &e, s) == 9);
  CHECK(e.ev[8].kind == 'v');

  /* a torn last record (a crash mid-write) leaves the others readable */
  CHECK(mfi_tfrecord_walk("test", data, len - 3, true, NULL, NULL, s) == 8);
  CHECK_OK(s);
  CHECK(mfi_tfrecord_walk("test", data, len - 3, false, NULL, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "cut short");
  mf_status_set(s, MF_OK, "");
  /* a flipped bit is a CRC error */
  data[20] ^= 1;
  CHECK(mfi_tfrecord_walk("test", data, len, true, NULL, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "data CRC mismatch");
  mf_status_set(s, MF_OK, "");
  free(data);
  mf_summary_writer_delete(w);

  /* a second writer in the same second gets its own file */
  mf_summary_writer *w1 = mf_summary_writer_new(logdir, s);
  mf_summary_writer *w2 = mf_summary_writer_new(logdir, s);
  CHECK_OK(s);
  CHECK(w1 && w2 && strcmp(mf_summary_writer_path(w1), mf_summary_writer_path(w2)) != 0);
  mf_summary_writer_delete(w1);
  mf_summary_writer_delete(w2);

  /* a logdir that is a file */
  char file[80];
  snprintf(file, sizeof file, "%s/plain", dir);
  FILE *f = fopen(file, "w");
  fclose(f);
  CHECK(mf_summary_writer_new(file, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_new: cannot create logdir");
  mf_status_set(s, MF_OK, "");
  CHECK(remove_tree(dir));
}

static void test_merge(mf_status *s)
{
  size_t na, nb, nm;
  uint8_t *a = mfi_summary_scalar("t", "a", 1, &na, s);
  uint8_t *b = mfi_summary_text("t", "b", "x", 1, &nb, s);
  const void *parts[] = {a, b};
  size_t lens[] = {na, nb};
  uint8_t *m = mfi_summary_merge("MergeSummary", 2, parts, lens, &nm, s);
  CHECK_OK(s);
  CHECK(m && nm == na + nb && mfi_summary_check("t", m, nm, s));
  free(m);
  const void *dup[] = {a, a};
  size_t duplens[] = {na, na};
  CHECK(mfi_summary_merge("MergeSummary", 2, dup, duplens, &nm, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "MergeSummary: duplicate tag a");
  mf_status_set(s, MF_OK, "");
  const void *bad[] = {a, "\xff"};
  size_t badlens[] = {na, 1};
  CHECK(mfi_summary_merge("MergeSummary", 2, bad, badlens, &nm, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "MergeSummary: input 2");
  free(a), free(b);
}

static void *add_many(void *arg)
{
  mf_summary_writer *w = arg;
  mf_status *s = mf_status_new();
  for (int i = 0; i < 50; i++) {
    mf_summary_writer_add_scalar(w, "t", i, i, s);
    CHECK_OK(s);
    if (i % 7 == 0) mf_summary_writer_flush(w, s);
  }
  mf_status_delete(s);
  return NULL;
}

/* One writer, four threads: every event lands whole. */
static void test_threads(mf_status *s)
{
  char dir[] = "/tmp/mf_summary_thr_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  mf_summary_writer *w = mf_summary_writer_new(dir, s);
  CHECK_OK(s);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, add_many, w);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  mf_summary_writer_close(w, s);
  CHECK_OK(s);
  size_t len = 0;
  uint8_t *data = slurp(mf_summary_writer_path(w), &len);
  CHECK(mfi_tfrecord_walk("test", data, len, false, NULL, NULL, s) == 1 + 4 * 50);
  CHECK_OK(s);
  free(data);
  mf_summary_writer_delete(w);
  CHECK(remove_tree(dir));
}

int main(void)
{
  mf_status *s = mf_status_new();
  test_crc32c();
  test_buckets();
  test_writer(s);
  test_merge(s);
  test_threads(s);
  mf_status_delete(s);
  return check_report("test_summary");
}
