/* A build without CUDA: no GPU devices, no CUDA kernels. */
#include "../include/moonflow_cuda.h"
#include "device.h"

int mf_gpu_count(void) { return 0; }
void mfi_cuda_init(void) {}
int mf_cuda_built(void) { return 0; }
int mf_cuda_device_count(void) { return 0; }
void mf_cuda_device_info_get(int i, mf_cuda_device_info *info, mf_status *s)
{
  (void)i, (void)info;
  if (s) mf_status_set(s, MF_NOT_FOUND, "this build of moonflow has no CUDA backend");
}
