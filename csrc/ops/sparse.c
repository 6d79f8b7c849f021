/* Sparse gradients: the rows an embedding lookup touched, summed per id, so
 * an optimizer can update a vocabulary-sized variable without a dense
 * vocabulary-sized gradient. */
#include "shapes.h"

#include <stdlib.h>
#include <string.h>

/* DedupRows(values, ids): values has ids' shape followed by a row shape.
 * Outputs the distinct ids [U] in first-occurrence order and, for each,
 * the sum of its rows [U, row...] (summed in occurrence order). */
static void infer_dedup(mfi_infer_ctx *c)
{
  const mfi_meta *v = &c->in[0], *ids = &c->in[1];
  if (!mfi_is_float(v->dtype) || !mfi_is_index_dtype(ids->dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs float rows and int32/int64 ids");
    return;
  }
  if (!mfi_set_outputs(c, 2)) return;
  mfi_meta *u = &c->op->out[0], *r = &c->op->out[1];
  u->dtype = ids->dtype, u->ndim = 1, u->dims[0] = -1;
  r->dtype = v->dtype;
  if (v->ndim < 0 || ids->ndim < 0) {
    r->ndim = -1;
    return;
  }
  if (v->ndim < ids->ndim || v->ndim - ids->ndim + 1 > MF_MAX_DIMS) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the rows' rank %d is below the ids' rank %d", v->ndim,
                    ids->ndim);
    return;
  }
  r->ndim = v->ndim - ids->ndim + 1;
  r->dims[0] = -1;
  for (int i = 1; i < r->ndim; i++) r->dims[i] = v->dims[ids->ndim + i - 1];
}

static uint64_t mix(int64_t x)
{
  uint64_t z = (uint64_t)x * 0x9E3779B97F4A7C15ull;
  return z ^ (z >> 29);
}

/* The rows start with the ids' shape. (How many distinct ids there are,
 * and so the outputs' first dimension, only the kernel finds out.) */
static void prepare_dedup(mfi_kctx *k)
{
  const mf_tensor *v = k->in[0], *ids = k->in[1];
  bool ok = v->ndim >= ids->ndim;
  for (int i = 0; ok && i < ids->ndim; i++) ok = v->dims[i] == ids->dims[i];
  if (!ok)
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "the rows do not match the ids' shape");
}

static void cpu_dedup(mfi_kctx *k)
{
  const mf_tensor *v = k->in[0], *ids = k->in[1];
  int64_t n = ids->numel;
  int64_t width = n ? v->numel / n : mfi_dims_prod(v->dims, ids->ndim, v->ndim);
  int64_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  int64_t *slot = malloc(sizeof(int64_t) * (size_t)cap),
          *first = malloc(sizeof(int64_t) * (size_t)(n + 1));
  int64_t *which = malloc(sizeof(int64_t) * (size_t)(n + 1)); /* occurrence -> unique index */
  if (!slot || !first || !which) {
    free(slot), free(first), free(which);
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    return;
  }
  for (int64_t i = 0; i < cap; i++) slot[i] = -1;
  const void *ip = mfi_data(ids);
  int64_t u = 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t id = mfi_get_i(ids->dtype, ip, j), h = (int64_t)(mix(id) & (uint64_t)(cap - 1));
    while (slot[h] >= 0 && mfi_get_i(ids->dtype, ip, first[slot[h]]) != id) h = (h + 1) & (cap - 1);
    if (slot[h] < 0) slot[h] = u, first[u++] = j;
    which[j] = slot[h];
  }
  int64_t udims[1] = {u}, rdims[MF_MAX_DIMS];
  int rnd = v->ndim - ids->ndim + 1;
  rdims[0] = u;
  for (int i = 1; i < rnd; i++) rdims[i] = v->dims[ids->ndim + i - 1];
  if (mfi_out_new(k, 0, ids->dtype, 1, udims) && mfi_out_new(k, 1, v->dtype, rnd, rdims)) {
    for (int64_t q = 0; q < u; q++)
      mfi_set_i(ids->dtype, mfi_data(k->out[0]), q, mfi_get_i(ids->dtype, ip, first[q]));
    void *r = mfi_data(k->out[1]);
    memset(r, 0, mf_tensor_nbytes(k->out[1]));
    const void *src = mfi_data(v);
    if (v->dtype == MF_FLOAT32) {
      for (int64_t j = 0; j < n; j++) {
        float *dst = (float *)r + which[j] * width;
        const float *row = (const float *)src + j * width;
        for (int64_t e = 0; e < width; e++) dst[e] += row[e];
      }
    } else {
      for (int64_t j = 0; j < n; j++) {
        double *dst = (double *)r + which[j] * width;
        const double *row = (const double *)src + j * width;
        for (int64_t e = 0; e < width; e++) dst[e] += row[e];
      }
    }
  } else {
    mfi_drop_outputs(k, 2);
  }
  free(slot), free(first), free(which);
}

mfi_opdef mfi_ops_sparse[] = {
    {.type = "DedupRows",
     .doc = "The distinct ids in first-occurrence order and the sum of each one's rows.",
     .inputs = "values, ids",
     .outputs = "unique_ids, rows",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .infer = infer_dedup,
     .prepare = prepare_dedup,
     .kernel = {[MFI_DEVICE_CPU] = cpu_dedup}},
    {0}};
