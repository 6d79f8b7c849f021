// Array ops: filled values, ranges, transposes, concatenation, splits,
// slices, tiles and their gradients.
#include "kernel.h"

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- helpers

static int64_t dims_prod(const int64_t *dims, int from, int to)
{
  int64_t n = 1;
  for (int i = from; i < to; i++) n *= dims[i];
  return n;
}

static void row_strides(int nd, const int64_t *dims, int64_t *st)
{
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) st[i] = s, s *= dims[i];
}

// New outputs 0..n-1 with the shapes prepare left; none kept on failure.
static bool outs_new(mfi_kctx *k, int n)
{
  for (int i = 0; i < n; i++)
    if (!mfi_out_new(k, i, k->shapes[i].dtype, k->shapes[i].ndim, k->shapes[i].dims)) {
      for (int j = 0; j < i; j++) mf_tensor_delete(k->out[j]), k->out[j] = NULL;
      return false;
    }
  return true;
}

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
  const mfi_meta *m = &k->shapes[0]; // prepare: the attribute's or the shape input's
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

// ---------------------------------------------------------------- block copies

// Concatenation, stacking and splitting move `outer` blocks of `chunk`
// elements each: block o from x + o * xs to y + o * ys. One work item per
// element moved.
template <class T>
MF_GLOBAL void block_copy_kernel(T *y, int64_t ys, const T *x, int64_t xs, int64_t chunk, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t o = i / chunk, e = i % chunk;
    y[o * ys + e] = x[o * xs + e];
  }
}

// y_off and x_off: element offsets of the first block. False after a
// failed launch (the op's error set).
static bool block_copy(mfi_kctx *k, mf_tensor *y, int64_t y_off, int64_t ys, const mf_tensor *x,
                       int64_t x_off, int64_t xs, int64_t outer, int64_t chunk)
{
  int64_t n = outer * chunk;
  if (n == 0) return true;
  with_bytes(y->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(block_copy_kernel<T>, n, k->stream)
    (data<T>(y) + y_off, ys, data<T>(x) + x_off, xs, chunk, n);
  });
  return launched(k);
}

// The output is [outer, sum of the inputs' dims[a] * inner]: input i fills
// its slice of each row.
static void k_concat(mfi_kctx *k)
{
  int n = k->op->nin, a = (int)k->params[0];
  const mfi_meta *om = &k->shapes[0];
  if (n == 1) { // as the CPU: the input itself
    k->out[0] = mf_tensor_retain(k->in[0]);
    return;
  }
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  int64_t outer = dims_prod(om->dims, 0, a), inner = dims_prod(om->dims, a + 1, om->ndim);
  int64_t row = om->dims[a] * inner, at = 0;
  for (int i = 0; i < n; i++) {
    int64_t chunk = k->in[i]->dims[a] * inner;
    if (!block_copy(k, k->out[0], at, row, k->in[i], 0, chunk, outer, chunk)) return;
    at += chunk;
  }
}

// The output is [outer, n, chunk] for inputs [outer, chunk].
static void k_pack(mfi_kctx *k)
{
  int n = k->op->nin, p = (int)k->params[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  const mf_tensor *x = k->in[0];
  int64_t outer = dims_prod(x->dims, 0, p), chunk = dims_prod(x->dims, p, x->ndim);
  for (int i = 0; i < n; i++)
    if (!block_copy(k, k->out[0], i * chunk, n * chunk, k->in[i], 0, chunk, outer, chunk)) return;
}

// The input is [outer, num, chunk]; output i takes [outer, i, chunk].
static void split_even(mfi_kctx *k, int num, int64_t outer, int64_t chunk)
{
  if (!outs_new(k, num)) return;
  for (int i = 0; i < num; i++)
    if (!block_copy(k, k->out[i], 0, chunk, k->in[0], i * chunk, num * chunk, outer, chunk)) return;
}

static void k_unpack(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int a = (int)k->params[0];
  split_even(k, k->op->nout, dims_prod(x->dims, 0, a), dims_prod(x->dims, a + 1, x->ndim));
}

static void k_split(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  int a = (int)k->params[0];
  split_even(k, k->op->nout, dims_prod(x->dims, 0, a), dims_prod(om->dims, a, om->ndim));
}

// ConcatV2's gradient: output i takes its inputs' extent of each row of dy.
static void k_split_like(mfi_kctx *k)
{
  int n = k->op->nin - 1, a = (int)k->params[0];
  if (!outs_new(k, n)) return;
  const mf_tensor *dy = k->in[0];
  int64_t outer = dims_prod(dy->dims, 0, a), inner = dims_prod(dy->dims, a + 1, dy->ndim);
  int64_t row = dy->dims[a] * inner, at = 0;
  for (int i = 0; i < n; i++) {
    int64_t chunk = k->out[i]->dims[a] * inner;
    if (!block_copy(k, k->out[i], 0, chunk, dy, at, row, outer, chunk)) return;
    at += chunk;
  }
}

// ---------------------------------------------------------------- strided reads

// Transpose and Slice read the input with per-dimension strides: Bcast's
// offsets, with input 0's strides permuted (Transpose) or the input's own
// from a start offset (Slice). One work item per output element.
template <class T> MF_GLOBAL void strided_kernel(T *y, const T *x, Bcast b, int64_t base, int64_t n)
{
  MF_FOR(i, n) y[i] = x[base + bcast_offset(b, 0, i)];
}

static void strided_read(mfi_kctx *k, const mf_tensor *x, const Bcast &b, int64_t base)
{
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  with_bytes(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(strided_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(x), b, base, y->numel);
  });
  launched(k);
}

static void k_transpose(mfi_kctx *k)
{
  mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  const int64_t *perm = k->params;
  bool ident = true;
  for (int i = 0; i < om->ndim; i++) ident = ident && perm[i] == i;
  if (ident) { // as the CPU: the input itself
    k->out[0] = mf_tensor_retain(x);
    return;
  }
  if (!mfi_out_new(k, 0, x->dtype, om->ndim, om->dims)) return;
  Bcast b = {};
  int64_t ist[MF_MAX_DIMS];
  row_strides(x->ndim, x->dims, ist);
  b.ndim = om->ndim;
  for (int i = 0; i < om->ndim; i++) b.dims[i] = om->dims[i], b.st[0][i] = ist[perm[i]];
  strided_read(k, x, b, 0);
}

static void k_slice(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  const int64_t *start = k->params;
  if (!mfi_out_new(k, 0, x->dtype, om->ndim, om->dims)) return;
  Bcast b = {};
  int64_t base = 0;
  row_strides(x->ndim, x->dims, b.st[0]);
  b.ndim = om->ndim;
  for (int i = 0; i < om->ndim; i++) b.dims[i] = om->dims[i], base += start[i] * b.st[0][i];
  strided_read(k, x, b, base);
}

// Slice's gradient: x's shape, dy where the slice came from, zeros elsewhere.
struct Placement {
  int ndim;
  int64_t dims[MF_MAX_DIMS], start[MF_MAX_DIMS], size[MF_MAX_DIMS]; // output, slice, dy
};

// One work item per output element: zero (all bits, as the CPU's memset)
// unless inside the slice.
template <class T> MF_GLOBAL void slice_grad_kernel(T *y, const T *dy, Placement p, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t rest = i, src = 0, scale = 1;
    bool inside = true;
    for (int d = p.ndim - 1; d >= 0; d--) {
      int64_t c = rest % p.dims[d] - p.start[d];
      rest /= p.dims[d];
      inside = inside && c >= 0 && c < p.size[d];
      src += c * scale;
      scale *= p.size[d];
    }
    y[i] = inside ? dy[src] : T(0);
  }
}

static void k_slice_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  Placement p = {};
  p.ndim = om->ndim;
  for (int d = 0; d < om->ndim; d++)
    p.dims[d] = om->dims[d], p.start[d] = k->params[d], p.size[d] = dy->dims[d];
  with_bytes(y->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(slice_grad_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(dy), p, y->numel);
  });
  launched(k);
}

// ---------------------------------------------------------------- tiles

// Output coordinate c reads the input at c mod the input's dims.
struct Tiling {
  int ndim;
  int64_t dims[MF_MAX_DIMS], xdims[MF_MAX_DIMS], xst[MF_MAX_DIMS]; // output, input, input strides
};

template <class T> MF_GLOBAL void tile_kernel(T *y, const T *x, Tiling t, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t rest = i, off = 0;
    for (int d = t.ndim - 1; d >= 0; d--) {
      off += (rest % t.dims[d] % t.xdims[d]) * t.xst[d];
      rest /= t.dims[d];
    }
    y[i] = x[off];
  }
}

static void k_tile(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, x->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return; // also the only case with an input dim of 0
  Tiling t = {};
  t.ndim = x->ndim;
  row_strides(x->ndim, x->dims, t.xst);
  for (int d = 0; d < x->ndim; d++) t.dims[d] = om->dims[d], t.xdims[d] = x->dims[d];
  with_bytes(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(tile_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(x), t, y->numel);
  });
  launched(k);
}

// TileGrad sums as the CPU's sum kernels do: floats in double, integers in
// 64 bits that wrap.
template <class T> struct SumType {
  using type = uint64_t;
};
template <> struct SumType<float> {
  using type = double;
};
template <> struct SumType<double> {
  using type = double;
};

// dy seen as [m1, x1, m2, x2, ...]: output element c sums dy over the tile
// indices, in row-major order as the CPU adds them.
struct TileSum {
  int ndim;
  int64_t xdims[MF_MAX_DIMS], mult[MF_MAX_DIMS], dyst[MF_MAX_DIMS]; // x, multiples, dy strides
  int64_t tiles;                                                    // product of the multiples
};

template <class T> MF_GLOBAL void tile_grad_kernel(T *y, const T *dy, TileSum s, int64_t n)
{
  using A = typename SumType<T>::type;
  MF_FOR(i, n)
  {
    int64_t rest = i, base = 0;
    for (int d = s.ndim - 1; d >= 0; d--) {
      base += rest % s.xdims[d] * s.dyst[d];
      rest /= s.xdims[d];
    }
    A acc = 0;
    for (int64_t t = 0; t < s.tiles; t++) {
      int64_t r = t, off = base;
      for (int d = s.ndim - 1; d >= 0; d--) {
        off += r % s.mult[d] * s.xdims[d] * s.dyst[d];
        r /= s.mult[d];
      }
      acc += (A)dy[off];
    }
    y[i] = (T)acc;
  }
}

static void k_tile_grad(mfi_kctx *k)
{
  mf_tensor *dy = k->in[0];
  const mf_tensor *x = k->in[1];
  const int64_t *m = k->params;
  if (dy->numel == x->numel && x->numel > 0) { // all multiples 1: as the CPU, a view of dy
    mf_status tmp;
    mfi_clear(&tmp);
    k->out[0] = mf_tensor_reshape(dy, x->ndim, x->dims, &tmp);
    if (!k->out[0]) mfi_op_error(k->status, mf_status_code(&tmp), k->op, "%s", tmp.msg);
    return;
  }
  if (!mfi_out_new(k, 0, dy->dtype, x->ndim, x->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  TileSum s = {};
  s.ndim = x->ndim;
  s.tiles = 1;
  row_strides(dy->ndim, dy->dims, s.dyst);
  for (int d = 0; d < x->ndim; d++) s.xdims[d] = x->dims[d], s.mult[d] = m[d], s.tiles *= m[d];
  with_type(dy->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(tile_grad_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(dy), s, y->numel);
  });
  launched(k);
}

extern const mfi_kernel_reg array_kernels[] = {{"Fill", k_fill},
                                               {"ZerosLike", k_zeros_like},
                                               {"OnesLike", k_ones_like},
                                               {"Range", k_range},
                                               {"Transpose", k_transpose},
                                               {"ConcatV2", k_concat},
                                               {"Pack", k_pack},
                                               {"Unpack", k_unpack},
                                               {"Split", k_split},
                                               {"Slice", k_slice},
                                               {"Tile", k_tile},
                                               {"SplitLike", k_split_like},
                                               {"SliceGrad", k_slice_grad},
                                               {"TileGrad", k_tile_grad},
                                               {NULL, NULL}};

} // namespace MF_CUDA_NS
