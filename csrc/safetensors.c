/* Checkpoint files in the safetensors format (declared in safetensors.h).
 *
 * File layout (safetensors): an 8-byte little-endian header length N, then N
 * bytes of UTF-8 JSON, then the raw little-endian tensor data, row-major,
 * packed with no gaps. The header maps each tensor name to
 *   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * (offsets relative to the first data byte), plus "__metadata__", an object
 * of strings. We write the metadata
 *   "format":                "moonflow"
 *   "moonflow_crc32":        CRC-32 (zlib's) of all the data bytes, 8 lowercase hex digits
 *   "moonflow_header_crc32": CRC-32 of the canonical header description below
 * and pad the header with spaces to a multiple of 8 bytes, as the reference
 * writer does, so the data is aligned.
 *
 * Canonical header description (what moonflow_header_crc32 covers): the
 * line "moonflow-checkpoint-v1\n"; then per tensor, in bytewise name order,
 *   "<byte length of name>:<name> <DTYPE> <ndim> <d1> ... <dn> <begin> <end>\n"
 * (decimal numbers, single spaces; e.g. "1:w F32 2 2 3 0 24\n"); then
 * "data_crc32=<the moonflow_crc32 string as stored>\n". The length prefix
 * keeps any name (spaces, newlines) unambiguous, and covering the data CRC
 * means a corrupted data checksum reads as a corrupted header.
 *
 * Reading treats the file as hostile: every length and offset is checked
 * before use and the JSON reader is strict and bounded. Files from other
 * tools (without the moonflow checksums) read without the checksum check. */
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "fileio.h"
#include "strbuf.h"

/* The reference implementation refuses headers above 100 MB too. */
#define MAX_HEADER ((uint64_t)100 << 20)

/* ---------------------------------------------------------------- dtypes */

static const char *const st_names[MF_NUM_DTYPES] = {"F32", "F64", "I32", "I64", "BOOL", "U8", NULL};

/* Every safetensors dtype with its size, so offsets of tensors we cannot load
 * are still checked; loaded tensors must be one of ours. */
static const struct {
  const char *name;
  size_t size;
} st_all[] = {{"F32", 4}, {"F64", 8}, {"I32", 4},  {"I64", 8},     {"BOOL", 1},
              {"U8", 1},  {"I8", 1},  {"I16", 2},  {"U16", 2},     {"U32", 4},
              {"U64", 8}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};

static bool host_little_endian(void)
{
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* Reverses each element's bytes (big-endian hosts only). */
static void swap_elems(void *data, size_t nbytes, size_t size)
{
  unsigned char *p = data;
  for (size_t i = 0; i + size <= nbytes; i += size)
    for (size_t a = 0, b = size - 1; a < b; a++, b--) {
      unsigned char x = p[i + a];
      p[i + a] = p[i + b];
      p[i + b] = x;
    }
}

/* ---------------------------------------------------------------- header model */

static int cmp_name(const void *a, const void *b)
{
  const mfi_st_entry *x = a, *y = b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static int cmp_offset(const void *a, const void *b)
{
  const mfi_st_entry *const *x = a, *const *y = b;
  if ((*x)->begin != (*y)->begin) return (*x)->begin < (*y)->begin ? -1 : 1;
  if ((*x)->end != (*y)->end) return (*x)->end < (*y)->end ? -1 : 1;
  return 0;
}

/* The canonical description covered by moonflow_header_crc32 (see the top
 * of this file). Entries must be sorted by name. */
static void canonical(mfi_strbuf *b, const mfi_st_entry *e, int n, const char *data_crc)
{
  mfi_sb_str(b, "moonflow-checkpoint-v1\n");
  for (int i = 0; i < n; i++) {
    mfi_sb_fmt(b, "%zu:", e[i].name_len);
    mfi_sb_add(b, e[i].name, e[i].name_len);
    mfi_sb_fmt(b, " %s %d", e[i].dtype, e[i].ndim);
    for (int d = 0; d < e[i].ndim; d++) mfi_sb_fmt(b, " %lld", (long long)e[i].dims[d]);
    mfi_sb_fmt(b, " %llu %llu\n", (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
  }
  mfi_sb_fmt(b, "data_crc32=%s\n", data_crc);
}

/* ---------------------------------------------------------------- reading */

/* Reads one tensor entry; false with msg set on error. */
static bool read_entry(const mfi_json *m, mfi_st_entry *e, char *msg, size_t msz)
{
  e->name = m->key, e->name_len = m->key_len;
  if (m->type != MFI_JSON_OBJECT) {
    snprintf(msg, msz, "entry '%s' is not an object", m->key);
    return false;
  }
  int seen[3] = {0};
  for (const mfi_json *f = m->first; f; f = f->next) {
    int k = !strcmp(f->key, "dtype")          ? 0
            : !strcmp(f->key, "shape")        ? 1
            : !strcmp(f->key, "data_offsets") ? 2
                                              : -1;
    if (k < 0 || seen[k]++) {
      snprintf(msg, msz, "entry '%s' has %s field '%s'", m->key,
               k < 0 ? "an unknown" : "a repeated", f->key);
      return false;
    }
  }
  const mfi_json *dt = mfi_json_member(m, "dtype"), *sh = mfi_json_member(m, "shape"),
                 *off = mfi_json_member(m, "data_offsets");
  if (!dt || dt->type != MFI_JSON_STRING) {
    snprintf(msg, msz, "entry '%s' has no string \"dtype\"", m->key);
    return false;
  }
  e->dtype = dt->str, e->elem_size = 0, e->loadable = -1;
  for (size_t i = 0; i < sizeof st_all / sizeof st_all[0]; i++)
    if (!strcmp(dt->str, st_all[i].name)) e->elem_size = st_all[i].size;
  for (int i = 0; i < MF_NUM_DTYPES; i++)
    if (st_names[i] && !strcmp(dt->str, st_names[i])) e->loadable = i;
  if (!e->elem_size) {
    snprintf(msg, msz, "entry '%s' has an unknown dtype \"%.40s\"", m->key, dt->str);
    return false;
  }
  if (!sh || sh->type != MFI_JSON_ARRAY || sh->count > MFI_ST_MAX_DIMS) {
    snprintf(msg, msz, "entry '%s' has no \"shape\" list (of at most %d dimensions)", m->key,
             MFI_ST_MAX_DIMS);
    return false;
  }
  e->ndim = sh->count;
  uint64_t bytes = e->elem_size;
  bool overflow = false;
  int d = 0;
  for (const mfi_json *x = sh->first; x; x = x->next, d++) {
    if (x->type != MFI_JSON_INT || x->num < 0) {
      snprintf(msg, msz, "entry '%s' has a shape that is not a list of non-negative integers",
               m->key);
      return false;
    }
    e->dims[d] = x->num;
    overflow |= __builtin_mul_overflow(bytes, (uint64_t)x->num, &bytes);
  }
  if (!off || off->type != MFI_JSON_ARRAY || off->count != 2 || off->first->type != MFI_JSON_INT ||
      off->first->next->type != MFI_JSON_INT || off->first->num < 0 || off->first->next->num < 0) {
    snprintf(msg, msz, "entry '%s' has no \"data_offsets\" [begin, end] of non-negative integers",
             m->key);
    return false;
  }
  e->begin = (uint64_t)off->first->num, e->end = (uint64_t)off->first->next->num;
  if (e->end < e->begin) {
    snprintf(msg, msz, "entry '%s' has data_offsets [%llu, %llu] that end before they begin",
             m->key, (unsigned long long)e->begin, (unsigned long long)e->end);
    return false;
  }
  if (overflow) {
    snprintf(msg, msz, "entry '%s' has a shape of more than 2^64 bytes", m->key);
    return false;
  }
  if (bytes != e->end - e->begin) {
    snprintf(msg, msz,
             "entry '%s' has data_offsets [%llu, %llu] (%llu bytes) but its dtype %s and shape "
             "need %llu bytes",
             m->key, (unsigned long long)e->begin, (unsigned long long)e->end,
             (unsigned long long)(e->end - e->begin), e->dtype, (unsigned long long)bytes);
    return false;
  }
  return true;
}

/* Checks the header's structure against a data buffer of data_len bytes. */
static bool read_header(const mfi_json *root, uint64_t data_len, mfi_st_file *h, char *msg,
                        size_t msz)
{
  if (root->type != MFI_JSON_OBJECT) {
    snprintf(msg, msz, "the header is not a JSON object");
    return false;
  }
  bool oom = false;
  const char *dup = mfi_json_duplicate_key(root, &oom);
  h->e = oom ? NULL : calloc((size_t)root->count + 1, sizeof *h->e);
  if (!h->e) {
    snprintf(msg, msz, "out of memory");
    return false;
  }
  if (dup) {
    snprintf(msg, msz, "the header names '%s' twice", dup);
    return false;
  }
  for (const mfi_json *m = root->first; m; m = m->next) {
    if (!strcmp(m->key, "__metadata__")) {
      if (m->type != MFI_JSON_OBJECT) {
        snprintf(msg, msz, "__metadata__ is not an object");
        return false;
      }
      if ((dup = mfi_json_duplicate_key(m, &oom)) || oom) {
        if (oom)
          snprintf(msg, msz, "out of memory");
        else
          snprintf(msg, msz, "__metadata__ names '%s' twice", dup);
        return false;
      }
      for (const mfi_json *x = m->first; x; x = x->next) {
        if (x->type != MFI_JSON_STRING) {
          snprintf(msg, msz, "__metadata__ value '%s' is not a string", x->key);
          return false;
        }
        if (!strcmp(x->key, "moonflow_crc32")) h->data_crc = x->str;
        if (!strcmp(x->key, "moonflow_header_crc32")) h->header_crc = x->str;
        if (!strcmp(x->key, "format") && !strcmp(x->str, "moonflow")) h->ours = true;
      }
      continue;
    }
    if (!read_entry(m, &h->e[h->n], msg, msz)) return false;
    if (h->e[h->n].end > data_len) {
      snprintf(msg, msz,
               "entry '%s' has data_offsets [%llu, %llu] beyond the %llu data bytes (is the "
               "file truncated?)",
               m->key, (unsigned long long)h->e[h->n].begin, (unsigned long long)h->e[h->n].end,
               (unsigned long long)data_len);
      return false;
    }
    h->n++;
  }
  /* The tensors must tile the data exactly, as the format requires. */
  const mfi_st_entry **by_off = malloc(sizeof *by_off * ((size_t)h->n + 1));
  if (!by_off) {
    snprintf(msg, msz, "out of memory");
    return false;
  }
  for (int i = 0; i < h->n; i++) by_off[i] = &h->e[i];
  qsort(by_off, (size_t)h->n, sizeof *by_off, cmp_offset);
  uint64_t at = 0;
  bool ok = true;
  for (int i = 0; ok && i < h->n; i++) {
    if (by_off[i]->begin != at) {
      snprintf(msg, msz,
               "entry '%s' starts at data offset %llu, expected %llu (tensors overlap "
               "or leave a gap)",
               by_off[i]->name, (unsigned long long)by_off[i]->begin, (unsigned long long)at);
      ok = false;
    }
    at = by_off[i]->end;
  }
  free(by_off);
  if (!ok) return false;
  if (at != data_len) {
    snprintf(msg, msz,
             "the tensors cover %llu data bytes but the file holds %llu (is the file truncated "
             "or appended to?)",
             (unsigned long long)at, (unsigned long long)data_len);
    return false;
  }
  qsort(h->e, (size_t)h->n, sizeof *h->e, cmp_name);
  return true;
}

/* 8 hex digits, as the checksums are stored. */
static bool parse_crc(const char *s, uint32_t *v)
{
  if (strlen(s) != 8 || strspn(s, "0123456789abcdefABCDEF") != 8) return false;
  *v = (uint32_t)strtoul(s, NULL, 16);
  return true;
}

/* Compares the stored checksums (if any) with the file's header and data. */
static bool check_crcs(const char *path, const mfi_st_file *h, uint64_t data_len, mf_status *s)
{
  uint32_t want_h = 0, want_d;
  if (!h->data_crc || !parse_crc(h->data_crc, &want_d) || (h->ours && !h->header_crc) ||
      (h->header_crc && !parse_crc(h->header_crc, &want_h))) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "checkpoint '%s' is corrupted: its checksum metadata is malformed", path);
    return false;
  }
  if (h->header_crc) {
    mfi_strbuf c = {0};
    canonical(&c, h->e, h->n, h->data_crc);
    uint32_t got = c.oom ? 0 : mfi_crc32(0, c.p, c.n);
    bool oom = c.oom;
    free(c.p);
    if (oom) {
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading checkpoint '%s'", path);
      return false;
    }
    if (got != want_h) {
      mfi_set(s, MF_INVALID_ARGUMENT,
              "checkpoint '%s' is corrupted: header checksum mismatch (stored %08x, computed "
              "%08x)",
              path, want_h, got);
      return false;
    }
  }
  uint32_t got = mfi_crc32(0, h->data, (size_t)data_len);
  if (got != want_d) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "checkpoint '%s' is corrupted: data checksum mismatch (stored %08x, computed %08x)",
            path, want_d, got);
    return false;
  }
  return true;
}

bool mfi_st_read(mfi_st_file *f, const char *path, const unsigned char *buf, size_t size,
                 mf_status *s)
{
  char msg[512] = "";
  if (size < 8) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "'%s' is not a safetensors checkpoint: the file is %zu bytes, too short for the "
            "8-byte header length",
            path, size);
    return false;
  }
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
  if (hlen > size - 8 || hlen > MAX_HEADER || hlen < 2) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "'%s' is not a safetensors checkpoint (or is truncated): header length %llu %s", path,
            (unsigned long long)hlen,
            hlen < 2          ? "is too small"
            : hlen > size - 8 ? "exceeds the file size"
                              : "exceeds the 100 MB limit");
    return false;
  }
  if (buf[8] != '{') {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "'%s' is not a safetensors checkpoint: the header does not start with '{'", path);
    return false;
  }
  const mfi_json *root = mfi_json_parse(&f->json, (const char *)buf + 8, (size_t)hlen);
  if (!root) {
    if (f->json.oom)
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading checkpoint '%s'", path);
    else
      mfi_set(s, MF_INVALID_ARGUMENT,
              "'%s' is not a valid safetensors checkpoint: the header is not valid JSON (%s of "
              "the header)",
              path, f->json.err);
    return false;
  }
  f->data = buf + 8 + hlen;
  uint64_t data_len = size - 8 - hlen;
  if (!read_header(root, data_len, f, msg, sizeof msg)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "'%s' is not a valid safetensors checkpoint: %s", path, msg);
    return false;
  }
  if (f->header_crc || f->data_crc || f->ours) return check_crcs(path, f, data_len, s);
  return true;
}

void mfi_st_free(mfi_st_file *f)
{
  free(f->e);
  mfi_json_free(&f->json);
}

const mfi_st_entry *mfi_st_find(const mfi_st_file *f, const char *name)
{
  mfi_st_entry key = {.name = name, .name_len = strlen(name)};
  return bsearch(&key, f->e, (size_t)f->n, sizeof *f->e, cmp_name);
}

void mfi_st_load(const mfi_st_file *f, const mfi_st_entry *e, void *dst)
{
  size_t nb = (size_t)(e->end - e->begin);
  if (nb) memcpy(dst, f->data + e->begin, nb);
  if (!host_little_endian()) swap_elems(dst, nb, e->elem_size);
}

/* ---------------------------------------------------------------- writing */

typedef struct {
  const mfi_strbuf *hdr;
  const mfi_st_tensor *t;
  int n;
} file_body;

/* Header length, header, then each tensor's little-endian bytes. */
static bool write_body(FILE *f, void *ctx)
{
  const file_body *b = ctx;
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)b->hdr->n >> (8 * i));
  bool ok = mfi_fwrite_all(f, len, 8) && mfi_fwrite_all(f, b->hdr->p, b->hdr->n);
  bool le = host_little_endian();
  for (int i = 0; ok && i < b->n; i++) {
    const mf_tensor *t = b->t[i].t;
    size_t nb = mf_tensor_nbytes(t);
    if (le) {
      ok = mfi_fwrite_all(f, mf_tensor_data(t), nb);
    } else {
      void *copy = malloc(nb ? nb : 1);
      if (!copy) {
        errno = ENOMEM;
        return false;
      }
      memcpy(copy, mf_tensor_data(t), nb);
      swap_elems(copy, nb, mf_dtype_size(mf_tensor_dtype(t)));
      ok = mfi_fwrite_all(f, copy, nb);
      free(copy);
    }
  }
  return ok;
}

bool mfi_st_write(const char *path, const mfi_st_tensor *t, int n, mf_status *s)
{
  for (int i = 0; i < n; i++)
    if (mf_tensor_dtype(t[i].t) == MF_STRING) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot save '%s' to '%s': safetensors has no string dtype",
              t[i].name, path);
      return false;
    }
  mfi_strbuf hdr = {0}, canon = {0};
  mfi_st_entry *ents = calloc((size_t)n + 1, sizeof *ents);
  if (!ents) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    return false;
  }
  uint32_t data_crc = 0;
  bool le = host_little_endian();
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    size_t nb = mf_tensor_nbytes(t[i].t);
    mf_dtype dt = mf_tensor_dtype(t[i].t);
    mfi_st_entry *e = &ents[i];
    e->name = t[i].name, e->name_len = strlen(t[i].name);
    e->dtype = st_names[dt];
    e->ndim = mf_tensor_ndim(t[i].t);
    memcpy(e->dims, mf_tensor_dims(t[i].t), sizeof(int64_t) * (size_t)e->ndim);
    e->begin = at, e->end = at + nb;
    at = e->end;
    if (le || mf_dtype_size(dt) == 1) {
      data_crc = mfi_crc32(data_crc, mf_tensor_data(t[i].t), nb);
    } else {
      /* the CRC covers the little-endian bytes as written */
      size_t es = mf_dtype_size(dt);
      const unsigned char *p = mf_tensor_data(t[i].t);
      unsigned char tmp[8];
      for (size_t k = 0; k < nb; k += es) {
        for (size_t b = 0; b < es; b++) tmp[b] = p[k + es - 1 - b];
        data_crc = mfi_crc32(data_crc, tmp, es);
      }
    }
  }
  char data_hex[9], header_hex[9];
  snprintf(data_hex, sizeof data_hex, "%08x", data_crc);
  canonical(&canon, ents, n, data_hex);
  snprintf(header_hex, sizeof header_hex, "%08x", canon.oom ? 0 : mfi_crc32(0, canon.p, canon.n));

  mfi_sb_str(&hdr, "{\"__metadata__\":{\"format\":\"moonflow\",\"moonflow_crc32\":\"");
  mfi_sb_str(&hdr, data_hex);
  mfi_sb_str(&hdr, "\",\"moonflow_header_crc32\":\"");
  mfi_sb_str(&hdr, header_hex);
  mfi_sb_str(&hdr, "\"}");
  for (int i = 0; i < n; i++) {
    const mfi_st_entry *e = &ents[i];
    mfi_sb_add(&hdr, ",", 1);
    mfi_json_write_string(&hdr, e->name, e->name_len);
    mfi_sb_fmt(&hdr, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
    for (int d = 0; d < e->ndim; d++)
      mfi_sb_fmt(&hdr, "%s%lld", d ? "," : "", (long long)e->dims[d]);
    mfi_sb_fmt(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->begin,
               (unsigned long long)e->end);
  }
  mfi_sb_add(&hdr, "}", 1);
  while (!hdr.oom && (hdr.n + 8) % 8) mfi_sb_add(&hdr, " ", 1);
  free(ents);
  bool ok;
  if (hdr.oom || canon.oom) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    ok = false;
  } else {
    file_body body = {&hdr, t, n};
    ok = mfi_write_file_atomic(path, "checkpoint", write_body, &body, s);
  }
  free(hdr.p);
  free(canon.p);
  return ok;
}
