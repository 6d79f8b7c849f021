/* float32 GEMM with an AVX-512 micro-kernel, and B operands packed once for
 * many products.
 *
 * Why our own: Debian's OpenBLAS (0.3.21) runs its AVX2 ("Haswell") kernels
 * on AVX-512 machines, half the FMA width the hardware has; and an RNN
 * multiplies the same recurrent weights once per time step, which a BLAS
 * call re-packs every time. The layout is the usual one (Goto/BLIS):
 * op(B) is cut into panels of NR columns stored K-major, op(A) into tiles of
 * up to MR rows stored K-major, and a tile times a panel slice of depth KC
 * is one micro-kernel call that keeps its MR x NR block of C in registers.
 * A panel slice (KC x NR floats, 32 KiB) stays in L1 while the tiles of a
 * block of rows pass over it.
 *
 * Used only where the CPU has AVX-512F and MOONFLOW_GEMM is not "blas";
 * everything else, and float64, goes to OpenBLAS (mfi_gemm). */
#include "internal.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define NR 32  /* columns per panel: two 16-float registers */
#define MR 12  /* most rows per tile: 24 accumulators */
#define KC 256 /* depth of one pass over a panel slice */
#define TPB 10 /* tiles per block of rows (about 120 rows; 120 KiB of A) */

/* GCC's target pragma; clang would need per-function attributes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_KERNEL 1
#else
#define HAVE_KERNEL 0
#endif

bool mfi_sgemm_available(void)
{
  static int avail = -1; /* racing first calls compute the same answer */
  int v = __atomic_load_n(&avail, __ATOMIC_RELAXED);
  if (v < 0) {
    const char *e = getenv("MOONFLOW_GEMM");
    v = 0;
#if HAVE_KERNEL
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") && !(e && strcmp(e, "blas") == 0);
#endif
    (void)e;
    __atomic_store_n(&avail, v, __ATOMIC_RELAXED);
  }
  return v;
}

/* ---------------------------------------------------------------- kernel */

enum { SET, ADD, SCALE }; /* C = acc, C += acc, C = beta C + acc */

typedef struct {
  bool ta, tb;
  int64_t m, n, k;
  const float *a;
  int64_t lda;
  const float *b; /* unpacked op(B) source, also the fallback's */
  int64_t ldb;
  const mfi_packed_b *pb; /* or packed once by the caller */
  float beta;
  float *c;
  int64_t ldc;
} job;

#if HAVE_KERNEL
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#include <immintrin.h>

/* ---------------------------------------------------------------- packing */

/* Rows k0..k0+kc-1 of op(B)'s columns n0..n1-1 as panels kc * NR apart,
 * zero-filled past n1. op(B)[k][j] is b[k * ldb + j], or b[j * ldb + k]
 * when transposed. */
static void pack_b(bool tb, const float *b, int64_t ldb, int64_t k0, int64_t kc, int64_t n0,
                   int64_t n1, float *dst)
{
  for (int64_t j0 = n0; j0 < n1; j0 += NR, dst += kc * NR) {
    int64_t w = n1 - j0 < NR ? n1 - j0 : NR;
    if (!tb && w == NR) { /* the common case, inline: a memcpy call per 128 bytes costs more */
      const float *src = b + k0 * ldb + j0;
      for (int64_t k = 0; k < kc; k++, src += ldb) {
        _mm512_storeu_ps(dst + k * NR, _mm512_loadu_ps(src));
        _mm512_storeu_ps(dst + k * NR + 16, _mm512_loadu_ps(src + 16));
      }
    } else if (!tb) {
      for (int64_t k = 0; k < kc; k++) {
        memcpy(dst + k * NR, b + (k0 + k) * ldb + j0, sizeof(float) * w);
        memset(dst + k * NR + w, 0, sizeof(float) * (NR - w));
      }
    } else {
      for (int64_t j = 0; j < w; j++) {
        const float *src = b + (j0 + j) * ldb + k0;
        for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = src[k];
      }
      for (int64_t k = 0; k < kc && w < NR; k++) memset(dst + k * NR + w, 0, sizeof(float) * (NR - w));
    }
  }
}

/* Rows r0..r0+mr-1, depth k0..k0+kc-1 of op(A) as dst[k * mr + i]. */
static void pack_a(bool ta, const float *a, int64_t lda, int64_t r0, int mr, int64_t k0,
                   int64_t kc, float *dst)
{
  if (ta) {
    for (int64_t k = 0; k < kc; k++) memcpy(dst + k * mr, a + (k0 + k) * lda + r0, sizeof(float) * mr);
  } else {
    for (int i = 0; i < mr; i++) {
      const float *src = a + (r0 + i) * lda + k0;
      for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = src[k];
    }
  }
}

bool mfi_pack_b(mfi_packed_b *pb, bool tb, int64_t k, int64_t n, const float *b, int64_t ldb)
{
  int64_t panels = (n + NR - 1) / NR;
  pb->k = k, pb->n = n, pb->tb = tb, pb->b = b, pb->ldb = ldb;
  pb->bytes = sizeof(float) * (size_t)(panels * k * NR);
  pb->p = mfi_alloc(pb->bytes ? pb->bytes : 1);
  if (!pb->p) return false;
  for (int64_t p = 0; p < panels; p++)
    pack_b(tb, b, ldb, 0, k, p * NR, n < (p + 1) * NR ? n : (p + 1) * NR, pb->p + p * k * NR);
  return true;
}


static inline __attribute__((always_inline)) void tile(const int mr, int64_t kc,
                                                       const float *restrict ap,
                                                       const float *restrict bp, float *c,
                                                       int64_t ldc, int mode, float beta,
                                                       __mmask16 m0, __mmask16 m1)
{
  __m512 x[MR], y[MR];
#pragma GCC unroll 12
  for (int i = 0; i < mr; i++) x[i] = y[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++, ap += mr, bp += NR) {
    __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
      __m512 av = _mm512_set1_ps(ap[i]);
      x[i] = _mm512_fmadd_ps(av, b0, x[i]);
      y[i] = _mm512_fmadd_ps(av, b1, y[i]);
    }
  }
  __m512 bv = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < mr; i++) {
    float *ci = c + i * ldc;
    if (mode != SET) {
      __m512 c0 = _mm512_maskz_loadu_ps(m0, ci), c1 = _mm512_maskz_loadu_ps(m1, ci + 16);
      if (mode == SCALE) {
        x[i] = _mm512_fmadd_ps(bv, c0, x[i]);
        y[i] = _mm512_fmadd_ps(bv, c1, y[i]);
      } else {
        x[i] = _mm512_add_ps(c0, x[i]);
        y[i] = _mm512_add_ps(c1, y[i]);
      }
    }
    _mm512_mask_storeu_ps(ci, m0, x[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, y[i]);
  }
}

/* One instance per tile height, so every loop above is unrolled. */
static void run_tile(int mr, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                     int mode, float beta, __mmask16 m0, __mmask16 m1)
{
  switch (mr) {
#define CASE(r)                                                                                    \
  case r: tile(r, kc, ap, bp, c, ldc, mode, beta, m0, m1); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11)
    CASE(12)
#undef CASE
  }
}

/* Rows m0..m1-1 and panels p0..p1-1 of C on this thread; false (nothing
 * written) when its buffers cannot be allocated. Rows are cut into tiles of
 * nearly equal height, so 50 rows are 5 tiles of 10, not 4 of 12 and one of 2. */
static bool run_block(const job *g, int64_t m0, int64_t m1, int64_t p0, int64_t p1)
{
  int64_t k = g->k, kcmax = k < KC ? k : KC, rows = m1 - m0, nt = (rows + MR - 1) / MR;
  size_t abytes = sizeof(float) * (size_t)(TPB * MR * kcmax);
  size_t bbytes = g->pb ? 0 : sizeof(float) * (size_t)((p1 - p0) * kcmax * NR);
  float *abuf = mfi_alloc(abytes), *bbuf = bbytes ? mfi_alloc(bbytes) : NULL;
  if (!abuf || (bbytes && !bbuf)) {
    mfi_free(abuf, abytes), mfi_free(bbuf, bbytes);
    return false;
  }
  int mode0 = g->beta == 0 ? SET : g->beta == 1 ? ADD : SCALE;
  for (int64_t pc = 0; pc < k; pc += KC) {
    int64_t kc = k - pc < KC ? k - pc : KC;
    int mode = pc == 0 ? mode0 : ADD;
    if (bbuf) pack_b(g->tb, g->b, g->ldb, pc, kc, p0 * NR, g->n < p1 * NR ? g->n : p1 * NR, bbuf);
    for (int64_t t0 = 0; t0 < nt; t0 += TPB) {
      int64_t t1 = t0 + TPB < nt ? t0 + TPB : nt, off = 0;
      for (int64_t t = t0; t < t1; t++) {
        int64_t r = m0 + t * rows / nt, mr = m0 + (t + 1) * rows / nt - r;
        pack_a(g->ta, g->a, g->lda, r, (int)mr, pc, kc, abuf + off);
        off += mr * kc;
      }
      for (int64_t p = p0; p < p1; p++) {
        const float *bp = g->pb ? g->pb->p + (p * k + pc) * NR : bbuf + (p - p0) * kc * NR;
        int64_t w = g->n - p * NR < NR ? g->n - p * NR : NR;
        __mmask16 k0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
        __mmask16 k1 = w >= NR ? 0xFFFF : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1);
        const float *ap = abuf;
        for (int64_t t = t0; t < t1; t++) {
          int64_t r = m0 + t * rows / nt, mr = m0 + (t + 1) * rows / nt - r;
          run_tile((int)mr, kc, ap, bp, g->c + r * g->ldc + p * NR, g->ldc, mode, g->beta, k0, k1);
          ap += mr * kc;
        }
      }
    }
  }
  mfi_free(abuf, abytes), mfi_free(bbuf, bbytes);
  return true;
}
#pragma GCC pop_options
#else
static bool run_block(const job *g, int64_t m0, int64_t m1, int64_t p0, int64_t p1)
{
  (void)g, (void)m0, (void)m1, (void)p0, (void)p1;
  return false;
}

bool mfi_pack_b(mfi_packed_b *pb, bool tb, int64_t k, int64_t n, const float *b, int64_t ldb)
{
  (void)pb, (void)tb, (void)k, (void)n, (void)b, (void)ldb;
  return false;
}
#endif

/* ---------------------------------------------------------------- drivers */

void mfi_packed_b_free(mfi_packed_b *pb)
{
  if (pb && pb->p) mfi_free(pb->p, pb->bytes ? pb->bytes : 1);
  if (pb) pb->p = NULL;
}


/* A block through OpenBLAS when the kernel's buffers are out of reach. */
static void block_blas(const job *g, int64_t m0, int64_t m1, int64_t p0, int64_t p1)
{
  int64_t n0 = p0 * NR, n1 = g->n < p1 * NR ? g->n : p1 * NR;
  if (m1 <= m0 || n1 <= n0) return;
  const float *a = g->ta ? g->a + m0 : g->a + m0 * g->lda;
  const float *b = g->tb ? g->b + n0 * g->ldb : g->b + n0;
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
              (int)(m1 - m0), (int)(n1 - n0), (int)g->k, 1.0f, a, (int)g->lda, b, (int)g->ldb,
              g->beta, g->c + m0 * g->ldc + n0, (int)g->ldc);
}

static void block(const job *g, int64_t m0, int64_t m1, int64_t p0, int64_t p1)
{
  if (m1 > m0 && p1 > p0 && !run_block(g, m0, m1, p0, p1)) block_blas(g, m0, m1, p0, p1);
}

typedef struct {
  const job *g;
  bool by_rows;
} split;

static void part(void *ctx, int i, int n)
{
  const split *s = ctx;
  const job *g = s->g;
  int64_t panels = (g->n + NR - 1) / NR;
  if (s->by_rows)
    block(g, g->m * i / n, g->m * (i + 1) / n, 0, panels);
  else
    block(g, 0, g->m, panels * i / n, panels * (i + 1) / n);
}

/* C = beta C for an empty sum (k == 0); C is not read when beta is 0. */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc)
{
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
}

void mfi_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
  if (k == 0) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  job g = {ta, tb, m, n, k, a, lda, b, ldb, NULL, beta, c, ldc};
  /* Below a few MFLOP a second thread's wakeup costs more than it saves. */
  double flops = 2.0 * (double)m * (double)n * (double)k;
  int64_t panels = (n + NR - 1) / NR;
  int parts = flops < 4e6 ? 1 : flops < 1.6e7 ? 2 : mfi_parallel_threads();
  /* Split the larger side: each part packs its share of that side's
   * operand and all of the other, smaller one. */
  split s = {&g, m >= n || panels < parts};
  mfi_parallel(parts, part, &s);
}

void mfi_sgemm_packed(bool ta, int64_t m, const float *a, int64_t lda, const mfi_packed_b *pb,
                      float beta, float *c, int64_t ldc)
{
  if (pb->k == 0) {
    scale_c(m, pb->n, beta, c, ldc);
    return;
  }
  job g = {ta, pb->tb, m, pb->n, pb->k, a, lda, pb->b, pb->ldb, pb, beta, c, ldc};
  block(&g, 0, m, 0, (pb->n + NR - 1) / NR);
}
