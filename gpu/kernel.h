// The subset of CUDA that moonflow's kernels are written in, and the
// helpers every op family shares.
//
// Each gpu/*.cu family file is compiled twice:
//  - by nvcc, for the GPUs (MFI_DEVICE_CUDA);
//  - as plain C++ with MF_CUDA_EMULATE defined, for the test device
//    (MFI_DEVICE_TEST), so that CI runs the same kernel source on the host,
//    under the conformance spec and the sanitizers, without a GPU.
// That works because kernels keep to a subset with a serial meaning:
//  - a kernel body is one MF_FOR(i, n) loop over independent work items
//    (a grid-stride loop on the GPU, a plain loop on the host);
//  - no shared memory, no __syncthreads, no warp shuffles, no atomics: a sum
//    is one work item's serial loop (or a fixed tree of such passes), so a
//    GPU run is bitwise reproducible from run to run;
//  - launches are MF_LAUNCH(kernel, n, stream)(arguments...);
//  - device helpers are MF_DEVICE functions.
// The definitions of a family live in namespace MF_CUDA_NS (mf_cuda or
// mf_cuda_emu), so both compilations link into one library.
#ifndef MOONFLOW_GPU_KERNEL_H
#define MOONFLOW_GPU_KERNEL_H

#include "../csrc/internal.h"

#include <math.h>
#include <stdint.h>

#ifdef MF_CUDA_EMULATE
#include <cmath>
#define MF_CUDA_NS mf_cuda_emu
#define MF_GLOBAL static
#define MF_DEVICE static inline
#define MF_HD inline
#define MF_FOR(i, n) for (int64_t i = 0, i##_n_ = (n); i < i##_n_; i++)
#define MF_LAUNCH(kern, n, stream) kern
#else
#include <cuda_runtime.h>
#define MF_CUDA_NS mf_cuda
#define MF_GLOBAL static __global__
#define MF_DEVICE static __device__ __forceinline__
#define MF_HD __host__ __device__ inline
#define MF_FOR(i, n)                                                                               \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, i##_n_ = (n); i < i##_n_;       \
       i += (int64_t)blockDim.x * gridDim.x)
#define MF_LAUNCH(kern, n, stream)                                                                 \
  kern<<<MF_CUDA_NS::blocks(n), MF_CUDA_NS::kThreads, 0, (cudaStream_t)(stream)>>>
#endif

namespace MF_CUDA_NS {

constexpr int kThreads = 256;

// Blocks for n work items of a grid-stride loop (at least one; a launch of
// nothing is skipped by its caller).
inline unsigned blocks(int64_t n)
{
  int64_t b = (n + kThreads - 1) / kThreads;
  return (unsigned)(b < 1 ? 1 : b > 8192 ? 8192 : b);
}

// After a family's launches: a launch error (bad configuration, a sticky
// fault from before) becomes the op's error. Nothing to check on the host.
inline bool launched(mfi_kctx *k)
{
#ifdef MF_CUDA_EMULATE
  (void)k;
  return true;
#else
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return true;
  mfi_op_error(k->status, MF_INTERNAL, k->op, "CUDA kernel launch failed on %s: %s", k->dev->name,
               cudaGetErrorString(e));
  return false;
#endif
}

// Calls f(T()) with T the C++ type of dtype dt: float, double, int32_t,
// int64_t, bool (one byte, as the core stores it), uint8_t. f(...) is
// called once.
template <class F> inline void with_type(mf_dtype dt, F f)
{
  switch (dt) {
  case MF_FLOAT32: f(float()); break;
  case MF_FLOAT64: f(double()); break;
  case MF_INT32: f(int32_t()); break;
  case MF_INT64: f(int64_t()); break;
  case MF_BOOL: f(bool()); break;
  case MF_UINT8: f(uint8_t()); break;
  default: break;
  }
}

// Data movement sees only element bytes: one unsigned type per size (bool
// and uint8 1, float32 and int32 4, float64 and int64 8).
template <class F> inline void with_bytes(mf_dtype dt, F f)
{
  switch (mf_dtype_size(dt)) {
  case 1: f(uint8_t()); break;
  case 4: f(uint32_t()); break;
  case 8: f(uint64_t()); break;
  default: break;
  }
}

// The same for the float dtypes only; false (f not called) for the others.
template <class F> inline bool with_float(mf_dtype dt, F f)
{
  if (dt == MF_FLOAT32) return f(float()), true;
  if (dt == MF_FLOAT64) return f(double()), true;
  return false;
}

template <class T> inline T *data(const mf_tensor *t) { return (T *)mfi_data(t); }

// A new output i of the given dtype and shape on the op's device.
inline bool out_like(mfi_kctx *k, int i, const mf_tensor *like)
{
  return mfi_out_new(k, i, like->dtype, like->ndim, like->dims);
}

// Broadcast indexing for up to MF_MAX_DIMS dimensions, passed by value to
// kernels: the output's dims and each input's strides (0 where broadcast).
struct Bcast {
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  int64_t st[3][MF_MAX_DIMS];
};

// The offset in input j of output element i.
MF_HD int64_t bcast_offset(const Bcast &b, int j, int64_t i)
{
  int64_t off = 0;
  for (int d = b.ndim - 1; d >= 0; d--) {
    int64_t n = b.dims[d];
    off += (i % n) * b.st[j][d];
    i /= n;
  }
  return off;
}

// Broadcast strides of the inputs against the output shape.
inline Bcast bcast_of(int ndim, const int64_t *dims, int nin, mf_tensor *const *in)
{
  Bcast b = {};
  b.ndim = ndim;
  for (int d = 0; d < ndim; d++) b.dims[d] = dims[d];
  for (int j = 0; j < nin; j++) mfi_bcast_strides(ndim, dims, in[j]->ndim, in[j]->dims, b.st[j]);
  return b;
}

// ---------------------------------------------------------------- services
// Implemented per compilation: device memory through the op's device, and
// GEMM through cuBLAS on the GPU, through the core's mfi_gemm on the host.

// C[m,n] (row-major, leading dim ldc) = beta C + op(A) op(B), batched over
// `batch` matrices `sa`, `sb`, `sc` elements apart (sa or sb 0: shared).
// float32 / float64 only. False with the op's error set on failure.
bool gemm(mfi_kctx *k, mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t kk,
          const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb, int64_t sb,
          double beta, void *c, int64_t ldc, int64_t sc, int64_t batch);

// n bytes between host memory and the op's device, ordered on its stream
// and complete on return.
bool to_host(mfi_kctx *k, void *dst, const void *src, size_t n);
bool from_host(mfi_kctx *k, void *dst, const void *src, size_t n);

} // namespace MF_CUDA_NS

#endif
