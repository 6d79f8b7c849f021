/* float32 GEMM (csrc/sgemm.c, and mfi_gemm's dispatch to it or to OpenBLAS)
 * against a float64 triple loop, on shapes around every blocking edge:
 * tile heights, 16- and 32-column panels, the 256-deep K blocks, transposes,
 * betas, padded leading dimensions, k = 0; and the intra-op thread team it
 * runs on. ctest runs it three times: with the best kernel for the CPU, with
 * MOONFLOW_GEMM=avx2 (the AVX2 kernel) and MOONFLOW_GEMM=blas (OpenBLAS). */
#include "../../csrc/internal.h"
#include "check.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float uniform(void) /* in [-1, 1) */
{
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) * (1.0 / (1 << 23)) - 1.0);
}

typedef enum { VIA_GEMM, VIA_SGEMM, VIA_PACKED } path;

/* One product on random data; returns the worst error over the bound
 * 1e-5 * (sum |a b| + |beta c|) per element (> 1 is a failure). Columns of
 * C's padding must stay as they were, and with beta 0, C's NaNs must not
 * leak in (BLAS does not read C then). */
static double trial(path via, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float beta)
{
  int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 5;
  int64_t ar = ta ? k : m, br = tb ? n : k;
  float *a = malloc(sizeof(float) * (size_t)(ar * lda)),
        *b = malloc(sizeof(float) * (size_t)(br * ldb));
  float *c = malloc(sizeof(float) * (size_t)(m * ldc)),
        *c0 = malloc(sizeof(float) * (size_t)(m * ldc));
  for (int64_t i = 0; i < ar * lda; i++) a[i] = uniform();
  for (int64_t i = 0; i < br * ldb; i++) b[i] = uniform();
  for (int64_t i = 0; i < m * ldc; i++) c[i] = c0[i] = beta == 0 ? NAN : uniform();
  mfi_packed_b pb;
  switch (via) {
  case VIA_GEMM: mfi_gemm(MF_FLOAT32, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc); break;
  case VIA_SGEMM: mfi_sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc); break;
  case VIA_PACKED:
    CHECK(mfi_pack_b(&pb, tb, k, n, b, ldb));
    mfi_sgemm_packed(ta, m, a, lda, &pb, beta, c, ldc);
    mfi_packed_b_free(&pb);
    break;
  }
  double worst = 0;
  for (int64_t i = 0; i < m; i++) {
    for (int64_t j = 0; j < n; j++) {
      double s = beta == 0 ? 0 : (double)beta * c0[i * ldc + j], bound = fabs(s);
      for (int64_t p = 0; p < k; p++) {
        double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += x * y, bound += fabs(x * y);
      }
      double e = fabs(s - c[i * ldc + j]) / (1e-5 * bound + 1e-30);
      if (!(e <= worst)) worst = e; /* NaN counts as the worst */
    }
    for (int64_t j = n; j < ldc; j++)
      if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) != 0) worst = INFINITY;
  }
  free(a), free(b), free(c), free(c0);
  return worst;
}

/* Every element is one FMA chain over k in the same blocks whatever the
 * split (by rows or by panels) and the tile heights: results are bitwise
 * the same for 1 to 4 parts. */
static void same_bits_for_any_split(void)
{
  static const int64_t shapes[][3] = {{700, 96, 300}, {40, 700, 300}, {333, 333, 520}};
  for (int s = 0; s < 3; s++) {
    int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    float *a = malloc(sizeof(float) * (size_t)(m * k)),
          *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c1 = malloc(sizeof(float) * (size_t)(m * n)),
          *c = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) a[i] = uniform();
    for (int64_t i = 0; i < k * n; i++) b[i] = uniform();
    for (int parts = 1; parts <= 4; parts++) {
      mfi_parallel_set_threads(parts);
      mfi_sgemm(false, false, m, n, k, a, k, b, n, 0, parts == 1 ? c1 : c, n);
      if (parts > 1) CHECK(memcmp(c, c1, sizeof(float) * (size_t)(m * n)) == 0);
    }
    free(a), free(b), free(c1), free(c);
  }
  mfi_parallel_set_threads(2);
}

static void sweep(path via, const char *label)
{
  static const int64_t ms[] = {1, 2, 5, 12, 13, 25, 50, 121, 250};
  static const int64_t ns[] = {1, 15, 16, 17, 32, 33, 65, 130};
  static const int64_t ks[] = {0, 1, 7, 64, 255, 256, 257, 600};
  static const float betas[] = {0, 1, 0.5f};
  int nm = sizeof ms / sizeof *ms, nn = sizeof ns / sizeof *ns, nk = sizeof ks / sizeof *ks;
  double worst = 0;
  int n = 0;
  for (int t = 0; t < 4; t++)
    for (int i = 0; i < nm; i++)
      for (int j = 0; j < nn; j++)
        for (int l = 0; l < nk; l++, n++) {
          bool ta = t & 1, tb = t & 2;
          float beta = betas[(i + j + l) % 3];
          double e = trial(via, ta, tb, ms[i], ns[j], ks[l], beta);
          if (!(e <= 1)) {
            fprintf(stderr, "%s: ta %d tb %d m %lld n %lld k %lld beta %g: error %.3g of bound\n",
                    label, ta, tb, (long long)ms[i], (long long)ns[j], (long long)ks[l], beta, e);
            CHECK(e <= 1);
          }
          if (e > worst) worst = e;
        }
  fprintf(stderr, "%s: %d products, worst error %.3g of the bound\n", label, n, worst);
}

/* ---------------------------------------------------------------- thread team */

typedef struct {
  int hits[64];
  int nparts;
} cover;

static void mark(void *ctx, int i, int n)
{
  cover *c = ctx;
  __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
  __atomic_store_n(&c->nparts, n, __ATOMIC_RELAXED);
}

/* Each part runs once, and a region started inside a part runs inline. */
static void nested(void *ctx, int i, int n)
{
  (void)i, (void)n;
  cover inner = {{0}, 0};
  mfi_parallel(4, mark, &inner);
  CHECK(inner.nparts == 1 && inner.hits[0] == 1);
  __atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED);
}

static void *hammer(void *arg)
{
  (void)arg;
  for (int r = 0; r < 2000; r++) {
    cover c = {{0}, 0};
    mfi_parallel(3, mark, &c);
    for (int i = 0; i < c.nparts; i++) CHECK(c.hits[i] == 1);
    for (int i = c.nparts; i < 64; i++) CHECK(c.hits[i] == 0);
  }
  return NULL;
}

static void test_team(void)
{
  mfi_parallel_set_threads(3);
  CHECK(mfi_parallel_threads() == 3);
  cover c = {{0}, 0};
  mfi_parallel(8, mark, &c);
  CHECK(c.nparts >= 1 && c.nparts <= 3);
  for (int i = 0; i < c.nparts; i++) CHECK(c.hits[i] == 1);
  int outer = 0;
  mfi_parallel(2, nested, &outer);
  CHECK(outer >= 1 && outer <= 2);
  /* Two host threads racing for the team: one gets it, the other runs inline. */
  pthread_t t1, t2;
  pthread_create(&t1, NULL, hammer, NULL);
  pthread_create(&t2, NULL, hammer, NULL);
  pthread_join(t1, NULL), pthread_join(t2, NULL);
  /* A forked child has no workers: it must start its own, not wait forever
   * for its parent's (alarm: a hang fails the test instead of stalling it). */
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    cover cc = {{0}, 0};
    mfi_parallel(3, mark, &cc);
    bool ok = cc.nparts >= 1;
    for (int i = 0; i < cc.nparts; i++) ok = ok && cc.hits[i] == 1;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
  const char *want = getenv("MOONFLOW_GEMM");
  fprintf(stderr, "float32 GEMM kernel: %s\n", mf_cpu_gemm_kernel());
  if (want && strcmp(want, "blas") == 0) CHECK(strcmp(mf_cpu_gemm_kernel(), "openblas") == 0);
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (want && strcmp(want, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    CHECK(strcmp(mf_cpu_gemm_kernel(), "avx2") == 0);
#endif
  test_team();
  sweep(VIA_GEMM, "mfi_gemm, 3 threads");
  if (mfi_sgemm_available()) {
    sweep(VIA_SGEMM, "mfi_sgemm, 3 threads");
    sweep(VIA_PACKED, "mfi_sgemm_packed");
    mfi_parallel_set_threads(2);
    sweep(VIA_SGEMM, "mfi_sgemm, 2 threads");
    /* A product large enough to be split, both ways. */
    CHECK(trial(VIA_SGEMM, false, false, 700, 96, 300, 0) <= 1);
    CHECK(trial(VIA_SGEMM, true, true, 40, 700, 300, 1) <= 1);
    same_bits_for_any_split();
  } else {
    fprintf(stderr, "no kernel of our own in use (no AVX2/AVX-512, or MOONFLOW_GEMM=blas): "
                    "mfi_gemm's OpenBLAS path checked only\n");
  }
  return check_report("test_gemm");
}
