/* The device registry, the CPU device, moving values between devices, and
 * the public device queries. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mfi_device *devices[MFI_MAX_DEVICES];
static int ndevices;
static pthread_once_t once = PTHREAD_ONCE_INIT;

const char *mfi_device_type_kernel_name(mfi_device_type t)
{
  static const char *const names[MFI_NUM_DEVICE_TYPES] = {"cpu", "cuda", "test"};
  return (unsigned)t < MFI_NUM_DEVICE_TYPES ? names[t] : NULL;
}

const char *mfi_device_type_name(mfi_device_type t)
{
  static const char *const names[MFI_NUM_DEVICE_TYPES] = {"CPU", "GPU", "TEST"};
  return (unsigned)t < MFI_NUM_DEVICE_TYPES ? names[t] : NULL;
}

/* ---------------------------------------------------------------- the CPU */

static void *cpu_alloc(mfi_device *d, size_t n)
{
  (void)d;
  return aligned_alloc(64, n);
}

static void cpu_free(mfi_device *d, void *p, size_t n)
{
  (void)d, (void)n;
  free(p);
}

static bool cpu_copy(mfi_device *d, void *dst, const void *src, size_t n, mfi_copy_dir dir,
                     void *stream, mf_status *s)
{
  (void)d, (void)dir, (void)stream, (void)s;
  if (n) memcpy(dst, src, n);
  return true;
}

static bool cpu_fill(mfi_device *d, void *dst, int byte, size_t n, void *stream, mf_status *s)
{
  (void)d, (void)stream, (void)s;
  memset(dst, byte, n);
  return true;
}

static bool cpu_sync(mfi_device *d, void *stream, mf_status *s)
{
  (void)d, (void)stream, (void)s;
  return true;
}

static mfi_device cpu = {.type = MFI_DEVICE_CPU,
                         .name = "/job:localhost/replica:0/task:0/device:CPU:0",
                         .host_data = true,
                         .ops = {cpu_alloc, cpu_free, cpu_copy, cpu_fill, cpu_sync},
                         .lock = PTHREAD_MUTEX_INITIALIZER};

/* ---------------------------------------------------------------- registry */

bool mfi_device_register(mfi_device *d)
{
  if (ndevices == MFI_MAX_DEVICES) return false;
  snprintf(d->name, sizeof d->name, "/job:localhost/replica:0/task:0/device:%s:%d",
           mfi_device_type_name(d->type), d->index);
  pthread_mutex_init(&d->lock, NULL);
  d->id = ndevices;
  devices[ndevices++] = d;
  return true;
}

static _Thread_local void *const *run_streams;

void mfi_set_run_streams(void *const *streams) { run_streams = streams; }
void *mfi_run_stream(const mfi_device *d) { return run_streams ? run_streams[d->id] : NULL; }

static void init(void)
{
  devices[ndevices++] = &cpu;
  mfi_cuda_init();
  const char *test = getenv("MOONFLOW_TEST_DEVICE");
  if (test && *test && strcmp(test, "0") != 0) mfi_testdev_init();
  mfi_registry_fill_any_device();
}

void mfi_devices_init(void) { pthread_once(&once, init); }

int mfi_device_count(void)
{
  mfi_devices_init();
  return ndevices;
}

mfi_device *mfi_device_at(int i)
{
  mfi_devices_init();
  return i >= 0 && i < ndevices ? devices[i] : NULL;
}

mfi_device *mfi_device_cpu(void) { return &cpu; }

mfi_device *mfi_device_find(mfi_device_type t, int index)
{
  mfi_devices_init();
  for (int i = 0; i < ndevices; i++)
    if (devices[i]->type == t && devices[i]->index == index) return devices[i];
  return NULL;
}

bool mfi_register_kernels(mfi_device_type t, const mfi_kernel_reg *regs)
{
  for (const mfi_kernel_reg *r = regs; r->type; r++)
    if (!mfi_opdef_lookup(r->type)) return false;
  for (const mfi_kernel_reg *r = regs; r->type; r++) mfi_opdef_lookup(r->type)->kernel[t] = r->fn;
  return true;
}

/* ---------------------------------------------------------------- moving values */

bool mfi_device_copy(mfi_device *dst_dev, void *dst, mfi_device *src_dev, const void *src, size_t n,
                     mf_status *s)
{
  if (n == 0) return true;
  if (src_dev == dst_dev) return src_dev->ops.copy(src_dev, dst, src, n, MFI_D2D, NULL, s);
  if (src_dev->type == MFI_DEVICE_CPU)
    return dst_dev->ops.copy(dst_dev, dst, src, n, MFI_H2D, NULL, s);
  if (dst_dev->type == MFI_DEVICE_CPU)
    return src_dev->ops.copy(src_dev, dst, src, n, MFI_D2H, NULL, s);
  /* Between two devices: through the host. */
  void *tmp = mfi_alloc(n);
  if (!tmp) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory staging a copy of %zu bytes", n);
    return false;
  }
  bool ok = src_dev->ops.copy(src_dev, tmp, src, n, MFI_D2H, NULL, s) &&
            dst_dev->ops.copy(dst_dev, dst, tmp, n, MFI_H2D, NULL, s);
  mfi_free(tmp, n);
  return ok;
}

/* ---------------------------------------------------------------- public queries */

int mf_device_count(void) { return mfi_device_count(); }

const char *mf_device_name(int i)
{
  mfi_device *d = mfi_device_at(i);
  return d ? d->name : NULL;
}

const char *mf_device_type(int i)
{
  mfi_device *d = mfi_device_at(i);
  return d ? mfi_device_type_name(d->type) : NULL;
}

int mf_device_memory_stats(int i, mf_memory_stats *out)
{
  mfi_device *d = mfi_device_at(i);
  if (!d || !out) return 0;
  pthread_mutex_lock(&d->lock);
  *out = d->stats;
  pthread_mutex_unlock(&d->lock);
  return 1;
}

void mf_allocator_trim(void)
{
  for (int i = 0; i < mfi_device_count(); i++) mfi_device_trim(devices[i]);
}

const char *mf_kernel_backend_name(int i)
{
  return i >= 0 && i < MFI_NUM_DEVICE_TYPES ? mfi_device_type_kernel_name((mfi_device_type)i)
                                            : NULL;
}

int mf_op_type_has_kernel(const char *type, const char *backend)
{
  const mfi_opdef *d = backend ? mfi_opdef_find(type) : NULL;
  for (int t = 0; d && t < MFI_NUM_DEVICE_TYPES; t++)
    if (strcmp(backend, mfi_device_type_kernel_name((mfi_device_type)t)) == 0)
      return d->kernel[t] != NULL;
  return 0;
}
