/* The candidate samplers' draws (LogUniformCandidateSampler,
 * UniformCandidateSampler), one source for the CPU (ops/random.c) and the
 * devices (gpu/random.cu), as TensorFlow's RangeSampler does them.
 *
 * Classes count from 1: moonflow's class c is TensorFlow's class c - 1, so
 * the log-uniform (Zipfian) probability TF writes as
 *   P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1), k = 0 .. range_max - 1,
 * is here P(c) = (log(c + 1) - log(c)) / log(range_max + 1), c = 1 .. range_max.
 * Try t of a run draws one uniform u from Philox's block at counter
 * (t, 0, run); a log-uniform draw is c = floor(exp(u log(range_max + 1)))
 * (TF's value + 1), a uniform one c = floor(u range_max) + 1. With unique,
 * draws repeat until num_sampled distinct classes are found and the
 * expected counts use the number of tries. */
#ifndef MOONFLOW_OPS_SAMPLER_H
#define MOONFLOW_OPS_SAMPLER_H

#include "../philox.h"

#include <stdbool.h>
#include <stdint.h>

/* TensorFlow gives up at 2^31 - 1 tries (a unique draw of nearly every
 * class of a long log-uniform tail). */
#define MFI_SAMPLER_MAX_TRIES 0x7fffffffLL

/* P(c) of class c (1-based, 1 <= c <= range), rounded to float as TF's
 * Probability is. */
static inline MFI_HD float mfi_sampler_prob(bool log_uniform, int64_t range, int64_t c)
{
  if (!log_uniform) return (float)(1.0 / (double)range);
  return (float)(log(((double)c + 1.0) / (double)c) / log1p((double)range));
}

/* TensorFlow's ExpectedCountHelper, in float as TF's: p num_sampled when
 * every try was kept (always without unique), else 1 - (1 - p)^num_tries,
 * computed stably. */
static inline MFI_HD float mfi_sampler_expected(float p, int64_t num_sampled, int64_t num_tries)
{
  if (num_tries == num_sampled) return p * (float)num_sampled;
  return -expm1f((float)num_tries * log1pf(-p));
}

/* Try t's class. */
static inline MFI_HD int64_t mfi_sampler_draw(bool log_uniform, int64_t range, uint64_t key,
                                              uint64_t run, int64_t t)
{
  uint32_t w[4];
  mfi_philox_draw(key, run, t, 0, w);
  double u = mfi_random_unit(w[0], w[1]);
  if (!log_uniform) {
    int64_t c = (int64_t)(u * (double)range);
    return (c < range ? c : range - 1) + 1;
  }
  /* exp rounds up to range + 1 at worst: TF takes the value mod range */
  int64_t v = (int64_t)exp(u * log1p((double)range)) - 1;
  return v % range + 1;
}

/* Draws n classes into out; with unique, distinct ones, using table (size
 * slots, a power of two >= 2 n, zeroed here: 0 marks an empty slot since
 * classes count from 1). Returns the number of tries, or -1 past
 * MFI_SAMPLER_MAX_TRIES. */
static inline MFI_HD int64_t mfi_sampler_run(bool log_uniform, int64_t range, int64_t n,
                                             bool unique, uint64_t key, uint64_t run, int64_t *out,
                                             int64_t *table, int64_t size)
{
  if (!unique) {
    for (int64_t t = 0; t < n; t++) out[t] = mfi_sampler_draw(log_uniform, range, key, run, t);
    return n;
  }
  for (int64_t s = 0; s < size; s++) table[s] = 0;
  int64_t picks = 0, tries = 0;
  while (picks < n) {
    if (tries >= MFI_SAMPLER_MAX_TRIES) return -1;
    int64_t c = mfi_sampler_draw(log_uniform, range, key, run, tries++);
    uint64_t h = (uint64_t)c * 0x9E3779B97F4A7C15ull;
    int64_t s = (int64_t)(h >> 20) & (size - 1);
    while (table[s] != 0 && table[s] != c) s = (s + 1) & (size - 1);
    if (table[s] == c) continue;
    table[s] = c;
    out[picks++] = c;
  }
  return tries;
}

/* Slots of the unique draw's table for n samples. */
static inline int64_t mfi_sampler_table_size(int64_t n)
{
  int64_t size = 2;
  while (size < 2 * n) size *= 2;
  return size;
}

#endif
