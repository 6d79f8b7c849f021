// Matrix products: float32 / float64 through cuBLAS (one strided-batched
// call when the batch dimensions allow it), integers in a kernel. On the
// host compilation the same entry point goes to the core's mfi_gemm.
#include "kernel.h"
#ifndef MF_CUDA_EMULATE
#include "cuda.h"
#endif

namespace MF_CUDA_NS {

#ifdef MF_CUDA_EMULATE
bool gemm(mfi_kctx *k, mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t kk,
          const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb, int64_t sb,
          double beta, void *c, int64_t ldc, int64_t sc, int64_t batch)
{
  (void)k;
  size_t es = mf_dtype_size(dt);
  for (int64_t t = 0; t < batch; t++)
    mfi_gemm(dt, ta, tb, m, n, kk, (const char *)a + t * sa * (int64_t)es, lda,
             (const char *)b + t * sb * (int64_t)es, ldb, beta, (char *)c + t * sc * (int64_t)es,
             ldc);
  return true;
}
#else
static bool blas_ok(mfi_kctx *k, cublasStatus_t st)
{
  if (st == CUBLAS_STATUS_SUCCESS) return true;
  mfi_op_error(k->status, st == CUBLAS_STATUS_ALLOC_FAILED ? MF_RESOURCE_EXHAUSTED : MF_INTERNAL,
               k->op, "cuBLAS failed on %s: %s", k->dev->name, cublasGetStatusString(st));
  return false;
}

// C = beta C over `batch` matrices: the product with an empty inner
// dimension (cuBLAS refuses its zero leading dimensions).
template <class F>
MF_GLOBAL void scale_kernel(F *c, double beta, int64_t m, int64_t n, int64_t ldc, int64_t sc,
                            int64_t total)
{
  MF_FOR(i, total)
  {
    F *p = c + i / (m * n) * sc + i % (m * n) / n * ldc + i % n;
    *p = beta == 0 ? F(0) : (F)(beta * *p);
  }
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS
// gets B first, with the dimensions swapped.
bool gemm(mfi_kctx *k, mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t kk,
          const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb, int64_t sb,
          double beta, void *c, int64_t ldc, int64_t sc, int64_t batch)
{
  if (m == 0 || n == 0 || batch == 0) return true;
  if (kk == 0) {
    if (beta != 1)
      with_float(dt, [&](auto z) {
        using F = decltype(z);
        MF_LAUNCH(scale_kernel<F>, batch * m * n, k->stream)
        ((F *)c, beta, m, n, ldc, sc, batch * m * n);
      });
    return launched(k);
  }
  if (m > INT32_MAX || n > INT32_MAX || kk > INT32_MAX || lda > INT32_MAX || ldb > INT32_MAX ||
      ldc > INT32_MAX || batch > INT32_MAX) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "matrix dimensions beyond cuBLAS's 32-bit sizes");
    return false;
  }
  cublasHandle_t h = mf_cuda_blas(k);
  if (!h) return false;
  cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  int M = (int)m, N = (int)n, K = (int)kk;
  if (dt == MF_FLOAT32) {
    float one = 1, bf = (float)beta;
    if (batch == 1)
      return blas_ok(k, cublasSgemm(h, ob, oa, N, M, K, &one, (const float *)b, (int)ldb,
                                    (const float *)a, (int)lda, &bf, (float *)c, (int)ldc));
    return blas_ok(k, cublasSgemmStridedBatched(h, ob, oa, N, M, K, &one, (const float *)b,
                                                (int)ldb, sb, (const float *)a, (int)lda, sa, &bf,
                                                (float *)c, (int)ldc, sc, (int)batch));
  }
  double one = 1;
  if (batch == 1)
    return blas_ok(k, cublasDgemm(h, ob, oa, N, M, K, &one, (const double *)b, (int)ldb,
                                  (const double *)a, (int)lda, &beta, (double *)c, (int)ldc));
  return blas_ok(k, cublasDgemmStridedBatched(h, ob, oa, N, M, K, &one, (const double *)b, (int)ldb,
                                              sb, (const double *)a, (int)lda, sa, &beta,
                                              (double *)c, (int)ldc, sc, (int)batch));
}
#endif

// Integer products: one work item per element of C, wrapping as the CPU's
// loop does (unsigned arithmetic).
template <class T>
MF_GLOBAL void int_gemm_kernel(const T *a, const T *b, T *c, bool ta, bool tb, int64_t m, int64_t n,
                               int64_t kk, const int64_t *aoff, const int64_t *boff, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t t = i / (m * n), r = i % (m * n) / n, j = i % n;
    const T *ap = a + aoff[t], *bp = b + boff[t];
    uint64_t s = 0;
    for (int64_t p = 0; p < kk; p++)
      s += (uint64_t)(int64_t)ap[ta ? p * m + r : r * kk + p] *
           (uint64_t)(int64_t)bp[tb ? j * kk + p : p * n + j];
    c[i] = (T)(int64_t)s;
  }
}

static void k_matmul(mfi_kctx *k)
{
  const mf_tensor *a = k->in[0], *b = k->in[1];
  bool ta = mfi_attr_bool(k->op, "transpose_a", false),
       tb = mfi_attr_bool(k->op, "transpose_b", false);
  int on = k->shapes[0].ndim;
  const int64_t *od = k->shapes[0].dims;
  if (!mfi_out_new(k, 0, a->dtype, on, od)) return;
  int64_t m = od[on - 2], n = od[on - 1], kk = a->dims[a->ndim - (ta ? 2 : 1)];
  int64_t batch = mfi_numel(on - 2, od), asz = m * kk, bsz = kk * n;
  if (m * n == 0 || batch == 0) return;
  // Each output matrix's operands (element offsets), as the CPU walks them.
  int64_t ast[MF_MAX_DIMS], bst[MF_MAX_DIMS], idx[MF_MAX_DIMS] = {0};
  mfi_bcast_strides(on - 2, od, a->ndim - 2, a->dims, ast);
  mfi_bcast_strides(on - 2, od, b->ndim - 2, b->dims, bst);
  size_t offs_bytes = 2 * (size_t)batch * sizeof(int64_t);
  int64_t *offs = (int64_t *)mfi_alloc(offs_bytes);
  if (!offs) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of host memory");
    return;
  }
  for (int64_t t = 0; t < batch; t++) {
    int64_t ao = 0, bo = 0;
    for (int d = 0; d < on - 2; d++) ao += idx[d] * ast[d] * asz, bo += idx[d] * bst[d] * bsz;
    offs[t] = ao, offs[batch + t] = bo;
    for (int d = on - 3; d >= 0; d--) {
      if (++idx[d] < od[d]) break;
      idx[d] = 0;
    }
  }
  const char *ap = (const char *)mfi_data(a), *bp = (const char *)mfi_data(b);
  char *cp = (char *)mfi_data(k->out[0]);
  size_t es = mf_dtype_size(a->dtype);
  if (mfi_is_float(a->dtype)) {
    // Offsets that step evenly (a plain batch, or one operand shared) make
    // one strided-batched call; other broadcasts one call per matrix.
    int64_t sa = batch > 1 ? offs[1] - offs[0] : 0,
            sb = batch > 1 ? offs[batch + 1] - offs[batch] : 0;
    bool even = true;
    for (int64_t t = 1; t < batch && even; t++)
      even = offs[t] - offs[t - 1] == sa && offs[batch + t] - offs[batch + t - 1] == sb;
    if (even)
      gemm(k, a->dtype, ta, tb, m, n, kk, ap, ta ? m : kk, sa, bp, tb ? kk : n, sb, 0, cp, n, m * n,
           batch);
    else
      for (int64_t t = 0; t < batch && mfi_ok(k->status); t++)
        gemm(k, a->dtype, ta, tb, m, n, kk, ap + offs[t] * (int64_t)es, ta ? m : kk, 0,
             bp + offs[batch + t] * (int64_t)es, tb ? kk : n, 0, 0, cp + t * m * n * (int64_t)es, n,
             0, 1);
  } else {
    int64_t *doffs = (int64_t *)mfi_scratch(k, offs_bytes);
    if (doffs && from_host(k, doffs, offs, offs_bytes)) {
      int64_t total = batch * m * n;
      with_type(a->dtype, [&](auto z) {
        using T = decltype(z);
        MF_LAUNCH(int_gemm_kernel<T>, total, k->stream)
        (data<T>(a), data<T>(b), data<T>(k->out[0]), ta, tb, m, n, kk, doffs, doffs + batch, total);
      });
      launched(k);
    }
  }
  mfi_free(offs, offs_bytes);
}

extern const mfi_kernel_reg matmul_kernels[] = {{"MatMul", k_matmul}, {NULL, NULL}};

} // namespace MF_CUDA_NS
