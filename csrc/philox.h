/* The random streams, one source for the CPU (csrc/random.c, ops/random.c,
 * Dropout) and the GPU (gpu/random.cu), so both draw the same numbers.
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011) is counter-based: element i of a random op's output takes
 * the block at counter (i, attempt, run) under the op's key, so it depends
 * on nothing else (thread scheduling, device). Plain C that nvcc also
 * compiles for the device. */
#ifndef MOONFLOW_PHILOX_H
#define MOONFLOW_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define MFI_HD __host__ __device__
#else
#define MFI_HD
#endif

static inline MFI_HD void mfi_philox(uint64_t key, const uint32_t ctr[4], uint32_t out[4])
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

/* Element i's block for its attempt-th draw in an op's run-th run. */
static inline MFI_HD void mfi_philox_draw(uint64_t key, uint64_t run, int64_t i, uint32_t attempt,
                                          uint32_t out[4])
{
  uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32) ^ (attempt << 20), (uint32_t)run,
                     (uint32_t)(run >> 32)};
  mfi_philox(key, ctr, out);
}

/* A uniform in [0, 1) with 53 random bits. */
static inline MFI_HD double mfi_random_unit(uint32_t hi, uint32_t lo)
{
  return (double)(((uint64_t)hi << 21) ^ (lo >> 11)) * 0x1p-53;
}

/* A standard normal from one block (Box-Muller). */
static inline MFI_HD double mfi_random_normal(const uint32_t w[4])
{
  const double pi = 3.14159265358979323846;
  double u1 = 1.0 - mfi_random_unit(w[0], w[1]), u2 = mfi_random_unit(w[2], w[3]);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * pi * u2);
}

#endif
