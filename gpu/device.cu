// CUDA device query. The GPU backend's kernels join this directory as they
// are written; for now the build proves the CUDA wiring and reports devices.
#include <cuda_runtime.h>

#include "moonflow.h"

extern "C" MF_API int mf_gpu_count(void)
{
  int n = 0;
  // No driver or no device is not an error for a CPU user: report zero.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}
