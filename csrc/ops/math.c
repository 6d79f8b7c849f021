/* Element-wise math: binary ops with NumPy broadcasting, unary ops, casts
 * and select. The opcode of an op is its index in mfi_ops_math[], kept in
 * step with the enum below by a compile-time check. */
#include "../internal.h"

#include <math.h>
#include <string.h>

enum {
  /* binary arithmetic */
  ADD,
  SUB,
  MUL,
  DIV,
  MOD,
  POW,
  MAXIMUM,
  MINIMUM,
  /* binary comparisons (bool result) */
  EQUAL,
  NOT_EQUAL,
  LESS,
  LESS_EQUAL,
  GREATER,
  GREATER_EQUAL,
  /* binary logic */
  LOGICAL_AND,
  LOGICAL_OR,
  /* unary */
  ABS,
  NEG,
  SIGN,
  RECIPROCAL,
  SQUARE,
  ROUND,
  SQRT,
  EXP,
  LOG,
  COS,
  SIN,
  TANH,
  SIGMOID,
  LOGICAL_NOT,
  FLOOR,
  LOG1P,
  CAST,
  SELECT,
  NUM_MATH_OPS
};

static int opcode(const mf_op *op) { return (int)(op->def - mfi_ops_math); }
static bool is_compare(int op) { return op >= EQUAL && op <= GREATER_EQUAL; }
static bool is_logical(int op)
{
  return op == LOGICAL_AND || op == LOGICAL_OR || op == LOGICAL_NOT;
}
static bool float_only(int op)
{
  return (op >= RECIPROCAL && op <= SIGMOID && op != SQUARE && op != ROUND) || op == LOG1P;
}

/* ---------------------------------------------------------------- broadcast iteration */

/* Walks the output in rows of its last dimension; for each row, `row` gets
 * the element offset of every input and their strides along the row. */
typedef bool (*row_fn)(void *ctx, const int64_t *off, const int64_t *step, int64_t o, int64_t n);

static bool for_each_row(int nin, mf_tensor *const *in, int ndim, const int64_t *dims, row_fn row,
                         void *ctx)
{
  int64_t total = mfi_numel(ndim, dims), off[3] = {0, 0, 0}, step[3];
  if (total == 0) return true;
  bool flat = true;
  for (int j = 0; j < nin; j++) {
    if (in[j]->numel == total)
      step[j] = 1;
    else if (in[j]->numel == 1)
      step[j] = 0;
    else
      flat = false;
  }
  if (flat) return row(ctx, off, step, 0, total);

  int64_t st[3][MF_MAX_DIMS], idx[MF_MAX_DIMS] = {0};
  for (int j = 0; j < nin; j++) {
    mfi_bcast_strides(ndim, dims, in[j]->ndim, in[j]->dims, st[j]);
    step[j] = st[j][ndim - 1];
  }
  int64_t n = dims[ndim - 1];
  for (int64_t o = 0; o < total; o += n) {
    if (!row(ctx, off, step, o, n)) return false;
    for (int d = ndim - 2; d >= 0; d--) { /* odometer over the outer dimensions */
      idx[d]++;
      for (int j = 0; j < nin; j++) off[j] += st[j][d];
      if (idx[d] < dims[d]) break;
      for (int j = 0; j < nin; j++) off[j] -= st[j][d] * dims[d];
      idx[d] = 0;
    }
  }
  return true;
}

/* ---------------------------------------------------------------- scalar definitions */

static double floor_mod_f(double x, double y)
{
  double r = fmod(x, y);
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return r;
}

static double bin_f(int op, double x, double y)
{
  switch (op) {
  case ADD: return x + y;
  case SUB: return x - y;
  case MUL: return x * y;
  case DIV: return x / y;
  case MOD: return floor_mod_f(x, y);
  case POW: return pow(x, y);
  case MAXIMUM: return (x > y || isnan(x)) ? x : y;
  case MINIMUM: return (x < y || isnan(x)) ? x : y;
  default: return 0;
  }
}

static double sigmoid(double x)
{
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x);
  return e / (1 + e);
}

static double un_f(int op, double x)
{
  switch (op) {
  case ABS: return fabs(x);
  case NEG: return -x;
  case SIGN: return x > 0 ? 1 : x < 0 ? -1 : x;
  case RECIPROCAL: return 1 / x;
  case SQUARE: return x * x;
  case ROUND: return nearbyint(x); /* default rounding: half to even */
  case SQRT: return sqrt(x);
  case EXP: return exp(x);
  case LOG: return log(x);
  case COS: return cos(x);
  case SIN: return sin(x);
  case TANH: return tanh(x);
  case SIGMOID: return sigmoid(x);
  case FLOOR: return floor(x);
  case LOG1P: return log1p(x);
  default: return x;
  }
}

static int64_t un_i(int op, int64_t x)
{
  switch (op) {
  case ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x; /* INT64_MIN wraps, as C's types do */
  case NEG: return (int64_t)(0 - (uint64_t)x);
  case SIGN: return (x > 0) - (x < 0);
  case SQUARE: return (int64_t)((uint64_t)x * (uint64_t)x);
  default: return x;
  }
}

/* ---------------------------------------------------------------- binary kernels */

typedef struct {
  int op;
  mf_dtype dt; /* input dtype */
  const char *a, *b;
  char *o;
  mfi_kctx *k;
} bin_ctx;

/* float32 and float64 arithmetic, in double (bin_f): float64 as it is,
 * float32 rounded once at the end. */
static bool row_float(void *vc, const int64_t *off, const int64_t *st, int64_t o, int64_t n)
{
  bin_ctx *c = vc;
  int64_t sa = st[0], sb = st[1];
  if (c->dt == MF_FLOAT32) {
    const float *a = (const float *)c->a + off[0], *b = (const float *)c->b + off[1];
    float *y = (float *)c->o + o;
    for (int64_t i = 0; i < n; i++) y[i] = (float)bin_f(c->op, a[i * sa], b[i * sb]);
  } else {
    const double *a = (const double *)c->a + off[0], *b = (const double *)c->b + off[1];
    double *y = (double *)c->o + o;
    for (int64_t i = 0; i < n; i++) y[i] = bin_f(c->op, a[i * sa], b[i * sb]);
  }
  return true;
}

/* float32's own loops for the ops in every training step; the rest as above. */
static bool row_f32(void *vc, const int64_t *off, const int64_t *st, int64_t o, int64_t n)
{
  bin_ctx *c = vc;
  const float *a = (const float *)c->a + off[0], *b = (const float *)c->b + off[1];
  float *y = (float *)c->o + o;
  int64_t sa = st[0], sb = st[1];
  switch (c->op) {
  case ADD:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] + b[i * sb];
    break;
  case SUB:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] - b[i * sb];
    break;
  case MUL:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] * b[i * sb];
    break;
  case DIV:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] / b[i * sb];
    break;
  default: return row_float(vc, off, st, o, n);
  }
  return true;
}

static int64_t ipow(int64_t x, int64_t e)
{
  uint64_t r = 1, b = (uint64_t)x;
  for (; e > 0; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return (int64_t)r;
}

/* Integer arithmetic in int64 (wrapping like the C types would), with the
 * cases the hardware would trap on turned into errors. */
static bool row_int(void *vc, const int64_t *off, const int64_t *st, int64_t o, int64_t n)
{
  bin_ctx *c = vc;
  for (int64_t i = 0; i < n; i++) {
    int64_t x = mfi_get_i(c->dt, c->a, off[0] + i * st[0]);
    int64_t y = mfi_get_i(c->dt, c->b, off[1] + i * st[1]), r;
    switch (c->op) {
    case ADD: r = (int64_t)((uint64_t)x + (uint64_t)y); break;
    case SUB: r = (int64_t)((uint64_t)x - (uint64_t)y); break;
    case MUL: r = (int64_t)((uint64_t)x * (uint64_t)y); break;
    case DIV:
    case MOD:
      if (y == 0) {
        mfi_op_error(c->k->status, MF_INVALID_ARGUMENT, c->k->op, "integer division by zero");
        return false;
      }
      if (y == -1) { /* INT64_MIN / -1 traps */
        r = c->op == DIV ? (int64_t)(0 - (uint64_t)x) : 0;
        break;
      }
      r = x / y;
      if (c->op == DIV) {
        if ((x % y != 0) && ((x < 0) != (y < 0))) r--; /* floor, like Lua's // */
      } else {
        r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
      }
      break;
    case POW:
      if (y < 0) {
        mfi_op_error(c->k->status, MF_INVALID_ARGUMENT, c->k->op,
                     "integers to negative integer powers are not allowed");
        return false;
      }
      r = ipow(x, y);
      break;
    case MAXIMUM: r = x > y ? x : y; break;
    case MINIMUM: r = x < y ? x : y; break;
    default: r = 0;
    }
    mfi_set_i(c->dt, c->o, o + i, r);
  }
  return true;
}

static bool row_cmp(void *vc, const int64_t *off, const int64_t *st, int64_t o, int64_t n)
{
  bin_ctx *c = vc;
  uint8_t *y = (uint8_t *)c->o + o;
  bool fl = mfi_is_float(c->dt);
  for (int64_t i = 0; i < n; i++) {
    int r;
    if (fl) {
      double a = mfi_get_f(c->dt, c->a, off[0] + i * st[0]);
      double b = mfi_get_f(c->dt, c->b, off[1] + i * st[1]);
      r = c->op == EQUAL        ? a == b
          : c->op == NOT_EQUAL  ? a != b
          : c->op == LESS       ? a < b
          : c->op == LESS_EQUAL ? a <= b
          : c->op == GREATER    ? a > b
                                : a >= b;
    } else {
      int64_t a = mfi_get_i(c->dt, c->a, off[0] + i * st[0]);
      int64_t b = mfi_get_i(c->dt, c->b, off[1] + i * st[1]);
      r = c->op == EQUAL        ? a == b
          : c->op == NOT_EQUAL  ? a != b
          : c->op == LESS       ? a < b
          : c->op == LESS_EQUAL ? a <= b
          : c->op == GREATER    ? a > b
                                : a >= b;
    }
    y[i] = (uint8_t)r;
  }
  return true;
}

static bool row_logic(void *vc, const int64_t *off, const int64_t *st, int64_t o, int64_t n)
{
  bin_ctx *c = vc;
  const uint8_t *a = (const uint8_t *)c->a + off[0], *b = (const uint8_t *)c->b + off[1];
  uint8_t *y = (uint8_t *)c->o + o;
  if (c->op == LOGICAL_AND)
    for (int64_t i = 0; i < n; i++) y[i] = a[i * st[0]] && b[i * st[1]];
  else
    for (int64_t i = 0; i < n; i++) y[i] = a[i * st[0]] || b[i * st[1]];
  return true;
}

static bool runtime_shape(mfi_kctx *k, int nin, int *ndim, int64_t *dims)
{
  *ndim = k->in[0]->ndim;
  memcpy(dims, k->in[0]->dims, sizeof(int64_t) * (size_t)*ndim);
  for (int j = 1; j < nin; j++) {
    const mf_tensor *t = k->in[j];
    int64_t sofar[MF_MAX_DIMS]; /* the result is written over the shape being read */
    memcpy(sofar, dims, sizeof sofar);
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

static void cpu_binary(mfi_kctx *k)
{
  int op = opcode(k->op), ndim;
  int64_t dims[MF_MAX_DIMS];
  if (!runtime_shape(k, 2, &ndim, dims)) return;
  mf_dtype dt = k->in[0]->dtype;
  if (!mfi_out_new(k, 0, k->op->out[0].dtype, ndim, dims)) return;
  bin_ctx c = {op, dt, mfi_data(k->in[0]), mfi_data(k->in[1]), mfi_data(k->out[0]), k};
  row_fn row = is_compare(op)     ? row_cmp
               : is_logical(op)   ? row_logic
               : dt == MF_FLOAT32 ? row_f32
               : dt == MF_FLOAT64 ? row_float
                                  : row_int;
  if (!for_each_row(2, k->in, ndim, dims, row, &c)) {
    mf_tensor_delete(k->out[0]);
    k->out[0] = NULL;
  }
}

/* ---------------------------------------------------------------- unary kernels */

/* float32 and float64, in double (as row_float). */
static void un_float(int op, mf_dtype dt, const void *a, void *y, int64_t n)
{
  if (dt == MF_FLOAT32)
    for (int64_t i = 0; i < n; i++) ((float *)y)[i] = (float)un_f(op, ((const float *)a)[i]);
  else
    for (int64_t i = 0; i < n; i++) ((double *)y)[i] = un_f(op, ((const double *)a)[i]);
}

static void cpu_unary(mfi_kctx *k)
{
  int op = opcode(k->op);
  const mf_tensor *x = k->in[0];
  mf_dtype dt = x->dtype, odt = k->op->out[0].dtype;
  if (!mfi_out_new(k, 0, odt, x->ndim, x->dims)) return;
  const void *a = mfi_data(x);
  void *y = mfi_data(k->out[0]);
  int64_t n = x->numel;
  if (op == CAST) {
    if (mfi_is_float(dt) || mfi_is_float(odt))
      for (int64_t i = 0; i < n; i++) mfi_set_f(odt, y, i, mfi_get_f(dt, a, i));
    else
      for (int64_t i = 0; i < n; i++) mfi_set_i(odt, y, i, mfi_get_i(dt, a, i));
  } else if (op == LOGICAL_NOT) {
    for (int64_t i = 0; i < n; i++) ((uint8_t *)y)[i] = !((const uint8_t *)a)[i];
  } else if (dt == MF_FLOAT32) {
    const float *af = a;
    float *yf = y;
    switch (op) {
    case NEG:
      for (int64_t i = 0; i < n; i++) yf[i] = -af[i];
      break;
    case SQUARE:
      for (int64_t i = 0; i < n; i++) yf[i] = af[i] * af[i];
      break;
    case EXP:
      for (int64_t i = 0; i < n; i++) yf[i] = expf(af[i]);
      break;
    case TANH:
      for (int64_t i = 0; i < n; i++) yf[i] = tanhf(af[i]);
      break;
    default: un_float(op, dt, a, y, n);
    }
  } else if (dt == MF_FLOAT64) {
    un_float(op, dt, a, y, n);
  } else {
    for (int64_t i = 0; i < n; i++) mfi_set_i(dt, y, i, un_i(op, mfi_get_i(dt, a, i)));
  }
}

/* ---------------------------------------------------------------- select */

typedef struct {
  size_t esz;
  const uint8_t *cond;
  const char *x, *y;
  char *o;
} sel_ctx;

static bool row_select(void *vc, const int64_t *off, const int64_t *st, int64_t o, int64_t n)
{
  sel_ctx *c = vc;
  for (int64_t i = 0; i < n; i++) {
    bool t = c->cond[off[0] + i * st[0]];
    const char *src =
        t ? c->x + (off[1] + i * st[1]) * c->esz : c->y + (off[2] + i * st[2]) * c->esz;
    memcpy(c->o + (o + i) * c->esz, src, c->esz);
  }
  return true;
}

static void cpu_select(mfi_kctx *k)
{
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  if (!runtime_shape(k, 3, &ndim, dims)) return;
  mf_dtype dt = k->in[1]->dtype;
  if (!mfi_out_new(k, 0, dt, ndim, dims)) return;
  sel_ctx c = {mf_dtype_size(dt), mfi_data(k->in[0]), mfi_data(k->in[1]), mfi_data(k->in[2]),
               mfi_data(k->out[0])};
  for_each_row(3, k->in, ndim, dims, row_select, &c);
}

/* ---------------------------------------------------------------- inference */

static bool check_dtype(mfi_infer_ctx *c, int op, mf_dtype dt)
{
  const char *need = NULL;
  if (is_logical(op) && dt != MF_BOOL)
    need = "bool";
  else if (!is_logical(op) && !is_compare(op) && dt == MF_BOOL)
    need = "a numeric dtype";
  else if (float_only(op) && !mfi_is_float(dt))
    need = "float32 or float64";
  if (!need) return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs %s, got %s (use tf.cast)", need,
                  mf_dtype_name(dt));
  return false;
}

static void infer_binary(mfi_infer_ctx *c)
{
  int op = opcode(c->op);
  const mfi_meta *a = &c->in[0], *b = &c->in[1];
  if (a->dtype != b->dtype) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "inputs have different dtypes: %s and %s (use tf.cast to convert one)",
                    mf_dtype_name(a->dtype), mf_dtype_name(b->dtype));
    return;
  }
  if (!check_dtype(c, op, a->dtype) || !mfi_set_outputs(c, 1)) return;
  if (!mfi_broadcast_meta(c, a, b, &c->op->out[0])) return;
  c->op->out[0].dtype = is_compare(op) ? MF_BOOL : a->dtype;
}

static void infer_unary(mfi_infer_ctx *c)
{
  int op = opcode(c->op);
  mf_dtype dt = c->in[0].dtype;
  if (op == CAST) {
    if (!mfi_check_type(c, "DstT", true, dt, &dt)) return;
  } else if (!check_dtype(c, op, dt)) {
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0] = c->in[0];
  c->op->out[0].dtype = dt;
}

static void infer_select(mfi_infer_ctx *c)
{
  const mfi_meta *m = c->in;
  if (m[0].dtype != MF_BOOL) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the condition must be bool, got %s",
                    mf_dtype_name(m[0].dtype));
    return;
  }
  if (m[1].dtype != m[2].dtype) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "x and y have different dtypes: %s and %s",
                    mf_dtype_name(m[1].dtype), mf_dtype_name(m[2].dtype));
    return;
  }
  mfi_meta t;
  if (!mfi_set_outputs(c, 1) || !mfi_broadcast_meta(c, &m[0], &m[1], &t) ||
      !mfi_broadcast_meta(c, &t, &m[2], &c->op->out[0]))
    return;
  c->op->out[0].dtype = m[1].dtype;
}

/* ---------------------------------------------------------------- gradients */

static mf_output scalar_like(mfi_grad_ctx *g, mf_output t, double v)
{
  return mfi_gb_scalar(g, mfi_meta_of(t).dtype, v);
}

static void grad_math(mfi_grad_ctx *g)
{
  mf_op *op = g->op;
  mf_output none = {NULL, 0}, dy = g->dy[0], z = {op, 0};
  mf_output x = op->inputs[0], y = op->nin > 1 ? op->inputs[1] : none, *dx = g->dx;
  switch (opcode(op)) {
  case ADD:
    dx[0] = mfi_gb_reduce_like(g, dy, x);
    dx[1] = mfi_gb_reduce_like(g, dy, y);
    break;
  case SUB:
    dx[0] = mfi_gb_reduce_like(g, dy, x);
    dx[1] = mfi_gb_reduce_like(g, mfi_gb1(g, "Neg", dy), y);
    break;
  case MUL:
    dx[0] = mfi_gb_reduce_like(g, mfi_gb2(g, "Mul", dy, y), x);
    dx[1] = mfi_gb_reduce_like(g, mfi_gb2(g, "Mul", dy, x), y);
    break;
  case DIV: /* d(x/y) = dy/y, -dy x / y^2 */
    dx[0] = mfi_gb_reduce_like(g, mfi_gb2(g, "Div", dy, y), x);
    dx[1] = mfi_gb_reduce_like(
        g, mfi_gb1(g, "Neg", mfi_gb2(g, "Div", mfi_gb2(g, "Mul", dy, x), mfi_gb1(g, "Square", y))),
        y);
    break;
  case MOD: /* x mod y = x - floor(x/y) y */
    dx[0] = mfi_gb_reduce_like(g, dy, x);
    dx[1] = mfi_gb_reduce_like(
        g, mfi_gb1(g, "Neg", mfi_gb2(g, "Mul", dy, mfi_gb1(g, "Floor", mfi_gb2(g, "Div", x, y)))),
        y);
    break;
  case POW: { /* d(x^y) = y x^(y-1) dy, and x^y log(x) dy where x > 0 (else 0) */
    mf_output ym1 = mfi_gb2(g, "Sub", y, scalar_like(g, y, 1));
    dx[0] = mfi_gb_reduce_like(
        g, mfi_gb2(g, "Mul", dy, mfi_gb2(g, "Mul", y, mfi_gb2(g, "Pow", x, ym1))), x);
    mf_output pos = mfi_gb2(g, "Greater", x, scalar_like(g, x, 0));
    mf_output safe = mfi_gb3(g, "Select", pos, x, mfi_gb1(g, "OnesLike", x));
    mf_output logx = mfi_gb3(g, "Select", pos, mfi_gb1(g, "Log", safe), mfi_gb1(g, "ZerosLike", x));
    dx[1] = mfi_gb_reduce_like(g, mfi_gb2(g, "Mul", dy, mfi_gb2(g, "Mul", z, logx)), y);
    break;
  }
  case MAXIMUM:
  case MINIMUM: { /* the gradient goes to the chosen input (x on ties) */
    mf_output pick_x = mfi_gb2(g, opcode(op) == MAXIMUM ? "GreaterEqual" : "LessEqual", x, y);
    mf_output zeros = mfi_gb1(g, "ZerosLike", dy);
    dx[0] = mfi_gb_reduce_like(g, mfi_gb3(g, "Select", pick_x, dy, zeros), x);
    dx[1] = mfi_gb_reduce_like(g, mfi_gb3(g, "Select", pick_x, zeros, dy), y);
    break;
  }
  case ABS: dx[0] = mfi_gb2(g, "Mul", dy, mfi_gb1(g, "Sign", x)); break;
  case NEG: dx[0] = mfi_gb1(g, "Neg", dy); break;
  case RECIPROCAL: dx[0] = mfi_gb1(g, "Neg", mfi_gb2(g, "Mul", dy, mfi_gb1(g, "Square", z))); break;
  case SQUARE: dx[0] = mfi_gb2(g, "Mul", dy, mfi_gb2(g, "Mul", x, scalar_like(g, x, 2))); break;
  case SQRT: dx[0] = mfi_gb2(g, "Div", mfi_gb2(g, "Mul", dy, scalar_like(g, dy, 0.5)), z); break;
  case EXP: dx[0] = mfi_gb2(g, "Mul", dy, z); break;
  case LOG: dx[0] = mfi_gb2(g, "Div", dy, x); break;
  case LOG1P: dx[0] = mfi_gb2(g, "Div", dy, mfi_gb2(g, "Add", x, scalar_like(g, x, 1))); break;
  case COS: dx[0] = mfi_gb1(g, "Neg", mfi_gb2(g, "Mul", dy, mfi_gb1(g, "Sin", x))); break;
  case SIN: dx[0] = mfi_gb2(g, "Mul", dy, mfi_gb1(g, "Cos", x)); break;
  case TANH:
    dx[0] = mfi_gb2(g, "Mul", dy, mfi_gb2(g, "Sub", scalar_like(g, z, 1), mfi_gb1(g, "Square", z)));
    break;
  case SIGMOID:
    dx[0] = mfi_gb2(g, "Mul", dy, mfi_gb2(g, "Mul", z, mfi_gb2(g, "Sub", scalar_like(g, z, 1), z)));
    break;
  case CAST: /* only between float types; integer casts carry no gradient */
    if (mfi_is_float(mfi_meta_of(x).dtype) && mfi_is_float(mfi_meta_of(dy).dtype)) {
      mf_op_desc *d = mfi_gb_begin(g, "Cast");
      if (d) mf_op_add_input(d, dy), mf_op_set_attr_type(d, "DstT", mfi_meta_of(x).dtype);
      dx[0] = mfi_gb_finish(g, d, 0);
    }
    break;
  case SELECT: {
    mf_output zeros = mfi_gb1(g, "ZerosLike", dy);
    dx[1] = mfi_gb_reduce_like(g, mfi_gb3(g, "Select", x, dy, zeros), op->inputs[1]);
    dx[2] = mfi_gb_reduce_like(g, mfi_gb3(g, "Select", x, zeros, dy), op->inputs[2]);
    break;
  }
  default: break;
  }
}

mfi_opdef mfi_ops_math[] = {
    {.type = "Add",
     .doc = "Adds x and y element-wise (NumPy broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Sub",
     .doc = "Subtracts y from x element-wise (NumPy broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Mul",
     .doc = "Multiplies x and y element-wise (NumPy broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Div",
     .doc = "Divides x by y element-wise (NumPy broadcasting; integers truncate).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "FloorMod",
     .doc = "Remainder of floored division of x by y, element-wise (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Pow",
     .doc = "Raises x to the power y element-wise (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Maximum",
     .doc = "The larger of x and y element-wise (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Minimum",
     .doc = "The smaller of x and y element-wise (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary},
     .grad = grad_math},
    {.type = "Equal",
     .doc = "Whether x == y element-wise, as bool (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "NotEqual",
     .doc = "Whether x ~= y element-wise, as bool (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "Less",
     .doc = "Whether x < y element-wise, as bool (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "LessEqual",
     .doc = "Whether x <= y element-wise, as bool (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "Greater",
     .doc = "Whether x > y element-wise, as bool (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "GreaterEqual",
     .doc = "Whether x >= y element-wise, as bool (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "LogicalAnd",
     .doc = "Logical and of bool x and y element-wise (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "LogicalOr",
     .doc = "Logical or of bool x and y element-wise (broadcasting).",
     .inputs = "x, y",
     .outputs = "z",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_binary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_binary}},
    {.type = "Abs",
     .doc = "Absolute value element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Neg",
     .doc = "Negation element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Sign",
     .doc = "Sign (-1, 0 or 1) element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary}},
    {.type = "Reciprocal",
     .doc = "Reciprocal 1 / x element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Square",
     .doc = "Square x * x element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Round",
     .doc = "Rounds half to even element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary}},
    {.type = "Sqrt",
     .doc = "Square root element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Exp",
     .doc = "Exponential element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Log",
     .doc = "Natural logarithm element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Cos",
     .doc = "Cosine element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Sin",
     .doc = "Sine element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Tanh",
     .doc = "Hyperbolic tangent element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Sigmoid",
     .doc = "Logistic sigmoid 1 / (1 + exp(-x)) element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "LogicalNot",
     .doc = "Logical not of bool x element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary}},
    {.type = "Floor",
     .doc = "Largest integer not above x, element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary}},
    {.type = "Log1p",
     .doc = "Natural logarithm of 1 + x, element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Cast",
     .doc = "Converts x to dtype DstT element-wise.",
     .inputs = "x",
     .outputs = "y",
     .attrs = "DstT: type",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unary,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unary},
     .grad = grad_math},
    {.type = "Select",
     .doc = "Picks x where condition is true, else y, element-wise (broadcasting).",
     .inputs = "condition, x, y",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 3,
     .max_inputs = 3,
     .infer = infer_select,
     .kernel = {[MFI_DEVICE_CPU] = cpu_select},
     .grad = grad_math},
    {0}};

_Static_assert(sizeof mfi_ops_math / sizeof *mfi_ops_math == NUM_MATH_OPS + 1,
               "mfi_ops_math and the opcode enum are out of step");
