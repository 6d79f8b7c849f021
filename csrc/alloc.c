/* The caching allocator, one per device, over the device's raw memory.
 *
 * Blocks are rounded up to a power of two (at least 64 bytes). A freed
 * block goes onto its class's free list instead of back to the device, so a
 * training loop that allocates the same sizes every step reuses the same
 * memory and its footprint stays flat. Blocks above 1 GiB are not cached.
 * The free lists are threaded through the blocks themselves, so only
 * host-addressable memory is cached here; a device whose memory the host
 * cannot touch (CUDA) keeps its own cache in its backend. */
#include "internal.h"

#include <string.h>

#define MIN_CLASS 6 /* 64 bytes */
#define MAX_CLASS (MFI_CACHE_CLASSES - 1)

typedef struct block {
  struct block *next;
} block;

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

static bool cached(const mfi_device *d, int c) { return CACHING && d->host_data && c <= MAX_CLASS; }

static void account(mfi_device *d, int64_t in_use, int64_t cached_bytes, bool fresh)
{
  d->stats.bytes_in_use += (size_t)in_use;
  d->stats.bytes_cached += (size_t)cached_bytes;
  if (fresh) d->stats.num_allocs++;
  if (d->stats.bytes_in_use > d->stats.peak_bytes_in_use)
    d->stats.peak_bytes_in_use = d->stats.bytes_in_use;
}

void *mfi_device_alloc(mfi_device *d, size_t nbytes)
{
  int c = size_class(nbytes ? nbytes : 1);
  size_t size = cached(d, c) ? (size_t)1 << c : (nbytes + 63) & ~(size_t)63;
  block *b = NULL;
  pthread_mutex_lock(&d->lock);
  if (cached(d, c) && (b = d->free_lists[c])) {
    d->free_lists[c] = b->next;
    account(d, (int64_t)size, -(int64_t)size, false);
  }
  pthread_mutex_unlock(&d->lock);
  if (!b && (b = d->ops.alloc(d, size))) {
    pthread_mutex_lock(&d->lock);
    account(d, (int64_t)size, 0, true);
    pthread_mutex_unlock(&d->lock);
  }
  if (b && d->poison) memset(b, POISON, size);
  return b;
}

void mfi_device_free(mfi_device *d, void *p, size_t nbytes)
{
  if (!p) return;
  int c = size_class(nbytes ? nbytes : 1);
  size_t size = cached(d, c) ? (size_t)1 << c : (nbytes + 63) & ~(size_t)63;
  if (d->poison) memset(p, POISON, size);
  pthread_mutex_lock(&d->lock);
  if (cached(d, c)) {
    block *b = p;
    b->next = d->free_lists[c];
    d->free_lists[c] = b;
    account(d, -(int64_t)size, (int64_t)size, false);
    p = NULL;
  } else {
    account(d, -(int64_t)size, 0, false);
  }
  pthread_mutex_unlock(&d->lock);
  if (p) d->ops.free(d, p, size);
}

void mfi_device_trim(mfi_device *d)
{
  pthread_mutex_lock(&d->lock);
  for (int c = MIN_CLASS; c <= MAX_CLASS; c++) {
    for (block *b = d->free_lists[c], *next; b; b = next) {
      next = b->next;
      d->ops.free(d, b, (size_t)1 << c);
    }
    d->free_lists[c] = NULL;
  }
  d->stats.bytes_cached = 0;
  pthread_mutex_unlock(&d->lock);
}

/* Host scratch memory (GEMM packing, RNN workspaces) comes from the CPU's cache. */
void *mfi_alloc(size_t nbytes) { return mfi_device_alloc(mfi_device_cpu(), nbytes); }
void mfi_free(void *p, size_t nbytes) { mfi_device_free(mfi_device_cpu(), p, nbytes); }
