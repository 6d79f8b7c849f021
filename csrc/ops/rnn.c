/* Fused recurrent sequences: LSTM, GRU and basic (tanh) RNN over a whole
 * batch-major sequence x [B, T, I], forward and backward.
 *
 * The layout is chosen so that every GEMM reads and writes the tensors in
 * place. Input projections of all steps are one GEMM over x viewed as
 * [B*T, I], giving rows in (b, t) order; step t's rows are then a strided
 * matrix (leading dimension T * width), so the per-step recurrent GEMM
 * accumulates straight onto them, and the recurrent input h_{t-1} is read
 * from y[:, t-1] the same way. Backward mirrors this: dZ is kept in (b, t)
 * order so the weight gradients are single GEMMs over all steps.
 *
 * Threads: the rows of a batch never interact, so with our own float32
 * GEMM (sgemm.c) each thread of the intra-op team runs the whole time loop,
 * products and gate passes, for its share of the rows, against recurrent
 * weights packed once per kernel call (see recw_make, run_loop); no step
 * waits for another thread. Without it (float64, OpenBLAS), or for a batch
 * too small to pack for, each step's product is one mfi_gemm over all rows
 * (multithreaded when large enough).
 *
 * Masking (seq_len) follows dynamic_rnn: past a sequence's end y is zero
 * and the state is carried. A masked row's gates are computed from garbage
 * and ignored; for unmasked steps h_{t-1} always equals y[:, t-1] (or h0),
 * since a sequence's steps are a prefix. Masked steps have dZ = 0, so their
 * rows add nothing to the weight gradients. */
#include "fastmath.h"
#include "shapes.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- shape checks */

/* The role of each input: which of B, T, I, H its dims are. G is a gate
 * count: the width is G * H. */
enum { R_X, R_BTG, R_TBG, R_BH, R_KERNEL, R_BIAS, R_SEQ, R_HKERNEL };

typedef struct {
  const char *name;
  int role, gates;
} in_spec;

enum { DB, DT, DI, DH };
static const char *const dim_names[] = {"the batch size", "the number of steps", "the input size",
                                        "the number of units"};

typedef struct {
  mfi_infer_ctx *c;
  const in_spec *spec;
  int64_t v[4];
  int src[4]; /* the input that fixed each dim */
} dimset;

static void in_label(const dimset *d, int i, char *buf, size_t size)
{
  snprintf(buf, size, "%s (input %d)", d->spec[i].name, i + 1);
}

/* Records that input i says dim `which` is v (dim `axis` of the input,
 * counted from 1); false + error on a conflict. */
static bool unify(dimset *d, int which, int64_t v, int i, int axis)
{
  if (v < 0) return true;
  if (d->v[which] < 0) {
    d->v[which] = v, d->src[which] = i;
    return true;
  }
  if (d->v[which] == v) return true;
  char a[96], b[96];
  in_label(d, i, a, sizeof a);
  in_label(d, d->src[which], b, sizeof b);
  mfi_infer_error(d->c, MF_INVALID_ARGUMENT, "%s has %lld in dimension %d, but %s gives %s = %lld",
                  a, (long long)v, axis, b, dim_names[which], (long long)d->v[which]);
  return false;
}

/* A width of G * H gates. */
static bool unify_gates(dimset *d, int64_t w, int i, int axis)
{
  int g = d->spec[i].gates;
  if (w < 0) return true;
  if (w % g) {
    char a[96];
    in_label(d, i, a, sizeof a);
    mfi_infer_error(d->c, MF_INVALID_ARGUMENT,
                    "%s has %lld in dimension %d, which is not %d times the number of units", a,
                    (long long)w, axis, g);
    return false;
  }
  return unify(d, DH, w / g, i, axis);
}

/* Checks dtypes, ranks and static dims of n inputs; fills d->v (-1 where
 * unknown) and *dt. */
static bool check_inputs(mfi_infer_ctx *c, const in_spec *spec, int n, dimset *d, mf_dtype *dt)
{
  static const int rank[] = {3, 3, 3, 2, 2, 1, 1, 2};
  static const char *const layout[] = {"[batch, time, input]",
                                       "[batch, time, width]",
                                       "[time, batch, width]",
                                       "[batch, units]",
                                       "[input + units, width]",
                                       "[width]",
                                       "[batch]",
                                       "[units, width]"};
  memset(d, 0, sizeof *d);
  d->c = c, d->spec = spec;
  for (int k = 0; k < 4; k++) d->v[k] = -1;
  const mfi_meta *in = c->in;
  char a[96], b[96], sh[128];
  *dt = in[0].dtype;
  if (!mfi_is_float(*dt)) {
    in_label(d, 0, a, sizeof a);
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be float32 or float64, got %s", a,
                    mf_dtype_name(*dt));
    return false;
  }
  for (int i = 0; i < n; i++) {
    const mfi_meta *m = &in[i];
    int role = spec[i].role;
    /* labels are formatted only on the error paths: this runs on every kernel call */
    if (role == R_SEQ && m->dtype != MF_INT32) {
      in_label(d, i, a, sizeof a);
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be int32, got %s", a,
                      mf_dtype_name(m->dtype));
      return false;
    }
    if (role != R_SEQ && m->dtype != *dt) {
      in_label(d, i, a, sizeof a);
      in_label(d, 0, b, sizeof b);
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s is %s but %s is %s", a, mf_dtype_name(m->dtype),
                      b, mf_dtype_name(*dt));
      return false;
    }
    if (m->ndim < 0) continue;
    if (m->ndim != rank[role]) {
      in_label(d, i, a, sizeof a);
      mfi_shape_str(m->ndim, m->dims, sh, sizeof sh);
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must have rank %d (%s), got shape %s", a,
                      rank[role], layout[role], sh);
      return false;
    }
    const int64_t *x = m->dims;
    bool ok = true;
    switch (role) {
    case R_X:
      ok = unify(d, DB, x[0], i, 1) && unify(d, DT, x[1], i, 2) && unify(d, DI, x[2], i, 3);
      break;
    case R_BTG:
      ok = unify(d, DB, x[0], i, 1) && unify(d, DT, x[1], i, 2) && unify_gates(d, x[2], i, 3);
      break;
    case R_TBG:
      ok = unify(d, DT, x[0], i, 1) && unify(d, DB, x[1], i, 2) && unify_gates(d, x[2], i, 3);
      break;
    case R_BH: ok = unify(d, DB, x[0], i, 1) && unify(d, DH, x[1], i, 2); break;
    case R_KERNEL: ok = unify_gates(d, x[1], i, 2); break;
    case R_BIAS: ok = unify_gates(d, x[0], i, 1); break;
    case R_SEQ: ok = unify(d, DB, x[0], i, 1); break;
    case R_HKERNEL: ok = unify(d, DH, x[0], i, 1) && unify_gates(d, x[1], i, 2); break;
    }
    if (!ok) return false;
  }
  /* Kernel rows are I + H: check them, or fill in whichever is unknown. */
  for (int i = 0; i < n; i++) {
    if (spec[i].role != R_KERNEL || in[i].ndim < 0 || in[i].dims[0] < 0) continue;
    int64_t rows = in[i].dims[0], I = d->v[DI], H = d->v[DH];
    if (I >= 0 && H >= 0 && rows != I + H) {
      in_label(d, i, a, sizeof a);
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "%s has %lld rows, but input size + units = %lld + %lld = %lld", a,
                      (long long)rows, (long long)I, (long long)H, (long long)(I + H));
      return false;
    }
    int64_t known = I >= 0 ? I : H;
    if ((I >= 0) != (H >= 0) && rows < known) {
      in_label(d, i, a, sizeof a);
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s has %lld rows, fewer than %s (%lld)", a,
                      (long long)rows, dim_names[I >= 0 ? DI : DH], (long long)known);
      return false;
    }
    if (I >= 0 && H < 0) d->v[DH] = rows - I, d->src[DH] = i;
    if (H >= 0 && I < 0) d->v[DI] = rows - H, d->src[DI] = i;
  }
  return true;
}

static void set_meta(mfi_meta *m, mf_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
  m->dtype = dt, m->ndim = ndim;
  m->dims[0] = d0, m->dims[1] = d1, m->dims[2] = d2;
}

static int64_t times(int64_t g, int64_t h) { return h < 0 ? -1 : g * h; }

/* ---------------------------------------------------------------- kernel helpers */

typedef struct {
  int64_t B, T, I, H;
  int64_t b0, b1; /* the batch rows a time loop works on */
  mf_dtype dt;
  size_t es;
  const int32_t *len; /* NULL: every sequence is T steps */
} seqdims;

/* Prepare: runs the static checks on the run-time shapes (all known),
 * checks that the sizes fit BLAS's ints and that every length (seq_len, in
 * host memory) is in 0..T, and leaves B, T, I, H in params for the kernel. */
static void prepare_dims(mfi_kctx *k, const in_spec *spec, int max_gates)
{
  int n = k->op->nin;
  mfi_meta in[16];
  for (int i = 0; i < n; i++) in[i] = mfi_tensor_meta(k->in[i]);
  mfi_infer_ctx c = {k->op, in, k->status, NULL};
  dimset d;
  mf_dtype dt;
  if (!check_inputs(&c, spec, n, &d, &dt)) return;
  int64_t B = d.v[DB], T = d.v[DT], I = d.v[DI], H = d.v[DH];
  int64_t wide = max_gates * H > I ? max_gates * H : I;
  if (B * T > INT_MAX || T * wide > INT_MAX || I + H > INT_MAX) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "sizes (batch %lld, steps %lld, input %lld, units %lld) are too large for BLAS",
                 (long long)B, (long long)T, (long long)I, (long long)H);
    return;
  }
  if (spec[n - 1].role == R_SEQ) {
    const int32_t *len = mfi_data(k->in[n - 1]);
    for (int64_t b = 0; b < B; b++)
      if (len[b] < 0 || len[b] > T) {
        mfi_op_error(k->status, MF_OUT_OF_RANGE, k->op,
                     "seq_len %d (at position %lld) is out of range: lengths are 0..%lld",
                     (int)len[b], (long long)b + 1, (long long)T);
        return;
      }
  }
  k->params[0] = B, k->params[1] = T, k->params[2] = I, k->params[3] = H;
}

/* The kernel's view of what prepare checked. */
static void seq_dims(const mfi_kctx *k, const in_spec *spec, seqdims *sd)
{
  int n = k->op->nin;
  sd->B = k->params[0], sd->T = k->params[1], sd->I = k->params[2], sd->H = k->params[3];
  sd->b0 = 0, sd->b1 = sd->B;
  sd->dt = k->in[0]->dtype;
  sd->es = mf_dtype_size(sd->dt);
  sd->len = spec[n - 1].role == R_SEQ ? mfi_data(k->in[n - 1]) : NULL;
}

static bool masked(const seqdims *sd, int64_t b, int64_t t) { return sd->len && t >= sd->len[b]; }

/* Element i of an array of es-byte elements: how the per-step passes
 * address the rows they hand to their float32 or float64 row kernels. */
static void *elem(void *p, int64_t i, size_t es) { return (char *)p + i * (int64_t)es; }

static const void *celem(const void *p, int64_t i, size_t es)
{
  return (const char *)p + i * (int64_t)es;
}

/* Outputs i = 0..n-1 with rank-3 (or lower) shapes rows[i]; all or none. */
static bool new_outputs(mfi_kctx *k, mf_dtype dt, int n, const int *ndim, const int64_t (*dims)[3])
{
  for (int i = 0; i < n; i++)
    if (!mfi_out_new(k, i, dt, ndim[i], dims[i])) {
      mfi_drop_outputs(k, i);
      return false;
    }
  return true;
}

/* Scratch buffers: NULL + error when out of memory. */
static void *scratch(mfi_kctx *k, size_t nbytes)
{
  void *p = mfi_alloc(nbytes);
  if (!p)
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory allocating %zu bytes",
                 nbytes);
  return p;
}

/* Each of `rows` rows of width w set to bias (the initial accumulator of a
 * projection GEMM run with beta 1). */
static void fill_rows(void *dst, const void *bias, int64_t rows, int64_t w, size_t es)
{
  for (int64_t r = 0; r < rows; r++) memcpy((char *)dst + r * w * es, bias, w * es);
}

/* dbias = column sums of dZ [rows, w], accumulated in double. */
static bool col_sums(mfi_kctx *k, mf_dtype dt, const void *dz, int64_t rows, int64_t w, void *out)
{
  double *acc = scratch(k, sizeof(double) * (w ? w : 1));
  if (!acc) return false;
  memset(acc, 0, sizeof(double) * w);
  if (dt == MF_FLOAT32) {
    const float *z = dz;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < w; j++) acc[j] += z[r * w + j];
    for (int64_t j = 0; j < w; j++) ((float *)out)[j] = (float)acc[j];
  } else {
    const double *z = dz;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < w; j++) acc[j] += z[r * w + j];
    memcpy(out, acc, sizeof(double) * w);
  }
  mfi_free(acc, sizeof(double) * (w ? w : 1));
  return true;
}

/* [x_t, h_{t-1}] for every step, rows in (b, t) order, [B*T, I+H] (with
 * x NULL just Hprev, [B*T, H]), so that one GEMM with dZ gives the whole
 * kernel's gradient. h_{t-1} is h0 at t = 0 and y[:, t-1] after: exact for
 * every unmasked step; masked rows are multiplied by dZ = 0. */
static void build_xh(const seqdims *sd, const void *x, const void *h0, const void *y, void *out)
{
  int64_t T = sd->T;
  size_t xrow = (x ? sd->I : 0) * sd->es, hrow = sd->H * sd->es;
  char *dst = out;
  for (int64_t b = 0; b < sd->B; b++)
    for (int64_t t = 0; t < T; t++, dst += xrow + hrow) {
      int64_t r = b * T + t;
      if (xrow) memcpy(dst, (const char *)x + r * xrow, xrow);
      memcpy(dst + xrow, t ? (const char *)y + (r - 1) * hrow : (const char *)h0 + b * hrow, hrow);
    }
}

/* The final state of each sequence: its last unmasked y row, or h0. */
static void final_h(const seqdims *sd, const void *h0, const void *y, void *hT)
{
  size_t row = sd->H * sd->es;
  for (int64_t b = 0; b < sd->B; b++) {
    int64_t L = sd->len ? sd->len[b] : sd->T;
    const char *src =
        L > 0 ? (const char *)y + (b * sd->T + L - 1) * row : (const char *)h0 + b * row;
    memcpy((char *)hT + b * row, src, row);
  }
}

/* ---------------------------------------------------------------- time loops */

/* A recurrent weight matrix as the per-step products use it: op(W) [k, n]
 * (W row-major, transposed when tb). For float32 where our own GEMM kernels
 * run (AVX-512 or AVX2, mfi_sgemm_available) it is packed once per kernel
 * call, and each thread of the team runs the whole time loop for its own
 * batch rows: rows of an RNN never mix, so the steps need no
 * synchronisation. Otherwise (float64, OpenBLAS, fewer than 2 sequences or
 * 64 rows in all, or no memory for the packed copy) every step is one
 * mfi_gemm over all rows. */
typedef struct {
  mf_dtype dt;
  bool tb, packed;
  int64_t k, n;
  const void *w;
  mfi_packed_b pb;
} recw;

static recw recw_make(const seqdims *sd, bool tb, int64_t k, int64_t n, const void *w)
{
  recw r = {sd->dt, tb, false, k, n, w};
  /* Packing costs one pass over W: worth it over many rows and steps. */
  if (sd->dt == MF_FLOAT32 && sd->B >= 2 && sd->B * sd->T >= 64 && mfi_sgemm_available())
    r.packed = mfi_pack_b(&r.pb, tb, k, n, w, tb ? k : n);
  return r;
}

static void recw_free(recw *r)
{
  if (r->packed) mfi_packed_b_free(&r->pb);
}

/* Both packed or neither (a pack can fail for memory): a loop split by
 * rows needs every product on its own thread. */
static void recw_agree(recw *a, recw *b)
{
  if (a->packed == b->packed) return;
  recw_free(a), recw_free(b);
  a->packed = b->packed = false;
}

/* Rows b0..b1-1 of C = beta C + A op(W), A and C with row strides lda, ldc. */
static void rec_gemm(const seqdims *sd, const recw *r, const char *a, int64_t lda, double beta,
                     char *c, int64_t ldc)
{
  int64_t m = sd->b1 - sd->b0;
  a += sd->b0 * lda * (int64_t)sd->es, c += sd->b0 * ldc * (int64_t)sd->es;
  if (r->packed)
    mfi_sgemm_packed(false, m, (const float *)a, lda, &r->pb, (float)beta, (float *)c, ldc);
  else
    mfi_gemm(sd->dt, false, r->tb, m, r->n, r->k, a, lda, r->w, r->tb ? r->k : r->n, beta, c, ldc);
}

/* Step t's rows b0..b1-1 of a [B, T, w] tensor from src to dst: a
 * precomputed input projection, copied where the recurrent product
 * accumulates, on the thread that uses it next (src NULL: nothing). */
static void copy_step(const seqdims *sd, int64_t t, int64_t w, char *dst, const char *src)
{
  if (!src) return;
  size_t row = w * sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    size_t o = (b * sd->T + t) * row;
    memcpy(dst + o, src + o, row);
  }
}

typedef void (*loop_fn)(const seqdims *sd, void *args);

typedef struct {
  const seqdims *sd;
  loop_fn fn;
  void *args;
} loop_job;

static void loop_part(void *ctx, int i, int n)
{
  const loop_job *j = ctx;
  seqdims s = *j->sd;
  s.b0 = s.B * i / n, s.b1 = s.B * (i + 1) / n;
  j->fn(&s, j->args);
}

/* A time loop over every batch row; split by rows across the thread team
 * when its weights are packed (single-threaded products inside). */
static void run_loop(const seqdims *sd, const recw *w, loop_fn fn, void *args)
{
  if (!w->packed) {
    fn(sd, args);
    return;
  }
  loop_job j = {sd, fn, args};
  mfi_parallel(sd->B < INT_MAX ? (int)sd->B : INT_MAX, loop_part, &j);
}

static inline float sigm_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }
/* Absolute error ~1e-7 (relative error grows near 0, harmless here). */
static inline float tanh_f(float x) { return 1.0f - 2.0f / (exp_f(2.0f * x) + 1.0f); }
static inline double sigm_d(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---------------------------------------------------------------- LSTM */

/* The per-step passes below are shared by float32 and float64: masking and
 * row addressing once, then a row kernel per type. float32's row kernels
 * are separate functions with restrict pointers, so that they vectorise
 * (exp_f included; MF_HOT_LOOP adds AVX-512 and AVX2 clones); float64's
 * use libm and are the plain loops. */

/* One row's LSTM gates from z, c_{t-1} (cpr): act = (i, j, f, o), c_t, y. */
MF_HOT_LOOP static void lstm_row_f32(int64_t H, float fb, const float *restrict zr,
                                     const float *restrict cpr, float *restrict a,
                                     float *restrict cr, float *restrict yr)
{
  for (int64_t k = 0; k < H; k++) {
    float i = sigm_f(zr[k]), j = tanh_f(zr[H + k]), f = sigm_f(zr[2 * H + k] + fb),
          o = sigm_f(zr[3 * H + k]);
    float c = f * cpr[k] + i * j;
    a[k] = i, a[H + k] = j, a[2 * H + k] = f, a[3 * H + k] = o;
    cr[k] = c;
    yr[k] = o * tanh_f(c);
  }
}

static void lstm_row_f64(int64_t H, double fb, const double *zr, const double *cpr, double *a,
                         double *cr, double *yr)
{
  for (int64_t k = 0; k < H; k++) {
    double i = sigm_d(zr[k]), j = tanh(zr[H + k]), f = sigm_d(zr[2 * H + k] + fb),
           o = sigm_d(zr[3 * H + k]);
    double c = f * cpr[k] + i * j;
    a[k] = i, a[H + k] = j, a[2 * H + k] = f, a[3 * H + k] = o;
    cr[k] = c;
    yr[k] = o * tanh(c);
  }
}

/* One step's gates from z (row stride zs), c_{t-1} (cp, row stride H);
 * writes act[b] = (i, j, f, o), c_t, y[b, t] (row stride ys). A masked row
 * gets zero act and y and carries c. */
static void lstm_fwd(const seqdims *sd, int64_t t, double fb, const void *z, int64_t zs,
                     const void *cp, void *act, void *ct, void *y, int64_t ys)
{
  int64_t H = sd->H;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    const void *zr = celem(z, b * zs, es), *cpr = celem(cp, b * H, es);
    void *a = elem(act, b * 4 * H, es), *cr = elem(ct, b * H, es), *yr = elem(y, b * ys, es);
    if (masked(sd, b, t)) {
      memset(a, 0, 4 * H * es);
      memcpy(cr, cpr, H * es);
      memset(yr, 0, H * es);
    } else if (sd->dt == MF_FLOAT32) {
      lstm_row_f32(H, (float)fb, zr, cpr, a, cr, yr);
    } else {
      lstm_row_f64(H, fb, zr, cpr, a, cr, yr);
    }
  }
}

static const in_spec lstm_spec[] = {{"x", R_X},          {"h0", R_BH},
                                    {"c0", R_BH},        {"kernel", R_KERNEL, 4},
                                    {"bias", R_BIAS, 4}, {"seq_len", R_SEQ}};

static void infer_lstm(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  double fb; /* read by the kernel */
  if (!check_inputs(c, lstm_spec, c->op->nin, &d, &dt) ||
      !mfi_check_float(c, "forget_bias", false, 1.0, &fb) || !mfi_set_outputs(c, 5))
    return;
  int64_t B = d.v[DB], T = d.v[DT], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, H);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 2, B, H, 0);
  set_meta(&o[3], dt, 3, T, B, times(4, H));
  set_meta(&o[4], dt, 3, T, B, H);
}

typedef struct {
  char *z, *y, *act, *cs;
  const char *h0, *c0, *zx; /* zx: the projection to copy into z, or NULL */
  recw wh;
  double fb;
} lstm_fwd_args;

static void lstm_loop(const seqdims *sd, void *p)
{
  const lstm_fwd_args *a = p;
  int64_t B = sd->B, T = sd->T, H = sd->H, G = 4 * H;
  size_t es = sd->es;
  for (int64_t t = 0; t < T; t++) {
    const char *hp = t ? a->y + (t - 1) * H * es : a->h0;
    const char *cp = t ? a->cs + (t - 1) * B * H * es : a->c0;
    char *zt = a->z + t * G * es, *at = a->act + t * B * G * es, *ct = a->cs + t * B * H * es;
    char *yt = a->y + t * H * es;
    copy_step(sd, t, G, a->z, a->zx);
    rec_gemm(sd, &a->wh, hp, t ? T * H : H, 1, zt, T * G);
    lstm_fwd(sd, t, a->fb, zt, T * G, cp, at, ct, yt, T * H);
  }
}

/* The recurrence over all steps, z [B*T, 4H] holding each step's input
 * projection plus bias (rows in (b, t) order), or receiving them from zx
 * step by step; writes outputs 0, 3, 4. */
static void lstm_steps(mfi_kctx *k, const seqdims *sd, char *z, const char *zx, const char *h0,
                       const char *c0, const char *wh)
{
  int64_t B = sd->B, T = sd->T, H = sd->H;
  size_t es = sd->es;
  lstm_fwd_args a = {z,
                     mfi_data(k->out[0]),
                     mfi_data(k->out[3]),
                     mfi_data(k->out[4]),
                     h0,
                     c0,
                     zx,
                     recw_make(sd, false, H, 4 * H, wh),
                     mfi_attr_float(k->op, "forget_bias", 1.0)};
  run_loop(sd, &a.wh, lstm_loop, &a);
  recw_free(&a.wh);
  final_h(sd, h0, a.y, mfi_data(k->out[1]));
  /* c carries through masked steps, so the last step holds every final c. */
  memcpy(mfi_data(k->out[2]), T ? a.cs + (T - 1) * B * H * es : c0, (size_t)(B * H) * es);
}

/* Scratch for z and the five outputs; NULL (and nothing allocated) on failure. */
static char *lstm_begin(mfi_kctx *k, const seqdims *sd, size_t *zbytes)
{
  int64_t B = sd->B, T = sd->T, H = sd->H, G = 4 * H;
  const int nd[5] = {3, 2, 2, 3, 3};
  const int64_t dims[5][3] = {{B, T, H}, {B, H}, {B, H}, {T, B, G}, {T, B, H}};
  *zbytes = (size_t)(B * T * G) * sd->es;
  char *z = scratch(k, *zbytes);
  if (z && new_outputs(k, sd->dt, 5, nd, dims)) return z;
  mfi_free(z, *zbytes);
  return NULL;
}

static void cpu_lstm(mfi_kctx *k)
{
  seqdims sd;
  size_t zbytes;
  char *z;
  seq_dims(k, lstm_spec, &sd);
  if (!(z = lstm_begin(k, &sd, &zbytes))) return;
  int64_t B = sd.B, T = sd.T, I = sd.I, G = 4 * sd.H;
  const char *x = mfi_data(k->in[0]), *w = mfi_data(k->in[3]), *bias = mfi_data(k->in[4]);
  /* z = bias + x W_x for every step at once, rows in (b, t) order. */
  fill_rows(z, bias, B * T, G, sd.es);
  mfi_gemm(sd.dt, false, false, B * T, G, I, x, I, w, G, 1, z, G);
  lstm_steps(k, &sd, z, NULL, mfi_data(k->in[1]), mfi_data(k->in[2]), w + I * G * sd.es);
  mfi_free(z, zbytes);
}

/* LSTMSequenceProjected(zx, h0, c0, recurrent_kernel): the input projection
 * x W_x + bias comes computed (e.g. an embedding table times W_x, gathered:
 * far fewer FLOPs than projecting every step when the vocabulary is small). */
static const in_spec lstm_proj_spec[] = {{"zx", R_BTG, 4},
                                         {"h0", R_BH},
                                         {"c0", R_BH},
                                         {"recurrent_kernel", R_HKERNEL, 4},
                                         {"seq_len", R_SEQ}};

static void infer_lstm_proj(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  double fb; /* read by the kernel */
  if (!check_inputs(c, lstm_proj_spec, c->op->nin, &d, &dt) ||
      !mfi_check_float(c, "forget_bias", false, 1.0, &fb) || !mfi_set_outputs(c, 5))
    return;
  int64_t B = d.v[DB], T = d.v[DT], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, H);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 2, B, H, 0);
  set_meta(&o[3], dt, 3, T, B, times(4, H));
  set_meta(&o[4], dt, 3, T, B, H);
}

static void cpu_lstm_proj(mfi_kctx *k)
{
  seqdims sd;
  size_t zbytes;
  char *z;
  seq_dims(k, lstm_proj_spec, &sd);
  if (!(z = lstm_begin(k, &sd, &zbytes))) return;
  /* the recurrent GEMMs accumulate onto a copy of zx */
  lstm_steps(k, &sd, z, mfi_data(k->in[0]), mfi_data(k->in[1]), mfi_data(k->in[2]),
             mfi_data(k->in[3]));
  mfi_free(z, zbytes);
}

/* One row's backward step: dz from the running dh, dc, which become the
 * gradients of h_{t-1} (left 0 for the recurrent GEMM to fill) and c_{t-1}. */
MF_HOT_LOOP static void lstm_row_bwd_f32(int64_t H, const float *restrict a,
                                         const float *restrict cr, const float *restrict cpr,
                                         const float *restrict dyr, float *restrict dhr,
                                         float *restrict dcr, float *restrict dzr)
{
  for (int64_t k = 0; k < H; k++) {
    float i = a[k], j = a[H + k], f = a[2 * H + k], o = a[3 * H + k];
    float tc = tanh_f(cr[k]), dht = dhr[k] + dyr[k];
    float dct = dcr[k] + dht * o * (1 - tc * tc);
    dzr[k] = dct * j * i * (1 - i);
    dzr[H + k] = dct * i * (1 - j * j);
    dzr[2 * H + k] = dct * cpr[k] * f * (1 - f);
    dzr[3 * H + k] = dht * tc * o * (1 - o);
    dcr[k] = dct * f;
    dhr[k] = 0;
  }
}

static void lstm_row_bwd_f64(int64_t H, const double *a, const double *cr, const double *cpr,
                             const double *dyr, double *dhr, double *dcr, double *dzr)
{
  for (int64_t k = 0; k < H; k++) {
    double i = a[k], j = a[H + k], f = a[2 * H + k], o = a[3 * H + k];
    double tc = tanh(cr[k]), dht = dhr[k] + dyr[k];
    double dct = dcr[k] + dht * o * (1 - tc * tc);
    dzr[k] = dct * j * i * (1 - i);
    dzr[H + k] = dct * i * (1 - j * j);
    dzr[2 * H + k] = dct * cpr[k] * f * (1 - f);
    dzr[3 * H + k] = dht * tc * o * (1 - o);
    dcr[k] = dct * f;
    dhr[k] = 0;
  }
}

/* One backward step: dZ rows for step t (row stride zs) from the running
 * dh, dc (updated to the gradients of h_{t-1}, c_{t-1}; dh is left 0 on
 * unmasked rows for the recurrent GEMM to fill). */
static void lstm_bwd(const seqdims *sd, int64_t t, const void *act, const void *ct, const void *cp,
                     const void *dy, int64_t ys, void *dh, void *dc, void *dz, int64_t zs)
{
  int64_t H = sd->H;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    const void *a = celem(act, b * 4 * H, es), *cr = celem(ct, b * H, es);
    const void *cpr = celem(cp, b * H, es), *dyr = celem(dy, b * ys, es);
    void *dhr = elem(dh, b * H, es), *dcr = elem(dc, b * H, es), *dzr = elem(dz, b * zs, es);
    if (masked(sd, b, t))
      memset(dzr, 0, 4 * H * es);
    else if (sd->dt == MF_FLOAT32)
      lstm_row_bwd_f32(H, a, cr, cpr, dyr, dhr, dcr, dzr);
    else
      lstm_row_bwd_f64(H, a, cr, cpr, dyr, dhr, dcr, dzr);
  }
}

static const in_spec lstm_grad_spec[] = {
    {"x", R_X},      {"h0", R_BH},      {"c0", R_BH},      {"kernel", R_KERNEL, 4},
    {"y", R_BTG, 1}, {"act", R_TBG, 4}, {"c", R_TBG, 1},   {"dy", R_BTG, 1},
    {"dh_T", R_BH},  {"dc_T", R_BH},    {"seq_len", R_SEQ}};

static void infer_lstm_grad(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, lstm_grad_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 5)) return;
  int64_t B = d.v[DB], T = d.v[DT], I = d.v[DI], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, I);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 2, B, H, 0);
  set_meta(&o[3], dt, 2, I < 0 || H < 0 ? -1 : I + H, times(4, H), 0);
  set_meta(&o[4], dt, 1, times(4, H), 0, 0);
}

/* Backpropagation through time: dZ [B*T, 4H] (rows in (b, t) order) for
 * all steps, and dh, dc (holding dh_T, dc_T on entry) become dh0, dc0. */
typedef struct {
  char *dz, *dh, *dc;
  const char *act, *cs, *c0, *dy;
  recw whT;
} lstm_bwd_args;

static void lstm_bptt_loop(const seqdims *sd, void *p)
{
  const lstm_bwd_args *a = p;
  int64_t B = sd->B, T = sd->T, H = sd->H, G = 4 * H;
  size_t es = sd->es;
  for (int64_t t = T - 1; t >= 0; t--) {
    const char *at = a->act + t * B * G * es, *ct = a->cs + t * B * H * es;
    const char *cp = t ? a->cs + (t - 1) * B * H * es : a->c0, *dyt = a->dy + t * H * es;
    char *dzt = a->dz + t * G * es;
    lstm_bwd(sd, t, at, ct, cp, dyt, T * H, a->dh, a->dc, dzt, T * G);
    /* dh_{t-1} = dz_t W_h^T; masked rows have dz = 0 and keep their dh. */
    rec_gemm(sd, &a->whT, dzt, T * G, 1, a->dh, H);
  }
}

static void lstm_bptt(const seqdims *sd, char *dz, char *dh, char *dc, const char *act,
                      const char *cs, const char *c0, const char *dy, const char *wh)
{
  lstm_bwd_args a = {dz, dh, dc, act, cs, c0, dy, recw_make(sd, true, 4 * sd->H, sd->H, wh)};
  run_loop(sd, &a.whT, lstm_bptt_loop, &a);
  recw_free(&a.whT);
}

static void cpu_lstm_grad(mfi_kctx *k)
{
  seqdims sd;
  seq_dims(k, lstm_grad_spec, &sd);
  int64_t B = sd.B, T = sd.T, I = sd.I, H = sd.H, G = 4 * H;
  size_t es = sd.es;
  const int nd[5] = {3, 2, 2, 2, 1};
  const int64_t dims[5][3] = {{B, T, I}, {B, H}, {B, H}, {I + H, G}, {G}};
  size_t zbytes = (size_t)(B * T * G) * es, xhbytes = (size_t)(B * T * (I + H)) * es;
  char *dz = scratch(k, zbytes), *xh = dz ? scratch(k, xhbytes) : NULL;
  if (!xh || !new_outputs(k, sd.dt, 5, nd, dims)) {
    mfi_free(dz, zbytes), mfi_free(xh, xhbytes);
    return;
  }
  const char *x = mfi_data(k->in[0]), *h0 = mfi_data(k->in[1]), *c0 = mfi_data(k->in[2]);
  const char *w = mfi_data(k->in[3]), *wh = w + I * G * es, *y = mfi_data(k->in[4]);
  char *dh = mfi_data(k->out[1]), *dc = mfi_data(k->out[2]), *dw = mfi_data(k->out[3]);
  memcpy(dh, mfi_data(k->in[8]), (size_t)(B * H) * es);
  memcpy(dc, mfi_data(k->in[9]), (size_t)(B * H) * es);
  lstm_bptt(&sd, dz, dh, dc, mfi_data(k->in[5]), mfi_data(k->in[6]), c0, mfi_data(k->in[7]), wh);
  build_xh(&sd, x, h0, y, xh);
  mfi_gemm(sd.dt, true, false, I + H, G, B * T, xh, I + H, dz, G, 0, dw, G);
  mfi_gemm(sd.dt, false, true, B * T, I, G, dz, G, w, G, 0, mfi_data(k->out[0]), I);
  if (!col_sums(k, sd.dt, dz, B * T, G, mfi_data(k->out[4]))) mfi_drop_outputs(k, 5);
  mfi_free(dz, zbytes), mfi_free(xh, xhbytes);
}

/* LSTMSequenceProjectedGrad(h0, c0, recurrent_kernel, y, act, c, dy, dh_T,
 * dc_T[, seq_len]) -> dzx (which is dZ itself), dh0, dc0, drecurrent_kernel. */
static const in_spec lstm_proj_grad_spec[] = {
    {"h0", R_BH},      {"c0", R_BH},      {"recurrent_kernel", R_HKERNEL, 4},
    {"y", R_BTG, 1},   {"act", R_TBG, 4}, {"c", R_TBG, 1},
    {"dy", R_BTG, 1},  {"dh_T", R_BH},    {"dc_T", R_BH},
    {"seq_len", R_SEQ}};

static void infer_lstm_proj_grad(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, lstm_proj_grad_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 4)) return;
  int64_t B = d.v[DB], T = d.v[DT], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, times(4, H));
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 2, B, H, 0);
  set_meta(&o[3], dt, 2, H, times(4, H), 0);
}

static void cpu_lstm_proj_grad(mfi_kctx *k)
{
  seqdims sd;
  seq_dims(k, lstm_proj_grad_spec, &sd);
  int64_t B = sd.B, T = sd.T, H = sd.H, G = 4 * H;
  size_t es = sd.es, hbytes = (size_t)(B * T * H) * es;
  const int nd[4] = {3, 2, 2, 2};
  const int64_t dims[4][3] = {{B, T, G}, {B, H}, {B, H}, {H, G}};
  char *hp = scratch(k, hbytes);
  if (!hp || !new_outputs(k, sd.dt, 4, nd, dims)) {
    mfi_free(hp, hbytes);
    return;
  }
  const char *h0 = mfi_data(k->in[0]);
  char *dz = mfi_data(k->out[0]), *dh = mfi_data(k->out[1]), *dc = mfi_data(k->out[2]);
  memcpy(dh, mfi_data(k->in[7]), (size_t)(B * H) * es);
  memcpy(dc, mfi_data(k->in[8]), (size_t)(B * H) * es);
  lstm_bptt(&sd, dz, dh, dc, mfi_data(k->in[4]), mfi_data(k->in[5]), mfi_data(k->in[1]),
            mfi_data(k->in[6]), mfi_data(k->in[2]));
  build_xh(&sd, NULL, h0, mfi_data(k->in[3]), hp);
  mfi_gemm(sd.dt, true, false, H, G, B * T, hp, H, dz, G, 0, mfi_data(k->out[3]), G);
  mfi_free(hp, hbytes);
}

/* ---------------------------------------------------------------- GRU */

/* Pass 1 of a step, one row: r, u from the gate pre-activations z;
 * rh = r * h_{t-1}. ws rows are (r, u, c). */
MF_HOT_LOOP static void gru_gates_row_f32(int64_t H, const float *restrict zr,
                                          const float *restrict hr, float *restrict wr,
                                          float *restrict rr)
{
  for (int64_t k = 0; k < H; k++) {
    float r = sigm_f(zr[k]);
    wr[k] = r, wr[H + k] = sigm_f(zr[H + k]);
    rr[k] = r * hr[k];
  }
}

static void gru_gates_row_f64(int64_t H, const double *zr, const double *hr, double *wr, double *rr)
{
  for (int64_t k = 0; k < H; k++) {
    double r = sigm_d(zr[k]);
    wr[k] = r, wr[H + k] = sigm_d(zr[H + k]);
    rr[k] = r * hr[k];
  }
}

/* Pass 2, one row: the candidate from its pre-activation zc and the new state. */
MF_HOT_LOOP static void gru_state_row_f32(int64_t H, const float *restrict zr,
                                          const float *restrict hr, float *restrict wr,
                                          float *restrict yr)
{
  for (int64_t k = 0; k < H; k++) {
    float c = tanh_f(zr[k]), u = wr[H + k];
    wr[2 * H + k] = c;
    yr[k] = u * hr[k] + (1 - u) * c;
  }
}

static void gru_state_row_f64(int64_t H, const double *zr, const double *hr, double *wr, double *yr)
{
  for (int64_t k = 0; k < H; k++) {
    double c = tanh(zr[k]), u = wr[H + k];
    wr[2 * H + k] = c;
    yr[k] = u * hr[k] + (1 - u) * c;
  }
}

/* Pass 1 of a step over the rows: z has row stride zs, h_{t-1} hs. */
static void gru_gates(const seqdims *sd, int64_t t, const void *z, int64_t zs, const void *hp,
                      int64_t hs, void *ws, void *rh)
{
  int64_t H = sd->H;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    const void *zr = celem(z, b * zs, es), *hr = celem(hp, b * hs, es);
    void *wr = elem(ws, b * 3 * H, es), *rr = elem(rh, b * H, es);
    if (masked(sd, b, t)) {
      memset(wr, 0, 3 * H * es);
      memset(rr, 0, H * es);
    } else if (sd->dt == MF_FLOAT32) {
      gru_gates_row_f32(H, zr, hr, wr, rr);
    } else {
      gru_gates_row_f64(H, zr, hr, wr, rr);
    }
  }
}

/* Pass 2 of a step over the rows: zc has row stride zs, h_{t-1} hs, y ys. */
static void gru_state(const seqdims *sd, int64_t t, const void *zc, int64_t zs, const void *hp,
                      int64_t hs, void *ws, void *y, int64_t ys)
{
  int64_t H = sd->H;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    const void *zr = celem(zc, b * zs, es), *hr = celem(hp, b * hs, es);
    void *wr = elem(ws, b * 3 * H, es), *yr = elem(y, b * ys, es);
    if (masked(sd, b, t))
      memset(yr, 0, H * es);
    else if (sd->dt == MF_FLOAT32)
      gru_state_row_f32(H, zr, hr, wr, yr);
    else
      gru_state_row_f64(H, zr, hr, wr, yr);
  }
}

static const in_spec gru_spec[] = {{"x", R_X},
                                   {"h0", R_BH},
                                   {"gate_kernel", R_KERNEL, 2},
                                   {"gate_bias", R_BIAS, 2},
                                   {"cand_kernel", R_KERNEL, 1},
                                   {"cand_bias", R_BIAS, 1},
                                   {"seq_len", R_SEQ}};

static void infer_gru(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, gru_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 3)) return;
  int64_t B = d.v[DB], T = d.v[DT], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, H);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 3, T, B, times(3, H));
}

typedef struct {
  char *zg, *zc, *rh, *y, *ws;
  const char *h0, *zxg, *zxc; /* projections to copy into zg, zc, or NULL */
  recw wg, wc;
} gru_fwd_args;

static void gru_loop(const seqdims *sd, void *p)
{
  const gru_fwd_args *a = p;
  int64_t B = sd->B, T = sd->T, H = sd->H, G = 2 * H;
  size_t es = sd->es;
  char *rh = a->rh;
  for (int64_t t = 0; t < T; t++) {
    const char *hp = t ? a->y + (t - 1) * H * es : a->h0;
    int64_t hs = t ? T * H : H;
    char *zgt = a->zg + t * G * es, *zct = a->zc + t * H * es, *wst = a->ws + t * B * 3 * H * es;
    char *yt = a->y + t * H * es;
    copy_step(sd, t, G, a->zg, a->zxg);
    copy_step(sd, t, H, a->zc, a->zxc);
    rec_gemm(sd, &a->wg, hp, hs, 1, zgt, T * G);
    gru_gates(sd, t, zgt, T * G, hp, hs, wst, rh);
    rec_gemm(sd, &a->wc, rh, H, 1, zct, T * H);
    gru_state(sd, t, zct, T * H, hp, hs, wst, yt, T * H);
  }
}

/* The recurrence over all steps, zg [B*T, 2H] and zc [B*T, H] holding each
 * step's input projections plus biases, or receiving them from zxg, zxc
 * step by step; writes outputs 0..2. */
static void gru_steps(mfi_kctx *k, const seqdims *sd, char *zg, char *zc, const char *zxg,
                      const char *zxc, char *rh, const char *h0, const char *wgh, const char *wch)
{
  int64_t H = sd->H;
  gru_fwd_args a = {zg,
                    zc,
                    rh,
                    mfi_data(k->out[0]),
                    mfi_data(k->out[2]),
                    h0,
                    zxg,
                    zxc,
                    recw_make(sd, false, H, 2 * H, wgh),
                    recw_make(sd, false, H, H, wch)};
  recw_agree(&a.wg, &a.wc);
  run_loop(sd, &a.wg, gru_loop, &a);
  recw_free(&a.wg), recw_free(&a.wc);
  final_h(sd, h0, a.y, mfi_data(k->out[1]));
}

/* Scratch zg, zc, rh and the three outputs; false (nothing allocated) on failure. */
static bool gru_begin(mfi_kctx *k, const seqdims *sd, char **zg, char **zc, char **rh,
                      size_t *bytes)
{
  int64_t B = sd->B, T = sd->T, H = sd->H;
  const int nd[3] = {3, 2, 3};
  const int64_t dims[3][3] = {{B, T, H}, {B, H}, {T, B, 3 * H}};
  bytes[0] = (size_t)(B * T * 2 * H) * sd->es, bytes[1] = (size_t)(B * T * H) * sd->es;
  bytes[2] = (size_t)(B * H) * sd->es;
  *zg = scratch(k, bytes[0]), *zc = *zg ? scratch(k, bytes[1]) : NULL;
  *rh = *zc ? scratch(k, bytes[2]) : NULL;
  if (*rh && new_outputs(k, sd->dt, 3, nd, dims)) return true;
  mfi_free(*zg, bytes[0]), mfi_free(*zc, bytes[1]), mfi_free(*rh, bytes[2]);
  return false;
}

static void cpu_gru(mfi_kctx *k)
{
  seqdims sd;
  char *zg, *zc, *rh;
  size_t bytes[3];
  seq_dims(k, gru_spec, &sd);
  if (!gru_begin(k, &sd, &zg, &zc, &rh, bytes)) return;
  int64_t B = sd.B, T = sd.T, I = sd.I, H = sd.H, G = 2 * H;
  size_t es = sd.es;
  const char *x = mfi_data(k->in[0]);
  const char *wg = mfi_data(k->in[2]), *bg = mfi_data(k->in[3]);
  const char *wc = mfi_data(k->in[4]), *bc = mfi_data(k->in[5]);
  fill_rows(zg, bg, B * T, G, es);
  mfi_gemm(sd.dt, false, false, B * T, G, I, x, I, wg, G, 1, zg, G);
  fill_rows(zc, bc, B * T, H, es);
  mfi_gemm(sd.dt, false, false, B * T, H, I, x, I, wc, H, 1, zc, H);
  gru_steps(k, &sd, zg, zc, NULL, NULL, rh, mfi_data(k->in[1]), wg + I * G * es, wc + I * H * es);
  mfi_free(zg, bytes[0]), mfi_free(zc, bytes[1]), mfi_free(rh, bytes[2]);
}

/* GRUSequenceProjected(zxg, zxc, h0, gate_recurrent_kernel,
 * cand_recurrent_kernel): the input projections x W_x + b of the gates
 * [B, T, 2H] and of the candidate [B, T, H] come computed. */
static const in_spec gru_proj_spec[] = {{"zx_gates", R_BTG, 2},
                                        {"zx_cand", R_BTG, 1},
                                        {"h0", R_BH},
                                        {"gate_recurrent_kernel", R_HKERNEL, 2},
                                        {"cand_recurrent_kernel", R_HKERNEL, 1},
                                        {"seq_len", R_SEQ}};

static void infer_gru_proj(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, gru_proj_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 3)) return;
  int64_t B = d.v[DB], T = d.v[DT], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, H);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 3, T, B, times(3, H));
}

static void cpu_gru_proj(mfi_kctx *k)
{
  seqdims sd;
  char *zg, *zc, *rh;
  size_t bytes[3];
  seq_dims(k, gru_proj_spec, &sd);
  if (!gru_begin(k, &sd, &zg, &zc, &rh, bytes)) return;
  /* the recurrent GEMMs accumulate onto copies of the projections */
  gru_steps(k, &sd, zg, zc, mfi_data(k->in[0]), mfi_data(k->in[1]), rh, mfi_data(k->in[2]),
            mfi_data(k->in[3]), mfi_data(k->in[4]));
  mfi_free(zg, bytes[0]), mfi_free(zc, bytes[1]), mfi_free(rh, bytes[2]);
}

/* Backward pass 1, one row: dzc and the u part of dzg; dh becomes the
 * direct part u * dh_t of dh_{t-1}. */
static void gru_bwd1_row_f32(int64_t H, const float *wr, const float *hr, const float *dyr,
                             float *dhr, float *gr, float *cr)
{
  for (int64_t k = 0; k < H; k++) {
    float u = wr[H + k], c = wr[2 * H + k], dht = dhr[k] + dyr[k];
    cr[k] = dht * (1 - u) * (1 - c * c);
    gr[H + k] = dht * (hr[k] - c) * u * (1 - u);
    dhr[k] = dht * u;
  }
}

static void gru_bwd1_row_f64(int64_t H, const double *wr, const double *hr, const double *dyr,
                             double *dhr, double *gr, double *cr)
{
  for (int64_t k = 0; k < H; k++) {
    double u = wr[H + k], c = wr[2 * H + k], dht = dhr[k] + dyr[k];
    cr[k] = dht * (1 - u) * (1 - c * c);
    gr[H + k] = dht * (hr[k] - c) * u * (1 - u);
    dhr[k] = dht * u;
  }
}

/* Pass 2, one row: from drh = d(r * h_{t-1}), the r part of dzg and r * drh
 * into dh. */
static void gru_bwd2_row_f32(int64_t H, const float *wr, const float *hr, const float *dr,
                             float *dhr, float *gr)
{
  for (int64_t k = 0; k < H; k++) {
    float r = wr[k];
    gr[k] = dr[k] * hr[k] * r * (1 - r);
    dhr[k] += dr[k] * r;
  }
}

static void gru_bwd2_row_f64(int64_t H, const double *wr, const double *hr, const double *dr,
                             double *dhr, double *gr)
{
  for (int64_t k = 0; k < H; k++) {
    double r = wr[k];
    gr[k] = dr[k] * hr[k] * r * (1 - r);
    dhr[k] += dr[k] * r;
  }
}

/* Backward pass 1 of a step over the rows. Rows of hp, dy, dzg, dzc have
 * strides T * width. */
static void gru_bwd1(const seqdims *sd, int64_t t, const void *ws, const void *hp, const void *dy,
                     void *dh, void *dzg, void *dzc)
{
  int64_t H = sd->H, T = sd->T;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    const void *wr = celem(ws, b * 3 * H, es), *hr = celem(hp, b * T * H, es);
    const void *dyr = celem(dy, b * T * H, es);
    void *dhr = elem(dh, b * H, es), *gr = elem(dzg, b * T * 2 * H, es);
    void *cr = elem(dzc, b * T * H, es);
    if (masked(sd, b, t)) {
      memset(gr, 0, 2 * H * es);
      memset(cr, 0, H * es);
    } else if (sd->dt == MF_FLOAT32) {
      gru_bwd1_row_f32(H, wr, hr, dyr, dhr, gr, cr);
    } else {
      gru_bwd1_row_f64(H, wr, hr, dyr, dhr, gr, cr);
    }
  }
}

/* Backward pass 2 of a step over the rows (masked rows keep their zeros). */
static void gru_bwd2(const seqdims *sd, int64_t t, const void *ws, const void *hp, const void *drh,
                     void *dh, void *dzg)
{
  int64_t H = sd->H, T = sd->T;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    if (masked(sd, b, t)) continue;
    const void *wr = celem(ws, b * 3 * H, es), *hr = celem(hp, b * T * H, es);
    const void *dr = celem(drh, b * H, es);
    void *gr = elem(dzg, b * T * 2 * H, es), *dhr = elem(dh, b * H, es);
    if (sd->dt == MF_FLOAT32)
      gru_bwd2_row_f32(H, wr, hr, dr, dhr, gr);
    else
      gru_bwd2_row_f64(H, wr, hr, dr, dhr, gr);
  }
}

static const in_spec gru_grad_spec[] = {{"x", R_X},
                                        {"h0", R_BH},
                                        {"gate_kernel", R_KERNEL, 2},
                                        {"cand_kernel", R_KERNEL, 1},
                                        {"y", R_BTG, 1},
                                        {"ws", R_TBG, 3},
                                        {"dy", R_BTG, 1},
                                        {"dh_T", R_BH},
                                        {"seq_len", R_SEQ}};

static void infer_gru_grad(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, gru_grad_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 6)) return;
  int64_t B = d.v[DB], T = d.v[DT], I = d.v[DI], H = d.v[DH], rows = I < 0 || H < 0 ? -1 : I + H;
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, I);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 2, rows, times(2, H), 0);
  set_meta(&o[3], dt, 1, times(2, H), 0, 0);
  set_meta(&o[4], dt, 2, rows, H, 0);
  set_meta(&o[5], dt, 1, H, 0, 0);
}

/* r * h_{t-1} for every step, in place over Hprev ([B, T, H]; ws is
 * [T, B, 3H] with r first). */
static void scale_by_r(const seqdims *sd, const void *ws, void *hp)
{
  int64_t B = sd->B, T = sd->T, H = sd->H;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      int64_t ho = (b * T + t) * H, ro = (t * B + b) * 3 * H;
      if (sd->dt == MF_FLOAT32) {
        float *h = (float *)hp + ho;
        const float *r = (const float *)ws + ro;
        for (int64_t k = 0; k < H; k++) h[k] *= r[k];
      } else {
        double *h = (double *)hp + ho;
        const double *r = (const double *)ws + ro;
        for (int64_t k = 0; k < H; k++) h[k] *= r[k];
      }
    }
}

/* Backpropagation through time: dzg [B*T, 2H] and dzc [B*T, H] for all
 * steps; dh (dh_T on entry) becomes dh0. hp holds h_{t-1} per step. */
typedef struct {
  char *dzg, *dzc, *drh, *dh;
  const char *hp, *ws, *dy;
  recw wgT, wcT;
} gru_bwd_args;

static void gru_bptt_loop(const seqdims *sd, void *p)
{
  const gru_bwd_args *a = p;
  int64_t B = sd->B, T = sd->T, H = sd->H, G = 2 * H;
  size_t es = sd->es;
  char *drh = a->drh, *dh = a->dh;
  for (int64_t t = T - 1; t >= 0; t--) {
    const char *wst = a->ws + t * B * 3 * H * es, *hpt = a->hp + t * H * es;
    const char *dyt = a->dy + t * H * es;
    char *dzgt = a->dzg + t * G * es, *dzct = a->dzc + t * H * es;
    gru_bwd1(sd, t, wst, hpt, dyt, dh, dzgt, dzct);
    rec_gemm(sd, &a->wcT, dzct, T * H, 0, drh, H);
    gru_bwd2(sd, t, wst, hpt, drh, dh, dzgt);
    rec_gemm(sd, &a->wgT, dzgt, T * G, 1, dh, H);
  }
}

static void gru_bptt(const seqdims *sd, char *dzg, char *dzc, char *drh, char *dh, const char *hp,
                     const char *ws, const char *dy, const char *wgh, const char *wch)
{
  int64_t H = sd->H;
  gru_bwd_args a = {dzg,
                    dzc,
                    drh,
                    dh,
                    hp,
                    ws,
                    dy,
                    recw_make(sd, true, 2 * H, H, wgh),
                    recw_make(sd, true, H, H, wch)};
  recw_agree(&a.wgT, &a.wcT);
  run_loop(sd, &a.wgT, gru_bptt_loop, &a);
  recw_free(&a.wgT), recw_free(&a.wcT);
}

static void cpu_gru_grad(mfi_kctx *k)
{
  seqdims sd;
  seq_dims(k, gru_grad_spec, &sd);
  int64_t B = sd.B, T = sd.T, I = sd.I, H = sd.H, G = 2 * H;
  size_t es = sd.es;
  const int nd[6] = {3, 2, 2, 1, 2, 1};
  const int64_t dims[6][3] = {{B, T, I}, {B, H}, {I + H, G}, {G}, {I + H, H}, {H}};
  size_t gbytes = (size_t)(B * T * G) * es, cbytes = (size_t)(B * T * H) * es;
  size_t rbytes = (size_t)(B * H) * es;
  char *dzg = scratch(k, gbytes), *dzc = dzg ? scratch(k, cbytes) : NULL;
  char *hp = dzc ? scratch(k, cbytes) : NULL, *drh = hp ? scratch(k, rbytes) : NULL;
  if (!drh || !new_outputs(k, sd.dt, 6, nd, dims)) {
    mfi_free(dzg, gbytes), mfi_free(dzc, cbytes), mfi_free(hp, cbytes), mfi_free(drh, rbytes);
    return;
  }
  const char *x = mfi_data(k->in[0]), *h0 = mfi_data(k->in[1]);
  const char *wg = mfi_data(k->in[2]), *wc = mfi_data(k->in[3]);
  const char *wgh = wg + I * G * es, *wch = wc + I * H * es;
  const char *y = mfi_data(k->in[4]), *ws = mfi_data(k->in[5]);
  char *dh = mfi_data(k->out[1]);
  memcpy(dh, mfi_data(k->in[7]), (size_t)(B * H) * es);
  build_xh(&sd, NULL, h0, y, hp);
  gru_bptt(&sd, dzg, dzc, drh, dh, hp, ws, mfi_data(k->in[6]), wgh, wch);
  char *dwg = mfi_data(k->out[2]), *dwc = mfi_data(k->out[4]), *dx = mfi_data(k->out[0]);
  mfi_gemm(sd.dt, true, false, I, G, B * T, x, I, dzg, G, 0, dwg, G);
  mfi_gemm(sd.dt, true, false, H, G, B * T, hp, H, dzg, G, 0, dwg + I * G * es, G);
  scale_by_r(&sd, ws, hp);
  mfi_gemm(sd.dt, true, false, I, H, B * T, x, I, dzc, H, 0, dwc, H);
  mfi_gemm(sd.dt, true, false, H, H, B * T, hp, H, dzc, H, 0, dwc + I * H * es, H);
  mfi_gemm(sd.dt, false, true, B * T, I, G, dzg, G, wg, G, 0, dx, I);
  mfi_gemm(sd.dt, false, true, B * T, I, H, dzc, H, wc, H, 1, dx, I);
  if (!col_sums(k, sd.dt, dzg, B * T, G, mfi_data(k->out[3])) ||
      !col_sums(k, sd.dt, dzc, B * T, H, mfi_data(k->out[5])))
    mfi_drop_outputs(k, 6);
  mfi_free(dzg, gbytes), mfi_free(dzc, cbytes), mfi_free(hp, cbytes), mfi_free(drh, rbytes);
}

/* GRUSequenceProjectedGrad(h0, gate_recurrent_kernel, cand_recurrent_kernel,
 * y, ws, dy, dh_T[, seq_len]) -> dzx_gates, dzx_cand (dZ themselves), dh0,
 * dgate_recurrent_kernel, dcand_recurrent_kernel. */
static const in_spec gru_proj_grad_spec[] = {{"h0", R_BH},
                                             {"gate_recurrent_kernel", R_HKERNEL, 2},
                                             {"cand_recurrent_kernel", R_HKERNEL, 1},
                                             {"y", R_BTG, 1},
                                             {"ws", R_TBG, 3},
                                             {"dy", R_BTG, 1},
                                             {"dh_T", R_BH},
                                             {"seq_len", R_SEQ}};

static void infer_gru_proj_grad(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, gru_proj_grad_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 5)) return;
  int64_t B = d.v[DB], T = d.v[DT], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, times(2, H));
  set_meta(&o[1], dt, 3, B, T, H);
  set_meta(&o[2], dt, 2, B, H, 0);
  set_meta(&o[3], dt, 2, H, times(2, H), 0);
  set_meta(&o[4], dt, 2, H, H, 0);
}

static void cpu_gru_proj_grad(mfi_kctx *k)
{
  seqdims sd;
  seq_dims(k, gru_proj_grad_spec, &sd);
  int64_t B = sd.B, T = sd.T, H = sd.H, G = 2 * H;
  size_t es = sd.es, cbytes = (size_t)(B * T * H) * es, rbytes = (size_t)(B * H) * es;
  const int nd[5] = {3, 3, 2, 2, 2};
  const int64_t dims[5][3] = {{B, T, G}, {B, T, H}, {B, H}, {H, G}, {H, H}};
  char *hp = scratch(k, cbytes), *drh = hp ? scratch(k, rbytes) : NULL;
  if (!drh || !new_outputs(k, sd.dt, 5, nd, dims)) {
    mfi_free(hp, cbytes), mfi_free(drh, rbytes);
    return;
  }
  const char *ws = mfi_data(k->in[4]);
  char *dzg = mfi_data(k->out[0]), *dzc = mfi_data(k->out[1]), *dh = mfi_data(k->out[2]);
  memcpy(dh, mfi_data(k->in[6]), (size_t)(B * H) * es);
  build_xh(&sd, NULL, mfi_data(k->in[0]), mfi_data(k->in[3]), hp);
  gru_bptt(&sd, dzg, dzc, drh, dh, hp, ws, mfi_data(k->in[5]), mfi_data(k->in[1]),
           mfi_data(k->in[2]));
  mfi_gemm(sd.dt, true, false, H, G, B * T, hp, H, dzg, G, 0, mfi_data(k->out[3]), G);
  scale_by_r(&sd, ws, hp);
  mfi_gemm(sd.dt, true, false, H, H, B * T, hp, H, dzc, H, 0, mfi_data(k->out[4]), H);
  mfi_free(hp, cbytes), mfi_free(drh, rbytes);
}

/* ---------------------------------------------------------------- basic RNN */

MF_HOT_LOOP static void tanh_row_f32(int64_t n, float *restrict y)
{
  for (int64_t k = 0; k < n; k++) y[k] = tanh_f(y[k]);
}

static void tanh_row_f64(int64_t n, double *y)
{
  for (int64_t k = 0; k < n; k++) y[k] = tanh(y[k]);
}

/* y[:, t] holds the pre-activation; replace it with tanh (0 when masked). */
static void rnn_fwd(const seqdims *sd, int64_t t, void *y, int64_t ys)
{
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    void *yr = elem(y, b * ys, sd->es);
    if (masked(sd, b, t))
      memset(yr, 0, sd->H * sd->es);
    else if (sd->dt == MF_FLOAT32)
      tanh_row_f32(sd->H, yr);
    else
      tanh_row_f64(sd->H, yr);
  }
}

typedef struct {
  char *y;
  const char *h0;
  recw wh;
} rnn_fwd_args;

static void rnn_loop(const seqdims *sd, void *p)
{
  const rnn_fwd_args *a = p;
  int64_t T = sd->T, H = sd->H;
  size_t es = sd->es;
  for (int64_t t = 0; t < T; t++) {
    char *yt = a->y + t * H * es;
    rec_gemm(sd, &a->wh, t ? yt - H * es : a->h0, t ? T * H : H, 1, yt, T * H);
    rnn_fwd(sd, t, yt, T * H);
  }
}

static const in_spec rnn_spec[] = {
    {"x", R_X}, {"h0", R_BH}, {"kernel", R_KERNEL, 1}, {"bias", R_BIAS, 1}, {"seq_len", R_SEQ}};

static void infer_rnn(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, rnn_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 2)) return;
  set_meta(&c->op->out[0], dt, 3, d.v[DB], d.v[DT], d.v[DH]);
  set_meta(&c->op->out[1], dt, 2, d.v[DB], d.v[DH], 0);
}

static void cpu_rnn(mfi_kctx *k)
{
  seqdims sd;
  seq_dims(k, rnn_spec, &sd);
  int64_t B = sd.B, T = sd.T, I = sd.I, H = sd.H;
  size_t es = sd.es;
  const int nd[2] = {3, 2};
  const int64_t dims[2][3] = {{B, T, H}, {B, H}};
  if (!new_outputs(k, sd.dt, 2, nd, dims)) return;
  const char *x = mfi_data(k->in[0]), *h0 = mfi_data(k->in[1]), *w = mfi_data(k->in[2]);
  const char *wh = w + I * H * es;
  char *y = mfi_data(k->out[0]);
  /* y itself accumulates the pre-activations. */
  fill_rows(y, mfi_data(k->in[3]), B * T, H, es);
  mfi_gemm(sd.dt, false, false, B * T, H, I, x, I, w, H, 1, y, H);
  rnn_fwd_args a = {y, h0, recw_make(&sd, false, H, H, wh)};
  run_loop(&sd, &a.wh, rnn_loop, &a);
  recw_free(&a.wh);
  final_h(&sd, h0, y, mfi_data(k->out[1]));
}

/* dz = (dh + dy) (1 - y^2); dh left 0 for the GEMM. */
static void rnn_row_bwd_f32(int64_t H, const float *yr, const float *dyr, float *dhr, float *dzr)
{
  for (int64_t k = 0; k < H; k++) {
    dzr[k] = (dhr[k] + dyr[k]) * (1 - yr[k] * yr[k]);
    dhr[k] = 0;
  }
}

static void rnn_row_bwd_f64(int64_t H, const double *yr, const double *dyr, double *dhr,
                            double *dzr)
{
  for (int64_t k = 0; k < H; k++) {
    dzr[k] = (dhr[k] + dyr[k]) * (1 - yr[k] * yr[k]);
    dhr[k] = 0;
  }
}

/* One backward step over the rows; rows of y, dy, dz have strides T * H. */
static void rnn_bwd(const seqdims *sd, int64_t t, const void *y, const void *dy, void *dh, void *dz)
{
  int64_t H = sd->H, s = sd->T * H;
  size_t es = sd->es;
  for (int64_t b = sd->b0; b < sd->b1; b++) {
    const void *yr = celem(y, b * s, es), *dyr = celem(dy, b * s, es);
    void *dhr = elem(dh, b * H, es), *dzr = elem(dz, b * s, es);
    if (masked(sd, b, t))
      memset(dzr, 0, H * es);
    else if (sd->dt == MF_FLOAT32)
      rnn_row_bwd_f32(H, yr, dyr, dhr, dzr);
    else
      rnn_row_bwd_f64(H, yr, dyr, dhr, dzr);
  }
}

typedef struct {
  char *dz, *dh;
  const char *y, *dy;
  recw whT;
} rnn_bwd_args;

static void rnn_bptt_loop(const seqdims *sd, void *p)
{
  const rnn_bwd_args *a = p;
  int64_t T = sd->T, H = sd->H;
  size_t es = sd->es;
  for (int64_t t = T - 1; t >= 0; t--) {
    size_t o = t * H * es;
    rnn_bwd(sd, t, a->y + o, a->dy + o, a->dh, a->dz + o);
    rec_gemm(sd, &a->whT, a->dz + o, T * H, 1, a->dh, H);
  }
}

static const in_spec rnn_grad_spec[] = {
    {"x", R_X},       {"h0", R_BH},   {"kernel", R_KERNEL, 1}, {"y", R_BTG, 1},
    {"dy", R_BTG, 1}, {"dh_T", R_BH}, {"seq_len", R_SEQ}};

static void infer_rnn_grad(mfi_infer_ctx *c)
{
  dimset d;
  mf_dtype dt;
  if (!check_inputs(c, rnn_grad_spec, c->op->nin, &d, &dt) || !mfi_set_outputs(c, 4)) return;
  int64_t B = d.v[DB], T = d.v[DT], I = d.v[DI], H = d.v[DH];
  mfi_meta *o = c->op->out;
  set_meta(&o[0], dt, 3, B, T, I);
  set_meta(&o[1], dt, 2, B, H, 0);
  set_meta(&o[2], dt, 2, I < 0 || H < 0 ? -1 : I + H, H, 0);
  set_meta(&o[3], dt, 1, H, 0, 0);
}

static void cpu_rnn_grad(mfi_kctx *k)
{
  seqdims sd;
  seq_dims(k, rnn_grad_spec, &sd);
  int64_t B = sd.B, T = sd.T, I = sd.I, H = sd.H;
  size_t es = sd.es;
  const int nd[4] = {3, 2, 2, 1};
  const int64_t dims[4][3] = {{B, T, I}, {B, H}, {I + H, H}, {H}};
  size_t zbytes = (size_t)(B * T * H) * es, xhbytes = (size_t)(B * T * (I + H)) * es;
  char *dz = scratch(k, zbytes), *xh = dz ? scratch(k, xhbytes) : NULL;
  if (!xh || !new_outputs(k, sd.dt, 4, nd, dims)) {
    mfi_free(dz, zbytes), mfi_free(xh, xhbytes);
    return;
  }
  const char *x = mfi_data(k->in[0]), *h0 = mfi_data(k->in[1]), *w = mfi_data(k->in[2]);
  const char *wh = w + I * H * es, *y = mfi_data(k->in[3]), *dy = mfi_data(k->in[4]);
  char *dh = mfi_data(k->out[1]), *dw = mfi_data(k->out[2]);
  memcpy(dh, mfi_data(k->in[5]), (size_t)(B * H) * es);
  rnn_bwd_args a = {dz, dh, y, dy, recw_make(&sd, true, H, H, wh)};
  run_loop(&sd, &a.whT, rnn_bptt_loop, &a);
  recw_free(&a.whT);
  build_xh(&sd, x, h0, y, xh);
  mfi_gemm(sd.dt, true, false, I + H, H, B * T, xh, I + H, dz, H, 0, dw, H);
  mfi_gemm(sd.dt, false, true, B * T, I, H, dz, H, w, H, 0, mfi_data(k->out[0]), I);
  if (!col_sums(k, sd.dt, dz, B * T, H, mfi_data(k->out[3]))) mfi_drop_outputs(k, 4);
  mfi_free(dz, zbytes), mfi_free(xh, xhbytes);
}

/* ---------------------------------------------------------------- gradients */

/* The fused backward op gets the forward inputs it needs (`in`, indices into
 * the forward op's inputs), the forward outputs it reads (`saved`), the
 * gradients of the first ndy outputs (zeros where none flows), and seq_len
 * when present; its outputs are the gradients of the forward inputs in
 * order, seq_len excepted. */
static void fused_grad(mfi_grad_ctx *g, const char *type, const int *in, int nin, const int *saved,
                       int nsaved, int ndy, int nout)
{
  mf_op *op = g->op;
  mf_output dy[3];
  for (int i = 0; i < ndy; i++) dy[i] = mfi_gb_dy(g, i);
  mf_op_desc *d = mfi_gb_begin(g, type);
  if (d) {
    for (int i = 0; i < nin; i++) mf_op_add_input(d, op->inputs[in[i]]);
    for (int i = 0; i < nsaved; i++) mf_op_add_input(d, (mf_output){op, saved[i]});
    for (int i = 0; i < ndy; i++) mf_op_add_input(d, dy[i]);
    if (op->nin == op->def->max_inputs) mf_op_add_input(d, op->inputs[op->nin - 1]);
  }
  mf_output r = mfi_gb_finish(g, d, 0);
  if (!r.op) return;
  for (int i = 0; i < nout; i++) g->dx[i] = (mf_output){r.op, i};
}

static void grad_lstm(mfi_grad_ctx *g)
{
  static const int in[] = {0, 1, 2, 3}, saved[] = {0, 3, 4};
  fused_grad(g, "LSTMSequenceGrad", in, 4, saved, 3, 3, 5);
}

static void grad_lstm_proj(mfi_grad_ctx *g)
{
  static const int in[] = {1, 2, 3}, saved[] = {0, 3, 4};
  fused_grad(g, "LSTMSequenceProjectedGrad", in, 3, saved, 3, 3, 4);
}

static void grad_gru(mfi_grad_ctx *g)
{
  static const int in[] = {0, 1, 2, 4}, saved[] = {0, 2};
  fused_grad(g, "GRUSequenceGrad", in, 4, saved, 2, 2, 6);
}

static void grad_gru_proj(mfi_grad_ctx *g)
{
  static const int in[] = {2, 3, 4}, saved[] = {0, 2};
  fused_grad(g, "GRUSequenceProjectedGrad", in, 3, saved, 2, 2, 5);
}

static void grad_rnn(mfi_grad_ctx *g)
{
  static const int in[] = {0, 1, 2}, saved[] = {0};
  fused_grad(g, "RNNSequenceGrad", in, 3, saved, 1, 2, 4);
}

/* ---------------------------------------------------------------- prepare hooks and rows */

static void prepare_lstm(mfi_kctx *k) { prepare_dims(k, lstm_spec, 4); }
static void prepare_lstm_grad(mfi_kctx *k) { prepare_dims(k, lstm_grad_spec, 4); }
static void prepare_lstm_proj(mfi_kctx *k) { prepare_dims(k, lstm_proj_spec, 4); }
static void prepare_lstm_proj_grad(mfi_kctx *k) { prepare_dims(k, lstm_proj_grad_spec, 4); }
static void prepare_gru(mfi_kctx *k) { prepare_dims(k, gru_spec, 3); }
static void prepare_gru_grad(mfi_kctx *k) { prepare_dims(k, gru_grad_spec, 3); }
static void prepare_gru_proj(mfi_kctx *k) { prepare_dims(k, gru_proj_spec, 3); }
static void prepare_gru_proj_grad(mfi_kctx *k) { prepare_dims(k, gru_proj_grad_spec, 3); }
static void prepare_rnn(mfi_kctx *k) { prepare_dims(k, rnn_spec, 1); }
static void prepare_rnn_grad(mfi_kctx *k) { prepare_dims(k, rnn_grad_spec, 1); }

mfi_opdef mfi_ops_rnn[] = {
    {.type = "LSTMSequence",
     .doc = "A fused LSTM over a batch-major sequence x [B, T, I].",
     .inputs = "x, h0, c0, kernel, bias, seq_len?",
     .outputs = "y, h_T, c_T, act, c",
     .attrs = "forget_bias: float = 1",
     .min_inputs = 5,
     .max_inputs = 6,
     .infer = infer_lstm,
     .prepare = prepare_lstm,
     .kernel = {[MFI_DEVICE_CPU] = cpu_lstm},
     .host_in = 1u << 5,
     .grad = grad_lstm},
    {.type = "LSTMSequenceGrad",
     .doc = "LSTMSequence's gradient.",
     .inputs = "x, h0, c0, kernel, y, act, c, dy, dh_T, dc_T, seq_len?",
     .outputs = "dx, dh0, dc0, dkernel, dbias",
     .attrs = "",
     .min_inputs = 10,
     .max_inputs = 11,
     .infer = infer_lstm_grad,
     .prepare = prepare_lstm_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_lstm_grad},
     .host_in = 1u << 10},
    {.type = "LSTMSequenceProjected",
     .doc = "A fused LSTM whose input projection zx [B, T, 4H] comes computed.",
     .inputs = "zx, h0, c0, recurrent_kernel, seq_len?",
     .outputs = "y, h_T, c_T, act, c",
     .attrs = "forget_bias: float = 1",
     .min_inputs = 4,
     .max_inputs = 5,
     .infer = infer_lstm_proj,
     .prepare = prepare_lstm_proj,
     .kernel = {[MFI_DEVICE_CPU] = cpu_lstm_proj},
     .host_in = 1u << 4,
     .grad = grad_lstm_proj},
    {.type = "LSTMSequenceProjectedGrad",
     .doc = "LSTMSequenceProjected's gradient.",
     .inputs = "h0, c0, recurrent_kernel, y, act, c, dy, dh_T, dc_T, seq_len?",
     .outputs = "dzx, dh0, dc0, drecurrent_kernel",
     .attrs = "",
     .min_inputs = 9,
     .max_inputs = 10,
     .infer = infer_lstm_proj_grad,
     .prepare = prepare_lstm_proj_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_lstm_proj_grad},
     .host_in = 1u << 9},
    {.type = "GRUSequence",
     .doc = "A fused GRU over a batch-major sequence x [B, T, I].",
     .inputs = "x, h0, gate_kernel, gate_bias, cand_kernel, cand_bias, seq_len?",
     .outputs = "y, h_T, ws",
     .attrs = "",
     .min_inputs = 6,
     .max_inputs = 7,
     .infer = infer_gru,
     .prepare = prepare_gru,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gru},
     .host_in = 1u << 6,
     .grad = grad_gru},
    {.type = "GRUSequenceGrad",
     .doc = "GRUSequence's gradient.",
     .inputs = "x, h0, gate_kernel, cand_kernel, y, ws, dy, dh_T, seq_len?",
     .outputs = "dx, dh0, dgate_kernel, dgate_bias, dcand_kernel, dcand_bias",
     .attrs = "",
     .min_inputs = 8,
     .max_inputs = 9,
     .infer = infer_gru_grad,
     .prepare = prepare_gru_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gru_grad},
     .host_in = 1u << 8},
    {.type = "GRUSequenceProjected",
     .doc = "A fused GRU whose input projections come computed.",
     .inputs = "zx_gates, zx_cand, h0, gate_recurrent_kernel, cand_recurrent_kernel, seq_len?",
     .outputs = "y, h_T, ws",
     .attrs = "",
     .min_inputs = 5,
     .max_inputs = 6,
     .infer = infer_gru_proj,
     .prepare = prepare_gru_proj,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gru_proj},
     .host_in = 1u << 5,
     .grad = grad_gru_proj},
    {.type = "GRUSequenceProjectedGrad",
     .doc = "GRUSequenceProjected's gradient.",
     .inputs = "h0, gate_recurrent_kernel, cand_recurrent_kernel, y, ws, dy, dh_T, seq_len?",
     .outputs = "dzx_gates, dzx_cand, dh0, dgate_recurrent_kernel, dcand_recurrent_kernel",
     .attrs = "",
     .min_inputs = 7,
     .max_inputs = 8,
     .infer = infer_gru_proj_grad,
     .prepare = prepare_gru_proj_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gru_proj_grad},
     .host_in = 1u << 7},
    {.type = "RNNSequence",
     .doc = "A fused basic tanh RNN over a batch-major sequence x [B, T, I].",
     .inputs = "x, h0, kernel, bias, seq_len?",
     .outputs = "y, h_T",
     .attrs = "",
     .min_inputs = 4,
     .max_inputs = 5,
     .infer = infer_rnn,
     .prepare = prepare_rnn,
     .kernel = {[MFI_DEVICE_CPU] = cpu_rnn},
     .host_in = 1u << 4,
     .grad = grad_rnn},
    {.type = "RNNSequenceGrad",
     .doc = "RNNSequence's gradient.",
     .inputs = "x, h0, kernel, y, dy, dh_T, seq_len?",
     .outputs = "dx, dh0, dkernel, dbias",
     .attrs = "",
     .min_inputs = 6,
     .max_inputs = 7,
     .infer = infer_rnn_grad,
     .prepare = prepare_rnn_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_rnn_grad},
     .host_in = 1u << 6},
    {0},
};
