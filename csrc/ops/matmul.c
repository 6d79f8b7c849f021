/* Matrix products, batched over leading dimensions: float32 through
 * moonflow's own GEMM (sgemm.c) where its kernels run, float64 and the rest
 * through OpenBLAS (mfi_gemm), integers in a plain loop. */
#include "../internal.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

/* Rows/cols of an operand's last two dims after the optional transpose. */
static void mat_dims(const int64_t *d, int nd, bool tr, int64_t *rows, int64_t *cols)
{
  *rows = d[nd - (tr ? 1 : 2)];
  *cols = d[nd - (tr ? 2 : 1)];
}

/* Output shape: batch dims broadcast between a and b, then {m, n}. */
static bool out_shape(int an, const int64_t *ad, int bn, const int64_t *bd, bool ta, bool tb,
                      int *on, int64_t *od, char *err, size_t errsz)
{
  int64_t m, k1, k2, n;
  mat_dims(ad, an, ta, &m, &k1);
  mat_dims(bd, bn, tb, &k2, &n);
  if (k1 >= 0 && k2 >= 0 && k1 != k2) {
    snprintf(err, errsz, "inner dimensions differ: %lld (a%s) and %lld (b%s)", (long long)k1,
             ta ? ", transposed" : "", (long long)k2, tb ? ", transposed" : "");
    return false;
  }
  if (!mfi_broadcast_shape(an - 2, ad, bn - 2, bd, on, od)) {
    snprintf(err, errsz, "batch dimensions do not broadcast");
    return false;
  }
  od[*on] = m;
  od[*on + 1] = n;
  *on += 2;
  return true;
}

static void infer_matmul(mfi_infer_ctx *c)
{
  const mfi_meta *a = &c->in[0], *b = &c->in[1];
  bool ta, tb;
  if (!mfi_check_bool(c, "transpose_a", false, false, &ta) ||
      !mfi_check_bool(c, "transpose_b", false, false, &tb))
    return;
  if (a->dtype != b->dtype || a->dtype == MF_BOOL) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs two numeric inputs of one dtype, got %s and %s",
                    mf_dtype_name(a->dtype), mf_dtype_name(b->dtype));
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  mfi_meta *o = &c->op->out[0];
  o->dtype = a->dtype;
  if (a->ndim < 0 || b->ndim < 0) {
    o->ndim = -1;
    return;
  }
  if (a->ndim < 2 || b->ndim < 2) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs inputs of rank 2 or more, got ranks %d and %d",
                    a->ndim, b->ndim);
    return;
  }
  char err[256];
  if (!out_shape(a->ndim, a->dims, b->ndim, b->dims, ta, tb, &o->ndim, o->dims, err, sizeof err)) {
    char x[128], y[128];
    mfi_shape_str(a->ndim, a->dims, x, sizeof x);
    mfi_shape_str(b->ndim, b->dims, y, sizeof y);
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot multiply %s by %s: %s", x, y, err);
  }
}

void mfi_gemm(mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
              int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
  if (m == 0 || n == 0) return;
  size_t es = mf_dtype_size(dt);
  if (k == 0) { /* C = beta C; not read when beta is 0 */
    for (int64_t i = 0; i < m; i++) {
      char *row = (char *)c + i * ldc * es;
      if (beta == 0)
        memset(row, 0, (size_t)n * es);
      else if (beta != 1)
        for (int64_t j = 0; j < n; j++) mfi_set_f(dt, row, j, beta * mfi_get_f(dt, row, j));
    }
    return;
  }
  bool f = dt == MF_FLOAT32;
  if (f && m > 1 && mfi_sgemm_available()) {
    mfi_sgemm(ta, tb, m, n, k, a, lda, b, ldb, (float)beta, c, ldc);
    return;
  }
  if (m == 1) { /* c[1, n] = a-row . op(B): op(B)^T a with a's elements lda apart when ta */
    int inc = ta ? (int)lda : 1;
    CBLAS_TRANSPOSE t = tb ? CblasNoTrans : CblasTrans;
    int rows = tb ? (int)n : (int)k, cols = tb ? (int)k : (int)n;
    if (f)
      cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, b, (int)ldb, a, inc, (float)beta, c, 1);
    else
      cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, b, (int)ldb, a, inc, beta, c, 1);
    return;
  }
  CBLAS_TRANSPOSE x = ta ? CblasTrans : CblasNoTrans, y = tb ? CblasTrans : CblasNoTrans;
  if (f)
    cblas_sgemm(CblasRowMajor, x, y, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, x, y, (int)m, (int)n, (int)k, 1.0, a, (int)lda, b, (int)ldb, beta, c,
                (int)ldc);
}

/* Integer product: a plain triple loop (no BLAS for integers). */
static void gemm_int(mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
                     int64_t ao, const void *b, int64_t bo, void *c, int64_t co)
{
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      uint64_t s = 0;
      for (int64_t p = 0; p < k; p++) {
        int64_t x = mfi_get_i(dt, a, ao + (ta ? p * m + i : i * k + p));
        int64_t y = mfi_get_i(dt, b, bo + (tb ? j * k + p : p * n + j));
        s += (uint64_t)x * (uint64_t)y;
      }
      mfi_set_i(dt, c, co + i * n + j, (int64_t)s);
    }
}

/* The output shape, with the inner dimensions checked. */
static void prepare_matmul(mfi_kctx *k)
{
  const mf_tensor *a = k->in[0], *b = k->in[1];
  bool ta = mfi_attr_bool(k->op, "transpose_a", false);
  bool tb = mfi_attr_bool(k->op, "transpose_b", false);
  mfi_meta *o = &k->shapes[0];
  char err[256];
  o->dtype = a->dtype;
  if (a->ndim < 2 || b->ndim < 2 ||
      !out_shape(a->ndim, a->dims, b->ndim, b->dims, ta, tb, &o->ndim, o->dims, err, sizeof err)) {
    char x[128], y[128];
    mfi_shape_str(a->ndim, a->dims, x, sizeof x);
    mfi_shape_str(b->ndim, b->dims, y, sizeof y);
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "cannot multiply %s by %s", x, y);
  }
}

static void cpu_matmul(mfi_kctx *k)
{
  const mf_tensor *a = k->in[0], *b = k->in[1];
  bool ta = mfi_attr_bool(k->op, "transpose_a", false),
       tb = mfi_attr_bool(k->op, "transpose_b", false);
  int on = k->shapes[0].ndim;
  const int64_t *od = k->shapes[0].dims;
  if (!mfi_out_new(k, 0, a->dtype, on, od)) return;
  int64_t m = od[on - 2], n = od[on - 1], kk = a->dims[a->ndim - (ta ? 2 : 1)];
  int64_t batch = mfi_numel(on - 2, od), asz = m * kk, bsz = kk * n;
  int64_t ast[MF_MAX_DIMS], bst[MF_MAX_DIMS], idx[MF_MAX_DIMS] = {0};
  mfi_bcast_strides(on - 2, od, a->ndim - 2, a->dims, ast);
  mfi_bcast_strides(on - 2, od, b->ndim - 2, b->dims, bst);
  const char *ap = mfi_data(a), *bp = mfi_data(b);
  char *cp = mfi_data(k->out[0]);
  size_t es = mf_dtype_size(a->dtype);
  if (m * n == 0) return;
  for (int64_t t = 0; t < batch; t++) {
    int64_t ao = 0, bo = 0;
    for (int d = 0; d < on - 2; d++) ao += idx[d] * ast[d] * asz, bo += idx[d] * bst[d] * bsz;
    int64_t co = t * m * n;
    if (mfi_is_float(a->dtype)) {
      mfi_gemm(a->dtype, ta, tb, m, n, kk, ap + ao * (int64_t)es, ta ? m : kk,
               bp + bo * (int64_t)es, tb ? kk : n, 0, cp + co * (int64_t)es, n);
    } else {
      gemm_int(a->dtype, ta, tb, m, n, kk, ap, ao, bp, bo, cp, co);
    }
    for (int d = on - 3; d >= 0; d--) {
      if (++idx[d] < od[d]) break;
      idx[d] = 0;
    }
  }
}

/* ---------------------------------------------------------------- gradient */

static mf_output mm(mfi_grad_ctx *g, mf_output a, mf_output b, bool ta, bool tb)
{
  mf_op_desc *d = mfi_gb_begin(g, "MatMul");
  if (d) {
    mf_op_add_input(d, a), mf_op_add_input(d, b);
    mf_op_set_attr_bool(d, "transpose_a", ta), mf_op_set_attr_bool(d, "transpose_b", tb);
  }
  return mfi_gb_finish(g, d, 0);
}

/* C = op(A) op(B): dA and dB for each transpose combination, then summed
 * over broadcast batch dimensions. */
static void grad_matmul(mfi_grad_ctx *g)
{
  mf_output a = g->op->inputs[0], b = g->op->inputs[1], dy = g->dy[0], da, db;
  bool ta = mfi_attr_bool(g->op, "transpose_a", false);
  bool tb = mfi_attr_bool(g->op, "transpose_b", false);
  if (!ta && !tb)
    da = mm(g, dy, b, false, true), db = mm(g, a, dy, true, false);
  else if (!ta && tb)
    da = mm(g, dy, b, false, false), db = mm(g, dy, a, true, false);
  else if (ta && !tb)
    da = mm(g, b, dy, false, true), db = mm(g, a, dy, false, false);
  else
    da = mm(g, b, dy, true, true), db = mm(g, dy, a, true, true);
  g->dx[0] = mfi_gb_reduce_like(g, da, a);
  g->dx[1] = mfi_gb_reduce_like(g, db, b);
}

mfi_opdef mfi_ops_matmul[] = {
    {.type = "MatMul",
     .doc = "Matrix product of a and b (batched over leading dimensions).",
     .inputs = "a, b",
     .outputs = "product",
     .attrs = "transpose_a: bool = false; transpose_b: bool = false",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_matmul,
     .prepare = prepare_matmul,
     .kernel = {[MFI_DEVICE_CPU] = cpu_matmul},
     .grad = grad_matmul},
    {0}};

/* OpenBLAS's own setter; declared here to avoid depending on its header's
 * extensions being visible. */
void openblas_set_num_threads(int n);
void mfi_blas_set_threads(int n)
{
  if (n > 0) openblas_set_num_threads(n);
}
