// Random ops (csrc/ops/random.c) and Dropout (csrc/ops/nn.c): the CPU's
// Philox streams (csrc/philox.h, compiled for the device too), so a device
// draws the same numbers: element i of a run takes Philox's block at counter
// (i, attempt, run) under the op's key, and each work item transforms its
// own block with the CPU's arithmetic, in double where the CPU's is.
#include "kernel.h"
#include "../csrc/ops/sampler.h"

#include <stdlib.h>
#include <string.h>

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- the stream

// The op's key and run (kctx's key and run, passed by value to kernels).
struct Stream {
  uint64_t key, run;
};

inline Stream stream_of(const mfi_kctx *k) { return Stream{k->key, k->run}; }

// Element i's block for its attempt-th draw (philox.h, as the CPU's).
MF_HD void draw(Stream s, int64_t i, uint32_t attempt, uint32_t out[4])
{
  mfi_philox_draw(s.key, s.run, i, attempt, out);
}

// Element i's standard normal; truncated ones redraw beyond two standard
// deviations, with the next attempt's block, as TensorFlow does.
MF_HD double normal_at(Stream s, int64_t i, bool truncated)
{
  uint32_t w[4], attempt = 0;
  draw(s, i, attempt, w);
  double z = mfi_random_normal(w);
  while (truncated && fabs(z) > 2.0) {
    draw(s, i, ++attempt, w);
    z = mfi_random_normal(w);
  }
  return z;
}

// ---------------------------------------------------------------- RandomNormal, TruncatedNormal,
// RandomUniform

template <class T>
MF_GLOBAL void normal_kernel(T *y, Stream s, double mean, double sd, bool truncated, int64_t n)
{
  MF_FOR(i, n) y[i] = (T)(mean + sd * normal_at(s, i, truncated));
}

// float32 values that round up to maxval become minval, as on the CPU.
template <class T>
MF_GLOBAL void uniform_kernel(T *y, Stream s, double lo, double hi, bool f32, int64_t n)
{
  MF_FOR(i, n)
  {
    uint32_t w[4];
    draw(s, i, 0, w);
    double v = lo + (hi - lo) * mfi_random_unit(w[0], w[1]);
    if (f32 && (float)v >= (float)hi) v = lo;
    y[i] = (T)v;
  }
}

template <class T>
MF_GLOBAL void uniform_int_kernel(T *y, Stream s, int64_t lo, uint64_t range, int64_t n)
{
  MF_FOR(i, n)
  {
    uint32_t w[4];
    draw(s, i, 0, w);
    y[i] = (T)(lo + (int64_t)((((uint64_t)w[0] << 32) | w[1]) % range));
  }
}

// The output has the shape prepare worked out (the attribute's or the
// shape input's).
static bool random_out(mfi_kctx *k)
{
  const mfi_meta *m = &k->shapes[0];
  return mfi_out_new(k, 0, m->dtype, m->ndim, m->dims);
}

static void normal(mfi_kctx *k, bool truncated)
{
  if (!random_out(k)) return;
  mf_tensor *y = k->out[0];
  double mean = mfi_attr_float(k->op, "mean", 0), sd = mfi_attr_float(k->op, "stddev", 1);
  if (y->numel == 0) return;
  with_float(y->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(normal_kernel<T>, y->numel, k->stream)
    (data<T>(y), stream_of(k), mean, sd, truncated, y->numel);
  });
  launched(k);
}

static void k_normal(mfi_kctx *k) { normal(k, false); }
static void k_truncated(mfi_kctx *k) { normal(k, true); }

static void k_uniform(mfi_kctx *k)
{
  if (!random_out(k)) return;
  mf_tensor *y = k->out[0];
  double lo = mfi_attr_float(k->op, "minval", 0), hi = mfi_attr_float(k->op, "maxval", 1);
  int64_t n = y->numel;
  if (n == 0) return;
  if (!mfi_is_float(y->dtype)) {
    // Integers: minval + 64 random bits modulo the range, from the
    // attributes truncated as the CPU truncates them.
    uint64_t range = (uint64_t)((int64_t)hi - (int64_t)lo);
    with_type(y->dtype, [&](auto z) {
      using T = decltype(z);
      MF_LAUNCH(uniform_int_kernel<T>, n, k->stream)
      (data<T>(y), stream_of(k), (int64_t)lo, range, n);
    });
  } else {
    with_float(y->dtype, [&](auto z) {
      using T = decltype(z);
      MF_LAUNCH(uniform_kernel<T>, n, k->stream)
      (data<T>(y), stream_of(k), lo, hi, y->dtype == MF_FLOAT32, n);
    });
  }
  launched(k);
}

// ---------------------------------------------------------------- RandomOrthogonal

// q[i]: element i's standard normal, in double.
MF_GLOBAL void gauss_kernel(double *q, Stream s, int64_t n)
{
  MF_FOR(i, n) q[i] = normal_at(s, i, false);
}

// y[r, c] = gain q[r, c] (tall or square) or gain q[c, r] (wide), from the
// orthonormal columns q [n, w].
template <class T>
MF_GLOBAL void orthogonal_out_kernel(T *y, const double *q, double gain, int64_t rows, int64_t cols,
                                     int64_t w)
{
  MF_FOR(i, rows * cols)
  {
    int64_t r = i / cols, c = i % cols;
    y[i] = (T)(gain * (rows >= cols ? q[r * w + c] : q[c * w + r]));
  }
}

// Q of the QR decomposition of an n x w Gaussian matrix (n >= w), drawn on
// the device, orthonormalised on the host, written out on the device;
// transposed when the flattened shape is wide; times the gain.
static void k_orthogonal(mfi_kctx *k)
{
  if (!random_out(k)) return;
  mf_tensor *y = k->out[0];
  int64_t cols = y->dims[y->ndim - 1], rows = y->numel / (cols ? cols : 1);
  int64_t n = rows > cols ? rows : cols, w = rows > cols ? cols : rows;
  if (n * w == 0) return;
  size_t bytes = sizeof(double) * (size_t)(n * w);
  double *dq = (double *)mfi_scratch(k, bytes), *q = dq ? (double *)mfi_alloc(bytes) : NULL;
  if (!q) {
    if (dq) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of host memory");
    mf_tensor_delete(y), k->out[0] = NULL;
    return;
  }
  MF_LAUNCH(gauss_kernel, n * w, k->stream)(dq, stream_of(k), n * w);
  bool ok = launched(k) && to_host(k, q, dq, bytes);
  if (ok) {
    mfi_gram_schmidt(q, n, w);
    ok = from_host(k, dq, q, bytes);
  }
  if (ok) {
    double gain = mfi_attr_float(k->op, "gain", 1.0);
    with_float(y->dtype, [&](auto z) {
      using T = decltype(z);
      MF_LAUNCH(orthogonal_out_kernel<T>, rows * cols, k->stream)
      (data<T>(y), dq, gain, rows, cols, w);
    });
    launched(k);
  }
  mfi_free(q, bytes);
}

// ---------------------------------------------------------------- Multinomial

// One work item per row b of the logits [B, C]: the unnormalised
// probabilities p = exp(logits - max) and their total, in double, summed in
// the CPU's order.
// A row whose total is below exp(0) = 1 (NaN: a NaN or +inf logit, or all
// -inf) has no distribution: it raises the flag `bad`, read back by the host.
template <class T>
MF_GLOBAL void multinomial_row_kernel(const T *l, double *p, double *total, uint8_t *bad, int64_t C,
                                      int64_t B)
{
  MF_FOR(b, B)
  {
    double m = -INFINITY, t = 0;
    for (int64_t j = 0; j < C; j++) m = fmax(m, (double)l[b * C + j]);
    for (int64_t j = 0; j < C; j++) t += p[b * C + j] = exp((double)l[b * C + j] - m);
    total[b] = t;
    if (!(t >= 1.0)) bad[0] = 1;
  }
}

MF_GLOBAL void multinomial_clear_flag(uint8_t *f) { MF_FOR(i, 1) f[i] = 0; }

// One work item per sample s of row b (element b * n + s): one uniform,
// scaled by the row's total, inverted by walking the cumulative sum; the
// class id is 1-based.
template <class T>
MF_GLOBAL void multinomial_sample_kernel(T *y, const double *p, const double *total, Stream st,
                                         int64_t C, int64_t n, int64_t total_samples)
{
  MF_FOR(i, total_samples)
  {
    int64_t b = i / n;
    uint32_t w[4];
    draw(st, i, 0, w);
    double u = mfi_random_unit(w[0], w[1]) * total[b], acc = 0;
    const double *pb = p + b * C;
    int64_t j = 0;
    while (j < C - 1 && (acc += pb[j]) <= u) j++;
    y[i] = (T)(j + 1);
  }
}

// Prepare left the output [batch, num_samples] in shapes[0] and checked
// that there is a class.
static void k_multinomial(mfi_kctx *k)
{
  const mf_tensor *l = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  int64_t B = om->dims[0], C = l->dims[1], n = om->dims[1];
  if (!mfi_out_new(k, 0, om->dtype, 2, om->dims) || B * n == 0) return;
  double *p = (double *)mfi_scratch(k, sizeof(double) * (size_t)(B * C + B + 1));
  if (!p) {
    mf_tensor_delete(k->out[0]), k->out[0] = NULL;
    return;
  }
  double *total = p + B * C;
  uint8_t *dbad = (uint8_t *)(total + B), bad = 0;
  MF_LAUNCH(multinomial_clear_flag, 1, k->stream)(dbad);
  with_float(l->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(multinomial_row_kernel<T>, B, k->stream)(data<T>(l), p, total, dbad, C, B);
  });
  if (!launched(k) || !to_host(k, &bad, dbad, 1) || bad) {
    if (bad)
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "logits have a row with a NaN or +inf value (or all -inf): no distribution to "
                   "sample from");
    mf_tensor_delete(k->out[0]), k->out[0] = NULL;
    return;
  }
  with_type(om->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(multinomial_sample_kernel<T>, B * n, k->stream)
    (data<T>(k->out[0]), p, total, stream_of(k), C, n, B * n);
  });
  launched(k);
}

// ---------------------------------------------------------------- Dropout

// mask = scale where the element's uniform falls below keep_prob, else 0;
// y = x mask, in T as on the CPU.
template <class T>
MF_GLOBAL void dropout_kernel(const T *x, T *y, T *mask, Stream s, double keep, T scale, int64_t n)
{
  MF_FOR(i, n)
  {
    uint32_t w[4];
    draw(s, i, 0, w);
    mask[i] = mfi_random_unit(w[0], w[1]) < keep ? scale : (T)0;
    y[i] = x[i] * mask[i];
  }
}

// Prepare left keep_prob (attribute or host-memory input, checked) in
// params[0] as the bits of a double.
static void k_dropout(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  double keep;
  memcpy(&keep, &k->params[0], sizeof keep);
  if (!out_like(k, 0, x)) return;
  if (!out_like(k, 1, x)) {
    mf_tensor_delete(k->out[0]), k->out[0] = NULL;
    return;
  }
  int64_t n = x->numel;
  if (n == 0) return;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    MF_LAUNCH(dropout_kernel<T>, n, k->stream)
    (data<T>(x), data<T>(k->out[0]), data<T>(k->out[1]), stream_of(k), keep, (T)(1.0 / keep), n);
  });
  launched(k);
}

// ---------------------------------------------------------------- candidate samplers

// One work item draws the whole batch (sampler.h): the tries of a unique
// draw depend on each other. It writes the classes, their expected counts
// and the number of tries (-1: gave up).
MF_GLOBAL void sampler_draw_kernel(bool log_uniform, int64_t range, int64_t n, bool unique,
                                   Stream st, int64_t *s, float *se, int64_t *table, int64_t size,
                                   int64_t *tries)
{
  MF_FOR(i, 1)
  {
    int64_t t = mfi_sampler_run(log_uniform, range, n, unique, st.key, st.run, s, table, size);
    tries[i] = t;
    for (int64_t j = 0; t >= 0 && j < n; j++)
      se[j] = mfi_sampler_expected(mfi_sampler_prob(log_uniform, range, s[j]), n, t);
  }
}

// Work item i: true class i's expected count.
MF_GLOBAL void sampler_true_kernel(bool log_uniform, int64_t range, int64_t n, const int64_t *tc,
                                   const int64_t *tries, float *te, int64_t m)
{
  MF_FOR(i, m)
  te[i] = mfi_sampler_expected(mfi_sampler_prob(log_uniform, range, tc[i]), n, *tries);
}

// Prepare checked the true classes (host memory) are in 1..range_max.
static void sampler(mfi_kctx *k, bool log_uniform)
{
  const mf_op *op = k->op;
  const mf_tensor *t = k->in[0];
  bool unique = mfi_attr_bool(op, "unique", false);
  int64_t n = mfi_attr_int(op, "num_sampled", 1), range = mfi_attr_int(op, "range_max", 1);
  int64_t size = unique ? mfi_sampler_table_size(n) : 0, m = t->numel;
  if (!mfi_out_new(k, 0, MF_INT64, 1, &n)) return;
  if (!mfi_out_new(k, 1, MF_FLOAT32, 2, t->dims) || !mfi_out_new(k, 2, MF_FLOAT32, 1, &n))
    goto fail;
  {
    // scratch: tries, the table, the true classes as int64
    int64_t *d = (int64_t *)mfi_scratch(k, sizeof(int64_t) * (size_t)(1 + size + m));
    int64_t *h = (int64_t *)malloc(sizeof(int64_t) * (size_t)(m + 1));
    if (!d || !h) {
      if (!h) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, op, "out of memory");
      free(h);
      goto fail;
    }
    for (int64_t i = 0; i < m; i++) h[i] = mfi_get_i(t->dtype, mfi_data(t), i);
    int64_t tries = 0;
    MF_LAUNCH(sampler_draw_kernel, 1, k->stream)
    (log_uniform, range, n, unique, stream_of(k), data<int64_t>(k->out[0]), data<float>(k->out[2]),
     d + 1, size, d);
    bool ok = launched(k) && to_host(k, &tries, d, sizeof tries);
    if (ok && tries < 0)
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, op,
                   "gave up drawing %lld unique classes after %lld tries", (long long)n,
                   (long long)MFI_SAMPLER_MAX_TRIES);
    ok = ok && tries >= 0 && (m == 0 || from_host(k, d + 1 + size, h, sizeof(int64_t) * (size_t)m));
    free(h);
    if (!ok) goto fail;
    if (m > 0) {
      MF_LAUNCH(sampler_true_kernel, m, k->stream)
      (log_uniform, range, n, d + 1 + size, d, data<float>(k->out[1]), m);
      if (!launched(k)) goto fail;
    }
    return;
  }
fail:
  for (int i = 0; i < 3; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
}

static void k_log_uniform_sampler(mfi_kctx *k) { sampler(k, true); }
static void k_uniform_sampler(mfi_kctx *k) { sampler(k, false); }

extern const mfi_kernel_reg random_kernels[] = {
    {"RandomNormal", k_normal},
    {"RandomUniform", k_uniform},
    {"TruncatedNormal", k_truncated},
    {"RandomOrthogonal", k_orthogonal},
    {"Multinomial", k_multinomial},
    {"Dropout", k_dropout},
    {"LogUniformCandidateSampler", k_log_uniform_sampler},
    {"UniformCandidateSampler", k_uniform_sampler},
    {NULL, NULL}};

} // namespace MF_CUDA_NS
