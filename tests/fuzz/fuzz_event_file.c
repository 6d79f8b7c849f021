/* libFuzzer target: bytes we parse from outside in the summary code. The
 * input is walked as an event file (TFRecord frames with masked CRC-32Cs,
 * each record parsed as an Event, as tests read our files back), and also
 * taken as a serialized Event (re-encoded as add_event_bytes does: stable),
 * as a serialized Summary (what FileWriter:add_summary and
 * MergeSummary accept from a caller) and as a SummaryMetadata (the text
 * summary's metadata input). Whatever is accepted must re-encode. */
#include "../../csrc/summary.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool each(void *ctx, const uint8_t *rec, size_t len)
{
  mfi_event_info info;
  (void)ctx;
  if (mfi_event_info_parse(rec, len, &info) && info.tag[sizeof info.tag - 1] != 0) abort();
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  mf_status *s = mf_status_new();
  int64_t n = mfi_tfrecord_walk("fuzz", data, size, true, each, NULL, s);
  if (n < 0 && mf_status_code(s) == MF_OK) abort(); /* a refusal sets the status */
  mf_status_set(s, MF_OK, "");

  /* as a Summary, merged with itself split in two */
  bool whole = mfi_summary_check("fuzz", data, size, s);
  if (!whole && mf_status_code(s) == MF_OK) abort();
  mf_status_set(s, MF_OK, "");
  const void *parts[2] = {data, data + size / 2};
  size_t lens[2] = {size / 2, size - size / 2}, out_n = 0;
  uint8_t *m = mfi_summary_merge("fuzz", 2, parts, lens, &out_n, s);
  if (m && (out_n != size || memcmp(m, data, size) != 0)) abort();
  if (m && !mfi_summary_check("fuzz", m, out_n, s)) abort();
  free(m);
  mf_status_set(s, MF_OK, "");

  /* as an Event, as mf_summary_writer_add_event_bytes writes it again */
  uint8_t *ev = mfi_event_reencode(data, size, &out_n);
  if (ev) {
    size_t again_n = 0;
    uint8_t *again = mfi_event_reencode(ev, out_n, &again_n);
    if (!again || again_n != out_n || memcmp(again, ev, out_n) != 0) abort();
    free(again);
  }
  free(ev);

  /* as a SummaryMetadata for a text summary */
  const char *str = "x";
  size_t one = 1;
  uint8_t *t = mfi_summary_strings("fuzz", "tag", data, size, 0, NULL, &str, &one, &out_n, s);
  if (t && !mfi_summary_check("fuzz", t, out_n, s)) abort();
  if (!t && size && mf_status_code(s) == MF_OK) abort();
  free(t);
  mf_status_delete(s);
  return 0;
}
