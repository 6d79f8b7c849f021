/* mf_graph_export (summary_graph.c's GraphDef encoder) and TensorFlow's
 * protocol buffer text format for a GraphDef, printed generically over
 * protobuf-c's descriptors: fields in number order, repeated fields one
 * entry each, map entries as `key: ... value ...` messages, oneofs by
 * their set case, enums by name, bytes C-escaped as text_format does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/graph.pb-c.h"
#include "strbuf.h"
#include "summary.h"

int mf_graph_export(mf_graph *g, uint8_t **bytes, size_t *len, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  const char *bad = !g ? "g is NULL" : !bytes ? "bytes is NULL" : !len ? "len is NULL" : NULL;
  if (bad) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_graph_export: %s", bad);
    return 0;
  }
  *bytes = NULL, *len = 0;
  size_t n = 0;
  uint8_t *out = mfi_graph_def_full("mf_graph_export", g, &n, true, s);
  if (!out) return 0;
  *bytes = out, *len = n;
  return 1;
}

static void indent(mfi_strbuf *b, int depth)
{
  for (int i = 0; i < depth; i++) mfi_sb_str(b, "  ");
}

static void escaped(mfi_strbuf *b, const uint8_t *p, size_t n)
{
  mfi_sb_str(b, "\"");
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    switch (c) {
    case '\n': mfi_sb_str(b, "\\n"); break;
    case '\r': mfi_sb_str(b, "\\r"); break;
    case '\t': mfi_sb_str(b, "\\t"); break;
    case '"': mfi_sb_str(b, "\\\""); break;
    case '\'': mfi_sb_str(b, "\\'"); break;
    case '\\': mfi_sb_str(b, "\\\\"); break;
    default:
      if (c < 0x20 || c >= 0x7f)
        mfi_sb_fmt(b, "\\%03o", c);
      else
        mfi_sb_add(b, &c, 1);
    }
  }
  mfi_sb_str(b, "\"");
}

static void real(mfi_strbuf *b, double v, bool single)
{
  if (isnan(v))
    mfi_sb_str(b, "nan");
  else if (isinf(v))
    mfi_sb_str(b, v < 0 ? "-inf" : "inf");
  else
    mfi_sb_fmt(b, single ? "%.9g" : "%.17g", v);
}

static void message(mfi_strbuf *b, const ProtobufCMessage *m, int depth);

/* One value of field fd at p (a pointer to the element). */
static void value(mfi_strbuf *b, const ProtobufCFieldDescriptor *fd, const void *p, int depth)
{
  switch (fd->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: mfi_sb_fmt(b, "%d", *(const int32_t *)p); break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: mfi_sb_fmt(b, "%u", *(const uint32_t *)p); break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: mfi_sb_fmt(b, "%lld", (long long)*(const int64_t *)p); break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    mfi_sb_fmt(b, "%llu", (unsigned long long)*(const uint64_t *)p);
    break;
  case PROTOBUF_C_TYPE_FLOAT: real(b, *(const float *)p, true); break;
  case PROTOBUF_C_TYPE_DOUBLE: real(b, *(const double *)p, false); break;
  case PROTOBUF_C_TYPE_BOOL:
    mfi_sb_str(b, *(const protobuf_c_boolean *)p ? "true" : "false");
    break;
  case PROTOBUF_C_TYPE_ENUM: {
    int v = *(const int *)p;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
    if (ev)
      mfi_sb_str(b, ev->name);
    else
      mfi_sb_fmt(b, "%d", v);
    break;
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *str = *(char *const *)p;
    escaped(b, (const uint8_t *)(str ? str : ""), str ? strlen(str) : 0);
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *d = p;
    escaped(b, d->data, d->len);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    mfi_sb_str(b, "{\n");
    message(b, *(ProtobufCMessage *const *)p, depth + 1);
    indent(b, depth);
    mfi_sb_str(b, "}");
    break;
  }
}

static size_t type_size(ProtobufCType t)
{
  switch (t) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return 8;
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  default: return 4;
  }
}

/* Whether a proto3 singular field holds its default (then it is not printed). */
static bool is_default(const ProtobufCFieldDescriptor *fd, const void *p)
{
  switch (fd->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *str = *(char *const *)p;
    return !str || !str[0];
  }
  case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
  case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)p == NULL;
  case PROTOBUF_C_TYPE_FLOAT: {
    uint32_t u;
    memcpy(&u, p, 4);
    return u == 0;
  }
  case PROTOBUF_C_TYPE_DOUBLE: {
    uint64_t u;
    memcpy(&u, p, 8);
    return u == 0;
  }
  default: {
    size_t n = type_size(fd->type);
    static const uint8_t zero[8];
    return memcmp(p, zero, n) == 0;
  }
  }
}

static void message(mfi_strbuf *b, const ProtobufCMessage *m, int depth)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  for (unsigned f = 0; f < d->n_fields; f++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[f];
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + fd->quantifier_offset);
      const char *arr = *(char *const *)(base + fd->offset);
      for (size_t k = 0; k < n; k++) {
        indent(b, depth);
        mfi_sb_fmt(b, "%s%s", fd->name, fd->type == PROTOBUF_C_TYPE_MESSAGE ? " " : ": ");
        value(b, fd, arr + k * type_size(fd->type), depth);
        mfi_sb_str(b, "\n");
      }
      continue;
    }
    const void *p = base + fd->offset;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)(base + fd->quantifier_offset) != fd->id) continue;
      if (fd->type == PROTOBUF_C_TYPE_MESSAGE && !*(void *const *)p) continue;
    } else if (is_default(fd, p)) {
      continue;
    }
    indent(b, depth);
    mfi_sb_fmt(b, "%s%s", fd->name, fd->type == PROTOBUF_C_TYPE_MESSAGE ? " " : ": ");
    value(b, fd, p, depth);
    mfi_sb_str(b, "\n");
  }
}

int mf_graph_def_to_text(const void *bytes, size_t len, char **text, size_t *text_len, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  const char *bad = !bytes && len ? "bytes is NULL"
                    : !text       ? "text is NULL"
                    : !text_len   ? "text_len is NULL"
                                  : NULL;
  if (bad) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_graph_def_to_text: %s", bad);
    return 0;
  }
  *text = NULL, *text_len = 0;
  Tensorflow__GraphDef *gd =
      tensorflow__graph_def__unpack(NULL, len, len ? bytes : (const void *)"");
  if (!gd) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_graph_def_to_text: the bytes are not a GraphDef");
    return 0;
  }
  mfi_strbuf b = {0};
  message(&b, &gd->base, 0);
  tensorflow__graph_def__free_unpacked(gd, NULL);
  if (!b.oom && !b.p) mfi_sb_str(&b, "");
  if (b.oom) {
    free(b.p);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "mf_graph_def_to_text: out of memory");
    return 0;
  }
  *text = b.p, *text_len = b.n;
  return 1;
}
