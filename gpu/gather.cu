// Gather, its gradient, one-hot, row deduplication and sparse updates.
//
// Every sum over repeated ids is one work item's serial loop: the ids are
// grouped on the host (where they live, or are copied to), so no two work
// items write one element and repeats add in their order, as on the CPU.
#include "kernel.h"

#include <string.h>

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- helpers

// Ids are int32 or int64 (inference checked).
template <class F> inline void with_index(mf_dtype dt, F f)
{
  if (dt == MF_INT32)
    f(int32_t());
  else
    f(int64_t());
}

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

template <class T> MF_GLOBAL void zero_kernel(T *y, int64_t n) { MF_FOR(i, n) y[i] = T(0); }

static bool zero(mfi_kctx *k, mf_tensor *t)
{
  if (t->numel == 0) return true;
  with_bytes(t->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(zero_kernel<T>, t->numel, k->stream)(data<T>(t), t->numel);
  });
  return launched(k);
}

// ---------------------------------------------------------------- grouping ids

// The positions of equal ids, grouped on the host. Group q is the q-th
// distinct id in order of first occurrence (DedupRows's output order); its
// positions, increasing, are occ[start[q]] .. occ[start[q + 1] - 1] and its
// value is id[q]. One host block laid out start[u + 1], occ[n], id[u], so
// that one copy takes it to the device.
struct Groups {
  int64_t n = 0, u = 0;
  int64_t *buf = NULL;
  size_t cap = 0; // bytes allocated
  Groups() = default;
  Groups(const Groups &) = delete;
  Groups &operator=(const Groups &) = delete;
  ~Groups()
  {
    if (buf) mfi_free(buf, cap);
  }
  size_t bytes() const { return (size_t)(2 * u + 1 + n) * sizeof(int64_t); }
  int64_t id(int64_t q) const { return buf[u + 1 + n + q]; }
};

// The groups as kernels read them: pointers into the device's copy.
struct GroupsDev {
  const int64_t *start, *occ, *id;
  int64_t u, n;
};

static uint64_t mix(int64_t x)
{
  uint64_t z = (uint64_t)x * 0x9E3779B97F4A7C15ull;
  return z ^ (z >> 29);
}

// Groups the n ids (host memory, dtype dt) as the CPU's DedupRows does:
// open addressing on the id's hash, then a counting sort of the positions.
static bool group_ids(mfi_kctx *k, mf_dtype dt, const void *ids, int64_t n, Groups *g)
{
  int64_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  size_t tmp_bytes = (size_t)(cap + 2 * n) * sizeof(int64_t);
  int64_t *tmp = (int64_t *)mfi_alloc(tmp_bytes);
  g->n = n;
  g->cap = (size_t)(3 * n + 1) * sizeof(int64_t);
  g->buf = (int64_t *)mfi_alloc(g->cap);
  if (!tmp || !g->buf) {
    if (tmp) mfi_free(tmp, tmp_bytes);
    oom(k);
    return false;
  }
  int64_t *slot = tmp, *which = tmp + cap, *first = which + n; // which: position -> group
  for (int64_t i = 0; i < cap; i++) slot[i] = -1;
  int64_t u = 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t id = mfi_get_i(dt, ids, j), h = (int64_t)(mix(id) & (uint64_t)(cap - 1));
    while (slot[h] >= 0 && mfi_get_i(dt, ids, first[slot[h]]) != id) h = (h + 1) & (cap - 1);
    if (slot[h] < 0) slot[h] = u, first[u++] = j;
    which[j] = slot[h];
  }
  g->u = u;
  int64_t *start = g->buf, *occ = start + u + 1, *idv = occ + n;
  for (int64_t q = 0; q <= u; q++) start[q] = 0;
  for (int64_t j = 0; j < n; j++) start[which[j] + 1]++;
  for (int64_t q = 0; q < u; q++) start[q + 1] += start[q];
  for (int64_t q = 0; q < u; q++) idv[q] = mfi_get_i(dt, ids, first[q]), first[q] = start[q];
  for (int64_t j = 0; j < n; j++) occ[first[which[j]]++] = j; // first: each group's next place
  mfi_free(tmp, tmp_bytes);
  return true;
}

// The groups copied to device scratch; false with the op's error set.
static bool groups_to_device(mfi_kctx *k, const Groups &g, GroupsDev *d)
{
  int64_t *p = (int64_t *)mfi_scratch(k, g.bytes());
  if (!p || !from_host(k, p, g.buf, g.bytes())) return false;
  *d = GroupsDev{p, p + g.u + 1, p + g.u + 1 + g.n, g.u, g.n};
  return true;
}

// The groups of a host-memory ids input, on the device.
static bool device_groups(mfi_kctx *k, const mf_tensor *ids, Groups *g, GroupsDev *d)
{
  return group_ids(k, ids->dtype, mfi_data(ids), ids->numel, g) && groups_to_device(k, *g, d);
}

// ---------------------------------------------------------------- row sums

// Row sums add as the CPU's do: floats in their own type, integers in 64
// bits that wrap.
template <class T> struct RowSum {
  using type = uint64_t;
};
template <> struct RowSum<float> {
  using type = float;
};
template <> struct RowSum<double> {
  using type = double;
};

// x is [outer, n, inner], y [outer, dim, inner]: y's row for group q (row
// id[q] - 1, or q when !by_id) gets the sum of x's rows at the group's
// positions, in order. One work item per (outer, group, inner) element.
template <class T>
MF_GLOBAL void group_sum_kernel(T *y, const T *x, GroupsDev g, bool by_id, int64_t dim,
                                int64_t inner, int64_t total)
{
  using A = typename RowSum<T>::type;
  MF_FOR(i, total)
  {
    int64_t e = i % inner, q = i / inner % g.u, o = i / inner / g.u;
    A acc = 0;
    for (int64_t p = g.start[q]; p < g.start[q + 1]; p++)
      acc += (A)x[(o * g.n + g.occ[p]) * inner + e];
    y[(o * dim + (by_id ? g.id[q] - 1 : q)) * inner + e] = (T)acc;
  }
}

static bool group_sum(mfi_kctx *k, mf_tensor *y, const mf_tensor *x, const GroupsDev &g, bool by_id,
                      int64_t outer, int64_t dim, int64_t inner)
{
  int64_t total = outer * g.u * inner;
  if (total == 0) return true;
  with_type(y->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(group_sum_kernel<T>, total, k->stream)
    (data<T>(y), data<T>(x), g, by_id, dim, inner, total);
  });
  return launched(k);
}

// ---------------------------------------------------------------- GatherV2, GatherGrad

// p is [outer, dim, inner], y [outer, n, inner]: one work item per element
// of y. The ids (1-based, checked by prepare) are a device copy.
template <class T, class I>
MF_GLOBAL void gather_kernel(T *y, const T *p, const I *ids, int64_t n, int64_t dim, int64_t inner,
                             int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t e = i % inner, j = i / inner % n, o = i / inner / n;
    y[i] = p[(o * dim + (int64_t)ids[j] - 1) * inner + e];
  }
}

static void k_gather(mfi_kctx *k)
{
  const mf_tensor *p = k->in[0], *ids = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  int a = (int)k->params[0];
  if (!mfi_out_new(k, 0, p->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  size_t ib = mf_tensor_nbytes(ids);
  void *dids = mfi_scratch(k, ib);
  if (!dids || !from_host(k, dids, mfi_data(ids), ib)) return;
  int64_t n = ids->numel, dim = p->dims[a], inner = dims_prod(p->dims, a + 1, p->ndim);
  with_bytes(p->dtype, [&](auto z) {
    using T = decltype(z);
    with_index(ids->dtype, [&](auto zi) {
      using I = decltype(zi);
      MF_LAUNCH((gather_kernel<T, I>), y->numel, k->stream)
      (data<T>(y), data<T>(p), (const I *)dids, n, dim, inner, y->numel);
    });
  });
  launched(k);
}

// The params' shape: zeros, then each id's row the sum of its dy rows.
static void k_gather_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *ids = k->in[1], *p = k->in[2];
  const mfi_meta *om = &k->shapes[0];
  int a = (int)k->params[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (!zero(k, y) || y->numel == 0 || ids->numel == 0) return;
  Groups g;
  GroupsDev d;
  if (!device_groups(k, ids, &g, &d)) return;
  group_sum(k, y, dy, d, true, dims_prod(p->dims, 0, a), p->dims[a],
            dims_prod(p->dims, a + 1, p->ndim));
}

// ---------------------------------------------------------------- OneHot

// y is [outer, depth, inner] for ids [outer, inner]; an id outside
// 1..depth matches no position (all off_value), as on the CPU.
template <class T, class I>
MF_GLOBAL void one_hot_kernel(T *y, const I *ids, T on, T off, int64_t depth, int64_t inner,
                              int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t e = i % inner, d = i / inner % depth, o = i / inner / depth;
    y[i] = (int64_t)ids[o * inner + e] == d + 1 ? on : off;
  }
}

static void k_one_hot(mfi_kctx *k)
{
  const mf_tensor *ids = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  int p = (int)k->params[0];
  int64_t depth = k->params[1];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  mf_tensor *y = k->out[0];
  if (y->numel == 0) return;
  // The two values as the CPU makes them, as raw element bytes.
  char on[8], off[8];
  mfi_set_f(om->dtype, on, 0, mfi_attr_float(k->op, "on_value", 1));
  mfi_set_f(om->dtype, off, 0, mfi_attr_float(k->op, "off_value", 0));
  int64_t inner = dims_prod(ids->dims, p, ids->ndim);
  with_bytes(om->dtype, [&](auto z) {
    using T = decltype(z);
    T von, voff;
    memcpy(&von, on, sizeof von);
    memcpy(&voff, off, sizeof voff);
    with_index(ids->dtype, [&](auto zi) {
      using I = decltype(zi);
      MF_LAUNCH((one_hot_kernel<T, I>), y->numel, k->stream)
      (data<T>(y), data<I>(ids), von, voff, depth, inner, y->numel);
    });
  });
  launched(k);
}

// ---------------------------------------------------------------- DedupRows

// The ids are in device memory: they come to the host to be grouped as the
// CPU groups them; the distinct ids go back, and the row sums are a kernel.
static void k_dedup(mfi_kctx *k)
{
  const mf_tensor *v = k->in[0], *ids = k->in[1];
  int64_t n = ids->numel;
  int64_t width = n ? v->numel / n : dims_prod(v->dims, ids->ndim, v->ndim);
  size_t ib = mf_tensor_nbytes(ids), hb = ib ? ib : 1;
  void *hids = mfi_alloc(hb);
  if (!hids) {
    oom(k);
    return;
  }
  Groups g;
  GroupsDev d;
  if (to_host(k, hids, mfi_data(ids), ib) && group_ids(k, ids->dtype, hids, n, &g)) {
    int64_t udims[1] = {g.u}, rdims[MF_MAX_DIMS];
    int rnd = v->ndim - ids->ndim + 1;
    rdims[0] = g.u;
    for (int i = 1; i < rnd; i++) rdims[i] = v->dims[ids->ndim + i - 1];
    // The distinct ids in the ids' dtype, written over the host copy (u <= n).
    for (int64_t q = 0; q < g.u; q++) mfi_set_i(ids->dtype, hids, q, g.id(q));
    bool ok = mfi_out_new(k, 0, ids->dtype, 1, udims) && mfi_out_new(k, 1, v->dtype, rnd, rdims) &&
              from_host(k, mfi_data(k->out[0]), hids, (size_t)g.u * mf_dtype_size(ids->dtype)) &&
              (g.u * width == 0 ||
               (groups_to_device(k, g, &d) && group_sum(k, k->out[1], v, d, false, 1, g.u, width)));
    if (!ok)
      for (int i = 0; i < 2; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
  }
  mfi_free(hids, hb);
}

// ---------------------------------------------------------------- sparse updates

// The arithmetic is the CPU's: double, rounded to T at every store. The
// hyperparameters are device scalars, read by every work item.

// One work item per (group, column): the group's gradient rows, in order.
template <class T>
MF_GLOBAL void sparse_sgd_kernel(T *v, const T *g, const T *lr, GroupsDev gr, int64_t width,
                                 int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t e = i % width, q = i / width, at = (gr.id[q] - 1) * width + e;
    double l = (double)*lr;
    T x = v[at];
    for (int64_t p = gr.start[q]; p < gr.start[q + 1]; p++)
      x = (T)((double)x - l * (double)g[gr.occ[p] * width + e]);
    v[at] = x;
  }
}

template <class T> struct AdamIn {
  const T *b1p, *b2p, *lr, *b1, *b2, *eps;
};

// Every element: the moments decay.
template <class T> MF_GLOBAL void adam_decay_kernel(T *m, T *s, AdamIn<T> h, int64_t total)
{
  MF_FOR(i, total)
  {
    m[i] = (T)((double)m[i] * (double)*h.b1);
    s[i] = (T)((double)s[i] * (double)*h.b2);
  }
}

// One work item per (group, column): the group's gradient rows add in.
template <class T>
MF_GLOBAL void adam_rows_kernel(T *m, T *s, const T *g, AdamIn<T> h, GroupsDev gr, int64_t width,
                                int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t e = i % width, q = i / width, at = (gr.id[q] - 1) * width + e;
    double b1 = (double)*h.b1, b2 = (double)*h.b2;
    T mm = m[at], ss = s[at];
    for (int64_t p = gr.start[q]; p < gr.start[q + 1]; p++) {
      double gi = (double)g[gr.occ[p] * width + e];
      mm = (T)((double)mm + (1 - b1) * gi);
      ss = (T)((double)ss + (1 - b2) * gi * gi);
    }
    m[at] = mm, s[at] = ss;
  }
}

// Every element: the variable moves.
template <class T>
MF_GLOBAL void adam_apply_kernel(T *v, const T *m, const T *s, AdamIn<T> h, int64_t total)
{
  MF_FOR(i, total)
  {
    double b1p = (double)*h.b1p, b2p = (double)*h.b2p, lr = (double)*h.lr, eps = (double)*h.eps;
    double lr_t = lr * sqrt(1 - b2p) / (1 - b1p);
    v[i] = (T)((double)v[i] - lr_t * (double)m[i] / (sqrt((double)s[i]) + eps));
  }
}

// var; lr, rows, ids (host memory).
static void k_sparse_sgd(mfi_kctx *k)
{
  mf_tensor *var = mfi_var_writable(k, 0);
  if (!var) return;
  const mf_tensor *vals = k->in[2], *ids = k->in[3];
  int64_t rows = var->dims[0], width = rows ? var->numel / rows : 0;
  Groups g;
  GroupsDev d;
  if (ids->numel > 0 && width > 0) {
    if (!device_groups(k, ids, &g, &d)) return;
    int64_t total = d.u * width;
    with_float(var->dtype, [&](auto z) {
      using T = decltype(z);
      MF_LAUNCH(sparse_sgd_kernel<T>, total, k->stream)
      (data<T>(var), data<T>(vals), data<T>(k->in[1]), d, width, total);
    });
    if (!launched(k)) return;
  }
  k->out[0] = mf_tensor_retain(var);
}

// var, m, v; beta1_power, beta2_power, lr, beta1, beta2, epsilon, rows, ids
// (host memory). As on the CPU every row moves, touched or not.
static void k_sparse_adam(mfi_kctx *k)
{
  mf_tensor *slot[3];
  for (int i = 0; i < 3; i++)
    if (!(slot[i] = mfi_var_writable(k, i))) return;
  const mf_tensor *vals = k->in[9], *ids = k->in[10];
  int64_t rows = slot[0]->dims[0], width = rows ? slot[0]->numel / rows : 0;
  int64_t total = slot[0]->numel;
  Groups g;
  GroupsDev d = {};
  if (ids->numel > 0 && width > 0 && !device_groups(k, ids, &g, &d)) return;
  if (total > 0) {
    with_float(slot[0]->dtype, [&](auto z) {
      using T = decltype(z);
      AdamIn<T> h = {data<T>(k->in[3]), data<T>(k->in[4]), data<T>(k->in[5]),
                     data<T>(k->in[6]), data<T>(k->in[7]), data<T>(k->in[8])};
      T *v = data<T>(slot[0]), *m = data<T>(slot[1]), *s = data<T>(slot[2]);
      MF_LAUNCH(adam_decay_kernel<T>, total, k->stream)(m, s, h, total);
      if (d.u > 0) {
        MF_LAUNCH(adam_rows_kernel<T>, d.u * width, k->stream)
        (m, s, data<T>(vals), h, d, width, d.u * width);
      }
      MF_LAUNCH(adam_apply_kernel<T>, total, k->stream)(v, m, s, h, total);
    });
    if (!launched(k)) return;
  }
  k->out[0] = mf_tensor_retain(slot[0]);
}

extern const mfi_kernel_reg gather_kernels[] = {{"GatherV2", k_gather},
                                                {"GatherGrad", k_gather_grad},
                                                {"OneHot", k_one_hot},
                                                {"DedupRows", k_dedup},
                                                {"SparseApplyGradientDescent", k_sparse_sgd},
                                                {"SparseApplyAdam", k_sparse_adam},
                                                {NULL, NULL}};

} // namespace MF_CUDA_NS
