/* Placement of operations on devices (placement.c). */
#ifndef MOONFLOW_PLACEMENT_H
#define MOONFLOW_PLACEMENT_H

#include "internal.h"

/* A session's placement: the device of each op placed so far. */
typedef struct {
  mfi_device **place; /* by op id; NULL: not placed yet */
  bool soft;          /* config.allow_soft_placement */
  bool log;           /* config.log_device_placement: print each op's device to stderr */
} mfi_placer;

/* The device for `op`, placing the variables it updates first, and kept
 * in pl->place. NULL + an error naming the op when a request cannot be met
 * (without soft placement) or an update cannot run where its variable
 * lives. Call with the graph's lock held (it reads the op table). */
mfi_device *mfi_place(mfi_placer *pl, const mf_op *op, mf_status *s);
/* "cpu, test": the backends with a kernel for an op type. */
const char *mfi_kernel_list(const mfi_opdef *def, char *buf, size_t size);

#endif
