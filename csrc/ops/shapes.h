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
/* ---------------------------------------------------------------- integer-list arguments */

/* An unknown value in an mfi_ints. */
#define MFI_UNKNOWN INT64_MIN

/* An integer list that an op takes as an attribute (a constant) or as a
 * host-memory input (its run-time form, e.g. a shape computed from
 * tf.shape): n entries (-1 when even the length is unknown), each a value or
 * MFI_UNKNOWN. */
typedef struct {
  int n;
  int64_t v[MF_MAX_DIMS];
} mfi_ints;

/* Argument `name`: input `idx` when the op has that input, else the
 * attribute of that name. With k NULL (inference) an input is folded to
 * what is known statically (a Const, the static dims of a Shape, a Pack or
 * ConcatV2 of those, ...); in a prepare hook (k set) it is read from the
 * input's value, all known. The input must be an int32/int64 vector
 * (scalar when `scalar`) of at most MF_MAX_DIMS entries. 1 found, 0 absent,
 * -1 after reporting an error. */
int mfi_ints_arg(mfi_infer_ctx *c, const mfi_kctx *k, const char *name, int idx, bool scalar,
                 mfi_ints *out);
/* The same for a rank-1 input holding a shape: negative entries (except
 * where allow_minus1 lets -1 through) are errors naming the dimension. */
int mfi_shape_arg(mfi_infer_ctx *c, const mfi_kctx *k, const char *name, int idx, bool allow_minus1,
                  mfi_ints *out);
/* out = the static shape (dtype dt) an mfi_ints shape describes. */
void mfi_meta_from_ints(const mfi_ints *s, mf_dtype dt, mfi_meta *out);

/* Slice's output shape from begin and size (attributes, or inputs 1 and 2
 * of the Slice in `c`, or inputs first, first + 1 of SliceGrad); start[i]
 * is the 0-based start along dimension i (MFI_UNKNOWN at inference when
 * begin is computed). */
bool mfi_slice_shape(mfi_infer_ctx *c, const mfi_kctx *k, int first, const mfi_meta *x,
                     mfi_meta *out, int64_t *start);

/* GatherV2's output shape and 0-based axis (GatherGrad shares it). */
bool mfi_gather_shape(mfi_infer_ctx *c, const mfi_meta *p, const mfi_meta *ids, mfi_meta *out,
                      int *axis);

/* Tile's output shape from "multiples" (the attribute or input `idx`);
 * mult gets the multiples. */
bool mfi_tile_shape(mfi_infer_ctx *c, const mfi_kctx *k, int idx, const mfi_meta *x, mfi_meta *out,
                    int64_t *mult);

/* Every 1-based id within 1..dim (dimension `axis`, 0-based, of the params);
 * false with an MF_OUT_OF_RANGE error naming the first bad one. For prepare
 * hooks: the ids must be a host-memory input (host_in). */
bool mfi_check_ids(mfi_kctx *k, const mf_tensor *ids, int64_t dim, int axis);

#endif
