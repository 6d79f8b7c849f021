/* moonflow's CUDA backend, for C hosts that choose devices.
 *
 * Ops are put on a GPU by name, as in TensorFlow: mf_op_set_device(desc,
 * "/device:GPU:1") before the op is created (or a session places them:
 * GPUs are the default device for every op with a CUDA kernel when any GPU
 * is present). This header says what the GPUs are. Every function works in
 * a build without CUDA too: there are then no devices. */
#ifndef MOONFLOW_CUDA_H
#define MOONFLOW_CUDA_H

#include "moonflow.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has the CUDA backend (its kernels are registered even
 * where no GPU is visible), else 0. */
MF_API int mf_cuda_built(void);

/* Usable GPUs: moonflow's "/device:GPU:0" .. "/device:GPU:<n-1>". */
MF_API int mf_cuda_device_count(void);

typedef struct {
  char name[256];       /* "NVIDIA H200" */
  int major, minor;     /* compute capability */
  int multiprocessors;  /* SMs */
  size_t total_memory;  /* bytes */
  size_t free_memory;   /* bytes free now (others' use included) */
  char device_name[96]; /* moonflow's name for it: "/device:GPU:0" */
} mf_cuda_device_info;

/* What GPU `i` is; MF_NOT_FOUND when there is no such GPU (always, without
 * CUDA), MF_INVALID_ARGUMENT for a NULL info. */
MF_API void mf_cuda_device_info_get(int i, mf_cuda_device_info *info, mf_status *s);

#ifdef __cplusplus
}
#endif
#endif
