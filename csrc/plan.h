/* Execution plans: the pruned, ordered subgraph for one run signature. */
#ifndef MOONFLOW_PLAN_H
#define MOONFLOW_PLAN_H

#include "placement.h"

typedef struct {
  mf_op *op;
  int first_val; /* value slot of output 0; outputs are consecutive */
  int in_off;    /* this node's inputs in plan->in_val */
  int npred;     /* predecessors in the plan (data, control, variable order) */
  int succ_off, nsucc;
  int nvar;                              /* variables it touches */
  int var_id[MFI_MAX_REFS];              /* their op ids */
  uint64_t key;                          /* random ops: Philox key */
  mfi_device *dev;                       /* where it runs */
  mfi_kernel kernel;                     /* its kernel there */
  int copy_off, ncopy;                   /* copies of its outputs to other devices, run after it */
  struct mfi_plan *calls[MFI_MAX_CALLS]; /* control flow: plans of the functions it calls */
} mfi_node;

/* A value moved to another device: slot src on its device -> slot dst on dev. */
typedef struct {
  int src, dst;
  mfi_device *dev;
} mfi_copy;

typedef struct mfi_plan {
  struct mfi_plan *next; /* in the session's cache */
  uint64_t hash;
  int *sig, nsig;
  mfi_node *nodes;
  int nnodes, nvals;
  int *in_val;      /* per node input: a value slot, or -1 for a variable reference */
  int *succ;        /* successor node indices */
  int *uses0;       /* per value slot: consumers + fetches */
  int *feed_val;    /* per feed: its value slot */
  int *fetch_val;   /* per fetch: its value slot */
  mfi_copy *copies; /* feeds' copies first (nfeed_copies), then by node */
  int ncopies, nfeed_copies;
  mfi_device *devs[MFI_MAX_DEVICES]; /* the non-CPU devices it runs on, to synchronize */
  int ndevs;
  /* scratch for one run at a time */
  mf_tensor **vals;
  mfi_meta *shapes; /* per value slot: prepare's output shapes */
  mfi_kctx *ctx;    /* per node: its kernel context, built with the plan */
  int *uses;
  int *pending;
  mf_tensor **in_ptrs;
} mfi_plan;

/* Builds a plan; NULL + status (naming the op) when a needed placeholder is
 * unfed, an op cannot be placed, or an argument is invalid. Random-op keys
 * come from `nondet_key` when the op has no seeds. Values cross devices
 * through copies: feeds (host memory) to their consumers' devices, outputs
 * to consumers elsewhere; host-memory inputs and outputs of a row
 * (host_in, host_out) count as the CPU's. Feeds are in host memory,
 * except with feeds_anywhere (a function's arguments), when they may be on
 * any device; so may the outputs of control-flow ops: their consumers get
 * them through copies that are plain references when nothing moves. */
mfi_plan *mfi_plan_build(mf_graph *g, const mf_output *feeds, int nfeeds, const mf_output *fetches,
                         int nfetches, mf_op *const *targets, int ntargets, uint64_t nondet_key,
                         mfi_placer *placer, bool feeds_anywhere, mf_status *s);
void mfi_plan_delete(mfi_plan *p);

#endif
