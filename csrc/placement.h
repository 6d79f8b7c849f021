/* Placement of operations on devices (placement.c). */
#ifndef MOONFLOW_PLACEMENT_H
#define MOONFLOW_PLACEMENT_H

#include "internal.h"

/* The device for `op`: `colocate` (a variable's device, for the ops that
 * read or update it) when given, else its requested device, else the
 * preferred device with a kernel for it. NULL + an error naming the op
 * when the request cannot be met and `soft` is false. */
mfi_device *mfi_place(const mf_op *op, mfi_device *colocate, bool soft, mf_status *s);
/* "cpu, test": the backends with a kernel for an op type. */
const char *mfi_kernel_list(const mfi_opdef *def, char *buf, size_t size);

#endif
