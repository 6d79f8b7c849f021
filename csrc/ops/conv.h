/* The geometry of a 2-D convolution or pooling window over NHWC data,
 * worked out by the conv ops' prepare hooks (ops/conv.c) and left in
 * k->params for the kernels of every backend (gpu/conv.cu reads it too). */
#ifndef MOONFLOW_OPS_CONV_H
#define MOONFLOW_OPS_CONV_H

#include "../internal.h"

#include <string.h>

typedef struct {
  int64_t n, h, w, c; /* input: batch, height, width, channels */
  int64_t kh, kw, o;  /* window (filter) height and width; output channels */
  int64_t oh, ow;     /* output height and width */
  int64_t sh, sw;     /* strides */
  int64_t dh, dw;     /* dilations (1 for pools) */
  int64_t pt, pl;     /* padding before the first row and column (SAME) */
} mfi_conv_geom;

static inline mfi_conv_geom mfi_conv_geom_of(const mfi_kctx *k)
{
  mfi_conv_geom g;
  memcpy(&g, k->params, sizeof g);
  return g;
}

#endif
