// Selection and rearrangement: top-k, padding, reversal, gather_nd /
// scatter_nd, Where, cumulative sums and products (csrc/ops/index.c holds
// the CPU kernels, shapes and checks).
//
// Each kernel gives each output element (or row, or line along an axis)
// to one work item, which reads what it needs; sums over repeats (scatter_nd,
// the padding gradient) are that work item's serial loop in a fixed order,
// the CPU's order.
#include "kernel.h"

#include <string.h>

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- helpers

static int64_t dims_prod(const int64_t *dims, int from, int to)
{
  int64_t n = 1;
  for (int i = from; i < to; i++) n *= dims[i];
  return n;
}

static void oom(mfi_kctx *k)
{
  mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of host memory");
}

// The dtypes that order: float32, float64, int32, int64.
template <class F> inline void with_real(mf_dtype dt, F f)
{
  switch (dt) {
  case MF_FLOAT32: f(float()); break;
  case MF_FLOAT64: f(double()); break;
  case MF_INT32: f(int32_t()); break;
  case MF_INT64: f(int64_t()); break;
  default: break;
  }
}

template <class F> inline void with_index(mf_dtype dt, F f)
{
  if (dt == MF_INT32)
    f(int32_t());
  else
    f(int64_t());
}

// Shapes passed to kernels by value.
struct Dims {
  int nd;
  int64_t d[MF_MAX_DIMS];
};

inline Dims dims_of(int nd, const int64_t *d)
{
  Dims r = {};
  r.nd = nd;
  for (int i = 0; i < nd; i++) r.d[i] = d[i];
  return r;
}

// A host array of n int64 copied to device scratch; NULL with the op's error set.
static const int64_t *to_device(mfi_kctx *k, const int64_t *h, int64_t n)
{
  size_t b = sizeof(int64_t) * (size_t)(n ? n : 1);
  int64_t *p = (int64_t *)mfi_scratch(k, b);
  if (p && !from_host(k, p, h, sizeof(int64_t) * (size_t)n)) return NULL;
  return p;
}

// ---------------------------------------------------------------- TopKV2, TopKGrad

// Whether x orders before y in a top-k row: larger, NaN above every number.
template <class T> MF_DEVICE bool before(T x, T y) { return x > y || (x != x && y == y); }

// One work item per row: the CPU's sorted insertion (larger first, NaN
// first of all, the lower index first among equals), the indices output holding 0-based positions
// until the values are copied.
template <class T>
MF_GLOBAL void top_k_kernel(T *vals, int32_t *idx, const T *x, int64_t n, int64_t kk, int64_t rows)
{
  MF_FOR(r, rows)
  {
    const T *row = x + r * n;
    int32_t *list = idx + r * kk;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) {
      if (cnt == kk && !before(row[i], row[list[kk - 1]])) continue;
      int64_t p = cnt < kk ? cnt++ : kk - 1;
      while (p > 0 && before(row[i], row[list[p - 1]])) list[p] = list[p - 1], p--;
      list[p] = (int32_t)i;
    }
    for (int64_t j = 0; j < kk; j++) vals[r * kk + j] = row[list[j]], list[j]++;
  }
}

static void k_top_k(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int64_t kk = k->params[0];
  for (int i = 0; i < 2; i++)
    if (!mfi_out_new(k, i, k->shapes[i].dtype, k->shapes[i].ndim, k->shapes[i].dims)) {
      if (i) mf_tensor_delete(k->out[0]), k->out[0] = NULL;
      return;
    }
  int64_t n = x->dims[x->ndim - 1], rows = n ? x->numel / n : 0;
  if (kk == 0 || rows == 0) return;
  with_real(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(top_k_kernel<T>, rows, k->stream)
    (data<T>(k->out[0]), data<int32_t>(k->out[1]), data<T>(x), n, kk, rows);
  });
  launched(k);
}

// One work item per row of dx: zeros, then dy at the row's indices.
template <class T>
MF_GLOBAL void top_k_grad_kernel(T *dx, const T *dy, const int32_t *idx, int64_t n, int64_t kk,
                                 int64_t rows)
{
  MF_FOR(r, rows)
  {
    for (int64_t j = 0; j < n; j++) dx[r * n + j] = T(0);
    for (int64_t j = 0; j < kk; j++) dx[r * n + idx[r * kk + j] - 1] = dy[r * kk + j];
  }
}

static void k_top_k_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *ids = k->in[1], *x = k->in[2];
  if (!mfi_out_new(k, 0, dy->dtype, x->ndim, x->dims)) return;
  int64_t n = x->dims[x->ndim - 1], rows = n ? x->numel / n : 0, kk = dy->dims[dy->ndim - 1];
  if (rows == 0) return;
  with_float(dy->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(top_k_grad_kernel<T>, rows, k->stream)
    (data<T>(k->out[0]), data<T>(dy), data<int32_t>(ids), n, kk, rows);
  });
  launched(k);
}

// ---------------------------------------------------------------- InTopKV2

// One work item per row: fewer than k classes score strictly more than the
// target, which is in range and finite.
template <class T, class I>
MF_GLOBAL void in_top_k_kernel(bool *out, const T *p, const I *t, int64_t n, int64_t kk,
                               int64_t rows)
{
  MF_FOR(r, rows)
  {
    int64_t id = (int64_t)t[r];
    bool in = false;
    if (id >= 1 && id <= n) {
      T v = p[r * n + id - 1];
      if (v - v == T(0)) { // finite
        int64_t above = 0;
        for (int64_t j = 0; j < n; j++) above += p[r * n + j] > v;
        in = above < kk;
      }
    }
    out[r] = in;
  }
}

static void k_in_top_k(mfi_kctx *k)
{
  const mf_tensor *p = k->in[0], *t = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, MF_BOOL, 1, om->dims)) return;
  int64_t rows = p->dims[0], n = p->dims[1], kk = k->params[0];
  if (rows == 0) return;
  with_float(p->dtype, [&](auto z) {
    using T = decltype(z);
    with_index(t->dtype, [&](auto zi) {
      using I = decltype(zi);
      MF_LAUNCH((in_top_k_kernel<T, I>), rows, k->stream)
      (data<bool>(k->out[0]), data<T>(p), data<I>(t), n, kk, rows);
    });
  });
  launched(k);
}

// ---------------------------------------------------------------- PadV2, MirrorPad, PadGrad

enum { PAD_CONSTANT, PAD_REFLECT, PAD_SYMMETRIC };

struct Pad {
  int nd, mode;
  int64_t x[MF_MAX_DIMS], y[MF_MAX_DIMS]; // unpadded and padded dims
  int64_t before[MF_MAX_DIMS], after[MF_MAX_DIMS];
};

MF_DEVICE int64_t pad_source(int mode, int64_t p, int64_t before, int64_t n)
{
  int64_t s = p - before;
  if (s >= 0 && s < n) return s;
  if (mode == PAD_CONSTANT) return -1;
  if (mode == PAD_REFLECT) return s < 0 ? -s : 2 * n - 2 - s;
  return s < 0 ? -s - 1 : 2 * n - 1 - s;
}

// One work item per padded element: its source, or the constant.
template <class T> MF_GLOBAL void pad_kernel(T *y, const T *x, Pad a, T cv, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t rest = i, off = 0, st = 1;
    bool in = true;
    for (int d = a.nd - 1; d >= 0; d--) {
      int64_t s = pad_source(a.mode, rest % a.y[d], a.before[d], a.x[d]);
      rest /= a.y[d];
      if (s < 0) in = false;
      off += s * st;
      st *= a.x[d];
    }
    y[i] = in ? x[off] : cv;
  }
}

// The padded positions reading position s, increasing (the CPU's pad_sinks).
MF_DEVICE int pad_sinks(int mode, int64_t s, int64_t before, int64_t after, int64_t n, int64_t *out)
{
  int c = 0;
  if (mode == PAD_REFLECT && s >= 1 && s <= before) out[c++] = before - s;
  if (mode == PAD_SYMMETRIC && s <= before - 1) out[c++] = before - 1 - s;
  out[c++] = before + s;
  int64_t r = mode == PAD_REFLECT ? 2 * n - 2 - s : 2 * n - 1 - s;
  if (mode != PAD_CONSTANT && r >= n && r < n + after) out[c++] = before + r;
  return c;
}

// One work item per unpadded element: the dy elements reading it, summed
// in increasing order of their position in dy.
template <class T> MF_GLOBAL void pad_grad_kernel(T *dx, const T *dy, Pad a, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t sink[MF_MAX_DIMS][3], cnt[MF_MAX_DIMS], at[MF_MAX_DIMS], st[MF_MAX_DIMS], rest = i;
    int64_t s = 1;
    for (int d = a.nd - 1; d >= 0; d--) {
      cnt[d] = pad_sinks(a.mode, rest % a.x[d], a.before[d], a.after[d], a.x[d], sink[d]);
      rest /= a.x[d];
      at[d] = 0;
      st[d] = s;
      s *= a.y[d];
    }
    T acc = T(0);
    for (;;) {
      int64_t off = 0;
      for (int d = 0; d < a.nd; d++) off += sink[d][at[d]] * st[d];
      acc += dy[off];
      int d = a.nd - 1;
      while (d >= 0 && ++at[d] == cnt[d]) at[d--] = 0;
      if (d < 0) break;
    }
    dx[i] = acc;
  }
}

static int op_mode(const mf_op *op)
{
  const mfi_attr *a = mfi_attr_find(op, "mode");
  if (!a || strcmp(op->def->type, "PadV2") == 0 || strcmp(a->s, "CONSTANT") == 0)
    return PAD_CONSTANT;
  return strcmp(a->s, "REFLECT") == 0 ? PAD_REFLECT : PAD_SYMMETRIC;
}

// in: the op's input (x for the pads, dy for PadGrad); out: prepare's shape.
static Pad pad_args(mfi_kctx *k, const mf_tensor *in, const mfi_meta *out, bool grad)
{
  Pad a = {};
  a.nd = in->ndim;
  a.mode = op_mode(k->op);
  for (int d = 0; d < a.nd; d++) {
    a.x[d] = grad ? out->dims[d] : in->dims[d];
    a.y[d] = grad ? in->dims[d] : out->dims[d];
    a.before[d] = k->params[2 * d], a.after[d] = k->params[2 * d + 1];
  }
  return a;
}

static void k_pad(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  Pad a = pad_args(k, x, om, false);
  char cv[8]; // the constant as the CPU makes it, as element bytes
  mfi_set_f(x->dtype, cv, 0, mfi_attr_float(k->op, "constant_values", 0));
  with_bytes(x->dtype, [&](auto z) {
    using T = decltype(z);
    T c;
    memcpy(&c, cv, sizeof c);
    MF_LAUNCH(pad_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(x), a, c, y->numel);
  });
  launched(k);
}

static void k_pad_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  Pad a = pad_args(k, dy, om, true);
  with_float(dy->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(pad_grad_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(dy), a, y->numel);
  });
  launched(k);
}

// ---------------------------------------------------------------- ReverseV2, ReverseSequence

// One work item per element: the source with the reversed coordinates flipped.
template <class T>
MF_GLOBAL void reverse_kernel(T *y, const T *x, Dims dims, Dims rev, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t rest = i, off = 0, st = 1;
    for (int d = dims.nd - 1; d >= 0; d--) {
      int64_t c = rest % dims.d[d];
      rest /= dims.d[d];
      off += (rev.d[d] ? dims.d[d] - 1 - c : c) * st;
      st *= dims.d[d];
    }
    y[i] = x[off];
  }
}

static void k_reverse(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!out_like(k, 0, x) || x->numel == 0) return;
  Dims dims = dims_of(x->ndim, x->dims), rev = dims_of(x->ndim, k->params);
  with_bytes(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(reverse_kernel<T>, x->numel, k->stream)
    (data<T>(k->out[0]), data<T>(x), dims, rev, x->numel);
  });
  launched(k);
}

// One work item per element; ss, bs: the strides of the sequence and batch
// dimensions; len: the lengths as int64.
template <class T>
MF_GLOBAL void revseq_kernel(T *y, const T *x, const int64_t *len, int64_t ss, int64_t sn,
                             int64_t bs, int64_t bn, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t s = i / ss % sn, n = len[i / bs % bn];
    y[i] = x[s < n ? i + (n - 1 - 2 * s) * ss : i];
  }
}

static void k_revseq(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *len = k->in[1];
  if (!out_like(k, 0, x) || x->numel == 0) return;
  int sa = (int)k->params[0], ba = (int)k->params[1];
  int64_t n = len->numel, *h = (int64_t *)mfi_alloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!h) return oom(k);
  for (int64_t i = 0; i < n; i++) h[i] = mfi_get_i(len->dtype, mfi_data(len), i);
  const int64_t *dl = to_device(k, h, n);
  mfi_free(h, sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!dl) return;
  int64_t ss = dims_prod(x->dims, sa + 1, x->ndim), bs = dims_prod(x->dims, ba + 1, x->ndim);
  with_bytes(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(revseq_kernel<T>, x->numel, k->stream)
    (data<T>(k->out[0]), data<T>(x), dl, ss, x->dims[sa], bs, x->dims[ba], x->numel);
  });
  launched(k);
}

// ---------------------------------------------------------------- GatherNd, ScatterNd

// The slice each index row names, counted in slices of dims[m..) (prepare
// checked the indices, which are in host memory); host memory of rows
// entries, to free with mfi_free(p, *bytes).
static int64_t *host_offsets(mfi_kctx *k, const mf_tensor *ids, const int64_t *dims, int64_t *rows,
                             size_t *bytes)
{
  int m = (int)ids->dims[ids->ndim - 1];
  *rows = dims_prod(ids->dims, 0, ids->ndim - 1);
  *bytes = sizeof(int64_t) * (size_t)(*rows ? *rows : 1);
  int64_t *off = (int64_t *)mfi_alloc(*bytes);
  if (!off) {
    oom(k);
    return NULL;
  }
  for (int64_t j = 0; j < *rows; j++) {
    int64_t o = 0;
    for (int d = 0; d < m; d++)
      o = o * dims[d] + mfi_get_i(ids->dtype, mfi_data(ids), j * m + d) - 1;
    off[j] = o;
  }
  return off;
}

// One work item per output element: row j's slice, element e.
template <class T>
MF_GLOBAL void gather_nd_kernel(T *y, const T *p, const int64_t *off, int64_t w, int64_t total)
{
  MF_FOR(i, total) y[i] = p[off[i / w] * w + i % w];
}

static void k_gather_nd(mfi_kctx *k)
{
  const mf_tensor *p = k->in[0], *ids = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, p->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  int64_t rows, w = dims_prod(p->dims, (int)ids->dims[ids->ndim - 1], p->ndim);
  size_t bytes;
  int64_t *h = host_offsets(k, ids, p->dims, &rows, &bytes);
  if (!h) return;
  const int64_t *off = to_device(k, h, rows);
  mfi_free(h, bytes);
  if (!off) return;
  with_bytes(p->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(gather_nd_kernel<T>, y->numel, k->stream)(data<T>(y), data<T>(p), off, w, y->numel);
  });
  launched(k);
}

// Row sums add as the CPU's: floats in their type, integers wrapping.
template <class T> struct Acc {
  using type = T;
};
template <> struct Acc<int32_t> {
  using type = uint32_t;
};
template <> struct Acc<int64_t> {
  using type = uint64_t;
};

// The dtypes ScatterNd sums: the ordered ones and uint8.
template <class F> inline void with_sum(mf_dtype dt, F f)
{
  if (dt == MF_UINT8)
    f(uint8_t());
  else
    with_real(dt, f);
}

// One work item per output element (slice s, element e): the update rows
// aimed at s, in order (occ[start[s]] .. occ[start[s + 1] - 1]).
template <class T>
MF_GLOBAL void scatter_nd_kernel(T *y, const T *u, const int64_t *start, const int64_t *occ,
                                 int64_t w, int64_t total)
{
  using A = typename Acc<T>::type;
  MF_FOR(i, total)
  {
    int64_t s = i / w, e = i % w;
    A acc = A(0);
    for (int64_t q = start[s]; q < start[s + 1]; q++) acc += (A)u[occ[q] * w + e];
    y[i] = (T)acc;
  }
}

// The update rows grouped by target slice on the host (a counting sort,
// stable), so no two work items write one element.
static void k_scatter_nd(mfi_kctx *k)
{
  const mf_tensor *ids = k->in[0], *u = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  int m = (int)ids->dims[ids->ndim - 1];
  int64_t w = dims_prod(om->dims, m, om->ndim), slices = dims_prod(om->dims, 0, m), rows;
  size_t bytes;
  int64_t *off = host_offsets(k, ids, om->dims, &rows, &bytes);
  if (!off) return;
  size_t gb = sizeof(int64_t) * (size_t)(slices + 1 + rows);
  int64_t *g = (int64_t *)mfi_alloc(gb);
  if (!g) {
    mfi_free(off, bytes);
    return oom(k);
  }
  int64_t *start = g, *occ = g + slices + 1;
  for (int64_t s = 0; s <= slices; s++) start[s] = 0;
  for (int64_t j = 0; j < rows; j++) start[off[j] + 1]++;
  for (int64_t s = 0; s < slices; s++) start[s + 1] += start[s];
  for (int64_t j = 0; j < rows; j++) occ[start[off[j]]++] = j; // start[s]: now slice s's end
  for (int64_t s = slices; s > 0; s--) start[s] = start[s - 1];
  start[0] = 0;
  const int64_t *dg = to_device(k, g, slices + 1 + rows);
  mfi_free(g, gb);
  mfi_free(off, bytes);
  if (!dg) return;
  with_sum(u->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(scatter_nd_kernel<T>, y->numel, k->stream)
    (data<T>(y), data<T>(u), dg, dg + slices + 1, w, y->numel);
  });
  launched(k);
}

// ---------------------------------------------------------------- Where

// The condition comes to the host, where the output lives (host_out).
static void k_where(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  size_t nb = mf_tensor_nbytes(x), hb = nb ? nb : 1;
  void *h = mfi_alloc(hb);
  if (!h) return oom(k);
  if (to_host(k, h, mfi_data(x), nb)) {
    int64_t n = 0;
    for (int64_t i = 0; i < x->numel; i++) n += mfi_get_f(x->dtype, h, i) != 0;
    int64_t dims[2] = {n, x->ndim};
    if (mfi_out_new(k, 0, MF_INT64, 2, dims)) {
      int64_t *o = data<int64_t>(k->out[0]);
      for (int64_t i = 0; i < x->numel; i++) {
        if (mfi_get_f(x->dtype, h, i) == 0) continue;
        int64_t rest = i;
        for (int d = x->ndim - 1; d >= 0; d--) o[d] = rest % x->dims[d] + 1, rest /= x->dims[d];
        o += x->ndim;
      }
    }
  }
  mfi_free(h, hb);
}

// ---------------------------------------------------------------- Cumsum, Cumprod

// One work item per line along the axis (outer o, inner e), serial as on
// the CPU: floats accumulate in their type, integers in 64 bits.
template <class T> struct CumAcc {
  using type = uint64_t;
};
template <> struct CumAcc<float> {
  using type = float;
};
template <> struct CumAcc<double> {
  using type = double;
};

template <class T>
MF_GLOBAL void cum_kernel(T *y, const T *x, int64_t n, int64_t inner, bool prod, bool ex, bool rev,
                          int64_t lines)
{
  using A = typename CumAcc<T>::type;
  MF_FOR(l, lines)
  {
    int64_t o = l / inner, e = l % inner;
    A acc = prod ? A(1) : A(0);
    for (int64_t t = 0; t < n; t++) {
      int64_t at = (o * n + (rev ? n - 1 - t : t)) * inner + e;
      A v = (A)x[at], before = acc;
      acc = prod ? acc * v : acc + v;
      y[at] = (T)(ex ? before : acc);
    }
  }
}

static void k_cum(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!out_like(k, 0, x) || x->numel == 0) return;
  int a = (int)k->params[0];
  bool prod = strcmp(k->op->def->type, "Cumprod") == 0;
  bool ex = mfi_attr_bool(k->op, "exclusive", false), rev = mfi_attr_bool(k->op, "reverse", false);
  int64_t n = x->dims[a], inner = dims_prod(x->dims, a + 1, x->ndim), lines = x->numel / n;
  with_real(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(cum_kernel<T>, lines, k->stream)
    (data<T>(k->out[0]), data<T>(x), n, inner, prod, ex, rev, lines);
  });
  launched(k);
}

extern const mfi_kernel_reg index_kernels[] = {
    {"TopKV2", k_top_k},       {"TopKGrad", k_top_k_grad},
    {"InTopKV2", k_in_top_k},  {"PadV2", k_pad},
    {"MirrorPad", k_pad},      {"PadGrad", k_pad_grad},
    {"ReverseV2", k_reverse},  {"ReverseSequence", k_revseq},
    {"GatherNd", k_gather_nd}, {"ScatterNd", k_scatter_nd},
    {"Where", k_where},        {"Cumsum", k_cum},
    {"Cumprod", k_cum},        {NULL, NULL}};

} // namespace MF_CUDA_NS
