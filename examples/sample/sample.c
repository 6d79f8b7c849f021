/* A C host with no Lua: loads the char-RNN's sampling graph that
 * `scripts/char_rnn.lua --export_dir DIR` (or `scripts/sample.lua
 * --export_dir DIR`) wrote, and prints generated text: exactly what
 * scripts/sample.lua prints from the same checkpoint with the seed the
 * model was exported with.
 *
 *   build/examples/sample DIR [--length N] [--start_text TEXT] [--temperature T]
 *
 * The saved model's signatures: "serving_default" runs one step (input
 * "id": this step's character, 1-based, by default the one sampled last;
 * "temperature"; output "next_id") and "vocab" gives the characters of the
 * ids. The RNN state lives in the session between runs. */
#include <moonflow.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  mf_session *sess;
  mf_output id, temperature, next_id;
  mf_tensor *temp_value; /* NULL: the model's own temperature */
} sampler;

static int fail(const char *what, mf_status *s)
{
  fprintf(stderr, "sample: %s: %s\n", what, mf_status_message(s));
  return 1;
}

/* One step: feeds `id` when > 0; returns the sampled id (1-based), or 0. */
static int32_t step(const sampler *sp, int32_t id, mf_status *s)
{
  mf_output feeds[2];
  mf_tensor *values[2];
  int nfeeds = 0;
  mf_tensor *id_value = NULL;
  if (id > 0) {
    int64_t dims[2] = {1, 1};
    id_value = mf_tensor_new(MF_INT32, 2, dims, s);
    if (!id_value) return 0;
    *(int32_t *)mf_tensor_mutable_data(id_value, s) = id;
    feeds[nfeeds] = sp->id, values[nfeeds++] = id_value;
  }
  if (sp->temp_value) feeds[nfeeds] = sp->temperature, values[nfeeds++] = sp->temp_value;
  mf_tensor *out = NULL;
  mf_session_run(sp->sess, feeds, values, nfeeds, &sp->next_id, &out, 1, NULL, 0, s);
  mf_tensor_delete(id_value);
  if (mf_status_code(s) != MF_OK) return 0;
  int32_t next = 0;
  if (mf_tensor_dtype(out) == MF_INT32 && mf_tensor_numel(out) == 1)
    next = *(const int32_t *)mf_tensor_data(out);
  if (next <= 0)
    mf_status_set(s, MF_INVALID_ARGUMENT,
                  "next_id is not one positive int32: not a char-RNN sampler");
  mf_tensor_delete(out);
  return next > 0 ? next : 0;
}

/* The vocabulary: vocab[i - 1] is the character of id i; NULL on error. */
static mf_tensor *load_vocab(const mf_model *m, mf_status *s)
{
  const mf_signature *sig = mf_model_signature_by_key(m, "vocab");
  mf_output v = mf_signature_find(sig, MF_SIG_OUTPUTS, "vocab");
  if (!v.op) {
    mf_status_set(s, MF_NOT_FOUND, "the model has no 'vocab' signature with a 'vocab' output");
    return NULL;
  }
  mf_tensor *vocab = NULL;
  mf_session_run(mf_model_session(m), NULL, NULL, 0, &v, &vocab, 1, NULL, 0, s);
  if (vocab && mf_tensor_dtype(vocab) != MF_STRING) {
    mf_tensor_delete(vocab);
    mf_status_set(s, MF_INVALID_ARGUMENT, "vocab is not a string tensor");
    return NULL;
  }
  return vocab;
}

static int32_t id_of(const mf_tensor *vocab, unsigned char c)
{
  for (int64_t i = 0; i < mf_tensor_numel(vocab); i++) {
    size_t len = 0;
    const char *ch = mf_tensor_string(vocab, i, &len);
    if (len == 1 && (unsigned char)ch[0] == c) return (int32_t)(i + 1);
  }
  return 0;
}

static int run(const mf_model *m, const char *start, long length, const double *temperature,
               mf_status *s)
{
  const mf_signature *sig = mf_model_signature_by_key(m, "serving_default");
  sampler sp = {mf_model_session(m), mf_signature_find(sig, MF_SIG_INPUTS, "id"),
                mf_signature_find(sig, MF_SIG_INPUTS, "temperature"),
                mf_signature_find(sig, MF_SIG_OUTPUTS, "next_id"), NULL};
  if (!sp.id.op || !sp.temperature.op || !sp.next_id.op) {
    fprintf(stderr, "sample: the model's serving_default signature lacks id, temperature or "
                    "next_id: not a char-RNN sampler\n");
    return 1;
  }
  mf_tensor *vocab = load_vocab(m, s);
  if (!vocab) return fail("vocab", s);
  if (temperature) {
    sp.temp_value = mf_tensor_new(MF_FLOAT32, 0, NULL, s);
    if (!sp.temp_value) return fail("temperature", s);
    *(float *)mf_tensor_mutable_data(sp.temp_value, s) = (float)*temperature;
  }
  /* Prime with the start text, or with a newline (else the first
   * character) that is not printed, as scripts/sample.lua does. */
  int32_t next = 0;
  int rc = 0;
  size_t n = strlen(start);
  for (size_t i = 0; i < n && !rc; i++) {
    int32_t id = id_of(vocab, (unsigned char)start[i]);
    if (!id) {
      fprintf(stderr, "sample: --start_text: byte %d ('%c') is not in the model's vocabulary\n",
              (unsigned char)start[i], start[i]);
      rc = 1;
    } else if (!(next = step(&sp, id, s))) {
      rc = fail("step", s);
    }
  }
  if (!rc && n == 0) {
    int32_t id = id_of(vocab, '\n');
    if (!(next = step(&sp, id ? id : 1, s))) rc = fail("step", s);
  }
  if (!rc) fputs(start, stdout);
  for (long i = 1; !rc && i <= length; i++) {
    size_t len = 0;
    const char *ch = mf_tensor_string(vocab, next - 1, &len);
    if (!ch) {
      fprintf(stderr, "sample: the model sampled id %d, outside its vocabulary\n", (int)next);
      rc = 1;
    } else {
      fwrite(ch, 1, len, stdout);
      if (i < length && !(next = step(&sp, 0, s))) rc = fail("step", s);
    }
  }
  if (!rc) putchar('\n');
  mf_tensor_delete(sp.temp_value);
  mf_tensor_delete(vocab);
  return rc;
}

static int usage(void)
{
  fprintf(stderr, "usage: sample DIR [--length N] [--start_text TEXT] [--temperature T]\n");
  return 2;
}

int main(int argc, char **argv)
{
  if (argc < 2 || argv[1][0] == '-') return usage();
  long length = 2000;
  const char *start = "";
  double temperature = 0;
  int has_temperature = 0;
  for (int i = 2; i < argc; i++) {
    char *end = NULL;
    if (i + 1 >= argc) return usage();
    if (!strcmp(argv[i], "--length")) {
      length = strtol(argv[++i], &end, 10);
      if (*end || length < 0) return usage();
    } else if (!strcmp(argv[i], "--start_text")) {
      start = argv[++i];
    } else if (!strcmp(argv[i], "--temperature")) {
      temperature = strtod(argv[++i], &end);
      if (*end || !(temperature > 0)) return usage();
      has_temperature = 1;
    } else {
      return usage();
    }
  }
  mf_status *s = mf_status_new();
  mf_model *m = mf_model_load(argv[1], NULL, 0, NULL, s);
  int rc = m ? run(m, start, length, has_temperature ? &temperature : NULL, s) : fail("load", s);
  mf_model_delete(m);
  mf_status_delete(s);
  return rc;
}
