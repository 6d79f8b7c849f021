/* The caching allocator's stream rule, on a device of this test's own with
 * streams (as a GPU has one per session): a block freed during a run on
 * stream A is reused at once by later work on A, while a caller on another
 * stream (or outside any run) first waits for A; a retired stream is
 * forgotten. Also the size classes and statistics. */
#include "../../csrc/internal.h"
#include "check.h"

static int syncs[3]; /* synchronize calls per stream token */
static char tokens[3];

static void *fake_alloc(mfi_device *d, size_t n)
{
  (void)d;
  return malloc(n);
}

static void fake_free(mfi_device *d, void *p, size_t n)
{
  (void)d, (void)n;
  free(p);
}

static bool fake_copy(mfi_device *d, void *dst, const void *src, size_t n, mfi_copy_dir dir,
                      void *stream, mf_status *s)
{
  (void)d, (void)dir, (void)stream, (void)s;
  memcpy(dst, src, n);
  return true;
}

static bool fake_fill(mfi_device *d, void *dst, int byte, size_t n, void *stream, mf_status *s)
{
  (void)d, (void)stream, (void)s;
  memset(dst, byte, n);
  return true;
}

static bool fake_sync(mfi_device *d, void *stream, mf_status *s)
{
  (void)d, (void)s;
  if (stream) syncs[(char *)stream - tokens]++;
  return true;
}

static mfi_device fake = {.type = MFI_DEVICE_TEST,
                          .name = "fake",
                          .ops = {fake_alloc, fake_free, fake_copy, fake_fill, fake_sync},
                          .lock = PTHREAD_MUTEX_INITIALIZER};

int main(void)
{
  /* Streams of a run are indexed by device id; the fake device takes a free one. */
  fake.id = MFI_MAX_DEVICES - 1;
  void *run_a[MFI_MAX_DEVICES] = {0}, *run_b[MFI_MAX_DEVICES] = {0};
  run_a[fake.id] = &tokens[1], run_b[fake.id] = &tokens[2];

  mfi_set_run_streams(run_a);
  CHECK(mfi_run_stream(&fake) == &tokens[1]);
  void *p = mfi_device_alloc(&fake, 1000);
  CHECK(p != NULL);
  CHECK(fake.stats.bytes_in_use == 1024); /* rounded up to its size class */
  mfi_device_free(&fake, p, 1000);
#ifndef __SANITIZE_ADDRESS__ /* ASan builds cache nothing */
  CHECK(fake.stats.bytes_cached == 1024 && fake.stats.bytes_in_use == 0);
  /* The same stream takes it back without waiting. */
  void *q = mfi_device_alloc(&fake, 900);
  CHECK(q == p && syncs[1] == 0);
  mfi_device_free(&fake, q, 900);
  /* Another stream waits for A first. */
  mfi_set_run_streams(run_b);
  q = mfi_device_alloc(&fake, 1024);
  CHECK(q == p && syncs[1] == 1 && syncs[2] == 0);
  mfi_device_free(&fake, q, 1024); /* now remembered with B */
  /* Outside runs: waits for B. */
  mfi_set_run_streams(NULL);
  q = mfi_device_alloc(&fake, 1024);
  CHECK(q == p && syncs[2] == 1);
  /* Freed outside a run: anyone takes it at once. */
  mfi_device_free(&fake, q, 1024);
  mfi_set_run_streams(run_a);
  q = mfi_device_alloc(&fake, 1024);
  CHECK(q == p && syncs[1] == 1 && syncs[2] == 1);
  /* A block of stream A is preferred over an older one of stream B by A. */
  mfi_set_run_streams(run_b);
  void *r = mfi_device_alloc(&fake, 1024);
  mfi_device_free(&fake, r, 1024); /* B's */
  mfi_set_run_streams(run_a);
  mfi_device_free(&fake, q, 1024); /* A's, newest */
  mfi_set_run_streams(run_b);
  void *x = mfi_device_alloc(&fake, 1024); /* B finds its own without waiting */
  CHECK(x == r && syncs[1] == 1 && syncs[2] == 1);
  mfi_device_free(&fake, x, 1024);
  /* Retiring A: its blocks become anyone's. */
  mfi_device_forget_stream(&fake, &tokens[1]);
  mfi_set_run_streams(NULL);
  void *y = mfi_device_alloc(&fake, 1024), *z = mfi_device_alloc(&fake, 1024);
  CHECK(((y == q && z == r) || (y == r && z == q)) && syncs[1] == 1);
  mfi_device_free(&fake, y, 1024);
  mfi_device_free(&fake, z, 1024);
#else
  (void)run_b;
#endif
  mfi_set_run_streams(NULL);
  mfi_device_trim(&fake);
  CHECK(fake.stats.bytes_cached == 0 && fake.stats.bytes_in_use == 0);
  return check_report("test_alloc");
}
