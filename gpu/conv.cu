// 2-D convolutions and pooling over NHWC data (ops/conv.c has the CPU's).
//
// Convolutions are im2col + the gemm service (cuBLAS on the GPU): a kernel
// writes each output position's receptive field as a row of the column
// matrix in scratch memory, a few images at a time, and the products do the
// rest. The input's gradient multiplies back into columns, which a gather
// kernel sums into each input element (one work item per element: no
// atomics). Pooling is one work item per output element; the pools'
// gradients gather, per input element, over the windows that hold it in
// the CPU's order. Prepare left the geometry in k->params.
#include "kernel.h"

#include "../csrc/ops/conv.h"

namespace MF_CUDA_NS {

// Passed by value to the kernels.
typedef mfi_conv_geom Geom;

// Images at a time, as the CPU's: the column matrix near 4M elements.
static int64_t chunk_images(const Geom &g)
{
  int64_t per = g.oh * g.ow * g.kh * g.kw * g.c, nb = per > 0 ? (4 << 20) / per : g.n;
  return nb < 1 ? 1 : nb > g.n ? g.n : nb;
}

template <class T> MF_GLOBAL void zero_kernel(T *y, int64_t n) { MF_FOR(i, n) y[i] = T(0); }

// Work item i: element (row, kidx) of the column matrix of cnt images, row
// = (img, oy, ox), kidx = (ky, kx, ch).
template <class T> MF_GLOBAL void im2col_kernel(const T *x, T *col, Geom g, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t kk = g.kh * g.kw * g.c, r = i / kk, q = i % kk;
    int64_t ch = q % g.c, kx = q / g.c % g.kw, ky = q / g.c / g.kw;
    int64_t ox = r % g.ow, oy = r / g.ow % g.oh, img = r / g.ow / g.oh;
    int64_t iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
    bool in = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
    col[i] = in ? x[((img * g.h + iy) * g.w + ix) * g.c + ch] : T(0);
  }
}

// Work item i: input element (img, iy, ix, ch) of cnt images, the sum of
// the column entries that read it.
template <class T> MF_GLOBAL void col2im_kernel(const T *col, T *dx, Geom g, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t ch = i % g.c, ix = i / g.c % g.w, iy = i / g.c / g.w % g.h, img = i / g.c / g.w / g.h;
    int64_t kk = g.kh * g.kw * g.c;
    T s = T(0);
    for (int64_t ky = 0; ky < g.kh; ky++) {
      int64_t ty = iy + g.pt - ky * g.dh;
      if (ty < 0 || ty % g.sh) continue;
      int64_t oy = ty / g.sh;
      if (oy >= g.oh) continue;
      for (int64_t kx = 0; kx < g.kw; kx++) {
        int64_t tx = ix + g.pl - kx * g.dw;
        if (tx < 0 || tx % g.sw) continue;
        int64_t ox = tx / g.sw;
        if (ox >= g.ow) continue;
        s += col[((img * g.oh + oy) * g.ow + ox) * kk + (ky * g.kw + kx) * g.c + ch];
      }
    }
    dx[i] = s;
  }
}

static bool new_out(mfi_kctx *k, mf_dtype dt)
{
  return mfi_out_new(k, 0, dt, k->shapes[0].ndim, k->shapes[0].dims);
}

static bool pointwise(const Geom &g) { return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1; }

// Which product a convolution kernel computes.
enum { FORWARD, BP_INPUT, BP_FILTER };

static void conv_kernel(mfi_kctx *k, int which)
{
  Geom g = mfi_conv_geom_of(k);
  // Conv2D has two inputs (no dy); the backprops three
  const mf_tensor *x = k->in[0], *f = k->in[1], *dy = k->op->nin > 2 ? k->in[2] : nullptr;
  mf_dtype dt = k->in[which == BP_INPUT ? 1 : 0]->dtype;
  if (!new_out(k, dt) || k->out[0]->numel == 0) return;
  with_float(dt, [&](auto z) {
    using T = decltype(z);
    int64_t kk = g.kh * g.kw * g.c, rows = g.oh * g.ow, nb = chunk_images(g);
    T *y = data<T>(k->out[0]);
    if (which == BP_FILTER && g.n * rows == 0) { // no positions: a zero gradient
      MF_LAUNCH(zero_kernel<T>, k->out[0]->numel, k->stream)(y, k->out[0]->numel);
      return;
    }
    if (pointwise(g)) { // the input is its own column matrix
      if (which == FORWARD)
        gemm(k, dt, false, false, g.n * rows, g.o, kk, data<T>(x), kk, 0, data<T>(f), g.o, 0, 0, y,
             g.o, 0, 1);
      else if (which == BP_INPUT)
        gemm(k, dt, false, true, g.n * rows, kk, g.o, data<T>(dy), g.o, 0, data<T>(f), g.o, 0, 0, y,
             kk, 0, 1);
      else
        gemm(k, dt, true, false, kk, g.o, g.n * rows, data<T>(x), kk, 0, data<T>(dy), g.o, 0, 0, y,
             g.o, 0, 1);
      return;
    }
    T *col = (T *)mfi_scratch(k, sizeof(T) * (size_t)(nb * rows * kk > 0 ? nb * rows * kk : 1));
    if (!col) return;
    for (int64_t i = 0; i < g.n && mfi_ok(k->status); i += nb) {
      int64_t cnt = g.n - i < nb ? g.n - i : nb, ncol = cnt * rows * kk;
      const T *xi = which == BP_INPUT ? nullptr : data<T>(x) + i * g.h * g.w * g.c;
      const T *dyi = which == FORWARD ? nullptr : data<T>(dy) + i * rows * g.o;
      if (which != BP_INPUT && ncol > 0)
        MF_LAUNCH(im2col_kernel<T>, ncol, k->stream)(xi, col, g, ncol);
      if (which == FORWARD) {
        gemm(k, dt, false, false, cnt * rows, g.o, kk, col, kk, 0, data<T>(f), g.o, 0, 0,
             y + i * rows * g.o, g.o, 0, 1);
      } else if (which == BP_FILTER) {
        gemm(k, dt, true, false, kk, g.o, cnt * rows, col, kk, 0, dyi, g.o, 0, i == 0 ? 0 : 1, y,
             g.o, 0, 1);
      } else {
        gemm(k, dt, false, true, cnt * rows, kk, g.o, dyi, g.o, 0, data<T>(f), g.o, 0, 0, col, kk,
             0, 1);
        int64_t nx = cnt * g.h * g.w * g.c;
        if (nx > 0) MF_LAUNCH(col2im_kernel<T>, nx, k->stream)(col, y + i * g.h * g.w * g.c, g, nx);
      }
    }
  });
  launched(k);
}

static void k_conv(mfi_kctx *k) { conv_kernel(k, FORWARD); }
static void k_bp_input(mfi_kctx *k) { conv_kernel(k, BP_INPUT); }
static void k_bp_filter(mfi_kctx *k) { conv_kernel(k, BP_FILTER); }

// ---------------------------------------------------------------- pooling

// Output (oy, ox)'s window clipped to the input: rows [y0, y1), columns [x0, x1).
MF_DEVICE void window(const Geom &g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0,
                      int64_t *x1)
{
  int64_t a = oy * g.sh - g.pt, b = ox * g.sw - g.pl;
  *y0 = a < 0 ? 0 : a, *y1 = a + g.kh > g.h ? g.h : a + g.kh;
  *x0 = b < 0 ? 0 : b, *x1 = b + g.kw > g.w ? g.w : b + g.kw;
}

// The flat index of the window's first max, as the CPU picks it.
template <class T>
MF_DEVICE int64_t argmax(const Geom &g, const T *x, int64_t img, int64_t oy, int64_t ox, int64_t ch)
{
  int64_t y0, y1, x0, x1, best = -1;
  T m = T(0);
  window(g, oy, ox, &y0, &y1, &x0, &x1);
  for (int64_t iy = y0; iy < y1; iy++)
    for (int64_t ix = x0; ix < x1; ix++) {
      int64_t j = ((img * g.h + iy) * g.w + ix) * g.c + ch;
      if (best < 0 || x[j] > m) m = x[j], best = j;
    }
  return best;
}

// Work item i: output element (img, oy, ox, ch).
template <class T, bool MAX> MF_GLOBAL void pool_kernel(const T *x, T *y, Geom g, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t ch = i % g.c, ox = i / g.c % g.ow, oy = i / g.c / g.ow % g.oh,
            img = i / g.c / g.ow / g.oh;
    if (MAX) {
      y[i] = x[argmax(g, x, img, oy, ox, ch)];
      continue;
    }
    int64_t y0, y1, x0, x1;
    window(g, oy, ox, &y0, &y1, &x0, &x1);
    double s = 0;
    for (int64_t iy = y0; iy < y1; iy++)
      for (int64_t ix = x0; ix < x1; ix++) s += (double)x[((img * g.h + iy) * g.w + ix) * g.c + ch];
    y[i] = (T)(s / (double)((y1 - y0) * (x1 - x0)));
  }
}

// Work item i: input element (img, iy, ix, ch), summing over the windows
// that hold it, in the CPU's (row-major output) order.
template <class T, bool MAX>
MF_GLOBAL void pool_grad_kernel(const T *x, const T *dy, T *dx, Geom g, int64_t total)
{
  MF_FOR(i, total)
  {
    int64_t ch = i % g.c, ix = i / g.c % g.w, iy = i / g.c / g.w % g.h, img = i / g.c / g.w / g.h;
    int64_t ly = iy + g.pt - g.kh + 1, lx = ix + g.pl - g.kw + 1;
    int64_t oy0 = ly <= 0 ? 0 : (ly + g.sh - 1) / g.sh, ox0 = lx <= 0 ? 0 : (lx + g.sw - 1) / g.sw;
    int64_t oy1 = (iy + g.pt) / g.sh, ox1 = (ix + g.pl) / g.sw;
    oy1 = oy1 > g.oh - 1 ? g.oh - 1 : oy1, ox1 = ox1 > g.ow - 1 ? g.ow - 1 : ox1;
    T s = T(0);
    for (int64_t oy = oy0; oy <= oy1; oy++)
      for (int64_t ox = ox0; ox <= ox1; ox++) {
        int64_t o = ((img * g.oh + oy) * g.ow + ox) * g.c + ch;
        if (MAX) {
          if (argmax(g, x, img, oy, ox, ch) == i) s = (T)(s + dy[o]);
          continue;
        }
        int64_t y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        s = (T)((double)s + (double)dy[o] / (double)((y1 - y0) * (x1 - x0)));
      }
    dx[i] = s;
  }
}

template <bool MAX> static void k_pool(mfi_kctx *k)
{
  Geom g = mfi_conv_geom_of(k);
  const mf_tensor *x = k->in[0];
  if (!new_out(k, x->dtype) || k->out[0]->numel == 0) return;
  int64_t n = k->out[0]->numel;
  with_float(x->dtype, [&](auto z) {
    using T = decltype(z);
    auto kern = pool_kernel<T, MAX>;
    MF_LAUNCH(kern, n, k->stream)(data<T>(x), data<T>(k->out[0]), g, n);
  });
  launched(k);
}

// MaxPoolGrad(orig_input, orig_output, grad), AvgPoolGrad(orig_input_shape, grad).
template <bool MAX> static void k_pool_grad(mfi_kctx *k)
{
  Geom g = mfi_conv_geom_of(k);
  const mf_tensor *dy = k->in[k->op->nin - 1];
  if (!new_out(k, dy->dtype) || k->out[0]->numel == 0) return;
  int64_t n = k->out[0]->numel;
  with_float(dy->dtype, [&](auto z) {
    using T = decltype(z);
    const T *x = MAX ? data<T>(k->in[0]) : nullptr;
    auto kern = pool_grad_kernel<T, MAX>;
    MF_LAUNCH(kern, n, k->stream)(x, data<T>(dy), data<T>(k->out[0]), g, n);
  });
  launched(k);
}

extern const mfi_kernel_reg conv_kernels[] = {{"Conv2D", k_conv},
                                              {"Conv2DBackpropInput", k_bp_input},
                                              {"Conv2DBackpropFilter", k_bp_filter},
                                              {"MaxPool", k_pool<true>},
                                              {"AvgPool", k_pool<false>},
                                              {"MaxPoolGrad", k_pool_grad<true>},
                                              {"AvgPoolGrad", k_pool_grad<false>},
                                              {NULL, NULL}};

} // namespace MF_CUDA_NS
