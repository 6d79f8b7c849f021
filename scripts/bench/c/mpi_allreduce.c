/* The reference for scripts/bench/mpi.lua: Open MPI's own MPI_Allreduce
 * (float32 sum) in a plain C loop, for the sizes given in bytes; then
 * MPI_Iallreduce + MPI_Wait, the nonblocking form moonflow's kernel uses.
 *   mpicc -O2 mpi_allreduce.c -o mpi_allreduce
 *   mpirun -np 2 ./mpi_allreduce ITERS BYTES...
 * Rank 0 prints one JSON line per size. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  /* "pingpong ITERS BYTES...": the link's one-way time per size (half a
   * round trip), from which the scaling model takes latency and bandwidth. */
  if (argc > 1 && strcmp(argv[1], "pingpong") == 0) {
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    for (int a = 3; a < argc && size >= 2; a++) {
      long bytes = atol(argv[a]);
      char *buf = calloc((size_t)bytes + 1, 1);
      double t0 = 0;
      for (int i = -2; i < iters; i++) {
        if (i == 0) MPI_Barrier(MPI_COMM_WORLD), t0 = MPI_Wtime();
        if (rank == 0) {
          MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
          MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
          MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
      }
      double dt = (MPI_Wtime() - t0) / iters / 2;
      if (rank == 0)
        printf("{\"bench\":\"mpi_pingpong\",\"bytes\":%ld,\"iters\":%d,\"one_way_us\":%.3f,"
               "\"GBps\":%.4f}\n",
               bytes, iters, dt * 1e6, bytes / dt / 1e9);
      free(buf);
    }
    MPI_Finalize();
    return 0;
  }
  int iters = argc > 1 ? atoi(argv[1]) : 100;
  for (int a = 2; a < argc; a++) {
    long bytes = atol(argv[a]);
    int n = (int)(bytes / 4);
    float *in = malloc((size_t)n * 4 + 4), *out = malloc((size_t)n * 4 + 4);
    for (int i = 0; i < n; i++) in[i] = (float)(i % 7);
    int reps = bytes >= (1 << 24) ? iters / 10 + 1 : iters;
    for (int i = 0; i < 3; i++) MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++) MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double dt = (MPI_Wtime() - t0) / reps;
    if (rank == 0)
      printf(
          "{\"bench\":\"mpi_allreduce\",\"impl\":\"c_mpi\",\"ranks\":%d,\"bytes\":%ld,\"iters\":%d,"
          "\"us\":%.3f,\"algbw_GBps\":%.4f}\n",
          size, bytes, reps, dt * 1e6, bytes / dt / 1e9);
    /* the nonblocking form moonflow uses (MPI_Iallreduce, then waiting) */
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++) {
      MPI_Request r;
      MPI_Iallreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    dt = (MPI_Wtime() - t0) / reps;
    if (rank == 0)
      printf(
          "{\"bench\":\"mpi_allreduce\",\"impl\":\"c_mpi_iallreduce\",\"ranks\":%d,\"bytes\":%ld,"
          "\"iters\":%d,\"us\":%.3f,\"algbw_GBps\":%.4f}\n",
          size, bytes, reps, dt * 1e6, bytes / dt / 1e9);
    free(in), free(out);
  }
  MPI_Finalize();
  return 0;
}
