/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011): a counter-based generator, so element i of a random op's
 * output depends only on (key, counter), never on thread scheduling. */
#include "internal.h"

void mfi_philox(uint64_t key, const uint32_t ctr[4], uint32_t out[4])
{
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c0 = n0, c1 = (uint32_t)p1, c2 = n2, c3 = (uint32_t)p0;
    k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Mixes the graph seed and the op seed into one 64-bit key (splitmix64). */
uint64_t mfi_seed_key(int64_t seed, int64_t seed2)
{
  uint64_t z = (uint64_t)seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)seed2;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void mfi_random_draw(const mfi_kctx *k, int64_t i, uint32_t attempt, uint32_t out[4])
{
  uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32) ^ (attempt << 20), (uint32_t)k->run,
                     (uint32_t)(k->run >> 32)};
  mfi_philox(k->key, ctr, out);
}

double mfi_random_unit(uint32_t hi, uint32_t lo)
{
  return (double)(((uint64_t)hi << 21) ^ (lo >> 11)) * 0x1p-53;
}
