/* Devices: where buffers live and kernels run.
 *
 * A device is a small table of functions over its memory (allocate, free,
 * copies in each direction, fill, synchronize) plus a caching allocator and
 * memory statistics. The CPU device always exists; backends (gpu/, the test
 * device) register more at start-up and register kernels for op types by
 * name. This header is plain C so that CUDA sources can include it. */
#ifndef MOONFLOW_DEVICE_H
#define MOONFLOW_DEVICE_H

#include "moonflow.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of device a kernel can be written for: one kernel slot each in an
 * op's registry row. */
typedef enum {
  MFI_DEVICE_CPU = 0,
  MFI_DEVICE_CUDA,
  MFI_DEVICE_TEST, /* CPU-backed, poisoned memory: CI's stand-in for a GPU */
  MFI_NUM_DEVICE_TYPES
} mfi_device_type;

/* "cpu", "cuda", "test": the kernel backends' names. */
const char *mfi_device_type_kernel_name(mfi_device_type t);
/* "CPU", "GPU", "TEST": the device types in TensorFlow's device names. */
const char *mfi_device_type_name(mfi_device_type t);

typedef enum { MFI_H2D, MFI_D2H, MFI_D2D } mfi_copy_dir;

typedef struct mfi_device mfi_device;

/* What a backend supplies. Raw allocation sits under the device's cache;
 * copies and fills are ordered on `stream` (NULL: the stream of the run
 * this thread serves, mfi_run_stream, else the device's default), and a
 * copy into host memory is complete when it returns. */
typedef struct {
  void *(*alloc)(mfi_device *d, size_t nbytes); /* NULL when out of memory */
  void (*free)(mfi_device *d, void *p, size_t nbytes);
  bool (*copy)(mfi_device *d, void *dst, const void *src, size_t nbytes, mfi_copy_dir dir,
               void *stream, mf_status *s);
  bool (*fill)(mfi_device *d, void *dst, int byte, size_t nbytes, void *stream, mf_status *s);
  bool (*synchronize)(mfi_device *d, void *stream, mf_status *s);
  /* Optional (NULL on devices without streams): a new stream for a
   * session's work, and its end (after its work is done). */
  void *(*stream_new)(mfi_device *d, mf_status *s);
  void (*stream_free)(mfi_device *d, void *stream);
  /* Optional: makes d current on the calling thread before a kernel runs
   * there (CUDA launches go to the thread's current GPU). */
  void (*bind)(mfi_device *d);
} mfi_device_ops;

#define MFI_CACHE_CLASSES 31 /* size classes 2^6 .. 2^30 bytes */
#define MFI_MAX_DEVICES 32

struct mfi_device {
  mfi_device_type type;
  int index;      /* among devices of its type */
  int id;         /* in the registry (mfi_device_at) */
  char name[96];  /* "/job:localhost/replica:0/task:0/device:CPU:0" */
  bool host_data; /* the host can read and write its memory directly */
  bool poison;    /* fill fresh and freed blocks with 0xFF (NaN, -1) */
  mfi_device_ops ops;
  void *stream; /* the default stream handed to kernels (NULL on the CPU) */
  void *impl;   /* the backend's own state */
  /* The caching allocator (alloc.c), one per device: freed blocks of each
   * size class, kept outside the blocks so device memory works too. */
  pthread_mutex_t lock;
  struct {
    void **blocks;
    void **streams; /* per block: the stream of the run that freed it, or NULL */
    int n, cap;
  } cache[MFI_CACHE_CLASSES];
  mf_memory_stats stats;
};

/* Registered devices: index 0 is the CPU. Backends register theirs once,
 * from mfi_devices_init (their init function is called there). */
int mfi_device_count(void);
mfi_device *mfi_device_at(int i);
mfi_device *mfi_device_cpu(void);
mfi_device *mfi_device_find(mfi_device_type t, int index);
bool mfi_device_register(mfi_device *d);

/* The caching allocator over a device's raw memory (alloc.c). A block
 * freed during a run remembers that run's stream: a run on the same stream
 * reuses it at once (its work is ordered after the free), another waits
 * for that stream first. */
void *mfi_device_alloc(mfi_device *d, size_t nbytes);
void mfi_device_free(mfi_device *d, void *p, size_t nbytes);
void mfi_device_trim(mfi_device *d);
/* Forgets `stream` in the cache (its work is done and it is going away). */
void mfi_device_forget_stream(mfi_device *d, void *stream);

/* Streams of the run this thread serves, indexed by device id (NULL
 * outside runs): set by the session for its calling thread and workers. */
void mfi_set_run_streams(void *const *streams);
void *mfi_run_stream(const mfi_device *d);

/* Kernels for non-CPU devices are registered by op type name. */
typedef struct mfi_kctx mfi_kctx;
typedef void (*mfi_kernel)(mfi_kctx *k);
typedef struct {
  const char *type;
  mfi_kernel fn;
} mfi_kernel_reg;
/* Fills the `t` kernel slot of each named op type; false (and nothing
 * registered) when a name is unknown. Call only from a backend's init. */
bool mfi_register_kernels(mfi_device_type t, const mfi_kernel_reg *regs);

/* Devices of this type become the default for ops with a kernel there
 * (the CUDA backend calls it for GPUs; the test device when asked to). */
void mfi_prefer_device_type(mfi_device_type t);

/* Backend entry points, called once from mfi_devices_init. */
void mfi_cuda_init(void);    /* gpu/ (or nogpu.c: nothing) */
void mfi_testdev_init(void); /* device_test.c: only when MOONFLOW_TEST_DEVICE is set */
void mfi_devices_init(void); /* idempotent, thread-safe */

/* The CUDA kernels (gpu/dispatch.cu) for devices of type t: the nvcc build's
 * (CUDA builds only) and the same source compiled for the host (every build;
 * the test device's). False when a table names an unknown op type. */
bool mfi_cuda_register_kernels(mfi_device_type t);
bool mfi_cuda_emu_register_kernels(mfi_device_type t);

#ifdef __cplusplus
}
#endif
#endif
