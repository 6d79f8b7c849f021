/* Neural-network kernels: Relu, softmax, the softmax cross-entropy losses
 * and Dropout. Everything works along the last axis, one contiguous row at
 * a time; row sums accumulate in double, and exponentials of float32 are
 * taken in float. Inputs are float32 or float64. Run-time checks (shapes,
 * class ids, keep_prob) are the prepare hooks'; kernels only compute. */
#include "fastmath.h"
#include "shapes.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static bool float_input(mfi_infer_ctx *c, mf_dtype dt, const char *what)
{
  if (mfi_is_float(dt)) return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be float32 or float64, got %s", what,
                  mf_dtype_name(dt));
  return false;
}

/* Merges two static shapes that must be equal into out; false + error. */
static bool same_meta(mfi_infer_ctx *c, const mfi_meta *a, const mfi_meta *b, const char *an,
                      const char *bn, mfi_meta *out)
{
  if (a->dtype != b->dtype) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s is %s but %s is %s", an, mf_dtype_name(a->dtype),
                    bn, mf_dtype_name(b->dtype));
    return false;
  }
  *out = a->ndim >= 0 ? *a : *b;
  if (a->ndim < 0 || b->ndim < 0) return true;
  bool ok = a->ndim == b->ndim;
  for (int d = 0; ok && d < a->ndim; d++) {
    int64_t x = a->dims[d], y = b->dims[d];
    ok = x < 0 || y < 0 || x == y;
    out->dims[d] = x >= 0 ? x : y;
  }
  if (!ok) {
    char x[128], y[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "%s (shape %s) and %s (shape %s) must have the same "
                    "shape",
                    an, mfi_meta_str(a, x, sizeof x), bn, mfi_meta_str(b, y, sizeof y));
    return false;
  }
  return true;
}

/* Runtime shapes that must be equal (for prepare hooks). */
static bool same_shape(mfi_kctx *k, const mf_tensor *a, const mf_tensor *b, const char *an,
                       const char *bn)
{
  bool ok = a->ndim == b->ndim;
  for (int d = 0; ok && d < a->ndim; d++) ok = a->dims[d] == b->dims[d];
  if (!ok) {
    char x[128], y[128];
    mfi_shape_str(a->ndim, a->dims, x, sizeof x);
    mfi_shape_str(b->ndim, b->dims, y, sizeof y);
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "%s (shape %s) and %s (shape %s) must have the same shape", an, x, bn, y);
  }
  return ok;
}

static bool rank1(mfi_infer_ctx *c, const mfi_meta *x, const char *what)
{
  if (x->ndim != 0) return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT,
                  "%s must have rank 1 or more (classes along the last "
                  "axis), got a scalar",
                  what);
  return false;
}

static bool krank1(mfi_kctx *k, const mf_tensor *x)
{
  if (x->ndim > 0) return true;
  mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "needs rank 1 or more, got a scalar");
  return false;
}

/* The shape without its last dim. */
static void drop_last(const mfi_meta *x, mfi_meta *out)
{
  *out = *x;
  if (x->ndim > 0) out->ndim--;
}

/* ---------------------------------------------------------------- Relu */

static void infer_relu(mfi_infer_ctx *c)
{
  if (!float_input(c, c->in[0].dtype, "the input") || !mfi_set_outputs(c, 1)) return;
  c->op->out[0] = c->in[0];
}

/* NaN passes through, as in TensorFlow. */
static void cpu_relu(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, x->dims)) return;
  int64_t n = x->numel;
  if (x->dtype == MF_FLOAT32) {
    const float *a = mfi_data(x);
    float *y = mfi_data(k->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = a[i] < 0 ? 0.0f : a[i];
  } else {
    const double *a = mfi_data(x);
    double *y = mfi_data(k->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = a[i] < 0 ? 0.0 : a[i];
  }
}

static void infer_relu_grad(mfi_infer_ctx *c)
{
  if (!float_input(c, c->in[0].dtype, "the gradient") || !mfi_set_outputs(c, 1)) return;
  same_meta(c, &c->in[0], &c->in[1], "the gradient", "the input", &c->op->out[0]);
}

static void prepare_relu_grad(mfi_kctx *k)
{
  same_shape(k, k->in[0], k->in[1], "the gradient", "the input");
}

static void cpu_relu_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *x = k->in[1];
  if (!mfi_out_new(k, 0, dy->dtype, dy->ndim, dy->dims)) return;
  int64_t n = x->numel;
  /* Both loads unconditional, so the select vectorizes: as a branch on the
   * sign of a it was mispredicted about half the time. */
  if (x->dtype == MF_FLOAT32) {
    const float *g = mfi_data(dy), *a = mfi_data(x);
    float *y = mfi_data(k->out[0]);
    for (int64_t i = 0; i < n; i++) {
      float v = g[i];
      y[i] = a[i] > 0 ? v : 0.0f;
    }
  } else {
    const double *g = mfi_data(dy), *a = mfi_data(x);
    double *y = mfi_data(k->out[0]);
    for (int64_t i = 0; i < n; i++) {
      double v = g[i];
      y[i] = a[i] > 0 ? v : 0.0;
    }
  }
}

/* ---------------------------------------------------------------- row kernels */

/* Each row subtracts its max first, so exp never overflows; the largest
 * term is exp(0) = 1 and the sum is at least 1. */

static float max_f32(const float *x, int64_t n)
{
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

static double max_f64(const double *x, int64_t n)
{
  double m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

MF_HOT_LOOP static void exp_shifted_f32(const float *restrict x, float m, float *restrict y,
                                        int64_t n)
{
  for (int64_t i = 0; i < n; i++) y[i] = exp_f(x[i] - m);
}

/* y = softmax(x), or log_softmax(x) with `log`. Returns log(sum exp(x - m))
 * and sets *max, for the losses. */
static double softmax_f32(const float *x, float *y, int64_t n, bool log_, float *max)
{
  float m = max_f32(x, n);
  double s = 0;
  exp_shifted_f32(x, m, y, n); /* vectorised; the sum stays in double */
  for (int64_t i = 0; i < n; i++) s += y[i];
  double ls = log(s);
  if (log_) {
    float l = (float)ls;
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - l;
  } else {
    float r = (float)(1.0 / s);
    for (int64_t i = 0; i < n; i++) y[i] *= r;
  }
  *max = m;
  return ls;
}

static double softmax_f64(const double *x, double *y, int64_t n, bool log_, double *max)
{
  double m = max_f64(x, n), s = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = exp(x[i] - m);
    y[i] = e;
    s += e;
  }
  double ls = log(s);
  if (log_) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
  } else {
    double r = 1.0 / s;
    for (int64_t i = 0; i < n; i++) y[i] *= r;
  }
  *max = m;
  return ls;
}

/* ---------------------------------------------------------------- Softmax, LogSoftmax */

static void infer_softmax(mfi_infer_ctx *c)
{
  if (!float_input(c, c->in[0].dtype, "the input") || !rank1(c, &c->in[0], "the input") ||
      !mfi_set_outputs(c, 1))
    return;
  c->op->out[0] = c->in[0];
}

static void prepare_softmax(mfi_kctx *k) { krank1(k, k->in[0]); }

static void softmax_kernel(mfi_kctx *k, bool log_)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, x->dims)) return;
  int64_t n = x->dims[x->ndim - 1], rows = n ? x->numel / n : 0;
  if (x->dtype == MF_FLOAT32) {
    const float *a = mfi_data(x);
    float *y = mfi_data(k->out[0]), m;
    for (int64_t r = 0; r < rows; r++) softmax_f32(a + r * n, y + r * n, n, log_, &m);
  } else {
    const double *a = mfi_data(x);
    double *y = mfi_data(k->out[0]), m;
    for (int64_t r = 0; r < rows; r++) softmax_f64(a + r * n, y + r * n, n, log_, &m);
  }
}

static void cpu_softmax(mfi_kctx *k) { softmax_kernel(k, false); }

static void cpu_log_softmax(mfi_kctx *k) { softmax_kernel(k, true); }

/* ---------------------------------------------------------------- SoftmaxCrossEntropyWithLogits */

/* Outputs: loss (the shape without the class axis) and backprop (the
 * logits' shape). */
static void infer_xent(mfi_infer_ctx *c)
{
  mfi_meta m;
  if (!float_input(c, c->in[0].dtype, "the logits") || !rank1(c, &c->in[0], "the logits") ||
      !rank1(c, &c->in[1], "the labels") ||
      !same_meta(c, &c->in[0], &c->in[1], "the logits", "the labels", &m) || !mfi_set_outputs(c, 2))
    return;
  drop_last(&m, &c->op->out[0]);
  c->op->out[1] = m;
}

/* loss = sum(labels * (log(sum exp(x - m)) - (x - m))), which stays finite
 * for any finite logits; a zero label contributes nothing, even where the
 * log-probability is -inf. */
static void prepare_xent(mfi_kctx *k)
{
  if (krank1(k, k->in[0])) same_shape(k, k->in[0], k->in[1], "the logits", "the labels");
}

static void cpu_xent(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *lab = k->in[1];
  if (!mfi_out_new(k, 0, x->dtype, x->ndim - 1, x->dims)) return;
  if (!mfi_out_new(k, 1, x->dtype, x->ndim, x->dims)) {
    mfi_drop_outputs(k, 1);
    return;
  }
  int64_t n = x->dims[x->ndim - 1], rows = k->out[0]->numel;
  if (x->dtype == MF_FLOAT32) {
    const float *a = mfi_data(x), *l = mfi_data(lab);
    float *loss = mfi_data(k->out[0]), *bp = mfi_data(k->out[1]), m;
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = a + r * n, *lr = l + r * n;
      float *br = bp + r * n;
      double ls = softmax_f32(xr, br, n, false, &m), acc = 0;
      for (int64_t i = 0; i < n; i++) {
        if (lr[i] != 0) acc += (double)lr[i] * (ls - (double)(xr[i] - m));
        br[i] -= lr[i];
      }
      loss[r] = (float)acc;
    }
  } else {
    const double *a = mfi_data(x), *l = mfi_data(lab);
    double *loss = mfi_data(k->out[0]), *bp = mfi_data(k->out[1]), m;
    for (int64_t r = 0; r < rows; r++) {
      const double *xr = a + r * n, *lr = l + r * n;
      double *br = bp + r * n;
      double ls = softmax_f64(xr, br, n, false, &m), acc = 0;
      for (int64_t i = 0; i < n; i++) {
        if (lr[i] != 0) acc += lr[i] * (ls - (xr[i] - m));
        br[i] -= lr[i];
      }
      loss[r] = acc;
    }
  }
}

/* ----------------------------------------------------------------
 * SparseSoftmaxCrossEntropyWithLogits */

/* logits [..., C] and labels [...] (class ids from 1). */
static void infer_sparse_xent(mfi_infer_ctx *c)
{
  const mfi_meta *x = &c->in[0], *lab = &c->in[1];
  if (!float_input(c, x->dtype, "the logits") || !rank1(c, x, "the logits")) return;
  if (lab->dtype != MF_INT32 && lab->dtype != MF_INT64) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the labels must be int32 or int64 class ids, got %s",
                    mf_dtype_name(lab->dtype));
    return;
  }
  mfi_meta rows;
  drop_last(x, &rows);
  rows.dtype = lab->dtype;
  mfi_meta m;
  if (!same_meta(c, &rows, lab, "the logits without their class axis", "the labels", &m) ||
      !mfi_set_outputs(c, 2))
    return;
  c->op->out[0] = m;
  c->op->out[0].dtype = x->dtype;
  c->op->out[1] = *x;
  if (x->ndim < 0 && m.ndim >= 0) { /* the labels give all but the class axis */
    c->op->out[1].ndim = m.ndim + 1;
    memcpy(c->op->out[1].dims, m.dims, sizeof(int64_t) * m.ndim);
    c->op->out[1].dims[m.ndim] = -1;
  } else if (m.ndim >= 0) {
    memcpy(c->op->out[1].dims, m.dims, sizeof(int64_t) * m.ndim);
  }
}

/* The labels, in host memory, are class ids 1..classes, checked before
 * anything is written. */
static void prepare_sparse_xent(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *lab = k->in[1];
  if (!krank1(k, x)) return;
  bool ok = lab->ndim == x->ndim - 1;
  for (int d = 0; ok && d < lab->ndim; d++) ok = lab->dims[d] == x->dims[d];
  if (!ok) {
    char a[128], b[128];
    mfi_shape_str(x->ndim, x->dims, a, sizeof a);
    mfi_shape_str(lab->ndim, lab->dims, b, sizeof b);
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "the logits have shape %s, so the labels need its shape without the last "
                 "axis, but they have shape %s",
                 a, b);
    return;
  }
  int64_t n = x->dims[x->ndim - 1], rows = lab->numel;
  const void *lv = mfi_data(lab);
  for (int64_t r = 0; r < rows; r++) {
    int64_t id = mfi_get_i(lab->dtype, lv, r);
    if (id < 1 || id > n) {
      mfi_op_error(k->status, MF_OUT_OF_RANGE, k->op,
                   "label %lld (at position %lld of the labels) is out of range: class ids are "
                   "1..%lld",
                   (long long)id, (long long)r + 1, (long long)n);
      return;
    }
  }
}

static void cpu_sparse_xent(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *lab = k->in[1];
  int64_t n = x->dims[x->ndim - 1], rows = lab->numel;
  const void *lv = mfi_data(lab);
  if (!mfi_out_new(k, 0, x->dtype, lab->ndim, lab->dims)) return;
  if (!mfi_out_new(k, 1, x->dtype, x->ndim, x->dims)) {
    mfi_drop_outputs(k, 1);
    return;
  }
  if (x->dtype == MF_FLOAT32) {
    const float *a = mfi_data(x);
    float *loss = mfi_data(k->out[0]), *bp = mfi_data(k->out[1]), m;
    for (int64_t r = 0; r < rows; r++) {
      int64_t t = mfi_get_i(lab->dtype, lv, r) - 1;
      double ls = softmax_f32(a + r * n, bp + r * n, n, false, &m);
      loss[r] = (float)(ls - (double)(a[r * n + t] - m));
      bp[r * n + t] -= 1.0f;
    }
  } else {
    const double *a = mfi_data(x);
    double *loss = mfi_data(k->out[0]), *bp = mfi_data(k->out[1]), m;
    for (int64_t r = 0; r < rows; r++) {
      int64_t t = mfi_get_i(lab->dtype, lv, r) - 1;
      double ls = softmax_f64(a + r * n, bp + r * n, n, false, &m);
      loss[r] = ls - (a[r * n + t] - m);
      bp[r * n + t] -= 1.0;
    }
  }
}

/* ---------------------------------------------------------------- Dropout */

static bool keep_prob(mfi_infer_ctx *c, double *p)
{
  if (!mfi_check_float(c, "keep_prob", true, 1, p)) return false;
  if (!(*p > 0 && *p <= 1)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "keep_prob is %g; it must be in (0, 1]", *p);
    return false;
  }
  return true;
}

/* Dropout(x [, keep_prob]): keep_prob is the attribute, or a scalar second
 * input (a tensor: fed, or a placeholder_with_default, so one graph serves
 * training and evaluation). Outputs y and mask, both x's shape: mask is
 * 1/keep_prob where kept. */
static void infer_dropout(mfi_infer_ctx *c)
{
  double p;
  if (!float_input(c, c->in[0].dtype, "the input")) return;
  if (c->op->nin == 2) {
    if (c->in[1].dtype != c->in[0].dtype || c->in[1].ndim > 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "keep_prob must be a scalar of the input's dtype");
      return;
    }
  } else if (!keep_prob(c, &p)) {
    return;
  }
  if (!mfi_set_outputs(c, 2)) return;
  c->op->out[0] = c->op->out[1] = c->in[0];
}

/* keep_prob, from the attribute or the scalar input (in host memory),
 * checked and left in params[0] as the bits of a double. */
static void prepare_dropout(mfi_kctx *k)
{
  mfi_infer_ctx c = {k->op, NULL, k->status, NULL};
  double p;
  if (k->op->nin == 2) {
    if (k->in[1]->numel != 1) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "keep_prob must be a scalar");
      return;
    }
    p = mfi_get_f(k->in[1]->dtype, mfi_data(k->in[1]), 0);
    if (!(p > 0 && p <= 1)) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "keep_prob is %g; it must be in (0, 1]",
                   p);
      return;
    }
  } else if (!keep_prob(&c, &p)) {
    return;
  }
  memcpy(&k->params[0], &p, sizeof p);
}

static void cpu_dropout(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  double p;
  memcpy(&p, &k->params[0], sizeof p);
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, x->dims)) return;
  if (!mfi_out_new(k, 1, x->dtype, x->ndim, x->dims)) {
    mfi_drop_outputs(k, 1);
    return;
  }
  int64_t n = x->numel;
  double scale = 1.0 / p;
  uint32_t w[4];
  if (x->dtype == MF_FLOAT32) {
    const float *a = mfi_data(x);
    float *y = mfi_data(k->out[0]), *mk = mfi_data(k->out[1]), s = (float)scale;
    for (int64_t i = 0; i < n; i++) {
      mfi_random_draw(k, i, 0, w);
      mk[i] = mfi_random_unit(w[0], w[1]) < p ? s : 0.0f;
      y[i] = a[i] * mk[i];
    }
  } else {
    const double *a = mfi_data(x);
    double *y = mfi_data(k->out[0]), *mk = mfi_data(k->out[1]);
    for (int64_t i = 0; i < n; i++) {
      mfi_random_draw(k, i, 0, w);
      mk[i] = mfi_random_unit(w[0], w[1]) < p ? scale : 0.0;
      y[i] = a[i] * mk[i];
    }
  }
}

/* ---------------------------------------------------------------- registry */

/* ---------------------------------------------------------------- gradients */

/* Sum over the last axis, keeping it (for row-wise broadcasting). */
static mf_output row_sum(mfi_grad_ctx *g, mf_output t)
{
  int64_t last = -1;
  mf_op_desc *d = mfi_gb_begin(g, "Sum");
  if (d) {
    mf_op_add_input(d, t);
    mf_op_set_attr_ints(d, "axis", &last, 1);
    mf_op_set_attr_bool(d, "keep_dims", 1);
  }
  return mfi_gb_finish(g, d, 0);
}

static mf_output expand_last(mfi_grad_ctx *g, mf_output t)
{
  mf_op_desc *d = mfi_gb_begin(g, "ExpandDims");
  if (d) mf_op_add_input(d, t), mf_op_set_attr_int(d, "axis", -1);
  return mfi_gb_finish(g, d, 0);
}

static void grad_relu(mfi_grad_ctx *g)
{
  g->dx[0] = mfi_gb2(g, "ReluGrad", g->dy[0], g->op->inputs[0]);
}

/* y = softmax(x): dx = (dy - sum(dy y)) y */
static void grad_softmax(mfi_grad_ctx *g)
{
  mf_output y = {g->op, 0}, dy = g->dy[0];
  g->dx[0] = mfi_gb2(g, "Mul", mfi_gb2(g, "Sub", dy, row_sum(g, mfi_gb2(g, "Mul", dy, y))), y);
}

/* y = log_softmax(x): dx = dy - exp(y) sum(dy) */
static void grad_log_softmax(mfi_grad_ctx *g)
{
  mf_output y = {g->op, 0}, dy = g->dy[0];
  g->dx[0] = mfi_gb2(g, "Sub", dy, mfi_gb2(g, "Mul", mfi_gb1(g, "Exp", y), row_sum(g, dy)));
}

/* The loss's gradient scales the kernel's own backprop (softmax - labels);
 * the dense labels get -log_softmax(logits). Only the loss output is
 * differentiable. */
static void grad_xent(mfi_grad_ctx *g)
{
  if (mfi_is_none(g->dy[0])) return;
  mf_output dloss = expand_last(g, g->dy[0]), backprop = {g->op, 1};
  g->dx[0] = mfi_gb2(g, "Mul", dloss, backprop);
  if (strcmp(g->op->def->type, "SoftmaxCrossEntropyWithLogits") == 0)
    g->dx[1] =
        mfi_gb2(g, "Mul", dloss, mfi_gb1(g, "Neg", mfi_gb1(g, "LogSoftmax", g->op->inputs[0])));
}

static void grad_dropout(mfi_grad_ctx *g)
{
  g->dx[0] = mfi_gb2(g, "Mul", g->dy[0], (mf_output){g->op, 1});
}

mfi_opdef mfi_ops_nn[] = {
    {.type = "Relu",
     .doc = "Rectified linear max(features, 0), element-wise.",
     .inputs = "features",
     .outputs = "activations",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_relu,
     .kernel = {[MFI_DEVICE_CPU] = cpu_relu},
     .grad = grad_relu},
    {.type = "ReluGrad",
     .doc = "Relu's gradient: gradients where features > 0, else 0.",
     .inputs = "gradients, features",
     .outputs = "backprops",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_relu_grad,
     .prepare = prepare_relu_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_relu_grad}},
    {.type = "Softmax",
     .doc = "Softmax along the last axis.",
     .inputs = "logits",
     .outputs = "softmax",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_softmax,
     .prepare = prepare_softmax,
     .kernel = {[MFI_DEVICE_CPU] = cpu_softmax},
     .grad = grad_softmax},
    {.type = "LogSoftmax",
     .doc = "Log-softmax along the last axis.",
     .inputs = "logits",
     .outputs = "logsoftmax",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_softmax,
     .prepare = prepare_softmax,
     .kernel = {[MFI_DEVICE_CPU] = cpu_log_softmax},
     .grad = grad_log_softmax},
    {.type = "SoftmaxCrossEntropyWithLogits",
     .doc = "Softmax cross-entropy of logits against dense labels along the last axis.",
     .inputs = "features, labels",
     .outputs = "loss, backprop",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_xent,
     .prepare = prepare_xent,
     .kernel = {[MFI_DEVICE_CPU] = cpu_xent},
     .grad = grad_xent},
    {.type = "SparseSoftmaxCrossEntropyWithLogits",
     .doc = "Softmax cross-entropy of logits against 1-based class ids.",
     .inputs = "features, labels",
     .outputs = "loss, backprop",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_sparse_xent,
     .prepare = prepare_sparse_xent,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sparse_xent},
     .host_in = 1u << 1,
     .grad = grad_xent},
    {.type = "Dropout",
     .doc = "Keeps each element with probability keep_prob, scaled by 1/keep_prob (attribute or "
            "scalar host input).",
     .inputs = "x, keep_prob?",
     .outputs = "y, mask",
     .attrs = "keep_prob: float?",
     .min_inputs = 1,
     .max_inputs = 2,
     .flags = MFI_RANDOM,
     .infer = infer_dropout,
     .prepare = prepare_dropout,
     .kernel = {[MFI_DEVICE_CPU] = cpu_dropout},
     .host_in = 1u << 1,
     .grad = grad_dropout},
    {0},
};
