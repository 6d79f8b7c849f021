/* Random ops. Element i of a run draws from Philox with counter
 * (i, attempt, run): the same seeds give the same values in every fresh
 * session, whatever the thread count. */
#include "sampler.h"
#include "shapes.h"

#include <math.h>
#include <stdlib.h>

enum {
  NORMAL,
  UNIFORM,
  TRUNCATED,
  ORTHOGONAL,
  MULTINOMIAL,
  LOG_UNIFORM_SAMPLER,
  UNIFORM_SAMPLER,
  NUM_RANDOM_OPS
};

static void cpu_random(mfi_kctx *k)
{
  const mf_op *op = k->op;
  const mfi_meta *m = &k->shapes[0]; /* prepare's: the attribute or the shape input */
  int kind = (int)(op->def - mfi_ops_random);
  if (!mfi_out_new(k, 0, m->dtype, m->ndim, m->dims)) return;
  mf_tensor *y = k->out[0];
  void *p = mfi_data(y);
  uint32_t w[4];
  if (kind == UNIFORM) {
    double lo = mfi_attr_float(op, "minval", 0), hi = mfi_attr_float(op, "maxval", 1);
    if (!mfi_is_float(m->dtype)) {
      uint64_t range = (uint64_t)((int64_t)hi - (int64_t)lo);
      for (int64_t i = 0; i < y->numel; i++) {
        mfi_random_draw(k, i, 0, w);
        mfi_set_i(m->dtype, p, i, (int64_t)lo + (int64_t)((((uint64_t)w[0] << 32) | w[1]) % range));
      }
      return;
    }
    for (int64_t i = 0; i < y->numel; i++) {
      mfi_random_draw(k, i, 0, w);
      double v = lo + (hi - lo) * mfi_random_unit(w[0], w[1]);
      if (m->dtype == MF_FLOAT32 && (float)v >= (float)hi) v = lo; /* rounding up to maxval */
      mfi_set_f(m->dtype, p, i, v);
    }
    return;
  }
  double mean = mfi_attr_float(op, "mean", 0), sd = mfi_attr_float(op, "stddev", 1);
  for (int64_t i = 0; i < y->numel; i++) {
    uint32_t attempt = 0;
    mfi_random_draw(k, i, attempt, w);
    double z = mfi_random_normal(w);
    while (kind == TRUNCATED && fabs(z) > 2.0) { /* redraw, as TensorFlow does */
      mfi_random_draw(k, i, ++attempt, w);
      z = mfi_random_normal(w);
    }
    mfi_set_f(m->dtype, p, i, mean + sd * z);
  }
}

void mfi_gram_schmidt(double *q, int64_t n, int64_t w)
{
  for (int64_t j = 0; j < w; j++) {
    for (int pass = 0; pass < 2; pass++)
      for (int64_t p = 0; p < j; p++) {
        double dot = 0;
        for (int64_t i = 0; i < n; i++) dot += q[i * w + p] * q[i * w + j];
        for (int64_t i = 0; i < n; i++) q[i * w + j] -= dot * q[i * w + p];
      }
    double norm = 0;
    for (int64_t i = 0; i < n; i++) norm += q[i * w + j] * q[i * w + j];
    norm = sqrt(norm);
    for (int64_t i = 0; i < n; i++) q[i * w + j] = norm > 0 ? q[i * w + j] / norm : 0;
  }
}

/* A random orthogonal matrix: Q of the QR decomposition (with a positive
 * diagonal in R, as TensorFlow's sign correction gives) of an n x m Gaussian
 * matrix, n >= m, by Gram-Schmidt with re-orthogonalisation; transposed
 * when the flattened shape is wide; times the gain. */
static void cpu_orthogonal(mfi_kctx *k)
{
  const mfi_meta *m = &k->shapes[0]; /* prepare's: the attribute or the shape input */
  if (!mfi_out_new(k, 0, m->dtype, m->ndim, m->dims)) return;
  int64_t cols = m->dims[m->ndim - 1], rows = k->out[0]->numel / (cols ? cols : 1);
  int64_t n = rows > cols ? rows : cols, w = rows > cols ? cols : rows;
  double gain = mfi_attr_float(k->op, "gain", 1.0);
  double *q = malloc(sizeof(double) * (size_t)(n * w + 1));
  if (!q) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    mf_tensor_delete(k->out[0]), k->out[0] = NULL;
    return;
  }
  uint32_t wd[4];
  for (int64_t i = 0; i < n * w; i++)
    mfi_random_draw(k, i, 0, wd), q[i] = mfi_random_normal(wd); /* row-major n x w */
  mfi_gram_schmidt(q, n, w);
  void *y = mfi_data(k->out[0]);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      mfi_set_f(m->dtype, y, r * cols + c, gain * (rows >= cols ? q[r * w + c] : q[c * w + r]));
  free(q);
}

/* Multinomial(logits [B, C]): num_samples class ids per row (1-based),
 * drawn from softmax(logits) by inverting the cumulative sum with one
 * uniform per sample. */
static void infer_multinomial(mfi_infer_ctx *c)
{
  const mfi_meta *l = &c->in[0];
  int64_t n;
  mf_dtype dt;
  if (!mfi_check_int(c, "num_samples", false, 1, &n) ||
      !mfi_check_type(c, "output_dtype", false, MF_INT64, &dt))
    return;
  if (!mfi_is_float(l->dtype) || (l->ndim >= 0 && l->ndim != 2)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs float logits [batch, classes]");
    return;
  }
  if (n < 0 || (dt != MF_INT32 && dt != MF_INT64)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "needs num_samples >= 0 and an int32/int64 output_dtype");
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  mfi_meta *o = &c->op->out[0];
  o->dtype = dt, o->ndim = 2, o->dims[0] = l->ndim == 2 ? l->dims[0] : -1, o->dims[1] = n;
}

/* The output: [batch, num_samples] of the static dtype. */
static void prepare_multinomial(mfi_kctx *k)
{
  const mf_tensor *l = k->in[0];
  if (l->ndim != 2 || l->dims[1] < 1) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "needs logits [batch, classes >= 1]");
    return;
  }
  k->shapes[0] = k->op->out[0];
  k->shapes[0].dims[0] = l->dims[0];
}

static void cpu_multinomial(mfi_kctx *k)
{
  const mf_tensor *l = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  int64_t B = om->dims[0], C = l->dims[1], n = om->dims[1];
  mf_dtype dt = om->dtype;
  if (!mfi_out_new(k, 0, dt, 2, om->dims)) return;
  double *p = malloc(sizeof(double) * (size_t)C);
  if (!p) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    mf_tensor_delete(k->out[0]), k->out[0] = NULL;
    return;
  }
  const void *lv = mfi_data(l);
  void *out = mfi_data(k->out[0]);
  uint32_t w[4];
  for (int64_t b = 0; b < B; b++) {
    double m = -INFINITY, total = 0;
    for (int64_t j = 0; j < C; j++) m = fmax(m, mfi_get_f(l->dtype, lv, b * C + j));
    for (int64_t j = 0; j < C; j++) total += p[j] = exp(mfi_get_f(l->dtype, lv, b * C + j) - m);
    /* The largest term is exp(0) = 1: a smaller (or NaN) total means a NaN
     * or +inf logit, or a row of -inf: no distribution to draw from. */
    if (!(total >= 1.0)) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "logits row %lld has a NaN or +inf value (or is all -inf): no distribution to "
                   "sample from",
                   (long long)b);
      free(p);
      mf_tensor_delete(k->out[0]), k->out[0] = NULL;
      return;
    }
    for (int64_t s = 0; s < n; s++) {
      mfi_random_draw(k, b * n + s, 0, w);
      double u = mfi_random_unit(w[0], w[1]) * total, acc = 0;
      int64_t j = 0;
      while (j < C - 1 && (acc += p[j]) <= u) j++;
      mfi_set_i(dt, out, b * n + s, j + 1);
    }
  }
  free(p);
}

/* ---------------------------------------------------------------- candidate samplers */

/* LogUniformCandidateSampler, UniformCandidateSampler (sampler.h):
 * true_classes [batch, num_true] (1-based ids) -> sampled_candidates
 * [num_sampled] int64, true_expected_count [batch, num_true] and
 * sampled_expected_count [num_sampled], float32, as TensorFlow's. */
static void infer_sampler(mfi_infer_ctx *c)
{
  const mfi_meta *t = &c->in[0];
  int64_t num_true, num_sampled, range;
  bool unique;
  if (!mfi_check_int(c, "num_true", true, 1, &num_true) ||
      !mfi_check_int(c, "num_sampled", true, 1, &num_sampled) ||
      !mfi_check_int(c, "range_max", true, 1, &range) ||
      !mfi_check_bool(c, "unique", true, false, &unique))
    return;
  if (num_true < 1 || num_sampled < 1 || range < 1) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "needs num_true, num_sampled and range_max >= 1, got %lld, %lld and %lld",
                    (long long)num_true, (long long)num_sampled, (long long)range);
    return;
  }
  if (unique && num_sampled > range) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot draw %lld unique classes out of range_max %lld",
                    (long long)num_sampled, (long long)range);
    return;
  }
  if ((t->dtype != MF_INT32 && t->dtype != MF_INT64) || (t->ndim >= 0 && t->ndim != 2) ||
      (t->ndim == 2 && t->dims[1] >= 0 && t->dims[1] != num_true)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "needs int32/int64 true_classes [batch, num_true = %lld]", (long long)num_true);
    return;
  }
  if (!mfi_set_outputs(c, 3)) return;
  mfi_meta *o = c->op->out;
  o[0].dtype = MF_INT64, o[0].ndim = 1, o[0].dims[0] = num_sampled;
  o[1].dtype = MF_FLOAT32, o[1].ndim = 2, o[1].dims[0] = t->ndim == 2 ? t->dims[0] : -1;
  o[1].dims[1] = num_true;
  o[2].dtype = MF_FLOAT32, o[2].ndim = 1, o[2].dims[0] = num_sampled;
}

/* The true classes (host memory) must be ids in 1..range_max. */
static void prepare_sampler(mfi_kctx *k)
{
  const mf_tensor *t = k->in[0];
  int64_t num_true = mfi_attr_int(k->op, "num_true", 1),
          range = mfi_attr_int(k->op, "range_max", 1);
  if (t->ndim != 2 || t->dims[1] != num_true) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "needs true_classes [batch, num_true = %lld]", (long long)num_true);
    return;
  }
  const void *tv = mfi_data(t);
  for (int64_t i = 0; i < t->numel; i++) {
    int64_t v = mfi_get_i(t->dtype, tv, i);
    if (v < 1 || v > range) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "true_classes holds %lld, outside 1..range_max (%lld); ids count from 1",
                   (long long)v, (long long)range);
      return;
    }
  }
}

static void cpu_sampler(mfi_kctx *k)
{
  const mf_op *op = k->op;
  const mf_tensor *t = k->in[0];
  bool log_uniform = op->def == &mfi_ops_random[LOG_UNIFORM_SAMPLER];
  bool unique = mfi_attr_bool(op, "unique", false);
  int64_t n = mfi_attr_int(op, "num_sampled", 1), range = mfi_attr_int(op, "range_max", 1);
  int64_t size = unique ? mfi_sampler_table_size(n) : 0;
  int64_t *table = unique ? malloc(sizeof(int64_t) * (size_t)size) : NULL;
  if (unique && !table) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    return;
  }
  if (!mfi_out_new(k, 0, MF_INT64, 1, &n) || !mfi_out_new(k, 1, MF_FLOAT32, 2, t->dims) ||
      !mfi_out_new(k, 2, MF_FLOAT32, 1, &n)) {
    for (int i = 0; i < 3; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
    free(table);
    return;
  }
  int64_t *s = mfi_data(k->out[0]);
  int64_t tries = mfi_sampler_run(log_uniform, range, n, unique, k->key, k->run, s, table, size);
  free(table);
  if (tries < 0) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "gave up drawing %lld unique classes after %lld tries", (long long)n,
                 (long long)MFI_SAMPLER_MAX_TRIES);
    for (int i = 0; i < 3; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
    return;
  }
  float *te = mfi_data(k->out[1]), *se = mfi_data(k->out[2]);
  const void *tv = mfi_data(t);
  for (int64_t i = 0; i < t->numel; i++)
    te[i] = mfi_sampler_expected(mfi_sampler_prob(log_uniform, range, mfi_get_i(t->dtype, tv, i)),
                                 n, tries);
  for (int64_t i = 0; i < n; i++)
    se[i] = mfi_sampler_expected(mfi_sampler_prob(log_uniform, range, s[i]), n, tries);
}

static void infer_random(mfi_infer_ctx *c)
{
  const mf_op *op = c->op;
  const mfi_attr *shape = mfi_attr_find(op, "shape");
  mf_dtype dt;
  double lo, hi, mean, sd, gain; /* read by the kernels */
  if (!mfi_check_type(c, "dtype", false, MF_FLOAT32, &dt) ||
      !mfi_check_float(c, "minval", false, 0, &lo) ||
      !mfi_check_float(c, "maxval", false, 1, &hi) ||
      !mfi_check_float(c, "mean", false, 0, &mean) ||
      !mfi_check_float(c, "stddev", false, 1, &sd) ||
      !mfi_check_float(c, "gain", false, 1.0, &gain))
    return;
  int kind = (int)(op->def - mfi_ops_random);
  mfi_ints sh;
  if (op->nin > 0) { /* the run-time form: the shape is input 0, in host memory */
    if (mfi_shape_arg(c, NULL, "shape", 0, false, &sh) <= 0) return;
  } else if (!shape || (shape->kind != MFI_A_SHAPE && shape->kind != MFI_A_INTS) || shape->i < 0 ||
             shape->i > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a fully known shape");
    return;
  } else {
    sh.n = (int)shape->i;
    for (int i = 0; i < sh.n; i++) {
      if (shape->ints[i] < 0) {
        mfi_infer_error(c, MF_INVALID_ARGUMENT, "dimension %d of the shape is %lld", i + 1,
                        (long long)shape->ints[i]);
        return;
      }
      sh.v[i] = shape->ints[i];
    }
  }
  bool intok = kind == UNIFORM && (dt == MF_INT32 || dt == MF_INT64);
  if (kind == ORTHOGONAL && sh.n >= 0 && sh.n < 2) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "an orthogonal matrix needs a shape of rank 2 or more");
    return;
  }
  if (!mfi_is_float(dt) && !intok) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot draw %s values", mf_dtype_name(dt));
    return;
  }
  if (kind == UNIFORM && !(hi > lo)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs minval < maxval");
    return;
  }
  /* Integer draws take whole bounds, as TensorFlow's do (a range truncated
   * to nothing would divide by zero). */
  if (kind == UNIFORM && !mfi_is_float(dt) &&
      (lo != floor(lo) || hi != floor(hi) || fabs(lo) > 0x1p62 || fabs(hi) > 0x1p62)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "%s draws need whole minval and maxval (within +-2^62), got %g and %g",
                    mf_dtype_name(dt), lo, hi);
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  mfi_meta_from_ints(&sh, dt, &c->op->out[0]);
}

/* shapes[0]: the static shape, or the one input 0 holds. */
static void prepare_random(mfi_kctx *k)
{
  if (k->op->nin == 0) {
    k->shapes[0] = k->op->out[0];
    return;
  }
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, NULL);
  mfi_ints s;
  if (mfi_shape_arg(&c, k, "shape", 0, false, &s) <= 0) return;
  if (k->op->def == &mfi_ops_random[ORTHOGONAL] && s.n < 2) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "an orthogonal matrix needs a shape of rank 2 or more");
    return;
  }
  mfi_meta_from_ints(&s, k->op->out[0].dtype, &k->shapes[0]);
}

mfi_opdef mfi_ops_random[] = {
    {.type = "RandomNormal",
     .doc = "Normal samples of a shape (attribute or host input).",
     .inputs = "shape?",
     .outputs = "output",
     .attrs = "shape: shape?; dtype: type = float32; mean: float = 0; stddev: float = 1",
     .min_inputs = 0,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_random,
     .prepare = prepare_random,
     .host_in = 1u << 0,
     .kernel = {[MFI_DEVICE_CPU] = cpu_random}},
    {.type = "RandomUniform",
     .doc = "Uniform samples in [minval, maxval) of a shape (attribute or host input).",
     .inputs = "shape?",
     .outputs = "output",
     .attrs = "shape: shape?; dtype: type = float32; minval: float = 0; maxval: float = 1",
     .min_inputs = 0,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_random,
     .prepare = prepare_random,
     .host_in = 1u << 0,
     .kernel = {[MFI_DEVICE_CPU] = cpu_random}},
    {.type = "TruncatedNormal",
     .doc = "Normal samples within two standard deviations of the mean, of a shape.",
     .inputs = "shape?",
     .outputs = "output",
     .attrs = "shape: shape?; dtype: type = float32; mean: float = 0; stddev: float = 1",
     .min_inputs = 0,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_random,
     .prepare = prepare_random,
     .host_in = 1u << 0,
     .kernel = {[MFI_DEVICE_CPU] = cpu_random}},
    {.type = "RandomOrthogonal",
     .doc = "A random (semi-)orthogonal matrix times gain, of a shape of rank 2 or more.",
     .inputs = "shape?",
     .outputs = "output",
     .attrs = "shape: shape?; dtype: type = float32; gain: float = 1",
     .min_inputs = 0,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_random,
     .prepare = prepare_random,
     .host_in = 1u << 0,
     .kernel = {[MFI_DEVICE_CPU] = cpu_orthogonal}},
    {.type = "Multinomial",
     .doc = "Draws num_samples 1-based class ids per row from softmax(logits).",
     .inputs = "logits",
     .outputs = "output",
     .attrs = "num_samples: int = 1; output_dtype: type = int64",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_multinomial,
     .prepare = prepare_multinomial,
     .kernel = {[MFI_DEVICE_CPU] = cpu_multinomial}},
    {.type = "LogUniformCandidateSampler",
     .doc = "Draws num_sampled 1-based classes from P(c) = log((c + 1) / c) / log(range_max + 1), "
            "with the expected counts of the true and sampled classes.",
     .inputs = "true_classes",
     .outputs = "sampled_candidates, true_expected_count, sampled_expected_count",
     .attrs = "num_true: int; num_sampled: int; unique: bool; range_max: int",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_sampler,
     .prepare = prepare_sampler,
     .host_in = 1u << 0,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sampler}},
    {.type = "UniformCandidateSampler",
     .doc = "Draws num_sampled 1-based classes uniformly from 1..range_max, with the expected "
            "counts of the true and sampled classes.",
     .inputs = "true_classes",
     .outputs = "sampled_candidates, true_expected_count, sampled_expected_count",
     .attrs = "num_true: int; num_sampled: int; unique: bool; range_max: int",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_sampler,
     .prepare = prepare_sampler,
     .host_in = 1u << 0,
     .kernel = {[MFI_DEVICE_CPU] = cpu_sampler}},
    {0}};

_Static_assert(sizeof mfi_ops_random / sizeof *mfi_ops_random == NUM_RANDOM_OPS + 1,
               "mfi_ops_random and its enum are out of step");
