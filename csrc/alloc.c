/* The caching allocator, one per device, over the device's raw memory.
 *
 * Blocks are rounded up to a power of two (at least 64 bytes). A freed
 * block goes onto its class's list instead of back to the device, so a
 * training loop that allocates the same sizes every step reuses the same
 * memory and its footprint stays flat (no cudaMalloc in a steady loop on a
 * GPU). The lists live beside the blocks, never inside them, so the same
 * code serves memory the host cannot touch. Blocks above 1 GiB are not
 * cached; mfi_device_trim gives the cached ones back. */
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

void *mfi_device_alloc(mfi_device *d, size_t nbytes)
{
  int c = size_class(nbytes ? nbytes : 1);
  size_t size = block_size(nbytes ? nbytes : 1, c);
  void *p = NULL;
  bool cached_hit = false;
  pthread_mutex_lock(&d->lock);
  if (CACHING && c <= MAX_CLASS && d->cache[c].n > 0) {
    p = d->cache[c].blocks[--d->cache[c].n];
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
      if (b) d->cache[c].blocks = b, d->cache[c].cap = cap;
    }
    if (d->cache[c].n < d->cache[c].cap) {
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
    free(d->cache[c].blocks);
    d->cache[c].blocks = NULL, d->cache[c].n = d->cache[c].cap = 0;
  }
  d->stats.bytes_cached = 0;
  pthread_mutex_unlock(&d->lock);
}

/* Host scratch memory (GEMM packing, RNN workspaces) comes from the CPU's cache. */
void *mfi_alloc(size_t nbytes) { return mfi_device_alloc(mfi_device_cpu(), nbytes); }
void mfi_free(void *p, size_t nbytes) { mfi_device_free(mfi_device_cpu(), p, nbytes); }
