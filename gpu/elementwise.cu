// Element-wise math with NumPy broadcasting, casts, select and AddN: the
// CUDA side of csrc/ops/math.c and AddN of csrc/ops/grad_ops.c, with their
// semantics (integer wrapping and floor division, refusals, NaN rules).
//
// Decomposition: one work item per output element. Inputs that are the
// output's size or a scalar are read at i or 0 (the flat kernels); other
// broadcasts find each input's offset from the output index (Bcast).
#include "kernel.h"

#include <type_traits>

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- dtypes

// The storage type of each dtype; bool is its byte, read as math.c reads it.
template <mf_dtype D> struct Dt;
template <> struct Dt<MF_FLOAT32> {
  using T = float;
};
template <> struct Dt<MF_FLOAT64> {
  using T = double;
};
template <> struct Dt<MF_INT32> {
  using T = int32_t;
};
template <> struct Dt<MF_INT64> {
  using T = int64_t;
};
template <> struct Dt<MF_BOOL> {
  using T = uint8_t;
};
template <> struct Dt<MF_UINT8> {
  using T = uint8_t;
};

template <mf_dtype D> struct Tag {
  static constexpr mf_dtype dt = D;
  static constexpr bool fp = D == MF_FLOAT32 || D == MF_FLOAT64;
  using T = typename Dt<D>::T;
};

// Calls f(Tag<dt>()) for any dtype: like with_type, but the tag keeps the
// dtype, which tells bool (stored as uint8_t) from uint8.
template <class F> static void with_dtype(mf_dtype dt, F f)
{
  switch (dt) {
  case MF_FLOAT32: f(Tag<MF_FLOAT32>()); break;
  case MF_FLOAT64: f(Tag<MF_FLOAT64>()); break;
  case MF_INT32: f(Tag<MF_INT32>()); break;
  case MF_INT64: f(Tag<MF_INT64>()); break;
  case MF_BOOL: f(Tag<MF_BOOL>()); break;
  case MF_UINT8: f(Tag<MF_UINT8>()); break;
  default: break;
  }
}

template <class T> constexpr bool is_fp = std::is_floating_point<T>::value;

// Integer results: computed in int64 with unsigned (wrapping) arithmetic
// and stored to T, as math.c does through mfi_set_i.
template <class T> MF_HD T wrap(uint64_t v) { return (T)(int64_t)v; }
template <class T> MF_HD uint64_t u64(T v) { return (uint64_t)(int64_t)v; }

// ---------------------------------------------------------------- broadcasting

// Input j is read flat when it has the output's n elements (stride 1) or
// one (stride 0).
static bool flat_ok(const mf_tensor *t, int64_t n) { return t->numel == n || t->numel == 1; }
static int64_t flat_step(const mf_tensor *t, int64_t n) { return t->numel == n ? 1 : 0; }

// Drops dimensions of 1 and merges neighbours that every input walks
// contiguously, so that the kernels divide as little as they can.
static Bcast collapse(Bcast b, int nin)
{
  Bcast c = {};
  for (int d = 0; d < b.ndim; d++) {
    if (b.dims[d] == 1) continue;
    bool merge = c.ndim > 0;
    for (int j = 0; merge && j < nin; j++) merge = c.st[j][c.ndim - 1] == b.st[j][d] * b.dims[d];
    if (merge) {
      c.dims[c.ndim - 1] *= b.dims[d];
      for (int j = 0; j < nin; j++) c.st[j][c.ndim - 1] = b.st[j][d];
      continue;
    }
    c.dims[c.ndim] = b.dims[d];
    for (int j = 0; j < nin; j++) c.st[j][c.ndim] = b.st[j][d];
    c.ndim++;
  }
  return c;
}

// The offsets in the N inputs of output element i, in one pass over the dims.
template <int N> MF_HD void bcast_offsets(const Bcast &b, int64_t i, int64_t *off)
{
  for (int j = 0; j < N; j++) off[j] = 0;
  for (int d = b.ndim - 1; d >= 0; d--) {
    int64_t q = i / b.dims[d], r = i - q * b.dims[d];
    for (int j = 0; j < N; j++) off[j] += r * b.st[j][d];
    i = q;
  }
}

// The output shape of broadcasting the first nin inputs, from their run-time
// shapes, refused as math.c's runtime_shape refuses it.
static bool out_shape(mfi_kctx *k, int nin, int *ndim, int64_t *dims)
{
  *ndim = k->in[0]->ndim;
  for (int d = 0; d < *ndim; d++) dims[d] = k->in[0]->dims[d];
  for (int j = 1; j < nin; j++) {
    const mf_tensor *t = k->in[j];
    int64_t sofar[MF_MAX_DIMS]; // the result is written over the shape being read
    for (int d = 0; d < *ndim; d++) sofar[d] = dims[d];
    if (!mfi_broadcast_shape(*ndim, sofar, t->ndim, t->dims, ndim, dims)) {
      char x[128], y[128];
      mfi_shape_str(k->in[0]->ndim, k->in[0]->dims, x, sizeof x);
      mfi_shape_str(t->ndim, t->dims, y, sizeof y);
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "incompatible shapes %s and %s for broadcasting", x, y);
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------- binary definitions

// Each op is a functor over two inputs of storage type T. Integer division
// and powers refuse some inputs: they raise *bad (a plain store of 1 from
// any number of work items) and the host turns it into the CPU's error.
struct NoRefusal {
  static constexpr const char *refusal = nullptr;
  uint8_t *bad;
};

struct AddOp : NoRefusal {
  template <class T> MF_HD T operator()(T x, T y) const
  {
    if constexpr (is_fp<T>)
      return x + y;
    else
      return wrap<T>(u64(x) + u64(y));
  }
};

struct SubOp : NoRefusal {
  template <class T> MF_HD T operator()(T x, T y) const
  {
    if constexpr (is_fp<T>)
      return x - y;
    else
      return wrap<T>(u64(x) - u64(y));
  }
};

struct MulOp : NoRefusal {
  template <class T> MF_HD T operator()(T x, T y) const
  {
    if constexpr (is_fp<T>)
      return x * y;
    else
      return wrap<T>(u64(x) * u64(y));
  }
};

// Integers floor-divide (like Lua's //); INT64_MIN / -1 wraps instead of trapping.
struct DivOp {
  static constexpr const char *refusal = "integer division by zero";
  uint8_t *bad;
  template <class T> MF_HD T operator()(T x, T y) const
  {
    if constexpr (is_fp<T>) {
      return x / y;
    } else {
      int64_t a = x, b = y;
      if (b == 0) return *bad = 1, T(0);
      if (b == -1) return wrap<T>(0 - (uint64_t)a);
      int64_t r = a / b;
      if (a % b != 0 && (a < 0) != (b < 0)) r--;
      return wrap<T>((uint64_t)r);
    }
  }
};

// The remainder takes the divisor's sign.
struct ModOp {
  static constexpr const char *refusal = "integer division by zero";
  uint8_t *bad;
  template <class T> MF_HD T operator()(T x, T y) const
  {
    if constexpr (is_fp<T>) {
      T r = fmod(x, y);
      if (r != 0 && (r < 0) != (y < 0)) r += y;
      return r;
    } else {
      int64_t a = x, b = y;
      if (b == 0) return *bad = 1, T(0);
      if (b == -1) return T(0);
      int64_t r = a % b;
      if (r != 0 && (r < 0) != (b < 0)) r += b;
      return wrap<T>((uint64_t)r);
    }
  }
};

// Integer powers by squaring, wrapping; negative exponents are refused.
struct PowOp {
  static constexpr const char *refusal = "integers to negative integer powers are not allowed";
  uint8_t *bad;
  template <class T> MF_HD T operator()(T x, T y) const
  {
    if constexpr (is_fp<T>) {
      return pow(x, y);
    } else {
      int64_t e = y;
      if (e < 0) return *bad = 1, T(0);
      uint64_t r = 1, b = u64(x);
      for (; e > 0; e >>= 1, b *= b)
        if (e & 1) r *= b;
      return wrap<T>(r);
    }
  }
};

// A NaN on either side wins (x's first).
struct MaxOp : NoRefusal {
  template <class T> MF_HD T operator()(T x, T y) const { return (x > y || x != x) ? x : y; }
};

struct MinOp : NoRefusal {
  template <class T> MF_HD T operator()(T x, T y) const { return (x < y || x != x) ? x : y; }
};

// Comparisons and logic give bool bytes.
struct EqOp {
  template <class T> MF_HD uint8_t operator()(T x, T y) const { return x == y; }
};
struct NeOp {
  template <class T> MF_HD uint8_t operator()(T x, T y) const { return x != y; }
};
struct LtOp {
  template <class T> MF_HD uint8_t operator()(T x, T y) const { return x < y; }
};
struct LeOp {
  template <class T> MF_HD uint8_t operator()(T x, T y) const { return x <= y; }
};
struct GtOp {
  template <class T> MF_HD uint8_t operator()(T x, T y) const { return x > y; }
};
struct GeOp {
  template <class T> MF_HD uint8_t operator()(T x, T y) const { return x >= y; }
};
struct AndOp {
  MF_HD uint8_t operator()(uint8_t x, uint8_t y) const { return x && y; }
};
struct OrOp {
  MF_HD uint8_t operator()(uint8_t x, uint8_t y) const { return x || y; }
};

// ---------------------------------------------------------------- binary kernels

// Same shapes or a scalar side: a and b step by sa, sb (1 or 0).
template <class Op, class T, class R>
MF_GLOBAL void binary_flat(Op op, const T *a, int64_t sa, const T *b, int64_t sb, R *y, int64_t n)
{
  MF_FOR(i, n) y[i] = op(a[i * sa], b[i * sb]);
}

template <class Op, class T, class R>
MF_GLOBAL void binary_bcast(Op op, const T *a, const T *b, R *y, Bcast bc, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t off[2];
    bcast_offsets<2>(bc, i, off);
    y[i] = op(a[off[0]], b[off[1]]);
  }
}

template <class R, class T, class Op>
static void launch_binary(mfi_kctx *k, Op op, int ndim, const int64_t *dims)
{
  const mf_tensor *a = k->in[0], *b = k->in[1];
  int64_t n = k->out[0]->numel;
  R *y = data<R>(k->out[0]);
  if (flat_ok(a, n) && flat_ok(b, n)) {
    auto kern = binary_flat<Op, T, R>;
    int64_t sa = flat_step(a, n), sb = flat_step(b, n);
    MF_LAUNCH(kern, n, k->stream)(op, data<T>(a), sa, data<T>(b), sb, y, n);
  } else {
    auto kern = binary_bcast<Op, T, R>;
    Bcast bc = collapse(bcast_of(ndim, dims, 2, k->in), 2);
    MF_LAUNCH(kern, n, k->stream)(op, data<T>(a), data<T>(b), y, bc, n);
  }
}

// The output of a binary op, shaped from the inputs' run-time shapes;
// false when there is nothing to compute.
static bool binary_out(mfi_kctx *k, int *ndim, int64_t *dims)
{
  return out_shape(k, 2, ndim, dims) && mfi_out_new(k, 0, k->op->out[0].dtype, *ndim, dims) &&
         k->out[0]->numel > 0;
}

static void drop_output(mfi_kctx *k)
{
  mf_tensor_delete(k->out[0]);
  k->out[0] = NULL;
}

// Integer ops that can refuse their inputs learn it from a flag on the
// device: cleared, raised by the kernel, read back (a wait on the stream).
MF_GLOBAL void clear_flag(uint8_t *f) { MF_FOR(i, 1) f[i] = 0; }

template <class T, class Op> static void refusing_binary(mfi_kctx *k, int ndim, const int64_t *dims)
{
  Op op = {};
  op.bad = (uint8_t *)mfi_scratch(k, 1);
  if (!op.bad) return;
  MF_LAUNCH(clear_flag, 1, k->stream)(op.bad);
  launch_binary<T, T>(k, op, ndim, dims);
  uint8_t bad = 0;
  if (!launched(k) || !to_host(k, &bad, op.bad, 1)) return;
  if (bad) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "%s", Op::refusal);
    drop_output(k);
  }
}

// Arithmetic: T -> T for the numeric dtypes.
template <class Op> static void k_arith(mfi_kctx *k)
{
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  if (!binary_out(k, &ndim, dims)) return;
  with_dtype(k->in[0]->dtype, [&](auto z) {
    using T = typename decltype(z)::T;
    if constexpr (Op::refusal != nullptr && !decltype(z)::fp) {
      refusing_binary<T, Op>(k, ndim, dims);
    } else {
      launch_binary<T, T>(k, Op{}, ndim, dims);
      launched(k);
    }
  });
}

// Comparisons: any dtype -> bool.
template <class Op> static void k_compare(mfi_kctx *k)
{
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  if (!binary_out(k, &ndim, dims)) return;
  with_dtype(k->in[0]->dtype, [&](auto z) {
    using T = typename decltype(z)::T;
    launch_binary<uint8_t, T>(k, Op{}, ndim, dims);
  });
  launched(k);
}

template <class Op> static void k_logic(mfi_kctx *k)
{
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  if (!binary_out(k, &ndim, dims)) return;
  launch_binary<uint8_t, uint8_t>(k, Op{}, ndim, dims);
  launched(k);
}

// ---------------------------------------------------------------- unary definitions

// Integers (abs, neg, square) wrap; INT_MIN's absolute value is itself.
struct AbsOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if constexpr (is_fp<T>)
      return fabs(x);
    else
      return (int64_t)x < 0 ? wrap<T>(0 - u64(x)) : x; // int64: no warning for uint8
  }
};

struct NegOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if constexpr (is_fp<T>)
      return -x;
    else
      return wrap<T>(0 - u64(x));
  }
};

// Zeros keep their sign and NaN stays NaN.
struct SignOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if constexpr (is_fp<T>)
      return x > 0 ? T(1) : x < 0 ? T(-1) : x;
    else
      return T(((int64_t)x > 0) - ((int64_t)x < 0));
  }
};

struct SquareOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if constexpr (is_fp<T>)
      return x * x;
    else
      return wrap<T>(u64(x) * u64(x));
  }
};

// Round and Floor leave integers as they are.
struct RoundOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if constexpr (is_fp<T>)
      return rint(x); // the default rounding mode: half to even
    else
      return x;
  }
};

struct FloorOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if constexpr (is_fp<T>)
      return floor(x);
    else
      return x;
  }
};

// The float-only ones.
struct ReciprocalOp {
  template <class T> MF_HD T operator()(T x) const { return T(1) / x; }
};
struct SqrtOp {
  template <class T> MF_HD T operator()(T x) const { return sqrt(x); }
};
struct ExpOp {
  template <class T> MF_HD T operator()(T x) const { return exp(x); }
};
struct LogOp {
  template <class T> MF_HD T operator()(T x) const { return log(x); }
};
struct Log1pOp {
  template <class T> MF_HD T operator()(T x) const { return log1p(x); }
};
struct CosOp {
  template <class T> MF_HD T operator()(T x) const { return cos(x); }
};
struct SinOp {
  template <class T> MF_HD T operator()(T x) const { return sin(x); }
};
struct TanhOp {
  template <class T> MF_HD T operator()(T x) const { return tanh(x); }
};

// exp of a non-positive argument only, so that neither tail overflows.
struct SigmoidOp {
  template <class T> MF_HD T operator()(T x) const
  {
    if (x >= 0) return T(1) / (T(1) + exp(-x));
    T e = exp(x);
    return e / (T(1) + e);
  }
};

struct NotOp {
  MF_HD uint8_t operator()(uint8_t x) const { return !x; }
};

// ---------------------------------------------------------------- unary kernels

template <class Op, class T> MF_GLOBAL void unary_kernel(Op op, const T *x, T *y, int64_t n)
{
  MF_FOR(i, n) y[i] = op(x[i]);
}

template <class T, class Op> static void launch_unary(mfi_kctx *k, Op op)
{
  int64_t n = k->in[0]->numel;
  auto kern = unary_kernel<Op, T>;
  MF_LAUNCH(kern, n, k->stream)(op, data<T>(k->in[0]), data<T>(k->out[0]), n);
  launched(k);
}

// The output of a unary op; false when there is nothing to compute.
static bool unary_out(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  return mfi_out_new(k, 0, k->op->out[0].dtype, x->ndim, x->dims) && x->numel > 0;
}

// Abs, Neg, Sign, Square, Round, Floor: every numeric dtype.
template <class Op> static void k_unary(mfi_kctx *k)
{
  if (!unary_out(k)) return;
  with_dtype(k->in[0]->dtype, [&](auto z) { launch_unary<typename decltype(z)::T>(k, Op{}); });
}

template <class Op> static void k_unary_float(mfi_kctx *k)
{
  if (!unary_out(k)) return;
  with_float(k->in[0]->dtype, [&](auto z) { launch_unary<decltype(z)>(k, Op{}); });
}

static void k_logical_not(mfi_kctx *k)
{
  if (unary_out(k)) launch_unary<uint8_t>(k, NotOp{});
}

// ---------------------------------------------------------------- cast

// A double as an integer of [lo, hi], as the core's mfi_set_f converts:
// truncated toward zero, saturated, NaN as 0.
MF_HD int64_t to_int(double v, double lo, double hi)
{
  if (v != v) return 0;
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return v >= 9.2233720368547758e18 ? INT64_MAX : (int64_t)hi;
  return (int64_t)v;
}

template <mf_dtype D> MF_HD typename Dt<D>::T from_double(double v)
{
  if constexpr (D == MF_FLOAT32)
    return (float)v;
  else if constexpr (D == MF_FLOAT64)
    return v;
  else if constexpr (D == MF_INT32)
    return (int32_t)to_int(v, INT32_MIN, INT32_MAX);
  else if constexpr (D == MF_INT64)
    return to_int(v, -9.2233720368547758e18, 9.2233720368547758e18);
  else if constexpr (D == MF_BOOL)
    return v != 0;
  else
    return (uint8_t)to_int(v, 0, 255);
}

// Through double when either side is a float (so int64 -> float32 rounds
// twice, as on the CPU), else through int64 with wrapping stores.
template <mf_dtype S, mf_dtype D>
MF_GLOBAL void cast_kernel(const typename Dt<S>::T *x, typename Dt<D>::T *y, int64_t n)
{
  MF_FOR(i, n)
  {
    if constexpr (Tag<S>::fp || Tag<D>::fp)
      y[i] = from_double<D>((double)x[i]);
    else if constexpr (D == MF_BOOL)
      y[i] = x[i] != 0;
    else
      y[i] = (typename Dt<D>::T)(int64_t)x[i];
  }
}

static void k_cast(mfi_kctx *k)
{
  if (!unary_out(k)) return;
  int64_t n = k->in[0]->numel;
  with_dtype(k->in[0]->dtype, [&](auto s) {
    with_dtype(k->out[0]->dtype, [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      auto kern = cast_kernel<S::dt, D::dt>;
      const typename S::T *x = data<typename S::T>(k->in[0]);
      MF_LAUNCH(kern, n, k->stream)(x, data<typename D::T>(k->out[0]), n);
    });
  });
  launched(k);
}

// ---------------------------------------------------------------- select

// Elements are copied as bits of their size.
template <class T>
MF_GLOBAL void select_flat(const uint8_t *c, int64_t sc, const T *x, int64_t sx, const T *y,
                           int64_t sy, T *o, int64_t n)
{
  MF_FOR(i, n) o[i] = c[i * sc] ? x[i * sx] : y[i * sy];
}

template <class T>
MF_GLOBAL void select_bcast(const uint8_t *c, const T *x, const T *y, T *o, Bcast bc, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t off[3];
    bcast_offsets<3>(bc, i, off);
    o[i] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

template <class T> static void launch_select(mfi_kctx *k, int ndim, const int64_t *dims)
{
  const mf_tensor *c = k->in[0], *x = k->in[1], *y = k->in[2];
  int64_t n = k->out[0]->numel;
  T *o = data<T>(k->out[0]);
  const uint8_t *cd = data<uint8_t>(c);
  const T *xd = data<T>(x), *yd = data<T>(y);
  if (flat_ok(c, n) && flat_ok(x, n) && flat_ok(y, n)) {
    int64_t sc = flat_step(c, n), sx = flat_step(x, n), sy = flat_step(y, n);
    MF_LAUNCH(select_flat<T>, n, k->stream)(cd, sc, xd, sx, yd, sy, o, n);
  } else {
    Bcast bc = collapse(bcast_of(ndim, dims, 3, k->in), 3);
    MF_LAUNCH(select_bcast<T>, n, k->stream)(cd, xd, yd, o, bc, n);
  }
}

static void k_select(mfi_kctx *k)
{
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  mf_dtype dt = k->in[1]->dtype;
  if (!out_shape(k, 3, &ndim, dims) || !mfi_out_new(k, 0, dt, ndim, dims) || k->out[0]->numel == 0)
    return;
  switch (mf_dtype_size(dt)) {
  case 1: launch_select<uint8_t>(k, ndim, dims); break;
  case 4: launch_select<uint32_t>(k, ndim, dims); break;
  case 8: launch_select<uint64_t>(k, ndim, dims); break;
  default: break;
  }
  launched(k);
}

// ---------------------------------------------------------------- AddN

// The inputs' pointers: by value for up to kInline inputs (no copy to the
// device, no wait), else a table in device memory.
constexpr int kInline = 32;

template <class T> struct InlinePtrs {
  const T *p[kInline];
  MF_HD const T *operator[](int j) const { return p[j]; }
};

template <class T> struct TablePtrs {
  const T *const *p;
  MF_HD const T *operator[](int j) const { return p[j]; }
};

// Summed in input order in Acc: double for the floats (float32 rounded
// once, as the CPU's blocks do), wrapping uint64 for the integers.
template <class T, class Acc, class Ptrs>
MF_GLOBAL void addn_kernel(Ptrs in, int nin, T *y, int64_t n)
{
  MF_FOR(i, n)
  {
    Acc s = (Acc)in[0][i];
    for (int j = 1; j < nin; j++) s += (Acc)in[j][i];
    y[i] = (T)s;
  }
}

template <class T> static void launch_addn(mfi_kctx *k, int nin, int64_t n)
{
  using Acc = typename std::conditional<is_fp<T>, double, uint64_t>::type;
  T *y = data<T>(k->out[0]);
  if (nin <= kInline) {
    InlinePtrs<T> in = {};
    for (int j = 0; j < nin; j++) in.p[j] = data<T>(k->in[j]);
    auto kern = addn_kernel<T, Acc, InlinePtrs<T>>;
    MF_LAUNCH(kern, n, k->stream)(in, nin, y, n);
    launched(k);
    return;
  }
  size_t bytes = sizeof(const T *) * (size_t)nin;
  const T **host = (const T **)mfi_alloc(bytes);
  const T **dev = (const T **)mfi_scratch(k, bytes);
  if (!host || !dev) {
    if (!host) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    mfi_free(host, bytes);
    return;
  }
  for (int j = 0; j < nin; j++) host[j] = data<T>(k->in[j]);
  bool ok = from_host(k, dev, host, bytes);
  mfi_free(host, bytes);
  if (!ok) return;
  auto kern = addn_kernel<T, Acc, TablePtrs<T>>;
  MF_LAUNCH(kern, n, k->stream)(TablePtrs<T>{dev}, nin, y, n);
  launched(k);
}

static void k_addn(mfi_kctx *k)
{
  int nin = k->op->nin;
  const mfi_meta *m = &k->shapes[0];
  if (nin == 1) { // the CPU hands its input on
    k->out[0] = mf_tensor_retain(k->in[0]);
    return;
  }
  if (!mfi_out_new(k, 0, m->dtype, m->ndim, m->dims) || k->out[0]->numel == 0) return;
  with_dtype(m->dtype,
             [&](auto z) { launch_addn<typename decltype(z)::T>(k, nin, k->out[0]->numel); });
}

extern const mfi_kernel_reg elementwise_kernels[] = {{"Add", k_arith<AddOp>},
                                                     {"Sub", k_arith<SubOp>},
                                                     {"Mul", k_arith<MulOp>},
                                                     {"Div", k_arith<DivOp>},
                                                     {"FloorMod", k_arith<ModOp>},
                                                     {"Pow", k_arith<PowOp>},
                                                     {"Maximum", k_arith<MaxOp>},
                                                     {"Minimum", k_arith<MinOp>},
                                                     {"Equal", k_compare<EqOp>},
                                                     {"NotEqual", k_compare<NeOp>},
                                                     {"Less", k_compare<LtOp>},
                                                     {"LessEqual", k_compare<LeOp>},
                                                     {"Greater", k_compare<GtOp>},
                                                     {"GreaterEqual", k_compare<GeOp>},
                                                     {"LogicalAnd", k_logic<AndOp>},
                                                     {"LogicalOr", k_logic<OrOp>},
                                                     {"Abs", k_unary<AbsOp>},
                                                     {"Neg", k_unary<NegOp>},
                                                     {"Sign", k_unary<SignOp>},
                                                     {"Reciprocal", k_unary_float<ReciprocalOp>},
                                                     {"Square", k_unary<SquareOp>},
                                                     {"Round", k_unary<RoundOp>},
                                                     {"Sqrt", k_unary_float<SqrtOp>},
                                                     {"Exp", k_unary_float<ExpOp>},
                                                     {"Log", k_unary_float<LogOp>},
                                                     {"Cos", k_unary_float<CosOp>},
                                                     {"Sin", k_unary_float<SinOp>},
                                                     {"Tanh", k_unary_float<TanhOp>},
                                                     {"Sigmoid", k_unary_float<SigmoidOp>},
                                                     {"LogicalNot", k_logical_not},
                                                     {"Floor", k_unary<FloorOp>},
                                                     {"Log1p", k_unary_float<Log1pOp>},
                                                     {"Cast", k_cast},
                                                     {"Select", k_select},
                                                     {"AddN", k_addn},
                                                     {NULL, NULL}};

} // namespace MF_CUDA_NS
