// Softmax, log-softmax, the cross-entropies, relu.
//
// The row ops work along the last axis, one contiguous row per work item,
// as the CPU: the row's max first (so exp never overflows: the largest term
// is exp(0) = 1), then the exponentials, summed in double, then the
// normalisation. float32 exponentials are taken in float, as the CPU's.
// Inputs are float32 or float64 (inference refused the rest).
#include "kernel.h"

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- Relu

// NaN passes through, as in TensorFlow.
template <class T> MF_GLOBAL void relu_kernel(const T *x, T *y, int64_t n)
{
  MF_FOR(i, n) y[i] = x[i] < 0 ? (T)0 : x[i];
}

template <class T> MF_GLOBAL void relu_grad_kernel(const T *dy, const T *x, T *y, int64_t n)
{
  MF_FOR(i, n) y[i] = x[i] > 0 ? dy[i] : (T)0;
}

static void k_relu(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!out_like(k, 0, x) || x->numel == 0) return;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(relu_kernel<T>, x->numel, k->stream)(data<T>(x), data<T>(k->out[0]), x->numel);
  });
  launched(k);
}

// ReluGrad(dy, x): prepare checked that the shapes agree.
static void k_relu_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *x = k->in[1];
  if (!out_like(k, 0, dy) || x->numel == 0) return;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(relu_grad_kernel<T>, x->numel, k->stream)
    (data<T>(dy), data<T>(x), data<T>(k->out[0]), x->numel);
  });
  launched(k);
}

// ---------------------------------------------------------------- row helpers

MF_DEVICE float exp_of(float v) { return expf(v); }
MF_DEVICE double exp_of(double v) { return exp(v); }

// The row's max; NaNs are passed over, as the CPU's.
template <class T> MF_DEVICE T row_max(const T *x, int64_t n)
{
  T m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// y = exp(x - m) for the row; returns their sum, in double.
template <class T> MF_DEVICE double exp_shifted(const T *x, T m, T *y, int64_t n)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    T e = exp_of(x[i] - m);
    y[i] = e;
    s += e;
  }
  return s;
}

// y = softmax(x) for one row; returns log(sum exp(x - m)) and sets *m, for
// the losses.
template <class T> MF_DEVICE double softmax_row(const T *x, T *y, int64_t n, T *m)
{
  *m = row_max(x, n);
  double s = exp_shifted(x, *m, y, n);
  T r = (T)(1.0 / s);
  for (int64_t i = 0; i < n; i++) y[i] *= r;
  return log(s);
}

// ---------------------------------------------------------------- Softmax, LogSoftmax

// Work item r: row r of n.
template <class T> MF_GLOBAL void softmax_kernel(const T *x, T *y, int64_t n, int64_t rows)
{
  MF_FOR(r, rows)
  {
    T m;
    softmax_row(x + r * n, y + r * n, n, &m);
  }
}

template <class T> MF_GLOBAL void log_softmax_kernel(const T *x, T *y, int64_t n, int64_t rows)
{
  MF_FOR(r, rows)
  {
    const T *xr = x + r * n;
    T *yr = y + r * n, m = row_max(xr, n);
    T l = (T)log(exp_shifted(xr, m, yr, n));
    for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - m) - l;
  }
}

// prepare refused scalars.
template <bool LOG> static void k_softmax(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!out_like(k, 0, x)) return;
  int64_t n = x->dims[x->ndim - 1], rows = n ? x->numel / n : 0;
  if (rows == 0) return;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    if (LOG)
      MF_LAUNCH(log_softmax_kernel<T>, rows, k->stream)(data<T>(x), data<T>(k->out[0]), n, rows);
    else
      MF_LAUNCH(softmax_kernel<T>, rows, k->stream)(data<T>(x), data<T>(k->out[0]), n, rows);
  });
  launched(k);
}

// ---------------------------------------------------------------- the cross-entropies

// Outputs 0 (the loss: the logits' shape without its last dim) and 1 (the
// backprop: the logits' shape); false, with neither kept, when one cannot
// be had.
static bool xent_outputs(mfi_kctx *k, const mf_tensor *x)
{
  if (!mfi_out_new(k, 0, x->dtype, x->ndim - 1, x->dims)) return false;
  if (mfi_out_new(k, 1, x->dtype, x->ndim, x->dims)) return true;
  mf_tensor_delete(k->out[0]);
  k->out[0] = NULL;
  return false;
}

// Work item r: row r. loss = sum(labels * (log(sum exp(x - m)) - (x - m))),
// finite for any finite logits; a zero label adds nothing, even where the
// log-probability is -inf. backprop = softmax - labels.
template <class T>
MF_GLOBAL void xent_kernel(const T *x, const T *lab, T *loss, T *bp, int64_t n, int64_t rows)
{
  MF_FOR(r, rows)
  {
    const T *xr = x + r * n, *lr = lab + r * n;
    T *br = bp + r * n, m;
    double ls = softmax_row(xr, br, n, &m), acc = 0;
    for (int64_t i = 0; i < n; i++) {
      if (lr[i] != 0) acc += (double)lr[i] * (ls - (double)(T)(xr[i] - m));
      br[i] -= lr[i];
    }
    loss[r] = (T)acc;
  }
}

// SoftmaxCrossEntropyWithLogits(logits, labels): prepare checked the ranks
// and that the shapes agree.
static void k_xent(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *lab = k->in[1];
  if (!xent_outputs(k, x)) return;
  int64_t n = x->dims[x->ndim - 1], rows = k->out[0]->numel;
  if (rows == 0) return;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(xent_kernel<T>, rows, k->stream)
    (data<T>(x), data<T>(lab), data<T>(k->out[0]), data<T>(k->out[1]), n, rows);
  });
  launched(k);
}

// Work item r: row r, whose class is ids[r] (from 0 here).
template <class T>
MF_GLOBAL void sparse_xent_kernel(const T *x, const int64_t *ids, T *loss, T *bp, int64_t n,
                                  int64_t rows)
{
  MF_FOR(r, rows)
  {
    const T *xr = x + r * n;
    T *br = bp + r * n, m;
    int64_t t = ids[r];
    double ls = softmax_row(xr, br, n, &m);
    loss[r] = (T)(ls - (double)(T)(xr[t] - m));
    br[t] -= (T)1;
  }
}

// SparseSoftmaxCrossEntropyWithLogits(logits, labels): the labels, in host
// memory, are class ids 1..classes (prepare checked them and the shapes);
// they go to the device as 0-based int64.
static void k_sparse_xent(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *lab = k->in[1];
  if (!xent_outputs(k, x)) return;
  int64_t n = x->dims[x->ndim - 1], rows = lab->numel;
  if (rows == 0) return;
  size_t bytes = sizeof(int64_t) * (size_t)rows;
  int64_t *dids = (int64_t *)mfi_scratch(k, bytes);
  if (!dids) return;
  int64_t *ids = (int64_t *)mfi_alloc(bytes);
  if (!ids) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of host memory");
    return;
  }
  const void *lv = mfi_data(lab);
  for (int64_t r = 0; r < rows; r++)
    ids[r] = (lab->dtype == MF_INT32 ? ((const int32_t *)lv)[r] : ((const int64_t *)lv)[r]) - 1;
  bool copied = from_host(k, dids, ids, bytes);
  mfi_free(ids, bytes);
  if (!copied) return;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(sparse_xent_kernel<T>, rows, k->stream)
    (data<T>(x), dids, data<T>(k->out[0]), data<T>(k->out[1]), n, rows);
  });
  launched(k);
}

extern const mfi_kernel_reg softmax_kernels[] = {
    {"Relu", k_relu},
    {"ReluGrad", k_relu_grad},
    {"Softmax", k_softmax<false>},
    {"LogSoftmax", k_softmax<true>},
    {"SoftmaxCrossEntropyWithLogits", k_xent},
    {"SparseSoftmaxCrossEntropyWithLogits", k_sparse_xent},
    {NULL, NULL}};

} // namespace MF_CUDA_NS
