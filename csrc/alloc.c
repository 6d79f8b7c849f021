/* Size-class caching allocator for tensor buffers.
 *
 * Blocks are rounded up to a power of two (at least 64 bytes) and 64-byte
 * aligned. A freed block goes onto its class's free list instead of back to
 * the OS, so a training loop that allocates the same sizes every step reuses
 * the same memory and its resident size stays flat. Blocks above 1 GiB are
 * not cached. */
#include "internal.h"

#include <stdlib.h>

#define MIN_CLASS 6  /* 64 bytes */
#define MAX_CLASS 30 /* 1 GiB */

typedef struct block {
  struct block *next;
} block;

#ifdef __SANITIZE_ADDRESS__
/* Under AddressSanitizer every block goes back to libc, so a use after
 * free or a leak is caught instead of hidden by the cache. */
#define CACHING 0
#else
#define CACHING 1
#endif

static block *free_lists[MAX_CLASS + 1];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int size_class(size_t n)
{
  int c = MIN_CLASS;
  while (c <= MAX_CLASS && ((size_t)1 << c) < n) c++;
  return c;
}

void *mfi_alloc(size_t nbytes)
{
  int c = size_class(nbytes ? nbytes : 1);
  if (c > MAX_CLASS || !CACHING) return aligned_alloc(64, (nbytes + 63) & ~(size_t)63);
  pthread_mutex_lock(&lock);
  block *b = free_lists[c];
  if (b) free_lists[c] = b->next;
  pthread_mutex_unlock(&lock);
  if (b) return b;
  return aligned_alloc(64, (size_t)1 << c);
}

void mfi_free(void *p, size_t nbytes)
{
  if (!p) return;
  int c = size_class(nbytes ? nbytes : 1);
  if (c > MAX_CLASS || !CACHING) {
    free(p);
    return;
  }
  block *b = p;
  pthread_mutex_lock(&lock);
  b->next = free_lists[c];
  free_lists[c] = b;
  pthread_mutex_unlock(&lock);
}
