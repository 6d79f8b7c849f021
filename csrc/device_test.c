/* The test device: a second, CPU-backed device that lets CI exercise
 * placement, copies at device boundaries, fetches and the CUDA kernels'
 * source without a GPU: its kernels are the gpu/ sources compiled for the host
 * (gpu/kernel.h), so an op runs here exactly the code a GPU runs.
 *
 * MOONFLOW_TEST_DEVICE=1 registers it as /device:TEST:0 (ops go there when
 * asked with tf.device); =prefer also makes it the default device for ops
 * with a kernel there, as a GPU would be. Its memory is its own caching
 * allocator's, and every block is filled with 0xFF (float NaN, integer -1)
 * when handed out and when freed, so a kernel that reads memory it did not
 * write, or a value used after its buffer went back, shows up as NaN. Ops
 * without a CUDA kernel run on the CPU, so graphs mix devices. */
#include "placement.h"

#include <stdlib.h>
#include <string.h>

static mfi_device test_device;

/* MOONFLOW_TEST_DEVICE_BROKEN=<op type> gives that op type a wrong kernel
 * here (the CPU's, then its first float output's first element plus one),
 * so a spec can show that the conformance check catches a bad kernel. */
static void broken_kernel(mfi_kctx *k)
{
  k->op->def->kernel[MFI_DEVICE_CPU](k);
  mf_tensor *t = mfi_ok(k->status) && k->op->nout > 0 ? k->out[0] : NULL;
  if (!t || t->numel == 0 || !mfi_is_float(t->dtype)) return;
  if (!mfi_tensor_exclusive(t)) {
    mf_tensor *c = mfi_tensor_copy(t, k->status);
    if (!c) return;
    mf_tensor_delete(t);
    k->out[0] = t = c;
  }
  mfi_set_f(t->dtype, mfi_data(t), 0, mfi_get_f(t->dtype, mfi_data(t), 0) + 1);
}

/* Streams as a GPU has them, one per session, so that CI runs the sessions'
 * and the allocator's stream bookkeeping; work here is synchronous, so a
 * stream is only a token. */
static void *test_stream_new(mfi_device *d, mf_status *s)
{
  (void)d;
  void *st = malloc(1);
  if (!st) mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory making a stream");
  return st;
}

static void test_stream_free(mfi_device *d, void *stream)
{
  (void)d;
  free(stream);
}

void mfi_testdev_init(void)
{
  test_device = (mfi_device){.type = MFI_DEVICE_TEST, .host_data = true, .poison = true};
  test_device.ops = mfi_device_cpu()->ops;
  test_device.ops.stream_new = test_stream_new;
  test_device.ops.stream_free = test_stream_free;
  if (!mfi_device_register(&test_device)) return;
  mfi_cuda_emu_register_kernels(MFI_DEVICE_TEST);
  const char *broken = getenv("MOONFLOW_TEST_DEVICE_BROKEN");
  mfi_opdef *d = broken ? mfi_opdef_lookup(broken) : NULL;
  if (d) d->kernel[MFI_DEVICE_TEST] = broken_kernel;
  /* MOONFLOW_TEST_DEVICE_WITHOUT=<op type> leaves that op type without a
   * kernel here, so a spec can show placement refusing it. */
  const char *without = getenv("MOONFLOW_TEST_DEVICE_WITHOUT");
  if ((d = without ? mfi_opdef_lookup(without) : NULL)) d->kernel[MFI_DEVICE_TEST] = NULL;
  if (strcmp(getenv("MOONFLOW_TEST_DEVICE"), "prefer") == 0)
    mfi_prefer_device_type(MFI_DEVICE_TEST);
}
