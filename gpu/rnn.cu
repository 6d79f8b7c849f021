// Fused LSTM / GRU / RNN sequence ops, forward and backward.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg rnn_kernels[] = {{NULL, NULL}};

} // namespace MF_CUDA_NS
