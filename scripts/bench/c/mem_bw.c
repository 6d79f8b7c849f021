/* Memory bandwidth of one core, the bound of the char-RNN's elementwise
 * passes (cells, softmax, Adam) as fma_peak.c is the GEMM's: the median
 * over reps of memcpy and of a triad a[i] = b[i] + s * c[i] (STREAM's) over
 * float32 arrays far larger than the caches. Bytes counted are those the
 * loop reads and writes (memcpy: 2 per byte copied; triad: 12 per element).
 *   gcc -O2 -o mem_bw scripts/bench/c/mem_bw.c && ./mem_bw [MiB per array, 64] [reps, 7]
 * Prints one JSON line per kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_timing.h"

int main(int argc, char **argv)
{
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
  int reps = argc > 2 ? atoi(argv[2]) : 7;
  if (mib < 1 || reps < 1 || reps > 1000) {
    fprintf(stderr, "usage: mem_bw [MiB per array >= 1] [reps 1..1000]\n");
    return 2;
  }
  size_t n = mib * 1024 * 1024 / sizeof(float);
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  double t[1000];
  if (!a || !b || !c) {
    fprintf(stderr, "mem_bw: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < n; i++) a[i] = 0, b[i] = (float)(i % 97), c[i] = (float)(i % 89);
  const char *names[2] = {"memcpy", "triad"};
  for (int kind = 0; kind < 2; kind++) {
    for (int r = 0; r < reps; r++) {
      double t0 = bench_now();
      if (kind == 0)
        memcpy(a, b, n * sizeof *a);
      else
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
      t[r] = bench_now() - t0;
    }
    double med = bench_median(t, reps);
    double bytes = (kind == 0 ? 2.0 : 3.0) * (double)n * sizeof(float);
    printf("{\"bench\": \"mem_bw\", \"kernel\": \"%s\", \"mib_per_array\": %zu, \"reps\": %d, "
           "\"gbytes_per_s_median\": %.2f, \"check\": %g}\n",
           names[kind], mib, reps, bytes / med / 1e9, (double)a[n / 2]);
  }
  free(a), free(b), free(c);
  return 0;
}
