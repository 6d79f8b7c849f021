/* Reductions (Sum, Mean, Max, Min, Prod) and ArgMax/ArgMin.
 *
 * Floats accumulate in double and integers in int64, always in the same
 * order on one thread, so results never depend on scheduling. When the
 * reduced axes are contiguous (ignoring size-1 dims) the input is viewed as
 * [outer, reduced, inner] and reduced with simple loops over blocks that
 * have been converted to the accumulator type; other axis sets take a
 * general strided loop. */
#include "shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD };

static const char *const kind_names[] = {"sum", "mean", "max", "min", "product"};

enum { BLK = 256 }; /* elements converted per block: small enough for the stack */

/* ---------------------------------------------------------------- helpers */

static bool numeric_input(mfi_infer_ctx *c, mf_dtype dt)
{
  if (dt == MF_FLOAT32 || dt == MF_FLOAT64 || dt == MF_INT32 || dt == MF_INT64 || dt == MF_UINT8)
    return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a numeric input, got %s", mf_dtype_name(dt));
  return false;
}

/* Block conversions to and from the accumulator types: one dtype switch per
 * block rather than per element. */
static void load_f(mf_dtype dt, const void *p, int64_t at, int64_t n, double *buf)
{
  switch (dt) {
  case MF_FLOAT32: {
    const float *s = (const float *)p + at;
    for (int64_t i = 0; i < n; i++) buf[i] = s[i];
    break;
  }
  case MF_FLOAT64: memcpy(buf, (const double *)p + at, sizeof(double) * n); break;
  default:
    for (int64_t i = 0; i < n; i++) buf[i] = mfi_get_f(dt, p, at + i);
  }
}

static void load_i(mf_dtype dt, const void *p, int64_t at, int64_t n, int64_t *buf)
{
  switch (dt) {
  case MF_INT32: {
    const int32_t *s = (const int32_t *)p + at;
    for (int64_t i = 0; i < n; i++) buf[i] = s[i];
    break;
  }
  case MF_INT64: memcpy(buf, (const int64_t *)p + at, sizeof(int64_t) * n); break;
  case MF_UINT8: {
    const uint8_t *s = (const uint8_t *)p + at;
    for (int64_t i = 0; i < n; i++) buf[i] = s[i];
    break;
  }
  default:
    for (int64_t i = 0; i < n; i++) buf[i] = mfi_get_i(dt, p, at + i);
  }
}

static void store_f(mf_dtype dt, void *p, int64_t at, const double *v, int64_t n)
{
  switch (dt) {
  case MF_FLOAT32: {
    float *d = (float *)p + at;
    for (int64_t i = 0; i < n; i++) d[i] = (float)v[i];
    break;
  }
  case MF_FLOAT64: memcpy((double *)p + at, v, sizeof(double) * n); break;
  default:
    for (int64_t i = 0; i < n; i++) mfi_set_f(dt, p, at + i, v[i]);
  }
}

static void store_i(mf_dtype dt, void *p, int64_t at, const int64_t *v, int64_t n)
{
  switch (dt) {
  case MF_INT64: memcpy((int64_t *)p + at, v, sizeof(int64_t) * n); break;
  case MF_INT32: {
    int32_t *d = (int32_t *)p + at;
    for (int64_t i = 0; i < n; i++) d[i] = (int32_t)v[i];
    break;
  }
  default:
    for (int64_t i = 0; i < n; i++) mfi_set_i(dt, p, at + i, v[i]);
  }
}

/* ---------------------------------------------------------------- float accumulation */

static double init_f(int kind)
{
  switch (kind) {
  case R_PROD: return 1;
  case R_MAX: return -INFINITY;
  case R_MIN: return INFINITY;
  default: return 0;
  }
}

/* Max and min let a NaN win and stay, as NumPy and TensorFlow do. */
static double fold_f(int kind, double a, const double *x, int64_t n)
{
  switch (kind) {
  case R_SUM:
  case R_MEAN:
    for (int64_t i = 0; i < n; i++) a += x[i];
    break;
  case R_PROD:
    for (int64_t i = 0; i < n; i++) a *= x[i];
    break;
  case R_MAX:
    for (int64_t i = 0; i < n; i++)
      if (x[i] > a || x[i] != x[i]) a = x[i];
    break;
  case R_MIN:
    for (int64_t i = 0; i < n; i++)
      if (x[i] < a || x[i] != x[i]) a = x[i];
    break;
  }
  return a;
}

/* Elementwise a[i] = a[i] (op) x[i]. */
static void comb_f(int kind, double *a, const double *x, int64_t n)
{
  switch (kind) {
  case R_SUM:
  case R_MEAN:
    for (int64_t i = 0; i < n; i++) a[i] += x[i];
    break;
  case R_PROD:
    for (int64_t i = 0; i < n; i++) a[i] *= x[i];
    break;
  case R_MAX:
    for (int64_t i = 0; i < n; i++)
      if (x[i] > a[i] || x[i] != x[i]) a[i] = x[i];
    break;
  case R_MIN:
    for (int64_t i = 0; i < n; i++)
      if (x[i] < a[i] || x[i] != x[i]) a[i] = x[i];
    break;
  }
}

static void finish_f(int kind, double *a, int64_t n, int64_t count)
{
  if (kind != R_MEAN) return;
  for (int64_t i = 0; i < n; i++) a[i] /= (double)count; /* 0/0: NaN, as TensorFlow */
}

static void fast_f(int kind, mf_dtype dt, const void *x, void *y, int64_t outer, int64_t red,
                   int64_t inner)
{
  double acc[BLK], buf[BLK];
  if (inner == 1) {
    int64_t held = 0; /* results waiting in acc to be stored */
    for (int64_t o = 0; o < outer; o++) {
      double a = init_f(kind);
      for (int64_t r = 0; r < red; r += BLK) {
        int64_t n = red - r < BLK ? red - r : BLK;
        load_f(dt, x, o * red + r, n, buf);
        a = fold_f(kind, a, buf, n);
      }
      acc[held++] = a;
      if (held == BLK || o == outer - 1) {
        finish_f(kind, acc, held, red);
        store_f(dt, y, o + 1 - held, acc, held);
        held = 0;
      }
    }
    return;
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i += BLK) {
      int64_t n = inner - i < BLK ? inner - i : BLK;
      for (int64_t j = 0; j < n; j++) acc[j] = init_f(kind);
      for (int64_t r = 0; r < red; r++) {
        load_f(dt, x, (o * red + r) * inner + i, n, buf);
        comb_f(kind, acc, buf, n);
      }
      finish_f(kind, acc, n, red);
      store_f(dt, y, o * inner + i, acc, n);
    }
}

/* ---------------------------------------------------------------- integer accumulation */

static int64_t init_i(int kind)
{
  switch (kind) {
  case R_PROD: return 1;
  case R_MAX: return INT64_MIN;
  case R_MIN: return INT64_MAX;
  default: return 0;
  }
}

/* Sums and products wrap (through uint64, where overflow is defined). */
static int64_t fold_i(int kind, int64_t a, const int64_t *x, int64_t n)
{
  uint64_t u = (uint64_t)a;
  switch (kind) {
  case R_SUM:
  case R_MEAN:
    for (int64_t i = 0; i < n; i++) u += (uint64_t)x[i];
    return (int64_t)u;
  case R_PROD:
    for (int64_t i = 0; i < n; i++) u *= (uint64_t)x[i];
    return (int64_t)u;
  case R_MAX:
    for (int64_t i = 0; i < n; i++)
      if (x[i] > a) a = x[i];
    break;
  case R_MIN:
    for (int64_t i = 0; i < n; i++)
      if (x[i] < a) a = x[i];
    break;
  }
  return a;
}

static void comb_i(int kind, int64_t *a, const int64_t *x, int64_t n)
{
  switch (kind) {
  case R_SUM:
  case R_MEAN:
    for (int64_t i = 0; i < n; i++) a[i] = (int64_t)((uint64_t)a[i] + (uint64_t)x[i]);
    break;
  case R_PROD:
    for (int64_t i = 0; i < n; i++) a[i] = (int64_t)((uint64_t)a[i] * (uint64_t)x[i]);
    break;
  case R_MAX:
    for (int64_t i = 0; i < n; i++)
      if (x[i] > a[i]) a[i] = x[i];
    break;
  case R_MIN:
    for (int64_t i = 0; i < n; i++)
      if (x[i] < a[i]) a[i] = x[i];
    break;
  }
}

/* Integer mean truncates, as TensorFlow's does; count > 0 was checked. */
static void finish_i(int kind, int64_t *a, int64_t n, int64_t count)
{
  if (kind != R_MEAN) return;
  for (int64_t i = 0; i < n; i++) a[i] /= count;
}

static void fast_i(int kind, mf_dtype dt, const void *x, void *y, int64_t outer, int64_t red,
                   int64_t inner)
{
  int64_t acc[BLK], buf[BLK];
  if (inner == 1) {
    int64_t held = 0;
    for (int64_t o = 0; o < outer; o++) {
      int64_t a = init_i(kind);
      for (int64_t r = 0; r < red; r += BLK) {
        int64_t n = red - r < BLK ? red - r : BLK;
        load_i(dt, x, o * red + r, n, buf);
        a = fold_i(kind, a, buf, n);
      }
      acc[held++] = a;
      if (held == BLK || o == outer - 1) {
        finish_i(kind, acc, held, red);
        store_i(dt, y, o + 1 - held, acc, held);
        held = 0;
      }
    }
    return;
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i += BLK) {
      int64_t n = inner - i < BLK ? inner - i : BLK;
      for (int64_t j = 0; j < n; j++) acc[j] = init_i(kind);
      for (int64_t r = 0; r < red; r++) {
        load_i(dt, x, (o * red + r) * inner + i, n, buf);
        comb_i(kind, acc, buf, n);
      }
      finish_i(kind, acc, n, red);
      store_i(dt, y, o * inner + i, acc, n);
    }
}

/* ---------------------------------------------------------------- general path */

/* Any axis set: walk the input in order, keeping the output position with
 * an odometer (output stride 0 on reduced dims). False when out of memory. */
static bool general(int kind, const mf_tensor *x, const bool *mask, mf_tensor *y, int64_t red)
{
  int nd = x->ndim;
  int64_t on = y->numel, ost[MF_MAX_DIMS], idx[MF_MAX_DIMS] = {0}, s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    ost[d] = mask[d] ? 0 : s;
    if (!mask[d]) s *= x->dims[d];
  }
  bool fl = mfi_is_float(x->dtype);
  double *af = fl ? malloc(sizeof(double) * (on ? on : 1)) : NULL;
  int64_t *ai = fl ? NULL : malloc(sizeof(int64_t) * (on ? on : 1));
  if (!af && !ai) return false;
  for (int64_t i = 0; i < on; i++) {
    if (fl)
      af[i] = init_f(kind);
    else
      ai[i] = init_i(kind);
  }
  const void *p = mfi_data(x);
  int64_t oi = 0;
  for (int64_t i = 0; i < x->numel; i++) {
    if (fl) {
      double v = mfi_get_f(x->dtype, p, i);
      af[oi] = fold_f(kind, af[oi], &v, 1);
    } else {
      int64_t v = mfi_get_i(x->dtype, p, i);
      ai[oi] = fold_i(kind, ai[oi], &v, 1);
    }
    for (int d = nd - 1; d >= 0; d--) {
      oi += ost[d];
      if (++idx[d] < x->dims[d]) break;
      oi -= ost[d] * x->dims[d];
      idx[d] = 0;
    }
  }
  if (fl) {
    finish_f(kind, af, on, red);
    store_f(y->dtype, mfi_data(y), 0, af, on);
  } else {
    finish_i(kind, ai, on, red);
    store_i(y->dtype, mfi_data(y), 0, ai, on);
  }
  free(af);
  free(ai);
  return true;
}

/* ---------------------------------------------------------------- Sum, Mean, Max, Min, Prod */

/* mask[d]: dimension d is reduced. */
static bool reduce_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, bool *mask)
{
  if (!numeric_input(c, x->dtype)) return false;
  bool keep;
  if (!mfi_check_bool(c, "keep_dims", false, false, &keep)) return false;
  const int64_t *ax = NULL;
  int n = 0, has = mfi_check_ints(c, "axis", &ax, &n);
  if (has < 0) return false;
  out->dtype = x->dtype;
  if (x->ndim < 0) {
    out->ndim = !has && !keep ? 0 : -1; /* all axes without keep_dims: a scalar */
    return true;
  }
  for (int d = 0; d < x->ndim; d++) mask[d] = !has;
  for (int i = 0; i < n; i++) {
    int d = mfi_axis(c, ax[i], x->ndim, "axis");
    if (d < 0) return false;
    if (mask[d]) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "axis %d is listed more than once", d + 1);
      return false;
    }
    mask[d] = true;
  }
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (!mask[d])
      out->dims[out->ndim++] = x->dims[d];
    else if (keep)
      out->dims[out->ndim++] = 1;
  }
  return true;
}

static void infer_reduce(mfi_infer_ctx *c)
{
  bool mask[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  reduce_shape(c, &c->in[0], &c->op->out[0], mask);
}

/* The op's kind: its row's place in mfi_ops_reduce (Sum, Mean, Max, Min, Prod). */
static int reduce_kind(const mfi_kctx *k) { return (int)(k->op->def - mfi_ops_reduce); }

/* The output shape, the reduced dimensions (params[d] != 0), and no max,
 * min or integer mean of an empty set. */
static void prepare_reduce(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int kind = reduce_kind(k);
  mfi_meta xm = mfi_tensor_meta(x);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  bool mask[MF_MAX_DIMS];
  if (!reduce_shape(&c, &xm, &k->shapes[0], mask)) return;
  int64_t red = 1;
  for (int d = 0; d < x->ndim; d++) {
    k->params[d] = mask[d];
    if (mask[d]) red *= x->dims[d];
  }
  if (red == 0 && mfi_numel(k->shapes[0].ndim, k->shapes[0].dims) > 0 &&
      (kind == R_MAX || kind == R_MIN || (kind == R_MEAN && !mfi_is_float(x->dtype))))
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "cannot take the %s of an empty set of %s values", kind_names[kind],
                 mf_dtype_name(x->dtype));
}

static void reduce_kernel(mfi_kctx *k, int kind)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta om = k->shapes[0];
  bool mask[MF_MAX_DIMS];
  int nd = x->ndim;
  int64_t red = 1;
  for (int d = 0; d < nd; d++)
    if ((mask[d] = k->params[d] != 0)) red *= x->dims[d];
  int64_t on = mfi_numel(om.ndim, om.dims);
  if (!mfi_out_new(k, 0, om.dtype, om.ndim, om.dims)) return;
  if (on == 0) return;
  /* Size-1 dims don't matter for the layout; the rest must put the reduced
   * ones in one run for the [outer, red, inner] view. */
  int first = -1, last = -1;
  bool gap = false, contiguous = true;
  for (int d = 0; d < nd; d++) {
    if (x->dims[d] == 1) continue;
    if (!mask[d]) {
      gap = first >= 0;
    } else {
      if (first < 0)
        first = d;
      else if (gap)
        contiguous = false;
      last = d;
    }
  }
  if (first >= 0 && contiguous) {
    int64_t outer = mfi_dims_prod(x->dims, 0, first), inner = mfi_dims_prod(x->dims, last + 1, nd);
    if (mfi_is_float(x->dtype))
      fast_f(kind, x->dtype, mfi_data(x), mfi_data(k->out[0]), outer, red, inner);
    else
      fast_i(kind, x->dtype, mfi_data(x), mfi_data(k->out[0]), outer, red, inner);
  } else if (first < 0) { /* nothing (bigger than 1) reduced: a conversion */
    if (mfi_is_float(x->dtype))
      fast_f(kind, x->dtype, mfi_data(x), mfi_data(k->out[0]), x->numel, 1, 1);
    else
      fast_i(kind, x->dtype, mfi_data(x), mfi_data(k->out[0]), x->numel, 1, 1);
  } else if (!general(kind, x, mask, k->out[0], red)) {
    mf_tensor_delete(k->out[0]);
    k->out[0] = NULL;
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  }
}

static void cpu_sum(mfi_kctx *k) { reduce_kernel(k, R_SUM); }
static void cpu_mean(mfi_kctx *k) { reduce_kernel(k, R_MEAN); }
static void cpu_max(mfi_kctx *k) { reduce_kernel(k, R_MAX); }
static void cpu_min(mfi_kctx *k) { reduce_kernel(k, R_MIN); }
static void cpu_prod(mfi_kctx *k) { reduce_kernel(k, R_PROD); }

/* ---------------------------------------------------------------- ArgMax, ArgMin */

static bool arg_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, int *axis)
{
  if (!numeric_input(c, x->dtype)) return false;
  int64_t ax;
  if (!mfi_check_int(c, "axis", false, 1, &ax)) return false;
  out->dtype = MF_INT64;
  if (x->ndim < 0) {
    out->ndim = -1;
    return true;
  }
  if (x->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs an input of rank 1 or more, got a scalar");
    return false;
  }
  int a = mfi_axis(c, ax, x->ndim, "axis");
  if (a < 0) return false;
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++)
    if (d != a) out->dims[out->ndim++] = x->dims[d];
  *axis = a;
  return true;
}

static void infer_arg(mfi_infer_ctx *c)
{
  int a;
  if (!mfi_set_outputs(c, 1)) return;
  arg_shape(c, &c->in[0], &c->op->out[0], &a);
}

/* Whether v replaces the best so far: strictly better keeps the first of
 * ties, and the first NaN wins for good (as NumPy). */
static bool better_f(bool is_max, double v, double best)
{
  if (best != best) return false;
  if (v != v) return true;
  return is_max ? v > best : v < best;
}

static bool better_i(bool is_max, int64_t v, int64_t best) { return is_max ? v > best : v < best; }

/* The output shape and the axis (params[0]); no arg of an empty dimension. */
static void prepare_arg(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  mfi_meta xm = mfi_tensor_meta(x);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  int a = 0;
  if (!arg_shape(&c, &xm, &k->shapes[0], &a)) return;
  k->params[0] = a;
  int64_t outer = mfi_dims_prod(x->dims, 0, a), inner = mfi_dims_prod(x->dims, a + 1, x->ndim);
  if (x->dims[a] == 0 && outer * inner > 0)
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "cannot take the arg%s along dimension %d, which is empty",
                 strcmp(k->op->def->type, "ArgMax") == 0 ? "max" : "min", a + 1);
}

static void arg_kernel(mfi_kctx *k, bool is_max)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta om = k->shapes[0];
  int a = (int)k->params[0];
  int64_t outer = mfi_dims_prod(x->dims, 0, a), dim = x->dims[a],
          inner = mfi_dims_prod(x->dims, a + 1, x->ndim);
  if (!mfi_out_new(k, 0, MF_INT64, om.ndim, om.dims)) return;
  int64_t *y = mfi_data(k->out[0]);
  const void *p = mfi_data(x);
  bool fl = mfi_is_float(x->dtype);
  double bf[BLK], vf[BLK];
  int64_t bi[BLK], vi[BLK], at[BLK];
  for (int64_t o = 0; o < outer; o++) {
    if (inner == 1) { /* along the last (non-trivial) dim: scan one row */
      double best_f = 0;
      int64_t best_i = 0, where = 0;
      for (int64_t r = 0; r < dim; r += BLK) {
        int64_t n = dim - r < BLK ? dim - r : BLK;
        if (fl)
          load_f(x->dtype, p, o * dim + r, n, vf);
        else
          load_i(x->dtype, p, o * dim + r, n, vi);
        for (int64_t j = 0; j < n; j++) {
          bool first = r + j == 0;
          if (fl ? first || better_f(is_max, vf[j], best_f)
                 : first || better_i(is_max, vi[j], best_i)) {
            if (fl)
              best_f = vf[j];
            else
              best_i = vi[j];
            where = r + j;
          }
        }
      }
      y[o] = where + 1;
      continue;
    }
    for (int64_t i = 0; i < inner; i += BLK) {
      int64_t n = inner - i < BLK ? inner - i : BLK;
      for (int64_t j = 0; j < n; j++) at[j] = 0;
      if (fl)
        load_f(x->dtype, p, o * dim * inner + i, n, bf);
      else
        load_i(x->dtype, p, o * dim * inner + i, n, bi);
      for (int64_t r = 1; r < dim; r++) {
        int64_t base = (o * dim + r) * inner + i;
        if (fl) {
          load_f(x->dtype, p, base, n, vf);
          for (int64_t j = 0; j < n; j++)
            if (better_f(is_max, vf[j], bf[j])) bf[j] = vf[j], at[j] = r;
        } else {
          load_i(x->dtype, p, base, n, vi);
          for (int64_t j = 0; j < n; j++)
            if (better_i(is_max, vi[j], bi[j])) bi[j] = vi[j], at[j] = r;
        }
      }
      for (int64_t j = 0; j < n; j++) y[o * inner + i + j] = at[j] + 1;
    }
  }
}

static void cpu_argmax(mfi_kctx *k) { arg_kernel(k, true); }
static void cpu_argmin(mfi_kctx *k) { arg_kernel(k, false); }

/* ---------------------------------------------------------------- registry */

/* ---------------------------------------------------------------- gradients */

/* t (shaped like this reduction's output) broadcast back to the input's shape. */
static mf_output expand(mfi_grad_ctx *g, mf_output t)
{
  mf_op_desc *d = mfi_gb_begin(g, "ExpandReduced");
  if (d) mf_op_add_input(d, t), mf_op_add_input(d, g->op->inputs[0]);
  mfi_gb_copy_attr(d, g->op, "axis");
  mfi_gb_copy_attr(d, g->op, "keep_dims");
  return mfi_gb_finish(g, d, 0);
}

/* Elements averaged per output: size(x) / max(size(y), 1), as TensorFlow's
 * safe shape division does: an empty output (x {3, 0} averaged over axis 1)
 * has an empty gradient, not an integer division by zero. */
static mf_output count_ratio(mfi_grad_ctx *g, mf_dtype dt)
{
  mf_output x = g->op->inputs[0], y = {g->op, 0};
  mf_output ny = mfi_gb1(g, "Size", y);
  if (!mfi_ok(g->status)) return ny;
  mf_output one = mfi_gb_scalar(g, mfi_meta_of(ny).dtype, 1);
  mf_output ratio = mfi_gb2(g, "Div", mfi_gb1(g, "Size", x), mfi_gb2(g, "Maximum", ny, one));
  mf_op_desc *d = mfi_gb_begin(g, "Cast");
  if (d) mf_op_add_input(d, ratio), mf_op_set_attr_type(d, "DstT", dt);
  return mfi_gb_finish(g, d, 0);
}

static void grad_reduce(mfi_grad_ctx *g)
{
  mf_op *op = g->op;
  const char *type = op->def->type;
  mf_output x = op->inputs[0], y = {op, 0}, dy = g->dy[0];
  mf_dtype dt = mfi_meta_of(x).dtype;
  if (strcmp(type, "Sum") == 0) {
    g->dx[0] = expand(g, dy);
  } else if (strcmp(type, "Mean") == 0) {
    g->dx[0] = mfi_gb2(g, "Div", expand(g, dy), count_ratio(g, dt));
  } else if (strcmp(type, "Prod") == 0) {
    mf_op_desc *d = mfi_gb_begin(g, "ProdExclusive");
    if (d) mf_op_add_input(d, x);
    mfi_gb_copy_attr(d, op, "axis");
    g->dx[0] = mfi_gb2(g, "Mul", expand(g, dy), mfi_gb_finish(g, d, 0));
  } else { /* Max, Min: shared equally among the elements that attain the extreme */
    mf_op_desc *c = mfi_gb_begin(g, "Cast");
    if (c)
      mf_op_add_input(c, mfi_gb2(g, "Equal", x, expand(g, y))), mf_op_set_attr_type(c, "DstT", dt);
    mf_output hit = mfi_gb_finish(g, c, 0);
    mf_op_desc *s = mfi_gb_begin(g, "Sum");
    if (s) mf_op_add_input(s, hit);
    mfi_gb_copy_attr(s, op, "axis");
    mfi_gb_copy_attr(s, op, "keep_dims");
    mf_output count = expand(g, mfi_gb_finish(g, s, 0));
    g->dx[0] = mfi_gb2(g, "Div", mfi_gb2(g, "Mul", expand(g, dy), hit), count);
  }
}

mfi_opdef mfi_ops_reduce[] = {
    {.type = "Sum",
     .doc = "Sums over the axes (all when absent).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: ints?; keep_dims: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_reduce,
     .prepare = prepare_reduce,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sum},
     .grad = grad_reduce},
    {.type = "Mean",
     .doc = "Means over the axes (all when absent).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: ints?; keep_dims: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_reduce,
     .prepare = prepare_reduce,
     .kernel = {[MFI_DEVICE_CPU] = cpu_mean},
     .grad = grad_reduce},
    {.type = "Max",
     .doc = "Maxima over the axes (all when absent).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: ints?; keep_dims: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_reduce,
     .prepare = prepare_reduce,
     .kernel = {[MFI_DEVICE_CPU] = cpu_max},
     .grad = grad_reduce},
    {.type = "Min",
     .doc = "Minima over the axes (all when absent).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: ints?; keep_dims: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_reduce,
     .prepare = prepare_reduce,
     .kernel = {[MFI_DEVICE_CPU] = cpu_min},
     .grad = grad_reduce},
    {.type = "Prod",
     .doc = "Products over the axes (all when absent).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: ints?; keep_dims: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_reduce,
     .prepare = prepare_reduce,
     .kernel = {[MFI_DEVICE_CPU] = cpu_prod},
     .grad = grad_reduce},
    {.type = "ArgMax",
     .doc = "The 1-based index of the largest value along an axis.",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: int = 1",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_arg,
     .prepare = prepare_arg,
     .kernel = {[MFI_DEVICE_CPU] = cpu_argmax}},
    {.type = "ArgMin",
     .doc = "The 1-based index of the smallest value along an axis.",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: int = 1",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_arg,
     .prepare = prepare_arg,
     .kernel = {[MFI_DEVICE_CPU] = cpu_argmin}},
    {0},
};
