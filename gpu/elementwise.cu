// Element-wise math with NumPy broadcasting, casts and select.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg elementwise_kernels[] = {{NULL, NULL}};

} // namespace MF_CUDA_NS
