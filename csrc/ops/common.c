/* The op registry and helpers shared by every op family. */
#include "../internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mfi_opdef *const families[] = {
    mfi_ops_math,  mfi_ops_array,   mfi_ops_reduce, mfi_ops_state,  mfi_ops_matmul, mfi_ops_random,
    mfi_ops_train, mfi_ops_grad,    mfi_ops_nn,     mfi_ops_sparse, mfi_ops_rnn,    mfi_ops_control,
    mfi_ops_debug, mfi_ops_summary, mfi_ops_conv,   mfi_ops_index,  mfi_ops_mpi};

mfi_opdef *mfi_opdef_lookup(const char *type)
{
  for (size_t f = 0; f < sizeof families / sizeof *families; f++)
    for (mfi_opdef *d = families[f]; d->type; d++)
      if (strcmp(d->type, type) == 0) return d;
  return NULL;
}

void mfi_registry_fill_any_device(void)
{
  for (size_t f = 0; f < sizeof families / sizeof *families; f++)
    for (mfi_opdef *d = families[f]; d->type; d++)
      for (int t = 0; (d->flags & MFI_ANY_DEVICE) && t < MFI_NUM_DEVICE_TYPES; t++)
        if (!d->kernel[t]) d->kernel[t] = d->kernel[MFI_DEVICE_CPU];
}

/* Rows are complete once the backends have registered their kernels. */
const mfi_opdef *mfi_opdef_find(const char *type)
{
  if (!type) return NULL;
  mfi_devices_init();
  return mfi_opdef_lookup(type);
}

const char *mf_op_type_name(int i)
{
  if (i < 0) return NULL;
  for (size_t f = 0; f < sizeof families / sizeof *families; f++)
    for (const mfi_opdef *d = families[f]; d->type; d++)
      if (i-- == 0) return d->type;
  return NULL;
}

int mf_op_type_has_gradient(const char *type)
{
  const mfi_opdef *d = mfi_opdef_find(type);
  return d && d->grad != NULL;
}

int mf_op_type_num_ref_inputs(const char *type)
{
  const mfi_opdef *d = mfi_opdef_find(type);
  return d ? d->nref : 0;
}

void mfi_infer_error(mfi_infer_ctx *c, mf_code code, const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mfi_op_error(c->status, code, c->op, "%s", msg);
}

bool mfi_set_outputs(mfi_infer_ctx *c, int n)
{
  if (!c->building) {
    mfi_infer_error(c, MF_INTERNAL, "a kernel tried to set the op's outputs");
    return false;
  }
  c->building->nout = n;
  c->building->out = calloc(n ? n : 1, sizeof(mfi_meta));
  if (!c->building->out) {
    mfi_infer_error(c, MF_RESOURCE_EXHAUSTED, "out of memory");
    return false;
  }
  return true;
}

bool mfi_broadcast_shape(int andim, const int64_t *ad, int bndim, const int64_t *bd, int *ondim,
                         int64_t *od)
{
  int n = andim > bndim ? andim : bndim;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - andim), ib = i - (n - bndim);
    int64_t x = ia >= 0 ? ad[ia] : 1, y = ib >= 0 ? bd[ib] : 1;
    if (x == y || y == 1)
      od[i] = x;
    else if (x == 1)
      od[i] = y;
    else if (x == -1 || y == -1)
      od[i] = x == -1 ? y : x; /* static: the known one wins */
    else
      return false;
  }
  *ondim = n;
  return true;
}

bool mfi_broadcast_meta(mfi_infer_ctx *c, const mfi_meta *a, const mfi_meta *b, mfi_meta *out)
{
  if (a->ndim < 0 || b->ndim < 0) {
    out->ndim = -1;
    return true;
  }
  if (!mfi_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &out->ndim, out->dims)) {
    char x[128], y[128];
    mfi_shape_str(a->ndim, a->dims, x, sizeof x);
    mfi_shape_str(b->ndim, b->dims, y, sizeof y);
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "incompatible shapes %s and %s for broadcasting", x, y);
    return false;
  }
  /* A -1 against a 1 stays unknown. */
  int n = out->ndim;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
    int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
    if ((x == -1 && y == 1) || (y == -1 && x == 1)) out->dims[i] = -1;
  }
  return true;
}

int mfi_axis(mfi_infer_ctx *c, int64_t axis, int rank, const char *what)
{
  if (axis >= 1 && axis <= rank) return (int)axis - 1;
  if (axis < 0 && axis >= -(int64_t)rank) return rank + (int)axis;
  mfi_infer_error(c, MF_INVALID_ARGUMENT,
                  "%s %lld is out of range for rank %d (use 1..%d or -%d..-1)", what,
                  (long long)axis, rank, rank, rank);
  return -1;
}

bool mfi_out_new(mfi_kctx *k, int i, mf_dtype dt, int ndim, const int64_t *dims)
{
  mf_status tmp;
  mfi_clear(&tmp);
  k->out[i] = mfi_tensor_empty_on(mfi_out_device(k->op->def, i, k->dev), dt, ndim, dims, &tmp);
  if (!k->out[i]) {
    mfi_op_error(k->status, mf_status_code(&tmp), k->op, "%s", tmp.msg);
    return false;
  }
  return true;
}

void mfi_uninitialized_error(mfi_kctx *k, int i)
{
  const mfi_var_ref *v = &k->vars[i];
  if (v->init)
    mfi_op_error(k->status, MF_FAILED_PRECONDITION, k->op,
                 "attempting to use uninitialized value %s (run its initializer op '%s' first: "
                 "a target of mf_session_run)",
                 v->name, v->init);
  else
    mfi_op_error(k->status, MF_FAILED_PRECONDITION, k->op,
                 "attempting to use uninitialized value %s (no Assign op initializes it: add one "
                 "and run it first)",
                 v->name);
}

mf_tensor *mfi_var_writable(mfi_kctx *k, int i)
{
  mf_tensor *cur = *k->vars[i].slot;
  if (!cur) {
    mfi_uninitialized_error(k, i);
    return NULL;
  }
  if (mfi_tensor_exclusive(cur)) return cur;
  mf_status tmp;
  mfi_clear(&tmp);
  mf_tensor *copy = mfi_tensor_copy(cur, &tmp);
  if (!copy) {
    mfi_op_error(k->status, tmp.code, k->op, "%s", tmp.msg);
    return NULL;
  }
  mf_tensor_delete(cur);
  return *k->vars[i].slot = copy;
}

void *mfi_scratch(mfi_kctx *k, size_t nbytes)
{
  int i = k->nscratch;
  if (i == MFI_MAX_SCRATCH) {
    mfi_op_error(k->status, MF_INTERNAL, k->op, "asked for more than %d scratch blocks",
                 MFI_MAX_SCRATCH);
    return NULL;
  }
  void *p = mfi_device_alloc(k->dev, nbytes);
  if (!p) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op,
                 "out of memory allocating %zu bytes of scratch on %s", nbytes, k->dev->name);
    return NULL;
  }
  k->scratch[i] = p, k->scratch_bytes[i] = nbytes, k->nscratch = i + 1;
  return p;
}

void mfi_bcast_strides(int ondim, const int64_t *odims, int indim, const int64_t *idims,
                       int64_t *strides)
{
  int64_t st = 1;
  for (int i = ondim - 1; i >= 0; i--) {
    int ii = i - (ondim - indim);
    if (ii < 0) {
      strides[i] = 0;
      continue;
    }
    strides[i] = (idims[ii] == 1 && odims[i] != 1) ? 0 : st;
    st *= idims[ii];
  }
}
