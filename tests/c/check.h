/* The C tests' tiny harness: CHECK macros that count failures (a failing
 * check prints file:line; main returns nonzero when any failed), and helpers
 * that build small graphs through the public API. */
#ifndef MF_TEST_CHECK_H
#define MF_TEST_CHECK_H

#include <moonflow.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int failures, checks; /* checks may run on several threads */

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

/* Status is OK; otherwise print its message where the check was. */
#define CHECK_OK(s)                                                                                \
  do {                                                                                             \
    checks++;                                                                                      \
    if (mf_status_code(s) != MF_OK) {                                                              \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: unexpected error: %s\n", __FILE__, __LINE__, mf_status_message(s));  \
    }                                                                                              \
  } while (0)

/* Status holds `code` and its message contains `text`. */
#define CHECK_ERR(s, code, text)                                                                   \
  do {                                                                                             \
    checks++;                                                                                      \
    if (mf_status_code(s) != (code) || !strstr(mf_status_message(s), (text))) {                    \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: expected error %d containing \"%s\", got %d: \"%s\"\n", __FILE__,    \
              __LINE__, (int)(code), (text), (int)mf_status_code(s), mf_status_message(s));        \
    }                                                                                              \
  } while (0)

#define CHECK_CLOSE(a, b) CHECK(fabs((double)(a) - (double)(b)) < 1e-5)

/* ---------------------------------------------------------------- helpers */

static inline mf_tensor *tensor_f32(int ndim, const int64_t *dims, const float *vals, mf_status *s)
{
  mf_tensor *t = mf_tensor_new(MF_FLOAT32, ndim, dims, s);
  if (!t) return NULL;
  float *d = mf_tensor_mutable_data(t, s);
  if (d) memcpy(d, vals, sizeof(float) * (size_t)mf_tensor_numel(t));
  return t;
}

/* A Const op holding `vals` (the op keeps its own reference). */
static inline mf_output const_f32(mf_graph *g, const char *name, int ndim, const int64_t *dims,
                                  const float *vals, mf_status *s)
{
  mf_tensor *t = tensor_f32(ndim, dims, vals, s);
  mf_op_desc *d = mf_op_begin(g, "Const", name);
  mf_op_set_attr_tensor(d, "value", t);
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_tensor_delete(t);
  mf_output o = {mf_op_finish(d, s), 0};
  return o;
}

static inline mf_output binary(mf_graph *g, const char *type, const char *name, mf_output a,
                               mf_output b, mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, type, name);
  mf_op_add_input(d, a);
  mf_op_add_input(d, b);
  mf_output o = {mf_op_finish(d, s), 0};
  return o;
}

static inline mf_output placeholder(mf_graph *g, const char *name, mf_dtype dt, int ndim,
                                    const int64_t *dims, const char *where, mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, "Placeholder", name);
  mf_op_set_attr_type(d, "dtype", dt);
  mf_op_set_attr_shape(d, "shape", dims, ndim);
  mf_op_set_location(d, where);
  mf_output o = {mf_op_finish(d, s), 0};
  return o;
}

static inline const float *fdata(const mf_tensor *t) { return (const float *)mf_tensor_data(t); }

#define STR2(x) #x
#define STR(x) STR2(x)
#define HERE __FILE__ ":" STR(__LINE__)

/* The exit status: the failure count, reported. */
static inline int check_report(const char *name)
{
  fprintf(stderr, "%s: %d checks, %d failures\n", name, checks, failures);
  return failures != 0;
}

#endif
