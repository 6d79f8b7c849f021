// What the nvcc compilation's kernels get from gpu/device.cu (never in the
// host compilation, MF_CUDA_EMULATE).
#ifndef MOONFLOW_GPU_CUDA_H
#define MOONFLOW_GPU_CUDA_H

#include <cublas_v2.h>

#include "../csrc/internal.h"

// The cuBLAS handle of the op's GPU, bound to the op's stream, with TF32
// tensor-core math only when k->allow_tf32; NULL with the op's error set.
cublasHandle_t mf_cuda_blas(mfi_kctx *k);

#endif
