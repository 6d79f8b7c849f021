/* The caching allocator, one per device, over the device's raw memory.
 *
 * Blocks are rounded up to a power of two (at least 64 bytes). A freed
 * block goes onto its class's list instead of back to the device, so a
 * training loop that allocates the same sizes every step reuses the same
 * memory and its footprint stays flat (no cudaMalloc in a steady loop on a
 * GPU). The lists live beside the blocks, never inside them, so the same
 * code serves memory the host cannot touch. Blocks above 1 GiB are not
 * cached; mfi_device_trim gives the cached ones back.
 *
 * On devices with streams (GPUs: one per session) a block freed during a
 * run may still be read by that run's queued work. It is cached with the
 * run's stream: work on the same stream is ordered after the free, so a
 * run on that stream takes it back at once; any other caller first waits
 * for that stream. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MIN_CLASS 6 /* 64 bytes */
#define MAX_CLASS (MFI_CACHE_CLASSES - 1)

#ifdef __SANITIZE_ADDRESS__
/* Under AddressSanitizer every block goes back to the device, so a use
 * after free or a leak is caught instead of hidden by the cache. */
#define CACHING 0
#else
#define CACHING 1
#endif

#define POISON 0xFF /* float NaN, integer -1 */

static int size_class(size_t n)
{
  int c = MIN_CLASS;
  while (c <= MAX_CLASS && ((size_t)1 << c) < n) c++;
  return c;
}

/* The size actually taken from the device for a request of n bytes. */
static size_t block_size(size_t n, int c)
{
  return CACHING && c <= MAX_CLASS ? (size_t)1 << c : (n + 63) & ~(size_t)63;
}

static void account(mfi_device *d, int64_t in_use, int64_t cached, bool fresh)
{
  d->stats.bytes_in_use += (size_t)in_use;
  d->stats.bytes_cached += (size_t)cached;
  if (fresh) d->stats.num_allocs++;
  if (d->stats.bytes_in_use > d->stats.peak_bytes_in_use)
    d->stats.peak_bytes_in_use = d->stats.bytes_in_use;
}

static void poison(mfi_device *d, void *p, size_t size)
{
  if (d->poison) d->ops.fill(d, p, POISON, size, NULL, NULL);
}

/* A cached block of class c for a caller on `stream`: the newest one freed
 * on that stream or on none, else the newest at all, once its stream is
 * idle. Called with the lock held. */
static void *take_cached(mfi_device *d, int c, void *stream)
{
  int n = d->cache[c].n, i = n - 1;
  while (i >= 0 && d->cache[c].streams[i] && d->cache[c].streams[i] != stream) i--;
  if (i < 0) {
    i = n - 1;
    /* Waited for under the lock, so the stream cannot be retired meanwhile
     * (rare: two sessions sharing a device and a size class). */
    if (!d->ops.synchronize(d, d->cache[c].streams[i], NULL)) return NULL;
  }
  void *p = d->cache[c].blocks[i];
  d->cache[c].blocks[i] = d->cache[c].blocks[n - 1];
  d->cache[c].streams[i] = d->cache[c].streams[n - 1];
  d->cache[c].n = n - 1;
  return p;
}

void *mfi_device_alloc(mfi_device *d, size_t nbytes)
{
  int c = size_class(nbytes ? nbytes : 1);
  size_t size = block_size(nbytes ? nbytes : 1, c);
  void *p = NULL;
  bool cached_hit = false;
  pthread_mutex_lock(&d->lock);
  if (CACHING && c <= MAX_CLASS && d->cache[c].n > 0 &&
      (p = take_cached(d, c, mfi_run_stream(d)))) {
    account(d, (int64_t)size, -(int64_t)size, false);
    cached_hit = true;
  }
  pthread_mutex_unlock(&d->lock);
  if (!p && !(p = d->ops.alloc(d, size))) {
    /* Out of memory: give the cached blocks back and try once more. */
    mfi_device_trim(d);
    p = d->ops.alloc(d, size);
  }
  if (p && !cached_hit) {
    pthread_mutex_lock(&d->lock);
    account(d, (int64_t)size, 0, true);
    pthread_mutex_unlock(&d->lock);
  }
  if (p) poison(d, p, size);
  return p;
}

void mfi_device_free(mfi_device *d, void *p, size_t nbytes)
{
  if (!p) return;
  int c = size_class(nbytes ? nbytes : 1);
  size_t size = block_size(nbytes ? nbytes : 1, c);
  poison(d, p, size);
  pthread_mutex_lock(&d->lock);
  if (CACHING && c <= MAX_CLASS) {
    if (d->cache[c].n == d->cache[c].cap) {
      int cap = d->cache[c].cap ? 2 * d->cache[c].cap : 16;
      void **b = realloc(d->cache[c].blocks, sizeof *b * (size_t)cap);
      if (b) d->cache[c].blocks = b;
      void **st = b ? realloc(d->cache[c].streams, sizeof *st * (size_t)cap) : NULL;
      if (st) d->cache[c].streams = st, d->cache[c].cap = cap;
    }
    if (d->cache[c].n < d->cache[c].cap) {
      d->cache[c].streams[d->cache[c].n] = mfi_run_stream(d);
      d->cache[c].blocks[d->cache[c].n++] = p;
      account(d, -(int64_t)size, (int64_t)size, false);
      p = NULL;
    }
  }
  if (p) account(d, -(int64_t)size, 0, false);
  pthread_mutex_unlock(&d->lock);
  if (p) d->ops.free(d, p, size); /* uncached, or no room to remember it */
}

void mfi_device_trim(mfi_device *d)
{
  pthread_mutex_lock(&d->lock);
  for (int c = MIN_CLASS; c <= MAX_CLASS; c++) {
    for (int i = 0; i < d->cache[c].n; i++) d->ops.free(d, d->cache[c].blocks[i], (size_t)1 << c);
    free(d->cache[c].blocks), free(d->cache[c].streams);
    d->cache[c].blocks = d->cache[c].streams = NULL, d->cache[c].n = d->cache[c].cap = 0;
  }
  d->stats.bytes_cached = 0;
  pthread_mutex_unlock(&d->lock);
}

void mfi_device_forget_stream(mfi_device *d, void *stream)
{
  pthread_mutex_lock(&d->lock);
  for (int c = MIN_CLASS; c <= MAX_CLASS; c++)
    for (int i = 0; i < d->cache[c].n; i++)
      if (d->cache[c].streams[i] == stream) d->cache[c].streams[i] = NULL;
  pthread_mutex_unlock(&d->lock);
}

/* Host scratch memory (GEMM packing, RNN workspaces) comes from the CPU's cache. */
void *mfi_alloc(size_t nbytes) { return mfi_device_alloc(mfi_device_cpu(), nbytes); }
void mfi_free(void *p, size_t nbytes) { mfi_device_free(mfi_device_cpu(), p, nbytes); }
