/* 2-D convolutions and pooling over NHWC data, as TensorFlow's ops of the
 * same names: Conv2D and its two gradients (Conv2DBackpropInput, which is
 * also conv2d_transpose, and Conv2DBackpropFilter), MaxPool, AvgPool and
 * their gradients. Filters are HWIO ([kh, kw, in, out]).
 *
 * The convolutions are im2col + GEMM (mfi_gemm: moonflow's own float32
 * kernels, OpenBLAS for float64): each output position's receptive field
 * becomes one row of a [positions, kh*kw*in] matrix, whose product with the
 * filter ([kh*kw*in, out], the HWIO layout as it lies) is the output. The
 * rows are built a few images at a time to bound the scratch memory.
 * Pooling is direct loops. Padding follows TF: SAME pads (total - total/2)
 * after and total/2 before; AvgPool divides by the valid elements only. */
#include "conv.h"
#include "shapes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(mfi_conv_geom) <= sizeof(((mfi_kctx *)0)->params), "geometry fits params");

enum { CONV, BP_INPUT, BP_FILTER, MAX_POOL, AVG_POOL, MAX_POOL_GRAD, AVG_POOL_GRAD };

/* ---------------------------------------------------------------- shapes */

/* A 4-entry window attribute (strides, dilations, ksize) in NHWC order:
 * positive, 1 along the batch and channels. Absent and not needed: all 1. */
static bool four(mfi_infer_ctx *c, const char *name, bool need, int64_t out[4])
{
  const int64_t *v;
  int n;
  int r = mfi_check_ints(c, name, &v, &n);
  if (r < 0) return false;
  if (r == 0) {
    if (need) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs the attribute '%s'", name);
    for (int i = 0; i < 4; i++) out[i] = 1;
    return !need;
  }
  if (n != 4) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "'%s' must have 4 entries (NHWC), got %d", name, n);
    return false;
  }
  for (int i = 0; i < 4; i++) {
    if (v[i] < 1) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "'%s' must be positive, got %lld at position %d",
                      name, (long long)v[i], i + 1);
      return false;
    }
    out[i] = v[i];
  }
  if (v[0] != 1 || v[3] != 1) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "'%s' must be 1 along the batch and channel dimensions, got {%lld, %lld, "
                    "%lld, %lld}",
                    name, (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
    return false;
  }
  return true;
}

/* padding "SAME" or "VALID"; data_format, where given, "NHWC". */
static bool padding_attr(mfi_infer_ctx *c, bool *same)
{
  const mfi_attr *a = mfi_attr_find(c->op, "padding");
  if (!a || a->kind != MFI_A_STRING || (strcmp(a->s, "SAME") && strcmp(a->s, "VALID"))) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs the string attribute 'padding', SAME or VALID");
    return false;
  }
  *same = a->s[0] == 'S';
  const mfi_attr *f = mfi_attr_find(c->op, "data_format");
  if (f && (f->kind != MFI_A_STRING || strcmp(f->s, "NHWC"))) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "'data_format' must be NHWC (the only layout here)");
    return false;
  }
  return true;
}

/* One spatial output size and its leading padding (-1 for unknown). */
static bool out_dim(mfi_infer_ctx *c, int64_t in, int64_t k, int64_t s, int64_t d, bool same,
                    int64_t *o, int64_t *pad, const char *what)
{
  *o = -1, *pad = 0;
  if (in < 0) return true;
  if (same) *o = (in + s - 1) / s;
  if (k < 0) return true;
  int64_t ek = (k - 1) * d + 1;
  if (same) {
    int64_t total = (*o - 1) * s + ek - in;
    *pad = total > 0 ? total / 2 : 0;
    if (*o == 0) *pad = 0;
    return true;
  }
  if (in < ek) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "the window's %s (%lld, dilated) is larger than the input's (%lld) with VALID "
                    "padding",
                    what, (long long)ek, (long long)in);
    return false;
  }
  *o = (in - ek) / s + 1;
  return true;
}

/* The 4 dims of a value's metadata (-1 unknown); false if not rank 4. */
static bool dims4(mfi_infer_ctx *c, const mfi_meta *m, const char *what, int64_t d[4])
{
  for (int i = 0; i < 4; i++) d[i] = m->ndim < 0 ? -1 : m->dims[i];
  if (m->ndim < 0 || m->ndim == 4) return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must have rank 4, got rank %d", what, m->ndim);
  return false;
}

/* The same from a shape argument (a host-memory int vector). */
static bool sizes4(mfi_infer_ctx *c, const mfi_kctx *k, const char *name, int idx, int64_t d[4])
{
  mfi_ints s;
  if (mfi_shape_arg(c, k, name, idx, false, &s) < 0) return false;
  for (int i = 0; i < 4; i++) d[i] = s.n == 4 && s.v[i] != MFI_UNKNOWN ? s.v[i] : -1;
  if (s.n < 0 || s.n == 4) return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "'%s' must have 4 entries, got %d", name, s.n);
  return false;
}

static bool float_in(mfi_infer_ctx *c, mf_dtype dt, mf_dtype want, const char *what)
{
  if (!mfi_is_float(dt)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be float32 or float64, got %s", what,
                    mf_dtype_name(dt));
    return false;
  }
  if (dt != want) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s is %s but the input is %s", what, mf_dtype_name(dt),
                    mf_dtype_name(want));
    return false;
  }
  return true;
}

/* Dimension i of two shapes that must agree (-1 matches anything). */
static bool agree(mfi_infer_ctx *c, int64_t *a, int64_t b, const char *what)
{
  if (*a >= 0 && b >= 0 && *a != b) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s: %lld and %lld differ", what, (long long)*a,
                    (long long)b);
    return false;
  }
  if (*a < 0) *a = b;
  return true;
}

/* The geometry and output shape of an op of this kind; k NULL at
 * inference (shape arguments folded from constants), set in prepare. */
static bool conv_shape(mfi_infer_ctx *c, const mfi_kctx *k, int kind, mfi_conv_geom *g,
                       mfi_meta *out)
{
  const mfi_meta *in = c->in;
  int64_t x[4], f[4] = {-1, -1, -1, -1}, dy[4] = {-1, -1, -1, -1}, st[4], dil[4] = {1, 1, 1, 1},
                ks[4];
  bool same, pool = kind >= MAX_POOL;
  mf_dtype dt = in[kind == BP_INPUT || kind == AVG_POOL_GRAD ? 1 : 0].dtype;
  if (!float_in(c, dt, dt, kind == BP_INPUT ? "the filter" : "the input")) return false;
  if (!four(c, "strides", true, st) || !padding_attr(c, &same)) return false;
  if (pool ? !four(c, "ksize", true, ks) : !four(c, "dilations", false, dil)) return false;
  switch (kind) {
  case CONV:
    if (!dims4(c, &in[0], "the input", x) || !dims4(c, &in[1], "the filter", f) ||
        !float_in(c, in[1].dtype, dt, "the filter"))
      return false;
    break;
  case BP_INPUT:
    if (!sizes4(c, k, "input_sizes", 0, x) || !dims4(c, &in[1], "the filter", f) ||
        !dims4(c, &in[2], "out_backprop", dy) || !float_in(c, in[2].dtype, dt, "out_backprop"))
      return false;
    break;
  case BP_FILTER:
    if (!dims4(c, &in[0], "the input", x) || !sizes4(c, k, "filter_sizes", 1, f) ||
        !dims4(c, &in[2], "out_backprop", dy) || !float_in(c, in[2].dtype, dt, "out_backprop"))
      return false;
    break;
  case MAX_POOL:
  case AVG_POOL:
    if (!dims4(c, &in[0], "the input", x)) return false;
    break;
  case MAX_POOL_GRAD:
    if (!dims4(c, &in[0], "the input", x) || !dims4(c, &in[2], "the gradient", dy) ||
        !float_in(c, in[1].dtype, dt, "the output") ||
        !float_in(c, in[2].dtype, dt, "the gradient"))
      return false;
    break;
  default: /* AVG_POOL_GRAD */
    if (!sizes4(c, k, "orig_input_shape", 0, x) || !dims4(c, &in[1], "the gradient", dy))
      return false;
  }
  if (pool) {
    f[0] = ks[1], f[1] = ks[2], f[2] = x[3], f[3] = x[3];
  } else if (!agree(c, &x[3], f[2], "the input's channels and the filter's input channels")) {
    return false;
  }
  *g = (mfi_conv_geom){.n = x[0],
                       .h = x[1],
                       .w = x[2],
                       .c = x[3],
                       .kh = f[0],
                       .kw = f[1],
                       .o = f[3],
                       .sh = st[1],
                       .sw = st[2],
                       .dh = dil[1],
                       .dw = dil[2]};
  if (!out_dim(c, g->h, g->kh, g->sh, g->dh, same, &g->oh, &g->pt, "height") ||
      !out_dim(c, g->w, g->kw, g->sw, g->dw, same, &g->ow, &g->pl, "width"))
    return false;
  int64_t y[4] = {g->n, g->oh, g->ow, g->o};
  static const char *const names[4] = {"batch", "height", "width", "channels"};
  for (int i = 0; i < 4; i++) {
    char what[96];
    snprintf(what, sizeof what, "the gradient's %s and the output's", names[i]);
    if (!agree(c, &y[i], dy[i], what)) return false;
  }
  if (kind == MAX_POOL_GRAD) {
    int64_t yo[4];
    if (!dims4(c, &in[1], "the output", yo)) return false;
    for (int i = 0; i < 4; i++)
      if (!agree(c, &y[i], yo[i], "the output's shape and the pool's")) return false;
  }
  const int64_t *od = kind == BP_INPUT || kind == MAX_POOL_GRAD || kind == AVG_POOL_GRAD ? x
                      : kind == BP_FILTER                                                ? f
                                                                                         : y;
  out->dtype = dt;
  out->ndim = 4;
  memcpy(out->dims, od, sizeof(int64_t) * 4);
  return true;
}

static void infer_kind(mfi_infer_ctx *c, int kind)
{
  mfi_conv_geom g;
  mfi_meta m;
  if (conv_shape(c, NULL, kind, &g, &m) && mfi_set_outputs(c, 1)) c->op->out[0] = m;
}

static void prepare_kind(mfi_kctx *k, int kind)
{
  mfi_meta m[3];
  mfi_input_metas(k, k->op->nin, m);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, m);
  mfi_conv_geom g;
  if (conv_shape(&c, k, kind, &g, &k->shapes[0])) memcpy(k->params, &g, sizeof g);
}

static void infer_conv(mfi_infer_ctx *c) { infer_kind(c, CONV); }
static void infer_bp_input(mfi_infer_ctx *c) { infer_kind(c, BP_INPUT); }
static void infer_bp_filter(mfi_infer_ctx *c) { infer_kind(c, BP_FILTER); }
static void infer_max_pool(mfi_infer_ctx *c) { infer_kind(c, MAX_POOL); }
static void infer_avg_pool(mfi_infer_ctx *c) { infer_kind(c, AVG_POOL); }
static void infer_max_pool_grad(mfi_infer_ctx *c) { infer_kind(c, MAX_POOL_GRAD); }
static void infer_avg_pool_grad(mfi_infer_ctx *c) { infer_kind(c, AVG_POOL_GRAD); }
static void prepare_conv(mfi_kctx *k) { prepare_kind(k, CONV); }
static void prepare_bp_input(mfi_kctx *k) { prepare_kind(k, BP_INPUT); }
static void prepare_bp_filter(mfi_kctx *k) { prepare_kind(k, BP_FILTER); }
static void prepare_max_pool(mfi_kctx *k) { prepare_kind(k, MAX_POOL); }
static void prepare_avg_pool(mfi_kctx *k) { prepare_kind(k, AVG_POOL); }
static void prepare_max_pool_grad(mfi_kctx *k) { prepare_kind(k, MAX_POOL_GRAD); }
static void prepare_avg_pool_grad(mfi_kctx *k) { prepare_kind(k, AVG_POOL_GRAD); }

/* ---------------------------------------------------------------- im2col */

/* Images at a time so that the column matrix stays near 64K elements. */
static int64_t chunk_images(const mfi_conv_geom *g)
{
  /* 64K elements (256 KiB in float32): the GEMM packs the column matrix
   * (or col2im reads it) while it is still in L2; with 4M the column matrix
   * went through memory twice and the GEMM was bound by it. */
  int64_t per = g->oh * g->ow * g->kh * g->kw * g->c, nb = per > 0 ? (64 << 10) / per : g->n;
  return nb < 1 ? 1 : nb > g->n ? g->n : nb;
}

/* A 1x1 window with stride 1: the input is its own column matrix. */
static bool pointwise(const mfi_conv_geom *g)
{
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1;
}

/* GCC turns short copy and fill loops into memcpy/memset calls, which cost
 * more than the few elements they move here. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_LIBCALLS
#endif

/* The valid kx of output column ox's window without column dilation: the
 * input columns ix0 + [a, b) with ix0 = ox * sw - pl. */
static inline void valid_kx(const mfi_conv_geom *g, int64_t ox, int64_t *ix0, int64_t *a,
                            int64_t *b)
{
  *ix0 = ox * g->sw - g->pl;
  *a = *ix0 < 0 ? -*ix0 : 0, *b = g->w - *ix0;
  if (*a > g->kw) *a = g->kw;
  if (*b > g->kw) *b = g->kw;
  if (*b < *a) *b = *a;
}

/* im2col for float32 without column dilation: each (oy, ox, ky) is one
 * window row, [a, b) of its kw * c elements copied from one contiguous run
 * of the input row, the rest zero; loops, not library calls, as the rows are
 * short (5 floats for a 5x5 window on one channel). */
NO_LIBCALLS static void im2col_f32(const mfi_conv_geom *g, const float *x, int64_t cnt, float *col)
{
  int64_t c = g->c, wrun = g->kw * c;
  for (int64_t i = 0; i < cnt; i++)
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t ix0, a, b;
        valid_kx(g, ox, &ix0, &a, &b);
        int64_t lo = a * c, hi = b * c;
        for (int64_t ky = 0; ky < g->kh; ky++, col += wrun) {
          int64_t iy = oy * g->sh - g->pt + ky * g->dh;
          if (iy < 0 || iy >= g->h || lo == hi) {
            for (int64_t t = 0; t < wrun; t++) col[t] = 0;
            continue;
          }
          /* src[t - lo] is the input element of col[t], for t in [lo, hi) */
          const float *src = x + ((i * g->h + iy) * g->w + ix0 + a) * c;
          for (int64_t t = 0; t < lo; t++) col[t] = 0;
          for (int64_t t = lo; t < hi; t++) col[t] = src[t - lo];
          for (int64_t t = hi; t < wrun; t++) col[t] = 0;
        }
      }
}

/* col[(img, oh, ow), (kh, kw, c)] from cnt images at x: each (kh, kw) is a
 * run of c contiguous channels, copied or zeroed (padding). */
static void im2col(const mfi_conv_geom *g, size_t es, const char *x, int64_t cnt, char *col)
{
  if (es == sizeof(float) && g->dw == 1) {
    im2col_f32(g, (const float *)x, cnt, (float *)col);
    return;
  }
  size_t run = (size_t)g->c * es;
  for (int64_t i = 0; i < cnt; i++)
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++)
        for (int64_t ky = 0; ky < g->kh; ky++) {
          int64_t iy = oy * g->sh - g->pt + ky * g->dh;
          for (int64_t kx = 0; kx < g->kw; kx++, col += run) {
            int64_t ix = ox * g->sw - g->pl + kx * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
              memset(col, 0, run);
            else
              memcpy(col, x + (size_t)(((i * g->h + iy) * g->w + ix) * g->c) * es, run);
          }
        }
}

/* dx (cnt images, zeroed by the caller) += the columns scattered back. */
static void col2im(const mfi_conv_geom *g, mf_dtype dt, const char *col, int64_t cnt, char *dx)
{
  size_t es = mf_dtype_size(dt);
  int64_t c = g->c;
  for (int64_t i = 0; i < cnt; i++)
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++)
        for (int64_t ky = 0; ky < g->kh; ky++) {
          int64_t iy = oy * g->sh - g->pt + ky * g->dh;
          for (int64_t kx = 0; kx < g->kw; kx++, col += (size_t)c * es) {
            int64_t ix = ox * g->sw - g->pl + kx * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
            char *d = dx + (size_t)(((i * g->h + iy) * g->w + ix) * c) * es;
            if (dt == MF_FLOAT32)
              for (int64_t j = 0; j < c; j++) ((float *)d)[j] += ((const float *)col)[j];
            else
              for (int64_t j = 0; j < c; j++) ((double *)d)[j] += ((const double *)col)[j];
          }
        }
}

/* ---------------------------------------------------------------- CPU kernels
 *
 * The convolutions split their images across the intra-op team: each part
 * runs im2col (or col2im) and its GEMMs over its own images with its own
 * column buffer, the GEMMs single-threaded (a region inside a region runs
 * on its caller). A small CNN's GEMMs are below mfi_sgemm's own threading
 * threshold, and im2col and col2im were never threaded. */

typedef struct {
  const mfi_conv_geom *g;
  mf_dtype dt;
  size_t es;
  const char *a, *b; /* conv: x, filter; bp_input: filter, dy; bp_filter: x, dy */
  char *out;         /* conv: y; bp_input: dx; bp_filter: parts x kk*o partial sums */
  char *col;         /* parts x part_bytes */
  size_t part_bytes;
  int64_t nb;             /* images per chunk */
  bool swap;              /* bp_filter: partial sums as dfilter^T [o, kk] */
  const mfi_packed_b *pb; /* conv: the filter, bp_input: its transpose, packed once (float32) */
} batch_job;

/* The filter (transposed for bp_input) packed once for every chunk's
 * GEMM: pb->p stays NULL (plain mfi_gemm calls) for float64, or without
 * our kernels, or when the pack cannot be allocated. */
static const mfi_packed_b *pack_filter(mfi_packed_b *pb, mf_dtype dt, bool tb, int64_t k, int64_t n,
                                       const void *f, int64_t ldf)
{
  pb->p = NULL;
  if (dt != MF_FLOAT32 || !mfi_pack_b(pb, tb, k, n, f, ldf)) return NULL;
  return pb;
}

/* Parts for a kernel of about 2 n oh ow kh kw c o flops: one below a
 * MFLOP, where a wakeup costs more than it saves; at most one per image. */
static int batch_parts(const mfi_conv_geom *g)
{
  double work =
      2.0 * (double)(g->n * g->oh * g->ow) * (double)(g->kh * g->kw * g->c) * (double)g->o;
  int64_t p = work < 1e6 ? 1 : mfi_parallel_threads();
  return (int)(p > g->n ? (g->n > 0 ? g->n : 1) : p);
}

/* The column buffers of `parts` parts, chunks of at most chunk_images
 * images each; NULL with the op's error when out of memory. */
static char *batch_setup(mfi_kctx *k, batch_job *j, int parts)
{
  const mfi_conv_geom *g = j->g;
  int64_t per = (g->n + parts - 1) / parts, nb = chunk_images(g);
  j->nb = nb < per ? nb : per;
  if (j->nb < 1) j->nb = 1;
  j->part_bytes = (size_t)(j->nb * g->oh * g->ow * g->kh * g->kw * g->c) * j->es;
  if (j->part_bytes == 0) j->part_bytes = j->es;
  j->col = malloc(j->part_bytes * (size_t)parts);
  if (!j->col) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory for im2col");
  return j->col;
}

#define PART_RANGE(j, p, np, i0, i1)                                                               \
  int64_t i0 = (j)->g->n * (p) / (np), i1 = (j)->g->n * ((p) + 1) / (np)

static void conv_part(void *ctx, int p, int np)
{
  const batch_job *j = ctx;
  const mfi_conv_geom *g = j->g;
  PART_RANGE(j, p, np, i0, i1);
  int64_t kk = g->kh * g->kw * g->c, rows = g->oh * g->ow;
  char *col = j->col + (size_t)p * j->part_bytes;
  for (int64_t i = i0; i < i1; i += j->nb) {
    int64_t cnt = i1 - i < j->nb ? i1 - i : j->nb;
    char *y = j->out + (size_t)(i * rows * g->o) * j->es;
    im2col(g, j->es, j->a + (size_t)(i * g->h * g->w * g->c) * j->es, cnt, col);
    if (j->pb && cnt * rows > 1)
      mfi_sgemm_packed(false, cnt * rows, (const float *)col, kk, j->pb, 0, (float *)y, g->o);
    else
      mfi_gemm(j->dt, false, false, cnt * rows, g->o, kk, col, kk, j->b, g->o, 0, y, g->o);
  }
}

static void cpu_conv(mfi_kctx *k)
{
  mfi_conv_geom g = mfi_conv_geom_of(k);
  mf_dtype dt = k->in[0]->dtype;
  size_t es = mf_dtype_size(dt);
  if (!mfi_outs_new(k, 1) || k->out[0]->numel == 0) return;
  const char *x = mfi_data(k->in[0]), *f = mfi_data(k->in[1]);
  char *y = mfi_data(k->out[0]);
  int64_t kk = g.kh * g.kw * g.c, rows = g.oh * g.ow;
  if (pointwise(&g)) { /* no padding either: SAME with a 1x1 window pads nothing */
    mfi_gemm(dt, false, false, g.n * rows, g.o, kk, x, kk, f, g.o, 0, y, g.o);
    return;
  }
  batch_job j = {.g = &g, .dt = dt, .es = es, .a = x, .b = f, .out = y};
  int parts = batch_parts(&g);
  if (!batch_setup(k, &j, parts)) return;
  mfi_packed_b pb;
  j.pb = pack_filter(&pb, dt, false, kk, g.o, f, g.o);
  mfi_parallel(parts, conv_part, &j);
  mfi_packed_b_free(&pb);
  free(j.col);
}

/* dcol = dy filter^T, scattered back into dx (zeroed here, per part). */
static void bp_input_part(void *ctx, int p, int np)
{
  const batch_job *j = ctx;
  const mfi_conv_geom *g = j->g;
  PART_RANGE(j, p, np, i0, i1);
  int64_t kk = g->kh * g->kw * g->c, rows = g->oh * g->ow, img = g->h * g->w * g->c;
  char *col = j->col + (size_t)p * j->part_bytes;
  memset(j->out + (size_t)(i0 * img) * j->es, 0, (size_t)((i1 - i0) * img) * j->es);
  for (int64_t i = i0; i < i1; i += j->nb) {
    int64_t cnt = i1 - i < j->nb ? i1 - i : j->nb;
    const char *dyi = j->b + (size_t)(i * rows * g->o) * j->es;
    if (j->pb && cnt * rows > 1)
      mfi_sgemm_packed(false, cnt * rows, (const float *)dyi, g->o, j->pb, 0, (float *)col, kk);
    else
      mfi_gemm(j->dt, false, true, cnt * rows, kk, g->o, dyi, g->o, j->a, g->o, 0, col, kk);
    col2im(g, j->dt, col, cnt, j->out + (size_t)(i * img) * j->es);
  }
}

static void cpu_bp_input(mfi_kctx *k)
{
  mfi_conv_geom g = mfi_conv_geom_of(k);
  mf_dtype dt = k->in[1]->dtype;
  size_t es = mf_dtype_size(dt);
  if (!mfi_outs_new(k, 1) || k->out[0]->numel == 0) return;
  const char *f = mfi_data(k->in[1]), *dy = mfi_data(k->in[2]);
  char *dx = mfi_data(k->out[0]);
  int64_t kk = g.kh * g.kw * g.c, rows = g.oh * g.ow;
  if (pointwise(&g)) {
    mfi_gemm(dt, false, true, g.n * rows, kk, g.o, dy, g.o, f, g.o, 0, dx, kk);
    return;
  }
  batch_job j = {.g = &g, .dt = dt, .es = es, .a = f, .b = dy, .out = dx};
  int parts = batch_parts(&g);
  if (!batch_setup(k, &j, parts)) return;
  mfi_packed_b pb;
  j.pb = pack_filter(&pb, dt, true, g.o, kk, f, g.o);
  mfi_parallel(parts, bp_input_part, &j);
  mfi_packed_b_free(&pb);
  free(j.col);
}

/* Part p's sum over its images of col^T dy added to its kk*o slot of j->out;
 * with swap, of dy^T col ([o, kk]): the GEMM's transposed operand, packed
 * a few rows at a time, is then the narrow dy, not the wide column matrix. */
static void bp_filter_part(void *ctx, int p, int np)
{
  const batch_job *j = ctx;
  const mfi_conv_geom *g = j->g;
  PART_RANGE(j, p, np, i0, i1);
  int64_t kk = g->kh * g->kw * g->c, rows = g->oh * g->ow;
  char *col = j->col + (size_t)p * j->part_bytes, *acc = j->out + (size_t)(p * kk * g->o) * j->es;
  for (int64_t i = i0; i < i1; i += j->nb) {
    int64_t cnt = i1 - i < j->nb ? i1 - i : j->nb;
    const char *dyi = j->b + (size_t)(i * rows * g->o) * j->es;
    im2col(g, j->es, j->a + (size_t)(i * g->h * g->w * g->c) * j->es, cnt, col);
    if (j->swap)
      mfi_gemm(j->dt, true, false, g->o, kk, cnt * rows, dyi, g->o, col, kk, 1, acc, kk);
    else
      mfi_gemm(j->dt, true, false, kk, g->o, cnt * rows, col, kk, dyi, g->o, 1, acc, g->o);
  }
}

static void cpu_bp_filter(mfi_kctx *k)
{
  mfi_conv_geom g = mfi_conv_geom_of(k);
  mf_dtype dt = k->in[0]->dtype;
  size_t es = mf_dtype_size(dt);
  if (!mfi_outs_new(k, 1) || k->out[0]->numel == 0) return;
  const char *x = mfi_data(k->in[0]), *dy = mfi_data(k->in[2]);
  char *df = mfi_data(k->out[0]);
  int64_t kk = g.kh * g.kw * g.c, rows = g.oh * g.ow;
  memset(df, 0, (size_t)k->out[0]->numel * es);
  if (pointwise(&g)) {
    mfi_gemm(dt, true, false, kk, g.o, g.n * rows, x, kk, dy, g.o, 0, df, g.o);
    return;
  }
  if (g.n == 0) return; /* an empty batch: df stays zero */
  int parts = batch_parts(&g);
  batch_job j = {.g = &g, .dt = dt, .es = es, .a = x, .b = dy, .swap = kk > g.o};
  if (!(j.out = mfi_scratch(k, (size_t)(parts * kk * g.o) * es))) return;
  /* zeroed here: the team may run fewer parts than asked */
  memset(j.out, 0, (size_t)(parts * kk * g.o) * es);
  if (!batch_setup(k, &j, parts)) return;
  mfi_parallel(parts, bp_filter_part, &j);
  free(j.col);
  /* df = the sum of the parts' slots */
  for (int p = 0; p < parts; p++) {
    const char *acc = j.out + (size_t)(p * kk * g.o) * es;
    for (int64_t q = 0; q < kk; q++)
      for (int64_t o = 0; o < g.o; o++) {
        int64_t from = j.swap ? o * kk + q : q * g.o + o;
        if (dt == MF_FLOAT32)
          ((float *)df)[q * g.o + o] += ((const float *)acc)[from];
        else
          ((double *)df)[q * g.o + o] += ((const double *)acc)[from];
      }
  }
}

/* ---------------------------------------------------------------- pooling */

static inline double ld(mf_dtype dt, const void *p, int64_t i)
{
  return dt == MF_FLOAT32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

static inline void st(mf_dtype dt, void *p, int64_t i, double v)
{
  if (dt == MF_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1),
 * columns [*x0, *x1). */
static void window(const mfi_conv_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                   int64_t *x0, int64_t *x1)
{
  int64_t a = oy * g->sh - g->pt, b = ox * g->sw - g->pl;
  *y0 = a < 0 ? 0 : a, *y1 = a + g->kh > g->h ? g->h : a + g->kh;
  *x0 = b < 0 ? 0 : b, *x1 = b + g->kw > g->w ? g->w : b + g->kw;
}

/* Max pooling and its gradient visit each window once for all channels
 * (contiguous in NHWC), in loops without data-dependent branches so that
 * they vectorize: one pass per channel with a branch on each comparison was
 * a fifth of a small CNN's training step.
 *
 * window_max: m[ch] = the window's max, the first in row-major order (a
 * strict >, as TF's CPU kernel picks; a leading NaN stays).
 * window_route: dx += dy at that first max: a second pass marks the first
 * element equal to m (or the first element when m is NaN, which only a
 * leading NaN makes), done[ch] (c elements of scratch) saying which
 * channels have theirs. */
#define WINDOW_OPS(T, MAX, ROUTE)                                                                  \
  static void MAX(const mfi_conv_geom *g, const T *x, int64_t i, int64_t oy, int64_t ox, T *m)     \
  {                                                                                                \
    int64_t y0, y1, x0, x1, c = g->c;                                                              \
    bool first = true;                                                                             \
    window(g, oy, ox, &y0, &y1, &x0, &x1);                                                         \
    for (int64_t iy = y0; iy < y1; iy++)                                                           \
      for (int64_t ix = x0; ix < x1; ix++) {                                                       \
        const T *v = x + ((i * g->h + iy) * g->w + ix) * c;                                        \
        if (first)                                                                                 \
          for (int64_t ch = 0; ch < c; ch++) m[ch] = v[ch];                                        \
        else                                                                                       \
          for (int64_t ch = 0; ch < c; ch++) m[ch] = v[ch] > m[ch] ? v[ch] : m[ch];                \
        first = false;                                                                             \
      }                                                                                            \
    if (first) /* an empty window (not reachable with TF's padding) */                             \
      for (int64_t ch = 0; ch < c; ch++) m[ch] = -INFINITY;                                        \
  }                                                                                                \
  static void ROUTE(const mfi_conv_geom *g, const T *restrict x, int64_t i, int64_t oy,            \
                    int64_t ox, const T *restrict m, const T *restrict dy, T *restrict dx,         \
                    T *restrict done)                                                              \
  {                                                                                                \
    int64_t y0, y1, x0, x1, c = g->c;                                                              \
    window(g, oy, ox, &y0, &y1, &x0, &x1);                                                         \
    for (int64_t ch = 0; ch < c; ch++) done[ch] = 0;                                               \
    for (int64_t iy = y0; iy < y1; iy++)                                                           \
      for (int64_t ix = x0; ix < x1; ix++) {                                                       \
        int64_t j = ((i * g->h + iy) * g->w + ix) * c;                                             \
        const T *restrict v = x + j;                                                               \
        T *restrict d = dx + j;                                                                    \
        for (int64_t ch = 0; ch < c; ch++) {                                                       \
          T mv = m[ch], vv = v[ch], g0 = dy[ch];                                                   \
          int hit = (done[ch] == 0) & ((vv == mv) | (mv != mv));                                   \
          d[ch] += hit ? g0 : 0;                                                                   \
          done[ch] = hit ? 1 : done[ch];                                                           \
        }                                                                                          \
      }                                                                                            \
  }
WINDOW_OPS(float, window_max_f32, window_route_f32)
WINDOW_OPS(double, window_max_f64, window_route_f64)
#undef WINDOW_OPS

static void max_pool(const mfi_conv_geom *g, mf_dtype dt, const void *x, void *y)
{
  int64_t o = 0;
  for (int64_t i = 0; i < g->n; i++)
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++, o += g->c) {
        if (dt == MF_FLOAT32)
          window_max_f32(g, x, i, oy, ox, (float *)y + o);
        else
          window_max_f64(g, x, i, oy, ox, (double *)y + o);
      }
}

/* MaxPoolGrad; m and done are c-element scratch, dx is zeroed by the
 * caller. */
static void max_pool_grad(const mfi_conv_geom *g, mf_dtype dt, const void *x, const void *dy,
                          void *dx, void *m, void *done)
{
  int64_t o = 0;
  for (int64_t i = 0; i < g->n; i++)
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++, o += g->c) {
        if (dt == MF_FLOAT32) {
          window_max_f32(g, x, i, oy, ox, m);
          window_route_f32(g, x, i, oy, ox, m, (const float *)dy + o, dx, done);
        } else {
          window_max_f64(g, x, i, oy, ox, m);
          window_route_f64(g, x, i, oy, ox, m, (const double *)dy + o, dx, done);
        }
      }
}

static void cpu_pool(mfi_kctx *k, bool max)
{
  mfi_conv_geom g = mfi_conv_geom_of(k);
  mf_dtype dt = k->in[0]->dtype;
  if (!mfi_outs_new(k, 1)) return;
  const void *x = mfi_data(k->in[0]);
  void *y = mfi_data(k->out[0]);
  if (max) {
    max_pool(&g, dt, x, y);
    return;
  }
  int64_t o = 0;
  for (int64_t i = 0; i < g.n; i++)
    for (int64_t oy = 0; oy < g.oh; oy++)
      for (int64_t ox = 0; ox < g.ow; ox++)
        for (int64_t ch = 0; ch < g.c; ch++, o++) {
          int64_t y0, y1, x0, x1;
          double s = 0;
          window(&g, oy, ox, &y0, &y1, &x0, &x1);
          for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++)
              s += ld(dt, x, ((i * g.h + iy) * g.w + ix) * g.c + ch);
          st(dt, y, o, s / (double)((y1 - y0) * (x1 - x0)));
        }
}

static void cpu_max_pool(mfi_kctx *k) { cpu_pool(k, true); }
static void cpu_avg_pool(mfi_kctx *k) { cpu_pool(k, false); }

/* Each output's gradient goes to its window's max (MaxPoolGrad) or is
 * shared by the window's valid elements (AvgPoolGrad), outputs in order. */
static void cpu_pool_grad(mfi_kctx *k, bool max)
{
  mfi_conv_geom g = mfi_conv_geom_of(k);
  const mf_tensor *dyt = k->in[k->op->nin - 1];
  mf_dtype dt = dyt->dtype;
  if (!mfi_outs_new(k, 1)) return;
  const void *x = max ? mfi_data(k->in[0]) : NULL, *dy = mfi_data(dyt);
  void *dx = mfi_data(k->out[0]);
  memset(dx, 0, (size_t)k->out[0]->numel * mf_dtype_size(dt));
  if (max) {
    size_t c = (size_t)(g.c > 0 ? g.c : 1);
    void *m = mfi_scratch(k, c * mf_dtype_size(dt));
    void *done = m ? mfi_scratch(k, c * mf_dtype_size(dt)) : NULL;
    if (done) max_pool_grad(&g, dt, x, dy, dx, m, done);
    return;
  }
  int64_t o = 0;
  for (int64_t i = 0; i < g.n; i++)
    for (int64_t oy = 0; oy < g.oh; oy++)
      for (int64_t ox = 0; ox < g.ow; ox++)
        for (int64_t ch = 0; ch < g.c; ch++, o++) {
          int64_t y0, y1, x0, x1;
          window(&g, oy, ox, &y0, &y1, &x0, &x1);
          double v = ld(dt, dy, o) / (double)((y1 - y0) * (x1 - x0));
          for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
              int64_t j = ((i * g.h + iy) * g.w + ix) * g.c + ch;
              st(dt, dx, j, ld(dt, dx, j) + v);
            }
        }
}

static void cpu_max_pool_grad(mfi_kctx *k) { cpu_pool_grad(k, true); }
static void cpu_avg_pool_grad(mfi_kctx *k) { cpu_pool_grad(k, false); }

/* ---------------------------------------------------------------- gradients */

static const char *const CONV_ATTRS[] = {"strides", "padding", "dilations", "data_format", NULL};
static const char *const POOL_ATTRS[] = {"ksize", "strides", "padding", "data_format", NULL};

static mf_output build(mfi_grad_ctx *g, const char *type, const char *const *attrs, int n,
                       mf_output a, mf_output b, mf_output c)
{
  mf_op_desc *d = mfi_gb_begin(g, type);
  if (d) {
    mf_op_add_input(d, a), mf_op_add_input(d, b);
    if (n == 3) mf_op_add_input(d, c);
    for (int i = 0; attrs[i]; i++) mfi_gb_copy_attr(d, g->op, attrs[i]);
  }
  return mfi_gb_finish(g, d, 0);
}

static mf_output conv3(mfi_grad_ctx *g, const char *type, mf_output a, mf_output b, mf_output c)
{
  return build(g, type, CONV_ATTRS, 3, a, b, c);
}

static mf_output shape_of(mfi_grad_ctx *g, mf_output t) { return mfi_gb1(g, "Shape", t); }

/* y = conv(x, f): dx = BackpropInput(shape(x), f, dy), df = BackpropFilter(x, shape(f), dy). */
static void grad_conv(mfi_grad_ctx *g)
{
  mf_output x = g->op->inputs[0], f = g->op->inputs[1], dy = g->dy[0];
  g->dx[0] = conv3(g, "Conv2DBackpropInput", shape_of(g, x), f, dy);
  g->dx[1] = conv3(g, "Conv2DBackpropFilter", x, shape_of(g, f), dy);
}

/* y = BackpropInput(sizes, f, d), linear in f and in d. */
static void grad_bp_input(mfi_grad_ctx *g)
{
  mf_output f = g->op->inputs[1], d = g->op->inputs[2], dy = g->dy[0], none = {0};
  g->dx[1] = conv3(g, "Conv2DBackpropFilter", dy, shape_of(g, f), d);
  g->dx[2] = build(g, "Conv2D", CONV_ATTRS, 2, dy, f, none);
}

/* y = BackpropFilter(x, sizes, d), linear in x and in d. */
static void grad_bp_filter(mfi_grad_ctx *g)
{
  mf_output x = g->op->inputs[0], d = g->op->inputs[2], dy = g->dy[0], none = {0};
  g->dx[0] = conv3(g, "Conv2DBackpropInput", shape_of(g, x), dy, d);
  g->dx[2] = build(g, "Conv2D", CONV_ATTRS, 2, x, dy, none);
}

static void grad_max_pool(mfi_grad_ctx *g)
{
  g->dx[0] =
      build(g, "MaxPoolGrad", POOL_ATTRS, 3, g->op->inputs[0], (mf_output){g->op, 0}, g->dy[0]);
}

static void grad_avg_pool(mfi_grad_ctx *g)
{
  mf_output none = {0};
  g->dx[0] = build(g, "AvgPoolGrad", POOL_ATTRS, 2, shape_of(g, g->op->inputs[0]), g->dy[0], none);
}

/* AvgPoolGrad is linear in its gradient input: the pool again. */
static void grad_avg_pool_grad(mfi_grad_ctx *g)
{
  mf_op_desc *d = mfi_gb_begin(g, "AvgPool");
  if (d) {
    mf_op_add_input(d, g->dy[0]);
    for (int i = 0; POOL_ATTRS[i]; i++) mfi_gb_copy_attr(d, g->op, POOL_ATTRS[i]);
  }
  g->dx[1] = mfi_gb_finish(g, d, 0);
}

/* ---------------------------------------------------------------- registry */

#define CONV_ATTR_DOC                                                                              \
  "strides: ints; padding: string; dilations: ints?; data_format: string?; use_cudnn_on_gpu: "     \
  "bool = true"
#define POOL_ATTR_DOC "ksize: ints; strides: ints; padding: string; data_format: string?"

mfi_opdef mfi_ops_conv[] = {
    {.type = "Conv2D",
     .doc = "Convolution (2-D) of NHWC input with an HWIO filter (strides, SAME/VALID, dilations).",
     .inputs = "input, filter",
     .outputs = "output",
     .attrs = CONV_ATTR_DOC,
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_conv,
     .prepare = prepare_conv,
     .kernel = {[MFI_DEVICE_CPU] = cpu_conv},
     .grad = grad_conv},
    {.type = "Conv2DBackpropInput",
     .doc = "Conv2D's gradient with respect to its input (also conv2d_transpose).",
     .inputs = "input_sizes, filter, out_backprop",
     .outputs = "output",
     .attrs = CONV_ATTR_DOC,
     .min_inputs = 3,
     .max_inputs = 3,
     .infer = infer_bp_input,
     .prepare = prepare_bp_input,
     .kernel = {[MFI_DEVICE_CPU] = cpu_bp_input},
     .host_in = 1u << 0,
     .grad = grad_bp_input},
    {.type = "Conv2DBackpropFilter",
     .doc = "Conv2D's gradient with respect to its filter.",
     .inputs = "input, filter_sizes, out_backprop",
     .outputs = "output",
     .attrs = CONV_ATTR_DOC,
     .min_inputs = 3,
     .max_inputs = 3,
     .infer = infer_bp_filter,
     .prepare = prepare_bp_filter,
     .kernel = {[MFI_DEVICE_CPU] = cpu_bp_filter},
     .host_in = 1u << 1,
     .grad = grad_bp_filter},
    {.type = "MaxPool",
     .doc = "Max over each ksize window of NHWC input (padding ignored).",
     .inputs = "input",
     .outputs = "output",
     .attrs = POOL_ATTR_DOC,
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_max_pool,
     .prepare = prepare_max_pool,
     .kernel = {[MFI_DEVICE_CPU] = cpu_max_pool},
     .grad = grad_max_pool},
    {.type = "MaxPoolGrad",
     .doc = "MaxPool's gradient: each output's gradient to its window's (first) max.",
     .inputs = "orig_input, orig_output, grad",
     .outputs = "output",
     .attrs = POOL_ATTR_DOC,
     .min_inputs = 3,
     .max_inputs = 3,
     .infer = infer_max_pool_grad,
     .prepare = prepare_max_pool_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_max_pool_grad}},
    {.type = "AvgPool",
     .doc = "Mean over each ksize window of NHWC input (of the valid elements under SAME).",
     .inputs = "value",
     .outputs = "output",
     .attrs = POOL_ATTR_DOC,
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_avg_pool,
     .prepare = prepare_avg_pool,
     .kernel = {[MFI_DEVICE_CPU] = cpu_avg_pool},
     .grad = grad_avg_pool},
    {.type = "AvgPoolGrad",
     .doc = "AvgPool's gradient: each output's gradient shared by its window's valid elements.",
     .inputs = "orig_input_shape, grad",
     .outputs = "output",
     .attrs = POOL_ATTR_DOC,
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_avg_pool_grad,
     .prepare = prepare_avg_pool_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_avg_pool_grad},
     .host_in = 1u << 0,
     .grad = grad_avg_pool_grad},
    {0},
};
