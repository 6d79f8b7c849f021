/* libFuzzer target: checkpoint files (safetensors: an 8-byte header length,
 * a JSON header, raw data) read by mf_checkpoint_restore. A file is parsed
 * and verified as hostile input; whatever it accepts must load every tensor
 * within the buffer. */
#include "../../csrc/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  mf_status *s = mf_status_new();
  mfi_st_file f = {0};
  if (mfi_st_read(&f, "fuzz.safetensors", data, size, s)) {
    for (int i = 0; i < f.n; i++) {
      const mfi_st_entry *e = &f.e[i];
      if (e->end < e->begin || (size_t)(e->end - e->begin) > size) abort();
      void *dst = malloc(e->end - e->begin + 1);
      if (dst) mfi_st_load(&f, e, dst);
      free(dst);
      if (mfi_st_find(&f, e->name) == NULL && e->name_len == strlen(e->name)) abort();
    }
  } else if (mf_status_code(s) == MF_OK) {
    abort(); /* a refusal always sets the status */
  }
  mfi_st_free(&f);
  mf_status_delete(s);
  return 0;
}
