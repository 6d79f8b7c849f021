/* im2col + GEMM (moonflow's Conv2D CPU kernel) against a direct
 * convolution, for the LeNet layers of scripts/bench/cnn.lua at 8x8 and
 * 28x28 (NHWC, HWIO, stride 1, SAME, float32, one thread): the measurement
 * behind the choice of im2col (issue 11). The direct loop is the usual fast
 * shape: for each output pixel and filter tap, a contiguous multiply-add
 * over the output channels (which the compiler vectorises). Prints a JSON
 * line per layer: median milliseconds of each, their ratio, and the largest
 * difference between the two outputs.
 *
 *   cc -O3 -march=native -o /tmp/conv_direct scripts/bench/c/conv_direct.c -Iinclude \
 *      -Lbuild -lmoonflow -Wl,-rpath,$PWD/build -lm
 *   /tmp/conv_direct [reps] [only: direct|moonflow]
 * With `only`, a single path runs (for valgrind --tool=callgrind counts). */
#include <moonflow.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_timing.h"

typedef struct {
  const char *name;
  int n, h, w, c, k, o;
} layer;

/* SAME padding, stride 1: output pixel (oy, ox) reads input rows oy - p ... */
__attribute__((noinline)) static void direct_conv(const layer *l, const float *x, const float *f,
                                                  float *y)
{
  int p = (l->k - 1) / 2;
  for (int i = 0; i < l->n; i++)
    for (int oy = 0; oy < l->h; oy++)
      for (int ox = 0; ox < l->w; ox++) {
        float *out = y + (((size_t)i * l->h + oy) * l->w + ox) * l->o;
        memset(out, 0, (size_t)l->o * sizeof *out);
        for (int ky = 0; ky < l->k; ky++) {
          int iy = oy + ky - p;
          if (iy < 0 || iy >= l->h) continue;
          for (int kx = 0; kx < l->k; kx++) {
            int ix = ox + kx - p;
            if (ix < 0 || ix >= l->w) continue;
            const float *in = x + (((size_t)i * l->h + iy) * l->w + ix) * l->c;
            const float *fw = f + ((size_t)ky * l->k + kx) * l->c * l->o;
            for (int ci = 0; ci < l->c; ci++) {
              float v = in[ci];
              const float *row = fw + (size_t)ci * l->o;
              for (int co = 0; co < l->o; co++) out[co] += v * row[co];
            }
          }
        }
      }
}

static int fail(mf_status *s)
{
  fprintf(stderr, "conv_direct: %s\n", mf_status_message(s));
  return 1;
}

static int run(const layer *l, int reps, const char *only, mf_status *s)
{
  size_t nx = (size_t)l->n * l->h * l->w * l->c, nf = (size_t)l->k * l->k * l->c * l->o;
  size_t ny = (size_t)l->n * l->h * l->w * l->o;
  int64_t xd[4] = {l->n, l->h, l->w, l->c}, fd[4] = {l->k, l->k, l->c, l->o};
  mf_tensor *xt = mf_tensor_new(MF_FLOAT32, 4, xd, s), *ft = mf_tensor_new(MF_FLOAT32, 4, fd, s);
  if (!xt || !ft) return fail(s);
  float *x = mf_tensor_mutable_data(xt, s), *f = mf_tensor_mutable_data(ft, s);
  unsigned r = 12345;
  for (size_t i = 0; i < nx; i++)
    x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  for (size_t i = 0; i < nf; i++)
    f[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  float *yd = malloc(ny * sizeof *yd);

  mf_graph *g = mf_graph_new();
  mf_op_desc *d = mf_op_begin(g, "Placeholder", "x");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_output xo = {mf_op_finish(d, s), 0};
  d = mf_op_begin(g, "Const", "f");
  mf_op_set_attr_tensor(d, "value", ft);
  mf_output fo = {mf_op_finish(d, s), 0};
  d = mf_op_begin(g, "Conv2D", "conv");
  mf_op_add_input(d, xo);
  mf_op_add_input(d, fo);
  int64_t strides[4] = {1, 1, 1, 1};
  mf_op_set_attr_ints(d, "strides", strides, 4);
  mf_op_set_attr_string(d, "padding", "SAME");
  mf_output yo = {mf_op_finish(d, s), 0};
  mf_session_config c;
  mf_session_config_init(&c);
  c.intra_op_threads = 1;
  mf_session *sess = mf_status_code(s) == MF_OK ? mf_session_new(g, &c, s) : NULL;
  if (!sess || !yd) return fail(s);

  double *td = malloc((size_t)reps * sizeof *td), *tm = malloc((size_t)reps * sizeof *tm);
  mf_tensor *ym = NULL;
  for (int rep = 0; rep < reps; rep++) { /* alternating, so load hits both alike */
    double t0 = bench_now();
    if (!only || !strcmp(only, "direct")) direct_conv(l, x, f, yd);
    double t1 = bench_now();
    if (!only || !strcmp(only, "moonflow")) {
      mf_tensor_delete(ym);
      ym = NULL;
      mf_session_run(sess, &xo, &xt, 1, &yo, &ym, 1, NULL, 0, s);
      if (mf_status_code(s) != MF_OK) return fail(s);
    }
    td[rep] = t1 - t0, tm[rep] = bench_now() - t1;
  }
  double diff = 0;
  if (!only)
    for (size_t i = 0; i < ny; i++)
      diff = fmax(diff, fabs(yd[i] - ((const float *)mf_tensor_data(ym))[i]));
  double a = bench_median(td, reps) * 1e3, b = bench_median(tm, reps) * 1e3;
  printf("{\"layer\": \"%s\", \"n\": %d, \"h\": %d, \"w\": %d, \"c\": %d, \"k\": %d, \"o\": %d, "
         "\"direct_ms\": %.4f, \"im2col_gemm_ms\": %.4f, \"direct_over_im2col\": %.3f, "
         "\"max_abs_diff\": %.3g}\n",
         l->name, l->n, l->h, l->w, l->c, l->k, l->o, a, b, b > 0 ? a / b : 0, diff);
  mf_tensor_delete(ym);
  mf_tensor_delete(xt);
  mf_tensor_delete(ft);
  free(td), free(tm), free(yd);
  mf_session_delete(sess);
  mf_graph_delete(g);
  return 0;
}

int main(int argc, char **argv)
{
  static const layer layers[] = {{"8x8 conv1", 64, 8, 8, 1, 5, 16},
                                 {"8x8 conv2", 64, 4, 4, 16, 5, 32},
                                 {"28x28 conv1", 64, 28, 28, 1, 5, 16},
                                 {"28x28 conv2", 64, 14, 14, 16, 5, 32}};
  int reps = argc > 1 ? atoi(argv[1]) : 21;
  const char *only = argc > 2 ? argv[2] : NULL;
  if (reps < 1) reps = 1;
  mf_status *s = mf_status_new();
  int rc = 0;
  for (size_t i = 0; i < sizeof layers / sizeof *layers && !rc; i++)
    rc = run(&layers[i], reps, only, s);
  mf_status_delete(s);
  return rc;
}
