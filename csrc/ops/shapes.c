/* Shape and element-copy helpers shared by the op families (declared in
 * shapes.h). */
#include "shapes.h"

#include <stdio.h>
#include <string.h>

mfi_meta mfi_tensor_meta(const mf_tensor *t)
{
  mfi_meta m;
  memset(&m, 0, sizeof m);
  m.dtype = t->dtype;
  m.ndim = t->ndim;
  if (t->ndim > 0) memcpy(m.dims, t->dims, sizeof(int64_t) * t->ndim);
  return m;
}

void mfi_input_metas(const mfi_kctx *k, int n, mfi_meta *m)
{
  for (int i = 0; i < n; i++) m[i] = mfi_tensor_meta(k->in[i]);
}

/* The op is only read; errors land in the kernel's status. */
mfi_infer_ctx mfi_prepare_infer_ctx(mfi_kctx *k, const mfi_meta *in)
{
  mfi_infer_ctx c = {k->op, in, k->status, NULL};
  return c;
}

int64_t mfi_dims_prod(const int64_t *dims, int from, int to)
{
  int64_t n = 1;
  for (int i = from; i < to; i++) n *= dims[i];
  return n;
}

void mfi_row_strides(int nd, const int64_t *dims, int64_t *st)
{
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

const char *mfi_meta_str(const mfi_meta *m, char *buf, size_t size)
{
  mfi_shape_str(m->ndim, m->dims, buf, size);
  return buf;
}

/* Element count of a static shape; -1 when anything is unknown. */
int64_t mfi_known_numel(const mfi_meta *m)
{
  if (m->ndim < 0) return -1;
  for (int i = 0; i < m->ndim; i++)
    if (m->dims[i] < 0) return -1;
  return mfi_numel(m->ndim, m->dims);
}

/* Two static dims that must agree: the known one wins; false on conflict. */
bool mfi_merge_dim(int64_t a, int64_t b, int64_t *out)
{
  if (a < 0) return *out = b, true;
  if (b < 0 || a == b) return *out = a, true;
  return false;
}

bool mfi_is_index_dtype(mf_dtype dt) { return dt == MF_INT32 || dt == MF_INT64; }

/* Releases outputs 0..n-1 after a later step failed. */
void mfi_drop_outputs(mfi_kctx *k, int n)
{
  for (int i = 0; i < n; i++) {
    mf_tensor_delete(k->out[i]);
    k->out[i] = NULL;
  }
}

bool mfi_outs_new(mfi_kctx *k, int n)
{
  for (int i = 0; i < n; i++)
    if (!mfi_out_new(k, i, k->shapes[i].dtype, k->shapes[i].ndim, k->shapes[i].dims)) {
      mfi_drop_outputs(k, i);
      return false;
    }
  return true;
}

/* Copies one strided row of `n` elements; typed for the common sizes since
 * a memcpy call per element would dominate. */
static void copy_row(char *dst, const char *src, size_t es, int64_t n, int64_t stride)
{
  switch (es) {
  case 1:
    for (int64_t i = 0; i < n; i++) dst[i] = src[i * stride];
    break;
  case 4: {
    uint32_t *d = (uint32_t *)dst;
    const uint32_t *s = (const uint32_t *)src;
    for (int64_t i = 0; i < n; i++) d[i] = s[i * stride];
    break;
  }
  case 8: {
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *s = (const uint64_t *)src;
    for (int64_t i = 0; i < n; i++) d[i] = s[i * stride];
    break;
  }
  default:
    for (int64_t i = 0; i < n; i++) memcpy(dst + i * es, src + i * stride * es, es);
  }
}

/* Fills the contiguous `dst` (shape dims) from `src` read with per-dimension
 * element strides: transpose and slice are both this. */
void mfi_strided_copy(char *dst, const char *src, size_t es, int nd, const int64_t *dims,
                      const int64_t *st)
{
  int64_t total = mfi_numel(nd, dims);
  if (total == 0) return;
  if (nd == 0) {
    memcpy(dst, src, es);
    return;
  }
  int64_t idx[MF_MAX_DIMS] = {0};
  int64_t inner = dims[nd - 1], rows = total / inner, off = 0;
  for (int64_t r = 0; r < rows; r++) {
    if (st[nd - 1] == 1)
      memcpy(dst, src + off * (int64_t)es, (size_t)inner * es);
    else
      copy_row(dst, src + off * (int64_t)es, es, inner, st[nd - 1]);
    dst += inner * (int64_t)es;
    for (int d = nd - 2; d >= 0; d--) {
      off += st[d];
      if (++idx[d] < dims[d]) break;
      off -= st[d] * dims[d];
      idx[d] = 0;
    }
  }
}

/* ---------------------------------------------------------------- integer-list arguments */

enum { FOLD_DEPTH = 16 }; /* how far back constant folding looks */

static void fold(mf_output t, mfi_ints *out, int depth);

/* Folds input i of op as a scalar: its value or MFI_UNKNOWN. */
static int64_t fold_scalar(const mf_op *op, int i, int depth)
{
  mfi_ints s;
  fold(op->inputs[i], &s, depth + 1);
  return s.n == 1 ? s.v[0] : MFI_UNKNOWN;
}

/* What is known before running of the int32/int64 scalar or vector `t`:
 * its length (-1 unknown) and each value (MFI_UNKNOWN where unknown), by a
 * few constant-folding rules over the ops that build shapes. */
static void fold(mf_output t, mfi_ints *out, int depth)
{
  const mf_op *op = t.op;
  const mfi_meta *m = &op->out[t.index];
  int64_t len = m->ndim == 0 ? 1 : m->ndim == 1 ? m->dims[0] : -1;
  out->n = len < 0 || len > INT32_MAX ? -1 : (int)len;
  if (out->n < 0 || out->n > MF_MAX_DIMS) return;
  for (int i = 0; i < out->n; i++) out->v[i] = MFI_UNKNOWN;
  if (depth > FOLD_DEPTH || !mfi_is_index_dtype(m->dtype)) return;
  const char *type = op->def->type;
  if (strcmp(type, "Const") == 0) {
    const mfi_attr *a = mfi_attr_find(op, "value");
    if (!a || a->kind != MFI_A_TENSOR || !a->t || a->t->numel != out->n) return;
    for (int i = 0; i < out->n; i++) out->v[i] = mfi_get_i(a->t->dtype, mfi_data(a->t), i);
  } else if (strcmp(type, "Shape") == 0) {
    const mfi_meta *x = &op->inputs[0].op->out[op->inputs[0].index];
    if (x->ndim != out->n) return;
    for (int i = 0; i < out->n; i++) out->v[i] = x->dims[i] >= 0 ? x->dims[i] : MFI_UNKNOWN;
  } else if (strcmp(type, "Identity") == 0 || strcmp(type, "Cast") == 0) {
    mfi_ints in;
    fold(op->inputs[0], &in, depth + 1);
    if (in.n == out->n) *out = in;
  } else if (strcmp(type, "Pack") == 0) { /* of scalars */
    if (op->nin != out->n) return;
    for (int i = 0; i < op->nin; i++) out->v[i] = fold_scalar(op, i, depth);
  } else if (strcmp(type, "ConcatV2") == 0) {
    int at = 0;
    for (int i = 0; i < op->nin; i++) {
      mfi_ints in;
      fold(op->inputs[i], &in, depth + 1);
      if (in.n < 0 || at + in.n > out->n) return;
      for (int j = 0; j < in.n; j++) out->v[at + j] = in.v[j];
      at += in.n;
    }
  } else if (strcmp(type, "GatherV2") == 0) { /* a vector's entries, 1-based ids */
    mfi_ints p, ids;
    fold(op->inputs[0], &p, depth + 1);
    fold(op->inputs[1], &ids, depth + 1);
    if (p.n < 0 || p.n > MF_MAX_DIMS || ids.n != out->n) return;
    for (int i = 0; i < out->n; i++)
      if (ids.v[i] >= 1 && ids.v[i] <= p.n) out->v[i] = p.v[ids.v[i] - 1];
  } else if (strcmp(type, "Slice") == 0 && op->nin == 1) { /* of a vector */
    int nb = 0;
    const int64_t *b = mfi_attr_ints(op, "begin", &nb);
    mfi_ints p;
    fold(op->inputs[0], &p, depth + 1);
    if (!b || nb != 1 || p.n < 0 || p.n > MF_MAX_DIMS || b[0] < 1 || b[0] - 1 + out->n > p.n)
      return;
    for (int i = 0; i < out->n; i++) out->v[i] = p.v[b[0] - 1 + i];
  }
}

int mfi_ints_arg(mfi_infer_ctx *c, const mfi_kctx *k, const char *name, int idx, bool scalar,
                 mfi_ints *out)
{
  const mf_op *op = c->op;
  out->n = -1;
  if (idx < op->nin) {
    mfi_meta m = k ? mfi_tensor_meta(k->in[idx]) : c->in[idx];
    if (!mfi_is_index_dtype(m.dtype)) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be int32 or int64, got %s", name,
                      mf_dtype_name(m.dtype));
      return -1;
    }
    if (m.ndim >= 0 && m.ndim != (scalar ? 0 : 1)) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be a %s, got a value of rank %d", name,
                      scalar ? "scalar" : "vector", m.ndim);
      return -1;
    }
    int64_t n = scalar ? 1 : m.ndim == 1 ? m.dims[0] : -1;
    if (n > MF_MAX_DIMS) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s has %lld entries (at most %d)", name,
                      (long long)n, MF_MAX_DIMS);
      return -1;
    }
    if (!k) {
      fold(op->inputs[idx], out, 0);
      return 1;
    }
    const mf_tensor *t = k->in[idx];
    out->n = (int)n;
    for (int i = 0; i < out->n; i++) out->v[i] = mfi_get_i(t->dtype, mfi_data(t), i);
    return 1;
  }
  if (!mfi_attr_find(op, name)) return 0;
  if (scalar) {
    out->n = 1;
    return mfi_check_int(c, name, true, 0, &out->v[0]) ? 1 : -1;
  }
  const int64_t *v = NULL;
  int n = 0, has = mfi_check_ints(c, name, &v, &n);
  if (has <= 0) return has;
  if (n > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s has %d entries (at most %d)", name, n, MF_MAX_DIMS);
    return -1;
  }
  out->n = n;
  for (int i = 0; i < n; i++) out->v[i] = v[i];
  return 1;
}

int mfi_shape_arg(mfi_infer_ctx *c, const mfi_kctx *k, const char *name, int idx, bool allow_minus1,
                  mfi_ints *out)
{
  int has = mfi_ints_arg(c, k, name, idx, false, out);
  if (has <= 0) return has;
  int64_t known = 1;
  for (int i = 0; i < out->n; i++) {
    int64_t d = out->v[i];
    if (d == MFI_UNKNOWN || (allow_minus1 && d == -1)) continue;
    if (d < 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "dimension %d of the %s is %lld (must be >= 0)",
                      i + 1, name, (long long)d);
      return -1;
    }
    if (d > 0 && known > INT64_MAX / d) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "the %s has too many elements", name);
      return -1;
    }
    known *= d;
  }
  return 1;
}

void mfi_meta_from_ints(const mfi_ints *s, mf_dtype dt, mfi_meta *out)
{
  out->dtype = dt;
  out->ndim = s->n;
  for (int i = 0; i < s->n; i++) out->dims[i] = s->v[i] == MFI_UNKNOWN ? -1 : s->v[i];
}

/* ---------------------------------------------------------------- Slice, Tile */

/* start[i] is the 0-based start along dimension i. */
bool mfi_slice_shape(mfi_infer_ctx *c, const mfi_kctx *k, int first, const mfi_meta *x,
                     mfi_meta *out, int64_t *start)
{
  mfi_ints b, s;
  int hb = mfi_ints_arg(c, k, "begin", first, false, &b);
  if (hb < 0) return false;
  if (hb == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'begin' attribute");
    return false;
  }
  int hs = mfi_ints_arg(c, k, "size", first + 1, false, &s);
  if (hs < 0) return false;
  int nb = b.n >= 0 ? b.n : hs && s.n >= 0 ? s.n : x->ndim;
  if (hs && b.n >= 0 && s.n >= 0 && s.n != b.n) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "begin has %d entries but size has %d", b.n, s.n);
    return false;
  }
  if (x->ndim >= 0 && nb >= 0 && nb != x->ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s has %d entries for an input of rank %d",
                    b.n == nb ? "begin" : "size", nb, x->ndim);
    return false;
  }
  out->dtype = x->dtype;
  out->ndim = nb;
  for (int i = 0; i < nb; i++) {
    int64_t bi = b.n == nb ? b.v[i] : MFI_UNKNOWN;
    int64_t sz = !hs ? -1 : s.n == nb ? s.v[i] : MFI_UNKNOWN;
    int64_t dim = x->ndim >= 0 ? x->dims[i] : -1;
    int64_t st = bi == MFI_UNKNOWN ? MFI_UNKNOWN : bi - 1;
    if (bi != MFI_UNKNOWN && bi < 1) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "begin %lld along dimension %d must be >= 1",
                      (long long)bi, i + 1);
      return false;
    }
    if (sz != MFI_UNKNOWN && sz < -1) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "size %lld along dimension %d must be >= 0 (or -1 for the rest)",
                      (long long)sz, i + 1);
      return false;
    }
    if (dim >= 0 && st != MFI_UNKNOWN &&
        (st > dim || (sz != MFI_UNKNOWN && sz >= 0 && sz > dim - st))) {
      char sh[128];
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "slice begin %lld size %lld is out of bounds for dimension %d of the "
                      "input %s",
                      (long long)bi, (long long)sz, i + 1, mfi_meta_str(x, sh, sizeof sh));
      return false;
    }
    if (dim >= 0 && sz != MFI_UNKNOWN && sz > dim) {
      char sh[128];
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "slice size %lld is out of bounds for dimension %d of the input %s",
                      (long long)sz, i + 1, mfi_meta_str(x, sh, sizeof sh));
      return false;
    }
    start[i] = st;
    out->dims[i] = sz == MFI_UNKNOWN               ? -1
                   : sz >= 0                       ? sz
                   : dim >= 0 && st != MFI_UNKNOWN ? dim - st
                                                   : -1;
  }
  return true;
}

/* GatherV2's output shape: params.shape[:axis] + ids.shape + params.shape[axis+1:]. */
bool mfi_gather_shape(mfi_infer_ctx *c, const mfi_meta *p, const mfi_meta *ids, mfi_meta *out,
                      int *axis)
{
  int64_t ax;
  if (!mfi_check_int(c, "axis", false, 1, &ax)) return false;
  if (!mfi_is_index_dtype(ids->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "ids must be int32 or int64, got %s",
                    mf_dtype_name(ids->dtype));
    return false;
  }
  if (p->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot gather from a scalar");
    return false;
  }
  int a = p->ndim > 0 ? mfi_axis(c, ax, p->ndim, "axis") : -1;
  if (p->ndim > 0 && a < 0) return false;
  if (p->ndim < 0 || ids->ndim < 0) {
    out->dtype = p->dtype;
    out->ndim = -1;
    return true;
  }
  int r = p->ndim - 1 + ids->ndim;
  if (r > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the result would have rank %d (at most %d)", r,
                    MF_MAX_DIMS);
    return false;
  }
  out->dtype = p->dtype;
  out->ndim = r;
  int j = 0;
  for (int d = 0; d < a; d++) out->dims[j++] = p->dims[d];
  for (int d = 0; d < ids->ndim; d++) out->dims[j++] = ids->dims[d];
  for (int d = a + 1; d < p->ndim; d++) out->dims[j++] = p->dims[d];
  *axis = a;
  return true;
}

/* Tile's output shape from its multiples (attribute or input idx). */
bool mfi_tile_shape(mfi_infer_ctx *c, const mfi_kctx *k, int idx, const mfi_meta *x, mfi_meta *out,
                    int64_t *mult)
{
  mfi_ints m;
  int has = mfi_ints_arg(c, k, "multiples", idx, false, &m);
  if (has <= 0) {
    if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'multiples' attribute");
    return false;
  }
  int n = m.n >= 0 ? m.n : x->ndim;
  if (x->ndim >= 0 && n != x->ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "multiples has %d entries for an input of rank %d", n,
                    x->ndim);
    return false;
  }
  out->dtype = x->dtype;
  out->ndim = n;
  for (int i = 0; i < n; i++) {
    int64_t dim = x->ndim >= 0 ? x->dims[i] : -1, mi = m.n == n ? m.v[i] : MFI_UNKNOWN;
    if (mi != MFI_UNKNOWN && mi < 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "multiple %lld for dimension %d must be >= 0",
                      (long long)mi, i + 1);
      return false;
    }
    if (mi != MFI_UNKNOWN && dim > 0 && mi > INT64_MAX / dim) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "tiling dimension %d gives too many elements", i + 1);
      return false;
    }
    out->dims[i] = mi == 0 || dim == 0 ? 0 : dim < 0 || mi == MFI_UNKNOWN ? -1 : dim * mi;
    mult[i] = mi;
  }
  return true;
}

bool mfi_check_ids(mfi_kctx *k, const mf_tensor *ids, int64_t dim, int axis)
{
  const void *iv = mfi_data(ids);
  for (int64_t j = 0; j < ids->numel; j++) {
    int64_t id = mfi_get_i(ids->dtype, iv, j);
    if (id < 1 || id > dim) {
      mfi_op_error(k->status, MF_OUT_OF_RANGE, k->op,
                   "id %lld (at position %lld of ids) is out of range 1..%lld for dimension %d "
                   "of the params",
                   (long long)id, (long long)j + 1, (long long)dim, axis + 1);
      return false;
    }
  }
  return true;
}
