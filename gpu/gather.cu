// Gather, its gradient, one-hot, row deduplication and sparse updates.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg gather_kernels[] = {{NULL, NULL}};

} // namespace MF_CUDA_NS
