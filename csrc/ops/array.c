/* Array ops: shape manipulation and data movement.
 *
 * Every op has one shape function shared by inference and its prepare hook:
 * prepare reruns it on the runtime shapes (all known), so each static check
 * also holds at run time and errors read the same either way, and leaves
 * the output shapes in k->shapes and what else the kernel needs (an axis, a
 * permutation) in k->params. Kernels only move data: raw element bytes, so
 * nothing here switches on dtype. */
#include "shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static void unknown_rank(mfi_meta *m, mf_dtype dt)
{
  m->dtype = dt;
  m->ndim = -1;
}

/* Position of a new axis in a rank-`rank` shape: 1..rank+1 or
 * -(rank+1)..-1, where -1 is the new last position. */
static int insert_axis(mfi_infer_ctx *c, int64_t axis, int rank)
{
  if (rank + 1 > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the result would have rank %d (at most %d)", rank + 1,
                    MF_MAX_DIMS);
    return -1;
  }
  if (axis >= 1 && axis <= rank + 1) return (int)axis - 1;
  if (axis < 0 && axis >= -(int64_t)(rank + 1)) return rank + 1 + (int)axis;
  mfi_infer_error(c, MF_INVALID_ARGUMENT,
                  "axis %lld is out of range for inserting into rank %d (use 1..%d or -%d..-1)",
                  (long long)axis, rank, rank + 1, rank + 1);
  return -1;
}

/* ---------------------------------------------------------------- Identity */

static void infer_identity(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0] = c->in[0];
}

static void cpu_identity(mfi_kctx *k) { k->out[0] = mf_tensor_retain(k->in[0]); }

/* ---------------------------------------------------------------- Transpose */

/* perm[i] (0-based) is the input axis that becomes output axis i. */
static bool transpose_shape(mfi_infer_ctx *c, const mfi_meta *x, int *perm, mfi_meta *out)
{
  const int64_t *p = NULL;
  int n = 0, has = mfi_check_ints(c, "perm", &p, &n);
  if (has < 0) return false;
  int rank = x->ndim >= 0 ? x->ndim : has ? n : -1;
  if (rank < 0) {
    unknown_rank(out, x->dtype);
    return true;
  }
  if (has && n != rank) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "perm has %d entries for an input of rank %d", n, rank);
    return false;
  }
  if (rank > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "perm has %d entries (at most %d)", n, MF_MAX_DIMS);
    return false;
  }
  bool seen[MF_MAX_DIMS] = {false};
  out->dtype = x->dtype;
  out->ndim = rank;
  for (int i = 0; i < rank; i++) {
    int a = has ? mfi_axis(c, p[i], rank, "perm entry") : rank - 1 - i;
    if (a < 0) return false;
    if (seen[a]) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "perm is not a permutation of 1..%d (%d repeats)",
                      rank, a + 1);
      return false;
    }
    seen[a] = true;
    perm[i] = a;
    out->dims[i] = x->ndim >= 0 ? x->dims[a] : -1;
  }
  return true;
}

static void infer_transpose(mfi_infer_ctx *c)
{
  int perm[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  transpose_shape(c, &c->in[0], perm, &c->op->out[0]);
}

/* params[i]: perm[i]. */
static void prepare_transpose(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  int perm[MF_MAX_DIMS];
  if (!transpose_shape(&c, &xm, perm, &k->shapes[0])) return;
  for (int i = 0; i < k->shapes[0].ndim; i++) k->params[i] = perm[i];
}

static void cpu_transpose(mfi_kctx *k)
{
  mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  const int64_t *perm = k->params;
  bool ident = true;
  for (int i = 0; i < om->ndim; i++) ident = ident && perm[i] == i;
  if (ident) {
    k->out[0] = mf_tensor_retain(x);
    return;
  }
  if (!mfi_out_new(k, 0, x->dtype, om->ndim, om->dims)) return;
  int64_t ist[MF_MAX_DIMS], st[MF_MAX_DIMS];
  mfi_row_strides(x->ndim, x->dims, ist);
  for (int i = 0; i < om->ndim; i++) st[i] = ist[perm[i]];
  mfi_strided_copy(mfi_data(k->out[0]), mfi_data(x), mf_dtype_size(x->dtype), om->ndim, om->dims,
                   st);
}

/* ---------------------------------------------------------------- Reshape */

/* The shape: the attribute, or input 1 (in host memory) in the run-time
 * form; k NULL at inference, where a computed shape gives -1 dims (or the
 * ones constant folding finds). */
static bool reshape_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *x, mfi_meta *out)
{
  mfi_ints s;
  int has = mfi_ints_arg(c, k, "shape", 1, false, &s);
  if (has <= 0) {
    if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a 'shape' attribute");
    return false;
  }
  if (s.n < 0) {
    unknown_rank(out, x->dtype);
    return true;
  }
  int n = s.n;
  out->dtype = x->dtype;
  out->ndim = n;
  int at = -1;
  bool unknown = false;
  int64_t known = 1;
  for (int i = 0; i < n; i++) {
    int64_t d = s.v[i];
    out->dims[i] = d == MFI_UNKNOWN ? -1 : d;
    if (d == MFI_UNKNOWN) {
      unknown = true;
    } else if (d == -1) {
      if (at >= 0) {
        mfi_infer_error(c, MF_INVALID_ARGUMENT, "shape has more than one -1");
        return false;
      }
      at = i;
    } else if (d < 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "dimension %d of shape is %lld", i + 1, (long long)d);
      return false;
    } else if (d > 0 && known > INT64_MAX / d) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "shape has too many elements");
      return false;
    } else {
      known *= d;
    }
  }
  int64_t numel = mfi_known_numel(x);
  if (numel < 0 || unknown) return true; /* checked again at run time */
  char a[128], b[128];
  if (at >= 0) {
    if (known == 0 || numel % known != 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "cannot reshape a %s value (%lld elements) to %s: the -1 can't be inferred",
                      mfi_meta_str(x, a, sizeof a), (long long)numel,
                      mfi_meta_str(out, b, sizeof b));
      return false;
    }
    out->dims[at] = numel / known;
  } else if (known != numel) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "cannot reshape a %s value (%lld elements) to %s (%lld elements)",
                    mfi_meta_str(x, a, sizeof a), (long long)numel, mfi_meta_str(out, b, sizeof b),
                    (long long)known);
    return false;
  }
  return true;
}

static void infer_reshape(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  reshape_shape(c, NULL, &c->in[0], &c->op->out[0]);
}

static void prepare_reshape(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  reshape_shape(&c, k, &xm, &k->shapes[0]);
}

/* Reshape, ExpandDims, Squeeze: a view of the input with the shape prepare
 * worked out, sharing its buffer. */
static void cpu_view(mfi_kctx *k)
{
  const mfi_meta *om = &k->shapes[0];
  mf_status tmp;
  mfi_clear(&tmp);
  k->out[0] = mf_tensor_reshape(k->in[0], om->ndim, om->dims, &tmp);
  if (!k->out[0]) mfi_op_error(k->status, mf_status_code(&tmp), k->op, "%s", tmp.msg);
}

/* ---------------------------------------------------------------- ConcatV2 */

static bool concat_shape(mfi_infer_ctx *c, int n, const mfi_meta *in, mfi_meta *out, int *axis)
{
  int64_t ax;
  if (!mfi_check_int(c, "axis", true, 0, &ax)) return false;
  int rank = -1, first = -1;
  for (int i = 0; i < n; i++) {
    if (in[i].dtype != in[0].dtype) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d is %s but input 1 is %s", i + 1,
                      mf_dtype_name(in[i].dtype), mf_dtype_name(in[0].dtype));
      return false;
    }
    if (in[i].ndim < 0) continue;
    if (rank < 0) {
      rank = in[i].ndim, first = i;
    } else if (in[i].ndim != rank) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d has rank %d but input %d has rank %d",
                      i + 1, in[i].ndim, first + 1, rank);
      return false;
    }
  }
  if (rank < 0) {
    unknown_rank(out, in[0].dtype);
    return true;
  }
  if (rank == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot concatenate scalars");
    return false;
  }
  int a = mfi_axis(c, ax, rank, "axis");
  if (a < 0) return false;
  out->dtype = in[0].dtype;
  out->ndim = rank;
  for (int d = 0; d < rank; d++) out->dims[d] = -1;
  int64_t sum = 0;
  for (int i = 0; i < n; i++) {
    if (in[i].ndim < 0) {
      sum = -1;
      continue;
    }
    for (int d = 0; d < rank; d++) {
      if (d == a) continue;
      if (!mfi_merge_dim(out->dims[d], in[i].dims[d], &out->dims[d])) {
        char x[128], y[128];
        mfi_infer_error(c, MF_INVALID_ARGUMENT,
                        "input %d has shape %s but input %d has shape %s; only dimension %d "
                        "(the axis) may differ",
                        i + 1, mfi_meta_str(&in[i], x, sizeof x), first + 1,
                        mfi_meta_str(&in[first], y, sizeof y), a + 1);
        return false;
      }
    }
    if (sum >= 0) sum = in[i].dims[a] < 0 ? -1 : sum + in[i].dims[a];
  }
  out->dims[a] = sum;
  *axis = a;
  return true;
}

static void infer_concat(mfi_infer_ctx *c)
{
  int a;
  if (!mfi_set_outputs(c, 1)) return;
  concat_shape(c, c->op->nin, c->in, &c->op->out[0], &a);
}

/* The metadata of all n inputs, malloc'ed (NULL + error when out of memory). */
static mfi_meta *input_metas(mfi_kctx *k, int n)
{
  mfi_meta *in = malloc(sizeof *in * n);
  if (in)
    mfi_input_metas(k, n, in);
  else
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  return in;
}

/* params[0]: the axis. */
static void prepare_concat(mfi_kctx *k)
{
  int n = k->op->nin, a = 0;
  mfi_meta *in = input_metas(k, n);
  if (!in) return;
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  concat_shape(&c, n, in, &k->shapes[0], &a);
  free(in);
  k->params[0] = a;
}

static void cpu_concat(mfi_kctx *k)
{
  int n = k->op->nin, a = (int)k->params[0];
  const mfi_meta *om = &k->shapes[0];
  if (n == 1) {
    k->out[0] = mf_tensor_retain(k->in[0]);
    return;
  }
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  size_t es = mf_dtype_size(om->dtype);
  int64_t outer = mfi_dims_prod(om->dims, 0, a), inner = mfi_dims_prod(om->dims, a + 1, om->ndim);
  char *dst = mfi_data(k->out[0]);
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < n; i++) {
      size_t chunk = (size_t)(k->in[i]->dims[a] * inner) * es;
      memcpy(dst, (const char *)mfi_data(k->in[i]) + o * chunk, chunk);
      dst += chunk;
    }
}

/* ---------------------------------------------------------------- Pack */

static bool pack_shape(mfi_infer_ctx *c, int n, const mfi_meta *in, mfi_meta *out, int *pos)
{
  int64_t ax;
  if (!mfi_check_int(c, "axis", false, 1, &ax)) return false;
  mfi_meta m;
  unknown_rank(&m, in[0].dtype);
  int first = -1;
  for (int i = 0; i < n; i++) {
    if (in[i].dtype != in[0].dtype) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d is %s but input 1 is %s", i + 1,
                      mf_dtype_name(in[i].dtype), mf_dtype_name(in[0].dtype));
      return false;
    }
    if (in[i].ndim < 0) continue;
    if (first < 0) {
      m = in[i], first = i;
      continue;
    }
    bool same = in[i].ndim == m.ndim;
    for (int d = 0; same && d < m.ndim; d++)
      same = mfi_merge_dim(m.dims[d], in[i].dims[d], &m.dims[d]);
    if (!same) {
      char x[128], y[128];
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d has shape %s but input %d has shape %s",
                      i + 1, mfi_meta_str(&in[i], x, sizeof x), first + 1,
                      mfi_meta_str(&in[first], y, sizeof y));
      return false;
    }
  }
  if (m.ndim < 0) {
    unknown_rank(out, m.dtype);
    return true;
  }
  int p = insert_axis(c, ax, m.ndim);
  if (p < 0) return false;
  out->dtype = m.dtype;
  out->ndim = m.ndim + 1;
  for (int d = 0, j = 0; d < out->ndim; d++) out->dims[d] = d == p ? n : m.dims[j++];
  *pos = p;
  return true;
}

static void infer_pack(mfi_infer_ctx *c)
{
  int p;
  if (!mfi_set_outputs(c, 1)) return;
  pack_shape(c, c->op->nin, c->in, &c->op->out[0], &p);
}

/* params[0]: the new axis's position. */
static void prepare_pack(mfi_kctx *k)
{
  int n = k->op->nin, p = 0;
  mfi_meta *in = input_metas(k, n);
  if (!in) return;
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  pack_shape(&c, n, in, &k->shapes[0], &p);
  free(in);
  k->params[0] = p;
}

static void cpu_pack(mfi_kctx *k)
{
  int n = k->op->nin, p = (int)k->params[0];
  const mfi_meta *om = &k->shapes[0];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  size_t es = mf_dtype_size(om->dtype);
  const mf_tensor *x = k->in[0];
  int64_t outer = mfi_dims_prod(x->dims, 0, p);
  size_t chunk = (size_t)mfi_dims_prod(x->dims, p, x->ndim) * es;
  char *dst = mfi_data(k->out[0]);
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < n; i++) {
      memcpy(dst, (const char *)mfi_data(k->in[i]) + o * chunk, chunk);
      dst += chunk;
    }
}

/* ---------------------------------------------------------------- Unpack */

static bool unpack_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, int *axis,
                         int64_t *num)
{
  int64_t ax;
  if (!mfi_check_int(c, "axis", false, 1, &ax)) return false;
  if (x->ndim < 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "needs an input of known rank (the number of outputs comes from its shape)");
    return false;
  }
  if (x->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot unpack a scalar");
    return false;
  }
  int a = mfi_axis(c, ax, x->ndim, "axis");
  if (a < 0) return false;
  if (x->dims[a] < 0) {
    char s[128];
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "dimension %d of the input %s is unknown; unpack needs its static size", a + 1,
                    mfi_meta_str(x, s, sizeof s));
    return false;
  }
  out->dtype = x->dtype;
  out->ndim = x->ndim - 1;
  for (int d = 0, j = 0; d < x->ndim; d++)
    if (d != a) out->dims[j++] = x->dims[d];
  *axis = a;
  *num = x->dims[a];
  return true;
}

static void infer_unpack(mfi_infer_ctx *c)
{
  mfi_meta m;
  int a;
  int64_t num;
  if (!unpack_shape(c, &c->in[0], &m, &a, &num)) return;
  if (num > 1 << 20) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "unpacking into %lld outputs is too many",
                    (long long)num);
    return;
  }
  if (!mfi_set_outputs(c, (int)num)) return;
  for (int i = 0; i < num; i++) c->op->out[i] = m;
}

/* shapes[i] for every output; params[0]: the axis. */
static void prepare_unpack(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  mfi_meta om; /* shapes[] has no entry when there are no outputs */
  int a;
  int64_t num;
  if (!unpack_shape(&c, &xm, &om, &a, &num)) return;
  if (num != k->op->nout) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "dimension %d of the input is %lld at run time but the op has %d outputs", a + 1,
                 (long long)num, k->op->nout);
    return;
  }
  for (int i = 0; i < num; i++) k->shapes[i] = om;
  k->params[0] = a;
}

static void cpu_unpack(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int a = (int)k->params[0], num = k->op->nout;
  if (!mfi_outs_new(k, num)) return;
  size_t es = mf_dtype_size(x->dtype);
  int64_t outer = mfi_dims_prod(x->dims, 0, a);
  size_t chunk = (size_t)mfi_dims_prod(x->dims, a + 1, x->ndim) * es;
  const char *src = mfi_data(x);
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < num; i++) {
      memcpy((char *)mfi_data(k->out[i]) + o * chunk, src, chunk);
      src += chunk;
    }
}

/* ---------------------------------------------------------------- Split */

static bool split_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, int *axis, int64_t *num)
{
  int64_t ax, ns;
  if (!mfi_check_int(c, "num_split", true, 0, &ns) || !mfi_check_int(c, "axis", false, 1, &ax))
    return false;
  if (ns < 1 || ns > 1 << 20) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "num_split is %lld (must be at least 1)",
                    (long long)ns);
    return false;
  }
  *num = ns;
  if (x->ndim < 0) {
    unknown_rank(out, x->dtype);
    *axis = -1;
    return true;
  }
  if (x->ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "cannot split a scalar");
    return false;
  }
  int a = mfi_axis(c, ax, x->ndim, "axis");
  if (a < 0) return false;
  *out = *x;
  if (x->dims[a] >= 0) {
    if (x->dims[a] % ns != 0) {
      char s[128];
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "dimension %d of the input %s (%lld) does not divide evenly into %lld", a + 1,
                      mfi_meta_str(x, s, sizeof s), (long long)x->dims[a], (long long)ns);
      return false;
    }
    out->dims[a] = x->dims[a] / ns;
  }
  *axis = a;
  return true;
}

static void infer_split(mfi_infer_ctx *c)
{
  mfi_meta m;
  int a;
  int64_t num;
  if (!split_shape(c, &c->in[0], &m, &a, &num) || !mfi_set_outputs(c, (int)num)) return;
  for (int i = 0; i < num; i++) c->op->out[i] = m;
}

/* shapes[i] for every output; params[0]: the axis. */
static void prepare_split(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]), om;
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  int a;
  int64_t num;
  if (!split_shape(&c, &xm, &om, &a, &num)) return;
  if (num != k->op->nout) { /* only if the op was built oddly */
    mfi_op_error(k->status, MF_INTERNAL, k->op, "num_split %lld but %d outputs", (long long)num,
                 k->op->nout);
    return;
  }
  for (int i = 0; i < num; i++) k->shapes[i] = om;
  k->params[0] = a;
}

static void cpu_split(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  int a = (int)k->params[0], num = k->op->nout;
  if (!mfi_outs_new(k, num)) return;
  size_t es = mf_dtype_size(x->dtype);
  int64_t outer = mfi_dims_prod(x->dims, 0, a);
  size_t chunk = (size_t)mfi_dims_prod(om->dims, a, om->ndim) * es;
  const char *src = mfi_data(x);
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < num; i++) {
      memcpy((char *)mfi_data(k->out[i]) + o * chunk, src, chunk);
      src += chunk;
    }
}

/* ---------------------------------------------------------------- Slice */

static void infer_slice(mfi_infer_ctx *c)
{
  int64_t start[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  mfi_slice_shape(c, NULL, 1, &c->in[0], &c->op->out[0], start);
}

/* params[i]: the 0-based start along dimension i. */
static void prepare_slice(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  mfi_slice_shape(&c, k, 1, &xm, &k->shapes[0], k->params);
}

static void cpu_slice(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  const int64_t *start = k->params;
  int64_t st[MF_MAX_DIMS], off = 0;
  if (!mfi_out_new(k, 0, x->dtype, om->ndim, om->dims)) return;
  size_t es = mf_dtype_size(x->dtype);
  mfi_row_strides(x->ndim, x->dims, st);
  for (int i = 0; i < x->ndim; i++) off += start[i] * st[i];
  if (k->out[0]->numel == 0) return;
  mfi_strided_copy(mfi_data(k->out[0]), (const char *)mfi_data(x) + off * (int64_t)es, es, om->ndim,
                   om->dims, st);
}

/* ---------------------------------------------------------------- GatherV2 */

static void infer_gather(mfi_infer_ctx *c)
{
  int a;
  if (!mfi_set_outputs(c, 1)) return;
  mfi_gather_shape(c, &c->in[0], &c->in[1], &c->op->out[0], &a);
}

/* params[0]: the axis. The ids, in host memory, are in range. */
static void prepare_gather(mfi_kctx *k)
{
  mfi_meta in[2];
  mfi_input_metas(k, 2, in);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, in);
  int a = 0;
  if (!mfi_gather_shape(&c, &in[0], &in[1], &k->shapes[0], &a)) return;
  k->params[0] = a;
  mfi_check_ids(k, k->in[1], in[0].dims[a], a);
}

static void cpu_gather(mfi_kctx *k)
{
  const mf_tensor *p = k->in[0], *ids = k->in[1];
  const mfi_meta *om = &k->shapes[0];
  int a = (int)k->params[0];
  int64_t n = ids->numel, dim = p->dims[a];
  const void *iv = mfi_data(ids);
  if (!mfi_out_new(k, 0, p->dtype, om->ndim, om->dims)) return;
  size_t es = mf_dtype_size(p->dtype);
  int64_t outer = mfi_dims_prod(p->dims, 0, a);
  size_t chunk = (size_t)mfi_dims_prod(p->dims, a + 1, p->ndim) * es;
  const char *src = mfi_data(p);
  char *dst = mfi_data(k->out[0]);
  for (int64_t o = 0; o < outer; o++) {
    const char *base = src + (size_t)(o * dim) * chunk;
    for (int64_t j = 0; j < n; j++) {
      memcpy(dst, base + (size_t)(mfi_get_i(ids->dtype, iv, j) - 1) * chunk, chunk);
      dst += chunk;
    }
  }
}

/* ---------------------------------------------------------------- OneHot */

/* depth: the attribute, or the scalar input 1 (host memory); -1 at
 * inference when it is computed. */
static bool onehot_shape(mfi_infer_ctx *c, const mfi_kctx *k, const mfi_meta *ids, mfi_meta *out,
                         int *pos, int64_t *depth)
{
  int64_t ax;
  mf_dtype dt;
  double on, off; /* read by the kernel */
  mfi_ints d;
  int has = mfi_ints_arg(c, k, "depth", 1, true, &d);
  if (has == 0) mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs an integer attribute 'depth'");
  if (has <= 0 || !mfi_check_int(c, "axis", false, -1, &ax) ||
      !mfi_check_type(c, "dtype", false, MF_FLOAT32, &dt) ||
      !mfi_check_float(c, "on_value", false, 1, &on) ||
      !mfi_check_float(c, "off_value", false, 0, &off))
    return false;
  *depth = d.n == 1 && d.v[0] != MFI_UNKNOWN ? d.v[0] : -1;
  if (!mfi_is_index_dtype(ids->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "ids must be int32 or int64, got %s",
                    mf_dtype_name(ids->dtype));
    return false;
  }
  if (d.n == 1 && d.v[0] != MFI_UNKNOWN && d.v[0] < 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "depth is %lld (must be >= 0)", (long long)d.v[0]);
    return false;
  }
  if (ids->ndim < 0) {
    unknown_rank(out, dt);
    return true;
  }
  int p = insert_axis(c, ax, ids->ndim);
  if (p < 0) return false;
  out->dtype = dt;
  out->ndim = ids->ndim + 1;
  for (int i = 0, j = 0; i < out->ndim; i++) out->dims[i] = i == p ? *depth : ids->dims[j++];
  *pos = p;
  return true;
}

static void infer_onehot(mfi_infer_ctx *c)
{
  int p;
  int64_t depth;
  if (!mfi_set_outputs(c, 1)) return;
  onehot_shape(c, NULL, &c->in[0], &c->op->out[0], &p, &depth);
}

/* params[0]: the new axis's position; params[1]: the depth. */
static void prepare_onehot(mfi_kctx *k)
{
  mfi_meta im = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &im);
  int p = 0;
  int64_t depth = 0;
  onehot_shape(&c, k, &im, &k->shapes[0], &p, &depth);
  k->params[0] = p, k->params[1] = depth;
}

/* An id outside 1..depth sets nothing (all off_value), as in TensorFlow. */
static void cpu_onehot(mfi_kctx *k)
{
  const mf_tensor *ids = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  int p = (int)k->params[0];
  int64_t depth = k->params[1];
  if (!mfi_out_new(k, 0, om->dtype, om->ndim, om->dims)) return;
  /* The two values as raw element bytes, so filling is a byte copy. */
  size_t es = mf_dtype_size(om->dtype);
  char on[8], off[8];
  mfi_set_f(om->dtype, on, 0, mfi_attr_float(k->op, "on_value", 1));
  mfi_set_f(om->dtype, off, 0, mfi_attr_float(k->op, "off_value", 0));
  char *dst = mfi_data(k->out[0]);
  int64_t total = k->out[0]->numel;
  for (int64_t i = 0; i < total; i++) memcpy(dst + i * (int64_t)es, off, es);
  int64_t outer = mfi_dims_prod(ids->dims, 0, p), inner = mfi_dims_prod(ids->dims, p, ids->ndim);
  const void *iv = mfi_data(ids);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t id = mfi_get_i(ids->dtype, iv, o * inner + i);
      if (id >= 1 && id <= depth)
        memcpy(dst + ((o * depth + id - 1) * inner + i) * (int64_t)es, on, es);
    }
}

/* ---------------------------------------------------------------- ExpandDims, Squeeze */

static bool expand_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out)
{
  int64_t ax;
  if (!mfi_check_int(c, "axis", true, 0, &ax)) return false;
  if (x->ndim < 0) {
    unknown_rank(out, x->dtype);
    return true;
  }
  int p = insert_axis(c, ax, x->ndim);
  if (p < 0) return false;
  out->dtype = x->dtype;
  out->ndim = x->ndim + 1;
  for (int d = 0, j = 0; d < out->ndim; d++) out->dims[d] = d == p ? 1 : x->dims[j++];
  return true;
}

static void infer_expand(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  expand_shape(c, &c->in[0], &c->op->out[0]);
}

static void prepare_expand(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  expand_shape(&c, &xm, &k->shapes[0]);
}

static bool squeeze_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out)
{
  const int64_t *ax = NULL;
  int n = 0, has = mfi_check_ints(c, "axis", &ax, &n);
  if (has < 0) return false;
  if (x->ndim < 0) {
    unknown_rank(out, x->dtype);
    return true;
  }
  bool drop[MF_MAX_DIMS] = {false};
  if (has) {
    for (int i = 0; i < n; i++) {
      int a = mfi_axis(c, ax[i], x->ndim, "axis");
      if (a < 0) return false;
      if (x->dims[a] >= 0 && x->dims[a] != 1) {
        char s[128];
        mfi_infer_error(c, MF_INVALID_ARGUMENT,
                        "cannot squeeze dimension %d of the input %s: its size is %lld, not 1",
                        a + 1, mfi_meta_str(x, s, sizeof s), (long long)x->dims[a]);
        return false;
      }
      drop[a] = true;
    }
  } else {
    for (int d = 0; d < x->ndim; d++) {
      if (x->dims[d] < 0) { /* might be 1: the result's rank is unknown */
        unknown_rank(out, x->dtype);
        return true;
      }
      drop[d] = x->dims[d] == 1;
    }
  }
  out->dtype = x->dtype;
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++)
    if (!drop[d]) out->dims[out->ndim++] = x->dims[d];
  return true;
}

static void infer_squeeze(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  squeeze_shape(c, &c->in[0], &c->op->out[0]);
}

static void prepare_squeeze(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  squeeze_shape(&c, &xm, &k->shapes[0]);
}

/* ---------------------------------------------------------------- Tile */

static void infer_tile(mfi_infer_ctx *c)
{
  int64_t m[MF_MAX_DIMS];
  if (!mfi_set_outputs(c, 1)) return;
  mfi_tile_shape(c, NULL, 1, &c->in[0], &c->op->out[0], m);
}

/* params[i]: the multiple for dimension i. */
static void prepare_tile(mfi_kctx *k)
{
  mfi_meta xm = mfi_tensor_meta(k->in[0]);
  mfi_infer_ctx c = mfi_prepare_infer_ctx(k, &xm);
  mfi_tile_shape(&c, k, 1, &xm, &k->shapes[0], k->params);
}

static void cpu_tile(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  const mfi_meta *om = &k->shapes[0];
  const int64_t *m = k->params;
  if (!mfi_out_new(k, 0, x->dtype, om->ndim, om->dims)) return;
  int nd = x->ndim;
  size_t es = mf_dtype_size(x->dtype);
  char *dst = mfi_data(k->out[0]);
  const char *src = mfi_data(x);
  if (k->out[0]->numel == 0) return;
  if (nd == 0) {
    memcpy(dst, src, es);
    return;
  }
  /* Output rows along the last dim are the input row repeated; each outer
   * output coordinate maps back to the input with a modulo. */
  int64_t ist[MF_MAX_DIMS], idx[MF_MAX_DIMS] = {0};
  mfi_row_strides(nd, x->dims, ist);
  size_t row = (size_t)x->dims[nd - 1] * es;
  int64_t rows = k->out[0]->numel / om->dims[nd - 1];
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += (idx[d] % x->dims[d]) * ist[d];
    for (int64_t t = 0; t < m[nd - 1]; t++) {
      memcpy(dst, src + off * (int64_t)es, row);
      dst += row;
    }
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < om->dims[d]) break;
      idx[d] = 0;
    }
  }
}

/* ---------------------------------------------------------------- Shape, Size */

static void infer_shape(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  mfi_meta *o = &c->op->out[0];
  o->dtype = MF_INT32;
  o->ndim = 1;
  o->dims[0] = c->in[0].ndim; /* -1 when the rank is unknown */
}

static void prepare_shape(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  for (int i = 0; i < x->ndim; i++)
    if (x->dims[i] > INT32_MAX) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "dimension %d (%lld) does not fit in int32", i + 1, (long long)x->dims[i]);
      return;
    }
}

/* The output is in host memory (host_out): the dims are written there. */
static void cpu_shape(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int64_t n = x->ndim;
  if (!mfi_out_new(k, 0, MF_INT32, 1, &n)) return;
  int32_t *o = mfi_data(k->out[0]);
  for (int i = 0; i < x->ndim; i++) o[i] = (int32_t)x->dims[i];
}

static void infer_size(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0].dtype = MF_INT32;
  c->op->out[0].ndim = 0;
}

static void prepare_size(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (x->numel > INT32_MAX)
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "size %lld does not fit in int32",
                 (long long)x->numel);
}

static void cpu_size(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  if (!mfi_out_new(k, 0, MF_INT32, 0, NULL)) return;
  *(int32_t *)mfi_data(k->out[0]) = (int32_t)x->numel;
}

/* ---------------------------------------------------------------- registry */

/* ---------------------------------------------------------------- gradients */

/* A gradient op over inputs `in` carrying some of the forward op's attributes. */
static mf_op_desc *grad_op(mfi_grad_ctx *g, const char *type, int n, const mf_output *in,
                           const char *const *attrs)
{
  mf_op_desc *d = mfi_gb_begin(g, type);
  for (int i = 0; d && i < n; i++) mf_op_add_input(d, in[i]);
  for (int i = 0; d && attrs && attrs[i]; i++) mfi_gb_copy_attr(d, g->op, attrs[i]);
  return d;
}

static void grad_identity(mfi_grad_ctx *g) { g->dx[0] = g->dy[0]; }

static void grad_reshape_like(mfi_grad_ctx *g)
{
  g->dx[0] = mfi_gb2(g, "ReshapeLike", g->dy[0], g->op->inputs[0]);
}

static void grad_transpose(mfi_grad_ctx *g)
{
  int n;
  const int64_t *perm = mfi_attr_ints(g->op, "perm", &n);
  mf_op_desc *d = grad_op(g, "Transpose", 1, &g->dy[0], NULL);
  if (perm && d) { /* the inverse permutation, 1-based */
    int64_t inv[MF_MAX_DIMS];
    for (int i = 0; i < n && i < MF_MAX_DIMS; i++) {
      int64_t p = perm[i] < 0 ? perm[i] + n : perm[i] - 1;
      if (p >= 0 && p < n) inv[p] = i + 1;
    }
    mf_op_set_attr_ints(d, "perm", inv, n);
  }
  g->dx[0] = mfi_gb_finish(g, d, 0);
}

static void grad_concat(mfi_grad_ctx *g)
{
  const mf_op *op = g->op;
  mf_op_desc *d = mfi_gb_begin(g, "SplitLike");
  if (d) mf_op_add_input(d, g->dy[0]);
  for (int i = 0; d && i < op->nin; i++) mf_op_add_input(d, op->inputs[i]);
  mfi_gb_copy_attr(d, op, "axis");
  mf_output first = mfi_gb_finish(g, d, 0);
  for (int i = 0; first.op && i < op->nin; i++) g->dx[i] = (mf_output){first.op, i};
}

static void grad_pack(mfi_grad_ctx *g)
{
  static const char *const attrs[] = {"axis", NULL};
  mf_output first = mfi_gb_finish(g, grad_op(g, "Unpack", 1, &g->dy[0], attrs), 0);
  for (int i = 0; first.op && i < g->op->nin; i++) g->dx[i] = (mf_output){first.op, i};
}

/* Unpack and Split: put the pieces back together (zeros for pieces without a gradient). */
static void grad_join(mfi_grad_ctx *g)
{
  const mf_op *op = g->op;
  mf_op_desc *d = mfi_gb_begin(g, strcmp(op->def->type, "Unpack") == 0 ? "Pack" : "ConcatV2");
  for (int i = 0; d && i < op->nout; i++) {
    mf_output dyi = mfi_gb_dy(g, i);
    if (!mfi_ok(g->status)) break;
    mf_op_add_input(d, dyi);
  }
  mfi_gb_copy_attr(d, op, "axis");
  g->dx[0] = mfi_gb_finish(g, d, 0);
}

/* SliceGrad(dy, x) with the slice's begin and size: attributes, or its
 * run-time inputs passed on. */
static void grad_slice(mfi_grad_ctx *g)
{
  static const char *const attrs[] = {"begin", "size", NULL};
  const mf_op *op = g->op;
  mf_output in[4] = {g->dy[0], op->inputs[0]};
  for (int i = 1; i < op->nin; i++) in[i + 1] = op->inputs[i];
  g->dx[0] = mfi_gb_finish(g, grad_op(g, "SliceGrad", op->nin + 1, in, attrs), 0);
}

static void grad_gather(mfi_grad_ctx *g)
{
  static const char *const attrs[] = {"axis", NULL};
  mf_output in[3] = {g->dy[0], g->op->inputs[1], g->op->inputs[0]};
  g->dx[0] = mfi_gb_finish(g, grad_op(g, "GatherGrad", 3, in, attrs), 0);
}

static void grad_tile(mfi_grad_ctx *g)
{
  static const char *const attrs[] = {"multiples", NULL};
  const mf_op *op = g->op;
  mf_output in[3] = {g->dy[0], op->inputs[0], op->nin > 1 ? op->inputs[1] : op->inputs[0]};
  g->dx[0] = mfi_gb_finish(g, grad_op(g, "TileGrad", op->nin + 1, in, attrs), 0);
}

mfi_opdef mfi_ops_array[] = {
    {.type = "Identity",
     .doc = "Passes its input on unchanged.",
     .inputs = "input",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_identity,
     .kernel = {[MFI_DEVICE_CPU] = cpu_identity},
     .grad = grad_identity},
    {.type = "StopGradient",
     .doc = "Passes its input on; gradients stop here.",
     .inputs = "input",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT | MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_identity,
     .kernel = {[MFI_DEVICE_CPU] = cpu_identity}},
    {.type = "Transpose",
     .doc = "Permutes the dimensions of x (default: reverses them).",
     .inputs = "x",
     .outputs = "y",
     .attrs = "perm: ints?",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_transpose,
     .prepare = prepare_transpose,
     .kernel = {[MFI_DEVICE_CPU] = cpu_transpose},
     .grad = grad_transpose},
    {.type = "Reshape",
     .doc = "The tensor with a new shape (one dimension may be -1), from the attribute or a host "
            "input.",
     .inputs = "tensor, shape?",
     .outputs = "output",
     .attrs = "shape: ints?",
     .min_inputs = 1,
     .max_inputs = 2,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_reshape,
     .prepare = prepare_reshape,
     .kernel = {[MFI_DEVICE_CPU] = cpu_view},
     .host_in = 1u << 1,
     .grad = grad_reshape_like},
    {.type = "ConcatV2",
     .doc = "Joins tensors along an axis.",
     .inputs = "values*",
     .outputs = "output",
     .attrs = "axis: int",
     .min_inputs = 1,
     .max_inputs = -1,
     .infer = infer_concat,
     .prepare = prepare_concat,
     .kernel = {[MFI_DEVICE_CPU] = cpu_concat},
     .grad = grad_concat},
    {.type = "Pack",
     .doc = "Stacks tensors of one shape along a new axis.",
     .inputs = "values*",
     .outputs = "output",
     .attrs = "axis: int = 1",
     .min_inputs = 1,
     .max_inputs = -1,
     .infer = infer_pack,
     .prepare = prepare_pack,
     .kernel = {[MFI_DEVICE_CPU] = cpu_pack},
     .grad = grad_pack},
    {.type = "Unpack",
     .doc = "Splits a tensor into its slices along an axis.",
     .inputs = "value",
     .outputs = "output*",
     .attrs = "axis: int = 1",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_unpack,
     .prepare = prepare_unpack,
     .kernel = {[MFI_DEVICE_CPU] = cpu_unpack},
     .grad = grad_join},
    {.type = "Split",
     .doc = "Splits a tensor into num_split equal pieces along an axis.",
     .inputs = "value",
     .outputs = "output*",
     .attrs = "num_split: int; axis: int = 1",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_split,
     .prepare = prepare_split,
     .kernel = {[MFI_DEVICE_CPU] = cpu_split},
     .grad = grad_join},
    {.type = "Slice",
     .doc = "A slice given by begin (1-based) and size (-1: to the end), from attributes or host "
            "inputs.",
     .inputs = "input, begin?, size?",
     .outputs = "output",
     .attrs = "begin: ints?; size: ints?",
     .min_inputs = 1,
     .max_inputs = 3,
     .infer = infer_slice,
     .prepare = prepare_slice,
     .kernel = {[MFI_DEVICE_CPU] = cpu_slice},
     .host_in = 1u << 1 | 1u << 2,
     .grad = grad_slice},
    {.type = "GatherV2",
     .doc = "Gathers slices of params along an axis at 1-based indices.",
     .inputs = "params, indices",
     .outputs = "output",
     .attrs = "axis: int = 1",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_gather,
     .prepare = prepare_gather,
     .kernel = {[MFI_DEVICE_CPU] = cpu_gather},
     .host_in = 1u << 1,
     .grad = grad_gather},
    {.type = "OneHot",
     .doc = "One-hot encoding of 1-based indices with depth classes.",
     .inputs = "indices, depth?",
     .outputs = "output",
     .attrs = "depth: int?; axis: int = -1; dtype: type = float32; on_value: float = 1; off_value: "
              "float = 0",
     .min_inputs = 1,
     .max_inputs = 2,
     .flags = MFI_NO_GRADIENT,
     .infer = infer_onehot,
     .prepare = prepare_onehot,
     .kernel = {[MFI_DEVICE_CPU] = cpu_onehot},
     .host_in = 1u << 1},
    {.type = "ExpandDims",
     .doc = "Inserts a dimension of size 1 at an axis.",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: int",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_expand,
     .prepare = prepare_expand,
     .kernel = {[MFI_DEVICE_CPU] = cpu_view},
     .grad = grad_reshape_like},
    {.type = "Squeeze",
     .doc = "Removes dimensions of size 1 (all, or those listed).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "axis: ints?",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS,
     .infer = infer_squeeze,
     .prepare = prepare_squeeze,
     .kernel = {[MFI_DEVICE_CPU] = cpu_view},
     .grad = grad_reshape_like},
    {.type = "Tile",
     .doc = "Repeats a tensor multiples[i] times along each dimension.",
     .inputs = "input, multiples?",
     .outputs = "output",
     .attrs = "multiples: ints?",
     .min_inputs = 1,
     .max_inputs = 2,
     .infer = infer_tile,
     .prepare = prepare_tile,
     .kernel = {[MFI_DEVICE_CPU] = cpu_tile},
     .host_in = 1u << 1,
     .grad = grad_tile},
    {.type = "Shape",
     .doc = "The shape of a tensor as an int32 vector (in host memory).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT | MFI_ANY_DEVICE,
     .infer = infer_shape,
     .prepare = prepare_shape,
     .kernel = {[MFI_DEVICE_CPU] = cpu_shape},
     .host_out = 1u << 0},
    {.type = "Size",
     .doc = "The element count of a tensor as an int32 scalar (in host memory).",
     .inputs = "input",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_NO_GRADIENT | MFI_ANY_DEVICE,
     .infer = infer_size,
     .prepare = prepare_size,
     .kernel = {[MFI_DEVICE_CPU] = cpu_size},
     .host_out = 1u << 0},
    {0},
};
