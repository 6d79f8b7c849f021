/* float32 GEMM with AVX-512 and AVX2 micro-kernels, and B operands packed
 * once for many products.
 *
 * Why our own: Debian's OpenBLAS (0.3.21) runs its AVX2 ("Haswell") kernels
 * on AVX-512 machines, half the FMA width the hardware has; and an RNN
 * multiplies the same recurrent weights once per time step, which a BLAS
 * call re-packs every time (packed once here, each thread can run a whole
 * time loop with its own single-threaded products). The layout is the
 * usual one (Goto/BLIS): op(B) is cut into panels of NR columns stored
 * K-major, op(A) into tiles of up to MR rows stored K-major, and a tile
 * times a panel slice of depth KC is one micro-kernel call that keeps its
 * MR x NR block of C in registers. A panel slice (KC x NR floats, 16 or
 * 32 KiB) stays in L1 while the tiles of a block of rows pass over it.
 *
 * The kernel is picked once per process: AVX-512F (12 x 32 tiles), else
 * AVX2 with FMA (6 x 16), else none, and everything goes to OpenBLAS, as
 * float64 always does (mfi_gemm). MOONFLOW_GEMM=avx2 skips the AVX-512
 * kernel, MOONFLOW_GEMM=blas both. */
#include "internal.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define KC 256 /* depth of one pass over a panel slice */
#define TPB 10 /* tiles per block of rows (about 60-120 rows of A in L2) */

/* GCC's target pragmas; clang would need per-function attributes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_KERNELS 1
#else
#define HAVE_KERNELS 0
#endif

enum { SET, ADD, SCALE }; /* C = acc, C += acc, C = beta C + acc */

/* One micro-kernel call: a tile of mr rows (packed, ap[k * mr + i]) times a
 * panel slice (bp[k * nr + j]), of depth kc, into C's first w columns. */
typedef void (*tile_fn)(int mr, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                        int mode, float beta, int w);

static struct {
  int mr, nr;
  tile_fn tile;
  const char *name;
} kern;

/* ---------------------------------------------------------------- packing */

/* Rows k0..k0+kc-1 of op(B)'s columns n0..n1-1 as panels kc * nr apart,
 * zero-filled past n1. op(B)[k][j] is b[k * ldb + j], or b[j * ldb + k]
 * when transposed. */
static void pack_b(bool tb, const float *b, int64_t ldb, int64_t k0, int64_t kc, int64_t n0,
                   int64_t n1, float *dst)
{
  int nr = kern.nr;
  for (int64_t j0 = n0; j0 < n1; j0 += nr, dst += kc * nr) {
    int64_t w = n1 - j0 < nr ? n1 - j0 : nr;
    if (!tb && w == nr) { /* constant sizes: copies the compiler inlines */
      const float *src = b + k0 * ldb + j0;
      for (int64_t k = 0; k < kc; k++, src += ldb) {
        if (nr == 32)
          memcpy(dst + k * 32, src, 32 * sizeof(float));
        else
          memcpy(dst + k * nr, src, nr * sizeof(float));
      }
    } else if (!tb) {
      for (int64_t k = 0; k < kc; k++) {
        memcpy(dst + k * nr, b + (k0 + k) * ldb + j0, sizeof(float) * w);
        memset(dst + k * nr + w, 0, sizeof(float) * (nr - w));
      }
    } else {
      for (int64_t j = 0; j < w; j++) {
        const float *src = b + (j0 + j) * ldb + k0;
        for (int64_t k = 0; k < kc; k++) dst[k * nr + j] = src[k];
      }
      for (int64_t k = 0; k < kc && w < nr; k++)
        memset(dst + k * nr + w, 0, sizeof(float) * (nr - w));
    }
  }
}

/* Rows r0..r0+mr-1, depth k0..k0+kc-1 of op(A) as dst[k * mr + i]. */
static void pack_a(bool ta, const float *a, int64_t lda, int64_t r0, int mr, int64_t k0, int64_t kc,
                   float *dst)
{
  if (ta) {
    for (int64_t k = 0; k < kc; k++)
      memcpy(dst + k * mr, a + (k0 + k) * lda + r0, sizeof(float) * mr);
  } else {
    for (int i = 0; i < mr; i++) {
      const float *src = a + (r0 + i) * lda + k0;
      for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = src[k];
    }
  }
}

#if HAVE_KERNELS
#include <immintrin.h>

/* ---------------------------------------------------------------- AVX-512: 12 x 32 */
#pragma GCC push_options
#pragma GCC target("avx512f,fma")

static inline __attribute__((always_inline)) void tile16(const int mr, int64_t kc,
                                                         const float *restrict ap,
                                                         const float *restrict bp, float *c,
                                                         int64_t ldc, int mode, float beta, int w)
{
  __m512 x[12], y[12];
  __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
  __mmask16 m1 = w >= 32 ? 0xFFFF : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1);
#pragma GCC unroll 12
  for (int i = 0; i < mr; i++) x[i] = y[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++, ap += mr, bp += 32) {
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
      x[i] = mode == SCALE ? _mm512_fmadd_ps(bv, c0, x[i]) : _mm512_add_ps(c0, x[i]);
      y[i] = mode == SCALE ? _mm512_fmadd_ps(bv, c1, y[i]) : _mm512_add_ps(c1, y[i]);
    }
    _mm512_mask_storeu_ps(ci, m0, x[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, y[i]);
  }
}

/* One instance per tile height, so every loop above is unrolled. */
static void tile_avx512(int mr, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                        int mode, float beta, int w)
{
  switch (mr) {
#define CASE(r)                                                                                    \
  case r: tile16(r, kc, ap, bp, c, ldc, mode, beta, w); break;
    CASE(1)
    CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
  }
}
#pragma GCC pop_options

/* ---------------------------------------------------------------- AVX2: 6 x 16 */
#pragma GCC push_options
#pragma GCC target("avx2,fma")

/* Lanes h*8 .. h*8+7 of a row that are among its first w columns. */
static inline __attribute__((always_inline)) __m256i lanes(int w, int h)
{
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(w - 8 * h),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void tile8(const int mr, int64_t kc,
                                                        const float *restrict ap,
                                                        const float *restrict bp, float *c,
                                                        int64_t ldc, int mode, float beta, int w)
{
  __m256 x[6], y[6];
#pragma GCC unroll 6
  for (int i = 0; i < mr; i++) x[i] = y[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++, ap += mr, bp += 16) {
    __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
      __m256 av = _mm256_broadcast_ss(ap + i);
      x[i] = _mm256_fmadd_ps(av, b0, x[i]);
      y[i] = _mm256_fmadd_ps(av, b1, y[i]);
    }
  }
  __m256 bv = _mm256_set1_ps(beta);
  __m256i m0 = lanes(w, 0), m1 = lanes(w, 1);
#pragma GCC unroll 6
  for (int i = 0; i < mr; i++) {
    float *ci = c + i * ldc;
    if (w == 16) { /* plain moves: masked ones are slow on some AMD cores */
      if (mode != SET) {
        __m256 c0 = _mm256_loadu_ps(ci), c1 = _mm256_loadu_ps(ci + 8);
        x[i] = mode == SCALE ? _mm256_fmadd_ps(bv, c0, x[i]) : _mm256_add_ps(c0, x[i]);
        y[i] = mode == SCALE ? _mm256_fmadd_ps(bv, c1, y[i]) : _mm256_add_ps(c1, y[i]);
      }
      _mm256_storeu_ps(ci, x[i]);
      _mm256_storeu_ps(ci + 8, y[i]);
      continue;
    }
    if (mode != SET) {
      __m256 c0 = _mm256_maskload_ps(ci, m0), c1 = _mm256_maskload_ps(ci + 8, m1);
      x[i] = mode == SCALE ? _mm256_fmadd_ps(bv, c0, x[i]) : _mm256_add_ps(c0, x[i]);
      y[i] = mode == SCALE ? _mm256_fmadd_ps(bv, c1, y[i]) : _mm256_add_ps(c1, y[i]);
    }
    _mm256_maskstore_ps(ci, m0, x[i]);
    _mm256_maskstore_ps(ci + 8, m1, y[i]);
  }
}

static void tile_avx2(int mr, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                      int mode, float beta, int w)
{
  switch (mr) {
#define CASE(r)                                                                                    \
  case r: tile8(r, kc, ap, bp, c, ldc, mode, beta, w); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
#undef CASE
  }
}
#pragma GCC pop_options
#endif

static bool avail;
static pthread_once_t picked = PTHREAD_ONCE_INIT;

/* Once per process (pthread_once publishes kern to every caller). */
static void pick_kernel(void)
{
#if HAVE_KERNELS
  const char *e = getenv("MOONFLOW_GEMM");
  bool blas = e && strcmp(e, "blas") == 0, avx2_only = e && strcmp(e, "avx2") == 0;
  __builtin_cpu_init();
  bool fma = __builtin_cpu_supports("fma");
  if (!blas && !avx2_only && __builtin_cpu_supports("avx512f") && fma) {
    kern.mr = 12, kern.nr = 32, kern.tile = tile_avx512, kern.name = "avx512", avail = true;
  } else if (!blas && __builtin_cpu_supports("avx2") && fma) {
    kern.mr = 6, kern.nr = 16, kern.tile = tile_avx2, kern.name = "avx2", avail = true;
  }
#endif
}

bool mfi_sgemm_available(void)
{
  pthread_once(&picked, pick_kernel);
  return avail;
}

const char *mf_cpu_gemm_kernel(void) { return mfi_sgemm_available() ? kern.name : "openblas"; }

/* ---------------------------------------------------------------- blocks */

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

bool mfi_pack_b(mfi_packed_b *pb, bool tb, int64_t k, int64_t n, const float *b, int64_t ldb)
{
  pb->p = NULL;
  if (!mfi_sgemm_available()) return false;
  int nr = kern.nr;
  int64_t panels = (n + nr - 1) / nr;
  pb->k = k, pb->n = n, pb->tb = tb, pb->b = b, pb->ldb = ldb;
  pb->bytes = sizeof(float) * (size_t)(panels * k * nr);
  pb->p = mfi_alloc(pb->bytes ? pb->bytes : 1);
  if (!pb->p) return false;
  for (int64_t p = 0; p < panels; p++)
    pack_b(tb, b, ldb, 0, k, p * nr, n < (p + 1) * nr ? n : (p + 1) * nr, pb->p + p * k * nr);
  return true;
}

/* Rows m0..m1-1 and panels p0..p1-1 of C on this thread; false (nothing
 * written) when its buffers cannot be allocated. Rows are cut into tiles of
 * nearly equal height, so 50 rows are 5 tiles of 10, not 4 of 12 and one of 2. */
static bool run_block(const job *g, int64_t m0, int64_t m1, int64_t p0, int64_t p1)
{
  int nr = kern.nr, mrmax = kern.mr;
  int64_t k = g->k, kcmax = k < KC ? k : KC, rows = m1 - m0, nt = (rows + mrmax - 1) / mrmax;
  size_t abytes = sizeof(float) * (size_t)(TPB * mrmax * kcmax);
  size_t bbytes = g->pb ? 0 : sizeof(float) * (size_t)((p1 - p0) * kcmax * nr);
  float *abuf = mfi_alloc(abytes), *bbuf = bbytes ? mfi_alloc(bbytes) : NULL;
  if (!abuf || (bbytes && !bbuf)) {
    mfi_free(abuf, abytes), mfi_free(bbuf, bbytes);
    return false;
  }
  int mode0 = g->beta == 0 ? SET : g->beta == 1 ? ADD : SCALE;
  for (int64_t pc = 0; pc < k; pc += KC) {
    int64_t kc = k - pc < KC ? k - pc : KC;
    int mode = pc == 0 ? mode0 : ADD;
    if (bbuf) pack_b(g->tb, g->b, g->ldb, pc, kc, p0 * nr, g->n < p1 * nr ? g->n : p1 * nr, bbuf);
    for (int64_t t0 = 0; t0 < nt; t0 += TPB) {
      int64_t t1 = t0 + TPB < nt ? t0 + TPB : nt, off = 0;
      for (int64_t t = t0; t < t1; t++) {
        int64_t r = m0 + t * rows / nt, mr = m0 + (t + 1) * rows / nt - r;
        pack_a(g->ta, g->a, g->lda, r, (int)mr, pc, kc, abuf + off);
        off += mr * kc;
      }
      for (int64_t p = p0; p < p1; p++) {
        const float *bp = g->pb ? g->pb->p + (p * k + pc) * nr : bbuf + (p - p0) * kc * nr;
        int w = g->n - p * nr < nr ? (int)(g->n - p * nr) : nr;
        const float *ap = abuf;
        for (int64_t t = t0; t < t1; t++) {
          int64_t r = m0 + t * rows / nt, mr = m0 + (t + 1) * rows / nt - r;
          kern.tile((int)mr, kc, ap, bp, g->c + r * g->ldc + p * nr, g->ldc, mode, g->beta, w);
          ap += mr * kc;
        }
      }
    }
  }
  mfi_free(abuf, abytes), mfi_free(bbuf, bbytes);
  return true;
}

/* ---------------------------------------------------------------- drivers */

void mfi_packed_b_free(mfi_packed_b *pb)
{
  if (pb && pb->p) mfi_free(pb->p, pb->bytes ? pb->bytes : 1);
  if (pb) pb->p = NULL;
}

/* A block through OpenBLAS when the kernel's buffers are out of reach. */
static void block_blas(const job *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
  if (m1 <= m0 || n1 <= n0) return;
  const float *a = g->ta ? g->a + m0 : g->a + m0 * g->lda;
  const float *b = g->tb ? g->b + n0 * g->ldb : g->b + n0;
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
              (int)(m1 - m0), (int)(n1 - n0), (int)g->k, 1.0f, a, (int)g->lda, b, (int)g->ldb,
              g->beta, g->c + m0 * g->ldc + n0, (int)g->ldc);
}

static void block(const job *g, int64_t m0, int64_t m1, int64_t p0, int64_t p1)
{
  int64_t nr = kern.nr;
  if (m1 > m0 && p1 > p0 && !run_block(g, m0, m1, p0, p1))
    block_blas(g, m0, m1, p0 * nr, g->n < p1 * nr ? g->n : p1 * nr);
}

typedef struct {
  const job *g;
  bool by_rows;
} split;

static void part(void *ctx, int i, int n)
{
  const split *s = ctx;
  const job *g = s->g;
  int64_t panels = (g->n + kern.nr - 1) / kern.nr;
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
  if (!mfi_sgemm_available()) { /* callers check first; this keeps a stray call safe */
    block_blas(&g, 0, m, 0, n);
    return;
  }
  /* Below a few MFLOP a second thread's wakeup costs more than it saves. */
  double flops = 2.0 * (double)m * (double)n * (double)k;
  int64_t panels = (n + kern.nr - 1) / kern.nr;
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
  if (!pb->p) { /* a pack that failed: callers check, this keeps a stray call safe */
    block_blas(&g, 0, m, 0, pb->n);
    return;
  }
  block(&g, 0, m, 0, (pb->n + kern.nr - 1) / kern.nr);
}
