/* The device layer through the C API: the device list, memory statistics
 * and trimming, kernel introspection, and placement with and without soft
 * placement. */
#include "check.h"

static void test_devices(void)
{
  CHECK(mf_device_count() >= 1);
  CHECK(strcmp(mf_device_name(0), "/job:localhost/replica:0/task:0/device:CPU:0") == 0);
  CHECK(strcmp(mf_device_type(0), "CPU") == 0);
  CHECK(mf_device_name(mf_device_count()) == NULL);
  int gpus = 0;
  for (int i = 0; i < mf_device_count(); i++) gpus += strcmp(mf_device_type(i), "GPU") == 0;
  CHECK(gpus == mf_gpu_count());
  CHECK(strcmp(mf_kernel_backend_name(0), "cpu") == 0);
  CHECK(mf_kernel_backend_name(-1) == NULL);
  CHECK(mf_op_type_has_kernel("MatMul", "cpu"));
  CHECK(!mf_op_type_has_kernel("MatMul", "no-such-backend"));
  CHECK(!mf_op_type_has_kernel("NoSuchOp", "cpu"));
  mf_memory_stats st;
  CHECK(!mf_device_memory_stats(mf_device_count(), &st));
}

static void test_memory_stats(void)
{
  mf_status *s = mf_status_new();
  mf_memory_stats before, during, after;
  CHECK(mf_device_memory_stats(0, &before));
  int64_t dims[2] = {512, 512};
  mf_tensor *t = mf_tensor_new(MF_FLOAT64, 2, dims, s); /* 2 MiB */
  CHECK_OK(s);
  mf_device_memory_stats(0, &during);
  CHECK(during.bytes_in_use >= before.bytes_in_use + 512 * 512 * 8);
  CHECK(during.peak_bytes_in_use >= during.bytes_in_use);
  mf_tensor_delete(t);
  mf_device_memory_stats(0, &after);
  CHECK(after.bytes_in_use == before.bytes_in_use);
  mf_allocator_trim();
  mf_device_memory_stats(0, &after);
  CHECK(after.bytes_cached == 0);
  mf_status_delete(s);
}

/* An op asking for a GPU that does not exist: an error naming the op and
 * the device, unless soft placement lets it run on the CPU. */
static void test_placement(void)
{
  if (mf_gpu_count() > 0) return; /* /gpu:0 exists there */
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t dims[1] = {3};
  float v[3] = {1, -2, 3};
  mf_output x = const_f32(g, "x", 1, dims, v, s);
  mf_op_desc *d = mf_op_begin(g, "Neg", "neg");
  mf_op_add_input(d, x);
  mf_op_set_device(d, "/gpu:0");
  mf_output y = {mf_op_finish(d, s), 0};
  CHECK_OK(s);
  CHECK(strcmp(mf_op_device(y.op), "/device:GPU:0") == 0);

  mf_session *sess = mf_session_new(g, NULL, s);
  mf_tensor *out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &y, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Neg 'neg'");
  CHECK(strstr(mf_status_message(s), "/device:GPU:0") != NULL);
  CHECK(out == NULL);
  mf_session_delete(sess);

  mf_session_config c;
  mf_session_config_init(&c);
  c.allow_soft_placement = 1;
  sess = mf_session_new(g, &c, s);
  mf_session_run(sess, NULL, NULL, 0, &y, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  if (out) {
    const float *o = mf_tensor_data(out);
    CHECK(o[0] == -1 && o[1] == 2 && o[2] == -3);
  }
  mf_tensor_delete(out);
  mf_session_delete(sess);

  d = mf_op_begin(g, "Neg", "bad");
  mf_op_add_input(d, x);
  mf_op_set_device(d, "/device:XPU:0");
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "unknown device type 'XPU'");
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* On a machine with a GPU: values cross to /gpu:0 and back through ops
 * whose kernels only pass references (Identity, Reshape, variables), a
 * variable lives in GPU memory, and a steady loop allocates nothing new. */
static void test_gpu_copies(void)
{
  if (mf_gpu_count() == 0) return;
  int gpu = -1;
  for (int i = 0; i < mf_device_count() && gpu < 0; i++)
    if (strcmp(mf_device_type(i), "GPU") == 0) gpu = i;
  CHECK(gpu > 0);
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t dims[2] = {64, 32}, flat[1] = {64 * 32};
  mf_output x = placeholder(g, "x", MF_FLOAT32, 2, dims, HERE, s);
  mf_op_desc *d = mf_op_begin(g, "Identity", "on_gpu");
  mf_op_add_input(d, x);
  mf_op_set_device(d, "/gpu:0");
  mf_output id = {mf_op_finish(d, s), 0};
  d = mf_op_begin(g, "Reshape", "flat");
  mf_op_add_input(d, id);
  mf_op_set_attr_shape(d, "shape", flat, 1);
  mf_op_set_device(d, "/device:GPU:0");
  mf_output y = {mf_op_finish(d, s), 0};
  CHECK_OK(s);
  float *v = malloc(sizeof(float) * 64 * 32);
  for (int i = 0; i < 64 * 32; i++) v[i] = (float)rand() / RAND_MAX - 0.5f;
  mf_tensor *feed = tensor_f32(2, dims, v, s);
  mf_session *sess = mf_session_new(g, NULL, s);
  mf_memory_stats st0, st1;
  for (int step = 0; step < 20; step++) {
    if (step == 5) mf_device_memory_stats(gpu, &st0);
    mf_tensor *out = NULL;
    mf_session_run(sess, &x, &feed, 1, &y, &out, 1, NULL, 0, s);
    CHECK_OK(s);
    CHECK(out && mf_tensor_numel(out) == 64 * 32 &&
          memcmp(mf_tensor_data(out), v, 4 * 64 * 32) == 0);
    mf_tensor_delete(out);
  }
  mf_device_memory_stats(gpu, &st1);
  CHECK(st1.num_allocs == st0.num_allocs); /* no cudaMalloc in a steady loop */
  CHECK(st1.peak_bytes_in_use >= 64 * 32 * 4);
  mf_tensor_delete(feed);
  mf_session_delete(sess);
  mf_graph_delete(g);
  free(v);
  mf_status_delete(s);
}

int main(void)
{
  test_devices();
  test_memory_stats();
  test_placement();
  test_gpu_copies();
  return check_report("test_devices");
}
