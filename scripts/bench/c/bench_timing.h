/* The clock and the median the C benchmarks share (header-only, so each
 * stays one `gcc file.c` away). */
#ifndef MF_BENCH_TIMING_H
#define MF_BENCH_TIMING_H

#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double bench_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of t[0..n-1] (n >= 1; t is sorted in place). */
static inline double bench_median(double *t, int n)
{
  qsort(t, (size_t)n, sizeof *t, bench_cmp);
  return t[n / 2];
}

#endif
