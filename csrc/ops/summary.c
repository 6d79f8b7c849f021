/* Summary ops (tf.summary): each turns its inputs into a serialized Summary
 * protocol buffer, a scalar string (csrc/summary.c encodes). They run on the
 * host: their inputs are small, and strings live there. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "../strbuf.h"
#include "../summary.h"

#define ALL_HOST 0xffffffffu

static bool numeric(mf_dtype dt)
{
  return dt == MF_FLOAT32 || dt == MF_FLOAT64 || dt == MF_INT32 || dt == MF_INT64 || dt == MF_UINT8;
}

static bool want_dtype(mfi_infer_ctx *c, int i, const char *name, bool string)
{
  mf_dtype dt = c->in[i].dtype;
  if (string ? dt == MF_STRING : numeric(dt)) return true;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be %s, got %s", name,
                  string ? "a string tensor" : "a real-number tensor", mf_dtype_name(dt));
  return false;
}

static bool want_scalar(mfi_infer_ctx *c, int i, const char *name)
{
  if (c->in[i].ndim <= 0) return true;
  char sh[128];
  mfi_shape_str(c->in[i].ndim, c->in[i].dims, sh, sizeof sh);
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s must be a scalar, got shape %s", name, sh);
  return false;
}

static void string_scalar_out(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0].dtype = MF_STRING;
  c->op->out[0].ndim = 0;
}

/* Element i of a numeric tensor as a double. */
static double num_at(const mf_tensor *t, int64_t i)
{
  const void *d = mfi_data(t);
  switch (t->dtype) {
  case MF_FLOAT32: return ((const float *)d)[i];
  case MF_FLOAT64: return ((const double *)d)[i];
  case MF_INT32: return ((const int32_t *)d)[i];
  case MF_INT64: return (double)((const int64_t *)d)[i];
  default: return ((const uint8_t *)d)[i];
  }
}

/* String element i as a NUL-terminated copy (malloc'ed), or NULL with the
 * op's error (a NUL byte inside). */
static char *str_at(mfi_kctx *k, const mf_tensor *t, int64_t i, const char *name)
{
  if (i >= t->numel) { /* a scalar's shape is known only when it runs */
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "%s has %lld elements, not the one needed",
                 name, (long long)t->numel);
    return NULL;
  }
  size_t n;
  const char *p = mfi_string_get(t, i, &n);
  if (!p) p = "", n = 0;
  if (memchr(p, 0, n)) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "%s holds a NUL byte", name);
    return NULL;
  }
  char *r = malloc(n + 1);
  if (!r) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    return NULL;
  }
  memcpy(r, p, n);
  r[n] = 0;
  return r;
}

/* The output: *n bytes as a scalar string (takes bytes; NULL: the error is
 * set). n is read after bytes was made: set_out(k, encode(.., &n), &n). */
static void set_out(mfi_kctx *k, uint8_t *bytes, const size_t *n)
{
  if (!bytes) return;
  mf_tensor *t = mfi_string_tensor_new(0, NULL, k->status);
  if (t && mfi_string_set(t, 0, bytes, *n, k->status))
    k->out[0] = t;
  else
    mf_tensor_delete(t);
  free(bytes);
}

/* Encoder errors name the op: "<label>: ..." */
static const char *label(mfi_kctx *k, char *buf, size_t size)
{
  mfi_op_label(k->op, buf, size);
  return buf;
}

/* ---------------------------------------------------------------- ScalarSummary(tags, values) */

static void infer_scalar(mfi_infer_ctx *c)
{
  if (!want_dtype(c, 0, "tags", true) || !want_dtype(c, 1, "values", false)) return;
  const mfi_meta *a = &c->in[0], *b = &c->in[1];
  bool differ = a->ndim >= 0 && b->ndim >= 0 && a->ndim != b->ndim;
  for (int i = 0; !differ && a->ndim >= 0 && i < a->ndim && i < b->ndim; i++)
    differ = a->dims[i] >= 0 && b->dims[i] >= 0 && a->dims[i] != b->dims[i];
  if (differ) {
    char sa[128], sb[128];
    mfi_shape_str(a->ndim, a->dims, sa, sizeof sa);
    mfi_shape_str(b->ndim, b->dims, sb, sizeof sb);
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "tags and values must have the same shape, got %s and %s", sa, sb);
    return;
  }
  string_scalar_out(c);
}

static void cpu_scalar(mfi_kctx *k)
{
  const mf_tensor *tags = k->in[0], *vals = k->in[1];
  bool same = tags->ndim == vals->ndim;
  for (int i = 0; same && i < tags->ndim; i++) same = tags->dims[i] == vals->dims[i];
  if (!same) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "tags and values must have the same shape");
    return;
  }
  char what[512];
  label(k, what, sizeof what);
  mfi_strbuf b = {0};
  for (int64_t i = 0; i < tags->numel && mfi_ok(k->status); i++) {
    char *tag = str_at(k, tags, i, "tags");
    size_t n = 0;
    uint8_t *one = tag ? mfi_summary_scalar(what, tag, num_at(vals, i), &n, k->status) : NULL;
    if (one) mfi_sb_add(&b, one, n);
    free(one), free(tag);
  }
  if (b.oom) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  if (mfi_ok(k->status)) {
    size_t n = b.n;
    set_out(k, b.p ? (uint8_t *)b.p : calloc(1, 1), &n);
  } else {
    free(b.p);
  }
}

/* ---------------------------------------------------------------- HistogramSummary(tag, values) */

static void infer_histogram(mfi_infer_ctx *c)
{
  if (want_dtype(c, 0, "tag", true) && want_scalar(c, 0, "tag") &&
      want_dtype(c, 1, "values", false))
    string_scalar_out(c);
}

static void cpu_histogram(mfi_kctx *k)
{
  const mf_tensor *vals = k->in[1];
  char *tag = str_at(k, k->in[0], 0, "tag");
  double *v = tag ? malloc((size_t)(vals->numel ? vals->numel : 1) * sizeof *v) : NULL;
  if (tag && !v) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  if (v) {
    for (int64_t i = 0; i < vals->numel; i++) v[i] = num_at(vals, i);
    char what[512];
    size_t n = 0;
    set_out(k,
            mfi_summary_histogram(label(k, what, sizeof what), tag, v, vals->numel, &n, k->status),
            &n);
  }
  free(v), free(tag);
}

/* ---------------------------------------------------------------- ImageSummary(tag, tensor) */

static void infer_image(mfi_infer_ctx *c)
{
  if (!want_dtype(c, 0, "tag", true) || !want_scalar(c, 0, "tag")) return;
  const mfi_meta *t = &c->in[1];
  if (t->dtype != MF_UINT8 && t->dtype != MF_FLOAT32 && t->dtype != MF_FLOAT64) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "tensor must be uint8, float32 or float64, got %s",
                    mf_dtype_name(t->dtype));
    return;
  }
  if (t->ndim >= 0 && (t->ndim != 4 || (t->dims[3] >= 0 && t->dims[3] != 1 && t->dims[3] != 3 &&
                                        t->dims[3] != 4))) {
    char sh[128];
    mfi_shape_str(t->ndim, t->dims, sh, sizeof sh);
    mfi_infer_error(
        c, MF_INVALID_ARGUMENT,
        "tensor must be 4-D [batch, height, width, channels] with 1, 3 or 4 channels, got %s", sh);
    return;
  }
  int64_t max_images;
  if (!mfi_check_int(c, "max_images", false, 3, &max_images)) return;
  if (max_images < 1) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "max_images must be at least 1, got %lld",
                    (long long)max_images);
    return;
  }
  string_scalar_out(c);
}

/* One image's pixels as bytes: uint8 as they are; floats as TF's
 * ImageSummary scales them (all in [0, 1]: times 255; all >= 0: the maximum
 * to 255; else the largest magnitude to 127, offset by 128). */
static void image_bytes(const mf_tensor *t, int64_t first, int64_t count, uint8_t *out)
{
  if (t->dtype == MF_UINT8) {
    memcpy(out, (const uint8_t *)mfi_data(t) + first, (size_t)count);
    return;
  }
  double lo = DBL_MAX, hi = -DBL_MAX;
  for (int64_t i = 0; i < count; i++) {
    double x = num_at(t, first + i);
    if (isfinite(x)) lo = fmin(lo, x), hi = fmax(hi, x);
  }
  double scale = 255, offset = 0;
  if (lo > hi) lo = hi = 0;
  if (lo >= 0 && hi > 1)
    scale = 255 / hi;
  else if (lo < 0)
    scale = 127 / fmax(-lo, hi), offset = 128;
  for (int64_t i = 0; i < count; i++) {
    double x = num_at(t, first + i);
    double y = isfinite(x) ? x * scale + offset : 0;
    out[i] = (uint8_t)fmin(255, fmax(0, round(y)));
  }
}

static void cpu_image(mfi_kctx *k)
{
  const mf_tensor *t = k->in[1];
  if (t->ndim != 4 || t->dims[1] < 1 || t->dims[2] < 1 || t->dims[1] > (1 << 20) ||
      t->dims[2] > (1 << 20)) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "tensor must have a positive height and width (at most 2^20)");
    return;
  }
  int64_t max_images = mfi_attr_int(k->op, "max_images", 3);
  int64_t batch = t->dims[0] < max_images ? t->dims[0] : max_images;
  int64_t per = t->dims[1] * t->dims[2] * t->dims[3];
  char *tag = str_at(k, k->in[0], 0, "tag");
  uint8_t *px = tag ? malloc((size_t)per) : NULL;
  if (tag && !px) mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  char what[512];
  label(k, what, sizeof what);
  mfi_strbuf b = {0}, name = {0};
  for (int64_t i = 0; px && i < batch && mfi_ok(k->status); i++) {
    image_bytes(t, i * per, per, px);
    name.n = 0;
    if (max_images == 1)
      mfi_sb_fmt(&name, "%s/image", tag);
    else
      mfi_sb_fmt(&name, "%s/image/%lld", tag, (long long)i);
    size_t n = 0;
    uint8_t *one = name.oom ? NULL
                            : mfi_summary_image(what, name.p, px, (int)t->dims[1], (int)t->dims[2],
                                                (int)t->dims[3], &n, k->status);
    if (one) mfi_sb_add(&b, one, n);
    free(one);
  }
  if ((b.oom || name.oom) && mfi_ok(k->status))
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  free(px), free(tag), free(name.p);
  if (mfi_ok(k->status))
    set_out(k, b.p ? (uint8_t *)b.p : calloc(1, 1), &b.n);
  else
    free(b.p);
}

/* ------------------------------------------- TensorSummaryV2(tag, tensor,
 * serialized_summary_metadata) */

static void infer_tensor(mfi_infer_ctx *c)
{
  if (!want_dtype(c, 0, "tag", true) || !want_scalar(c, 0, "tag")) return;
  if (c->in[1].dtype != MF_STRING) {
    mfi_infer_error(c, MF_UNIMPLEMENTED, "tensor must be a string tensor (text), got %s",
                    mf_dtype_name(c->in[1].dtype));
    return;
  }
  if (want_dtype(c, 2, "serialized_summary_metadata", true) &&
      want_scalar(c, 2, "serialized_summary_metadata"))
    string_scalar_out(c);
}

static void cpu_tensor(mfi_kctx *k)
{
  const mf_tensor *t = k->in[1];
  char *tag = str_at(k, k->in[0], 0, "tag");
  if (!tag) return;
  int64_t count = t->numel;
  const char **strs = malloc((size_t)(count ? count : 1) * sizeof *strs);
  size_t *lens = malloc((size_t)(count ? count : 1) * sizeof *lens);
  if (strs && lens) {
    for (int64_t i = 0; i < count; i++) {
      strs[i] = mfi_string_get(t, i, &lens[i]);
      if (!strs[i]) strs[i] = "", lens[i] = 0;
    }
    size_t mlen = 0, n = 0;
    const char *md = k->in[2]->numel == 1 ? mfi_string_get(k->in[2], 0, &mlen) : NULL;
    char what[512];
    set_out(k,
            mfi_summary_strings(label(k, what, sizeof what), tag, md, md ? mlen : 0, t->ndim,
                                t->dims, strs, lens, &n, k->status),
            &n);
  } else {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
  }
  free(strs), free(lens), free(tag);
}

/* ---------------------------------------------------------------- MergeSummary(inputs...) */

static void infer_merge(mfi_infer_ctx *c)
{
  for (int i = 0; i < c->op->nin; i++) {
    if (c->in[i].dtype != MF_STRING) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "input %d must be a string tensor (a summary), got %s", i + 1,
                      mf_dtype_name(c->in[i].dtype));
      return;
    }
  }
  string_scalar_out(c);
}

static void cpu_merge(mfi_kctx *k)
{
  int64_t total = 0;
  for (int i = 0; i < k->op->nin; i++) total += k->in[i]->numel;
  const void **parts = malloc((size_t)(total ? total : 1) * sizeof *parts);
  size_t *lens = malloc((size_t)(total ? total : 1) * sizeof *lens);
  if (!parts || !lens) {
    free(parts), free(lens);
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    return;
  }
  int64_t at = 0;
  for (int i = 0; i < k->op->nin; i++)
    for (int64_t j = 0; j < k->in[i]->numel; j++, at++) {
      parts[at] = mfi_string_get(k->in[i], j, &lens[at]);
      if (!parts[at]) parts[at] = "", lens[at] = 0;
    }
  char what[512];
  size_t n = 0;
  if (total > INT32_MAX) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "too many summaries");
  } else {
    set_out(k,
            mfi_summary_merge(label(k, what, sizeof what), (int)total, parts, lens, &n, k->status),
            &n);
  }
  free(parts), free(lens);
}

mfi_opdef mfi_ops_summary[] = {
    {.type = "ScalarSummary",
     .doc = "A serialized Summary with one simple_value per element of values, tagged by tags.",
     .inputs = "tags, values",
     .outputs = "summary",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS | MFI_NO_GRADIENT,
     .infer = infer_scalar,
     .kernel = {[MFI_DEVICE_CPU] = cpu_scalar},
     .host_in = ALL_HOST,
     .host_out = ALL_HOST},
    {.type = "HistogramSummary",
     .doc = "A serialized Summary with a histogram of values over TF's default buckets.",
     .inputs = "tag, values",
     .outputs = "summary",
     .attrs = "",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS | MFI_NO_GRADIENT,
     .infer = infer_histogram,
     .kernel = {[MFI_DEVICE_CPU] = cpu_histogram},
     .host_in = ALL_HOST,
     .host_out = ALL_HOST},
    {.type = "ImageSummary",
     .doc = "A serialized Summary of up to max_images PNG images from tensor [batch, height, "
            "width, channels].",
     .inputs = "tag, tensor",
     .outputs = "summary",
     .attrs = "max_images: int = 3",
     .min_inputs = 2,
     .max_inputs = 2,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS | MFI_NO_GRADIENT,
     .infer = infer_image,
     .kernel = {[MFI_DEVICE_CPU] = cpu_image},
     .host_in = ALL_HOST,
     .host_out = ALL_HOST},
    {.type = "TensorSummaryV2",
     .doc = "A serialized Summary of a string tensor with the given serialized SummaryMetadata "
            "(text).",
     .inputs = "tag, tensor, serialized_summary_metadata",
     .outputs = "summary",
     .attrs = "",
     .min_inputs = 3,
     .max_inputs = 3,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS | MFI_NO_GRADIENT,
     .infer = infer_tensor,
     .kernel = {[MFI_DEVICE_CPU] = cpu_tensor},
     .host_in = ALL_HOST,
     .host_out = ALL_HOST},
    {.type = "MergeSummary",
     .doc = "One serialized Summary holding the values of all the input summaries (a tag twice is "
            "an error).",
     .inputs = "inputs*",
     .outputs = "summary",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = -1,
     .flags = MFI_ANY_DEVICE | MFI_STRINGS | MFI_NO_GRADIENT,
     .infer = infer_merge,
     .kernel = {[MFI_DEVICE_CPU] = cpu_merge},
     .host_in = ALL_HOST,
     .host_out = ALL_HOST},
    {0}};
