/* libFuzzer target: device names as users and C hosts write them
 * (tf.device, mf_op_set_device) through the parser that checks them when
 * an op is created. Whatever the bytes, it must answer yes with a spec in
 * range, or no with a message, and never read past the string. */
#include "../../csrc/internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *str = malloc(size + 1);
  if (!str) return 0;
  memcpy(str, data, size);
  str[size] = 0; /* a C string: stops at the first NUL, as the API does */
  mfi_device_spec spec;
  char err[256] = "";
  if (mfi_device_spec_parse(str, &spec, err, sizeof err)) {
    if (spec.type < -1 || spec.type >= MFI_NUM_DEVICE_TYPES || spec.index < -1) abort();
    if (spec.type < 0 && spec.index >= 0) abort(); /* an index only comes with a type */
  } else if (!err[0]) {
    abort(); /* a refusal always says why */
  }
  free(str);
  return 0;
}
