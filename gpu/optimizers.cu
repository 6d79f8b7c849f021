// Dense optimizer updates.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg optimizer_kernels[] = {{NULL, NULL}};

} // namespace MF_CUDA_NS
