/* Data-parallel collectives over MPI: the process state (mf_mpi_*) and the
 * ops MPIAllreduce, MPIAllgather and MPIBroadcast.
 *
 * A build without Open MPI keeps the C API (mf_mpi_init then says what is
 * missing) and registers no MPI op. With it, the ops read and write host
 * memory (host_in / host_out), so the CPU kernel serves every device.
 *
 * Every rank must issue the same collectives in the same order (the Lua
 * layer chains them with control edges in graph order). Each collective
 * first exchanges a 64-byte header: a fingerprint of the op (type, name,
 * dtypes, shapes, attributes) and its name. Ranks that disagree fail with
 * an error naming both collectives instead of exchanging garbage or
 * hanging. Every wait polls with a deadline (mf_mpi_timeout), so a rank
 * that died or never comes is an error too. MPI calls are serialized by
 * one lock; MPI's own errors return on our communicators (MPI_ERRORS_RETURN).
 *
 * Tensor fusion: MPIAllreduce takes many tensors; those of one dtype are
 * packed into one buffer of at most fusion_threshold bytes and
 * reduced by one MPI_Allreduce, as Horovod's fusion buffer. MPIBroadcast
 * packs the same way.
 *
 * In a CUDA build that found NCCL (MF_HAVE_NCCL), the ops take their
 * tensors where they are: on the host this file's kernels run them over
 * MPI; on a GPU gpu/nccl.cu's kernels run them with NCCL on the op's
 * stream, after the same header exchange over MPI (mpi_ops.h). */
#include "internal.h"
#ifdef MF_HAVE_MPI
#include "mpi_ops.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MF_HAVE_MPI

#include <dlfcn.h>
#include <mpi.h>
#include <time.h>
#include <unistd.h>

static struct {
  pthread_mutex_t lock;
  bool inited, finalized, owns, failed, atexit_set;
  bool pending; /* a request was left unfinished (timed out): only MPI_Abort ends cleanly */
  int rank, size, lrank, lsize;
  MPI_Comm comm, exit_comm;
  double timeout;
  int64_t calls; /* data collectives issued (headers not counted) */
  void *fusion;  /* the fusion buffer (under lock) */
  size_t fusion_cap;
  void (*on_finalize)(void); /* the NCCL communicator's end (mpi_ops.h) */
} M = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .rank = -1,
       .size = -1,
       .lrank = -1,
       .lsize = -1,
       .timeout = 60};

int mf_mpi_built(void) { return 1; }

static void mpi_message(int rc, char *buf, size_t size)
{
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = 0;
  snprintf(buf, size, "%s (MPI error %d)", len ? msg : "unknown error", rc);
}

/* Polls request r until done or the deadline; false with `err` set. */
static bool wait_request(MPI_Request *r, const char *what, char *err, size_t size, double limit)
{
  double t0 = MPI_Wtime();
  for (unsigned spins = 0;; spins++) {
    int done = 0, rc = MPI_Test(r, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      char m[MPI_MAX_ERROR_STRING + 32];
      mpi_message(rc, m, sizeof m);
      snprintf(err, size, "rank %d of %d: %s failed: %s", M.rank, M.size, what, m);
      return false;
    }
    if (done) return true;
    double dt = MPI_Wtime() - t0;
    if (dt > limit) {
      M.pending = true;
      snprintf(err, size,
               "rank %d of %d: timed out after %g s in %s waiting for the other ranks (one "
               "failed or exited, or they run a different graph); MOONFLOW_MPI_TIMEOUT sets "
               "the limit",
               M.rank, M.size, limit, what);
      return false;
    }
    /* Spin briefly (latency), then sleep so that a waiting rank leaves its
     * core to the ranks still computing. */
    if (spins > 2000) {
      struct timespec ts = {0, dt < 0.01 ? 20000 : 200000};
      nanosleep(&ts, NULL);
    }
  }
}

void mfi_mpi_fail(mfi_kctx *k, mf_code code, const char *msg)
{
  M.failed = true;
  mfi_op_error(k->status, code, k->op, "%s", msg);
}

static bool check_rc(mfi_kctx *k, int rc, const char *what)
{
  if (rc == MPI_SUCCESS) return true;
  char m[MPI_MAX_ERROR_STRING + 32], e[MPI_MAX_ERROR_STRING + 128];
  mpi_message(rc, m, sizeof m);
  snprintf(e, sizeof e, "rank %d of %d: %s failed: %s", M.rank, M.size, what, m);
  mfi_mpi_fail(k, MF_INTERNAL, e);
  return false;
}

static bool wait_k(mfi_kctx *k, MPI_Request *r, const char *what)
{
  char e[512];
  if (wait_request(r, what, e, sizeof e, M.timeout)) return true;
  mfi_mpi_fail(k, MF_INTERNAL, e);
  return false;
}

/* An exit barrier on its own communicator, bounded by the timeout. */
static bool exit_barrier(char *err, size_t size, double limit)
{
  MPI_Request r;
  int rc = MPI_Ibarrier(M.exit_comm, &r);
  if (rc != MPI_SUCCESS) {
    mpi_message(rc, err, size);
    return false;
  }
  return wait_request(&r, "the exit barrier", err, size, limit);
}

static void finish(void)
{
  MPI_Comm_free(&M.comm);
  MPI_Comm_free(&M.exit_comm);
  if (M.owns) MPI_Finalize();
  free(M.fusion);
  M.fusion = NULL, M.fusion_cap = 0;
  M.inited = false, M.finalized = true;
}

/* A process that exits without mf_mpi_finalize: a clean exit when every
 * rank gets there in time; else (or after a failed collective) it ends the
 * whole job, so that no rank waits for it for ever. */
static void at_exit(void)
{
  pthread_mutex_lock(&M.lock);
  if (M.inited && !M.finalized) {
    char err[512] = "";
    /* After a failed collective that left nothing pending (ranks that
     * disagreed all fail at once), a short wait lets every rank report its
     * own error before the job ends cleanly. */
    double limit = M.failed ? (M.timeout < 5 ? M.timeout : 5) : M.timeout;
    if (!M.pending && (M.size == 1 || exit_barrier(err, sizeof err, limit))) {
      finish();
    } else {
      if (M.failed)
        fprintf(stderr,
                "moonflow.mpi: rank %d of %d exits after a failed collective: aborting the job\n",
                M.rank, M.size);
      else
        fprintf(stderr,
                "moonflow.mpi: rank %d of %d exits, but the other ranks do not (%s): aborting the "
                "job\n",
                M.rank, M.size, err);
      fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  pthread_mutex_unlock(&M.lock);
}

static int fail(mf_status *s, mf_code code, const char *what, int rc)
{
  char m[MPI_MAX_ERROR_STRING + 32];
  mpi_message(rc, m, sizeof m);
  mfi_set(s, code, "mf_mpi_init: %s failed: %s", what, m);
  return 0;
}

int mf_mpi_init(mf_status *s)
{
  if (s) mfi_clear(s);
  pthread_mutex_lock(&M.lock);
  int ok = 1;
  if (M.inited) goto out;
  if (M.finalized) {
    mfi_set(s, MF_FAILED_PRECONDITION,
            "mf_mpi_init: MPI was finalized in this process and cannot start again");
    ok = 0;
    goto out;
  }
  /* Open MPI's plugins resolve symbols of libmpi globally; a Lua module
   * loads us (and libmpi) with RTLD_LOCAL, so promote it. */
  dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  int flag = 0, provided = 0, rc;
  MPI_Initialized(&flag);
  if (!flag) {
    rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
      ok = fail(s, MF_INTERNAL, "MPI_Init_thread", rc);
      goto out;
    }
    M.owns = true;
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    mfi_set(s, MF_FAILED_PRECONDITION,
            "mf_mpi_init: MPI gives thread level %d, moonflow needs MPI_THREAD_SERIALIZED "
            "(collectives run on the session's threads)",
            provided);
    ok = 0;
    goto out;
  }
  if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &M.comm)) != MPI_SUCCESS ||
      (rc = MPI_Comm_dup(MPI_COMM_WORLD, &M.exit_comm)) != MPI_SUCCESS) {
    ok = fail(s, MF_INTERNAL, "MPI_Comm_dup", rc);
    goto out;
  }
  MPI_Comm_set_errhandler(M.comm, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(M.exit_comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(M.comm, &M.rank);
  MPI_Comm_size(M.comm, &M.size);
  MPI_Comm local;
  if ((rc = MPI_Comm_split_type(M.comm, MPI_COMM_TYPE_SHARED, M.rank, MPI_INFO_NULL, &local)) !=
      MPI_SUCCESS) {
    ok = fail(s, MF_INTERNAL, "MPI_Comm_split_type", rc);
    goto out;
  }
  MPI_Comm_rank(local, &M.lrank);
  MPI_Comm_size(local, &M.lsize);
  MPI_Comm_free(&local);
  const char *t = getenv("MOONFLOW_MPI_TIMEOUT");
  if (t && atof(t) > 0) M.timeout = atof(t);
  /* Ranks on one host share its cores: each gets its share for the
   * intra-op team and OpenBLAS (spinning workers must not fight). */
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int n = (int)(online / (M.lsize > 0 ? M.lsize : 1)), usable = mfi_usable_cpus();
  if (n > usable) n = usable;
  const char *th = getenv("MOONFLOW_MPI_THREADS");
  if (th && atoi(th) > 0) n = atoi(th);
  if (n < 1) n = 1;
  mfi_parallel_set_threads(n);
  mfi_blas_set_threads(n);
  M.inited = true, M.failed = false;
  if (!M.atexit_set) atexit(at_exit), M.atexit_set = true;
out:
  pthread_mutex_unlock(&M.lock);
  return ok;
}

int mf_mpi_finalize(mf_status *s)
{
  if (s) mfi_clear(s);
  pthread_mutex_lock(&M.lock);
  int ok = 1;
  if (M.inited) {
    char err[512] = "";
    if (M.size > 1 && !exit_barrier(err, sizeof err, M.timeout)) {
      mfi_set(s, MF_INTERNAL, "mf_mpi_finalize: %s", err);
      M.failed = true, ok = 0;
    } else {
      if (M.on_finalize) M.on_finalize(), M.on_finalize = NULL;
      finish();
    }
  }
  pthread_mutex_unlock(&M.lock);
  return ok;
}

int mf_mpi_initialized(void) { return __atomic_load_n(&M.inited, __ATOMIC_RELAXED); }
int mf_mpi_rank(void) { return mf_mpi_initialized() ? M.rank : -1; }
int mf_mpi_size(void) { return mf_mpi_initialized() ? M.size : -1; }
int mf_mpi_local_rank(void) { return mf_mpi_initialized() ? M.lrank : -1; }
int mf_mpi_local_size(void) { return mf_mpi_initialized() ? M.lsize : -1; }
void mf_mpi_set_timeout(double seconds)
{
  if (seconds > 0) M.timeout = seconds;
}
double mf_mpi_timeout(void) { return M.timeout; }
int64_t mf_mpi_calls(void) { return __atomic_load_n(&M.calls, __ATOMIC_RELAXED); }
void mfi_mpi_count_call(void) { __atomic_add_fetch(&M.calls, 1, __ATOMIC_RELAXED); }
void mfi_mpi_on_finalize(void (*fn)(void)) { M.on_finalize = fn; }

/* ---------------------------------------------------------------- ops */

#define MAX_TENSORS MFI_MPI_MAX_TENSORS
/* Where the ops' tensors live: host memory for the CPU kernels below,
 * which then serve every device; with NCCL, where the op runs (a GPU's
 * tensors stay there for gpu/nccl.cu's kernels; the test device's memory
 * is host memory, which the CPU kernels read as it is). */
#ifdef MF_HAVE_NCCL
#define HOST_MEMORY 0u
#else
#define HOST_MEMORY 0xffffffffu
#endif
#define CHUNK ((int64_t)1 << 30) /* elements per MPI call (counts are ints) */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

/* The op's fingerprint: its type and name, attributes, dtypes and shapes
 * (from dimension `from` on: an allgather's first dimensions may differ). */
uint64_t mfi_mpi_fingerprint(const mfi_kctx *k, int from, int64_t attr)
{
  uint64_t h = 14695981039346656037ull;
  h = fnv(h, k->op->def->type, strlen(k->op->def->type) + 1);
  h = fnv(h, k->op->name, strlen(k->op->name) + 1);
  h = fnv(h, &attr, sizeof attr);
  for (int i = 0; i < k->op->nin; i++) {
    const mf_tensor *t = k->in[i];
    int32_t d = (int32_t)t->dtype, nd = t->ndim;
    h = fnv(h, &d, sizeof d);
    h = fnv(h, &nd, sizeof nd);
    for (int j = from; j < t->ndim; j++) h = fnv(h, &t->dims[j], sizeof t->dims[j]);
  }
  return h;
}

/* Checks that the op may run here; takes the lock (released by `leave`). */
bool mfi_mpi_enter(mfi_kctx *k)
{
  pthread_mutex_lock(&M.lock);
  if (!M.inited) {
    pthread_mutex_unlock(&M.lock);
    mfi_op_error(k->status, MF_FAILED_PRECONDITION, k->op,
                 "MPI is not initialized in this process: call mpi.init() (Lua) or "
                 "mf_mpi_init (C) first");
    return false;
  }
  if (M.failed) {
    pthread_mutex_unlock(&M.lock);
    mfi_op_error(k->status, MF_FAILED_PRECONDITION, k->op,
                 "rank %d of %d: an earlier collective failed, so the ranks are out of step",
                 M.rank, M.size);
    return false;
  }
  return true;
}

void mfi_mpi_leave(mfi_kctx *k)
{
  if (!mfi_ok(k->status))
    for (int i = 0; i < k->op->nout; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
  pthread_mutex_unlock(&M.lock);
}

/* Exchanges headers; every rank's lands in `all` (M.size entries, owned by
 * the caller). False with the op's error when a rank runs another op. */
mfi_mpi_header *mfi_mpi_exchange(mfi_kctx *k, uint64_t fp, int64_t dim0, const char *what)
{
  mfi_mpi_header mine = {.fp = fp, .dim0 = dim0};
  snprintf(mine.name, sizeof mine.name, "%s", k->op->name);
  mfi_mpi_header *all = calloc((size_t)M.size, sizeof *all);
  if (!all) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    return NULL;
  }
  MPI_Request r;
  if (!check_rc(
          k, MPI_Iallgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, M.comm, &r),
          what) ||
      !wait_k(k, &r, what)) {
    free(all);
    return NULL;
  }
  for (int i = 0; i < M.size; i++) {
    if (all[i].fp == fp) continue;
    all[i].name[sizeof all[i].name - 1] = 0;
    char e[512];
    snprintf(e, sizeof e,
             "rank %d of %d runs %s '%s' while rank %d runs '%s'%s: every rank must run the "
             "same graph's collectives in the same order, with the same dtypes and shapes",
             M.rank, M.size, k->op->def->type, mine.name, i, all[i].name,
             strcmp(all[i].name, mine.name) == 0
                 ? " with other dtypes, shapes or attributes, or on another kind of device"
                 : "");
    mfi_mpi_fail(k, MF_INVALID_ARGUMENT, e);
    free(all);
    return NULL;
  }
  return all;
}

static MPI_Datatype mpi_type(mf_dtype dt)
{
  switch (dt) {
  case MF_FLOAT32: return MPI_FLOAT;
  case MF_FLOAT64: return MPI_DOUBLE;
  case MF_INT32: return MPI_INT32_T;
  case MF_INT64: return MPI_INT64_T;
  default: return MPI_DATATYPE_NULL;
  }
}

static bool reserve(mfi_kctx *k, size_t n)
{
  if (n <= M.fusion_cap) return true;
  void *p = realloc(M.fusion, n);
  if (!p) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory for the fusion buffer");
    return false;
  }
  M.fusion = p, M.fusion_cap = n;
  return true;
}

/* Sum (in place when send is NULL) of n elements, in chunks MPI counts hold. */
static bool allreduce(mfi_kctx *k, const void *send, void *recv, int64_t n, mf_dtype dt)
{
  size_t es = mf_dtype_size(dt);
  for (int64_t at = 0; at < n; at += CHUNK) {
    int c = (int)(n - at < CHUNK ? n - at : CHUNK);
    MPI_Request r;
    __atomic_add_fetch(&M.calls, 1, __ATOMIC_RELAXED);
    if (!check_rc(k,
                  MPI_Iallreduce(send ? (const char *)send + at * es : MPI_IN_PLACE,
                                 (char *)recv + at * es, c, mpi_type(dt), MPI_SUM, M.comm, &r),
                  "MPI_Allreduce") ||
        !wait_k(k, &r, "allreduce"))
      return false;
  }
  return true;
}

static bool broadcast(mfi_kctx *k, void *buf, int64_t nbytes, int root)
{
  for (int64_t at = 0; at < nbytes; at += CHUNK) {
    int c = (int)(nbytes - at < CHUNK ? nbytes - at : CHUNK);
    MPI_Request r;
    __atomic_add_fetch(&M.calls, 1, __ATOMIC_RELAXED);
    if (!check_rc(k, MPI_Ibcast((char *)buf + at, c, MPI_BYTE, root, M.comm, &r), "MPI_Bcast") ||
        !wait_k(k, &r, "broadcast"))
      return false;
  }
  return true;
}

bool mfi_mpi_bcast_bytes(mfi_kctx *k, void *buf, int n, int root, const char *what)
{
  MPI_Request r;
  return check_rc(k, MPI_Ibcast(buf, n, MPI_BYTE, root, M.comm, &r), what) && wait_k(k, &r, what);
}

bool mfi_mpi_allgather_bytes(mfi_kctx *k, const void *mine, void *all, int n, const char *what)
{
  MPI_Request r;
  return check_rc(k, MPI_Iallgather(mine, n, MPI_BYTE, all, n, MPI_BYTE, M.comm, &r), what) &&
         wait_k(k, &r, what);
}

static size_t nbytes(const mf_tensor *t) { return (size_t)t->numel * mf_dtype_size(t->dtype); }

/* The next fusion group: the first input not yet done and the later ones
 * of its dtype that fit the threshold with it (a larger tensor alone);
 * their indices go to g, and they are marked done. Returns the count. */
int mfi_mpi_next_group(const mfi_kctx *k, bool *done, int64_t threshold, int *g)
{
  int i = 0, n = 0;
  while (i < k->op->nin && done[i]) i++;
  if (i == k->op->nin) return 0;
  size_t total = nbytes(k->in[i]);
  done[i] = true, g[n++] = i;
  for (int j = i + 1; j < k->op->nin; j++)
    if (!done[j] && k->in[j]->dtype == k->in[i]->dtype &&
        total + nbytes(k->in[j]) <= (size_t)threshold) {
      total += nbytes(k->in[j]);
      done[j] = true, g[n++] = j;
    }
  return n;
}

static bool new_outputs(mfi_kctx *k)
{
  for (int i = 0; i < k->op->nin; i++)
    if (!mfi_out_new(k, i, k->in[i]->dtype, k->in[i]->ndim, k->in[i]->dims)) return false;
  return true;
}

static void cpu_allreduce(mfi_kctx *k)
{
  if (!mfi_mpi_enter(k)) return;
  bool average = mfi_attr_bool(k->op, "average", false);
  int64_t threshold = mfi_attr_int(k->op, "fusion_threshold", 64 << 20);
  mfi_mpi_header *h =
      mfi_mpi_exchange(k, mfi_mpi_fingerprint(k, 0, average), 0, "the allreduce's header exchange");
  bool agreed = h != NULL;
  free(h);
  if (!agreed || !new_outputs(k)) goto out;
  bool done[MAX_TENSORS] = {0};
  int g[MAX_TENSORS];
  for (int n; (n = mfi_mpi_next_group(k, done, threshold, g)) > 0;) {
    mf_dtype dt = k->in[g[0]]->dtype;
    if (n == 1) {
      const mf_tensor *x = k->in[g[0]];
      if (x->numel && !allreduce(k, mfi_data(x), mfi_data(k->out[g[0]]), x->numel, dt)) goto out;
      continue;
    }
    size_t total = 0;
    for (int q = 0; q < n; q++) total += nbytes(k->in[g[q]]);
    if (!reserve(k, total)) goto out;
    char *p = M.fusion;
    for (int q = 0; q < n; q++)
      memcpy(p, mfi_data(k->in[g[q]]), nbytes(k->in[g[q]])), p += nbytes(k->in[g[q]]);
    if (total && !allreduce(k, NULL, M.fusion, (int64_t)(total / mf_dtype_size(dt)), dt)) goto out;
    p = M.fusion;
    for (int q = 0; q < n; q++)
      memcpy(mfi_data(k->out[g[q]]), p, nbytes(k->in[g[q]])), p += nbytes(k->in[g[q]]);
  }
  if (average)
    for (int i = 0; i < k->op->nin; i++) {
      mf_tensor *t = k->out[i];
      if (t->dtype == MF_FLOAT32) {
        float *p = mfi_data(t);
        for (int64_t e = 0; e < t->numel; e++) p[e] /= (float)M.size;
      } else {
        double *p = mfi_data(t);
        for (int64_t e = 0; e < t->numel; e++) p[e] /= M.size;
      }
    }
out:
  mfi_mpi_leave(k);
}

bool mfi_mpi_root_ok(mfi_kctx *k, int root)
{
  if (root < M.size) return true;
  mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "root %d is not a rank (there are %d)", root,
               M.size);
  return false;
}

static void cpu_broadcast(mfi_kctx *k)
{
  if (!mfi_mpi_enter(k)) return;
  int root = (int)mfi_attr_int(k->op, "root", 0);
  int64_t threshold = mfi_attr_int(k->op, "fusion_threshold", 64 << 20);
  if (!mfi_mpi_root_ok(k, root)) goto out;
  mfi_mpi_header *h =
      mfi_mpi_exchange(k, mfi_mpi_fingerprint(k, 0, root), 0, "the broadcast's header exchange");
  bool agreed = h != NULL;
  free(h);
  if (!agreed || !new_outputs(k)) goto out;
  bool done[MAX_TENSORS] = {0};
  int g[MAX_TENSORS];
  for (int n; (n = mfi_mpi_next_group(k, done, threshold, g)) > 0;) {
    if (n == 1) {
      const mf_tensor *x = k->in[g[0]];
      memcpy(mfi_data(k->out[g[0]]), mfi_data(x), nbytes(x));
      if (nbytes(x) && !broadcast(k, mfi_data(k->out[g[0]]), (int64_t)nbytes(x), root)) goto out;
      continue;
    }
    size_t total = 0;
    for (int q = 0; q < n; q++) total += nbytes(k->in[g[q]]);
    if (!reserve(k, total)) goto out;
    char *p = M.fusion;
    for (int q = 0; q < n; q++)
      memcpy(p, mfi_data(k->in[g[q]]), nbytes(k->in[g[q]])), p += nbytes(k->in[g[q]]);
    if (total && !broadcast(k, M.fusion, (int64_t)total, root)) goto out;
    p = M.fusion;
    for (int q = 0; q < n; q++)
      memcpy(mfi_data(k->out[g[q]]), p, nbytes(k->in[g[q]])), p += nbytes(k->in[g[q]]);
  }
out:
  mfi_mpi_leave(k);
}

static void cpu_allgather(mfi_kctx *k)
{
  if (!mfi_mpi_enter(k)) return;
  const mf_tensor *x = k->in[0];
  int *counts = NULL, *displs = NULL;
  mfi_mpi_header *h = mfi_mpi_exchange(k, mfi_mpi_fingerprint(k, 1, 0), x->dims[0],
                                       "the allgather's header exchange");
  if (!h) goto out;
  size_t row = mf_dtype_size(x->dtype);
  for (int d = 1; d < x->ndim; d++) row *= (size_t)x->dims[d];
  int64_t total = 0;
  counts = malloc(sizeof *counts * (size_t)M.size);
  displs = malloc(sizeof *displs * (size_t)M.size);
  if (!counts || !displs) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    goto out;
  }
  for (int r = 0; r < M.size; r++) {
    int64_t off = total * (int64_t)row, n = h[r].dim0 * (int64_t)row;
    if (off + n > INT32_MAX) {
      mfi_op_error(k->status, MF_UNIMPLEMENTED, k->op,
                   "gathers more than 2 GiB (MPI counts are ints)");
      goto out;
    }
    counts[r] = (int)n, displs[r] = (int)off;
    total += h[r].dim0;
  }
  int64_t dims[MF_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  dims[0] = total;
  if (!mfi_out_new(k, 0, x->dtype, x->ndim, dims)) goto out;
  MPI_Request r;
  __atomic_add_fetch(&M.calls, 1, __ATOMIC_RELAXED);
  if (check_rc(k,
               MPI_Iallgatherv(mfi_data(x), counts[M.rank], MPI_BYTE, mfi_data(k->out[0]), counts,
                               displs, MPI_BYTE, M.comm, &r),
               "MPI_Allgatherv"))
    wait_k(k, &r, "allgather");
out:
  free(h), free(counts), free(displs);
  mfi_mpi_leave(k);
}

/* ---------------------------------------------------------------- inference */

static bool check_dtypes(mfi_infer_ctx *c, bool numeric_only)
{
  for (int i = 0; i < c->op->nin; i++) {
    mf_dtype dt = c->in[i].dtype;
    if (numeric_only && mpi_type(dt) == MPI_DATATYPE_NULL) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "input %d: reduces float32, float64, int32 or int64 tensors, got %s", i + 1,
                      mf_dtype_name(dt));
      return false;
    }
  }
  return true;
}

static bool check_threshold(mfi_infer_ctx *c)
{
  int64_t v;
  if (!mfi_check_int(c, "fusion_threshold", false, 64 << 20, &v)) return false;
  if (v < 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "fusion_threshold must be >= 0 bytes, got %lld",
                    (long long)v);
    return false;
  }
  return true;
}

static void pass_through(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, c->op->nin)) return;
  for (int i = 0; i < c->op->nin; i++) c->op->out[i] = c->in[i];
}

static void infer_allreduce(mfi_infer_ctx *c)
{
  bool average;
  if (!check_dtypes(c, true) || !check_threshold(c) ||
      !mfi_check_bool(c, "average", false, false, &average))
    return;
  for (int i = 0; average && i < c->op->nin; i++)
    if (!mfi_is_float(c->in[i].dtype)) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "input %d: averages float tensors only, got %s",
                      i + 1, mf_dtype_name(c->in[i].dtype));
      return;
    }
  pass_through(c);
}

static void infer_broadcast(mfi_infer_ctx *c)
{
  int64_t root;
  if (!check_threshold(c) || !mfi_check_int(c, "root", false, 0, &root)) return;
  if (root < 0 || root > INT32_MAX) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "root must be a rank (>= 0), got %lld",
                    (long long)root);
    return;
  }
  pass_through(c);
}

static void infer_allgather(mfi_infer_ctx *c)
{
  if (c->in[0].ndim == 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "gathers along the first dimension: the tensor needs rank >= 1, got a scalar");
    return;
  }
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0] = c->in[0];
  if (c->op->out[0].ndim > 0) c->op->out[0].dims[0] = -1;
}

/* MPIRank, MPISize, MPILocalRank, MPILocalSize: this process's place in
 * the job as an int32 scalar, read when the op runs (Horovod's rank_op and
 * the rest), so a graph saved on one rank serves every rank. */
static void infer_rank(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0].dtype = MF_INT32;
  c->op->out[0].ndim = 0;
}

static void cpu_rank(mfi_kctx *k)
{
  if (!mf_mpi_initialized()) {
    mfi_op_error(k->status, MF_FAILED_PRECONDITION, k->op,
                 "MPI is not initialized in this process: call mpi.init() (Lua) or "
                 "mf_mpi_init (C) first");
    return;
  }
  const char *t = k->op->def->type;
  int v = strcmp(t, "MPIRank") == 0        ? M.rank
          : strcmp(t, "MPISize") == 0      ? M.size
          : strcmp(t, "MPILocalRank") == 0 ? M.lrank
                                           : M.lsize;
  if (mfi_out_new(k, 0, MF_INT32, 0, NULL)) *(int32_t *)mfi_data(k->out[0]) = v;
}

/* One MPIAllreduce of the gradients of g's op's float outputs: their sum
 * over the ranks, or their average. sum[i] is output i's (none for the
 * other dtypes, which carry no gradient). */
static void reduce_dys(mfi_grad_ctx *g, bool average, mf_output *sum)
{
  int idx[MAX_TENSORS], n = 0;
  for (int i = 0; i < g->op->nout; i++) {
    sum[i] = (mf_output){NULL, 0};
    if (mfi_is_float(g->op->out[i].dtype)) idx[n++] = i;
  }
  if (n == 0) return;
  mf_op_desc *d = mfi_gb_begin(g, "MPIAllreduce");
  for (int q = 0; d && q < n; q++) {
    mf_output dy = mfi_gb_dy(g, idx[q]);
    if (!mfi_ok(g->status)) break;
    mf_op_add_input(d, dy);
  }
  if (d) mf_op_set_attr_bool(d, "average", average);
  mfi_gb_copy_attr(d, g->op, "fusion_threshold");
  mf_output first = mfi_gb_finish(g, d, 0);
  for (int q = 0; first.op && q < n; q++) sum[idx[q]] = (mf_output){first.op, q};
}

/* The gradient of a sum (or average) over the ranks is the sum (average)
 * over the ranks of the outputs' gradients, as Horovod's. */
static void grad_allreduce(mfi_grad_ctx *g)
{
  reduce_dys(g, mfi_attr_bool(g->op, "average", false), g->dx);
}

/* Every rank's output is root's input, so root's input gets the sum of
 * every rank's output gradient and the other ranks' inputs get zeros:
 * sum * (MPIRank == root), as Horovod's. */
static void grad_broadcast(mfi_grad_ctx *g)
{
  mf_output sum[MAX_TENSORS];
  reduce_dys(g, false, sum);
  mf_output is_root = {NULL, 0};
  for (int i = 0; i < g->op->nin; i++) {
    if (!sum[i].op) continue;
    if (!is_root.op) {
      mf_output rank = mfi_gb_finish(g, mfi_gb_begin(g, "MPIRank"), 0);
      mf_output root = mfi_gb_scalar(g, MF_INT32, (double)mfi_attr_int(g->op, "root", 0));
      is_root = mfi_gb2(g, "Equal", rank, root);
      if (!is_root.op) return;
    }
    mf_op_desc *c = mfi_gb_begin(g, "Cast");
    if (c) mf_op_add_input(c, is_root), mf_op_set_attr_type(c, "DstT", mfi_meta_of(sum[i]).dtype);
    g->dx[i] = mfi_gb2(g, "Mul", sum[i], mfi_gb_finish(g, c, 0));
  }
}

#define RANK_OP(name, text)                                                                        \
  {                                                                                                \
    .type = name, .doc = text, .inputs = "", .outputs = "output", .attrs = "", .min_inputs = 0,    \
    .max_inputs = 0, .flags = MFI_ANY_DEVICE | MFI_NO_GRADIENT, .infer = infer_rank,               \
    .kernel = {[MFI_DEVICE_CPU] = cpu_rank}, .host_out = 0xffffffffu                               \
  }

mfi_opdef mfi_ops_mpi[] = {
    {.type = "MPIAllreduce",
     .doc = "Sums (or averages) each tensor over the MPI ranks, small ones fused into one buffer.",
     .inputs = "tensors*",
     .outputs = "outputs*",
     .attrs = "average: bool = false; fusion_threshold: int = 67108864",
     .min_inputs = 1,
     .max_inputs = MAX_TENSORS,
     .flags = MFI_ANY_DEVICE,
     .infer = infer_allreduce,
     .kernel = {[MFI_DEVICE_CPU] = cpu_allreduce},
     .grad = grad_allreduce,
     .host_in = HOST_MEMORY,
     .host_out = HOST_MEMORY},
    {.type = "MPIAllgather",
     .doc = "Concatenates the ranks' tensors along the first dimension, in rank order.",
     .inputs = "tensor",
     .outputs = "output",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE,
     .infer = infer_allgather,
     .kernel = {[MFI_DEVICE_CPU] = cpu_allgather},
     .host_in = HOST_MEMORY,
     .host_out = HOST_MEMORY},
    {.type = "MPIBroadcast",
     .doc = "Every rank gets root's value of each tensor.",
     .inputs = "tensors*",
     .outputs = "outputs*",
     .attrs = "root: int = 0; fusion_threshold: int = 67108864",
     .min_inputs = 1,
     .max_inputs = MAX_TENSORS,
     .flags = MFI_ANY_DEVICE,
     .infer = infer_broadcast,
     .kernel = {[MFI_DEVICE_CPU] = cpu_broadcast},
     .grad = grad_broadcast,
     .host_in = HOST_MEMORY,
     .host_out = HOST_MEMORY},
    RANK_OP("MPIRank", "This process's rank in the job (0-based), an int32 scalar."),
    RANK_OP("MPISize", "The number of ranks in the job, an int32 scalar."),
    RANK_OP("MPILocalRank", "This process's rank among the ranks on its host, an int32 scalar."),
    RANK_OP("MPILocalSize", "The number of ranks on this process's host, an int32 scalar."),
    {0}};

#else /* no MPI in this build */

mfi_opdef mfi_ops_mpi[] = {{0}};

int mf_mpi_built(void) { return 0; }
int mf_mpi_init(mf_status *s)
{
  mfi_set(s, MF_UNIMPLEMENTED,
          "mf_mpi_init: this moonflow was built without MPI: install Open MPI (Debian: apt-get "
          "install openmpi-bin libopenmpi-dev, or scripts/deps.sh) and rebuild (CMake finds it)");
  return 0;
}
int mf_mpi_finalize(mf_status *s)
{
  if (s) mfi_clear(s);
  return 1;
}
int mf_mpi_initialized(void) { return 0; }
int mf_mpi_rank(void) { return -1; }
int mf_mpi_size(void) { return -1; }
int mf_mpi_local_rank(void) { return -1; }
int mf_mpi_local_size(void) { return -1; }
void mf_mpi_set_timeout(double seconds) { (void)seconds; }
double mf_mpi_timeout(void) { return 60; }
int64_t mf_mpi_calls(void) { return 0; }

#endif
