/* Keys and draws of the random ops' Philox streams (philox.h). */
#include "internal.h"

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
  mfi_philox_draw(k->key, k->run, i, attempt, out);
}
