// Dense optimizer updates (csrc/ops/train.c) and AssignAdd / AssignSub
// (csrc/ops/state.c): the variable and its slots are updated in place, one
// work item per element, with the CPU kernels' arithmetic. The scalar
// hyperparameters are device tensors: every work item reads them itself.
#include "kernel.h"

#include <type_traits>

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- optimizer updates

// Up to six scalar hyperparameters, as pointers into device memory (read
// only inside kernels); h[j] is the j-th as double, as the CPU's scalar().
template <class T> struct Scalars {
  const T *p[6];
  MF_HD double operator[](int j) const { return (double)p[j][0]; }
};

// var -= lr * grad (float32 in float, as the CPU's fast path).
template <class T> MF_GLOBAL void sgd_kernel(T *v, const T *g, Scalars<T> h, int64_t n)
{
  MF_FOR(i, n) v[i] -= (T)h[0] * g[i];
}

// accum = accum mu + g; var -= lr accum (nesterov: g lr + accum mu lr), in
// double, reading back the rounded accum as the CPU does.
template <class T>
MF_GLOBAL void momentum_kernel(T *v, T *a, const T *g, Scalars<T> h, bool nesterov, int64_t n)
{
  MF_FOR(i, n)
  {
    double lr = h[0], mu = h[1], gi = (double)g[i];
    a[i] = (T)((double)a[i] * mu + gi);
    double acc = (double)a[i];
    v[i] = (T)((double)v[i] - (nesterov ? gi * lr + acc * mu * lr : lr * acc));
  }
}

// accum += g^2; var -= lr g / sqrt(accum), in double.
template <class T> MF_GLOBAL void adagrad_kernel(T *v, T *a, const T *g, Scalars<T> h, int64_t n)
{
  MF_FOR(i, n)
  {
    double lr = h[0], gi = (double)g[i];
    a[i] = (T)((double)a[i] + gi * gi);
    v[i] = (T)((double)v[i] - lr * gi / sqrt((double)a[i]));
  }
}

// ms = rho ms + (1 - rho) g^2; mom = mu mom + lr g / sqrt(ms + eps);
// var -= mom, in double.
template <class T>
MF_GLOBAL void rmsprop_kernel(T *v, T *ms, T *mom, const T *g, Scalars<T> h, int64_t n)
{
  MF_FOR(i, n)
  {
    double lr = h[0], rho = h[1], mu = h[2], eps = h[3], gi = (double)g[i];
    ms[i] = (T)((double)ms[i] * rho + gi * gi * (1 - rho));
    mom[i] = (T)((double)mom[i] * mu + lr * gi / sqrt((double)ms[i] + eps));
    v[i] = (T)((double)v[i] - (double)mom[i]);
  }
}

// lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) in double; the moments and the step
// in T (float32 in float, as the CPU's).
template <class T> MF_GLOBAL void adam_kernel(T *x, T *m, T *s, const T *g, Scalars<T> h, int64_t n)
{
  MF_FOR(i, n)
  {
    T lr_t = (T)(h[2] * sqrt(1 - h[1]) / (1 - h[0]));
    T b1 = (T)h[3], b2 = (T)h[4], eps = (T)h[5], gi = g[i];
    m[i] += (gi - m[i]) * (1 - b1);
    s[i] += (gi * gi - s[i]) * (1 - b2);
    x[i] -= lr_t * m[i] / (sqrt(s[i]) + eps);
  }
}

enum { SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM };

// Where each op's gradient and scalar hyperparameters sit among its inputs
// (TensorFlow's orders, as train.c reads them).
struct ApplyInputs {
  int grad, nscalar, scalar[6];
};
static const ApplyInputs apply_inputs[] = {
    {2, 1, {1}},                // ApplyGradientDescent: var; lr, grad
    {3, 2, {2, 4}},             // ApplyMomentum: var, accum; lr, grad, momentum
    {3, 1, {2}},                // ApplyAdagrad: var, accum; lr, grad
    {7, 4, {3, 4, 5, 6}},       // ApplyRMSProp: var, ms, mom; lr, rho, momentum, eps, grad
    {9, 6, {3, 4, 5, 6, 7, 8}}, // ApplyAdam: var, m, v; b1^t, b2^t, lr, b1, b2, eps, grad
};

template <class T> static void launch_apply(mfi_kctx *k, int kind, mf_tensor **slot, int64_t n)
{
  const ApplyInputs &ai = apply_inputs[kind];
  Scalars<T> h = {};
  for (int j = 0; j < ai.nscalar; j++) h.p[j] = data<T>(k->in[ai.scalar[j]]);
  const T *g = data<T>(k->in[ai.grad]);
  T *v = data<T>(slot[0]), *a = slot[1] ? data<T>(slot[1]) : NULL;
  T *b = slot[2] ? data<T>(slot[2]) : NULL;
  switch (kind) {
  case SGD: MF_LAUNCH(sgd_kernel<T>, n, k->stream)(v, g, h, n); break;
  case MOMENTUM:
    MF_LAUNCH(momentum_kernel<T>, n, k->stream)
    (v, a, g, h, mfi_attr_bool(k->op, "use_nesterov", false), n);
    break;
  case ADAGRAD: MF_LAUNCH(adagrad_kernel<T>, n, k->stream)(v, a, g, h, n); break;
  case RMSPROP: MF_LAUNCH(rmsprop_kernel<T>, n, k->stream)(v, a, b, g, h, n); break;
  case ADAM: MF_LAUNCH(adam_kernel<T>, n, k->stream)(v, a, b, g, h, n); break;
  default: break;
  }
}

// Prepare checked the slots (initialized, the gradient's shape) and the
// scalars; the output is the updated variable.
static void apply(mfi_kctx *k, int kind)
{
  mf_tensor *slot[3] = {NULL, NULL, NULL};
  for (int i = 0; i < k->op->def->nref; i++)
    if (!(slot[i] = mfi_var_writable(k, i))) return;
  int64_t n = k->in[apply_inputs[kind].grad]->numel;
  if (n > 0) {
    with_float(slot[0]->dtype, [&](auto z) { launch_apply<decltype(z)>(k, kind, slot, n); });
    if (!launched(k)) return;
  }
  k->out[0] = mf_tensor_retain(slot[0]);
}

static void k_sgd(mfi_kctx *k) { apply(k, SGD); }
static void k_momentum(mfi_kctx *k) { apply(k, MOMENTUM); }
static void k_adagrad(mfi_kctx *k) { apply(k, ADAGRAD); }
static void k_rmsprop(mfi_kctx *k) { apply(k, RMSPROP); }
static void k_adam(mfi_kctx *k) { apply(k, ADAM); }

// ---------------------------------------------------------------- AssignAdd, AssignSub

template <class T> MF_GLOBAL void assign_float_kernel(T *p, const T *q, bool sub, int64_t n)
{
  MF_FOR(i, n)
  {
    if (sub)
      p[i] -= q[i];
    else
      p[i] += q[i];
  }
}

// Integers (and bools) wrap through uint64, as the CPU's mfi_get_i/set_i.
template <class T> MF_GLOBAL void assign_int_kernel(T *p, const T *q, bool sub, int64_t n)
{
  MF_FOR(i, n)
  {
    uint64_t a = (uint64_t)(int64_t)p[i], b = (uint64_t)(int64_t)q[i];
    p[i] = (T)(int64_t)(sub ? a - b : a + b);
  }
}

// The CPU's messages for an uninitialized variable and a misfit update.
static bool assign_checks(mfi_kctx *k, const mf_tensor *v, const mf_tensor *cur)
{
  if (!cur) {
    mfi_uninitialized_error(k, 0);
    return false;
  }
  bool same = v->ndim == cur->ndim && v->numel == cur->numel;
  for (int d = 0; same && d < v->ndim; d++) same = v->dims[d] == cur->dims[d];
  if (same) return true;
  const mfi_meta *decl = k->vars[0].decl;
  bool fits = decl->ndim < 0 || decl->ndim == v->ndim;
  for (int d = 0; fits && decl->ndim >= 0 && d < decl->ndim; d++)
    fits = decl->dims[d] < 0 || decl->dims[d] == v->dims[d];
  if (!fits) {
    char a[128], b[128];
    mfi_shape_str(v->ndim, v->dims, a, sizeof a);
    mfi_shape_str(decl->ndim, decl->dims, b, sizeof b);
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "the value's shape %s does not match the variable '%s' of shape %s", a,
                 k->vars[0].name, b);
  } else {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "the update's shape does not match the variable's value");
  }
  return false;
}

static void assign_update(mfi_kctx *k, bool sub)
{
  const mf_tensor *v = k->in[1];
  if (!assign_checks(k, v, *k->vars[0].slot)) return;
  mf_tensor *cur = mfi_var_writable(k, 0);
  if (!cur) return;
  int64_t n = cur->numel;
  if (n > 0) {
    with_type(cur->dtype, [&](auto z) {
      using T = decltype(z);
      if constexpr (std::is_floating_point<T>::value)
        MF_LAUNCH(assign_float_kernel<T>, n, k->stream)(data<T>(cur), data<T>(v), sub, n);
      else
        MF_LAUNCH(assign_int_kernel<T>, n, k->stream)(data<T>(cur), data<T>(v), sub, n);
    });
    if (!launched(k)) return;
  }
  k->out[0] = mf_tensor_retain(cur);
}

static void k_assign_add(mfi_kctx *k) { assign_update(k, false); }
static void k_assign_sub(mfi_kctx *k) { assign_update(k, true); }

extern const mfi_kernel_reg optimizer_kernels[] = {
    {"ApplyGradientDescent", k_sgd}, {"ApplyMomentum", k_momentum},
    {"ApplyAdagrad", k_adagrad},     {"ApplyRMSProp", k_rmsprop},
    {"ApplyAdam", k_adam},           {"AssignAdd", k_assign_add},
    {"AssignSub", k_assign_sub},     {NULL, NULL}};

} // namespace MF_CUDA_NS
