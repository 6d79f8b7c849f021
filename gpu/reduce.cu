// Reductions (sum, mean, max, min, prod, arg-max/min) and the gradient helpers that reduce.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg reduce_kernels[] = {{NULL, NULL}};

} // namespace MF_CUDA_NS
