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

/* start[i] is the 0-based start along dimension i. */
bool mfi_slice_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, int64_t *start)
{
  const int64_t *b = NULL, *s = NULL;
  int nb = 0, ns = 0;
  int hb = mfi_check_ints(c, "begin", &b, &nb);
  if (hb < 0) return false;
  if (hb == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'begin' attribute");
    return false;
  }
  int hs = mfi_check_ints(c, "size", &s, &ns);
  if (hs < 0) return false;
  if (hs && ns != nb) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "begin has %d entries but size has %d", nb, ns);
    return false;
  }
  if (x->ndim >= 0 && nb != x->ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "begin has %d entries for an input of rank %d", nb,
                    x->ndim);
    return false;
  }
  if (nb > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "begin has %d entries (at most %d)", nb, MF_MAX_DIMS);
    return false;
  }
  out->dtype = x->dtype;
  out->ndim = nb;
  for (int i = 0; i < nb; i++) {
    int64_t st = b[i] - 1, sz = hs ? s[i] : -1, dim = x->ndim >= 0 ? x->dims[i] : -1;
    if (b[i] < 1) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "begin %lld along dimension %d must be >= 1",
                      (long long)b[i], i + 1);
      return false;
    }
    if (sz < -1) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "size %lld along dimension %d must be >= 0 (or -1 for the rest)",
                      (long long)sz, i + 1);
      return false;
    }
    if (dim >= 0 && (st > dim || (sz >= 0 && sz > dim - st))) {
      char sh[128];
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "slice begin %lld size %lld is out of bounds for dimension %d of the "
                      "input %s",
                      (long long)b[i], (long long)sz, i + 1, mfi_meta_str(x, sh, sizeof sh));
      return false;
    }
    start[i] = st;
    out->dims[i] = sz >= 0 ? sz : dim >= 0 ? dim - st : -1;
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

/* Tile's output shape from its "multiples" attribute. */
bool mfi_tile_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, const int64_t **mult)
{
  const int64_t *m = NULL;
  int n = 0, has = mfi_check_ints(c, "multiples", &m, &n);
  if (has <= 0) {
    if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'multiples' attribute");
    return false;
  }
  if (x->ndim >= 0 && n != x->ndim) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "multiples has %d entries for an input of rank %d", n,
                    x->ndim);
    return false;
  }
  if (n > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "multiples has %d entries (at most %d)", n,
                    MF_MAX_DIMS);
    return false;
  }
  out->dtype = x->dtype;
  out->ndim = n;
  for (int i = 0; i < n; i++) {
    int64_t dim = x->ndim >= 0 ? x->dims[i] : -1;
    if (m[i] < 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "multiple %lld for dimension %d must be >= 0",
                      (long long)m[i], i + 1);
      return false;
    }
    if (dim > 0 && m[i] > INT64_MAX / dim) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "tiling dimension %d gives too many elements", i + 1);
      return false;
    }
    out->dims[i] = m[i] == 0 ? 0 : dim < 0 ? -1 : dim * m[i];
  }
  *mult = m;
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
