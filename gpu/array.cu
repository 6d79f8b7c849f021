// Array ops: filled values, ranges, transposes, concatenation, splits,
// slices, tiles and their gradients.
#include "kernel.h"

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- filled values

template <class T> MF_GLOBAL void fill_kernel(T *y, double v, int64_t n)
{
  MF_FOR(i, n) y[i] = (T)v;
}

template <class T> MF_GLOBAL void range_kernel(T *y, double start, double delta, int64_t n)
{
  MF_FOR(i, n) y[i] = (T)(start + (double)i * delta);
}

static void fill(mfi_kctx *k, mf_tensor *t, double v)
{
  if (t->numel == 0) return;
  with_type(t->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(fill_kernel<T>, t->numel, k->stream)(data<T>(t), v, t->numel);
  });
  launched(k);
}

static void k_fill(mfi_kctx *k)
{
  const mfi_meta *m = &k->op->out[0];
  if (mfi_out_new(k, 0, m->dtype, m->ndim, m->dims))
    fill(k, k->out[0], mfi_attr_float(k->op, "value", 0));
}

static void k_zeros_like(mfi_kctx *k)
{
  if (out_like(k, 0, k->in[0])) fill(k, k->out[0], 0);
}

static void k_ones_like(mfi_kctx *k)
{
  if (out_like(k, 0, k->in[0])) fill(k, k->out[0], 1);
}

static void k_range(mfi_kctx *k)
{
  const mfi_meta *m = &k->op->out[0];
  double start = mfi_attr_float(k->op, "start", 0), delta = mfi_attr_float(k->op, "delta", 1);
  if (!mfi_out_new(k, 0, m->dtype, 1, m->dims) || m->dims[0] == 0) return;
  with_type(m->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(range_kernel<T>, m->dims[0], k->stream)(data<T>(k->out[0]), start, delta, m->dims[0]);
  });
  launched(k);
}

extern const mfi_kernel_reg array_kernels[] = {{"Fill", k_fill},
                                               {"ZerosLike", k_zeros_like},
                                               {"OnesLike", k_ones_like},
                                               {"Range", k_range},
                                               {NULL, NULL}};

} // namespace MF_CUDA_NS
