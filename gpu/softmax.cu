// Softmax, log-softmax, the cross-entropies, relu.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg softmax_kernels[] = {{NULL, NULL}};

} // namespace MF_CUDA_NS
