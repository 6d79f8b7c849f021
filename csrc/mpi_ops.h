/* The MPI side of the collectives (csrc/mpi.c), for the kernels that run
 * them elsewhere: gpu/nccl.cu runs MPIAllreduce, MPIAllgather and
 * MPIBroadcast on GPU tensors with NCCL, but takes the process state, the
 * lock, the header exchange and the fusion groups from here, so both paths
 * check ranks against each other the same way. Plain C (nvcc includes it).
 * Only in builds with MPI (MF_HAVE_MPI). */
#ifndef MOONFLOW_MPI_OPS_H
#define MOONFLOW_MPI_OPS_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MFI_MPI_MAX_TENSORS 32

/* What every rank tells the others before a collective. */
typedef struct {
  uint64_t fp;  /* mfi_mpi_fingerprint */
  int64_t dim0; /* allgather: this rank's first dimension */
  char name[48];
} mfi_mpi_header;

/* Checks that a collective may run (MPI initialized, no earlier failure)
 * and takes the lock that serializes collectives; false with the op's
 * error (and no lock) when not. mfi_mpi_leave releases it, dropping the
 * outputs when the op failed. */
bool mfi_mpi_enter(mfi_kctx *k);
void mfi_mpi_leave(mfi_kctx *k);
/* Whether `root` names a rank; false with the op's error when not. */
bool mfi_mpi_root_ok(mfi_kctx *k, int root);

/* The op's fingerprint: its type, name, `attr`, dtypes and shapes (from
 * dimension `from` on). */
uint64_t mfi_mpi_fingerprint(const mfi_kctx *k, int from, int64_t attr);
/* Or'ed into `attr` by the NCCL kernels: a rank that runs a collective on
 * a GPU while another runs it on the host is a mismatch, reported as such
 * (one would wait in NCCL, the other in MPI). */
#define MFI_MPI_NCCL_PATH ((int64_t)1 << 40)
/* Every rank's header (mf_mpi_size() entries, for the caller to free), or
 * NULL with the op's error when a rank runs another collective, fails or
 * never comes. Under the lock. */
mfi_mpi_header *mfi_mpi_exchange(mfi_kctx *k, uint64_t fp, int64_t dim0, const char *what);

/* The next fusion group of the op's inputs (indices into g; count 0 when
 * all are done). */
int mfi_mpi_next_group(const mfi_kctx *k, bool *done, int64_t threshold, int *g);

/* n bytes from root to every rank over moonflow's communicator, with the
 * timeout; false with the op's error. Under the lock. */
bool mfi_mpi_bcast_bytes(mfi_kctx *k, void *buf, int n, int root, const char *what);

/* Every rank's n bytes into `all` (n * mf_mpi_size() bytes), in rank
 * order, with the timeout; false with the op's error. Under the lock. */
bool mfi_mpi_allgather_bytes(mfi_kctx *k, const void *mine, void *all, int n, const char *what);

/* The op's error, marking the ranks out of step (later collectives refuse). */
void mfi_mpi_fail(mfi_kctx *k, mf_code code, const char *msg);
/* Counts one data collective (mf_mpi_calls). */
void mfi_mpi_count_call(void);

/* Called (under the lock) when MPI is finalized by mf_mpi_finalize, before
 * MPI itself: the NCCL communicator's end. Not at the process's exit (the
 * CUDA runtime may be gone by then; the exit frees everything). */
void mfi_mpi_on_finalize(void (*fn)(void));

#ifdef __cplusplus
}
#endif
#endif
