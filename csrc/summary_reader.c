/* Reading event files back (tests and fuzzing): TFRecord frames checked
 * against their masked CRC-32Cs, and Events parsed with protobuf-c. */
/* protoc-c's initializer macros cast its const empty string to char *. */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "proto/event.pb-c.h"
#include "proto/graph.pb-c.h"
#include "summary.h"

static uint64_t rd64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint32_t rd32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int64_t mfi_tfrecord_walk(const char *what, const uint8_t *data, size_t n, bool allow_torn_tail,
                          bool (*fn)(void *ctx, const uint8_t *rec, size_t len), void *ctx,
                          mf_status *s)
{
  size_t at = 0;
  int64_t count = 0;
  while (at < n) {
    size_t left = n - at;
    if (left < 12) goto torn;
    uint64_t len = rd64(data + at);
    if (rd32(data + at + 8) != mfi_crc32c_masked(data + at, 8)) {
      mfi_set(s, MF_INVALID_ARGUMENT, "%s: record at byte %zu: length CRC mismatch", what, at);
      return -1;
    }
    if (len > left - 12 || left - 12 - len < 4) goto torn;
    const uint8_t *rec = data + at + 12;
    if (rd32(rec + len) != mfi_crc32c_masked(rec, (size_t)len)) {
      mfi_set(s, MF_INVALID_ARGUMENT, "%s: record at byte %zu: data CRC mismatch", what, at);
      return -1;
    }
    count++;
    if (fn && !fn(ctx, rec, (size_t)len)) return count;
    at += 12 + (size_t)len + 4;
  }
  return count;
torn:
  if (allow_torn_tail) return count;
  mfi_set(s, MF_INVALID_ARGUMENT, "%s: record at byte %zu is cut short (%zu bytes left)", what, at,
          n - at);
  return -1;
}

bool mfi_event_info_parse(const uint8_t *rec, size_t len, mfi_event_info *info)
{
  memset(info, 0, sizeof *info);
  Tensorflow__Event *ev = tensorflow__event__unpack(NULL, len, rec);
  if (!ev) return false;
  info->wall_time = ev->wall_time;
  info->step = ev->step;
  bool ok = true;
  switch (ev->what_case) {
  case TENSORFLOW__EVENT__WHAT_FILE_VERSION: info->kind = 'v'; break;
  case TENSORFLOW__EVENT__WHAT_GRAPH_DEF: {
    info->kind = 'g';
    Tensorflow__GraphDef *gd =
        tensorflow__graph_def__unpack(NULL, ev->graph_def.len, ev->graph_def.data);
    if (gd)
      info->graph_nodes = (int64_t)gd->n_node, tensorflow__graph_def__free_unpacked(gd, NULL);
    else
      ok = false;
    break;
  }
  case TENSORFLOW__EVENT__WHAT_SUMMARY: {
    info->kind = 's';
    const Tensorflow__Summary *sum = ev->summary;
    info->nvalues = (int)sum->n_value;
    if (sum->n_value) {
      const Tensorflow__Summary__Value *v = sum->value[0];
      snprintf(info->tag, sizeof info->tag, "%s", v->tag);
      switch (v->value_case) {
      case TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE:
        info->value_kind = 'f', info->value = v->simple_value;
        break;
      case TENSORFLOW__SUMMARY__VALUE__VALUE_HISTO:
        info->value_kind = 'h', info->value = v->histo->num;
        break;
      case TENSORFLOW__SUMMARY__VALUE__VALUE_IMAGE:
        info->value_kind = 'i', info->value = (double)v->image->width * v->image->height;
        break;
      case TENSORFLOW__SUMMARY__VALUE__VALUE_TENSOR:
        info->value_kind = 't';
        info->value = v->tensor->n_string_val ? (double)v->tensor->string_val[0].len : 0;
        break;
      default: break;
      }
    }
    break;
  }
  default: info->kind = '?'; break;
  }
  tensorflow__event__free_unpacked(ev, NULL);
  return ok;
}

uint8_t *mfi_event_reencode(const uint8_t *bytes, size_t n, size_t *len)
{
  Tensorflow__Event *ev = tensorflow__event__unpack(NULL, n, bytes);
  if (!ev) return NULL;
  mfi_proto_strip_unknown(&ev->base);
  *len = tensorflow__event__get_packed_size(ev);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (buf) tensorflow__event__pack(ev, buf);
  tensorflow__event__free_unpacked(ev, NULL);
  return buf;
}
