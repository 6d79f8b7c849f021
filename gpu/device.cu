// The CUDA devices: one moonflow device per visible GPU, registered with
// the core's device layer at start-up.
//  - Memory comes from cudaMalloc under the core's caching allocator
//    (csrc/alloc.c), so a steady training loop does no cudaMalloc.
//  - Each session has its own non-blocking stream per GPU that its kernels,
//    copies and fills are ordered on (the device's own stream serves work
//    outside runs); waits are for one stream or one event, never for the
//    whole device.
//  - Copies between the host and a GPU go through a pinned staging buffer per
//    device, in chunks, so they run at full speed from any host memory.
// The kernels are in the other gpu/*.cu files; dispatch.cu registers them.
#include <cuda_runtime.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/moonflow_cuda.h"
#include "cuda.h"

#define MAX_GPUS 16
#define STAGE_BYTES ((size_t)4 << 20) /* per half of the double buffer */

struct cuda_impl {
  int ordinal;
  cudaStream_t stream;
  // Pinned staging: two halves, each with the event of its last copy.
  pthread_mutex_t stage_lock;
  char *stage;
  cudaEvent_t done[2];
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

// The stream to use — the one asked for, else the session stream of the
// run this thread serves, else the device's own — with its GPU made
// current on this thread (inter-op workers run kernels for any device).
static cudaStream_t stream_of(mfi_device *d, void *stream)
{
  cudaSetDevice(((cuda_impl *)d->impl)->ordinal);
  if (!stream) stream = mfi_run_stream(d);
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
  // Work queued on the freeing run's stream may still use the block;
  // cudaFree then waits for the rest of the device itself.
  cudaStreamSynchronize(stream_of(d, NULL));
  cudaFree(p);
}

static void gpu_bind(mfi_device *d) { cudaSetDevice(((cuda_impl *)d->impl)->ordinal); }

// Host memory through the pinned halves in turn: the host fills (or
// drains) one half while the other's copy runs. Each wait is for one
// half's event. The caller holds the staging lock.
static bool staged_copy(cuda_impl *im, cudaStream_t st, char *dst, const char *src, size_t n,
                        bool to_device, mf_status *s)
{
  for (size_t off = 0, i = 0; off < n; off += STAGE_BYTES, i ^= 1) {
    size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
    char *half = im->stage + i * STAGE_BYTES;
    if (!check(cudaEventSynchronize(im->done[i]), "cudaEventSynchronize", s)) return false;
    if (to_device) {
      memcpy(half, src + off, len);
      if (!check(cudaMemcpyAsync(dst + off, half, len, cudaMemcpyHostToDevice, st),
                 "cudaMemcpyAsync", s))
        return false;
    } else if (!check(cudaMemcpyAsync(half, src + off, len, cudaMemcpyDeviceToHost, st),
                      "cudaMemcpyAsync", s)) {
      return false;
    }
    if (!check(cudaEventRecord(im->done[i], st), "cudaEventRecord", s)) return false;
    if (!to_device) {
      if (!check(cudaEventSynchronize(im->done[i]), "cudaEventSynchronize", s)) return false;
      memcpy(dst + off, half, len);
    }
  }
  return true;
}

// Waits for both halves' last copies.
static bool stage_idle(cuda_impl *im, mf_status *s)
{
  return check(cudaEventSynchronize(im->done[0]), "cudaEventSynchronize", s) &&
         check(cudaEventSynchronize(im->done[1]), "cudaEventSynchronize", s);
}

static bool gpu_copy(mfi_device *d, void *dst, const void *src, size_t n, mfi_copy_dir dir,
                     void *stream, mf_status *s)
{
  cuda_impl *im = (cuda_impl *)d->impl;
  cudaStream_t st = stream_of(d, stream);
  if (dir == MFI_D2D)
    return check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync", s);
  if (!im->stage) { // no pinned memory could be had: a plain copy, then wait for it
    cudaMemcpyKind kind = dir == MFI_H2D ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    return check(cudaMemcpyAsync(dst, src, n, kind, st), "cudaMemcpyAsync", s) &&
           check(cudaStreamSynchronize(st), "cudaStreamSynchronize", s);
  }
  pthread_mutex_lock(&im->stage_lock);
  bool ok = staged_copy(im, st, (char *)dst, (const char *)src, n, dir == MFI_H2D, s);
  // The source of a copy to the device is the caller's again once it is in
  // the staging buffer. The copy itself is ordered before the run's later
  // work on the same stream; a copy from outside a run (restoring a
  // checkpoint) is waited for, since the next run uses another stream.
  if (ok && dir == MFI_H2D && st != (cudaStream_t)mfi_run_stream(d)) ok = stage_idle(im, s);
  pthread_mutex_unlock(&im->stage_lock);
  return ok;
}

static void *gpu_stream_new(mfi_device *d, mf_status *s)
{
  cudaStream_t st = NULL;
  cudaSetDevice(((cuda_impl *)d->impl)->ordinal);
  if (!check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate", s))
    return NULL;
  return st;
}

static void gpu_stream_free(mfi_device *d, void *stream)
{
  cudaSetDevice(((cuda_impl *)d->impl)->ordinal);
  cudaStreamDestroy((cudaStream_t)stream);
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
// threads that bind it to different streams), made on first use and
// destroyed when the thread ends (inter-op workers end with their session).
struct blas_handles {
  cublasHandle_t h[MAX_GPUS];
};
static pthread_key_t blas_key;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_handles_free(void *p)
{
  blas_handles *b = (blas_handles *)p;
  for (int i = 0; i < MAX_GPUS; i++)
    if (b->h[i]) cudaSetDevice(i), cublasDestroy(b->h[i]);
  free(b);
}

static void blas_key_make(void) { pthread_key_create(&blas_key, blas_handles_free); }

cublasHandle_t mf_cuda_blas(mfi_kctx *k)
{
  pthread_once(&blas_once, blas_key_make);
  blas_handles *b = (blas_handles *)pthread_getspecific(blas_key);
  if (!b && (!(b = (blas_handles *)calloc(1, sizeof *b)) || pthread_setspecific(blas_key, b))) {
    free(b);
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory for a cuBLAS handle");
    return NULL;
  }
  cuda_impl *impl = (cuda_impl *)k->dev->impl;
  cublasHandle_t &h = b->h[impl->ordinal];
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

extern "C" MF_API int mf_cuda_built(void) { return 1; }

extern "C" MF_API int mf_cuda_device_count(void) { return mf_gpu_count(); }

extern "C" MF_API void mf_cuda_device_info_get(int i, mf_cuda_device_info *info, mf_status *s)
{
  cudaDeviceProp p;
  if (s) mf_status_set(s, MF_OK, "");
  if (!info) {
    if (s) mf_status_set(s, MF_INVALID_ARGUMENT, "mf_cuda_device_info_get: info is NULL");
    return;
  }
  if (i < 0 || i >= mf_gpu_count()) {
    if (s) mf_status_set(s, MF_NOT_FOUND, "no GPU with that index");
    return;
  }
  if (!check(cudaGetDeviceProperties(&p, i), "cudaGetDeviceProperties", s)) return;
  memset(info, 0, sizeof *info);
  snprintf(info->name, sizeof info->name, "%s", p.name);
  snprintf(info->device_name, sizeof info->device_name, "/device:GPU:%d", i);
  info->major = p.major, info->minor = p.minor;
  info->multiprocessors = p.multiProcessorCount;
  info->total_memory = p.totalGlobalMem;
  size_t free_b = 0, total_b = 0;
  int current = 0;
  cudaGetDevice(&current); // the caller's current GPU stays current
  if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    info->free_memory = free_b;
  cudaSetDevice(current);
  cudaGetLastError();
}

// A device's stream, events and pinned staging; false (the GPU unused) when
// the stream or events cannot be made. Without pinned memory copies still work.
static bool impl_init(cuda_impl *im, int i)
{
  im->ordinal = i;
  pthread_mutex_init(&im->stage_lock, NULL);
  if (cudaSetDevice(i) != cudaSuccess ||
      cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaEventCreateWithFlags(&im->done[0], cudaEventDisableTiming) != cudaSuccess ||
      cudaEventCreateWithFlags(&im->done[1], cudaEventDisableTiming) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (cudaHostAlloc((void **)&im->stage, 2 * STAGE_BYTES, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();
    im->stage = NULL;
  }
  return true;
}

extern "C" void mfi_cuda_init(void)
{
  int n = mf_gpu_count();
  for (int i = 0; i < n; i++) {
    if (!impl_init(&impls[i], i)) continue;
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
    d->ops.stream_new = gpu_stream_new;
    d->ops.stream_free = gpu_stream_free;
    d->ops.bind = gpu_bind;
    d->stream = impls[i].stream;
    d->impl = &impls[i];
    mfi_device_register(d);
  }
  // The kernels are registered even without a GPU, so that a CUDA build
  // reports (tf.sysconfig.op_kernels) and CI checks what it covers.
  mfi_cuda_register_kernels(MFI_DEVICE_CUDA);
  if (n > 0) mfi_prefer_device_type(MFI_DEVICE_CUDA);
}
