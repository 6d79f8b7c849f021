// Reductions (sum, mean, max, min, prod, arg-max/min) and the gradient
// helpers that reduce or spread back (SumToShapeOf, ExpandReduced,
// ProdExclusive).
//
// One building block serves them all: a View sees the input as its kept
// dims (the output's, in order) and its reduced dims (any axes, adjacent or
// not), each with its input stride. Output element o folds its R reduced
// elements in row-major order of the reduced dims, the CPU's order, in one
// work item. When the outputs are few and R is large, a first pass folds
// fixed chunks of kChunk elements (one work item per chunk and output) into
// scratch, and a second pass folds each output's chunks in order: the split
// depends on the shape alone, so every run on every GPU gives the same bits.
// Floats accumulate in double and integers in int64 (wrapping), as the CPU.
#include "kernel.h"

namespace MF_CUDA_NS {

enum Kind { SUM, MEAN, MAX, MIN, PROD };

constexpr int64_t kChunk = 1024;       // elements per first-pass work item
constexpr int64_t kFewOutputs = 32768; // fewer outputs than this take two passes

// The dtypes reductions accept: the floats, the integers and uint8.
template <class F> inline void with_numeric(mf_dtype dt, F f)
{
  switch (dt) {
  case MF_FLOAT32: f(float()); break;
  case MF_FLOAT64: f(double()); break;
  case MF_INT32: f(int32_t()); break;
  case MF_INT64: f(int64_t()); break;
  case MF_UINT8: f(uint8_t()); break;
  default: break;
  }
}

// ---------------------------------------------------------------- folds

template <class T> struct AccOf {
  using type = int64_t;
};
template <> struct AccOf<float> {
  using type = double;
};
template <> struct AccOf<double> {
  using type = double;
};

// A reduction's kind K over elements of type T, accumulated in A. One
// template argument, so that launches name kernel<R> without a comma.
template <int K, class T_> struct Red {
  using T = T_;
  using A = typename AccOf<T_>::type;
  static constexpr int kind = K;
};

template <class V> MF_HD bool is_nan(V) { return false; }
MF_HD bool is_nan(float v) { return v != v; }
MF_HD bool is_nan(double v) { return v != v; }

// Integer sums and products wrap through uint64, where overflow is defined.
MF_HD double add(double a, double b) { return a + b; }
MF_HD int64_t add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
MF_HD double mul(double a, double b) { return a * b; }
MF_HD int64_t mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
MF_HD double lowest(double) { return -INFINITY; }
MF_HD int64_t lowest(int64_t) { return INT64_MIN; }
MF_HD double highest(double) { return INFINITY; }
MF_HD int64_t highest(int64_t) { return INT64_MAX; }
// Integer means truncate, as the CPU's; a float mean of nothing is 0/0, NaN.
MF_HD double mean_of(double a, int64_t n) { return a / (double)n; }
MF_HD int64_t mean_of(int64_t a, int64_t n) { return a / n; }

template <class R> MF_HD typename R::A init()
{
  using A = typename R::A;
  if (R::kind == PROD) return (A)1;
  if (R::kind == MAX) return lowest(A());
  if (R::kind == MIN) return highest(A());
  return (A)0;
}

// Max and min let a NaN win and stay, as the CPU (NumPy, TensorFlow) does.
template <class R> MF_HD typename R::A step(typename R::A a, typename R::A x)
{
  if (R::kind == PROD) return mul(a, x);
  if (R::kind == MAX) return x > a || is_nan(x) ? x : a;
  if (R::kind == MIN) return x < a || is_nan(x) ? x : a;
  return add(a, x);
}

template <class R> MF_HD typename R::T finish(typename R::A a, int64_t count)
{
  return (typename R::T)(R::kind == MEAN ? mean_of(a, count) : a);
}

// ---------------------------------------------------------------- the view

// Size-1 dims are dropped and neighbours of one kind merged, so the common
// [outer, R, inner] layout has two kept dims and one reduced.
struct View {
  int nk, nr;
  int64_t kd[MF_MAX_DIMS], ks[MF_MAX_DIMS]; // kept dims and their input strides
  int64_t rd[MF_MAX_DIMS], rs[MF_MAX_DIMS]; // reduced dims and their input strides
  int64_t R;                                // reduced elements per output
};

// The view of a contiguous nd-dim input reducing the dims where mask is set.
static View view_of(int nd, const int64_t *dims, const bool *mask)
{
  View v = {};
  v.R = 1;
  int64_t st = 1;
  int last = -1; // kind of the dim appended last (inner side): 0 kept, 1 reduced
  for (int d = nd - 1; d >= 0; d--) {
    int64_t n = dims[d];
    int kind = mask[d] ? 1 : 0;
    if (kind) v.R *= n;
    if (n != 1) {
      int &cnt = kind ? v.nr : v.nk;
      int64_t *vd = kind ? v.rd : v.kd, *vs = kind ? v.rs : v.ks;
      if (last == kind) { // contiguous with its inner neighbour: one dim
        vd[cnt - 1] *= n;
      } else {
        vd[cnt] = n, vs[cnt] = st, cnt++;
      }
      last = kind;
    }
    st *= n;
  }
  // Built from the inner side: put both lists outermost first.
  for (int i = 0, j = v.nk - 1; i < j; i++, j--) {
    int64_t a = v.kd[i], b = v.ks[i];
    v.kd[i] = v.kd[j], v.ks[i] = v.ks[j], v.kd[j] = a, v.ks[j] = b;
  }
  for (int i = 0, j = v.nr - 1; i < j; i++, j--) {
    int64_t a = v.rd[i], b = v.rs[i];
    v.rd[i] = v.rd[j], v.rs[i] = v.rs[j], v.rd[j] = a, v.rs[j] = b;
  }
  return v;
}

static View view_of_params(int nd, const int64_t *dims, const int64_t *params)
{
  bool mask[MF_MAX_DIMS];
  for (int d = 0; d < nd; d++) mask[d] = params[d] != 0;
  return view_of(nd, dims, mask);
}

// Input offset of output element o's first reduced element.
MF_HD int64_t kept_offset(const View &v, int64_t o)
{
  int64_t off = 0;
  for (int d = v.nk - 1; d >= 0; d--) {
    off += o % v.kd[d] * v.ks[d];
    o /= v.kd[d];
  }
  return off;
}

// An odometer over the reduced dims: off is reduced element r's offset.
struct Odo {
  int64_t idx[MF_MAX_DIMS];
  int64_t off;
};

// Positions z at reduced element r (r < R, so no dim is empty).
MF_HD void odo_start(const View &v, Odo &z, int64_t r)
{
  z.off = 0;
  for (int d = v.nr - 1; d >= 0; d--) {
    z.idx[d] = r % v.rd[d];
    z.off += z.idx[d] * v.rs[d];
    r /= v.rd[d];
  }
}

MF_HD void odo_next(const View &v, Odo &z)
{
  for (int d = v.nr - 1; d >= 0; d--) {
    z.off += v.rs[d];
    if (++z.idx[d] < v.rd[d]) return;
    z.off -= v.rs[d] * v.rd[d];
    z.idx[d] = 0;
  }
}

MF_HD void odo_prev(const View &v, Odo &z)
{
  for (int d = v.nr - 1; d >= 0; d--) {
    if (z.idx[d] > 0) {
      z.idx[d]--;
      z.off -= v.rs[d];
      return;
    }
    z.idx[d] = v.rd[d] - 1;
    z.off += v.rs[d] * (v.rd[d] - 1);
  }
}

// f(r, offset of reduced element r) for r = r0..r1-1 in order (r1 <= R).
// One reduced dim, the common case, needs no odometer (which lives in
// local memory on a GPU).
template <class F> MF_DEVICE void walk(const View &v, int64_t r0, int64_t r1, F f)
{
  if (r0 >= r1) return;
  if (v.nr <= 1) {
    int64_t s = v.nr ? v.rs[0] : 0;
    for (int64_t r = r0; r < r1; r++) f(r, r * s);
    return;
  }
  Odo z;
  odo_start(v, z, r0);
  for (int64_t r = r0; r < r1; r++) {
    f(r, z.off);
    odo_next(v, z);
  }
}

// The same for r = R-1 down to 0.
template <class F> MF_DEVICE void walk_back(const View &v, F f)
{
  if (v.R == 0) return;
  if (v.nr <= 1) {
    int64_t s = v.nr ? v.rs[0] : 0;
    for (int64_t r = v.R - 1; r >= 0; r--) f(r, r * s);
    return;
  }
  Odo z;
  odo_start(v, z, v.R - 1);
  for (int64_t r = v.R - 1; r >= 0; r--) {
    f(r, z.off);
    odo_prev(v, z);
  }
}

// a folded with reduced elements r0..r1-1 of the output at `base`.
template <class R>
MF_DEVICE typename R::A fold(const typename R::T *x, const View &v, int64_t base, int64_t r0,
                             int64_t r1, typename R::A a)
{
  walk(v, r0, r1, [&](int64_t, int64_t off) { a = step<R>(a, (typename R::A)x[base + off]); });
  return a;
}

// ---------------------------------------------------------------- reduction kernels

// Work item o: output o, the whole fold.
template <class R>
MF_GLOBAL void reduce_kernel(const typename R::T *x, typename R::T *y, View v, int64_t on)
{
  MF_FOR(o, on) y[o] = finish<R>(fold<R>(x, v, kept_offset(v, o), 0, v.R, init<R>()), v.R);
}

// First pass, work item i: chunk i / on of output i % on (neighbouring
// items take neighbouring outputs, which read neighbouring memory).
template <class R>
MF_GLOBAL void partial_kernel(const typename R::T *x, typename R::A *part, View v, int64_t on,
                              int64_t nchunks)
{
  MF_FOR(i, on * nchunks)
  {
    int64_t c = i / on, r0 = c * kChunk, r1 = r0 + kChunk < v.R ? r0 + kChunk : v.R;
    part[i] = fold<R>(x, v, kept_offset(v, i % on), r0, r1, init<R>());
  }
}

// Second pass, work item o: output o's chunks folded in order.
template <class R>
MF_GLOBAL void combine_kernel(const typename R::A *part, typename R::T *y, int64_t on,
                              int64_t nchunks, int64_t count)
{
  MF_FOR(o, on)
  {
    typename R::A a = init<R>();
    for (int64_t c = 0; c < nchunks; c++) a = step<R>(a, part[c * on + o]);
    y[o] = finish<R>(a, count);
  }
}

static int64_t chunks_of(const View &v, int64_t on)
{
  return v.R > kChunk && on < kFewOutputs ? (v.R + kChunk - 1) / kChunk : 1;
}

// y (on elements) = x reduced as v says.
template <class R>
static void reduce(mfi_kctx *k, const typename R::T *x, typename R::T *y, const View &v, int64_t on)
{
  if (on == 0) return;
  int64_t nc = chunks_of(v, on);
  if (nc == 1) {
    MF_LAUNCH(reduce_kernel<R>, on, k->stream)(x, y, v, on);
  } else {
    auto *part = (typename R::A *)mfi_scratch(k, sizeof(typename R::A) * (size_t)(on * nc));
    if (!part) return;
    MF_LAUNCH(partial_kernel<R>, on * nc, k->stream)(x, part, v, on, nc);
    MF_LAUNCH(combine_kernel<R>, on, k->stream)(part, y, on, nc, v.R);
  }
  launched(k);
}

// Sum, Mean, Max, Min, Prod: prepare leaves the output's shape in shapes[0]
// and the reduced dims in params (non-zero), and refuses the max, min or
// integer mean of nothing.
template <int K> static void k_reduce(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  View v = view_of_params(x->ndim, x->dims, k->params);
  with_numeric(x->dtype, [&](auto z) {
    using T = decltype(z);
    reduce<Red<K, T>>(k, data<T>(x), data<T>(k->out[0]), v, k->out[0]->numel);
  });
}

// ---------------------------------------------------------------- ArgMax, ArgMin

// Whether v replaces the best so far: strictly better keeps the first of
// ties, and the first NaN wins for good, as the CPU's.
template <class R> MF_HD bool better(typename R::T v, typename R::T best)
{
  if (is_nan(best)) return false;
  if (is_nan(v)) return true;
  return R::kind == MAX ? v > best : v < best;
}

// The best of reduced elements r0..r1-1 (r0 < r1) of the output at base:
// its value in *best, its place returned.
template <class R>
MF_DEVICE int64_t arg_fold(const typename R::T *x, const View &v, int64_t base, int64_t r0,
                           int64_t r1, typename R::T *best)
{
  typename R::T b = 0;
  int64_t at = r0;
  walk(v, r0, r1, [&](int64_t r, int64_t off) {
    typename R::T e = x[base + off];
    if (r == r0 || better<R>(e, b)) b = e, at = r;
  });
  *best = b;
  return at;
}

// Work item o: output o's place (from 1, as the CPU's).
template <class R> MF_GLOBAL void arg_kernel(const typename R::T *x, int64_t *y, View v, int64_t on)
{
  MF_FOR(o, on)
  {
    typename R::T b;
    y[o] = arg_fold<R>(x, v, kept_offset(v, o), 0, v.R, &b) + 1;
  }
}

// First pass: each chunk's best and its place, laid out as partial_kernel's.
template <class R>
MF_GLOBAL void arg_partial_kernel(const typename R::T *x, typename R::T *best, int64_t *at, View v,
                                  int64_t on, int64_t nchunks)
{
  MF_FOR(i, on * nchunks)
  {
    int64_t c = i / on, r0 = c * kChunk, r1 = r0 + kChunk < v.R ? r0 + kChunk : v.R;
    at[i] = arg_fold<R>(x, v, kept_offset(v, i % on), r0, r1, &best[i]);
  }
}

// Second pass: chunks in order, so a later chunk wins only when strictly
// better, which is the serial scan's answer.
template <class R>
MF_GLOBAL void arg_combine_kernel(const typename R::T *best, const int64_t *at, int64_t *y,
                                  int64_t on, int64_t nchunks)
{
  MF_FOR(o, on)
  {
    typename R::T b = best[o];
    int64_t w = at[o];
    for (int64_t c = 1; c < nchunks; c++)
      if (better<R>(best[c * on + o], b)) b = best[c * on + o], w = at[c * on + o];
    y[o] = w + 1;
  }
}

template <class R>
static void arg_reduce(mfi_kctx *k, const typename R::T *x, int64_t *y, const View &v, int64_t on)
{
  using T = typename R::T;
  if (on == 0) return; // an empty axis with outputs was refused by prepare
  int64_t nc = chunks_of(v, on), np = on * nc;
  if (nc == 1) {
    MF_LAUNCH(arg_kernel<R>, on, k->stream)(x, y, v, on);
  } else {
    T *best = (T *)mfi_scratch(k, sizeof(T) * (size_t)np);
    int64_t *at = best ? (int64_t *)mfi_scratch(k, sizeof(int64_t) * (size_t)np) : NULL;
    if (!at) return;
    MF_LAUNCH(arg_partial_kernel<R>, np, k->stream)(x, best, at, v, on, nc);
    MF_LAUNCH(arg_combine_kernel<R>, on, k->stream)(best, at, y, on, nc);
  }
  launched(k);
}

// prepare leaves the axis (0-based) in params[0] and the shape in shapes[0].
template <int K> static void k_arg(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, MF_INT64, om->ndim, om->dims)) return;
  bool mask[MF_MAX_DIMS] = {false};
  mask[k->params[0]] = true;
  View v = view_of(x->ndim, x->dims, mask);
  with_numeric(x->dtype, [&](auto z) {
    using T = decltype(z);
    arg_reduce<Red<K, T>>(k, data<T>(x), data<int64_t>(k->out[0]), v, k->out[0]->numel);
  });
}

// ---------------------------------------------------------------- gradient helpers

// Output 0 as a view of input i with a new shape (same element count).
static void view_as(mfi_kctx *k, int i, int ndim, const int64_t *dims)
{
  mf_status tmp;
  mfi_clear(&tmp);
  k->out[0] = mf_tensor_reshape(k->in[i], ndim, dims, &tmp);
  if (!k->out[0]) mfi_op_error(k->status, mf_status_code(&tmp), k->op, "%s", tmp.msg);
}

// SumToShapeOf(t, like): t summed down to like's shape, which broadcasts
// to t's (prepare checked): the dims where like has 1 or nothing are summed.
static void k_sum_to_shape(mfi_kctx *k)
{
  const mf_tensor *t = k->in[0], *like = k->in[1];
  if (t->numel == like->numel) { // only leading 1s differ
    view_as(k, 0, like->ndim, like->dims);
    return;
  }
  int nd = t->ndim, pad = t->ndim - like->ndim;
  bool mask[MF_MAX_DIMS];
  for (int d = 0; d < nd; d++) mask[d] = d < pad || like->dims[d - pad] == 1;
  if (!mfi_out_new(k, 0, t->dtype, like->ndim, like->dims)) return;
  View v = view_of(nd, t->dims, mask);
  with_numeric(t->dtype, [&](auto z) {
    using T = decltype(z);
    reduce<Red<SUM, T>>(k, data<T>(t), data<T>(k->out[0]), v, k->out[0]->numel);
  });
}

// Element i of the output (shape b.dims) copies element bcast_offset(b, 0, i) of t.
template <class E> MF_GLOBAL void spread_kernel(const E *t, E *y, Bcast b, int64_t n)
{
  MF_FOR(i, n) y[i] = t[bcast_offset(b, 0, i)];
}

// ExpandReduced(t, x): t, x reduced over the dims params marks (keep_dims
// or not), spread back to x's shape.
static void k_expand_reduced(mfi_kctx *k)
{
  const mf_tensor *t = k->in[0], *x = k->in[1];
  if (t->numel == x->numel) { // only size-1 dims were reduced
    view_as(k, 0, x->ndim, x->dims);
    return;
  }
  int nd = x->ndim;
  if (!mfi_out_new(k, 0, t->dtype, nd, x->dims) || x->numel == 0) return;
  Bcast b = {};
  b.ndim = nd;
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    b.dims[d] = x->dims[d];
    b.st[0][d] = k->params[d] ? 0 : s;
    if (!k->params[d]) s *= x->dims[d];
  }
  // A copy: only the element size matters.
  const void *tp = mfi_data(t);
  void *yp = mfi_data(k->out[0]);
  int64_t n = x->numel;
  switch (mf_dtype_size(t->dtype)) {
  case 1:
    MF_LAUNCH(spread_kernel<uint8_t>, n, k->stream)((const uint8_t *)tp, (uint8_t *)yp, b, n);
    break;
  case 2:
    MF_LAUNCH(spread_kernel<uint16_t>, n, k->stream)((const uint16_t *)tp, (uint16_t *)yp, b, n);
    break;
  case 4:
    MF_LAUNCH(spread_kernel<uint32_t>, n, k->stream)((const uint32_t *)tp, (uint32_t *)yp, b, n);
    break;
  default:
    MF_LAUNCH(spread_kernel<uint64_t>, n, k->stream)((const uint64_t *)tp, (uint64_t *)yp, b, n);
    break;
  }
  launched(k);
}

// ProdExclusive multiplies floats in double and integers in uint64
// (wrapping); the prefix products are kept in double for float32, and in
// the output itself otherwise, which loses nothing (wrapped products only
// need their low bits).
template <class T> struct ExclOf {
  using A = uint64_t;
  using P = T;
};
template <> struct ExclOf<float> {
  using A = double;
  using P = double;
};
template <> struct ExclOf<double> {
  using A = double;
  using P = double;
};

// Each element becomes the product of the others of its group (the
// elements one output of Prod folds). Work item o: group o, a prefix pass
// storing each element's product-before in pre, then a suffix pass
// multiplying it by the product-after, as the CPU: zeros need no special
// case and nothing divides.
template <class T>
MF_GLOBAL void prod_exclusive_kernel(const T *x, T *y, typename ExclOf<T>::P *pre, View v,
                                     int64_t groups)
{
  using A = typename ExclOf<T>::A;
  using P = typename ExclOf<T>::P;
  MF_FOR(o, groups)
  {
    int64_t base = kept_offset(v, o);
    A run = 1;
    walk(v, 0, v.R, [&](int64_t, int64_t off) {
      pre[base + off] = (P)run;
      run *= (A)x[base + off];
    });
    run = 1;
    walk_back(v, [&](int64_t, int64_t off) {
      y[base + off] = (T)((A)pre[base + off] * run);
      run *= (A)x[base + off];
    });
  }
}

// prepare leaves the reduced dims in params (non-zero).
static void k_prod_exclusive(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, x->dims) || x->numel == 0) return;
  View v = view_of_params(x->ndim, x->dims, k->params);
  int64_t groups = x->numel / v.R; // numel > 0, so R > 0
  with_numeric(x->dtype, [&](auto z) {
    using T = decltype(z);
    using P = typename ExclOf<T>::P;
    T *y = data<T>(k->out[0]);
    P *pre = (P *)y;
    if (sizeof(P) != sizeof(T)) pre = (P *)mfi_scratch(k, sizeof(P) * (size_t)x->numel);
    if (!pre) return;
    MF_LAUNCH(prod_exclusive_kernel<T>, groups, k->stream)(data<T>(x), y, pre, v, groups);
    launched(k);
  });
}

extern const mfi_kernel_reg reduce_kernels[] = {{"Sum", k_reduce<SUM>},
                                                {"Mean", k_reduce<MEAN>},
                                                {"Max", k_reduce<MAX>},
                                                {"Min", k_reduce<MIN>},
                                                {"Prod", k_reduce<PROD>},
                                                {"ArgMax", k_arg<MAX>},
                                                {"ArgMin", k_arg<MIN>},
                                                {"SumToShapeOf", k_sum_to_shape},
                                                {"ExpandReduced", k_expand_reduced},
                                                {"ProdExclusive", k_prod_exclusive},
                                                {NULL, NULL}};

} // namespace MF_CUDA_NS
