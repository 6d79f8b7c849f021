/* Serialized Summary protocol buffers (TensorBoard's scalars, histograms,
 * text and images) through protobuf-c, and PNG encoding with zlib. */
/* protoc-c's initializer macros cast its const empty string to char *. */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include "summary.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "json.h"
#include "proto/summary.pb-c.h"

/* protobuf-c's messages hold char * for strings they never write through. */
static char *mut(const char *p) { return (char *)(uintptr_t)p; }

static uint8_t *pack_summary(const char *what, Tensorflow__Summary__Value *v, size_t *n,
                             mf_status *s)
{
  Tensorflow__Summary sum = TENSORFLOW__SUMMARY__INIT;
  sum.n_value = 1;
  sum.value = &v;
  size_t len = tensorflow__summary__get_packed_size(&sum);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory for a %zu-byte summary", what, len);
    return NULL;
  }
  tensorflow__summary__pack(&sum, buf);
  *n = len;
  return buf;
}

void mfi_proto_strip_unknown(ProtobufCMessage *m)
{
  for (unsigned i = 0; i < m->n_unknown_fields; i++) free(m->unknown_fields[i].data);
  free(m->unknown_fields);
  m->unknown_fields = NULL, m->n_unknown_fields = 0;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  char *base = (char *)m;
  for (unsigned f = 0; f < d->n_fields; f++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[f];
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(size_t *)(base + fd->quantifier_offset);
      ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + fd->offset);
      for (size_t k = 0; k < n; k++)
        if (arr[k]) mfi_proto_strip_unknown(arr[k]);
      continue;
    }
    if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(uint32_t *)(base + fd->quantifier_offset) != fd->id)
      continue;
    ProtobufCMessage *sub = *(ProtobufCMessage **)(base + fd->offset);
    if (sub) mfi_proto_strip_unknown(sub);
  }
}

/* Tags are protocol buffer strings, which readers (TensorBoard) refuse
 * unless they are UTF-8. */
static bool check_tag(const char *what, const char *tag, mf_status *s)
{
  if (!tag) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: tag must be a string, got NULL", what);
    return false;
  }
  if (!mfi_utf8_valid(tag, strlen(tag))) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: tag must be UTF-8 text", what);
    return false;
  }
  return true;
}

uint8_t *mfi_summary_scalar(const char *what, const char *tag, double value, size_t *n,
                            mf_status *s)
{
  if (!check_tag(what, tag, s)) return NULL;
  Tensorflow__Summary__Value v = TENSORFLOW__SUMMARY__VALUE__INIT;
  v.tag = mut(tag);
  v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
  v.simple_value = (float)value;
  return pack_summary(what, &v, n, s);
}

/* ---------------------------------------------------------------- histograms */

#define MAX_LIMITS 1600
static double limits[MAX_LIMITS];
static int nlimits;
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;

/* TF's histogram.cc InitDefaultBucketsInner: 1e-12 growing by 1.1 while
 * below 1e20, mirrored negative, 0 between, +-DBL_MAX at the ends. */
static void limits_init(void)
{
  double pos[MAX_LIMITS / 2];
  int k = 0;
  for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) pos[k++] = v;
  pos[k++] = DBL_MAX;
  int j = 0;
  for (int i = k - 1; i >= 0; i--) limits[j++] = -pos[i];
  limits[j++] = 0.0;
  for (int i = 0; i < k; i++) limits[j++] = pos[i];
  nlimits = j;
}

const double *mfi_histogram_default_limits(int *n)
{
  pthread_once(&limits_once, limits_init);
  *n = nlimits;
  return limits;
}

uint8_t *mfi_summary_histogram(const char *what, const char *tag, const double *values,
                               int64_t count, size_t *n, mf_status *s)
{
  if (!check_tag(what, tag, s)) return NULL;
  if (count < 0 || (count > 0 && !values)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: values must hold %lld numbers", what, (long long)count);
    return NULL;
  }
  int nl;
  const double *lim = mfi_histogram_default_limits(&nl);
  double *counts = calloc((size_t)nl, sizeof *counts);
  double *out_lim = malloc((size_t)nl * sizeof *out_lim);
  double *out_cnt = malloc((size_t)nl * sizeof *out_cnt);
  if (!counts || !out_lim || !out_cnt) {
    free(counts), free(out_lim), free(out_cnt);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    return NULL;
  }
  /* As TF's Histogram::Add: bucket i takes lim[i-1] <= x < lim[i]. */
  double mn = DBL_MAX, mx = -DBL_MAX, sum = 0, sumsq = 0;
  for (int64_t i = 0; i < count; i++) {
    double x = values[i];
    if (!isfinite(x)) {
      free(counts), free(out_lim), free(out_cnt);
      mfi_set(s, MF_INVALID_ARGUMENT, "%s: %s in summary histogram for: %s", what,
              isnan(x) ? "NaN" : "Inf", tag);
      return NULL;
    }
    int lo = 0, hi = nl; /* first limit > x (upper_bound) */
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (lim[mid] > x)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (lo >= nl) lo = nl - 1;
    counts[lo] += 1;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
    sum += x, sumsq += x * x;
  }
  /* As TF's EncodeToProto without preserve_zero_buckets: a run of empty
   * buckets becomes one, with the run's last limit. */
  size_t k = 0;
  for (int i = 0; i < nl;) {
    double end = lim[i], c = counts[i];
    i++;
    if (c <= 0.0)
      while (i < nl && counts[i] <= 0.0) end = lim[i], c = counts[i], i++;
    out_lim[k] = end, out_cnt[k] = c, k++;
  }
  Tensorflow__HistogramProto h = TENSORFLOW__HISTOGRAM_PROTO__INIT;
  h.min = mn, h.max = mx, h.num = (double)count, h.sum = sum, h.sum_squares = sumsq;
  h.n_bucket_limit = h.n_bucket = k;
  h.bucket_limit = out_lim, h.bucket = out_cnt;
  Tensorflow__Summary__Value v = TENSORFLOW__SUMMARY__VALUE__INIT;
  v.tag = mut(tag);
  v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_HISTO;
  v.histo = &h;
  uint8_t *r = pack_summary(what, &v, n, s);
  free(counts), free(out_lim), free(out_cnt);
  return r;
}

/* ---------------------------------------------------------------- text */

uint8_t *mfi_summary_strings(const char *what, const char *tag, const void *metadata,
                             size_t metadata_len, int ndim, const int64_t *dims,
                             const char *const *strs, const size_t *lens, size_t *n, mf_status *s)
{
  if (!check_tag(what, tag, s)) return NULL;
  Tensorflow__SummaryMetadata *md = NULL;
  if (metadata_len) {
    md = tensorflow__summary_metadata__unpack(NULL, metadata_len, metadata);
    if (!md) {
      mfi_set(s, MF_INVALID_ARGUMENT,
              "%s: serialized_summary_metadata (%zu bytes) is not a serialized SummaryMetadata",
              what, metadata_len);
      return NULL;
    }
    mfi_proto_strip_unknown(&md->base);
  }
  int64_t count = 1;
  for (int i = 0; i < ndim; i++) count *= dims[i];
  Tensorflow__TensorShapeProto__Dim dim[MF_MAX_DIMS], *dimp[MF_MAX_DIMS];
  Tensorflow__TensorShapeProto shape = TENSORFLOW__TENSOR_SHAPE_PROTO__INIT;
  for (int i = 0; i < ndim && i < MF_MAX_DIMS; i++) {
    tensorflow__tensor_shape_proto__dim__init(&dim[i]);
    dim[i].size = dims[i];
    dimp[i] = &dim[i];
  }
  shape.n_dim = (size_t)ndim, shape.dim = dimp;
  ProtobufCBinaryData *sv = malloc((size_t)(count ? count : 1) * sizeof *sv);
  if (!sv) {
    if (md) tensorflow__summary_metadata__free_unpacked(md, NULL);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    return NULL;
  }
  for (int64_t i = 0; i < count; i++)
    sv[i].len = lens[i], sv[i].data = (uint8_t *)(uintptr_t)strs[i];
  Tensorflow__TensorProto t = TENSORFLOW__TENSOR_PROTO__INIT;
  t.dtype = TENSORFLOW__DATA_TYPE__DT_STRING;
  t.tensor_shape = &shape;
  t.n_string_val = (size_t)count;
  t.string_val = sv;
  Tensorflow__Summary__Value v = TENSORFLOW__SUMMARY__VALUE__INIT;
  v.tag = mut(tag);
  v.metadata = md;
  v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_TENSOR;
  v.tensor = &t;
  uint8_t *r = pack_summary(what, &v, n, s);
  free(sv);
  if (md) tensorflow__summary_metadata__free_unpacked(md, NULL);
  return r;
}

uint8_t *mfi_summary_plugin_metadata(const char *plugin_name, size_t *n)
{
  Tensorflow__SummaryMetadata__PluginData pd = TENSORFLOW__SUMMARY_METADATA__PLUGIN_DATA__INIT;
  pd.plugin_name = mut(plugin_name);
  Tensorflow__SummaryMetadata md = TENSORFLOW__SUMMARY_METADATA__INIT;
  md.plugin_data = &pd;
  *n = tensorflow__summary_metadata__get_packed_size(&md);
  uint8_t *buf = malloc(*n ? *n : 1);
  if (buf) tensorflow__summary_metadata__pack(&md, buf);
  return buf;
}

uint8_t *mfi_summary_text(const char *what, const char *tag, const void *text, size_t len,
                          size_t *n, mf_status *s)
{
  if (!text && len) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: text must hold %zu bytes, got NULL", what, len);
    return NULL;
  }
  size_t mn;
  uint8_t *md = mfi_summary_plugin_metadata("text", &mn);
  if (!md) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    return NULL;
  }
  const char *str = text ? text : "";
  uint8_t *r = mfi_summary_strings(what, tag, md, mn, 0, NULL, &str, &len, n, s);
  free(md);
  return r;
}

/* ---------------------------------------------------------------- images */

static void put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A chunk at p: length, type, data (already at p + 8), CRC of type + data. */
static size_t chunk(uint8_t *p, const char *type, size_t len)
{
  put32(p, (uint32_t)len);
  memcpy(p + 4, type, 4);
  put32(p + 8 + len, (uint32_t)crc32(0, p + 4, (uInt)(len + 4)));
  return len + 12;
}

uint8_t *mfi_png_encode(const uint8_t *pixels, int height, int width, int channels, size_t *n)
{
  static const uint8_t color_type[] = {0, 0, 4, 2, 6};
  size_t row = (size_t)width * (size_t)channels + 1; /* filter byte 0, then the row */
  size_t raw_n = row * (size_t)height;
  uint8_t *raw = malloc(raw_n ? raw_n : 1);
  if (!raw) return NULL;
  for (int y = 0; y < height; y++) {
    raw[(size_t)y * row] = 0;
    memcpy(raw + (size_t)y * row + 1, pixels + (size_t)y * (row - 1), row - 1);
  }
  uLong z = compressBound((uLong)raw_n);
  uint8_t *png = malloc(8 + 25 + 12 + z + 12);
  if (!png) {
    free(raw);
    return NULL;
  }
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(png, sig, 8);
  size_t at = 8;
  uint8_t *ih = png + at + 8;
  put32(ih, (uint32_t)width), put32(ih + 4, (uint32_t)height);
  ih[8] = 8, ih[9] = color_type[channels], ih[10] = 0, ih[11] = 0, ih[12] = 0;
  at += chunk(png + at, "IHDR", 13);
  uLongf zn = z;
  if (compress2(png + at + 8, &zn, raw, (uLong)raw_n, 6) != Z_OK) {
    free(raw), free(png);
    return NULL;
  }
  free(raw);
  at += chunk(png + at, "IDAT", zn);
  at += chunk(png + at, "IEND", 0);
  *n = at;
  return png;
}

uint8_t *mfi_summary_image(const char *what, const char *tag, const uint8_t *pixels, int height,
                           int width, int channels, size_t *n, mf_status *s)
{
  if (!check_tag(what, tag, s)) return NULL;
  if (channels < 1 || channels > 4) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: channels must be 1, 2, 3 or 4, got %d", what, channels);
    return NULL;
  }
  if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20) ||
      (int64_t)height * width > (int64_t)1 << 28) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "%s: height and width must be positive (at most 2^28 pixels), got %dx%d", what, height,
            width);
    return NULL;
  }
  if (!pixels) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: pixels must not be NULL", what);
    return NULL;
  }
  size_t png_n;
  uint8_t *png = mfi_png_encode(pixels, height, width, channels, &png_n);
  if (!png) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory encoding a %dx%d PNG", what, height,
            width);
    return NULL;
  }
  Tensorflow__Summary__Image im = TENSORFLOW__SUMMARY__IMAGE__INIT;
  im.height = height, im.width = width, im.colorspace = channels;
  im.encoded_image_string.len = png_n;
  im.encoded_image_string.data = png;
  Tensorflow__Summary__Value v = TENSORFLOW__SUMMARY__VALUE__INIT;
  v.tag = mut(tag);
  v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_IMAGE;
  v.image = &im;
  uint8_t *r = pack_summary(what, &v, n, s);
  free(png);
  return r;
}

/* ---------------------------------------------------------------- merge, check */

bool mfi_summary_check(const char *what, const void *bytes, size_t len, mf_status *s)
{
  Tensorflow__Summary *sum = tensorflow__summary__unpack(NULL, len, bytes);
  if (!sum) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: %zu bytes are not a serialized Summary", what, len);
    return false;
  }
  tensorflow__summary__free_unpacked(sum, NULL);
  return true;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

uint8_t *mfi_summary_merge(const char *what, int k, const void *const *parts, const size_t *lens,
                           size_t *n, mf_status *s)
{
  /* Concatenated Summaries are one Summary (value is a repeated field):
   * parse each to check it and collect the tags. */
  size_t total = 0, ntags = 0, cap = 0;
  const char **tags = NULL;
  Tensorflow__Summary **sums = calloc(k > 0 ? (size_t)k : 1, sizeof *sums);
  uint8_t *out = NULL;
  if (!sums) goto oom;
  for (int i = 0; i < k; i++) {
    sums[i] = tensorflow__summary__unpack(NULL, lens[i], parts[i]);
    if (!sums[i]) {
      mfi_set(s, MF_INVALID_ARGUMENT, "%s: input %d (%zu bytes) is not a serialized Summary", what,
              i + 1, lens[i]);
      goto done;
    }
    total += lens[i];
    for (size_t j = 0; j < sums[i]->n_value; j++) {
      if (ntags == cap) {
        cap = cap ? 2 * cap : 16;
        const char **t = realloc(tags, cap * sizeof *t);
        if (!t) goto oom;
        tags = t;
      }
      tags[ntags++] = sums[i]->value[j]->tag;
    }
  }
  if (ntags > 1) qsort(tags, ntags, sizeof *tags, cmp_str);
  for (size_t j = 1; j < ntags; j++)
    if (strcmp(tags[j - 1], tags[j]) == 0) {
      mfi_set(s, MF_INVALID_ARGUMENT, "%s: duplicate tag %s found in summary inputs", what,
              tags[j]);
      goto done;
    }
  out = malloc(total ? total : 1);
  if (!out) goto oom;
  total = 0;
  for (int i = 0; i < k; i++)
    if (lens[i]) memcpy(out + total, parts[i], lens[i]), total += lens[i];
  *n = total;
  goto done;
oom:
  mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory", what);
done:
  for (int i = 0; sums && i < k; i++)
    if (sums[i]) tensorflow__summary__free_unpacked(sums[i], NULL);
  free(sums);
  free(tags);
  return out;
}
