/* Selection and rearrangement ops with kernels of their own: top-k,
 * padding, reversal, gather_nd / scatter_nd, Where, cumulative sums and
 * products. Positions and axes count from 1, as everywhere in moonflow.
 * gpu/index.cu holds the same kernels for the other devices. */
#include "shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_real(mf_dtype dt)
{
  return dt == MF_FLOAT32 || dt == MF_FLOAT64 || dt == MF_INT32 || dt == MF_INT64;
}

/* Whether element a orders before element b in a top-k row: larger, with
 * NaN above every number (as TF's TopKV2). */
static bool greater(mf_dtype dt, const void *p, int64_t a, int64_t b)
{
  switch (dt) {
  case MF_FLOAT32: {
    float x = ((const float *)p)[a], y = ((const float *)p)[b];
    return x > y || (x != x && y == y);
  }
  case MF_FLOAT64: {
    double x = ((const double *)p)[a], y = ((const double *)p)[b];
    return x > y || (x != x && y == y);
  }
  case MF_INT32: return ((const int32_t *)p)[a] > ((const int32_t *)p)[b];
  default: return ((const int64_t *)p)[a] > ((const int64_t *)p)[b];
  }
}

/* ---------------------------------------------------------------- TopKV2, TopKGrad */

/* values and indices: input's shape with the last dimension k. */
static bool top_k_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *x, mfi_meta *out,
                        int64_t *kk)
{
  bool sorted; /* the kernel always sorts: a valid order for sorted = false too */
  mfi_ints kv;
  int has = mfi_ints_arg(c, k, "k", 1, true, &kv);
  if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs an integer attribute 'k'");
  if (has <= 0 || !mfi_check_bool(c, "sorted", false, true, &sorted)) return false;
  if (!is_real(x->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "input must be float32, float64, int32 or int64, got %s",
                    mf_dtype_name(x->dtype));
    return false;
  }
  if (x->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "input must have rank >= 1, got a scalar");
    return false;
  }
  *kk = kv.v[0];
  if (*kk != MFI_UNKNOWN && *kk < 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "k must be >= 0, got %lld", (long long)*kk);
    return false;
  }
  out[0] = *x;
  out[1].dtype = MF_INT32;
  out[1].ndim = x->ndim;
  if (x->ndim < 0) return true;
  int64_t n = x->dims[x->ndim - 1];
  if (*kk != MFI_UNKNOWN && n >= 0 && *kk > n) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "k is %lld but the last dimension has only %lld",
                    (long long)*kk, (long long)n);
    return false;
  }
  if (n > INT32_MAX) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "the last dimension (%lld) is too long for int32 indices", (long long)n);
    return false;
  }
  out[0].dims[x->ndim - 1] = *kk == MFI_UNKNOWN ? -1 : *kk;
  memcpy(out[1].dims, out[0].dims, sizeof out[0].dims);
  return true;
}

static void infer_top_k(mfi_infer_ctx *c)
{
  int64_t kk;
  if (mfi_set_outputs(c, 2)) top_k_shape(c, NULL, &c->in[0], c->op->out, &kk);
}

/* params[0]: k. */
static void prepare_top_k(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  top_k_shape(&c, k, &xm, k->shapes, &k->params[0]);
}

/* A bottom-up merge sort of the positions p[0..n) by `greater`, stable (so
 * equal values keep the lower index first); tmp has room for n. */
static void sort_row(mf_dtype dt, const void *row, int32_t *p, int32_t *tmp, int64_t n)
{
  for (int64_t w = 1; w < n; w *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * w) {
      int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      int64_t a = lo, b = mid, o = lo;
      while (a < mid && b < hi) tmp[o++] = greater(dt, row, p[b], p[a]) ? p[b++] : p[a++];
      while (a < mid) tmp[o++] = p[a++];
      while (b < hi) tmp[o++] = p[b++];
    }
    memcpy(p, tmp, sizeof *p * (size_t)n);
  }
}

/* Each row, larger first (NaN first of all) and the lower index first among
 * equals (TF's order): a sorted insertion for small k (the GPU's way), a
 * merge sort of the whole row for large k. The indices output holds the
 * 0-based positions until the values are copied, then counts from 1. */
static void cpu_top_k(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int64_t kk = k->params[0];
  if (!mfi_outs_new(k, 2)) return;
  int64_t n = x->dims[x->ndim - 1], rows = n ? x->numel / n : 0;
  size_t es = mf_dtype_size(x->dtype);
  int32_t *idx = mfi_data(k->out[1]), *all = NULL;
  char *vals = mfi_data(k->out[0]);
  const char *src = mfi_data(x);
  if (kk == 0 || rows == 0) return;
  if (kk > 32 && !(all = mfi_scratch(k, sizeof(int32_t) * 2 * (size_t)n))) {
    mfi_drop_outputs(k, 2);
    return;
  }
  for (int64_t r = 0; r < rows; r++) {
    const void *row = src + r * n * (int64_t)es;
    int32_t *list = idx + r * kk;
    if (all) {
      for (int64_t i = 0; i < n; i++) all[i] = (int32_t)i;
      sort_row(x->dtype, row, all, all + n, n);
      memcpy(list, all, sizeof *list * (size_t)kk);
    } else {
      int64_t cnt = 0;
      for (int64_t i = 0; i < n; i++) {
        if (cnt == kk && !greater(x->dtype, row, i, list[kk - 1])) continue;
        int64_t p = cnt < kk ? cnt++ : kk - 1;
        while (p > 0 && greater(x->dtype, row, i, list[p - 1])) list[p] = list[p - 1], p--;
        list[p] = (int32_t)i;
      }
    }
    for (int64_t j = 0; j < kk; j++) {
      memcpy(vals + (r * kk + j) * (int64_t)es, (const char *)row + list[j] * (int64_t)es, es);
      list[j]++;
    }
  }
}

/* TopKGrad(dy, indices, input): zeros of input's shape, each row's dy at
 * its 1-based indices. */
static void infer_top_k_grad(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  if (!mfi_is_float(c->in[0].dtype) || c->in[1].dtype != MF_INT32) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs float values and int32 indices");
    return;
  }
  c->op->out[0] = c->in[2];
  c->op->out[0].dtype = c->in[0].dtype;
}

static void cpu_top_k_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0], *ids = k->in[1], *x = k->in[2];
  if (!mfi_out_new(k, 0, dy->dtype, x->ndim, x->dims)) return;
  mf_tensor *y = k->out[0];
  size_t es = mf_dtype_size(dy->dtype);
  memset(mfi_data(y), 0, mf_tensor_nbytes(y));
  int64_t n = x->ndim ? x->dims[x->ndim - 1] : 1, rows = n ? x->numel / n : 0;
  int64_t kk = dy->ndim ? dy->dims[dy->ndim - 1] : 1;
  const int32_t *iv = mfi_data(ids);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < kk; j++)
      memcpy((char *)mfi_data(y) + (r * n + iv[r * kk + j] - 1) * (int64_t)es,
             (const char *)mfi_data(dy) + (r * kk + j) * (int64_t)es, es);
}

static void grad_top_k(mfi_grad_ctx *g)
{
  if (mfi_is_none(g->dy[0])) return;
  g->dx[0] = mfi_gb3(g, "TopKGrad", g->dy[0], (mf_output){g->op, 1}, g->op->inputs[0]);
}

/* ---------------------------------------------------------------- InTopKV2 */

static bool in_top_k_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *p,
                           const mfi_meta *t, mfi_meta *out, int64_t *kk)
{
  mfi_ints kv;
  int has = mfi_ints_arg(c, k, "k", 2, true, &kv);
  if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs an integer attribute 'k'");
  if (has <= 0) return false;
  if (!mfi_is_float(p->dtype) || !mfi_is_index_dtype(t->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "needs float predictions and int32/int64 targets, got %s and %s",
                    mf_dtype_name(p->dtype), mf_dtype_name(t->dtype));
    return false;
  }
  if ((p->ndim >= 0 && p->ndim != 2) || (t->ndim >= 0 && t->ndim != 1)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "predictions must be a [batch, classes] matrix and targets a [batch] vector");
    return false;
  }
  int64_t b = -1;
  if ((p->ndim == 2 && !mfi_merge_dim(p->dims[0], t->ndim == 1 ? t->dims[0] : -1, &b))) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "predictions have %lld rows but targets %lld",
                    (long long)p->dims[0], (long long)t->dims[0]);
    return false;
  }
  if (p->ndim != 2 && t->ndim == 1) b = t->dims[0];
  *kk = kv.v[0];
  out->dtype = MF_BOOL;
  out->ndim = 1;
  out->dims[0] = b;
  return true;
}

static void infer_in_top_k(mfi_infer_ctx *c)
{
  int64_t kk;
  if (mfi_set_outputs(c, 1)) in_top_k_shape(c, NULL, &c->in[0], &c->in[1], c->op->out, &kk);
}

static void prepare_in_top_k(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  in_top_k_shape(&c, k, &in[0], &in[1], k->shapes, &k->params[0]);
}

/* A target is in the top k when fewer than k classes score strictly more;
 * an out-of-range target or a non-finite score is not (TF's rule). */
static void cpu_in_top_k(mfi_kctx *k)
{
  const mf_tensor *p = k->in[0], *t = k->in[1];
  int64_t kk = k->params[0], rows = p->dims[0], n = p->dims[1];
  if (!mfi_outs_new(k, 1)) return;
  bool *out = mfi_data(k->out[0]);
  for (int64_t r = 0; r < rows; r++) {
    int64_t id = mfi_get_i(t->dtype, mfi_data(t), r);
    out[r] = false;
    if (id < 1 || id > n) continue;
    double v = mfi_get_f(p->dtype, mfi_data(p), r * n + id - 1);
    if (!isfinite(v)) continue;
    int64_t above = 0;
    for (int64_t j = 0; j < n; j++) above += mfi_get_f(p->dtype, mfi_data(p), r * n + j) > v;
    out[r] = above < kk;
  }
}

/* ---------------------------------------------------------------- PadV2, MirrorPad, PadGrad */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_SYMMETRIC };

/* The op's mode: PadV2 pads with a constant; MirrorPad and PadGrad name theirs. */
static int pad_mode(mfi_infer_ctx *c)
{
  const mf_op *op = c->op;
  if (strcmp(op->def->type, "PadV2") == 0) return PAD_CONSTANT;
  const mfi_attr *a = mfi_attr_find(op, "mode");
  const char *s = a && a->kind == MFI_A_STRING ? a->s : NULL;
  bool grad = strcmp(op->def->type, "PadGrad") == 0;
  if (s && grad && strcmp(s, "CONSTANT") == 0) return PAD_CONSTANT;
  if (s && strcmp(s, "REFLECT") == 0) return PAD_REFLECT;
  if (s && strcmp(s, "SYMMETRIC") == 0) return PAD_SYMMETRIC;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a string attribute 'mode': %s",
                  grad ? "CONSTANT, REFLECT or SYMMETRIC" : "REFLECT or SYMMETRIC");
  return -1;
}

/* The paddings: attribute "paddings" (before, after for each dimension) or
 * input 1, an int32/int64 [rank, 2] matrix in host memory (read in prepare;
 * unknown at inference). *n: the rank they cover (-1 unknown). */
static bool pad_arg(mfi_infer_ctx *c, const mfi_kctx *k, int64_t *pad, int *n)
{
  const mf_op *op = c->op;
  if (op->nin > 1) {
    mfi_meta m = k ? mfi_tensor_meta(k->in[1]) : c->in[1];
    if (!mfi_is_index_dtype(m.dtype) || (m.ndim >= 0 && m.ndim != 2) ||
        (m.ndim == 2 && m.dims[1] >= 0 && m.dims[1] != 2)) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "paddings must be an int32 or int64 [rank, 2] matrix, got %s of rank %d",
                      mf_dtype_name(m.dtype), m.ndim);
      return false;
    }
    *n = m.ndim == 2 ? (int)(m.dims[0] > MF_MAX_DIMS ? MF_MAX_DIMS + 1 : m.dims[0]) : -1;
    if (*n > MF_MAX_DIMS) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "paddings has more than %d rows", MF_MAX_DIMS);
      return false;
    }
    for (int i = 0; i < 2 * *n; i++)
      pad[i] = k ? mfi_get_i(m.dtype, mfi_data(k->in[1]), i) : MFI_UNKNOWN;
    return true;
  }
  const int64_t *v;
  int cnt;
  int has = mfi_check_ints(c, "paddings", &v, &cnt);
  if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'paddings' attribute or input");
  if (has <= 0) return false;
  if (cnt % 2 || cnt / 2 > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "attribute 'paddings' must hold 2 integers per dimension, got %d", cnt);
    return false;
  }
  *n = cnt / 2;
  memcpy(pad, v, sizeof *v * (size_t)cnt);
  return true;
}

/* The padded shape (or for PadGrad the unpadded one); pad gets before and
 * after for each dimension, *mode the mode. */
static bool pad_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *x, mfi_meta *out,
                      int64_t *pad, int *mode)
{
  const mf_op *op = c->op;
  bool grad = strcmp(op->def->type, "PadGrad") == 0;
  double cv;
  int n;
  if ((*mode = pad_mode(c)) < 0 || !pad_arg(c, k, pad, &n) ||
      !mfi_check_float(c, "constant_values", false, 0, &cv))
    return false;
  if (grad && !mfi_is_float(x->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a float gradient, got %s",
                    mf_dtype_name(x->dtype));
    return false;
  }
  if (x->ndim >= 0 && n >= 0 && n != x->ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "paddings has %d rows for an input of rank %d", n,
                    x->ndim);
    return false;
  }
  out->dtype = x->dtype;
  out->ndim = x->ndim >= 0 ? x->ndim : n;
  for (int d = 0; d < out->ndim; d++) {
    int64_t b = n >= 0 ? pad[2 * d] : MFI_UNKNOWN, a = n >= 0 ? pad[2 * d + 1] : MFI_UNKNOWN;
    int64_t dim = x->ndim >= 0 ? x->dims[d] : -1;
    if ((b != MFI_UNKNOWN && b < 0) || (a != MFI_UNKNOWN && a < 0)) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "paddings of dimension %d must be >= 0, got %lld, %lld", d + 1, (long long)b,
                      (long long)a);
      return false;
    }
    if (b == MFI_UNKNOWN || a == MFI_UNKNOWN || dim < 0) {
      out->dims[d] = -1;
      continue;
    }
    int64_t res = grad ? dim - b - a : dim + b + a, src = grad ? res : dim;
    if (res < 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "paddings %lld, %lld exceed dimension %d of size %lld", (long long)b,
                      (long long)a, d + 1, (long long)dim);
      return false;
    }
    int64_t most = *mode == PAD_REFLECT ? src - 1 : src;
    if (*mode != PAD_CONSTANT && (b > most || a > most)) {
      mfi_infer_error(
          c, MF_INVALID_ARGUMENT,
          "%s paddings of dimension %d (size %lld) must be at most %lld, got %lld, %lld",
          *mode == PAD_REFLECT ? "REFLECT" : "SYMMETRIC", d + 1, (long long)src,
          (long long)(most < 0 ? 0 : most), (long long)b, (long long)a);
      return false;
    }
    out->dims[d] = res;
  }
  return true;
}

static void infer_pad(mfi_infer_ctx *c)
{
  int64_t pad[2 * MF_MAX_DIMS];
  int mode;
  if (mfi_set_outputs(c, 1)) pad_shape(c, NULL, &c->in[0], c->op->out, pad, &mode);
}

/* params: before and after for each dimension. */
static void prepare_pad(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  int mode;
  pad_shape(&c, k, &xm, k->shapes, k->params, &mode);
}

/* Where padded position p (0-based) of a dimension of size n with `before`
 * in front reads from: -1 for the constant. */
static int64_t pad_source(int mode, int64_t p, int64_t before, int64_t n)
{
  int64_t s = p - before;
  if (s >= 0 && s < n) return s;
  if (mode == PAD_CONSTANT) return -1;
  if (mode == PAD_REFLECT) return s < 0 ? -s : 2 * n - 2 - s;
  return s < 0 ? -s - 1 : 2 * n - 1 - s;
}

static int op_mode(const mf_op *op)
{
  const mfi_attr *a = mfi_attr_find(op, "mode");
  if (!a || strcmp(op->def->type, "PadV2") == 0 || strcmp(a->s, "CONSTANT") == 0)
    return PAD_CONSTANT;
  return strcmp(a->s, "REFLECT") == 0 ? PAD_REFLECT : PAD_SYMMETRIC;
}

static void cpu_pad(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_outs_new(k, 1)) return;
  mf_tensor *y = k->out[0];
  int nd = x->ndim, mode = op_mode(k->op);
  size_t es = mf_dtype_size(x->dtype);
  char cv[8];
  mfi_set_f(x->dtype, cv, 0, mfi_attr_float(k->op, "constant_values", 0));
  int64_t st[MF_MAX_DIMS];
  mfi_row_strides(nd, x->dims, st);
  char *dst = mfi_data(y);
  const char *src = mfi_data(x);
  for (int64_t i = 0; i < y->numel; i++) {
    int64_t rest = i, off = 0;
    bool in = true;
    for (int d = nd - 1; d >= 0; d--) {
      int64_t s = pad_source(mode, rest % y->dims[d], k->params[2 * d], x->dims[d]);
      rest /= y->dims[d];
      if (s < 0) in = false;
      off += s * st[d];
    }
    memcpy(dst + i * (int64_t)es, in ? src + off * (int64_t)es : cv, es);
  }
}

/* The padded positions that read position s of a dimension of size n,
 * increasing: itself, and its mirror images in front and behind. */
static int pad_sinks(int mode, int64_t s, int64_t before, int64_t after, int64_t n, int64_t *out)
{
  int c = 0;
  if (mode == PAD_REFLECT && s >= 1 && s <= before) out[c++] = before - s;
  if (mode == PAD_SYMMETRIC && s <= before - 1) out[c++] = before - 1 - s;
  out[c++] = before + s;
  int64_t r = mode == PAD_REFLECT ? 2 * n - 2 - s : 2 * n - 1 - s; /* past the end */
  if (mode != PAD_CONSTANT && r >= n && r < n + after) out[c++] = before + r;
  return c;
}

/* dx (the unpadded shape) from dy: each element the sum of the dy elements
 * that read it, in increasing order of their position in dy. */
static void cpu_pad_grad(mfi_kctx *k)
{
  const mf_tensor *dy = k->in[0];
  if (!mfi_outs_new(k, 1)) return;
  mf_tensor *y = k->out[0];
  int nd = dy->ndim, mode = op_mode(k->op);
  int64_t st[MF_MAX_DIMS];
  mfi_row_strides(nd, dy->dims, st);
  for (int64_t i = 0; i < y->numel; i++) {
    int64_t sink[MF_MAX_DIMS][3], cnt[MF_MAX_DIMS], at[MF_MAX_DIMS], rest = i;
    for (int d = nd - 1; d >= 0; d--) {
      cnt[d] = pad_sinks(mode, rest % y->dims[d], k->params[2 * d], k->params[2 * d + 1],
                         y->dims[d], sink[d]);
      rest /= y->dims[d];
      at[d] = 0;
    }
    double acc64 = 0;
    float acc32 = 0;
    for (;;) {
      int64_t off = 0;
      for (int d = 0; d < nd; d++) off += sink[d][at[d]] * st[d];
      if (dy->dtype == MF_FLOAT32)
        acc32 += ((const float *)mfi_data(dy))[off];
      else
        acc64 += ((const double *)mfi_data(dy))[off];
      int d = nd - 1;
      while (d >= 0 && ++at[d] == cnt[d]) at[d--] = 0;
      if (d < 0) break;
    }
    if (dy->dtype == MF_FLOAT32)
      ((float *)mfi_data(y))[i] = acc32;
    else
      ((double *)mfi_data(y))[i] = acc64;
  }
}

static void grad_pad(mfi_grad_ctx *g)
{
  const mf_op *op = g->op;
  mf_op_desc *d = mfi_gb_begin(g, "PadGrad");
  if (d) mf_op_add_input(d, g->dy[0]);
  if (d && op->nin > 1) mf_op_add_input(d, op->inputs[1]);
  mfi_gb_copy_attr(d, op, "paddings");
  if (d && strcmp(op->def->type, "PadV2") == 0)
    mf_op_set_attr_string(d, "mode", "CONSTANT");
  else
    mfi_gb_copy_attr(d, op, "mode");
  g->dx[0] = mfi_gb_finish(g, d, 0);
}

/* ---------------------------------------------------------------- ReverseV2 */

/* rev[d]: whether attribute "axis" (1-based or negative, no repeats) names dimension d. */
static bool reverse_axes(mfi_infer_ctx *c, int rank, bool *rev)
{
  const int64_t *ax;
  int n;
  int has = mfi_check_ints(c, "axis", &ax, &n);
  if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs an 'axis' attribute");
  if (has <= 0) return false;
  for (int d = 0; d < MF_MAX_DIMS; d++) rev[d] = false;
  for (int i = 0; rank >= 0 && i < n; i++) {
    int a = mfi_axis(c, ax[i], rank, "axis");
    if (a < 0) return false;
    if (rev[a]) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "axis names dimension %d twice", a + 1);
      return false;
    }
    rev[a] = true;
  }
  return true;
}

static void infer_reverse(mfi_infer_ctx *c)
{
  bool rev[MF_MAX_DIMS];
  if (mfi_set_outputs(c, 1) && reverse_axes(c, c->in[0].ndim, rev)) c->op->out[0] = c->in[0];
}

/* params[d]: 1 where dimension d is reversed. */
static void prepare_reverse(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  bool rev[MF_MAX_DIMS];
  if (!reverse_axes(&c, xm.ndim, rev)) return;
  k->shapes[0] = xm;
  for (int d = 0; d < xm.ndim; d++) k->params[d] = rev[d];
}

/* A strided copy that walks the reversed dimensions backwards. */
static void cpu_reverse(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, x->dims) || x->numel == 0) return;
  size_t es = mf_dtype_size(x->dtype);
  int64_t st[MF_MAX_DIMS], off = 0;
  mfi_row_strides(x->ndim, x->dims, st);
  for (int d = 0; d < x->ndim; d++)
    if (k->params[d]) off += (x->dims[d] - 1) * st[d], st[d] = -st[d];
  mfi_strided_copy(mfi_data(k->out[0]), (const char *)mfi_data(x) + off * (int64_t)es, es, x->ndim,
                   x->dims, st);
}

static void grad_reverse(mfi_grad_ctx *g)
{
  mf_op_desc *d = mfi_gb_begin(g, "ReverseV2");
  if (d) mf_op_add_input(d, g->dy[0]);
  mfi_gb_copy_attr(d, g->op, "axis");
  g->dx[0] = mfi_gb_finish(g, d, 0);
}

/* ---------------------------------------------------------------- ReverseSequence */

static bool revseq_shape(mfi_infer_ctx *c, const mfi_meta *x, const mfi_meta *len, mfi_meta *out,
                         int64_t *axes)
{
  int64_t s, b;
  if (!mfi_check_int(c, "seq_axis", true, 0, &s) || !mfi_check_int(c, "batch_axis", false, 1, &b))
    return false;
  if (!mfi_is_index_dtype(len->dtype) || (len->ndim >= 0 && len->ndim != 1)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "seq_lengths must be an int32 or int64 vector, got %s of rank %d",
                    mf_dtype_name(len->dtype), len->ndim);
    return false;
  }
  *out = *x;
  if (x->ndim < 0) return true;
  int sa = mfi_axis(c, s, x->ndim, "seq_axis"),
      ba = sa < 0 ? -1 : mfi_axis(c, b, x->ndim, "batch_axis");
  if (sa < 0 || ba < 0) return false;
  if (sa == ba) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "seq_axis and batch_axis are both dimension %d",
                    sa + 1);
    return false;
  }
  if (len->ndim == 1 && len->dims[0] >= 0 && x->dims[ba] >= 0 && len->dims[0] != x->dims[ba]) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "seq_lengths has %lld entries for a batch dimension of size %lld",
                    (long long)len->dims[0], (long long)x->dims[ba]);
    return false;
  }
  axes[0] = sa, axes[1] = ba;
  return true;
}

static void infer_revseq(mfi_infer_ctx *c)
{
  int64_t axes[2];
  if (mfi_set_outputs(c, 1)) revseq_shape(c, &c->in[0], &c->in[1], c->op->out, axes);
}

/* params[0], params[1]: the 0-based sequence and batch dimensions; every
 * length (host memory) within 0..the sequence dimension. */
static void prepare_revseq(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  if (!revseq_shape(&c, &in[0], &in[1], k->shapes, k->params)) return;
  const mf_tensor *len = k->in[1];
  int64_t most = in[0].dims[k->params[0]];
  for (int64_t i = 0; i < len->numel; i++) {
    int64_t v = mfi_get_i(len->dtype, mfi_data(len), i);
    if (v < 0 || v > most) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "seq_lengths[%lld] is %lld, outside 0..%lld (the sequence dimension)",
                   (long long)i + 1, (long long)v, (long long)most);
      return;
    }
  }
}

static void cpu_revseq(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0], *len = k->in[1];
  if (!mfi_outs_new(k, 1)) return;
  int sa = (int)k->params[0], ba = (int)k->params[1];
  size_t es = mf_dtype_size(x->dtype);
  int64_t st[MF_MAX_DIMS];
  mfi_row_strides(x->ndim, x->dims, st);
  char *dst = mfi_data(k->out[0]);
  const char *src = mfi_data(x);
  for (int64_t i = 0; i < x->numel; i++) {
    int64_t s = i / st[sa] % x->dims[sa], b = i / st[ba] % x->dims[ba];
    int64_t n = mfi_get_i(len->dtype, mfi_data(len), b);
    int64_t from = s < n ? i + (n - 1 - 2 * s) * st[sa] : i;
    memcpy(dst + i * (int64_t)es, src + from * (int64_t)es, es);
  }
}

static void grad_revseq(mfi_grad_ctx *g)
{
  mf_op_desc *d = mfi_gb_begin(g, "ReverseSequence");
  if (d) mf_op_add_input(d, g->dy[0]), mf_op_add_input(d, g->op->inputs[1]);
  mfi_gb_copy_attr(d, g->op, "seq_axis");
  mfi_gb_copy_attr(d, g->op, "batch_axis");
  g->dx[0] = mfi_gb_finish(g, d, 0);
}

/* ---------------------------------------------------------------- GatherNd, ScatterNd */

/* The slices that index rows name: ids [..., m] (1-based, host memory)
 * into dims[0..m); off[j] = row j's slice, counted in slices (off NULL:
 * only checked). false (the op's error set) at an index out of range. */
static bool nd_offsets(mfi_kctx *k, const mf_tensor *ids, const int64_t *dims, int64_t *off)
{
  int m = (int)ids->dims[ids->ndim - 1];
  int64_t rows = mfi_dims_prod(ids->dims, 0, ids->ndim - 1);
  for (int64_t j = 0; j < rows; j++) {
    int64_t o = 0;
    for (int d = 0; d < m; d++) {
      int64_t v = mfi_get_i(ids->dtype, mfi_data(ids), j * m + d);
      if (v < 1 || v > dims[d]) {
        mfi_op_error(k->status, MF_OUT_OF_RANGE, k->op,
                     "index %lld (row %lld of indices, entry %d) is out of range 1..%lld",
                     (long long)v, (long long)j + 1, d + 1, (long long)dims[d]);
        return false;
      }
      o = o * dims[d] + v - 1;
    }
    if (off) off[j] = o;
  }
  return true;
}

/* indices [..., m] into a tensor of shape `full` (rank n): the slices have
 * shape full[m..n); out gets indices[..-1] followed by that (gather). For
 * scatter, `upd` must have that shape. */
static bool nd_shape(mfi_infer_ctx *c, const mfi_meta *full, const mfi_meta *ids,
                     const mfi_meta *upd, mfi_meta *out)
{
  if (!mfi_is_index_dtype(ids->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "indices must be int32 or int64, got %s",
                    mf_dtype_name(ids->dtype));
    return false;
  }
  if (ids->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "indices must have rank >= 1, got a scalar");
    return false;
  }
  out->dtype = full->dtype;
  out->ndim = -1;
  if (full->ndim < 0 || ids->ndim < 0 || ids->dims[ids->ndim - 1] < 0) return true;
  int64_t m = ids->dims[ids->ndim - 1];
  if (m > full->ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "indices' last dimension (%lld) exceeds the rank %d it indexes", (long long)m,
                    full->ndim);
    return false;
  }
  int r = ids->ndim - 1 + full->ndim - (int)m;
  if (r > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the result would have rank %d (at most %d)", r,
                    MF_MAX_DIMS);
    return false;
  }
  out->ndim = r;
  for (int d = 0; d < ids->ndim - 1; d++) out->dims[d] = ids->dims[d];
  for (int d = (int)m; d < full->ndim; d++) out->dims[ids->ndim - 1 + d - m] = full->dims[d];
  if (!upd) return true;
  bool ok = upd->ndim < 0 || upd->ndim == r;
  for (int d = 0; ok && upd->ndim >= 0 && d < r; d++)
    ok = upd->dims[d] < 0 || out->dims[d] < 0 || upd->dims[d] == out->dims[d];
  if (!ok) {
    char a[96], b[96];
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "updates have shape %s, expected %s",
                    mfi_meta_str(upd, a, sizeof a), mfi_meta_str(out, b, sizeof b));
    return false;
  }
  return true;
}

static void infer_gather_nd(mfi_infer_ctx *c)
{
  if (mfi_set_outputs(c, 1)) nd_shape(c, &c->in[0], &c->in[1], NULL, c->op->out);
}

static void prepare_gather_nd(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  if (nd_shape(&c, &in[0], &in[1], NULL, k->shapes)) nd_offsets(k, k->in[1], in[0].dims, NULL);
}

/* Slice offsets of the index rows (host scratch); NULL with the op's error set. */
static int64_t *offsets(mfi_kctx *k, const mf_tensor *ids, const int64_t *dims, int64_t *rows)
{
  *rows = mfi_dims_prod(ids->dims, 0, ids->ndim - 1);
  int64_t *off = mfi_scratch(k, sizeof(int64_t) * (size_t)(*rows ? *rows : 1));
  if (off && !nd_offsets(k, ids, dims, off)) return NULL;
  return off;
}

static void cpu_gather_nd(mfi_kctx *k)
{
  const mf_tensor *p = k->in[0], *ids = k->in[1];
  int m = (int)ids->dims[ids->ndim - 1];
  int64_t rows, *off = offsets(k, ids, p->dims, &rows);
  if (!off || !mfi_outs_new(k, 1)) return;
  size_t chunk = (size_t)mfi_dims_prod(p->dims, m, p->ndim) * mf_dtype_size(p->dtype);
  for (int64_t j = 0; j < rows && chunk; j++)
    memcpy((char *)mfi_data(k->out[0]) + j * chunk, (const char *)mfi_data(p) + off[j] * chunk,
           chunk);
}

static void grad_gather_nd(mfi_grad_ctx *g)
{
  mf_output ids = g->op->inputs[1];
  g->dx[0] = mfi_gb3(g, "ScatterNd", ids, g->dy[0], mfi_gb1(g, "Shape", g->op->inputs[0]));
}

/* ScatterNd(indices, updates[, shape]): zeros of shape, each updates slice
 * added at its index (repeats add up, in order). */
static bool scatter_nd_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *ids,
                             const mfi_meta *upd, mfi_meta *out)
{
  mfi_ints s;
  int has = mfi_shape_arg(c, k, "shape", 2, false, &s);
  if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'shape' attribute or input");
  if (has <= 0) return false;
  if (upd->dtype == MF_BOOL) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "updates must be numeric, got bool");
    return false;
  }
  mfi_meta full, slices;
  mfi_meta_from_ints(&s, upd->dtype, &full);
  if (!nd_shape(c, &full, ids, upd, &slices)) return false;
  *out = full;
  return true;
}

static void infer_scatter_nd(mfi_infer_ctx *c)
{
  if (mfi_set_outputs(c, 1)) scatter_nd_shape(c, NULL, &c->in[0], &c->in[1], c->op->out);
}

static void prepare_scatter_nd(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  if (scatter_nd_shape(&c, k, &in[0], &in[1], k->shapes))
    nd_offsets(k, k->in[0], k->shapes[0].dims, NULL);
}

static void cpu_scatter_nd(mfi_kctx *k)
{
  const mf_tensor *ids = k->in[0], *u = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  int m = (int)ids->dims[ids->ndim - 1];
  int64_t rows, *off = offsets(k, ids, om->dims, &rows);
  if (!off || !mfi_outs_new(k, 1)) return;
  mf_tensor *y = k->out[0];
  int64_t w = mfi_dims_prod(om->dims, m, om->ndim);
  void *yv = mfi_data(y);
  const void *uv = mfi_data(u);
  memset(yv, 0, mf_tensor_nbytes(y));
  for (int64_t j = 0; j < rows; j++)
    for (int64_t e = 0; e < w; e++) {
      int64_t to = off[j] * w + e, from = j * w + e;
      switch (u->dtype) {
      case MF_FLOAT32: ((float *)yv)[to] += ((const float *)uv)[from]; break;
      case MF_FLOAT64: ((double *)yv)[to] += ((const double *)uv)[from]; break;
      case MF_INT32: /* integers wrap */
        ((uint32_t *)yv)[to] += ((const uint32_t *)uv)[from];
        break;
      case MF_INT64: ((uint64_t *)yv)[to] += ((const uint64_t *)uv)[from]; break;
      default: ((uint8_t *)yv)[to] += ((const uint8_t *)uv)[from]; break;
      }
    }
}

static void grad_scatter_nd(mfi_grad_ctx *g)
{
  g->dx[1] = mfi_gb2(g, "GatherNd", g->dy[0], g->op->inputs[0]);
}

/* ---------------------------------------------------------------- Where */

/* Where(condition): the 1-based coordinates of its non-zero elements, one
 * row each in row-major order, as int64 [count, rank] in host memory (the
 * ids of a gather, which reads them there). */
static void infer_where(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  mfi_meta *o = c->op->out;
  o->dtype = MF_INT64;
  o->ndim = 2;
  o->dims[0] = -1;
  o->dims[1] = c->in[0].ndim;
}

static void cpu_where(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const void *v = mfi_data(x);
  int64_t n = 0;
  for (int64_t i = 0; i < x->numel; i++) n += mfi_get_f(x->dtype, v, i) != 0;
  int64_t dims[2] = {n, x->ndim};
  if (!mfi_out_new(k, 0, MF_INT64, 2, dims)) return;
  int64_t *o = mfi_data(k->out[0]);
  for (int64_t i = 0; i < x->numel; i++) {
    if (mfi_get_f(x->dtype, v, i) == 0) continue;
    int64_t rest = i;
    for (int d = x->ndim - 1; d >= 0; d--) o[d] = rest % x->dims[d] + 1, rest /= x->dims[d];
    o += x->ndim;
  }
}

/* ---------------------------------------------------------------- Cumsum, Cumprod */

static bool cum_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, int64_t *axis)
{
  int64_t ax;
  bool ex, rev;
  if (!mfi_check_int(c, "axis", false, 1, &ax) ||
      !mfi_check_bool(c, "exclusive", false, false, &ex) ||
      !mfi_check_bool(c, "reverse", false, false, &rev))
    return false;
  if (!is_real(x->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "x must be float32, float64, int32 or int64, got %s",
                    mf_dtype_name(x->dtype));
    return false;
  }
  *out = *x;
  if (x->ndim < 0) return true;
  if (x->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "x must have rank >= 1, got a scalar");
    return false;
  }
  return (*axis = mfi_axis(c, ax, x->ndim, "axis")) >= 0;
}

static void infer_cum(mfi_infer_ctx *c)
{
  int64_t a;
  if (mfi_set_outputs(c, 1)) cum_shape(c, &c->in[0], c->op->out, &a);
}

/* params[0]: the 0-based axis. */
static void prepare_cum(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  cum_shape(&c, &xm, k->shapes, &k->params[0]);
}

/* One line along the axis at a time: floats accumulate in their own type
 * (as TF), integers in 64 bits that wrap. */
static void cpu_cum(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_outs_new(k, 1)) return;
  int a = (int)k->params[0];
  bool prod = strcmp(k->op->def->type, "Cumprod") == 0;
  bool ex = mfi_attr_bool(k->op, "exclusive", false), rev = mfi_attr_bool(k->op, "reverse", false);
  int64_t outer = mfi_dims_prod(x->dims, 0, a), n = x->dims[a];
  int64_t inner = mfi_dims_prod(x->dims, a + 1, x->ndim);
  const void *xv = mfi_data(x);
  void *yv = mfi_data(k->out[0]);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t e = 0; e < inner; e++) {
      float f32 = prod;
      double f64 = prod;
      uint64_t iv = prod;
      for (int64_t t = 0; t < n; t++) {
        int64_t at = (o * n + (rev ? n - 1 - t : t)) * inner + e;
        switch (x->dtype) {
        case MF_FLOAT32: {
          float v = ((const float *)xv)[at], before = f32;
          f32 = prod ? f32 * v : f32 + v;
          ((float *)yv)[at] = ex ? before : f32;
          break;
        }
        case MF_FLOAT64: {
          double v = ((const double *)xv)[at], before = f64;
          f64 = prod ? f64 * v : f64 + v;
          ((double *)yv)[at] = ex ? before : f64;
          break;
        }
        default: {
          uint64_t v = (uint64_t)mfi_get_i(x->dtype, xv, at), before = iv;
          iv = prod ? iv * v : iv + v;
          mfi_set_i(x->dtype, yv, at, (int64_t)(ex ? before : iv));
          break;
        }
        }
      }
    }
}

/* Cumsum(dy) the other way; Cumprod as TF: Cumsum(y * dy) the other way,
 * divided by x where x is not 0 and 0 where it is (TF's div_no_nan). */
static void grad_cum(mfi_grad_ctx *g)
{
  const mf_op *op = g->op;
  bool prod = strcmp(op->def->type, "Cumprod") == 0;
  mf_output dy = g->dy[0], x = op->inputs[0];
  if (prod) dy = mfi_gb2(g, "Mul", (mf_output){g->op, 0}, dy);
  mf_op_desc *d = mfi_gb_begin(g, "Cumsum");
  if (d) mf_op_add_input(d, dy);
  mfi_gb_copy_attr(d, op, "axis");
  mfi_gb_copy_attr(d, op, "exclusive");
  if (d) mf_op_set_attr_bool(d, "reverse", !mfi_attr_bool(op, "reverse", false));
  mf_output s = mfi_gb_finish(g, d, 0);
  if (!prod) {
    g->dx[0] = s;
    return;
  }
  mf_output zeros = mfi_gb1(g, "ZerosLike", x);
  mf_output nz = mfi_gb2(g, "NotEqual", x, zeros);
  mf_output safe = mfi_gb3(g, "Select", nz, x, mfi_gb1(g, "OnesLike", x));
  g->dx[0] = mfi_gb3(g, "Select", nz, mfi_gb2(g, "Div", s, safe), zeros);
}

/* ---------------------------------------------------------------- registry */

mfi_opdef mfi_ops_index[] = {
    {.type = "TopKV2",
     .doc = "The k largest entries of each last-axis row, largest first (the lower index first "
            "among equals), and their 1-based indices.",
     .inputs = "input, k?",
     .outputs = "values, indices",
     .attrs = "k: int?; sorted: bool = true",
     .min_inputs = 1,
     .max_inputs = 2,
     .infer = infer_top_k,
     .prepare = prepare_top_k,
     .kernel = {[MFI_DEVICE_CPU] = cpu_top_k},
     .host_in = 1u << 1,
     .grad = grad_top_k},
    {.type = "TopKGrad",
     .doc = "TopKV2's gradient: zeros of the input's shape with dy at the 1-based indices.",
     .inputs = "dy, indices, input",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 3,
     .max_inputs = 3,
     .infer = infer_top_k_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_top_k_grad}},
    {.type = "InTopKV2",
     .doc = "Whether each row's 1-based target is among its k largest predictions (ties count).",
     .inputs = "predictions, targets, k?",
     .outputs = "precision",
     .attrs = "k: int?",
     .min_inputs = 2,
     .max_inputs = 3,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_in_top_k,
     .prepare = prepare_in_top_k,
     .kernel = {[MFI_DEVICE_CPU] = cpu_in_top_k},
     .host_in = 1u << 2},
    {.type = "PadV2",
     .doc = "Pads with constant_values: paddings before and after each dimension (an attribute "
            "of 2 * rank integers, or a [rank, 2] host input).",
     .inputs = "input, paddings?",
     .outputs = "output",
     .attrs = "paddings: ints?; constant_values: float = 0",
     .min_inputs = 1,
     .max_inputs = 2,
     .infer = infer_pad,
     .prepare = prepare_pad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_pad},
     .host_in = 1u << 1,
     .grad = grad_pad},
    {.type = "MirrorPad",
     .doc = "Pads with mirror images, the edge excluded (REFLECT) or included (SYMMETRIC).",
     .inputs = "input, paddings?",
     .outputs = "output",
     .attrs = "paddings: ints?; mode: string",
     .min_inputs = 1,
     .max_inputs = 2,
     .infer = infer_pad,
     .prepare = prepare_pad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_pad},
     .host_in = 1u << 1,
     .grad = grad_pad},
    {.type = "PadGrad",
     .doc = "The gradient of PadV2 (mode CONSTANT: a crop) and MirrorPad (mirror images summed "
            "back).",
     .inputs = "dy, paddings?",
     .outputs = "output",
     .attrs = "paddings: ints?; mode: string",
     .min_inputs = 1,
     .max_inputs = 2,
     .infer = infer_pad,
     .prepare = prepare_pad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_pad_grad},
     .host_in = 1u << 1},
    {.type = "ReverseV2",
     .doc = "The tensor with the listed (1-based) dimensions reversed.",
     .inputs = "tensor",
     .outputs = "output",
     .attrs = "axis: ints",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_reverse,
     .prepare = prepare_reverse,
     .kernel = {[MFI_DEVICE_CPU] = cpu_reverse},
     .grad = grad_reverse},
    {.type = "ReverseSequence",
     .doc = "Reverses the first seq_lengths[b] entries along seq_axis of each batch_axis slice b.",
     .inputs = "input, seq_lengths",
     .outputs = "output",
     .attrs = "seq_axis: int; batch_axis: int = 1",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_revseq,
     .prepare = prepare_revseq,
     .kernel = {[MFI_DEVICE_CPU] = cpu_revseq},
     .host_in = 1u << 1,
     .grad = grad_revseq},
    {.type = "GatherNd",
     .doc = "The slices of params at index rows (the last dimension of indices, 1-based).",
     .inputs = "params, indices",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_gather_nd,
     .prepare = prepare_gather_nd,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gather_nd},
     .host_in = 1u << 1,
     .grad = grad_gather_nd},
    {.type = "ScatterNd",
     .doc = "Zeros of shape with each slice of updates added at its 1-based index row (repeats "
            "add up).",
     .inputs = "indices, updates, shape?",
     .outputs = "output",
     .attrs = "shape: ints?",
     .min_inputs = 2,
     .max_inputs = 3,
     .infer = infer_scatter_nd,
     .prepare = prepare_scatter_nd,
     .kernel = {[MFI_DEVICE_CPU] = cpu_scatter_nd},
     .host_in = 1u << 0 | 1u << 2,
     .grad = grad_scatter_nd},
    {.type = "Where",
     .doc = "The 1-based coordinates of the non-zero (true) elements, int64 [count, rank] in host "
            "memory.",
     .inputs = "condition",
     .outputs = "index",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_where,
     .kernel = {[MFI_DEVICE_CPU] = cpu_where},
     .host_out = 1u << 0},
    {.type = "Cumsum",
     .doc = "Running sums along a 1-based axis (exclusive: each leaves itself out; reverse: from "
            "the end).",
     .inputs = "x",
     .outputs = "out",
     .attrs = "axis: int = 1; exclusive: bool = false; reverse: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_cum,
     .prepare = prepare_cum,
     .kernel = {[MFI_DEVICE_CPU] = cpu_cum},
     .grad = grad_cum},
    {.type = "Cumprod",
     .doc = "Running products along a 1-based axis (exclusive, reverse as Cumsum).",
     .inputs = "x",
     .outputs = "out",
     .attrs = "axis: int = 1; exclusive: bool = false; reverse: bool = false",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_cum,
     .prepare = prepare_cum,
     .kernel = {[MFI_DEVICE_CPU] = cpu_cum},
     .grad = grad_cum},
    {0},
};
