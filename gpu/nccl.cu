// The MPI collectives on GPU tensors: MPIAllreduce, MPIAllgather and
// MPIBroadcast with NCCL on the op's stream (only in CUDA builds that found
// MPI and NCCL; never compiled for the test device). csrc/mpi.c runs them on
// host tensors over MPI; here the tensors stay on the GPU.
//
// What is shared with the MPI kernels (csrc/mpi_ops.h): the lock that
// serializes collectives, the header exchange over MPI before each one (so
// ranks running different graphs, or one on a GPU and another on the host,
// fail at once naming both collectives), the fusion groups and the
// timeout. The communicator is made once per process at the first GPU
// collective: rank 0's ncclUniqueId broadcast over MPI, ncclCommInitRank on
// that collective's GPU (the rank's: /gpu:<local_rank % GPUs> is the
// layout to use), non-blocking so that every wait polls with the deadline.
// NCCL needs one GPU per rank: when ranks share one (every rank on /gpu:0,
// the default placement), or any rank sets MOONFLOW_NCCL=0, all ranks run
// their GPU collectives through host memory and MPI instead, as a build
// without NCCL does. Each collective is waited for before the kernel returns,
// polling the stream's event and ncclCommGetAsyncError; a timeout or an
// asynchronous error aborts the communicator (ncclCommAbort) and fails the
// op and every later GPU collective of the process.
//
// Fusion: a group of small tensors of one dtype is packed into one scratch
// buffer on the GPU (device-to-device copies on the stream), reduced in
// place by one ncclAllReduce and unpacked. Averages divide the sums on the
// GPU as the CPU kernel does (sum, then / size), so both give the same bits
// for the same sums.
#include <nccl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/mpi_ops.h"
#include "kernel.h"

namespace MF_CUDA_NS {

// The process's communicator; used only under the collectives' lock.
static struct {
  ncclComm_t comm;
  int gpu;        // the GPU it was made for
  cudaEvent_t ev; // marks the end of a collective's work on the op's stream
  bool aborted;   // after a timeout or an error: no more GPU collectives
  int mode;       // MODE_*, decided at the first GPU collective
  char why[320];  // what aborted it, or why the GPU collectives use MPI
} N = {NULL, -1, NULL, false, 0, ""};

enum { MODE_UNDECIDED, MODE_NCCL, MODE_HOST };

static double now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Sleeps between polls once a wait is not short: a waiting rank leaves its
// core to the ranks still computing (as the MPI side does).
static void pause_poll(unsigned spins, double waited)
{
  if (spins < 2000) return;
  struct timespec ts = {0, waited < 0.01 ? 20000 : 200000};
  nanosleep(&ts, NULL);
}

// "rank r of n: what: detail" as the op's error (the ranks are out of step).
static void fail(mfi_kctx *k, const char *what, const char *detail)
{
  char e[768];
  snprintf(e, sizeof e, "rank %d of %d: %s: %s", mf_mpi_rank(), mf_mpi_size(), what, detail);
  mfi_mpi_fail(k, MF_INTERNAL, e);
}

// Ends the communicator for good after a failure: NCCL's kernels still
// waiting for the other ranks return, and the GPU is usable again.
static void abort_comm(const char *why)
{
  if (N.comm) ncclCommAbort(N.comm);
  N.comm = NULL, N.aborted = true;
  snprintf(N.why, sizeof N.why, "%s", why);
}

static bool cuda_ok(mfi_kctx *k, cudaError_t e, const char *what)
{
  if (e == cudaSuccess) return true;
  cudaGetLastError();
  char w[96];
  snprintf(w, sizeof w, "%s failed", what);
  fail(k, w, cudaGetErrorString(e));
  return false;
}

// Past the deadline: aborts the communicator and fails the op.
static bool timed_out(mfi_kctx *k, const char *what)
{
  abort_comm("a timeout");
  char d[200];
  snprintf(d, sizeof d,
           "timed out after %g s waiting for the other ranks (one failed or exited); "
           "MOONFLOW_MPI_TIMEOUT sets the limit",
           mf_mpi_timeout());
  fail(k, what, d);
  return false;
}

// A non-blocking communicator's call may return ncclInProgress: polls its
// state until it settles or the deadline passes (then aborts).
static bool settle(mfi_kctx *k, ncclResult_t r, const char *what)
{
  double t0 = now();
  for (unsigned spins = 0; r == ncclInProgress; spins++) {
    if (ncclCommGetAsyncError(N.comm, &r) != ncclSuccess) break;
    double dt = now() - t0;
    if (r == ncclInProgress && dt > mf_mpi_timeout()) return timed_out(k, what);
    pause_poll(spins, dt);
  }
  if (r == ncclSuccess) return true;
  char d[384];
  snprintf(d, sizeof d, "%s%s%s", ncclGetErrorString(r), N.comm ? ": " : "",
           N.comm ? ncclGetLastError(N.comm) : "");
  abort_comm(what);
  char w[96];
  snprintf(w, sizeof w, "%s failed", what);
  fail(k, w, d);
  return false;
}

// Waits for the work queued on the op's stream so far (the collectives),
// polling NCCL's asynchronous error, with the deadline.
static bool finish(mfi_kctx *k, const char *what)
{
  if (!cuda_ok(k, cudaEventRecord(N.ev, (cudaStream_t)k->stream), "cudaEventRecord")) return false;
  double t0 = now();
  for (unsigned spins = 0;; spins++) {
    cudaError_t e = cudaEventQuery(N.ev);
    if (e == cudaSuccess) return true;
    if (e != cudaErrorNotReady) return cuda_ok(k, e, what);
    ncclResult_t r = ncclSuccess;
    ncclCommGetAsyncError(N.comm, &r);
    if (r != ncclSuccess && r != ncclInProgress) return settle(k, r, what);
    double dt = now() - t0;
    if (dt > mf_mpi_timeout()) return timed_out(k, what);
    pause_poll(spins, dt);
  }
}

static void comm_end(void)
{
  if (N.comm) {
    cudaSetDevice(N.gpu);
    ncclCommFinalize(N.comm);
    ncclResult_t r = ncclInProgress;
    for (double t0 = now(); r == ncclInProgress && now() - t0 < mf_mpi_timeout();)
      if (ncclCommGetAsyncError(N.comm, &r) != ncclSuccess) break;
    if (r == ncclSuccess)
      ncclCommDestroy(N.comm);
    else
      ncclCommAbort(N.comm);
  }
  if (N.ev) cudaEventDestroy(N.ev);
  N.comm = NULL, N.ev = NULL, N.gpu = -1;
}

// Whether this process's GPU collectives use NCCL: every rank's GPU (host
// name and PCI bus id) and wish (MOONFLOW_NCCL=0: no), gathered once over
// MPI at the first GPU collective; all ranks come to the same answer. NCCL
// needs one GPU per rank: ranks sharing one go through host memory and
// MPI instead, and so do all when any rank asks.
static bool decide(mfi_kctx *k)
{
  struct id {
    char host[64];
    char bus[32];
    int32_t want;
  } mine;
  memset(&mine, 0, sizeof mine);
  gethostname(mine.host, sizeof mine.host - 1);
  const char *env = getenv("MOONFLOW_NCCL");
  mine.want = !(env && strcmp(env, "0") == 0);
  // Every rank must take part in the exchange: a GPU without a bus id
  // (never seen) is told apart by its index.
  if (cudaDeviceGetPCIBusId(mine.bus, sizeof mine.bus - 1, k->dev->index) != cudaSuccess) {
    cudaGetLastError();
    snprintf(mine.bus, sizeof mine.bus, "GPU %d", k->dev->index);
  }
  int n = mf_mpi_size();
  struct id *all = (struct id *)calloc((size_t)n, sizeof *all);
  if (!all) {
    mfi_mpi_fail(k, MF_RESOURCE_EXHAUSTED, "out of memory");
    return false;
  }
  if (!mfi_mpi_allgather_bytes(k, &mine, all, (int)sizeof mine, "the GPUs' exchange")) {
    free(all);
    return false;
  }
  N.mode = MODE_NCCL;
  for (int a = 0; a < n && N.mode == MODE_NCCL; a++) {
    if (!all[a].want) {
      N.mode = MODE_HOST;
      snprintf(N.why, sizeof N.why, "rank %d has MOONFLOW_NCCL=0", a);
    }
    for (int b = a + 1; b < n && N.mode == MODE_NCCL; b++)
      if (strcmp(all[a].host, all[b].host) == 0 && strcmp(all[a].bus, all[b].bus) == 0) {
        N.mode = MODE_HOST;
        snprintf(N.why, sizeof N.why,
                 "ranks %d and %d share the GPU %s on %s (NCCL needs one GPU per rank: place "
                 "each rank's model on /gpu:<local_rank %% GPUs> or give each rank its own with "
                 "CUDA_VISIBLE_DEVICES)",
                 a, b, all[a].bus, all[a].host);
      }
  }
  free(all);
  if (N.mode == MODE_HOST && mf_mpi_rank() == 0) {
    fprintf(stderr, "moonflow.mpi: GPU tensors go through host memory and MPI, not NCCL: %s\n",
            N.why);
    fflush(stderr);
  }
  return true;
}

// The communicator, made at the first GPU collective of the process (every
// rank is there: the headers agreed) on that collective's GPU; the later
// ones must run there too.
static bool comm_ready(mfi_kctx *k)
{
  if (N.aborted) {
    char e[512];
    snprintf(e, sizeof e,
             "rank %d of %d: the NCCL communicator was aborted after %s: no GPU collective can "
             "run in this process any more",
             mf_mpi_rank(), mf_mpi_size(), N.why);
    mfi_mpi_fail(k, MF_FAILED_PRECONDITION, e);
    return false;
  }
  int gpu = N.comm ? N.gpu : k->dev->index;
  if (k->dev->index != gpu) {
    char e[512];
    snprintf(e, sizeof e,
             "rank %d of %d runs its GPU collectives on /device:GPU:%d (where the first one "
             "ran: NCCL's communicator is there), but this one runs on %s: keep each rank's "
             "model on one GPU",
             mf_mpi_rank(), mf_mpi_size(), gpu, k->dev->name);
    mfi_mpi_fail(k, MF_INVALID_ARGUMENT, e);
    return false;
  }
  if (N.comm) return true;
  // Rank 0's id, or its failure, goes to every rank: all fail together.
  struct {
    int32_t ok;
    ncclUniqueId id;
  } msg;
  memset(&msg, 0, sizeof msg);
  if (mf_mpi_rank() == 0) msg.ok = ncclGetUniqueId(&msg.id) == ncclSuccess;
  if (!mfi_mpi_bcast_bytes(k, &msg, (int)sizeof msg, 0, "the NCCL id's broadcast")) return false;
  if (!msg.ok) {
    abort_comm("ncclGetUniqueId's failure on rank 0");
    fail(k, "the NCCL communicator", "ncclGetUniqueId failed on rank 0");
    return false;
  }
  if (!cuda_ok(k, cudaSetDevice(gpu), "cudaSetDevice") ||
      !cuda_ok(k, cudaEventCreateWithFlags(&N.ev, cudaEventDisableTiming), "cudaEventCreate"))
    return false;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0; // every wait polls, with the deadline
  N.gpu = gpu;
  ncclResult_t r = ncclCommInitRankConfig(&N.comm, mf_mpi_size(), msg.id, mf_mpi_rank(), &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    // No communicator to poll (or abort): the error as it came.
    char d[256];
    snprintf(d, sizeof d, "%s", ncclGetErrorString(r));
    N.comm = NULL;
    abort_comm("ncclCommInitRank's failure");
    fail(k, "ncclCommInitRank failed", d);
    return false;
  }
  if (!settle(k, r, "ncclCommInitRank")) return false;
  mfi_mpi_on_finalize(comm_end);
  return true;
}

static ncclDataType_t nccl_type(mf_dtype dt)
{
  switch (dt) {
  case MF_FLOAT32: return ncclFloat32;
  case MF_FLOAT64: return ncclFloat64;
  case MF_INT32: return ncclInt32;
  default: return ncclInt64; // the inference allows no other
  }
}

static size_t nbytes(const mf_tensor *t) { return (size_t)t->numel * mf_dtype_size(t->dtype); }

static bool new_outputs(mfi_kctx *k)
{
  for (int i = 0; i < k->op->nin; i++)
    if (!out_like(k, i, k->in[i])) return false;
  return true;
}

// The groups of the op's inputs (as the MPI kernels form them) into
// groups[], each ending with -1; the largest fused group's bytes in *fused.
static void groups_of(mfi_kctx *k, int64_t threshold, int *groups, size_t *fused)
{
  bool done[MFI_MPI_MAX_TENSORS] = {false};
  int g[MFI_MPI_MAX_TENSORS], at = 0;
  *fused = 0;
  for (int n; (n = mfi_mpi_next_group(k, done, threshold, g)) > 0;) {
    size_t total = 0;
    for (int q = 0; q < n; q++) groups[at++] = g[q], total += nbytes(k->in[g[q]]);
    groups[at++] = -1;
    if (n > 1 && total > *fused) *fused = total;
  }
  groups[at] = -2;
}

// Device-to-device copies of a group into (or out of) the fusion buffer.
static bool pack(mfi_kctx *k, const int *g, char *fusion, bool in)
{
  for (; *g >= 0; g++) {
    size_t n = nbytes(k->in[*g]);
    void *t = in ? mfi_data(k->in[*g]) : mfi_data(k->out[*g]);
    if (n && !cuda_ok(k,
                      cudaMemcpyAsync(in ? fusion : t, in ? t : fusion, n, cudaMemcpyDeviceToDevice,
                                      (cudaStream_t)k->stream),
                      "cudaMemcpyAsync"))
      return false;
    fusion += n;
  }
  return true;
}

static int group_size(const int *g)
{
  int n = 0;
  while (g[n] >= 0) n++;
  return n;
}

// One work item per element: the sum divided by the number of ranks.
template <class F> MF_GLOBAL void divide_kernel(F *p, F by, int64_t n)
{
  MF_FOR(i, n) { p[i] /= by; }
}

enum { FAILED, VIA_NCCL, VIA_HOST };

// What every GPU collective starts with: the headers, the choice between
// NCCL and the host, the communicator. FAILED with the op's error.
static int begin(mfi_kctx *k, int from, int64_t attr, int64_t dim0, const char *what,
                 mfi_mpi_header **headers)
{
  mfi_mpi_header *h =
      mfi_mpi_exchange(k, mfi_mpi_fingerprint(k, from, attr | MFI_MPI_NCCL_PATH), dim0, what);
  if (!h) return FAILED;
  if (headers)
    *headers = h;
  else
    free(h);
  cudaSetDevice(k->dev->index);
  if (N.mode == MODE_UNDECIDED && !decide(k)) return FAILED;
  if (N.mode == MODE_HOST) return VIA_HOST;
  return comm_ready(k) ? VIA_NCCL : FAILED;
}

// The collective through host memory and MPI (ranks that share a GPU): the
// inputs copied to the host, the op's CPU kernel (which exchanges headers
// again, as the host ranks do), the outputs copied back. Without the lock,
// which the CPU kernel takes.
static void via_host(mfi_kctx *k)
{
  mfi_device *cpu = mfi_device_cpu();
  int nin = k->op->nin, nout = k->op->nout;
  mf_tensor *in[MFI_MPI_MAX_TENSORS] = {NULL}, *out[MFI_MPI_MAX_TENSORS] = {NULL};
  mfi_kctx h = *k;
  h.in = in, h.out = out, h.dev = cpu, h.stream = NULL, h.nscratch = 0;
  bool ok = true;
  for (int i = 0; i < nin && ok; i++)
    ok = (in[i] = mfi_tensor_to(k->in[i], cpu, k->status)) != NULL;
  if (ok) k->op->def->kernel[MFI_DEVICE_CPU](&h);
  for (int i = 0; i < nout && ok && mfi_ok(k->status); i++)
    ok = (k->out[i] = mfi_tensor_to(out[i], k->dev, k->status)) != NULL;
  for (int i = 0; i < nin; i++) mf_tensor_delete(in[i]);
  for (int i = 0; i < nout; i++) mf_tensor_delete(out[i]);
  if (!mfi_ok(k->status))
    for (int i = 0; i < nout; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
}

// A fused or single collective for each group: fn(send, recv, group's
// bytes, dtype) queues one NCCL call.
template <class F> static bool each_group(mfi_kctx *k, int64_t threshold, F fn)
{
  int groups[2 * MFI_MPI_MAX_TENSORS + 1];
  size_t fused;
  groups_of(k, threshold, groups, &fused);
  char *fusion = fused ? (char *)mfi_scratch(k, fused) : NULL;
  if (fused && !fusion) return false;
  for (const int *g = groups; *g != -2; g += group_size(g) + 1) {
    mf_dtype dt = k->in[g[0]]->dtype;
    if (group_size(g) == 1) {
      size_t n = nbytes(k->in[g[0]]);
      if (n && !fn(mfi_data(k->in[g[0]]), mfi_data(k->out[g[0]]), n, dt)) return false;
      continue;
    }
    size_t total = 0;
    for (const int *q = g; *q >= 0; q++) total += nbytes(k->in[*q]);
    if (!pack(k, g, fusion, true) || (total && !fn(fusion, fusion, total, dt)) ||
        !pack(k, g, fusion, false))
      return false;
  }
  return true;
}

static void k_allreduce(mfi_kctx *k)
{
  if (!mfi_mpi_enter(k)) return;
  bool average = mfi_attr_bool(k->op, "average", false);
  int64_t threshold = mfi_attr_int(k->op, "fusion_threshold", 64 << 20);
  switch (begin(k, 0, average, 0, "the allreduce's header exchange", NULL)) {
  case FAILED: goto out;
  case VIA_HOST:
    mfi_mpi_leave(k);
    via_host(k);
    return;
  }
  if (!new_outputs(k)) goto out;
  if (!each_group(k, threshold, [&](const void *send, void *recv, size_t n, mf_dtype dt) {
        mfi_mpi_count_call();
        return settle(k,
                      ncclAllReduce(send, recv, n / mf_dtype_size(dt), nccl_type(dt), ncclSum,
                                    N.comm, (cudaStream_t)k->stream),
                      "ncclAllReduce");
      }))
    goto out;
  for (int i = 0; average && i < k->op->nin; i++) {
    mf_tensor *t = k->out[i];
    if (t->numel == 0) continue;
    with_float(t->dtype, [&](auto z) {
      using F = decltype(z);
      MF_LAUNCH(divide_kernel<F>, t->numel, k->stream)(data<F>(t), (F)mf_mpi_size(), t->numel);
    });
    if (!launched(k)) goto out;
  }
  finish(k, "allreduce");
out:
  mfi_mpi_leave(k);
}

static void k_broadcast(mfi_kctx *k)
{
  if (!mfi_mpi_enter(k)) return;
  int root = (int)mfi_attr_int(k->op, "root", 0);
  int64_t threshold = mfi_attr_int(k->op, "fusion_threshold", 64 << 20);
  if (!mfi_mpi_root_ok(k, root)) goto out;
  switch (begin(k, 0, root, 0, "the broadcast's header exchange", NULL)) {
  case FAILED: goto out;
  case VIA_HOST:
    mfi_mpi_leave(k);
    via_host(k);
    return;
  }
  if (!new_outputs(k)) goto out;
  if (each_group(k, threshold, [&](const void *send, void *recv, size_t n, mf_dtype) {
        mfi_mpi_count_call();
        return settle(
            k, ncclBroadcast(send, recv, n, ncclUint8, root, N.comm, (cudaStream_t)k->stream),
            "ncclBroadcast");
      }))
    finish(k, "broadcast");
out:
  mfi_mpi_leave(k);
}

// Equal first dimensions: one ncclAllGather; else each rank's rows are
// broadcast from it into their place, in one NCCL group.
static void k_allgather(mfi_kctx *k)
{
  if (!mfi_mpi_enter(k)) return;
  const mf_tensor *x = k->in[0];
  mfi_mpi_header *h = NULL;
  switch (begin(k, 1, 0, x->dims[0], "the allgather's header exchange", &h)) {
  case FAILED: goto out;
  case VIA_HOST:
    free(h);
    mfi_mpi_leave(k);
    via_host(k);
    return;
  }
  {
    size_t row = mf_dtype_size(x->dtype);
    for (int d = 1; d < x->ndim; d++) row *= (size_t)x->dims[d];
    int64_t total = 0;
    bool equal = true;
    for (int r = 0; r < mf_mpi_size(); r++) total += h[r].dim0, equal &= h[r].dim0 == h[0].dim0;
    int64_t dims[MF_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[0] = total;
    if (!mfi_out_new(k, 0, x->dtype, x->ndim, dims)) goto out;
    cudaStream_t st = (cudaStream_t)k->stream;
    char *out = (char *)mfi_data(k->out[0]);
    if (total == 0 || row == 0) goto out;
    mfi_mpi_count_call();
    if (equal) {
      if (!settle(k,
                  ncclAllGather(mfi_data(x), out, (size_t)h[0].dim0 * row, ncclUint8, N.comm, st),
                  "ncclAllGather"))
        goto out;
    } else {
      if (!settle(k, ncclGroupStart(), "ncclGroupStart")) goto out;
      size_t off = 0;
      for (int r = 0; r < mf_mpi_size(); r++) {
        size_t n = (size_t)h[r].dim0 * row;
        if (n && !settle(k, ncclBroadcast(mfi_data(x), out + off, n, ncclUint8, r, N.comm, st),
                         "ncclBroadcast"))
          goto out;
        off += n;
      }
      if (!settle(k, ncclGroupEnd(), "ncclGroupEnd")) goto out;
    }
    finish(k, "allgather");
  }
out:
  free(h);
  mfi_mpi_leave(k);
}

extern const mfi_kernel_reg nccl_kernels[] = {{"MPIAllreduce", k_allreduce},
                                              {"MPIAllgather", k_allgather},
                                              {"MPIBroadcast", k_broadcast},
                                              {NULL, NULL}};

} // namespace MF_CUDA_NS
