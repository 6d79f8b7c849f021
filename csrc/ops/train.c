/* Optimizer updates: one fused, in-place kernel per variable and step.
 * Inputs start with the variable and its slots (references); the rest are
 * values: scalar hyperparameters and the gradient. The formulas are
 * TensorFlow's (training_ops.cc). */
#include "shapes.h"

#include <math.h>
#include <string.h>

enum { SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM, SPARSE_SGD, SPARSE_ADAM, NUM_TRAIN_OPS };

static int kind(const mf_op *op) { return (int)(op->def - mfi_ops_train); }

/* Where the gradient sits among the inputs (TensorFlow's orders). */
static int grad_index(const mf_op *op)
{
  static const int index[NUM_TRAIN_OPS] = {2, 3, 3, 7, 9, 2, 9};
  return index[kind(op)];
}

static void infer_apply(mfi_infer_ctx *c)
{
  const mf_op *op = c->op;
  int nref = op->def->nref;
  const mfi_meta *var = &c->in[0];
  int gi = grad_index(op);
  bool nesterov; /* ApplyMomentum's kernel reads it */
  if (!mfi_check_bool(c, "use_nesterov", false, false, &nesterov)) return;
  if (!mfi_is_float(var->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "can only update float variables, '%s' is %s",
                    op->inputs[0].op->name, mf_dtype_name(var->dtype));
    return;
  }
  for (int i = 1; i < op->nin; i++) {
    const mfi_meta *m = &c->in[i];
    if (m->dtype != var->dtype) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d is %s but the variable '%s' is %s", i + 1,
                      mf_dtype_name(m->dtype), op->inputs[0].op->name, mf_dtype_name(var->dtype));
      return;
    }
    bool slot_or_grad = i < nref || i == gi;
    if (!slot_or_grad && m->ndim > 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "hyperparameter input %d must be a scalar", i + 1);
      return;
    }
    if (slot_or_grad && m->ndim >= 0 && var->ndim >= 0) {
      bool ok = m->ndim == var->ndim;
      for (int d = 0; ok && d < m->ndim; d++)
        ok = m->dims[d] < 0 || var->dims[d] < 0 || m->dims[d] == var->dims[d];
      if (!ok) {
        char a[128], b[128];
        mfi_shape_str(m->ndim, m->dims, a, sizeof a);
        mfi_shape_str(var->ndim, var->dims, b, sizeof b);
        mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s %d has shape %s, the variable '%s' %s",
                        i < nref ? "slot" : "the gradient", i + 1, a, op->inputs[0].op->name, b);
        return;
      }
    }
  }
  if (mfi_set_outputs(c, 1)) c->op->out[0] = *var;
}

static double scalar(const mfi_kctx *k, int i)
{
  const mf_tensor *t = k->in[i];
  return mfi_get_f(t->dtype, mfi_data(t), 0);
}

/* Element i of tensor p as double (float32 or float64). */
static inline double ld(bool f32, const void *p, int64_t i)
{
  return f32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static inline void st(bool f32, void *p, int64_t i, double v)
{
  if (f32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

/* The variable and its slots are initialized, the gradient has their
 * shape, the hyperparameters are scalars. */
static void prepare_apply(mfi_kctx *k)
{
  const mf_op *op = k->op;
  int nref = op->def->nref, gi = grad_index(op);
  const mf_tensor *grad = k->in[gi];
  for (int i = 0; i < nref; i++) {
    const mf_tensor *cur = *k->vars[i].slot;
    if (!cur) {
      mfi_uninitialized_error(k, i);
      return;
    }
    if (cur->ndim != grad->ndim ||
        memcmp(cur->dims, grad->dims, sizeof(int64_t) * (size_t)grad->ndim) != 0) {
      char a[128], b[128];
      mfi_shape_str(grad->ndim, grad->dims, a, sizeof a);
      mfi_shape_str(cur->ndim, cur->dims, b, sizeof b);
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, op, "the gradient has shape %s but '%s' has %s",
                   a, k->vars[i].name, b);
      return;
    }
  }
  for (int i = nref; i < op->nin; i++)
    if (i != gi && k->in[i]->numel != 1) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, op, "hyperparameter input %d must be a scalar",
                   i + 1);
      return;
    }
}

static void cpu_apply(mfi_kctx *k)
{
  const mf_op *op = k->op;
  int nref = op->def->nref;
  int gidx = grad_index(op);
  const mf_tensor *grad = k->in[gidx];
  mf_tensor *slot[3] = {NULL, NULL, NULL};
  for (int i = 0; i < nref; i++)
    if (!(slot[i] = mfi_var_writable(k, i))) return;
  bool f = slot[0]->dtype == MF_FLOAT32;
  void *v = mfi_data(slot[0]), *a = nref > 1 ? mfi_data(slot[1]) : NULL;
  void *b = nref > 2 ? mfi_data(slot[2]) : NULL;
  const void *g = mfi_data(grad);
  int64_t n = grad->numel;
  switch (kind(op)) {
  case SGD: { /* var -= lr * grad */
    double lr = scalar(k, 1);
    if (f) {
      float *x = v, l = (float)lr;
      const float *gg = g;
      for (int64_t i = 0; i < n; i++) x[i] -= l * gg[i];
    } else {
      for (int64_t i = 0; i < n; i++) st(f, v, i, ld(f, v, i) - lr * ld(f, g, i));
    }
    break;
  }
  case MOMENTUM: { /* accum = accum*mu + g; var -= lr*accum (nesterov: lr*g + lr*mu*accum) */
    double lr = scalar(k, 2), mu = scalar(k, 4);
    bool nesterov = mfi_attr_bool(op, "use_nesterov", false);
    for (int64_t i = 0; i < n; i++) {
      double gi = ld(f, g, i), acc = ld(f, a, i) * mu + gi;
      st(f, a, i, acc);
      acc = ld(f, a, i); /* the rounded slot value, as TF's float kernel sees it */
      st(f, v, i, ld(f, v, i) - (nesterov ? gi * lr + acc * mu * lr : lr * acc));
    }
    break;
  }
  case ADAGRAD: { /* accum += g^2; var -= lr * g / sqrt(accum) */
    double lr = scalar(k, 2);
    for (int64_t i = 0; i < n; i++) {
      double gi = ld(f, g, i);
      st(f, a, i, ld(f, a, i) + gi * gi);
      st(f, v, i, ld(f, v, i) - lr * gi / sqrt(ld(f, a, i)));
    }
    break;
  }
  case RMSPROP: { /* ms = rho ms + (1-rho) g^2; mom = mu mom + lr g / sqrt(ms + eps); var -= mom */
    double lr = scalar(k, 3), rho = scalar(k, 4), mu = scalar(k, 5), eps = scalar(k, 6);
    for (int64_t i = 0; i < n; i++) {
      double gi = ld(f, g, i);
      st(f, a, i, ld(f, a, i) * rho + gi * gi * (1 - rho));
      st(f, b, i, ld(f, b, i) * mu + lr * gi / sqrt(ld(f, a, i) + eps));
      st(f, v, i, ld(f, v, i) - ld(f, b, i));
    }
    break;
  }
  case ADAM: { /* lr_t = lr sqrt(1-b2^t)/(1-b1^t); m, v moments; var -= lr_t m / (sqrt(v) + eps) */
    double b1p = scalar(k, 3), b2p = scalar(k, 4), lr = scalar(k, 5), b1 = scalar(k, 6);
    double b2 = scalar(k, 7), eps = scalar(k, 8);
    double lr_t = lr * sqrt(1 - b2p) / (1 - b1p);
    if (f) {
      float *x = v, *m = a, *s = b;
      const float *gg = g;
      float fb1 = (float)b1, fb2 = (float)b2, flr = (float)lr_t, feps = (float)eps;
      for (int64_t i = 0; i < n; i++) {
        float gi = gg[i];
        m[i] += (gi - m[i]) * (1 - fb1);
        s[i] += (gi * gi - s[i]) * (1 - fb2);
        x[i] -= flr * m[i] / (sqrtf(s[i]) + feps);
      }
    } else {
      double *x = v, *m = a, *s = b;
      const double *gg = g;
      for (int64_t i = 0; i < n; i++) {
        double gi = gg[i];
        m[i] += (gi - m[i]) * (1 - b1);
        s[i] += (gi * gi - s[i]) * (1 - b2);
        x[i] -= lr_t * m[i] / (sqrt(s[i]) + eps);
      }
    }
    break;
  }
  default: break;
  }
  k->out[0] = mf_tensor_retain(slot[0]);
}

/* ---------------------------------------------------------------- sparse updates */

/* Sparse gradients (an embedding's): rows `values` [U, ...] for the 1-based
 * row ids `ids` [U] of the variable, each id at most once (DedupRows makes
 * them so). The update equals the dense one with the gradient scattered into
 * zeros, without making that dense gradient. */
static void infer_sparse_apply(mfi_infer_ctx *c)
{
  const mf_op *op = c->op;
  int gi = grad_index(op), nref = op->def->nref;
  const mfi_meta *var = &c->in[0], *vals = &c->in[gi], *ids = &c->in[gi + 1];
  if (!mfi_is_float(var->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "can only update float variables");
    return;
  }
  for (int i = 1; i < gi + 1; i++)
    if (c->in[i].dtype != var->dtype) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d is %s but the variable is %s", i + 1,
                      mf_dtype_name(c->in[i].dtype), mf_dtype_name(var->dtype));
      return;
    }
  for (int i = nref; i < gi; i++)
    if (c->in[i].ndim > 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "hyperparameter input %d must be a scalar", i + 1);
      return;
    }
  if (ids->dtype != MF_INT32 && ids->dtype != MF_INT64) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "row ids must be int32 or int64");
    return;
  }
  if (var->ndim == 0 || (var->ndim > 0 && vals->ndim >= 0 && vals->ndim != var->ndim) ||
      (ids->ndim >= 0 && ids->ndim != 1)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "needs rows [n, ...] of a variable of rank >= 1 and ids [n]");
    return;
  }
  if (mfi_set_outputs(c, 1)) c->op->out[0] = *var;
}

/* The rows fit the (initialized) variable and its slots; the ids, in host
 * memory, are in range. */
static void prepare_sparse_apply(mfi_kctx *k)
{
  const mf_op *op = k->op;
  int gi = grad_index(op), nref = op->def->nref;
  const mf_tensor *vals = k->in[gi], *ids = k->in[gi + 1], *var = *k->vars[0].slot;
  for (int i = 0; i < nref; i++)
    if (!*k->vars[i].slot) {
      mfi_uninitialized_error(k, i);
      return;
    }
  int64_t rows = var->dims[0], n = ids->numel;
  bool shape_ok = vals->ndim == var->ndim && vals->dims[0] == n;
  for (int d = 1; shape_ok && d < var->ndim; d++) shape_ok = vals->dims[d] == var->dims[d];
  for (int i = 1; shape_ok && i < nref; i++) shape_ok = (*k->vars[i].slot)->numel == var->numel;
  if (!shape_ok) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, op, "the rows do not fit the variable '%s'",
                 k->vars[0].name);
    return;
  }
  mfi_check_ids(k, ids, rows, 0);
}

static void cpu_sparse_apply(mfi_kctx *k)
{
  const mf_op *op = k->op;
  int gi = grad_index(op), nref = op->def->nref;
  const mf_tensor *vals = k->in[gi], *ids = k->in[gi + 1];
  mf_tensor *slot[3] = {NULL, NULL, NULL};
  for (int i = 0; i < nref; i++)
    if (!(slot[i] = mfi_var_writable(k, i))) return;
  const mf_tensor *var = slot[0];
  int64_t rows = var->dims[0], width = rows ? var->numel / rows : 0, n = ids->numel;
  bool f = var->dtype == MF_FLOAT32;
  void *v = mfi_data(slot[0]);
  const void *g = mfi_data(vals), *idp = mfi_data(ids);
  if (kind(op) == SPARSE_SGD) {
    double lr = scalar(k, 1);
    for (int64_t j = 0; j < n; j++) {
      int64_t base = (mfi_get_i(ids->dtype, idp, j) - 1) * width;
      for (int64_t e = 0; e < width; e++)
        st(f, v, base + e, ld(f, v, base + e) - lr * ld(f, g, j * width + e));
    }
  } else { /* Adam: moments decay everywhere, the rows' gradients add in, every row moves */
    void *m = mfi_data(slot[1]), *s = mfi_data(slot[2]);
    double b1p = scalar(k, 3), b2p = scalar(k, 4), lr = scalar(k, 5), b1 = scalar(k, 6);
    double b2 = scalar(k, 7), eps = scalar(k, 8);
    double lr_t = lr * sqrt(1 - b2p) / (1 - b1p);
    int64_t total = var->numel;
    for (int64_t i = 0; i < total; i++)
      st(f, m, i, ld(f, m, i) * b1), st(f, s, i, ld(f, s, i) * b2);
    for (int64_t j = 0; j < n; j++) {
      int64_t base = (mfi_get_i(ids->dtype, idp, j) - 1) * width;
      for (int64_t e = 0; e < width; e++) {
        double gi_ = ld(f, g, j * width + e);
        st(f, m, base + e, ld(f, m, base + e) + (1 - b1) * gi_);
        st(f, s, base + e, ld(f, s, base + e) + (1 - b2) * gi_ * gi_);
      }
    }
    for (int64_t i = 0; i < total; i++)
      st(f, v, i, ld(f, v, i) - lr_t * ld(f, m, i) / (sqrt(ld(f, s, i)) + eps));
  }
  k->out[0] = mf_tensor_retain(slot[0]);
}

mfi_opdef mfi_ops_train[] = {
    /* var; lr, grad */
    {.type = "ApplyGradientDescent",
     .doc = "Gradient descent var -= alpha * delta, in place.",
     .inputs = "var, alpha, delta",
     .outputs = "out",
     .attrs = "use_nesterov: bool = false",
     .min_inputs = 3,
     .max_inputs = 3,
     .nref = 1,
     .infer = infer_apply,
     .prepare = prepare_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_apply}},
    /* var, accum; lr, grad, momentum — TF's order is (var, accum, lr, grad, momentum) */
    {.type = "ApplyMomentum",
     .doc = "The momentum update of var and accum, in place.",
     .inputs = "var, accum, lr, grad, momentum",
     .outputs = "out",
     .attrs = "use_nesterov: bool = false",
     .min_inputs = 5,
     .max_inputs = 5,
     .nref = 2,
     .infer = infer_apply,
     .prepare = prepare_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_apply}},
    /* var, accum; lr, grad */
    {.type = "ApplyAdagrad",
     .doc = "The Adagrad update of var and accum, in place.",
     .inputs = "var, accum, lr, grad",
     .outputs = "out",
     .attrs = "use_nesterov: bool = false",
     .min_inputs = 4,
     .max_inputs = 4,
     .nref = 2,
     .infer = infer_apply,
     .prepare = prepare_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_apply}},
    /* var, ms, mom; lr, rho, momentum, epsilon, grad */
    {.type = "ApplyRMSProp",
     .doc = "The RMSProp update of var, ms and mom, in place.",
     .inputs = "var, ms, mom, lr, rho, momentum, epsilon, grad",
     .outputs = "out",
     .attrs = "use_nesterov: bool = false",
     .min_inputs = 8,
     .max_inputs = 8,
     .nref = 3,
     .infer = infer_apply,
     .prepare = prepare_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_apply}},
    /* var, m, v; beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad */
    {.type = "ApplyAdam",
     .doc = "The Adam update of var, m and v, in place.",
     .inputs = "var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad",
     .outputs = "out",
     .attrs = "use_nesterov: bool = false",
     .min_inputs = 10,
     .max_inputs = 10,
     .nref = 3,
     .infer = infer_apply,
     .prepare = prepare_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_apply}},
    /* var; lr, rows, ids */
    {.type = "SparseApplyGradientDescent",
     .doc = "Gradient descent on the rows ids of var, in place.",
     .inputs = "var, alpha, rows, ids",
     .outputs = "out",
     .attrs = "",
     .min_inputs = 4,
     .max_inputs = 4,
     .nref = 1,
     .infer = infer_sparse_apply,
     .prepare = prepare_sparse_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sparse_apply},
     .host_in = 1u << 3},
    /* var, m, v; beta1_power, beta2_power, lr, beta1, beta2, epsilon, rows, ids */
    {.type = "SparseApplyAdam",
     .doc = "Adam on the rows ids of var, m and v, in place.",
     .inputs = "var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, rows, ids",
     .outputs = "out",
     .attrs = "",
     .min_inputs = 11,
     .max_inputs = 11,
     .nref = 3,
     .infer = infer_sparse_apply,
     .prepare = prepare_sparse_apply,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sparse_apply},
     .host_in = 1u << 10},
    {0}};

_Static_assert(sizeof mfi_ops_train / sizeof *mfi_ops_train == NUM_TRAIN_OPS + 1,
               "mfi_ops_train and its enum are out of step");
