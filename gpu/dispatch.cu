// Registration of the CUDA kernels: each op family's file (gpu/*.cu) holds a
// table of {op type, kernel}; this file hands them all to the device layer
// for one kind of device. The nvcc compilation registers them for the GPUs
// (mfi_cuda_init in device.cu); the host compilation (MF_CUDA_EMULATE) for
// the test device, which then runs the very kernels the GPUs run.
#include "kernel.h"

namespace MF_CUDA_NS {

extern const mfi_kernel_reg elementwise_kernels[], reduce_kernels[], matmul_kernels[],
    softmax_kernels[], gather_kernels[], random_kernels[], optimizer_kernels[], rnn_kernels[],
    array_kernels[], debug_kernels[], conv_kernels[], index_kernels[];

// The MPI collectives' NCCL kernels (nccl.cu): GPUs only, in builds with
// MPI and NCCL; the test device runs the CPU kernels of csrc/mpi.c.
#if defined(MF_HAVE_NCCL) && !defined(MF_CUDA_EMULATE)
extern const mfi_kernel_reg nccl_kernels[];
#endif

static const mfi_kernel_reg *const families[] = {
    elementwise_kernels, reduce_kernels, matmul_kernels,    softmax_kernels,
    gather_kernels,      random_kernels, optimizer_kernels, rnn_kernels,
    array_kernels,       debug_kernels,  conv_kernels,      index_kernels,
#if defined(MF_HAVE_NCCL) && !defined(MF_CUDA_EMULATE)
    nccl_kernels,
#endif
};

bool to_host(mfi_kctx *k, void *dst, const void *src, size_t n)
{
  return n == 0 || k->dev->ops.copy(k->dev, dst, src, n, MFI_D2H, k->stream, k->status);
}

bool from_host(mfi_kctx *k, void *dst, const void *src, size_t n)
{
  return n == 0 || k->dev->ops.copy(k->dev, dst, src, n, MFI_H2D, k->stream, k->status);
}

} // namespace MF_CUDA_NS

#ifdef MF_CUDA_EMULATE
#define REGISTER mfi_cuda_emu_register_kernels
#else
#define REGISTER mfi_cuda_register_kernels
#endif

// False when a table names an op type the registry lacks (a build error
// caught by test_devices, never at a user's).
extern "C" bool REGISTER(mfi_device_type t)
{
  bool ok = true;
  for (const mfi_kernel_reg *f : MF_CUDA_NS::families) ok = mfi_register_kernels(t, f) && ok;
  return ok;
}
