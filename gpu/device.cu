// The CUDA devices: one moonflow device per visible GPU, registered with
// the core's device layer at start-up. Memory comes from cudaMalloc under
// the core's caching allocator (csrc/alloc.c), so a steady training loop
// does no cudaMalloc; each device has one non-blocking stream that kernels,
// copies and fills are ordered on. Kernels join this directory one .cu per
// op family, each with a table of {op type, kernel} that the dispatch
// registers through mfi_register_kernels(MFI_DEVICE_CUDA, table).
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>

#include "cuda.h"

#define MAX_GPUS 16

struct cuda_impl {
  int ordinal;
  cudaStream_t stream;
};

static mfi_device gpus[MAX_GPUS];
static cuda_impl impls[MAX_GPUS];

// Turns a CUDA error into the caller's status; true when there was none.
static bool check(cudaError_t e, const char *what, mf_status *s)
{
  if (e == cudaSuccess) return true;
  cudaGetLastError(); // clear the sticky-free error state
  if (s) {
    char msg[256];
    snprintf(msg, sizeof msg, "CUDA %s failed: %s", what, cudaGetErrorString(e));
    mf_status_set(s, e == cudaErrorMemoryAllocation ? MF_RESOURCE_EXHAUSTED : MF_INTERNAL, msg);
  }
  return false;
}

// The stream to use, with its GPU made current on this thread (inter-op
// workers run kernels for any device).
static cudaStream_t stream_of(mfi_device *d, void *stream)
{
  cudaSetDevice(((cuda_impl *)d->impl)->ordinal);
  return stream ? (cudaStream_t)stream : ((cuda_impl *)d->impl)->stream;
}

static void *gpu_alloc(mfi_device *d, size_t n)
{
  void *p = NULL;
  if (cudaSetDevice(((cuda_impl *)d->impl)->ordinal) != cudaSuccess ||
      cudaMalloc(&p, n) != cudaSuccess) {
    cudaGetLastError();
    return NULL;
  }
  return p;
}

static void gpu_free(mfi_device *d, void *p, size_t n)
{
  (void)n;
  cudaSetDevice(((cuda_impl *)d->impl)->ordinal);
  // The block may still be in use by work queued on the stream.
  cudaStreamSynchronize(((cuda_impl *)d->impl)->stream);
  cudaFree(p);
}

static bool gpu_copy(mfi_device *d, void *dst, const void *src, size_t n, mfi_copy_dir dir,
                     void *stream, mf_status *s)
{
  static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                         cudaMemcpyDeviceToDevice};
  cudaStream_t st = stream_of(d, stream);
  if (!check(cudaMemcpyAsync(dst, src, n, kinds[dir], st), "cudaMemcpyAsync", s)) return false;
  // Host memory is the caller's once this returns: wait for copies to and from it.
  return dir == MFI_D2D || check(cudaStreamSynchronize(st), "cudaStreamSynchronize", s);
}

static bool gpu_fill(mfi_device *d, void *dst, int byte, size_t n, void *stream, mf_status *s)
{
  return check(cudaMemsetAsync(dst, byte, n, stream_of(d, stream)), "cudaMemsetAsync", s);
}

static bool gpu_sync(mfi_device *d, void *stream, mf_status *s)
{
  return check(cudaStreamSynchronize(stream_of(d, stream)), "cudaStreamSynchronize", s);
}

// One cuBLAS handle per GPU and host thread (a handle must not be shared by
// threads that bind it to different streams); made on first use and kept
// for the thread's life.
cublasHandle_t mf_cuda_blas(mfi_kctx *k)
{
  static thread_local cublasHandle_t handles[MAX_GPUS];
  cuda_impl *impl = (cuda_impl *)k->dev->impl;
  cublasHandle_t &h = handles[impl->ordinal];
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  cudaSetDevice(impl->ordinal);
  if (!h) st = cublasCreate(&h);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasSetStream(h, (cudaStream_t)k->stream);
  // TF32 is off unless the session allows it (config.allow_tf32).
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasSetMathMode(h, k->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  if (st == CUBLAS_STATUS_SUCCESS) return h;
  if (h && st != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(h);
    h = NULL;
  }
  mfi_op_error(k->status, st == CUBLAS_STATUS_ALLOC_FAILED ? MF_RESOURCE_EXHAUSTED : MF_INTERNAL,
               k->op, "cuBLAS could not start on %s: %s", k->dev->name, cublasGetStatusString(st));
  return NULL;
}

extern "C" MF_API int mf_gpu_count(void)
{
  int n = 0;
  // No driver or no device is not an error for a CPU user: report zero.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n < MAX_GPUS ? n : MAX_GPUS;
}

extern "C" void mfi_cuda_init(void)
{
  int n = mf_gpu_count();
  for (int i = 0; i < n; i++) {
    impls[i].ordinal = i;
    if (cudaSetDevice(i) != cudaSuccess ||
        cudaStreamCreateWithFlags(&impls[i].stream, cudaStreamNonBlocking) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    mfi_device *d = &gpus[i];
    d->type = MFI_DEVICE_CUDA;
    d->index = i;
    d->host_data = false;
    d->poison = false;
    d->ops.alloc = gpu_alloc;
    d->ops.free = gpu_free;
    d->ops.copy = gpu_copy;
    d->ops.fill = gpu_fill;
    d->ops.synchronize = gpu_sync;
    d->stream = impls[i].stream;
    d->impl = &impls[i];
    mfi_device_register(d);
  }
  // The kernels are registered even without a GPU, so that a CUDA build
  // reports (tf.sysconfig.op_kernels) and CI checks what it covers.
  mfi_cuda_register_kernels(MFI_DEVICE_CUDA);
  if (n > 0) mfi_prefer_device_type(MFI_DEVICE_CUDA);
}
