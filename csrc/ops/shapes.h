/* Helpers shared by the op families: runtime metadata, shape functions and
 * strided copies. Internal to csrc/ops. */
#ifndef MOONFLOW_OPS_SHAPES_H
#define MOONFLOW_OPS_SHAPES_H

#include "../internal.h"

/* The metadata of a run-time value. */
mfi_meta mfi_tensor_meta(const mf_tensor *t);
/* m[i] = the metadata of input i, for i < n. */
void mfi_input_metas(const mfi_kctx *k, int n, mfi_meta *m);
/* A context for running a shape function in a prepare hook on the run-time
 * metadata `in`: the op is only read, and errors land in the kernel's
 * status. Prepare leaves what it works out in k->shapes and k->params. */
mfi_infer_ctx mfi_prepare_infer_ctx(mfi_kctx *k, const mfi_meta *in);
int64_t mfi_dims_prod(const int64_t *dims, int from, int to);
void mfi_row_strides(int nd, const int64_t *dims, int64_t *st);
const char *mfi_meta_str(const mfi_meta *m, char *buf, size_t size);
/* The element count, or -1 when a dimension or the rank is unknown. */
int64_t mfi_known_numel(const mfi_meta *m);
/* Two static dimensions that must agree (-1 matches anything). */
bool mfi_merge_dim(int64_t a, int64_t b, int64_t *out);
bool mfi_is_index_dtype(mf_dtype dt);
/* Releases outputs 0..n-1 after a failed kernel. */
void mfi_drop_outputs(mfi_kctx *k, int n);
/* New outputs 0..n-1 with the dtypes and shapes prepare left in k->shapes;
 * false, with none kept, when one cannot be had. */
bool mfi_outs_new(mfi_kctx *k, int n);
/* Fills the contiguous dst (shape dims) from src read with per-dimension
 * element strides: transpose and slice are both this. */
void mfi_strided_copy(char *dst, const char *src, size_t es, int nd, const int64_t *dims,
                      const int64_t *st);
/* Slice's output shape from its begin/size attributes; start[i] is the
 * 0-based start along dimension i. */
bool mfi_slice_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, int64_t *start);

/* GatherV2's output shape and 0-based axis (GatherGrad shares it). */
bool mfi_gather_shape(mfi_infer_ctx *c, const mfi_meta *p, const mfi_meta *ids, mfi_meta *out,
                      int *axis);

bool mfi_tile_shape(mfi_infer_ctx *c, const mfi_meta *x, mfi_meta *out, const int64_t **mult);

/* Every 1-based id within 1..dim (dimension `axis`, 0-based, of the params);
 * false with an MF_OUT_OF_RANGE error naming the first bad one. For prepare
 * hooks: the ids must be a host-memory input (host_in). */
bool mfi_check_ids(mfi_kctx *k, const mf_tensor *ids, int64_t dim, int axis);

#endif
