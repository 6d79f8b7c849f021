/* A build without CUDA: no GPU devices. */
#include "moonflow.h"

int mf_gpu_count(void) { return 0; }
