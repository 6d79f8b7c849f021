// Fused LSTM / GRU / RNN sequence ops, forward and backward.
//
// The same layout and order of work as the CPU kernels (csrc/ops/rnn.c), so
// that either device can run the backward of the other's forward: x and y
// are [B, T, width] (rows in (b, t) order), the saved activations [T, B,
// width]. Forward: one GEMM projects the inputs of all steps (the
// *Projected ops get that projection as an input and copy it), then each
// step is one recurrent GEMM accumulating onto step t's rows (a strided
// matrix, leading dimension T * width) and a fused gate kernel; GRU needs
// two of each, since the candidate's product reads r * h_{t-1}. Backward:
// per step in reverse a fused gate-gradient kernel and the GEMM for dh_{t-1};
// then each weight gradient is one GEMM over all steps and each bias
// gradient a deterministic column sum.
//
// Masking (seq_len, host memory) follows the CPU: past a sequence's end y
// and the saved gates are zero and the state is carried; masked steps have
// dZ = 0. Element type F below; T is always the number of steps.
#include "kernel.h"

namespace MF_CUDA_NS {

// ---------------------------------------------------------------- math

MF_DEVICE float ex(float x) { return expf(x); }
MF_DEVICE double ex(double x) { return exp(x); }
MF_DEVICE float th(float x) { return tanhf(x); }
MF_DEVICE double th(double x) { return tanh(x); }
template <class F> MF_DEVICE F sigm(F x) { return F(1) / (F(1) + ex(-x)); }

// Whether row b's step t is past its sequence's end (len NULL: none is).
MF_DEVICE bool masked(const int32_t *len, int64_t b, int64_t t) { return len && t >= len[b]; }

// ---------------------------------------------------------------- shared kernels

// Each of the rows of z [n / w, w] set to bias: the accumulator a
// projection GEMM adds onto.
template <class F> MF_GLOBAL void fill_rows_kernel(F *z, const F *bias, int64_t w, int64_t n)
{
  MF_FOR(i, n) z[i] = bias[i % w];
}

template <class F> MF_GLOBAL void copy_kernel(F *dst, const F *src, int64_t n)
{
  MF_FOR(i, n) dst[i] = src[i];
}

// Zeros an [n / w, w] matrix with row stride ld.
template <class F> MF_GLOBAL void zero_kernel(F *c, int64_t w, int64_t ld, int64_t n)
{
  MF_FOR(i, n) c[i / w * ld + i % w] = 0;
}

// The final state of each sequence: its last unmasked y row, or h0.
template <class F>
MF_GLOBAL void final_h_kernel(const F *h0, const F *y, F *hT, const int32_t *len, int64_t T,
                              int64_t H, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t b = i / H, k = i % H, L = len ? len[b] : T;
    hT[i] = L > 0 ? y[(b * T + L - 1) * H + k] : h0[i];
  }
}

// [x_t, h_{t-1}] for every step, [B*T, I+H] rows in (b, t) order (I = 0:
// just h_{t-1}): h0 at t = 0, y[:, t-1] after, exact for unmasked steps.
template <class F>
MF_GLOBAL void build_xh_kernel(const F *x, const F *h0, const F *y, F *out, int64_t T, int64_t I,
                               int64_t H, int64_t n)
{
  MF_FOR(i, n)
  {
    int64_t w = I + H, r = i / w, j = i % w, b = r / T, t = r % T;
    if (j < I)
      out[i] = x[r * I + j];
    else
      out[i] = t ? y[(r - 1) * H + j - I] : h0[b * H + j - I];
  }
}

// Column sums of dz [rows, w], one work item per column accumulating in
// double as the CPU does.
template <class F> MF_GLOBAL void col_sum_kernel(const F *dz, F *out, int64_t rows, int64_t w)
{
  MF_FOR(j, w)
  {
    double s = 0;
    for (int64_t r = 0; r < rows; r++) s += dz[r * w + j];
    out[j] = (F)s;
  }
}

// ---------------------------------------------------------------- host helpers

// C = beta C + op(A) op(B), one matrix. With nothing to sum over, C = beta C
// done here (beta is 0 or 1 in this file), not left to cuBLAS.
static bool mm(mfi_kctx *k, mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t kk,
               const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
               int64_t ldc)
{
  if (m == 0 || n == 0) return true;
  if (kk > 0) return gemm(k, dt, ta, tb, m, n, kk, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
  if (beta != 0) return true;
  with_float(dt, [&](auto z) {
    using F = decltype(z);
    MF_LAUNCH(zero_kernel<F>, m * n, k->stream)((F *)c, n, ldc, m * n);
  });
  return launched(k);
}

template <class F> static bool copy(mfi_kctx *k, F *dst, const F *src, int64_t n)
{
  MF_LAUNCH(copy_kernel<F>, n, k->stream)(dst, src, n);
  return launched(k);
}

template <class F> static bool fill_rows(mfi_kctx *k, F *z, const F *bias, int64_t rows, int64_t w)
{
  if (rows * w > 0) MF_LAUNCH(fill_rows_kernel<F>, rows * w, k->stream)(z, bias, w, rows * w);
  return launched(k);
}

template <class F>
static bool final_h(mfi_kctx *k, const F *h0, const F *y, F *hT, const int32_t *len, int64_t B,
                    int64_t T, int64_t H)
{
  if (B * H > 0) MF_LAUNCH(final_h_kernel<F>, B * H, k->stream)(h0, y, hT, len, T, H, B * H);
  return launched(k);
}

template <class F>
static bool build_xh(mfi_kctx *k, const F *x, const F *h0, const F *y, F *out, int64_t B, int64_t T,
                     int64_t I, int64_t H)
{
  int64_t n = B * T * (I + H);
  MF_LAUNCH(build_xh_kernel<F>, n, k->stream)(x, h0, y, out, T, I, H, n);
  return launched(k);
}

template <class F> static bool col_sums(mfi_kctx *k, const F *dz, F *out, int64_t rows, int64_t w)
{
  if (w > 0) MF_LAUNCH(col_sum_kernel<F>, w, k->stream)(dz, out, rows, w);
  return launched(k);
}

// What prepare left: B, T, I, H; and the dtype.
struct Dims {
  int64_t B, T, I, H;
  mf_dtype dt;
};

static Dims dims_of(const mfi_kctx *k)
{
  return {k->params[0], k->params[1], k->params[2], k->params[3], k->in[0]->dtype};
}

// Outputs 0..n-1 of the given shapes; all or none.
static bool new_outputs(mfi_kctx *k, mf_dtype dt, int n, const int *ndim, const int64_t (*dims)[3])
{
  for (int i = 0; i < n; i++)
    if (!mfi_out_new(k, i, dt, ndim[i], dims[i])) {
      for (int j = 0; j < i; j++) mf_tensor_delete(k->out[j]), k->out[j] = NULL;
      return false;
    }
  return true;
}

// One scratch allocation carved into n parts of the given byte sizes (the
// core gives a kernel only a few scratch buffers); false + error on failure.
static bool carve(mfi_kctx *k, int n, const size_t *bytes, void **parts)
{
  size_t off[8], total = 0;
  for (int i = 0; i < n; i++) off[i] = total, total += (bytes[i] + 255) & ~(size_t)255;
  char *base = (char *)mfi_scratch(k, total ? total : 256);
  if (!base) return false;
  for (int i = 0; i < n; i++) parts[i] = base + off[i];
  return true;
}

// seq_len (input `at`, in host memory, checked by prepare) copied to the
// device part `dst`; NULL when the op has no seq_len.
static bool seq_len(mfi_kctx *k, int at, int64_t B, void *dst, const int32_t **len)
{
  *len = NULL;
  if (k->op->nin <= at) return true;
  if (B > 0 && !from_host(k, dst, mfi_data(k->in[at]), (size_t)B * sizeof(int32_t))) return false;
  *len = (const int32_t *)dst;
  return true;
}

// ---------------------------------------------------------------- LSTM

// One step's gates, item (b, k): z (row stride zs) holds the
// pre-activations (i, j, f, o), cp c_{t-1}; writes act = (i, j, f, o), c_t
// and y[b, t] (row stride ys). A masked row gets zero act and y and
// carries c.
template <class F>
MF_GLOBAL void lstm_step_kernel(const F *z, int64_t zs, const F *cp, F *act, F *ct, F *y,
                                int64_t ys, const int32_t *len, int64_t t, F fb, int64_t H,
                                int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    F *a = act + b * 4 * H;
    if (masked(len, b, t)) {
      a[k] = a[H + k] = a[2 * H + k] = a[3 * H + k] = 0;
      ct[e] = cp[e];
      y[b * ys + k] = 0;
      continue;
    }
    const F *zr = z + b * zs;
    F i = sigm(zr[k]), j = th(zr[H + k]), f = sigm(zr[2 * H + k] + fb), o = sigm(zr[3 * H + k]);
    F c = f * cp[e] + i * j;
    a[k] = i, a[H + k] = j, a[2 * H + k] = f, a[3 * H + k] = o;
    ct[e] = c;
    y[b * ys + k] = o * th(c);
  }
}

// One backward step, item (b, k): dZ (row stride zs) from the running dh,
// dc, which become the gradients of h_{t-1} (dh left 0 for the recurrent
// GEMM to fill) and c_{t-1}. Masked rows: dZ = 0, dh and dc carried.
template <class F>
MF_GLOBAL void lstm_bwd_kernel(const F *act, const F *ct, const F *cp, const F *dy, int64_t ys,
                               F *dh, F *dc, F *dz, int64_t zs, const int32_t *len, int64_t t,
                               int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    F *dzr = dz + b * zs;
    if (masked(len, b, t)) {
      dzr[k] = dzr[H + k] = dzr[2 * H + k] = dzr[3 * H + k] = 0;
      continue;
    }
    const F *a = act + b * 4 * H;
    F i = a[k], j = a[H + k], f = a[2 * H + k], o = a[3 * H + k];
    F tc = th(ct[e]), dht = dh[e] + dy[b * ys + k];
    F dct = dc[e] + dht * o * (1 - tc * tc);
    dzr[k] = dct * j * i * (1 - i);
    dzr[H + k] = dct * i * (1 - j * j);
    dzr[2 * H + k] = dct * cp[e] * f * (1 - f);
    dzr[3 * H + k] = dht * tc * o * (1 - o);
    dc[e] = dct * f;
    dh[e] = 0;
  }
}

// The recurrence over all steps: z [B*T, 4H] holds each step's input
// projection plus bias; writes outputs 0..4. (Here and below, the time
// loops stop at once when there are no rows or units: nothing to launch.)
template <class F>
static void lstm_steps(mfi_kctx *k, const Dims &d, F *z, const F *h0, const F *c0, const F *wh,
                       const int32_t *len)
{
  int64_t B = d.B, T = d.T, H = d.H, G = 4 * H, n = B * H;
  F *y = data<F>(k->out[0]), *act = data<F>(k->out[3]), *cs = data<F>(k->out[4]);
  F fb = (F)mfi_attr_float(k->op, "forget_bias", 1.0);
  for (int64_t t = 0; t < T && n > 0; t++) {
    const F *hp = t ? y + (t - 1) * H : h0, *cp = t ? cs + (t - 1) * n : c0;
    F *zt = z + t * G;
    if (!mm(k, d.dt, false, false, B, G, H, hp, t ? T * H : H, wh, G, 1, zt, T * G)) return;
    MF_LAUNCH(lstm_step_kernel<F>, n, k->stream)
    (zt, T * G, cp, act + t * B * G, cs + t * n, y + t * H, T * H, len, t, fb, H, n);
  }
  final_h(k, h0, y, data<F>(k->out[1]), len, B, T, H);
  // c carries through masked steps, so the last step holds every final c.
  copy(k, data<F>(k->out[2]), T ? cs + (T - 1) * n : c0, n);
  launched(k);
}

// Scratch z [B*T, 4H] and seq_len, and the five outputs.
static bool lstm_begin(mfi_kctx *k, const Dims &d, int len_at, void **z, const int32_t **len)
{
  int64_t B = d.B, T = d.T, H = d.H, G = 4 * H;
  size_t es = mf_dtype_size(d.dt), bytes[2] = {(size_t)(B * T * G) * es, (size_t)B * 4};
  void *parts[2];
  const int nd[5] = {3, 2, 2, 3, 3};
  const int64_t dims[5][3] = {{B, T, H}, {B, H}, {B, H}, {T, B, G}, {T, B, H}};
  if (!carve(k, 2, bytes, parts) || !seq_len(k, len_at, B, parts[1], len)) return false;
  *z = parts[0];
  return new_outputs(k, d.dt, 5, nd, dims);
}

// LSTMSequence(x, h0, c0, kernel, bias[, seq_len]).
static void k_lstm(mfi_kctx *k)
{
  Dims d = dims_of(k);
  void *zp;
  const int32_t *len;
  if (!lstm_begin(k, d, 5, &zp, &len)) return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    int64_t B = d.B, T = d.T, I = d.I, G = 4 * d.H;
    F *z = (F *)zp;
    const F *x = data<F>(k->in[0]), *w = data<F>(k->in[3]);
    // z = bias + x W_x for every step at once, rows in (b, t) order.
    fill_rows(k, z, data<F>(k->in[4]), B * T, G);
    if (mm(k, d.dt, false, false, B * T, G, I, x, I, w, G, 1, z, G))
      lstm_steps<F>(k, d, z, data<F>(k->in[1]), data<F>(k->in[2]), w + I * G, len);
  });
}

// LSTMSequenceProjected(zx, h0, c0, recurrent_kernel[, seq_len]).
static void k_lstm_proj(mfi_kctx *k)
{
  Dims d = dims_of(k);
  void *zp;
  const int32_t *len;
  if (!lstm_begin(k, d, 4, &zp, &len)) return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    // the recurrent GEMMs accumulate onto a copy of zx
    copy(k, (F *)zp, data<F>(k->in[0]), d.B * d.T * 4 * d.H);
    lstm_steps<F>(k, d, (F *)zp, data<F>(k->in[1]), data<F>(k->in[2]), data<F>(k->in[3]), len);
  });
}

// Backpropagation through time: dz [B*T, 4H] for all steps; dh, dc (holding
// dh_T, dc_T on entry) become dh0, dc0. False on a GEMM's failure.
template <class F>
static bool lstm_bptt(mfi_kctx *k, const Dims &d, F *dz, F *dh, F *dc, const F *act, const F *cs,
                      const F *c0, const F *dy, const F *wh, const int32_t *len)
{
  int64_t B = d.B, T = d.T, H = d.H, G = 4 * H, n = B * H;
  for (int64_t t = T - 1; t >= 0 && n > 0; t--) {
    const F *cp = t ? cs + (t - 1) * n : c0;
    F *dzt = dz + t * G;
    MF_LAUNCH(lstm_bwd_kernel<F>, n, k->stream)
    (act + t * B * G, cs + t * n, cp, dy + t * H, T * H, dh, dc, dzt, T * G, len, t, H, n);
    // dh_{t-1} = dz_t W_h^T; masked rows have dz = 0 and keep their dh.
    if (!mm(k, d.dt, false, true, B, H, G, dzt, T * G, wh, G, 1, dh, H)) return false;
  }
  return launched(k);
}

// LSTMSequenceGrad(x, h0, c0, kernel, y, act, c, dy, dh_T, dc_T[, seq_len])
// -> dx, dh0, dc0, dkernel, dbias.
static void k_lstm_grad(mfi_kctx *k)
{
  Dims d = dims_of(k);
  int64_t B = d.B, T = d.T, I = d.I, H = d.H, G = 4 * H;
  size_t es = mf_dtype_size(d.dt);
  size_t bytes[3] = {(size_t)(B * T * G) * es, (size_t)(B * T * (I + H)) * es, (size_t)B * 4};
  void *parts[3];
  const int32_t *len;
  const int nd[5] = {3, 2, 2, 2, 1};
  const int64_t dims[5][3] = {{B, T, I}, {B, H}, {B, H}, {I + H, G}, {G}};
  if (!carve(k, 3, bytes, parts) || !seq_len(k, 10, B, parts[2], &len) ||
      !new_outputs(k, d.dt, 5, nd, dims))
    return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    F *dz = (F *)parts[0], *xh = (F *)parts[1];
    const F *x = data<F>(k->in[0]), *h0 = data<F>(k->in[1]), *w = data<F>(k->in[3]);
    F *dh = data<F>(k->out[1]), *dc = data<F>(k->out[2]);
    copy(k, dh, data<F>(k->in[8]), B * H);
    copy(k, dc, data<F>(k->in[9]), B * H);
    if (!lstm_bptt<F>(k, d, dz, dh, dc, data<F>(k->in[5]), data<F>(k->in[6]), data<F>(k->in[2]),
                      data<F>(k->in[7]), w + I * G, len))
      return;
    build_xh(k, x, h0, data<F>(k->in[4]), xh, B, T, I, H);
    if (!mm(k, d.dt, true, false, I + H, G, B * T, xh, I + H, dz, G, 0, data<F>(k->out[3]), G) ||
        !mm(k, d.dt, false, true, B * T, I, G, dz, G, w, G, 0, data<F>(k->out[0]), I))
      return;
    col_sums(k, dz, data<F>(k->out[4]), B * T, G);
    launched(k);
  });
}

// LSTMSequenceProjectedGrad(h0, c0, recurrent_kernel, y, act, c, dy, dh_T,
// dc_T[, seq_len]) -> dzx (which is dZ itself), dh0, dc0, drecurrent_kernel.
static void k_lstm_proj_grad(mfi_kctx *k)
{
  Dims d = dims_of(k);
  int64_t B = d.B, T = d.T, H = d.H, G = 4 * H;
  size_t bytes[2] = {(size_t)(B * T * H) * mf_dtype_size(d.dt), (size_t)B * 4};
  void *parts[2];
  const int32_t *len;
  const int nd[4] = {3, 2, 2, 2};
  const int64_t dims[4][3] = {{B, T, G}, {B, H}, {B, H}, {H, G}};
  if (!carve(k, 2, bytes, parts) || !seq_len(k, 9, B, parts[1], &len) ||
      !new_outputs(k, d.dt, 4, nd, dims))
    return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    F *hp = (F *)parts[0], *dz = data<F>(k->out[0]), *dh = data<F>(k->out[1]);
    F *dc = data<F>(k->out[2]);
    copy(k, dh, data<F>(k->in[7]), B * H);
    copy(k, dc, data<F>(k->in[8]), B * H);
    if (!lstm_bptt<F>(k, d, dz, dh, dc, data<F>(k->in[4]), data<F>(k->in[5]), data<F>(k->in[1]),
                      data<F>(k->in[6]), data<F>(k->in[2]), len))
      return;
    build_xh<F>(k, NULL, data<F>(k->in[0]), data<F>(k->in[3]), hp, B, T, 0, H);
    mm(k, d.dt, true, false, H, G, B * T, hp, H, dz, G, 0, data<F>(k->out[3]), G);
    launched(k);
  });
}

// ---------------------------------------------------------------- GRU

// Pass 1 of a step, item (b, k): r, u from the gate pre-activations z (row
// stride zs); rh = r * h_{t-1} (h_{t-1} row stride hs). ws rows are
// (r, u, c); a masked row gets zeros.
template <class F>
MF_GLOBAL void gru_gates_kernel(const F *z, int64_t zs, const F *hp, int64_t hs, F *ws, F *rh,
                                const int32_t *len, int64_t t, int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    F *wr = ws + b * 3 * H;
    if (masked(len, b, t)) {
      wr[k] = wr[H + k] = wr[2 * H + k] = 0;
      rh[e] = 0;
      continue;
    }
    const F *zr = z + b * zs;
    F r = sigm(zr[k]);
    wr[k] = r, wr[H + k] = sigm(zr[H + k]);
    rh[e] = r * hp[b * hs + k];
  }
}

// Pass 2, item (b, k): the candidate from its pre-activation zc (row
// stride zs) and the new state y[b, t] (row stride ys; 0 when masked).
template <class F>
MF_GLOBAL void gru_state_kernel(const F *zc, int64_t zs, const F *hp, int64_t hs, F *ws, F *y,
                                int64_t ys, const int32_t *len, int64_t t, int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    if (masked(len, b, t)) {
      y[b * ys + k] = 0;
      continue;
    }
    F *wr = ws + b * 3 * H;
    F c = th(zc[b * zs + k]), u = wr[H + k];
    wr[2 * H + k] = c;
    y[b * ys + k] = u * hp[b * hs + k] + (1 - u) * c;
  }
}

// The recurrence over all steps: zg [B*T, 2H] and zc [B*T, H] hold each
// step's input projections plus biases; rh is [B, H] scratch; writes
// outputs 0..2.
template <class F>
static void gru_steps(mfi_kctx *k, const Dims &d, F *zg, F *zc, F *rh, const F *h0, const F *wgh,
                      const F *wch, const int32_t *len)
{
  int64_t B = d.B, T = d.T, H = d.H, G = 2 * H, n = B * H;
  F *y = data<F>(k->out[0]), *ws = data<F>(k->out[2]);
  for (int64_t t = 0; t < T && n > 0; t++) {
    const F *hp = t ? y + (t - 1) * H : h0;
    int64_t hs = t ? T * H : H;
    F *zgt = zg + t * G, *zct = zc + t * H, *wst = ws + t * B * 3 * H;
    if (!mm(k, d.dt, false, false, B, G, H, hp, hs, wgh, G, 1, zgt, T * G)) return;
    MF_LAUNCH(gru_gates_kernel<F>, n, k->stream)(zgt, T * G, hp, hs, wst, rh, len, t, H, n);
    if (!mm(k, d.dt, false, false, B, H, H, rh, H, wch, H, 1, zct, T * H)) return;
    MF_LAUNCH(gru_state_kernel<F>, n, k->stream)
    (zct, T * H, hp, hs, wst, y + t * H, T * H, len, t, H, n);
  }
  final_h(k, h0, y, data<F>(k->out[1]), len, B, T, H);
  launched(k);
}

// Scratch zg, zc, rh, seq_len and the three outputs.
static bool gru_begin(mfi_kctx *k, const Dims &d, int len_at, void **parts, const int32_t **len)
{
  int64_t B = d.B, T = d.T, H = d.H;
  size_t es = mf_dtype_size(d.dt);
  size_t bytes[4] = {(size_t)(B * T * 2 * H) * es, (size_t)(B * T * H) * es, (size_t)(B * H) * es,
                     (size_t)B * 4};
  const int nd[3] = {3, 2, 3};
  const int64_t dims[3][3] = {{B, T, H}, {B, H}, {T, B, 3 * H}};
  return carve(k, 4, bytes, parts) && seq_len(k, len_at, B, parts[3], len) &&
         new_outputs(k, d.dt, 3, nd, dims);
}

// GRUSequence(x, h0, gate_kernel, gate_bias, cand_kernel, cand_bias[, seq_len]).
static void k_gru(mfi_kctx *k)
{
  Dims d = dims_of(k);
  void *parts[4];
  const int32_t *len;
  if (!gru_begin(k, d, 6, parts, &len)) return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    int64_t B = d.B, T = d.T, I = d.I, H = d.H, G = 2 * H;
    F *zg = (F *)parts[0], *zc = (F *)parts[1];
    const F *x = data<F>(k->in[0]), *wg = data<F>(k->in[2]), *wc = data<F>(k->in[4]);
    fill_rows(k, zg, data<F>(k->in[3]), B * T, G);
    fill_rows(k, zc, data<F>(k->in[5]), B * T, H);
    if (mm(k, d.dt, false, false, B * T, G, I, x, I, wg, G, 1, zg, G) &&
        mm(k, d.dt, false, false, B * T, H, I, x, I, wc, H, 1, zc, H))
      gru_steps<F>(k, d, zg, zc, (F *)parts[2], data<F>(k->in[1]), wg + I * G, wc + I * H, len);
  });
}

// GRUSequenceProjected(zx_gates, zx_cand, h0, gate_recurrent_kernel,
// cand_recurrent_kernel[, seq_len]).
static void k_gru_proj(mfi_kctx *k)
{
  Dims d = dims_of(k);
  void *parts[4];
  const int32_t *len;
  if (!gru_begin(k, d, 5, parts, &len)) return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    int64_t BT = d.B * d.T, H = d.H;
    // the recurrent GEMMs accumulate onto copies of the projections
    copy(k, (F *)parts[0], data<F>(k->in[0]), BT * 2 * H);
    copy(k, (F *)parts[1], data<F>(k->in[1]), BT * H);
    gru_steps<F>(k, d, (F *)parts[0], (F *)parts[1], (F *)parts[2], data<F>(k->in[2]),
                 data<F>(k->in[3]), data<F>(k->in[4]), len);
  });
}

// Backward pass 1, item (b, k): dzc and the u part of dzg; dh becomes the
// direct part u * dh_t of dh_{t-1}. hp, dy, dzg, dzc rows are T * width
// apart. Masked rows: zero dZ, dh carried.
template <class F>
MF_GLOBAL void gru_bwd1_kernel(const F *ws, const F *hp, const F *dy, F *dh, F *dzg, F *dzc,
                               const int32_t *len, int64_t t, int64_t T, int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    F *gr = dzg + b * T * 2 * H, *cr = dzc + b * T * H;
    if (masked(len, b, t)) {
      gr[k] = gr[H + k] = 0;
      cr[k] = 0;
      continue;
    }
    const F *wr = ws + b * 3 * H;
    F u = wr[H + k], c = wr[2 * H + k], dht = dh[e] + dy[b * T * H + k];
    cr[k] = dht * (1 - u) * (1 - c * c);
    gr[H + k] = dht * (hp[b * T * H + k] - c) * u * (1 - u);
    dh[e] = dht * u;
  }
}

// Pass 2, item (b, k): from drh = d(r * h_{t-1}), the r part of dzg, and
// r * drh into dh (masked rows keep their zeros).
template <class F>
MF_GLOBAL void gru_bwd2_kernel(const F *ws, const F *hp, const F *drh, F *dh, F *dzg,
                               const int32_t *len, int64_t t, int64_t T, int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    if (masked(len, b, t)) continue;
    F r = ws[b * 3 * H + k];
    dzg[b * T * 2 * H + k] = drh[e] * hp[b * T * H + k] * r * (1 - r);
    dh[e] += drh[e] * r;
  }
}

// r * h_{t-1} for every step, in place over hp [B, T, H]; ws is [T, B, 3H]
// with r first.
template <class F>
MF_GLOBAL void scale_by_r_kernel(const F *ws, F *hp, int64_t B, int64_t T, int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t r = e / H, k = e % H, b = r / T, t = r % T;
    hp[e] *= ws[(t * B + b) * 3 * H + k];
  }
}

// Backpropagation through time: dzg [B*T, 2H] and dzc [B*T, H] for all
// steps; dh (dh_T on entry) becomes dh0. hp holds h_{t-1} per step, drh is
// [B, H] scratch. False on a GEMM's failure.
template <class F>
static bool gru_bptt(mfi_kctx *k, const Dims &d, F *dzg, F *dzc, F *drh, F *dh, const F *hp,
                     const F *ws, const F *dy, const F *wgh, const F *wch, const int32_t *len)
{
  int64_t B = d.B, T = d.T, H = d.H, G = 2 * H, n = B * H;
  for (int64_t t = T - 1; t >= 0 && n > 0; t--) {
    const F *wst = ws + t * B * 3 * H, *hpt = hp + t * H;
    F *dzgt = dzg + t * G, *dzct = dzc + t * H;
    MF_LAUNCH(gru_bwd1_kernel<F>, n, k->stream)
    (wst, hpt, dy + t * H, dh, dzgt, dzct, len, t, T, H, n);
    if (!mm(k, d.dt, false, true, B, H, H, dzct, T * H, wch, H, 0, drh, H)) return false;
    MF_LAUNCH(gru_bwd2_kernel<F>, n, k->stream)(wst, hpt, drh, dh, dzgt, len, t, T, H, n);
    if (!mm(k, d.dt, false, true, B, H, G, dzgt, T * G, wgh, G, 1, dh, H)) return false;
  }
  return launched(k);
}

template <class F>
static bool scale_by_r(mfi_kctx *k, const F *ws, F *hp, int64_t B, int64_t T, int64_t H)
{
  int64_t n = B * T * H;
  MF_LAUNCH(scale_by_r_kernel<F>, n, k->stream)(ws, hp, B, T, H, n);
  return launched(k);
}

// GRUSequenceGrad(x, h0, gate_kernel, cand_kernel, y, ws, dy, dh_T[, seq_len])
// -> dx, dh0, dgate_kernel, dgate_bias, dcand_kernel, dcand_bias.
static void k_gru_grad(mfi_kctx *k)
{
  Dims d = dims_of(k);
  int64_t B = d.B, T = d.T, I = d.I, H = d.H, G = 2 * H;
  size_t es = mf_dtype_size(d.dt), cbytes = (size_t)(B * T * H) * es;
  size_t bytes[5] = {(size_t)(B * T * G) * es, cbytes, cbytes, (size_t)(B * H) * es, (size_t)B * 4};
  void *parts[5];
  const int32_t *len;
  const int nd[6] = {3, 2, 2, 1, 2, 1};
  const int64_t dims[6][3] = {{B, T, I}, {B, H}, {I + H, G}, {G}, {I + H, H}, {H}};
  if (!carve(k, 5, bytes, parts) || !seq_len(k, 8, B, parts[4], &len) ||
      !new_outputs(k, d.dt, 6, nd, dims))
    return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    F *dzg = (F *)parts[0], *dzc = (F *)parts[1], *hp = (F *)parts[2];
    const F *x = data<F>(k->in[0]), *wg = data<F>(k->in[2]), *wc = data<F>(k->in[3]);
    const F *ws = data<F>(k->in[5]);
    F *dx = data<F>(k->out[0]), *dh = data<F>(k->out[1]);
    F *dwg = data<F>(k->out[2]), *dwc = data<F>(k->out[4]);
    copy(k, dh, data<F>(k->in[7]), B * H);
    build_xh<F>(k, NULL, data<F>(k->in[1]), data<F>(k->in[4]), hp, B, T, 0, H);
    if (!gru_bptt<F>(k, d, dzg, dzc, (F *)parts[3], dh, hp, ws, data<F>(k->in[6]), wg + I * G,
                     wc + I * H, len))
      return;
    mf_dtype dt = d.dt;
    if (!mm(k, dt, true, false, I, G, B * T, x, I, dzg, G, 0, dwg, G) ||
        !mm(k, dt, true, false, H, G, B * T, hp, H, dzg, G, 0, dwg + I * G, G))
      return;
    scale_by_r(k, ws, hp, B, T, H);
    if (!mm(k, dt, true, false, I, H, B * T, x, I, dzc, H, 0, dwc, H) ||
        !mm(k, dt, true, false, H, H, B * T, hp, H, dzc, H, 0, dwc + I * H, H) ||
        !mm(k, dt, false, true, B * T, I, G, dzg, G, wg, G, 0, dx, I) ||
        !mm(k, dt, false, true, B * T, I, H, dzc, H, wc, H, 1, dx, I))
      return;
    col_sums(k, dzg, data<F>(k->out[3]), B * T, G);
    col_sums(k, dzc, data<F>(k->out[5]), B * T, H);
    launched(k);
  });
}

// GRUSequenceProjectedGrad(h0, gate_recurrent_kernel, cand_recurrent_kernel,
// y, ws, dy, dh_T[, seq_len]) -> dzx_gates, dzx_cand (dZ themselves), dh0,
// dgate_recurrent_kernel, dcand_recurrent_kernel.
static void k_gru_proj_grad(mfi_kctx *k)
{
  Dims d = dims_of(k);
  int64_t B = d.B, T = d.T, H = d.H, G = 2 * H;
  size_t es = mf_dtype_size(d.dt);
  size_t bytes[3] = {(size_t)(B * T * H) * es, (size_t)(B * H) * es, (size_t)B * 4};
  void *parts[3];
  const int32_t *len;
  const int nd[5] = {3, 3, 2, 2, 2};
  const int64_t dims[5][3] = {{B, T, G}, {B, T, H}, {B, H}, {H, G}, {H, H}};
  if (!carve(k, 3, bytes, parts) || !seq_len(k, 7, B, parts[2], &len) ||
      !new_outputs(k, d.dt, 5, nd, dims))
    return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    F *hp = (F *)parts[0], *dzg = data<F>(k->out[0]), *dzc = data<F>(k->out[1]);
    F *dh = data<F>(k->out[2]);
    const F *ws = data<F>(k->in[4]);
    copy(k, dh, data<F>(k->in[6]), B * H);
    build_xh<F>(k, NULL, data<F>(k->in[0]), data<F>(k->in[3]), hp, B, T, 0, H);
    if (!gru_bptt<F>(k, d, dzg, dzc, (F *)parts[1], dh, hp, ws, data<F>(k->in[5]),
                     data<F>(k->in[1]), data<F>(k->in[2]), len) ||
        !mm(k, d.dt, true, false, H, G, B * T, hp, H, dzg, G, 0, data<F>(k->out[3]), G))
      return;
    scale_by_r(k, ws, hp, B, T, H);
    mm(k, d.dt, true, false, H, H, B * T, hp, H, dzc, H, 0, data<F>(k->out[4]), H);
    launched(k);
  });
}

// ---------------------------------------------------------------- basic RNN

// Item (b, k) of step t: y[b, t] (row stride ys) holds the pre-activation;
// replace it with tanh (0 when masked).
template <class F>
MF_GLOBAL void rnn_step_kernel(F *y, int64_t ys, const int32_t *len, int64_t t, int64_t H,
                               int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H;
    F *p = y + b * ys + k;
    *p = masked(len, b, t) ? F(0) : th(*p);
  }
}

// dz = (dh + dy) (1 - y^2), dh left 0 for the GEMM; rows of y, dy, dz are
// T * H apart. Masked rows: dz = 0, dh carried.
template <class F>
MF_GLOBAL void rnn_bwd_kernel(const F *y, const F *dy, F *dh, F *dz, const int32_t *len, int64_t t,
                              int64_t T, int64_t H, int64_t n)
{
  MF_FOR(e, n)
  {
    int64_t b = e / H, k = e % H, o = b * T * H + k;
    if (masked(len, b, t)) {
      dz[o] = 0;
      continue;
    }
    dz[o] = (dh[e] + dy[o]) * (1 - y[o] * y[o]);
    dh[e] = 0;
  }
}

// RNNSequence(x, h0, kernel, bias[, seq_len]) -> y, h_T.
static void k_rnn(mfi_kctx *k)
{
  Dims d = dims_of(k);
  int64_t B = d.B, T = d.T, I = d.I, H = d.H, n = B * H;
  size_t bytes[1] = {(size_t)B * 4};
  void *parts[1];
  const int32_t *len;
  const int nd[2] = {3, 2};
  const int64_t dims[2][3] = {{B, T, H}, {B, H}};
  if (!carve(k, 1, bytes, parts) || !seq_len(k, 4, B, parts[0], &len) ||
      !new_outputs(k, d.dt, 2, nd, dims))
    return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    const F *x = data<F>(k->in[0]), *h0 = data<F>(k->in[1]), *w = data<F>(k->in[2]);
    F *y = data<F>(k->out[0]);
    // y itself accumulates the pre-activations.
    fill_rows(k, y, data<F>(k->in[3]), B * T, H);
    if (!mm(k, d.dt, false, false, B * T, H, I, x, I, w, H, 1, y, H)) return;
    for (int64_t t = 0; t < T && n > 0; t++) {
      F *yt = y + t * H;
      if (!mm(k, d.dt, false, false, B, H, H, t ? yt - H : h0, t ? T * H : H, w + I * H, H, 1, yt,
              T * H))
        return;
      MF_LAUNCH(rnn_step_kernel<F>, n, k->stream)(yt, T * H, len, t, H, n);
    }
    final_h(k, h0, y, data<F>(k->out[1]), len, B, T, H);
    launched(k);
  });
}

// RNNSequenceGrad(x, h0, kernel, y, dy, dh_T[, seq_len]) -> dx, dh0,
// dkernel, dbias.
static void k_rnn_grad(mfi_kctx *k)
{
  Dims d = dims_of(k);
  int64_t B = d.B, T = d.T, I = d.I, H = d.H, n = B * H;
  size_t es = mf_dtype_size(d.dt);
  size_t bytes[3] = {(size_t)(B * T * H) * es, (size_t)(B * T * (I + H)) * es, (size_t)B * 4};
  void *parts[3];
  const int32_t *len;
  const int nd[4] = {3, 2, 2, 1};
  const int64_t dims[4][3] = {{B, T, I}, {B, H}, {I + H, H}, {H}};
  if (!carve(k, 3, bytes, parts) || !seq_len(k, 6, B, parts[2], &len) ||
      !new_outputs(k, d.dt, 4, nd, dims))
    return;
  with_float(d.dt, [&](auto zero) {
    using F = decltype(zero);
    F *dz = (F *)parts[0], *xh = (F *)parts[1], *dh = data<F>(k->out[1]);
    const F *x = data<F>(k->in[0]), *w = data<F>(k->in[2]), *y = data<F>(k->in[3]);
    const F *dy = data<F>(k->in[4]);
    copy(k, dh, data<F>(k->in[5]), n);
    for (int64_t t = T - 1; t >= 0 && n > 0; t--) {
      MF_LAUNCH(rnn_bwd_kernel<F>, n, k->stream)
      (y + t * H, dy + t * H, dh, dz + t * H, len, t, T, H, n);
      if (!mm(k, d.dt, false, true, B, H, H, dz + t * H, T * H, w + I * H, H, 1, dh, H)) return;
    }
    build_xh(k, x, data<F>(k->in[1]), y, xh, B, T, I, H);
    if (!mm(k, d.dt, true, false, I + H, H, B * T, xh, I + H, dz, H, 0, data<F>(k->out[2]), H) ||
        !mm(k, d.dt, false, true, B * T, I, H, dz, H, w, H, 0, data<F>(k->out[0]), I))
      return;
    col_sums(k, dz, data<F>(k->out[3]), B * T, H);
    launched(k);
  });
}

extern const mfi_kernel_reg rnn_kernels[] = {{"LSTMSequence", k_lstm},
                                             {"LSTMSequenceGrad", k_lstm_grad},
                                             {"LSTMSequenceProjected", k_lstm_proj},
                                             {"LSTMSequenceProjectedGrad", k_lstm_proj_grad},
                                             {"GRUSequence", k_gru},
                                             {"GRUSequenceGrad", k_gru_grad},
                                             {"GRUSequenceProjected", k_gru_proj},
                                             {"GRUSequenceProjectedGrad", k_gru_proj_grad},
                                             {"RNNSequence", k_rnn},
                                             {"RNNSequenceGrad", k_rnn_grad},
                                             {NULL, NULL}};

} // namespace MF_CUDA_NS
