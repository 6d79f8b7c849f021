/* A build without CUDA: no GPU devices, no CUDA kernels. */
#include "device.h"

int mf_gpu_count(void) { return 0; }
void mfi_cuda_init(void) {}
