/* Ops that gradient builders emit: sums, broadcasts and scatters that undo
 * the shape changes of forward ops.
 *
 * Like array.c, each op has one shape function shared by inference and its
 * prepare hook: prepare reruns it on the runtime shapes (all known), since
 * gradient graphs often carry -1 dims and only the run can check them, and
 * leaves the output shapes in k->shapes and an axis or an axis mask in
 * k->params for the kernel.
 * Sums accumulate in double for floats and in int64 (wrapping) otherwise. */
#include "shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BLK = 256 }; /* elements per block of stack accumulators */

/* TileGrad views dy with two dims per input dim. */
enum { VIEW_DIMS = 2 * MF_MAX_DIMS };

/* ---------------------------------------------------------------- helpers */

/* Whether two static shapes can be the same (unknowns match anything). */
static bool compatible(const mfi_meta *a, const mfi_meta *b)
{
  if (a->ndim < 0 || b->ndim < 0) return true;
  if (a->ndim != b->ndim) return false;
  int64_t d;
  for (int i = 0; i < a->ndim; i++)
    if (!mfi_merge_dim(a->dims[i], b->dims[i], &d)) return false;
  return true;
}

static bool numeric(mfi_infer_ctx *c, mf_dtype dt, const char *what)
{
  if (dt == MF_FLOAT32 || dt == MF_FLOAT64 || dt == MF_INT32 || dt == MF_INT64 || dt == MF_UINT8)
    return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be numeric, got %s", what, mf_dtype_name(dt));
  return false;
}

static void oom(mfi_kctx *k)
{
  mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
}

/* Output 0 as a view of input i with a new shape (same element count). */
static void view_as(mfi_kctx *k, int i, int ndim, const int64_t *dims)
{
  mf_status tmp;
  mfi_clear(&tmp);
  k->out[0] = mf_tensor_reshape(k->in[i], ndim, dims, &tmp);
  if (!k->out[0]) mfi_op_error(k->status, mf_status_code(&tmp), k->op, "%s", tmp.msg);
}

/* mask[d]: dimension d of a rank-`rank` value is reduced by the 'axis'
 * attribute (absent: all of them), as for Sum. */
static bool axis_mask(mfi_infer_ctx *c, int rank, bool *mask, int *nred)
{
  const int64_t *ax = NULL;
  int n = 0, has = mfi_check_ints(c, "axis", &ax, &n);
  if (has < 0) return false;
  for (int d = 0; d < rank; d++) mask[d] = !has;
  for (int i = 0; i < n; i++) {
    int d = mfi_axis(c, ax[i], rank, "axis");
    if (d < 0) return false;
    if (mask[d]) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "axis %d is listed more than once", d + 1);
      return false;
    }
    mask[d] = true;
  }
  *nred = 0;
  for (int d = 0; d < rank; d++) *nred += mask[d];
  return true;
}

/* The inverse: writes the contiguous `src` (shape dims) into `dst` at
 * element offset `base` with per-dimension strides, the last being 1. */
static void strided_place(char *dst, const char *src, size_t es, int nd, const int64_t *dims,
                          const int64_t *st, int64_t base)
{
  int64_t total = mfi_numel(nd, dims);
  if (total == 0) return;
  if (nd == 0) {
    memcpy(dst + base * (int64_t)es, src, es);
    return;
  }
  int64_t idx[MF_MAX_DIMS] = {0};
  int64_t inner = dims[nd - 1], rows = total / inner, off = base;
  size_t row = (size_t)inner * es;
  for (int64_t r = 0; r < rows; r++) {
    memcpy(dst + off * (int64_t)es, src, row);
    src += row;
    for (int d = nd - 2; d >= 0; d--) {
      off += st[d];
      if (++idx[d] < dims[d]) break;
      off -= st[d] * dims[d];
      idx[d] = 0;
    }
  }
}

/* ---------------------------------------------------------------- summing */

/* Adds every element of x, seen with shape nd/dims (row-major, same element
 * count), into acc at the sum of idx[d] * ost[d]; ost is 0 along summed
 * dims, and the last one is 0 or 1. Walks x in rows of the last dim so the
 * inner loops are contiguous. Floats go to af (double), integers to ai. */
static void sum_into(const mf_tensor *x, int nd, const int64_t *dims, const int64_t *ost,
                     double *af, int64_t *ai)
{
  int64_t total = x->numel;
  const void *p = mfi_data(x);
  mf_dtype dt = x->dtype;
  if (total == 0) return;
  if (nd == 0) {
    if (af)
      af[0] += mfi_get_f(dt, p, 0);
    else
      ai[0] = (int64_t)((uint64_t)ai[0] + (uint64_t)mfi_get_i(dt, p, 0));
    return;
  }
  int64_t idx[VIEW_DIMS] = {0};
  int64_t n = dims[nd - 1], s = ost[nd - 1], rows = total / n, off = 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t at = r * n;
    if (dt == MF_FLOAT32) {
      const float *v = (const float *)p + at;
      if (s == 0) {
        double a = 0;
        for (int64_t i = 0; i < n; i++) a += v[i];
        af[off] += a;
      } else {
        double *o = af + off;
        for (int64_t i = 0; i < n; i++) o[i] += v[i];
      }
    } else if (dt == MF_FLOAT64) {
      const double *v = (const double *)p + at;
      if (s == 0) {
        double a = 0;
        for (int64_t i = 0; i < n; i++) a += v[i];
        af[off] += a;
      } else {
        double *o = af + off;
        for (int64_t i = 0; i < n; i++) o[i] += v[i];
      }
    } else {
      for (int64_t i = 0; i < n; i++)
        ai[off + i * s] = (int64_t)((uint64_t)ai[off + i * s] + (uint64_t)mfi_get_i(dt, p, at + i));
    }
    for (int d = nd - 2; d >= 0; d--) {
      off += ost[d];
      if (++idx[d] < dims[d]) break;
      off -= ost[d] * dims[d];
      idx[d] = 0;
    }
  }
}

/* Output 0 (x's dtype, shape ond/odims) = x summed as sum_into describes. */
static void sum_kernel(mfi_kctx *k, const mf_tensor *x, int nd, const int64_t *dims,
                       const int64_t *ost, int ond, const int64_t *odims)
{
  if (!mfi_out_new(k, 0, x->dtype, ond, odims)) return;
  mf_tensor *y = k->out[0];
  int64_t on = y->numel;
  void *yp = mfi_data(y);
  if (x->dtype == MF_FLOAT64) { /* the output is the accumulator */
    memset(yp, 0, sizeof(double) * (size_t)on);
    sum_into(x, nd, dims, ost, yp, NULL);
    return;
  }
  bool fl = x->dtype == MF_FLOAT32;
  void *acc = calloc(on ? (size_t)on : 1, fl ? sizeof(double) : sizeof(int64_t));
  if (!acc) {
    mfi_drop_outputs(k, 1);
    oom(k);
    return;
  }
  if (fl) {
    sum_into(x, nd, dims, ost, acc, NULL);
    const double *a = acc;
    float *yf = yp;
    for (int64_t i = 0; i < on; i++) yf[i] = (float)a[i];
  } else {
    sum_into(x, nd, dims, ost, NULL, acc);
    const int64_t *a = acc;
    for (int64_t i = 0; i < on; i++) mfi_set_i(x->dtype, yp, i, a[i]);
  }
  free(acc);
}

/* ---------------------------------------------------------------- AddN */

static bool addn_shape(mfi_infer_ctx *c, int n, const mfi_meta *in, mfi_meta *out)
{
  if (!numeric(c, in[0].dtype, "input 1")) return false;
  *out = in[0];
  int first = in[0].ndim >= 0 ? 0 : -1;
  for (int i = 1; i < n; i++) {
    if (in[i].dtype != in[0].dtype) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d is %s but input 1 is %s", i + 1,
                      mf_dtype_name(in[i].dtype), mf_dtype_name(in[0].dtype));
      return false;
    }
    if (in[i].ndim < 0) continue;
    if (first < 0) {
      *out = in[i], first = i;
      continue;
    }
    bool same = in[i].ndim == out->ndim;
    for (int d = 0; same && d < out->ndim; d++)
      same = mfi_merge_dim(out->dims[d], in[i].dims[d], &out->dims[d]);
    if (!same) {
      char x[128], y[128];
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d has shape %s but input %d has shape %s",
                      i + 1, mfi_meta_str(&in[i], x, sizeof x), first + 1,
                      mfi_meta_str(&in[first], y, sizeof y));
      return false;
    }
  }
  out->dtype = in[0].dtype;
  return true;
}

static void infer_addn(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  addn_shape(c, c->op->nin, c->in, &c->op->out[0]);
}

static void prepare_addn(mfi_kctx *k)
{
  int n = k->op->nin;
  mfi_meta *in = malloc(sizeof *in * n);
  if (!in) {
    oom(k);
    return;
  }
  mfi_input_metas(k, n, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  addn_shape(&c, n, in, &k->shapes[0]);
  free(in);
}

static void cpu_addn(mfi_kctx *k)
{
  int n = k->op->nin;
  mfi_meta om = k->shapes[0];
  if (n == 1) {
    k->out[0] = mf_tensor_retain(k->in[0]);
    return;
  }
  if (!mfi_out_new(k, 0, om.dtype, om.ndim, om.dims)) return;
  int64_t total = k->out[0]->numel;
  void *yp = mfi_data(k->out[0]);
  if (om.dtype == MF_FLOAT32) {
    /* Blocks summed in double, then rounded once. */
    double acc[BLK];
    float *y = yp;
    for (int64_t at = 0; at < total; at += BLK) {
      int64_t m = total - at < BLK ? total - at : BLK;
      const float *a = (const float *)mfi_data(k->in[0]) + at;
      for (int64_t j = 0; j < m; j++) acc[j] = a[j];
      for (int i = 1; i < n; i++) {
        const float *b = (const float *)mfi_data(k->in[i]) + at;
        for (int64_t j = 0; j < m; j++) acc[j] += b[j];
      }
      for (int64_t j = 0; j < m; j++) y[at + j] = (float)acc[j];
    }
  } else if (om.dtype == MF_FLOAT64) {
    double *y = yp;
    memcpy(y, mfi_data(k->in[0]), sizeof(double) * (size_t)total);
    for (int i = 1; i < n; i++) {
      const double *b = mfi_data(k->in[i]);
      for (int64_t j = 0; j < total; j++) y[j] += b[j];
    }
  } else {
    for (int64_t j = 0; j < total; j++) {
      uint64_t a = 0;
      for (int i = 0; i < n; i++) a += (uint64_t)mfi_get_i(om.dtype, mfi_data(k->in[i]), j);
      mfi_set_i(om.dtype, yp, j, (int64_t)a);
    }
  }
}

/* ---------------------------------------------------------------- SumToShapeOf */

/* `like` must broadcast to t's shape: no more dims, and each (aligned from
 * the end) is 1 or t's. */
static bool sum_to_shape(mfi_infer_ctx *c, const mfi_meta *t, const mfi_meta *like, mfi_meta *out)
{
  if (!numeric(c, t->dtype, "the value to sum")) return false;
  *out = *like;
  out->dtype = t->dtype;
  if (t->ndim < 0 || like->ndim < 0) return true;
  bool ok = like->ndim <= t->ndim;
  for (int i = 0; ok && i < like->ndim; i++) {
    int64_t l = like->dims[i], d = t->dims[i + t->ndim - like->ndim];
    ok = l < 0 || d < 0 || l == 1 || l == d;
  }
  if (!ok) {
    char a[128], b[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "cannot sum a %s value down to the shape %s, which does not broadcast to it",
                    mfi_meta_str(t, a, sizeof a), mfi_meta_str(like, b, sizeof b));
    return false;
  }
  return true;
}

static void infer_sum_to_shape(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  sum_to_shape(c, &c->in[0], &c->in[1], &c->op->out[0]);
}

static void prepare_sum_to_shape(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  sum_to_shape(&c, &in[0], &in[1], &k->shapes[0]);
}

static void cpu_sum_to_shape(mfi_kctx *k)
{
  const mf_tensor *t = k->in[0], *like = k->in[1];
  if (t->numel == like->numel) { /* only leading 1s differ: a view */
    view_as(k, 0, like->ndim, like->dims);
    return;
  }
  int nd = t->ndim, pad = t->ndim - like->ndim;
  int64_t ost[MF_MAX_DIMS], s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int64_t l = d >= pad ? like->dims[d - pad] : 1;
    ost[d] = l == 1 ? 0 : s;
    s *= l;
  }
  sum_kernel(k, t, nd, t->dims, ost, like->ndim, like->dims);
}

/* ---------------------------------------------------------------- ReshapeLike */

static bool reshape_like_shape(mfi_infer_ctx *c, const mfi_meta *t, const mfi_meta *like,
                               mfi_meta *out)
{
  *out = *like;
  out->dtype = t->dtype;
  int64_t a = mfi_known_numel(t), b = mfi_known_numel(like);
  if (a >= 0 && b >= 0 && a != b) {
    char x[128], y[128];
    mfi_infer_error(
        c, MF_INVALID_ARGUMENT, "cannot reshape a %s value (%lld elements) to %s (%lld elements)",
        mfi_meta_str(t, x, sizeof x), (long long)a, mfi_meta_str(like, y, sizeof y), (long long)b);
    return false;
  }
  return true;
}

static void infer_reshape_like(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  reshape_like_shape(c, &c->in[0], &c->in[1], &c->op->out[0]);
}

static void prepare_reshape_like(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  reshape_like_shape(&c, &in[0], &in[1], &k->shapes[0]);
}

static void cpu_reshape_like(mfi_kctx *k) { view_as(k, 0, k->shapes[0].ndim, k->shapes[0].dims); }

/* ---------------------------------------------------------------- ExpandReduced */

/* t is x reduced over 'axis' (keep_dims or not); the result has x's shape. */
static bool expand_reduced_shape(mfi_infer_ctx *c, const mfi_meta *t, const mfi_meta *x,
                                 mfi_meta *out, bool *mask)
{
  bool keep;
  if (!mfi_check_bool(c, "keep_dims", false, false, &keep)) return false;
  *out = *x;
  out->dtype = t->dtype;
  if (x->ndim < 0) {
    const int64_t *ax;
    int n;
    return mfi_check_ints(c, "axis", &ax, &n) >= 0;
  }
  int nred;
  if (!axis_mask(c, x->ndim, mask, &nred)) return false;
  if (t->ndim < 0) return true;
  mfi_meta want = {t->dtype, 0, {0}};
  for (int d = 0; d < x->ndim; d++)
    if (!mask[d] || keep) want.dims[want.ndim++] = mask[d] ? 1 : x->dims[d];
  if (!compatible(t, &want)) {
    char a[128], b[128], w[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "the reduced value has shape %s, but reducing a %s value over the axes%s "
                    "gives %s",
                    mfi_meta_str(t, a, sizeof a), mfi_meta_str(x, b, sizeof b),
                    keep ? " (keep_dims)" : "", mfi_meta_str(&want, w, sizeof w));
    return false;
  }
  return true;
}

static void infer_expand_reduced(mfi_infer_ctx *c)
{
  bool mask[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  expand_reduced_shape(c, &c->in[0], &c->in[1], &c->op->out[0], mask);
}

/* An axis mask worked out by prepare: params[d] is 1 where dimension d is
 * reduced. */
static void mask_to_params(mfi_kctx *k, const bool *mask, int rank)
{
  for (int d = 0; d < rank; d++) k->params[d] = mask[d];
}

static void prepare_expand_reduced(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  bool mask[MF_MAX_DIMS];
  if (expand_reduced_shape(&c, &in[0], &in[1], &k->shapes[0], mask))
    mask_to_params(k, mask, in[1].ndim);
}

static void cpu_expand_reduced(mfi_kctx *k)
{
  const mf_tensor *t = k->in[0], *x = k->in[1];
  const int64_t *mask = k->params;
  if (t->numel == x->numel) { /* only size-1 dims were reduced */
    view_as(k, 0, x->ndim, x->dims);
    return;
  }
  int nd = x->ndim;
  int64_t ist[MF_MAX_DIMS], s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    ist[d] = mask[d] ? 0 : s;
    if (!mask[d]) s *= x->dims[d];
  }
  if (!mfi_out_new(k, 0, t->dtype, nd, x->dims)) return;
  mfi_strided_copy(mfi_data(k->out[0]), mfi_data(t), mf_dtype_size(t->dtype), nd, x->dims, ist);
}

/* ---------------------------------------------------------------- ProdExclusive */

static bool prod_exclusive_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, bool *mask)
{
  if (!numeric(c, x->dtype, "the input")) return false;
  *out = *x;
  int nred;
  if (x->ndim < 0) {
    const int64_t *ax;
    int n;
    return mfi_check_ints(c, "axis", &ax, &n) >= 0;
  }
  return axis_mask(c, x->ndim, mask, &nred);
}

static void infer_prod_exclusive(mfi_infer_ctx *c)
{
  bool mask[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  prod_exclusive_shape(c, &c->in[0], &c->op->out[0], mask);
}

/* Each element times nothing but the others of its group: a prefix pass
 * then a suffix pass, so zeros need no special case and nothing divides. */
static void exclusive_f(const double *v, double *r, int64_t n)
{
  double run = 1;
  for (int64_t j = 0; j < n; j++) r[j] = run, run *= v[j];
  run = 1;
  for (int64_t j = n - 1; j >= 0; j--) r[j] *= run, run *= v[j];
}

static void exclusive_i(const uint64_t *v, uint64_t *r, int64_t n)
{
  uint64_t run = 1;
  for (int64_t j = 0; j < n; j++) r[j] = run, run *= v[j];
  run = 1;
  for (int64_t j = n - 1; j >= 0; j--) r[j] *= run, run *= v[j];
}

static void prepare_prod_exclusive(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  bool mask[MF_MAX_DIMS];
  if (prod_exclusive_shape(&c, &xm, &k->shapes[0], mask)) mask_to_params(k, mask, xm.ndim);
}

static void cpu_prod_exclusive(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const int64_t *mask = k->params;
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, x->dims)) return;
  int nd = x->ndim;
  int64_t total = x->numel, g = 1;
  if (total == 0) return;
  for (int d = 0; d < nd; d++)
    if (mask[d]) g *= x->dims[d];
  /* Element i goes to row (its group) and column (its place in the group)
   * of a [groups, g] buffer: pos = group * g + place, walked with an
   * odometer whose strides mix the two. */
  int64_t cst[MF_MAX_DIMS], gs = 1, ps = 1;
  for (int d = nd - 1; d >= 0; d--) {
    if (mask[d])
      cst[d] = ps, ps *= x->dims[d];
    else
      cst[d] = gs * g, gs *= x->dims[d];
  }
  int64_t *pos = malloc(sizeof(int64_t) * (size_t)total);
  double *vf = malloc(sizeof(double) * (size_t)total * 2); /* also holds 2 uint64 rows */
  if (!pos || !vf) {
    free(pos);
    free(vf);
    mfi_drop_outputs(k, 1);
    oom(k);
    return;
  }
  int64_t idx[MF_MAX_DIMS] = {0}, p = 0;
  for (int64_t i = 0; i < total; i++) {
    pos[i] = p;
    for (int d = nd - 1; d >= 0; d--) {
      p += cst[d];
      if (++idx[d] < x->dims[d]) break;
      p -= cst[d] * x->dims[d];
      idx[d] = 0;
    }
  }
  const void *xp = mfi_data(x);
  void *yp = mfi_data(k->out[0]);
  if (mfi_is_float(x->dtype)) {
    double *v = vf, *r = vf + total;
    if (x->dtype == MF_FLOAT32)
      for (int64_t i = 0; i < total; i++) v[pos[i]] = ((const float *)xp)[i];
    else
      for (int64_t i = 0; i < total; i++) v[pos[i]] = ((const double *)xp)[i];
    for (int64_t o = 0; o < total; o += g) exclusive_f(v + o, r + o, g);
    if (x->dtype == MF_FLOAT32)
      for (int64_t i = 0; i < total; i++) ((float *)yp)[i] = (float)r[pos[i]];
    else
      for (int64_t i = 0; i < total; i++) ((double *)yp)[i] = r[pos[i]];
  } else {
    uint64_t *v = (uint64_t *)vf, *r = v + total;
    for (int64_t i = 0; i < total; i++) v[pos[i]] = (uint64_t)mfi_get_i(x->dtype, xp, i);
    for (int64_t o = 0; o < total; o += g) exclusive_i(v + o, r + o, g);
    for (int64_t i = 0; i < total; i++) mfi_set_i(x->dtype, yp, i, (int64_t)r[pos[i]]);
  }
  free(pos);
  free(vf);
}

/* ---------------------------------------------------------------- SplitLike */

/* Output i: x_i's shape with dy's dtype; along the axis the x_i take
 * consecutive pieces of dy, and elsewhere all match dy. */
static bool split_like_shape(mfi_infer_ctx *c, int n, const mfi_meta *dy, const mfi_meta *xs,
                             mfi_meta *out, int *axis)
{
  int64_t ax;
  if (!mfi_check_int(c, "axis", true, 0, &ax)) return false;
  int rank = dy->ndim;
  for (int i = 0; i < n; i++) {
    if (xs[i].ndim < 0) continue;
    if (rank >= 0 && xs[i].ndim != rank) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d has rank %d but the gradient has rank %d",
                      i + 2, xs[i].ndim, rank);
      return false;
    }
    rank = xs[i].ndim;
  }
  for (int i = 0; i < n; i++) {
    out[i] = xs[i];
    out[i].dtype = dy->dtype;
  }
  if (rank < 0) return true;
  if (rank == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot split scalars");
    return false;
  }
  int a = mfi_axis(c, ax, rank, "axis");
  if (a < 0) return false;
  int64_t sum = 0;
  for (int i = 0; i < n; i++) {
    if (xs[i].ndim < 0) { /* dy's shape except along the axis */
      out[i].ndim = rank;
      for (int d = 0; d < rank; d++) out[i].dims[d] = d == a || dy->ndim < 0 ? -1 : dy->dims[d];
      sum = -1;
      continue;
    }
    for (int d = 0; d < rank && dy->ndim >= 0; d++) {
      if (d != a && !mfi_merge_dim(xs[i].dims[d], dy->dims[d], &out[i].dims[d])) {
        char x[128], y[128];
        mfi_infer_error(c, MF_INVALID_ARGUMENT,
                        "input %d has shape %s but the gradient has shape %s; only dimension %d "
                        "(the axis) may differ",
                        i + 2, mfi_meta_str(&xs[i], x, sizeof x), mfi_meta_str(dy, y, sizeof y),
                        a + 1);
        return false;
      }
    }
    if (sum >= 0) sum = xs[i].dims[a] < 0 ? -1 : sum + xs[i].dims[a];
  }
  if (sum >= 0 && dy->ndim >= 0 && dy->dims[a] >= 0 && sum != dy->dims[a]) {
    char y[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "the pieces have %lld entries along dimension %d in all, but the gradient "
                    "%s has %lld",
                    (long long)sum, a + 1, mfi_meta_str(dy, y, sizeof y), (long long)dy->dims[a]);
    return false;
  }
  *axis = a;
  return true;
}

static void infer_split_like(mfi_infer_ctx *c)
{
  int n = c->op->nin - 1, a;
  if (!mfi_set_outputs(c, n)) return;
  split_like_shape(c, n, &c->in[0], c->in + 1, c->op->out, &a);
}

/* shapes[i] for every output; params[0]: the axis. */
static void prepare_split_like(mfi_kctx *k)
{
  int n = k->op->nin - 1, a = 0;
  mfi_meta *in = malloc(sizeof *in * (n + 1));
  if (!in) {
    oom(k);
    return;
  }
  mfi_input_metas(k, n + 1, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  split_like_shape(&c, n, &in[0], in + 1, k->shapes, &a);
  free(in);
  k->params[0] = a;
}

static void cpu_split_like(mfi_kctx *k)
{
  int n = k->op->nin - 1, a = (int)k->params[0];
  if (!mfi_outs_new(k, n)) return;
  const mf_tensor *dy = k->in[0];
  size_t es = mf_dtype_size(dy->dtype);
  int64_t outer = mfi_dims_prod(dy->dims, 0, a), inner = mfi_dims_prod(dy->dims, a + 1, dy->ndim);
  size_t row = (size_t)(dy->dims[a] * inner) * es, at = 0;
  const char *src = mfi_data(dy);
  for (int i = 0; i < n; i++) {
    size_t chunk = (size_t)(k->out[i]->dims[a] * inner) * es;
    char *dst = mfi_data(k->out[i]);
    for (int64_t o = 0; o < outer; o++) memcpy(dst + o * chunk, src + o * row + at, chunk);
    at += chunk;
  }
}

/* ---------------------------------------------------------------- SliceGrad */

/* The output has x's shape; dy must have the slice's. */
static bool slice_grad_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *dy,
                             const mfi_meta *x, mfi_meta *out, int64_t *start)
{
  mfi_meta sl;
  *out = *x;
  out->dtype = dy->dtype;
  if (!mfi_slice_shape(c, k, 2, x, &sl, start)) return false;
  if (!compatible(dy, &sl)) {
    char a[128], b[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the gradient has shape %s but the slice has shape %s",
                    mfi_meta_str(dy, a, sizeof a), mfi_meta_str(&sl, b, sizeof b));
    return false;
  }
  if (x->ndim < 0) { /* the rank, at least, is begin's */
    out->ndim = sl.ndim;
    for (int d = 0; d < sl.ndim; d++) out->dims[d] = -1;
  }
  return true;
}

static void infer_slice_grad(mfi_infer_ctx *c)
{
  int64_t start[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  slice_grad_shape(c, NULL, &c->in[0], &c->in[1], &c->op->out[0], start);
}

/* params[i]: the slice's 0-based start along dimension i. */
static void prepare_slice_grad(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  slice_grad_shape(&c, k, &in[0], &in[1], &k->shapes[0], k->params);
}

static void cpu_slice_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *x = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  const int64_t *start = k->params;
  int64_t st[MF_MAX_DIMS], base = 0;
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  size_t es = mf_dtype_size(om->dtype);
  memset(mfi_data(k->out[0]), 0, mf_tensor_nbytes(k->out[0]));
  mfi_row_strides(x->ndim, x->dims, st);
  for (int i = 0; i < x->ndim; i++) base += start[i] * st[i];
  strided_place(mfi_data(k->out[0]), mfi_data(dy), es, dy->ndim, dy->dims, st, base);
}

/* ---------------------------------------------------------------- GatherGrad */

/* in: dy, ids, params. The output has params' shape and dy's dtype. */
static bool gather_grad_shape(mfi_infer_ctx *c, const mfi_meta *in, mfi_meta *out, int *axis)
{
  mfi_meta g;
  if (!numeric(c, in[0].dtype, "the gradient")) return false;
  if (!mfi_gather_shape(c, &in[2], &in[1], &g, axis)) return false;
  if (!compatible(&in[0], &g)) {
    char a[128], b[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the gradient has shape %s but the gather has shape %s",
                    mfi_meta_str(&in[0], a, sizeof a), mfi_meta_str(&g, b, sizeof b));
    return false;
  }
  *out = in[2];
  out->dtype = in[0].dtype;
  return true;
}

static void infer_gather_grad(mfi_infer_ctx *c)
{
  int a;
  if (!mfi_set_outputs(c, 1)) return;
  gather_grad_shape(c, c->in, &c->op->out[0], &a);
}

/* params[0]: the axis. The ids, in host memory, are in range. */
static void prepare_gather_grad(mfi_kctx *k)
{
  mfi_meta in[3];
  mfi_input_metas(k, 3, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  int a = 0;
  if (!gather_grad_shape(&c, in, &k->shapes[0], &a)) return;
  k->params[0] = a;
  mfi_check_ids(k, k->in[1], in[2].dims[a], a);
}

static void cpu_gather_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *ids = k->in[1], *p = k->in[2];
  const mfi_meta *om = &k->shapes[0];
  int a = (int)k->params[0];
  int64_t n = ids->numel, dim = p->dims[a];
  const void *iv = mfi_data(ids);
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  memset(mfi_data(k->out[0]), 0, mf_tensor_nbytes(k->out[0]));
  int64_t outer = mfi_dims_prod(p->dims, 0, a), inner = mfi_dims_prod(p->dims, a + 1, p->ndim);
  mf_dtype dt = om->dtype;
  const void *src = mfi_data(dy);
  void *dst = mfi_data(k->out[0]);
  /* Rows of dy added into the rows of the result they came from, in order,
   * so repeated ids accumulate deterministically. */
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < n; j++) {
      int64_t to = (o * dim + mfi_get_i(ids->dtype, iv, j) - 1) * inner, from = (o * n + j) * inner;
      if (dt == MF_FLOAT32) {
        float *y = (float *)dst + to;
        const float *v = (const float *)src + from;
        for (int64_t e = 0; e < inner; e++) y[e] += v[e];
      } else if (dt == MF_FLOAT64) {
        double *y = (double *)dst + to;
        const double *v = (const double *)src + from;
        for (int64_t e = 0; e < inner; e++) y[e] += v[e];
      } else {
        for (int64_t e = 0; e < inner; e++)
          mfi_set_i(dt, dst, to + e,
                    (int64_t)((uint64_t)mfi_get_i(dt, dst, to + e) +
                              (uint64_t)mfi_get_i(dt, src, from + e)));
      }
    }
}

/* ---------------------------------------------------------------- TileGrad */

/* The output has x's shape; dy must have x's tiled by 'multiples'. */
static bool tile_grad_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *dy,
                            const mfi_meta *x, mfi_meta *out, int64_t *mult)
{
  if (!numeric(c, dy->dtype, "the gradient")) return false;
  mfi_meta tiled;
  if (!mfi_tile_shape(c, k, 2, x, &tiled, mult)) return false;
  tiled.dtype = dy->dtype;
  if (!compatible(dy, &tiled)) {
    char a[128], b[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the gradient has shape %s but the tiling gives %s",
                    mfi_meta_str(dy, a, sizeof a), mfi_meta_str(&tiled, b, sizeof b));
    return false;
  }
  *out = *x;
  out->dtype = dy->dtype;
  if (x->ndim < 0) {
    out->ndim = tiled.ndim;
    for (int i = 0; i < tiled.ndim; i++) out->dims[i] = -1;
  }
  return true;
}

static void infer_tile_grad(mfi_infer_ctx *c)
{
  int64_t m[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  tile_grad_shape(c, NULL, &c->in[0], &c->in[1], &c->op->out[0], m);
}

/* params[i]: the multiple for dimension i. */
static void prepare_tile_grad(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  tile_grad_shape(&c, k, &in[0], &in[1], &k->shapes[0], k->params);
}

static void cpu_tile_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *x = k->in[1];
  const int64_t *m = k->params;
  if (dy->numel == x->numel && x->numel > 0) { /* all multiples 1 */
    view_as(k, 0, x->ndim, x->dims);
    return;
  }
  /* dy seen as [m1, x1, m2, x2, ...]: sum over the m dims. */
  int nd = x->ndim;
  int64_t vd[VIEW_DIMS], ost[VIEW_DIMS], xst[MF_MAX_DIMS];
  mfi_row_strides(nd, x->dims, xst);
  for (int d = 0; d < nd; d++) {
    vd[2 * d] = m[d], vd[2 * d + 1] = x->dims[d];
    ost[2 * d] = 0, ost[2 * d + 1] = xst[d];
  }
  sum_kernel(k, dy, 2 * nd, vd, ost, nd, x->dims);
}

/* ---------------------------------------------------------------- registry */

/* The sum's gradient reaches every term unchanged. */
static void grad_addn(mfi_grad_ctx *g)
{
  for (int i = 0; i < g->op->nin; i++) g->dx[i] = g->dy[0];
}

mfi_opdef mfi_ops_grad[] = {
    {.type = "AddN",
     .doc = "Adds all inputs element-wise (same shapes).",
     .inputs = "inputs*",
     .outputs = "sum",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = -1,
     .infer = infer_addn,
     .prepare = prepare_addn,
     .kernel = {[MFI_DEVICE_CPU] = cpu_addn},
     .grad = grad_addn},
    {.type = "SumToShapeOf",
     .doc = "Sums t over its broadcast dimensions down to the shape of like.",
     .inputs = "t, like",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_sum_to_shape,
     .prepare = prepare_sum_to_shape,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sum_to_shape}},
    {.type = "ReshapeLike",
     .doc = "Reshapes t to the run-time shape of like.",
     .inputs = "t, like",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_ANY_DEVICE,
     .infer = infer_reshape_like,
     .prepare = prepare_reshape_like,
     .kernel = {[MFI_DEVICE_CPU] = cpu_reshape_like}},
    {.type = "ExpandReduced",
     .doc = "Broadcasts a reduction's result t back to the shape of x.",
     .inputs = "t, x",
     .outputs = "output",
     .attrs = "axis: ints?; keep_dims: bool = false",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_expand_reduced,
     .prepare = prepare_expand_reduced,
     .kernel = {[MFI_DEVICE_CPU] = cpu_expand_reduced}},
    {.type = "ProdExclusive",
     .doc = "Each element's product of the others in its reduction group (Prod's gradient).",
     .inputs = "x",
     .outputs = "output",
     .attrs = "axis: ints?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_prod_exclusive,
     .prepare = prepare_prod_exclusive,
     .kernel = {[MFI_DEVICE_CPU] = cpu_prod_exclusive}},
    {.type = "SplitLike",
     .doc =
         "Splits dy along an axis into pieces shaped like the other inputs (ConcatV2's gradient).",
     .inputs = "dy, x*",
     .outputs = "output*",
     .attrs = "axis: int",
     .min_inputs = 2,
     .max_inputs = -1,
     .infer = infer_split_like,
     .prepare = prepare_split_like,
     .kernel = {[MFI_DEVICE_CPU] = cpu_split_like}},
    {.type = "SliceGrad",
     .doc = "Scatters dy into zeros shaped like x at the slice (Slice's gradient).",
     .inputs = "dy, x, begin?, size?",
     .outputs = "output",
     .attrs = "begin: ints?; size: ints?",
     .min_inputs = 2,
     .max_inputs = 4,
     .infer = infer_slice_grad,
     .prepare = prepare_slice_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_slice_grad},
     .host_in = 1u << 2 | 1u << 3},
    {.type = "GatherGrad",
     .doc =
         "Scatter-adds dy into zeros shaped like params at 1-based indices (GatherV2's gradient).",
     .inputs = "dy, indices, params",
     .outputs = "output",
     .attrs = "axis: int = 1",
     .min_inputs = 3,
     .max_inputs = 3,
     .infer = infer_gather_grad,
     .prepare = prepare_gather_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gather_grad},
     .host_in = 1u << 1},
    {.type = "TileGrad",
     .doc = "Sums dy over the tiles back to the shape of x (Tile's gradient).",
     .inputs = "dy, x, multiples?",
     .outputs = "output",
     .attrs = "multiples: ints?",
     .min_inputs = 2,
     .max_inputs = 3,
     .infer = infer_tile_grad,
     .prepare = prepare_tile_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_tile_grad},
     .host_in = 1u << 2},
    {0},
};
