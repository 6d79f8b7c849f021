/* fma_peak: this machine's float32 FMA peak, measured with a register-only
 * loop — independent accumulators, enough to cover FMA latency times the
 * FMA ports (5 x 2 on Zen 2, 4 x 2 on Skylake), few enough to stay in
 * registers with the two constants (16 of 32 zmm; 12 of 16 ymm, as 16 spill)
 * and no loads or stores in the loop — on 1..T threads, with 512-bit
 * (AVX-512F) and 256-bit (AVX2/FMA) vectors. The figure a kernel's "% of
 * peak" is taken against.
 *
 *   gcc -O2 -pthread -o /tmp/fma_peak scripts/bench/c/fma_peak.c
 *   /tmp/fma_peak [threads=2] [seconds per measurement=0.5] [reps=5]
 *
 * Prints one JSON line per (width, threads): the median over reps of
 * GFLOP/s (2 flops per lane per FMA) for all threads together. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_timing.h"

#define ACC512 16
#define ACC256 12
#define INNER 1000 /* FMA rounds (of ACC instructions) between clock reads */

/* Each returns the number of FMA instructions it issued; the sum of the
 * accumulators goes to *sink so that the loop cannot be removed. */
__attribute__((target("avx512f"))) static long fma512(double seconds, float *sink)
{
  __m512 acc[ACC512];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < ACC512; i++) acc[i] = _mm512_set1_ps((float)i);
  long n = 0;
  double t_end = bench_now() + seconds;
  do {
    for (int r = 0; r < INNER; r++) {
#pragma GCC unroll 16 /* so that acc[] lives in registers */
      for (int i = 0; i < ACC512; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    n += (long)INNER * ACC512;
  } while (bench_now() < t_end);
  __m512 s = acc[0];
  for (int i = 1; i < ACC512; i++) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return n;
}

__attribute__((target("avx2,fma"))) static long fma256(double seconds, float *sink)
{
  __m256 acc[ACC256];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < ACC256; i++) acc[i] = _mm256_set1_ps((float)i);
  long n = 0;
  double t_end = bench_now() + seconds;
  do {
    for (int r = 0; r < INNER; r++) {
#pragma GCC unroll 12 /* so that acc[] lives in registers */
      for (int i = 0; i < ACC256; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    n += (long)INNER * ACC256;
  } while (bench_now() < t_end);
  __m256 s = acc[0];
  for (int i = 1; i < ACC256; i++) s = _mm256_add_ps(s, acc[i]);
  float v[8];
  _mm256_storeu_ps(v, s);
  *sink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  return n;
}

struct job {
  int width; /* 512 or 256 */
  double seconds;
  long fmas;
  double elapsed;
  float sink;
};

static void *worker(void *p)
{
  struct job *j = p;
  double t0 = bench_now();
  j->fmas = j->width == 512 ? fma512(j->seconds, &j->sink) : fma256(j->seconds, &j->sink);
  j->elapsed = bench_now() - t0;
  return NULL;
}

/* GFLOP/s of `threads` threads running the loop at once. */
static double measure(int width, int threads, double seconds)
{
  pthread_t tid[64];
  struct job jobs[64];
  for (int t = 0; t < threads; t++) {
    jobs[t] = (struct job){.width = width, .seconds = seconds};
    if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0) {
      fprintf(stderr, "fma_peak: pthread_create failed\n");
      exit(1);
    }
  }
  double gflops = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    gflops += (double)jobs[t].fmas * (width / 32) * 2 / jobs[t].elapsed * 1e-9;
  }
  return gflops;
}

int main(int argc, char **argv)
{
  int max_threads = argc > 1 ? atoi(argv[1]) : 2;
  double seconds = argc > 2 ? atof(argv[2]) : 0.5;
  int reps = argc > 3 ? atoi(argv[3]) : 5;
  if (max_threads < 1 || max_threads > 64 || seconds <= 0 || reps < 1 || reps > 100) {
    fprintf(stderr, "usage: fma_peak [threads 1..64] [seconds] [reps 1..100]\n");
    return 2;
  }
  __builtin_cpu_init();
  int widths[2] = {512, 256};
  for (int w = 0; w < 2; w++) {
    if (widths[w] == 512 && !__builtin_cpu_supports("avx512f")) continue;
    if (widths[w] == 256 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
      continue;
    for (int threads = 1; threads <= max_threads; threads++) {
      double g[100];
      for (int r = 0; r < reps; r++) g[r] = measure(widths[w], threads, seconds);
      qsort(g, (size_t)reps, sizeof g[0], bench_cmp);
      printf(
          "{\"bench\": \"fma_peak\", \"vector_bits\": %d, \"threads\": %d, \"accumulators\": %d, "
          "\"reps\": %d, \"gflops_median\": %.1f, \"gflops_max\": %.1f, \"gflops_per_thread_max\": "
          "%.1f}\n",
          widths[w], threads, widths[w] == 512 ? ACC512 : ACC256, reps, g[reps / 2], g[reps - 1],
          g[reps - 1] / threads);
    }
  }
  return 0;
}
