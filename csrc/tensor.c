/* Tensor values: dtype, shape and a reference-counted buffer. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dtype_names[MF_NUM_DTYPES] = {"float32", "float64", "int32", "int64",
                                                       "bool",    "uint8",   "string"};
static const size_t dtype_sizes[MF_NUM_DTYPES] = {4, 8, 4, 8, 1, 1, sizeof(mfi_str)};

const char *mf_dtype_name(mf_dtype dt)
{
  return (unsigned)dt < MF_NUM_DTYPES ? dtype_names[dt] : "invalid";
}

size_t mf_dtype_size(mf_dtype dt) { return (unsigned)dt < MF_NUM_DTYPES ? dtype_sizes[dt] : 0; }

int mf_dtype_from_name(const char *name, mf_dtype *dt)
{
  if (!name || !dt) return 0;
  for (int i = 0; i < MF_NUM_DTYPES; i++)
    if (strcmp(name, dtype_names[i]) == 0) return *dt = (mf_dtype)i, 1;
  return 0;
}

int64_t mfi_numel(int ndim, const int64_t *dims)
{
  for (int i = 0; i < ndim; i++)
    if (dims[i] == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    if (__builtin_mul_overflow(n, dims[i], &n)) return -1;
  return n;
}

/* The product of a shape's non-zero dimensions, or -1 when it overflows an
 * int64 (as TensorFlow, a zero dimension does not excuse the others). A
 * tensor's shape passes this, so every partial product of its dimensions
 * that kernels compute fits. */
static int64_t nonzero_product(int ndim, const int64_t *dims)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    if (dims[i] != 0 && __builtin_mul_overflow(n, dims[i], &n)) return -1;
  return n;
}

bool mfi_shape_overflows(int ndim, const int64_t *dims)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) /* unknown (-1) and zero dims multiply nothing */
    if (dims[i] > 0 && __builtin_mul_overflow(n, dims[i], &n)) return true;
  return false;
}

int mfi_shape_str(int ndim, const int64_t *dims, char *buf, size_t size)
{
  if (ndim < 0) return snprintf(buf, size, "<unknown rank>");
  int n = snprintf(buf, size, "{");
  for (int i = 0; i < ndim && (size_t)n < size; i++)
    n += snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if ((size_t)n < size) n += snprintf(buf + n, size - n, "}");
  return n;
}

static bool check_shape(mf_dtype dt, int ndim, const int64_t *dims, mf_status *s)
{
  if ((unsigned)dt >= MF_NUM_DTYPES) {
    mfi_set(s, MF_INVALID_ARGUMENT, "invalid dtype %d", (int)dt);
    return false;
  }
  if (ndim < 0 || ndim > MF_MAX_DIMS) {
    mfi_set(s, MF_INVALID_ARGUMENT, "rank %d is outside 0..%d", ndim, MF_MAX_DIMS);
    return false;
  }
  if (ndim > 0 && !dims) {
    mfi_set(s, MF_INVALID_ARGUMENT, "dims is NULL for a shape of rank %d", ndim);
    return false;
  }
  double total = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0) {
      mfi_set(s, MF_INVALID_ARGUMENT, "dimension %d of a value is %lld (must be >= 0)", i + 1,
              (long long)dims[i]);
      return false;
    }
    total *= (double)dims[i];
  }
  if (nonzero_product(ndim, dims) < 0) {
    char sh[256];
    mfi_shape_str(ndim, dims, sh, sizeof sh);
    mfi_set(s, MF_INVALID_ARGUMENT,
            "shape %s has too many elements (the product of its dimensions overflows int64)", sh);
    return false;
  }
  if (total * (double)dtype_sizes[dt] > 1e15) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "a value of %.0f elements is too large", total);
    return false;
  }
  return true;
}

static mf_tensor *tensor_header(mf_dtype dt, int ndim, const int64_t *dims, mf_status *s)
{
  if (!check_shape(dt, ndim, dims, s)) return NULL;
  mf_tensor *t = malloc(sizeof *t);
  mfi_buffer *b = malloc(sizeof *b);
  if (!t || !b) {
    free(t), free(b);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory allocating a tensor");
    return NULL;
  }
  atomic_init(&t->refs, 1);
  t->dtype = dt;
  t->ndim = ndim;
  if (ndim) memcpy(t->dims, dims, sizeof(int64_t) * ndim);
  t->numel = mfi_numel(ndim, dims);
  t->offset = 0;
  t->buf = b;
  atomic_init(&b->refs, 1);
  b->nbytes = (size_t)t->numel * dtype_sizes[dt];
  b->data = NULL;
  b->dealloc = NULL;
  b->arg = NULL;
  b->borrowed = false;
  b->strings = dt == MF_STRING;
  b->dev = mfi_device_cpu();
  return t;
}

mf_tensor *mfi_tensor_empty_on(mfi_device *d, mf_dtype dt, int ndim, const int64_t *dims,
                               mf_status *s)
{
  if (dt == MF_STRING && d != mfi_device_cpu()) {
    mfi_set(s, MF_INVALID_ARGUMENT, "string tensors live in host memory, not on %s", d->name);
    return NULL;
  }
  mf_tensor *t = tensor_header(dt, ndim, dims, s);
  if (!t) return NULL;
  t->buf->dev = d;
  t->buf->data = mfi_device_alloc(d, t->buf->nbytes);
  if (!t->buf->data) {
    char sh[128];
    mfi_shape_str(ndim, dims, sh, sizeof sh);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory allocating a %s %s tensor (%zu bytes) on %s",
            mf_dtype_name(dt), sh, t->buf->nbytes, d->name);
    free(t->buf), free(t);
    return NULL;
  }
  if (dt == MF_STRING) memset(t->buf->data, 0, t->buf->nbytes); /* all empty */
  return t;
}

mf_tensor *mfi_tensor_empty(mf_dtype dt, int ndim, const int64_t *dims, mf_status *s)
{
  return mfi_tensor_empty_on(mfi_device_cpu(), dt, ndim, dims, s);
}

mf_tensor *mf_tensor_new(mf_dtype dt, int ndim, const int64_t *dims, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  mf_tensor *t = mfi_tensor_empty(dt, ndim, dims, s);
  if (t) memset(t->buf->data, 0, t->buf->nbytes);
  return t;
}

mf_tensor *mf_tensor_new_borrowed(mf_dtype dt, int ndim, const int64_t *dims, void *data,
                                  void (*dealloc)(void *, void *), void *arg, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (dt == MF_STRING) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "mf_tensor_new_borrowed: string tensors own their bytes (use mf_tensor_new and "
            "mf_tensor_set_string)");
    return NULL;
  }
  mf_tensor *t = tensor_header(dt, ndim, dims, s);
  if (!t) return NULL;
  if (!data && t->buf->nbytes > 0) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_tensor_new_borrowed: data is NULL for %zu bytes",
            t->buf->nbytes);
    free(t->buf), free(t);
    return NULL;
  }
  t->buf->data = data;
  t->buf->dealloc = dealloc;
  t->buf->arg = arg;
  t->buf->borrowed = true;
  return t;
}

mf_tensor *mf_tensor_retain(mf_tensor *t)
{
  if (t) atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  return t;
}

static void buffer_release(mfi_buffer *b)
{
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
  if (b->borrowed) {
    if (b->dealloc) b->dealloc(b->data, b->arg);
  } else {
    for (size_t i = 0; b->strings && i < b->nbytes / sizeof(mfi_str); i++)
      free(((mfi_str *)b->data)[i].p);
    mfi_device_free(b->dev, b->data, b->nbytes);
  }
  free(b);
}

void mf_tensor_delete(mf_tensor *t)
{
  if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
  buffer_release(t->buf);
  free(t);
}

/* A NULL tensor: no dtype, rank -1, no dims, no elements, no data. */
mf_dtype mf_tensor_dtype(const mf_tensor *t) { return t ? t->dtype : MF_NUM_DTYPES; }
int mf_tensor_ndim(const mf_tensor *t) { return t ? t->ndim : -1; }
const int64_t *mf_tensor_dims(const mf_tensor *t) { return t ? t->dims : NULL; }
int64_t mf_tensor_numel(const mf_tensor *t) { return t ? t->numel : 0; }
size_t mf_tensor_nbytes(const mf_tensor *t)
{
  return t ? (size_t)t->numel * dtype_sizes[t->dtype] : 0;
}
const void *mf_tensor_data(const mf_tensor *t)
{
  return t && t->dtype != MF_STRING ? mfi_data(t) : NULL;
}

/* ---------------------------------------------------------------- strings */

mf_tensor *mfi_string_tensor_new(int ndim, const int64_t *dims, mf_status *s)
{
  return mfi_tensor_empty(MF_STRING, ndim, dims, s);
}

bool mfi_string_set(mf_tensor *t, int64_t i, const void *bytes, size_t n, mf_status *s)
{
  if (t->dtype != MF_STRING || i < 0 || i >= t->numel || (n > 0 && !bytes)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_tensor_set_string: %s",
            t->dtype != MF_STRING ? "not a string tensor"
            : n > 0 && !bytes     ? "bytes is NULL"
                                  : "index out of range");
    return false;
  }
  if (atomic_load(&t->refs) != 1 || atomic_load(&t->buf->refs) != 1) {
    mfi_set(s, MF_FAILED_PRECONDITION,
            "mf_tensor_set_string: the tensor is shared (values are immutable once shared)");
    return false;
  }
  char *p = NULL;
  if (n > 0 && !(p = malloc(n))) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory storing a string of %zu bytes", n);
    return false;
  }
  if (n > 0) memcpy(p, bytes, n);
  mfi_str *e = (mfi_str *)mfi_data(t) + i;
  free(e->p);
  e->p = p, e->n = n;
  return true;
}

const char *mfi_string_get(const mf_tensor *t, int64_t i, size_t *n)
{
  const mfi_str *e = (const mfi_str *)mfi_data(t) + i;
  if (n) *n = e->n;
  return e->p ? e->p : "";
}

int mf_tensor_set_string(mf_tensor *t, int64_t i, const void *bytes, size_t len, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!t) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_tensor_set_string: tensor is NULL");
    return 0;
  }
  return mfi_string_set(t, i, bytes, len, s);
}

const char *mf_tensor_string(const mf_tensor *t, int64_t i, size_t *len)
{
  if (len) *len = 0;
  if (!t || t->dtype != MF_STRING || i < 0 || i >= t->numel) return NULL;
  return mfi_string_get(t, i, len);
}

bool mfi_tensor_exclusive(const mf_tensor *t)
{
  return atomic_load(&t->refs) == 1 && atomic_load(&t->buf->refs) == 1 && !t->buf->borrowed;
}

static mf_tensor *copy_to(const mf_tensor *t, mfi_device *d, mf_status *s)
{
  mf_tensor *c = mfi_tensor_empty_on(d, t->dtype, t->ndim, t->dims, s);
  if (c && t->dtype == MF_STRING) { /* each element's own copy of its bytes */
    for (int64_t i = 0; i < t->numel; i++) {
      size_t n;
      const char *p = mfi_string_get(t, i, &n);
      if (!mfi_string_set(c, i, p, n, s)) {
        mf_tensor_delete(c);
        return NULL;
      }
    }
    return c;
  }
  if (c && !mfi_device_copy(d, mfi_data(c), t->buf->dev, mfi_data(t), mf_tensor_nbytes(t), s)) {
    mf_tensor_delete(c);
    return NULL;
  }
  return c;
}

mf_tensor *mfi_tensor_copy(const mf_tensor *t, mf_status *s) { return copy_to(t, t->buf->dev, s); }

mf_tensor *mfi_tensor_to(mf_tensor *t, mfi_device *d, mf_status *s)
{
  if (t->buf->dev != d) return copy_to(t, d, s);
  mf_tensor *v = mfi_tensor_view(t);
  if (!v) mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
  return v;
}

void *mf_tensor_mutable_data(mf_tensor *t, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!t) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_tensor_mutable_data: tensor is NULL");
    return NULL;
  }
  if (t->dtype == MF_STRING) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "mf_tensor_mutable_data: a string tensor's elements are set with mf_tensor_set_string");
    return NULL;
  }
  /* The library hands every holder its own tensor object (views share the
   * buffer), so the buffer's count tells whether another value shares it. */
  if (atomic_load(&t->buf->refs) == 1 && !t->buf->borrowed && t->offset == 0) return mfi_data(t);
  mf_tensor *c = copy_to(t, mfi_device_cpu(), s);
  if (!c) return NULL;
  mfi_buffer *old = t->buf;
  t->buf = c->buf;
  t->offset = 0;
  c->buf = NULL;
  free(c);
  buffer_release(old);
  return mfi_data(t);
}

static mf_tensor *view(mf_tensor *t, int ndim, const int64_t *dims, size_t offset)
{
  mf_tensor *v = malloc(sizeof *v);
  if (!v) return NULL;
  atomic_init(&v->refs, 1);
  v->dtype = t->dtype;
  v->ndim = ndim;
  if (ndim) memcpy(v->dims, dims, sizeof(int64_t) * ndim);
  v->numel = mfi_numel(ndim, dims);
  v->offset = offset;
  v->buf = t->buf;
  atomic_fetch_add(&t->buf->refs, 1);
  return v;
}

mf_tensor *mfi_tensor_view(mf_tensor *t) { return view(t, t->ndim, t->dims, t->offset); }

mf_tensor *mf_tensor_reshape(mf_tensor *t, int ndim, const int64_t *dims, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!t) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_tensor_reshape: tensor is NULL");
    return NULL;
  }
  if (!check_shape(t->dtype, ndim, dims, s)) return NULL;
  if (mfi_numel(ndim, dims) != t->numel) {
    char a[128], b[128];
    mfi_shape_str(t->ndim, t->dims, a, sizeof a);
    mfi_shape_str(ndim, dims, b, sizeof b);
    mfi_set(s, MF_INVALID_ARGUMENT, "cannot reshape a %s value to %s", a, b);
    return NULL;
  }
  mf_tensor *v = view(t, ndim, dims, t->offset);
  if (!v) mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
  return v;
}

mf_tensor *mf_tensor_subtensor(mf_tensor *t, int64_t i, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!t) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_tensor_subtensor: tensor is NULL");
    return NULL;
  }
  if (t->ndim == 0 || i < 0 || i >= t->dims[0]) {
    mfi_set(s, MF_OUT_OF_RANGE, "index %lld is out of range for a value with first dimension %lld",
            (long long)(i < INT64_MAX ? i + 1 : i), (long long)(t->ndim ? t->dims[0] : 0));
    return NULL;
  }
  int64_t inner = t->dims[0] ? t->numel / t->dims[0] : 0;
  mf_tensor *v =
      view(t, t->ndim - 1, t->dims + 1, t->offset + (size_t)(i * inner) * dtype_sizes[t->dtype]);
  if (!v) mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
  return v;
}

/* ---------------------------------------------------------------- generic element access */

double mfi_get_f(mf_dtype dt, const void *p, int64_t i)
{
  switch (dt) {
  case MF_FLOAT32: return ((const float *)p)[i];
  case MF_FLOAT64: return ((const double *)p)[i];
  case MF_INT32: return ((const int32_t *)p)[i];
  case MF_INT64: return (double)((const int64_t *)p)[i];
  case MF_BOOL:
  case MF_UINT8: return ((const uint8_t *)p)[i];
  default: return 0;
  }
}

int64_t mfi_get_i(mf_dtype dt, const void *p, int64_t i)
{
  switch (dt) {
  case MF_FLOAT32: return (int64_t)((const float *)p)[i];
  case MF_FLOAT64: return (int64_t)((const double *)p)[i];
  case MF_INT32: return ((const int32_t *)p)[i];
  case MF_INT64: return ((const int64_t *)p)[i];
  case MF_BOOL:
  case MF_UINT8: return ((const uint8_t *)p)[i];
  default: return 0;
  }
}

/* A double as an integer of range [lo, hi]: truncated toward zero,
 * saturated, NaN as 0 (C leaves out-of-range conversions undefined). */
static int64_t to_int(double v, double lo, double hi)
{
  if (v != v) return 0;
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return v >= 9.2233720368547758e18 ? INT64_MAX : (int64_t)hi;
  return (int64_t)v;
}

void mfi_set_f(mf_dtype dt, void *p, int64_t i, double v)
{
  switch (dt) {
  case MF_FLOAT32: ((float *)p)[i] = (float)v; break;
  case MF_FLOAT64: ((double *)p)[i] = v; break;
  case MF_INT32: ((int32_t *)p)[i] = (int32_t)to_int(v, INT32_MIN, INT32_MAX); break;
  case MF_INT64:
    ((int64_t *)p)[i] = to_int(v, -9.2233720368547758e18, 9.2233720368547758e18);
    break;
  case MF_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  case MF_UINT8: ((uint8_t *)p)[i] = (uint8_t)to_int(v, 0, 255); break;
  default: break;
  }
}

void mfi_set_i(mf_dtype dt, void *p, int64_t i, int64_t v)
{
  switch (dt) {
  case MF_FLOAT32: ((float *)p)[i] = (float)v; break;
  case MF_FLOAT64: ((double *)p)[i] = (double)v; break;
  case MF_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
  case MF_INT64: ((int64_t *)p)[i] = v; break;
  case MF_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  case MF_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  default: break;
  }
}
