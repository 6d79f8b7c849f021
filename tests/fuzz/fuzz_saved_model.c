/* libFuzzer target: mf_model_load over a saved model directory whose two
 * files come from the input: a 4-byte little-endian length n, then n bytes
 * of saved_model.pb, then the rest as variables/variables.safetensors. A
 * load either succeeds (the graph, session and every signature's tensors
 * are then walked) or fails with a status naming mf_model_load or the file.
 * The seed corpus (tests/fuzz/corpus/saved_model) holds models moonflow's
 * tf.saved_model writes: tests/fuzz/make_saved_model_seeds.lua. */
#include "moonflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], pb[96], vars_dir[80], vars[128];

static void remove_files(void)
{
  unlink(pb), unlink(vars);
  rmdir(vars_dir), rmdir(dir);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(p, 1, n, f) != n)) abort();
  fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!dir[0]) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%.40s/mf_fuzz_model.%ld", tmp, (long)getpid());
    snprintf(pb, sizeof pb, "%s/saved_model.pb", dir);
    snprintf(vars_dir, sizeof vars_dir, "%s/variables", dir);
    snprintf(vars, sizeof vars, "%s/variables.safetensors", vars_dir);
    if ((mkdir(dir, 0700) && access(dir, W_OK)) ||
        (mkdir(vars_dir, 0700) && access(vars_dir, W_OK)))
      abort();
    atexit(remove_files);
  }
  if (size < 4) return 0;
  size_t n = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
  if (n > size - 4) n = size - 4;
  write_file(pb, data + 4, n);
  write_file(vars, data + 4 + n, size - 4 - n);
  mf_status *s = mf_status_new();
  mf_model *m = mf_model_load(dir, NULL, 0, NULL, s);
  if (!m) {
    if (mf_status_code(s) == MF_OK ||
        (!strstr(mf_status_message(s), "mf_model_load") && !strstr(mf_status_message(s), dir)))
      abort();
  } else {
    if (!mf_model_graph(m) || !mf_model_session(m)) abort();
    for (int i = 0; i < mf_model_num_signatures(m); i++) {
      const mf_signature *sig = mf_model_signature(m, i);
      if (mf_model_signature_by_key(m, mf_signature_key(sig)) != sig) abort();
      for (int side = 0; side < 2; side++)
        for (int j = 0; j < mf_signature_num_tensors(sig, (mf_sig_side)side); j++) {
          mf_output o = mf_signature_tensor(sig, (mf_sig_side)side, j);
          const char *name = mf_signature_tensor_name(sig, (mf_sig_side)side, j);
          if (!o.op || mf_signature_find(sig, (mf_sig_side)side, name).op != o.op) abort();
        }
    }
  }
  mf_model_delete(m);
  mf_status_delete(s);
  return 0;
}
