/* Sources and state: constants, placeholders, variables and their updates,
 * filled values, ranges, and the no-op used for grouping. */
#include "shapes.h"

#include <math.h>
#include <string.h>

static const mfi_attr *shape_attr(mfi_infer_ctx *c, bool need_known)
{
  const mfi_attr *a = mfi_attr_find(c->op, "shape");
  if (!a || a->kind != MFI_A_SHAPE || a->i > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a shape of rank at most %d", MF_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; need_known && i < a->i; i++)
    if (a->ints[i] < 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "dimension %d of the shape is %lld", i + 1,
                      (long long)a->ints[i]);
      return NULL;
    }
  if (need_known && a->i < 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a fully known shape");
    return NULL;
  }
  return a;
}

static bool set_meta_from_shape(mfi_infer_ctx *c, mf_dtype dt, const mfi_attr *shape)
{
  if (!mfi_set_outputs(c, 1)) return false;
  mfi_meta *m = &c->op->out[0];
  m->dtype = dt;
  m->ndim = (int)shape->i;
  for (int i = 0; i < m->ndim; i++) m->dims[i] = shape->ints[i];
  return true;
}

static mf_dtype dtype_attr(mfi_infer_ctx *c, mf_dtype dflt)
{
  mf_dtype dt;
  return mfi_check_type(c, "dtype", false, dflt, &dt) ? dt : MF_NUM_DTYPES;
}

/* True when a runtime shape fits a static one (-1 matches anything). */
static bool shape_fits(const mfi_meta *m, const mf_tensor *t)
{
  if (m->ndim < 0) return true;
  if (m->ndim != t->ndim) return false;
  for (int i = 0; i < m->ndim; i++)
    if (m->dims[i] >= 0 && m->dims[i] != t->dims[i]) return false;
  return true;
}

static void pass_through(mfi_kctx *k) { k->out[0] = mf_tensor_retain(k->in[0]); }

/* ---------------------------------------------------------------- constants, placeholders */

static void infer_const(mfi_infer_ctx *c)
{
  const mfi_attr *v = mfi_attr_find(c->op, "value");
  if (!v || v->kind != MFI_A_TENSOR || !v->t) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a tensor attribute 'value'");
    return;
  }
  mf_dtype dt; /* TensorFlow's Const carries its dtype too: it must agree */
  if (!mfi_check_type(c, "dtype", false, v->t->dtype, &dt)) return;
  if (dt != v->t->dtype) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "attribute 'dtype' is %s but the value is %s",
                    mf_dtype_name(dt), mf_dtype_name(v->t->dtype));
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  mfi_meta *m = &c->op->out[0];
  m->dtype = v->t->dtype;
  m->ndim = v->t->ndim;
  memcpy(m->dims, v->t->dims, sizeof(int64_t) * (size_t)m->ndim);
}

static void cpu_const(mfi_kctx *k)
{
  k->out[0] = mf_tensor_retain(mfi_attr_find(k->op, "value")->t);
}

static void infer_placeholder(mfi_infer_ctx *c)
{
  mf_dtype dt = dtype_attr(c, MF_FLOAT32);
  const mfi_attr *shape = mfi_attr_find(c->op, "shape");
  if (dt == MF_NUM_DTYPES || !mfi_set_outputs(c, 1)) return;
  mfi_meta *m = &c->op->out[0];
  m->dtype = dt;
  m->ndim = -1;
  if (shape && shape->kind == MFI_A_SHAPE && shape->i <= MF_MAX_DIMS) {
    m->ndim = (int)shape->i;
    for (int i = 0; i < m->ndim; i++) m->dims[i] = shape->ints[i] < 0 ? -1 : shape->ints[i];
  }
}

static void cpu_placeholder(mfi_kctx *k)
{
  mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "you must feed a value for placeholder '%s'",
               k->op->name);
}

static void infer_placeholder_default(mfi_infer_ctx *c)
{
  const mfi_attr *shape = mfi_attr_find(c->op, "shape");
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0] = c->in[0];
  if (!shape || shape->kind != MFI_A_SHAPE) return;
  if (shape->i > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the shape has rank %d (at most %d)", (int)shape->i,
                    MF_MAX_DIMS);
    return;
  }
  mfi_meta *m = &c->op->out[0];
  if (shape->i >= 0 && c->in[0].ndim >= 0 && shape->i != c->in[0].ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the default value has rank %d, the shape rank %d",
                    c->in[0].ndim, (int)shape->i);
    return;
  }
  m->ndim = (int)shape->i;
  for (int i = 0; i < m->ndim; i++) {
    int64_t d = shape->ints[i];
    if (d >= 0 && c->in[0].dims[i] >= 0 && d != c->in[0].dims[i]) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "the default value does not fit the shape");
      return;
    }
    m->dims[i] = d < 0 ? -1 : d;
  }
}

static void infer_noop(mfi_infer_ctx *c) { mfi_set_outputs(c, 0); }
static void cpu_noop(mfi_kctx *k) { (void)k; }

/* ---------------------------------------------------------------- variables */

static void infer_variable(mfi_infer_ctx *c)
{
  mf_dtype dt = dtype_attr(c, MF_FLOAT32);
  if (dt == MF_NUM_DTYPES) return;
  if (!mfi_attr_find(c->op, "shape")) { /* a shape known only once assigned */
    if (mfi_set_outputs(c, 1)) c->op->out[0].dtype = dt, c->op->out[0].ndim = -1;
    return;
  }
  const mfi_attr *shape = shape_attr(c, false);
  if (shape) set_meta_from_shape(c, dt, shape);
}

static bool read_var(mfi_kctx *k)
{
  if (!*k->vars[0].slot) {
    mfi_uninitialized_error(k, 0);
    return false;
  }
  k->out[0] = mf_tensor_retain(*k->vars[0].slot);
  return true;
}

static void cpu_variable(mfi_kctx *k) { read_var(k); }

static void infer_ref_read(mfi_infer_ctx *c)
{
  if (mfi_set_outputs(c, 1)) c->op->out[0] = c->in[0];
}

static void cpu_assign(mfi_kctx *k);

static void infer_assign(mfi_infer_ctx *c)
{
  const mfi_meta *var = &c->in[0], *val = &c->in[1];
  if (var->dtype != val->dtype) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the value is %s but the variable '%s' is %s",
                    mf_dtype_name(val->dtype), c->op->inputs[0].op->name,
                    mf_dtype_name(var->dtype));
    return;
  }
  bool validate;
  if (!mfi_check_bool(c, "validate_shape", false, true, &validate)) return;
  bool strict = c->op->def->kernel[MFI_DEVICE_CPU] != cpu_assign || validate;
  if (strict && var->ndim >= 0 && val->ndim >= 0) {
    bool ok = var->ndim == val->ndim;
    for (int i = 0; ok && i < var->ndim; i++)
      ok = var->dims[i] < 0 || val->dims[i] < 0 || var->dims[i] == val->dims[i];
    if (!ok) {
      char a[128], b[128];
      mfi_shape_str(val->ndim, val->dims, a, sizeof a);
      mfi_shape_str(var->ndim, var->dims, b, sizeof b);
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "the value's shape %s does not match the variable "
                      "'%s' of shape %s",
                      a, c->op->inputs[0].op->name, b);
      return;
    }
  }
  if (mfi_set_outputs(c, 1)) c->op->out[0] = *var;
}

static bool check_assign_shape(mfi_kctx *k, const mf_tensor *v)
{
  const mfi_meta *decl = k->vars[0].decl;
  if (shape_fits(decl, v)) return true;
  char a[128], b[128];
  mfi_shape_str(v->ndim, v->dims, a, sizeof a);
  mfi_shape_str(decl->ndim, decl->dims, b, sizeof b);
  mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
               "the value's shape %s does not match the variable '%s' of shape %s", a,
               k->vars[0].name, b);
  return false;
}

static void cpu_assign(mfi_kctx *k)
{
  mf_tensor *v = k->in[1];
  if (mfi_attr_bool(k->op, "validate_shape", true) && !check_assign_shape(k, v)) return;
  /* A variable owns its memory: a caller's borrowed buffer (a fed value) is
   * copied rather than kept past the run. */
  mf_tensor *keep = v->buf->borrowed ? NULL : mf_tensor_retain(v);
  if (!keep) {
    mf_status tmp;
    mfi_clear(&tmp);
    if (!(keep = mfi_tensor_copy(v, &tmp))) {
      mfi_op_error(k->status, tmp.code, k->op, "%s", tmp.msg);
      return;
    }
  }
  mf_tensor_delete(*k->vars[0].slot);
  *k->vars[0].slot = keep;
  k->out[0] = mf_tensor_retain(keep);
}

/* In place when the session is the only holder of the value; otherwise a
 * reader still sees the old buffer, so the update goes to a copy. */
static void assign_update(mfi_kctx *k, bool sub)
{
  mf_tensor *v = k->in[1], *cur = *k->vars[0].slot;
  if (!cur) {
    read_var(k); /* reports the uninitialized variable */
    return;
  }
  if (v->ndim != cur->ndim || v->numel != cur->numel ||
      memcmp(v->dims, cur->dims, sizeof(int64_t) * (size_t)v->ndim) != 0) {
    check_assign_shape(k, v);
    if (mfi_ok(k->status))
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "the update's shape does not match the variable's value");
    return;
  }
  if (!(cur = mfi_var_writable(k, 0))) return;
  void *p = mfi_data(cur);
  const void *q = mfi_data(v);
  int64_t n = cur->numel;
  switch (cur->dtype) {
  case MF_FLOAT32:
    if (sub)
      for (int64_t i = 0; i < n; i++) ((float *)p)[i] -= ((const float *)q)[i];
    else
      for (int64_t i = 0; i < n; i++) ((float *)p)[i] += ((const float *)q)[i];
    break;
  case MF_FLOAT64:
    if (sub)
      for (int64_t i = 0; i < n; i++) ((double *)p)[i] -= ((const double *)q)[i];
    else
      for (int64_t i = 0; i < n; i++) ((double *)p)[i] += ((const double *)q)[i];
    break;
  default:
    for (int64_t i = 0; i < n; i++) {
      uint64_t a = (uint64_t)mfi_get_i(cur->dtype, p, i), b = (uint64_t)mfi_get_i(v->dtype, q, i);
      mfi_set_i(cur->dtype, p, i, (int64_t)(sub ? a - b : a + b));
    }
  }
  k->out[0] = mf_tensor_retain(cur);
}

static void cpu_assign_add(mfi_kctx *k) { assign_update(k, false); }
static void cpu_assign_sub(mfi_kctx *k) { assign_update(k, true); }

/* ---------------------------------------------------------------- filled values */

static void infer_fill(mfi_infer_ctx *c)
{
  mf_dtype dt = dtype_attr(c, MF_FLOAT32);
  double value; /* read by the kernel */
  if (dt == MF_NUM_DTYPES || !mfi_check_float(c, "value", false, 0, &value)) return;
  if (c->op->nin > 0) { /* the run-time form: the shape is input 0, in host memory */
    mfi_ints s;
    if (mfi_shape_arg(c, NULL, "shape", 0, false, &s) > 0 && mfi_set_outputs(c, 1))
      mfi_meta_from_ints(&s, dt, &c->op->out[0]);
    return;
  }
  const mfi_attr *shape = shape_attr(c, true);
  if (shape) set_meta_from_shape(c, dt, shape);
}

/* shapes[0]: the static shape, or the one input 0 holds. */
static void prepare_fill(mfi_kctx *k)
{
  if (k->op->nin == 0) {
    k->shapes[0] = k->op->out[0];
    return;
  }
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, NULL);
  mfi_ints s;
  if (mfi_shape_arg(&c, k, "shape", 0, false, &s) > 0)
    mfi_meta_from_ints(&s, k->op->out[0].dtype, &k->shapes[0]);
}

static void fill(mf_tensor *t, double v)
{
  void *p = mfi_data(t);
  if (t->dtype == MF_FLOAT32) {
    for (int64_t i = 0; i < t->numel; i++) ((float *)p)[i] = (float)v;
  } else if (v == 0) {
    memset(p, 0, mf_tensor_nbytes(t));
  } else {
    for (int64_t i = 0; i < t->numel; i++) mfi_set_f(t->dtype, p, i, v);
  }
}

static void cpu_fill(mfi_kctx *k)
{
  const mfi_meta *m = &k->shapes[0];
  if (mfi_out_new(k, 0, m->dtype, m->ndim, m->dims))
    fill(k->out[0], mfi_attr_float(k->op, "value", 0));
}

static void infer_like(mfi_infer_ctx *c)
{
  if (mfi_set_outputs(c, 1)) c->op->out[0] = c->in[0];
}

static void cpu_like(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (mfi_out_new(k, 0, x->dtype, x->ndim, x->dims))
    fill(k->out[0], strcmp(k->op->def->type, "OnesLike") == 0 ? 1 : 0);
}

/* The element count, saturated at 2^62 (refused by the caller): a count
 * beyond int64_t (0 to 1e300) is undefined to convert in C. */
static int64_t range_count(double start, double limit, double delta)
{
  double n = ceil((limit - start) / delta);
  if (!(n > 0)) return 0;
  return n >= 0x1p62 ? (int64_t)1 << 62 : (int64_t)n;
}

static void infer_range(mfi_infer_ctx *c)
{
  mf_dtype dt = dtype_attr(c, MF_INT32);
  double start, limit, delta;
  if (dt == MF_NUM_DTYPES || !mfi_check_float(c, "start", false, 0, &start) ||
      !mfi_check_float(c, "limit", false, 0, &limit) ||
      !mfi_check_float(c, "delta", false, 1, &delta))
    return;
  if (delta == 0 || !isfinite(start) || !isfinite(limit) || !isfinite(delta)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs finite bounds and a non-zero delta");
    return;
  }
  if (dt == MF_BOOL || range_count(start, limit, delta) > ((int64_t)1 << 40)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot make that range");
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0].dtype = dt;
  c->op->out[0].ndim = 1;
  c->op->out[0].dims[0] = range_count(start, limit, delta);
}

static void cpu_range(mfi_kctx *k)
{
  const mfi_meta *m = &k->op->out[0];
  double start = mfi_attr_float(k->op, "start", 0), delta = mfi_attr_float(k->op, "delta", 1);
  if (!mfi_out_new(k, 0, m->dtype, 1, m->dims)) return;
  for (int64_t i = 0; i < m->dims[0]; i++)
    mfi_set_f(m->dtype, mfi_data(k->out[0]), i, start + (double)i * delta);
}

static void grad_pass(mfi_grad_ctx *g) { g->dx[0] = g->dy[0]; }

mfi_opdef mfi_ops_state[] = {
    {.type = "Const",
     .doc = "A constant tensor.",
     .inputs = "",
     .outputs = "output",
     .attrs = "value: tensor; dtype: type?",
     .min_inputs = 0,
     .max_inputs = 0,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_const,
     .kernel = {[MFI_DEVICE_CPU] = cpu_const}},
    {.type = "Placeholder",
     .doc = "A value that must be fed.",
     .inputs = "",
     .outputs = "output",
     .attrs = "dtype: type = float32; shape: shape?",
     .min_inputs = 0,
     .max_inputs = 0,
     .flags = MFI_PLACEHOLDER | MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_placeholder,
     .kernel = {[MFI_DEVICE_CPU] = cpu_placeholder}},
    {.type = "PlaceholderWithDefault",
     .doc = "A value that may be fed, else input.",
     .inputs = "input",
     .outputs = "output",
     .attrs = "shape: shape?",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_placeholder_default,
     .kernel = {[MFI_DEVICE_CPU] = pass_through},
     .grad = grad_pass},
    {.type = "NoOp",
     .doc = "Does nothing (groups control inputs).",
     .inputs = "",
     .outputs = "",
     .attrs = "",
     .min_inputs = 0,
     .max_inputs = 0,
     .flags = MFI_ANY_DEVICE,
     .infer = infer_noop,
     .kernel = {[MFI_DEVICE_CPU] = cpu_noop}},
    {.type = "VariableV2",
     .doc = "A variable: a value kept in the session across runs.",
     .inputs = "",
     .outputs = "ref",
     .attrs = "dtype: type = float32; shape: shape?",
     .min_inputs = 0,
     .max_inputs = 0,
     .flags = MFI_VARIABLE | MFI_ANY_DEVICE,
     .infer = infer_variable,
     .kernel = {[MFI_DEVICE_CPU] = cpu_variable}},
    {.type = "ReadVariable",
     .doc = "The variable's current value.",
     .inputs = "ref",
     .outputs = "value",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE,
     .nref = 1,
     .infer = infer_ref_read,
     .kernel = {[MFI_DEVICE_CPU] = cpu_variable},
     .grad = grad_pass},
    {.type = "Assign",
     .doc = "Sets the variable to value and outputs it.",
     .inputs = "ref, value",
     .outputs = "output_ref",
     .attrs = "validate_shape: bool = true",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_ANY_DEVICE,
     .nref = 1,
     .infer = infer_assign,
     .kernel = {[MFI_DEVICE_CPU] = cpu_assign}},
    {.type = "AssignAdd",
     .doc = "Adds value to the variable and outputs the result.",
     .inputs = "ref, value",
     .outputs = "output_ref",
     .attrs = "validate_shape: bool = true",
     .min_inputs = 2,
     .max_inputs = 2,
     .nref = 1,
     .infer = infer_assign,
     .kernel = {[MFI_DEVICE_CPU] = cpu_assign_add}},
    {.type = "AssignSub",
     .doc = "Subtracts value from the variable and outputs the result.",
     .inputs = "ref, value",
     .outputs = "output_ref",
     .attrs = "validate_shape: bool = true",
     .min_inputs = 2,
     .max_inputs = 2,
     .nref = 1,
     .infer = infer_assign,
     .kernel = {[MFI_DEVICE_CPU] = cpu_assign_sub}},
    {.type = "Fill",
     .doc = "A tensor of a shape (attribute or host input) filled with value.",
     .inputs = "shape?",
     .outputs = "output",
     .attrs = "shape: ints?; dtype: type = float32; value: float = 0",
     .min_inputs = 0,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT, /* the shape input is integral */
     .infer = infer_fill,
     .prepare = prepare_fill,
     .kernel = {[MFI_DEVICE_CPU] = cpu_fill},
     .host_in = 1u << 0},
    {.type = "ZerosLike",
     .doc = "Zeros of x's shape and dtype.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_like,
     .kernel = {[MFI_DEVICE_CPU] = cpu_like}},
    {.type = "OnesLike",
     .doc = "Ones of x's shape and dtype.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_like,
     .kernel = {[MFI_DEVICE_CPU] = cpu_like}},
    {.type = "Range",
     .doc = "The numbers from start up to (not including) limit in steps of delta.",
     .inputs = "",
     .outputs = "output",
     .attrs = "start: float = 0; limit: float = 0; delta: float = 1; dtype: type = int32",
     .min_inputs = 0,
     .max_inputs = 0,
     .infer = infer_range,
     .kernel = {[MFI_DEVICE_CPU] = cpu_range}},
    {0}};
