/* The C tests' tiny harness: CHECK macros that count failures (a failing
 * check prints file:line; main returns nonzero when any failed), and helpers
 * that build small graphs through the public API. */
#ifndef MF_TEST_CHECK_H
#define MF_TEST_CHECK_H

#include <moonflow.h>

#include <math.h>
#include <stdbool.h>
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

/* Removes a test's temporary directory and what it holds; true on success. */
static inline bool remove_tree(const char *dir)
{
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0;
}

static inline mf_output unary(mf_graph *g, const char *type, const char *name, mf_output a,
                              mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, type, name);
  mf_op_add_input(d, a);
  mf_output o = {mf_op_finish(d, s), 0};
  return o;
}

/* y = p ? x * x : 3 - x (float32 scalars), an If over two graph functions;
 * *x and *p are its placeholders, created at `where`. */
static inline mf_output if_square_or_sub(mf_graph *g, mf_output *x, mf_output *p, const char *where,
                                         mf_status *s)
{
  *x = placeholder(g, "x", MF_FLOAT32, 0, NULL, where, s);
  *p = placeholder(g, "p", MF_BOOL, 0, NULL, where, s);
  mf_output a1 = placeholder(g, "then/a", MF_FLOAT32, 0, NULL, where, s);
  mf_output r1 = binary(g, "Mul", "then/sq", a1, a1, s);
  mf_output a2 = placeholder(g, "else/a", MF_FLOAT32, 0, NULL, where, s);
  float three = 3.0f;
  mf_output r2 =
      binary(g, "Sub", "else/sub", const_f32(g, "else/three", 0, NULL, &three, s), a2, s);
  if (!a1.op || !a2.op || !r1.op || !r2.op ||
      !mf_graph_add_function(g, "then_fn", 1, &a1.op, 1, &r1, 0, NULL, s) ||
      !mf_graph_add_function(g, "else_fn", 1, &a2.op, 1, &r2, 0, NULL, s))
    return (mf_output){NULL, 0};
  mf_op_desc *d = mf_op_begin(g, "If", "cond");
  mf_op_add_input(d, *p);
  mf_op_add_input(d, *x);
  mf_op_set_attr_string(d, "then_branch", "then_fn");
  mf_op_set_attr_string(d, "else_branch", "else_fn");
  return (mf_output){mf_op_finish(d, s), 0};
}

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
