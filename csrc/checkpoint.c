/* Checkpoints: variable values to and from safetensors files.
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
 * Loading treats the file as hostile: every length and offset is checked
 * before use, the JSON parser is strict and bounded, and nothing in the
 * session changes until every check has passed. Files from other tools
 * (without the moonflow checksums) load without the checksum check. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* The reference implementation refuses headers above 100 MB too. */
#define MAX_HEADER ((uint64_t)100 << 20)
#define MAX_DEPTH 32     /* JSON nesting */
#define MAX_FILE_DIMS 64 /* ranks we parse (we load at most MF_MAX_DIMS) */

/* ---------------------------------------------------------------- crc32 */

/* zlib's CRC-32 (reflected polynomial 0xEDB88320). */
typedef struct {
  uint32_t t[256];
} crc_table;

static void crc_init(crc_table *c)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t r = i;
    for (int k = 0; k < 8; k++) r = (r >> 1) ^ (0xEDB88320u & -(r & 1));
    c->t[i] = r;
  }
}

/* Continues a CRC: start with crc = 0. */
static uint32_t crc_update(const crc_table *c, uint32_t crc, const void *data, size_t n)
{
  const unsigned char *p = data;
  crc = ~crc;
  while (n--) crc = c->t[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ---------------------------------------------------------------- dtypes */

static const char *const st_names[MF_NUM_DTYPES] = {"F32", "F64", "I32", "I64", "BOOL", "U8"};

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

/* ---------------------------------------------------------------- string buffer */

typedef struct {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n)
{
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string literal; bytes >= 0x80 pass through (names are UTF-8). */
static void sb_json_str(sbuf *b, const char *s, size_t n)
{
  sb_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      sb_add(b, e, 2);
    } else if (c < 0x20) {
      static const char *const short_esc[32] = {
          [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r"};
      if (short_esc[c])
        sb_str(b, short_esc[c]);
      else
        sb_fmt(b, "\\u%04x", c);
    } else {
      sb_add(b, s + i, 1);
    }
  }
  sb_add(b, "\"", 1);
}

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid
 * (overlongs, surrogates and values above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
  if (p[0] < 0x80) return 1;
  size_t len;
  uint32_t cp, min;
  if ((p[0] & 0xe0) == 0xc0)
    len = 2, cp = p[0] & 0x1f, min = 0x80;
  else if ((p[0] & 0xf0) == 0xe0)
    len = 3, cp = p[0] & 0x0f, min = 0x800;
  else if ((p[0] & 0xf8) == 0xf0)
    len = 4, cp = p[0] & 0x07, min = 0x10000;
  else
    return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

static bool utf8_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(p + i, n - i);
    if (!l) return false;
    i += l;
  }
  return true;
}

/* ---------------------------------------------------------------- JSON */

/* A strict parser for the subset safetensors headers use: objects, arrays,
 * strings (with every JSON escape) and integers. Nodes live in an arena
 * freed all at once. */
typedef enum { J_OBJECT, J_ARRAY, J_STRING, J_INT } jtype;

typedef struct jnode {
  jtype type;
  char *str; /* J_STRING: decoded, NUL-terminated (NUL inside is refused) */
  size_t len;
  int64_t num;
  const char *key; /* member of an object: its key */
  size_t key_len;
  struct jnode *first, *next; /* children, in order */
  int count;
} jnode;

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char mem[];
} chunk;

typedef struct {
  const char *p, *end, *start;
  chunk *arena;
  char err[200];
  bool oom;
} jparser;

static void *arena_alloc(jparser *j, size_t n)
{
  n = (n + 15) & ~(size_t)15;
  if (!j->arena || j->arena->cap - j->arena->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    chunk *c = malloc(sizeof *c + cap);
    if (!c) {
      j->oom = true;
      return NULL;
    }
    c->next = j->arena, c->used = 0, c->cap = cap;
    j->arena = c;
  }
  void *r = j->arena->mem + j->arena->used;
  j->arena->used += n;
  return r;
}

static void arena_free(jparser *j)
{
  while (j->arena) {
    chunk *c = j->arena;
    j->arena = c->next;
    free(c);
  }
}

static bool jfail(jparser *j, const char *what)
{
  if (!j->err[0] && !j->oom)
    snprintf(j->err, sizeof j->err, "%s at byte %zu of the header", what,
             (size_t)(j->p - j->start));
  return false;
}

static void jskip_ws(jparser *j)
{
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_u4(jparser *j, uint32_t *v)
{
  if (j->end - j->p < 4) return jfail(j, "truncated \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(j->p[i]);
    if (h < 0) return jfail(j, "bad \\u escape");
    *v = *v << 4 | (uint32_t)h;
  }
  j->p += 4;
  return true;
}

/* Parses a string at j->p (the opening quote) into arena memory. */
static bool jstring(jparser *j, char **out, size_t *out_len)
{
  j->p++; /* the quote */
  /* The decoded string is never longer than its source. */
  const char *q = j->p;
  while (q < j->end && *q != '"') q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
  if (q >= j->end) return jfail(j, "unterminated string");
  char *s = arena_alloc(j, (size_t)(q - j->p) + 1);
  if (!s) return false;
  size_t n = 0;
  while (*j->p != '"') {
    unsigned char c = (unsigned char)*j->p;
    if (c < 0x20) return jfail(j, "control character in string");
    if (c >= 0x80) {
      size_t l = utf8_len((const unsigned char *)j->p, (size_t)(j->end - j->p));
      if (!l) return jfail(j, "invalid UTF-8 in string");
      memcpy(s + n, j->p, l);
      n += l, j->p += l;
      continue;
    }
    if (c != '\\') {
      s[n++] = (char)c, j->p++;
      continue;
    }
    j->p++;
    char e = *j->p++;
    switch (e) {
    case '"': s[n++] = '"'; break;
    case '\\': s[n++] = '\\'; break;
    case '/': s[n++] = '/'; break;
    case 'b': s[n++] = '\b'; break;
    case 'f': s[n++] = '\f'; break;
    case 'n': s[n++] = '\n'; break;
    case 'r': s[n++] = '\r'; break;
    case 't': s[n++] = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (!read_u4(j, &cp)) return false;
      if (cp >= 0xdc00 && cp <= 0xdfff) return jfail(j, "lone low surrogate in string");
      if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
          return jfail(j, "lone high surrogate in string");
        j->p += 2;
        if (!read_u4(j, &lo)) return false;
        if (lo < 0xdc00 || lo > 0xdfff) return jfail(j, "bad surrogate pair in string");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      if (cp == 0) return jfail(j, "NUL character in string");
      /* at most 4 bytes from a 6- or 12-byte escape: fits the allocation */
      if (cp < 0x80) {
        s[n++] = (char)cp;
      } else if (cp < 0x800) {
        s[n++] = (char)(0xc0 | cp >> 6);
        s[n++] = (char)(0x80 | (cp & 0x3f));
      } else if (cp < 0x10000) {
        s[n++] = (char)(0xe0 | cp >> 12);
        s[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
        s[n++] = (char)(0x80 | (cp & 0x3f));
      } else {
        s[n++] = (char)(0xf0 | cp >> 18);
        s[n++] = (char)(0x80 | (cp >> 12 & 0x3f));
        s[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
        s[n++] = (char)(0x80 | (cp & 0x3f));
      }
      break;
    }
    default: j->p--; return jfail(j, "bad escape in string");
    }
  }
  j->p++; /* the closing quote */
  s[n] = 0;
  *out = s, *out_len = n;
  return true;
}

static bool jinteger(jparser *j, int64_t *v)
{
  bool neg = false;
  if (*j->p == '-') neg = true, j->p++;
  if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jfail(j, "bad number");
  if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
    return jfail(j, "number with a leading zero");
  uint64_t x = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    unsigned d = (unsigned)(*j->p - '0');
    if (x > (UINT64_C(9223372036854775807) - d) / 10) return jfail(j, "number too large");
    x = x * 10 + d;
    j->p++;
  }
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
    return jfail(j, "non-integer number (not expected in a safetensors header)");
  *v = neg ? -(int64_t)x : (int64_t)x;
  return true;
}

static jnode *jvalue(jparser *j, int depth);

/* An object or array at j->p (its opening bracket). */
static bool jcontainer(jparser *j, jnode *node, int depth)
{
  bool obj = node->type == J_OBJECT;
  char close = obj ? '}' : ']';
  jnode **tail = &node->first;
  j->p++;
  jskip_ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    return true;
  }
  for (;;) {
    const char *key = NULL;
    size_t key_len = 0;
    if (obj) {
      jskip_ws(j);
      if (j->p >= j->end || *j->p != '"') return jfail(j, "expected a string key");
      char *k;
      if (!jstring(j, &k, &key_len)) return false;
      key = k; /* duplicates are found after parsing (see duplicate_key) */
      jskip_ws(j);
      if (j->p >= j->end || *j->p != ':') return jfail(j, "expected ':'");
      j->p++;
    }
    jnode *v = jvalue(j, depth + 1);
    if (!v) return false;
    v->key = key, v->key_len = key_len;
    *tail = v, tail = &v->next;
    node->count++;
    jskip_ws(j);
    if (j->p >= j->end) return jfail(j, obj ? "unterminated object" : "unterminated array");
    if (*j->p == ',') {
      j->p++;
      continue;
    }
    if (*j->p == close) {
      j->p++;
      return true;
    }
    return jfail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static jnode *jvalue(jparser *j, int depth)
{
  if (depth > MAX_DEPTH) {
    jfail(j, "JSON nested too deeply");
    return NULL;
  }
  jskip_ws(j);
  if (j->p >= j->end) {
    jfail(j, "unexpected end of header");
    return NULL;
  }
  jnode *n = arena_alloc(j, sizeof *n);
  if (!n) return NULL;
  memset(n, 0, sizeof *n);
  char c = *j->p;
  bool ok;
  if (c == '{') {
    n->type = J_OBJECT;
    ok = jcontainer(j, n, depth);
  } else if (c == '[') {
    n->type = J_ARRAY;
    ok = jcontainer(j, n, depth);
  } else if (c == '"') {
    n->type = J_STRING;
    ok = jstring(j, &n->str, &n->len);
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    n->type = J_INT;
    ok = jinteger(j, &n->num);
  } else {
    ok = jfail(j, "unexpected character (expected an object, array, string or integer)");
  }
  return ok ? n : NULL;
}

static int cmp_key(const void *a, const void *b)
{
  const jnode *const *x = a, *const *y = b;
  size_t n = (*x)->key_len < (*y)->key_len ? (*x)->key_len : (*y)->key_len;
  int c = memcmp((*x)->key, (*y)->key, n);
  if (c) return c;
  return (*x)->key_len < (*y)->key_len ? -1 : (*x)->key_len > (*y)->key_len;
}

/* A key that occurs twice in obj (sorting, so a huge object stays fast), or
 * NULL; *oom set when memory ran out. */
static const char *duplicate_key(const jnode *obj, bool *oom)
{
  if (obj->count < 2) return NULL;
  const jnode **m = malloc(sizeof *m * (size_t)obj->count);
  if (!m) {
    *oom = true;
    return NULL;
  }
  int n = 0;
  for (const jnode *x = obj->first; x; x = x->next) m[n++] = x;
  qsort(m, (size_t)n, sizeof *m, cmp_key);
  const char *dup = NULL;
  for (int i = 1; !dup && i < n; i++)
    if (!cmp_key(&m[i - 1], &m[i])) dup = m[i]->key;
  free(m);
  return dup;
}

static const jnode *jmember(const jnode *obj, const char *key)
{
  size_t kl = strlen(key);
  for (const jnode *m = obj->first; m; m = m->next)
    if (m->key_len == kl && !memcmp(m->key, key, kl)) return m;
  return NULL;
}

/* ---------------------------------------------------------------- header model */

typedef struct {
  const char *name; /* arena memory */
  size_t name_len;
  const char *dtype;
  size_t elem_size;
  int loadable; /* index into st_names, or -1 */
  int ndim;
  int64_t dims[MAX_FILE_DIMS];
  uint64_t begin, end;
} entry;

typedef struct {
  entry *e; /* sorted by name */
  int n;
  const char *data_crc, *header_crc; /* metadata strings, or NULL */
  bool ours;                         /* "format": "moonflow" */
} header;

static int cmp_name(const void *a, const void *b)
{
  const entry *x = a, *y = b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static int cmp_offset(const void *a, const void *b)
{
  const entry *const *x = a, *const *y = b;
  if ((*x)->begin != (*y)->begin) return (*x)->begin < (*y)->begin ? -1 : 1;
  if ((*x)->end != (*y)->end) return (*x)->end < (*y)->end ? -1 : 1;
  return 0;
}

/* The canonical description covered by moonflow_header_crc32 (see the top
 * of this file). Entries must be sorted by name. */
static void canonical(sbuf *b, const entry *e, int n, const char *data_crc)
{
  sb_str(b, "moonflow-checkpoint-v1\n");
  for (int i = 0; i < n; i++) {
    sb_fmt(b, "%zu:", e[i].name_len);
    sb_add(b, e[i].name, e[i].name_len);
    sb_fmt(b, " %s %d", e[i].dtype, e[i].ndim);
    for (int d = 0; d < e[i].ndim; d++) sb_fmt(b, " %lld", (long long)e[i].dims[d]);
    sb_fmt(b, " %llu %llu\n", (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
  }
  sb_fmt(b, "data_crc32=%s\n", data_crc);
}

/* Reads one tensor entry; false with msg set on error. */
static bool read_entry(const jnode *m, entry *e, char *msg, size_t msz)
{
  e->name = m->key, e->name_len = m->key_len;
  if (m->type != J_OBJECT) {
    snprintf(msg, msz, "entry '%s' is not an object", m->key);
    return false;
  }
  int seen[3] = {0};
  for (const jnode *f = m->first; f; f = f->next) {
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
  const jnode *dt = jmember(m, "dtype"), *sh = jmember(m, "shape"),
              *off = jmember(m, "data_offsets");
  if (!dt || dt->type != J_STRING) {
    snprintf(msg, msz, "entry '%s' has no string \"dtype\"", m->key);
    return false;
  }
  e->dtype = dt->str, e->elem_size = 0, e->loadable = -1;
  for (size_t i = 0; i < sizeof st_all / sizeof st_all[0]; i++)
    if (!strcmp(dt->str, st_all[i].name)) e->elem_size = st_all[i].size;
  for (int i = 0; i < MF_NUM_DTYPES; i++)
    if (!strcmp(dt->str, st_names[i])) e->loadable = i;
  if (!e->elem_size) {
    snprintf(msg, msz, "entry '%s' has an unknown dtype \"%.40s\"", m->key, dt->str);
    return false;
  }
  if (!sh || sh->type != J_ARRAY || sh->count > MAX_FILE_DIMS) {
    snprintf(msg, msz, "entry '%s' has no \"shape\" list (of at most %d dimensions)", m->key,
             MAX_FILE_DIMS);
    return false;
  }
  e->ndim = sh->count;
  uint64_t bytes = e->elem_size;
  bool overflow = false;
  int d = 0;
  for (const jnode *x = sh->first; x; x = x->next, d++) {
    if (x->type != J_INT || x->num < 0) {
      snprintf(msg, msz, "entry '%s' has a shape that is not a list of non-negative integers",
               m->key);
      return false;
    }
    e->dims[d] = x->num;
    overflow |= __builtin_mul_overflow(bytes, (uint64_t)x->num, &bytes);
  }
  if (!off || off->type != J_ARRAY || off->count != 2 || off->first->type != J_INT ||
      off->first->next->type != J_INT || off->first->num < 0 || off->first->next->num < 0) {
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
static bool read_header(const jnode *root, uint64_t data_len, header *h, char *msg, size_t msz)
{
  if (root->type != J_OBJECT) {
    snprintf(msg, msz, "the header is not a JSON object");
    return false;
  }
  bool oom = false;
  const char *dup = duplicate_key(root, &oom);
  h->e = oom ? NULL : calloc((size_t)root->count + 1, sizeof *h->e);
  if (!h->e) {
    snprintf(msg, msz, "out of memory");
    return false;
  }
  if (dup) {
    snprintf(msg, msz, "the header names '%s' twice", dup);
    return false;
  }
  for (const jnode *m = root->first; m; m = m->next) {
    if (!strcmp(m->key, "__metadata__")) {
      if (m->type != J_OBJECT) {
        snprintf(msg, msz, "__metadata__ is not an object");
        return false;
      }
      if ((dup = duplicate_key(m, &oom)) || oom) {
        if (oom)
          snprintf(msg, msz, "out of memory");
        else
          snprintf(msg, msz, "__metadata__ names '%s' twice", dup);
        return false;
      }
      for (const jnode *x = m->first; x; x = x->next) {
        if (x->type != J_STRING) {
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
  const entry **by_off = malloc(sizeof *by_off * ((size_t)h->n + 1));
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

static bool parse_crc(const char *s, uint32_t *v)
{
  if (strlen(s) != 8) return false;
  *v = 0;
  for (int i = 0; i < 8; i++) {
    int h = hexval(s[i]);
    if (h < 0) return false;
    *v = *v << 4 | (uint32_t)h;
  }
  return true;
}

/* ---------------------------------------------------------------- save */

typedef struct {
  const char *name;
  mf_tensor *t; /* a reference */
} save_item;

static int cmp_item(const void *a, const void *b)
{
  return strcmp(((const save_item *)a)->name, ((const save_item *)b)->name);
}

static bool write_all(FILE *f, const void *p, size_t n)
{
  return n == 0 || fwrite(p, 1, n, f) == n;
}

/* fsync of the directory holding path, so the rename itself is durable.
 * Best effort: the file is complete and in place either way, and some
 * filesystems refuse to fsync a directory. */
static void sync_dir(const char *path)
{
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

/* Writes header + data to a temporary file and renames it over path. */
static void write_file(const char *path, const sbuf *hdr, const save_item *items, int n,
                       mf_status *s)
{
  size_t tlen = strlen(path) + 32;
  char *tmp = malloc(tlen);
  if (!tmp) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    return;
  }
  snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    mfi_set(s, e == ENOENT ? MF_NOT_FOUND : MF_INVALID_ARGUMENT,
            "cannot save checkpoint '%s': cannot create '%s': %s", path, tmp, strerror(e));
    free(tmp);
    return;
  }
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hdr->n >> (8 * i));
  bool ok = write_all(f, len, 8) && write_all(f, hdr->p, hdr->n);
  bool le = host_little_endian();
  for (int i = 0; ok && i < n; i++) {
    size_t nb = mf_tensor_nbytes(items[i].t);
    if (le) {
      ok = write_all(f, mf_tensor_data(items[i].t), nb);
    } else {
      void *copy = malloc(nb ? nb : 1);
      if (!copy) {
        errno = ENOMEM;
        ok = false;
        break;
      }
      memcpy(copy, mf_tensor_data(items[i].t), nb);
      swap_elems(copy, nb, mf_dtype_size(mf_tensor_dtype(items[i].t)));
      ok = write_all(f, copy, nb);
      free(copy);
    }
  }
  if (ok) ok = fflush(f) == 0;
  if (ok) ok = fsync(fileno(f)) == 0;
  int e = errno;
  if (fclose(f) != 0 && ok) ok = false, e = errno;
  if (ok && rename(tmp, path) != 0) ok = false, e = errno;
  if (!ok) {
    mfi_set(s, MF_INVALID_ARGUMENT, "cannot save checkpoint '%s': writing '%s' failed: %s", path,
            tmp, strerror(e));
    unlink(tmp);
  } else {
    sync_dir(path);
  }
  free(tmp);
}

void mf_checkpoint_save(mf_session *sess, mf_op *const *vars, const char *const *names, int n,
                        const char *path, mf_status *s)
{
  mfi_clear(s);
  if (!sess || !path || !*path || n < 0 || (n > 0 && (!vars || !names))) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_checkpoint_save: needs a session, a path and %s",
            "n variables with n names");
    return;
  }
  save_item *items = calloc((size_t)n + 1, sizeof *items);
  if (!items) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    return;
  }
  int got = 0;
  sbuf hdr = {0}, canon = {0};
  for (int i = 0; i < n; i++) {
    if (!vars[i] || !names[i] || !*names[i]) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot save checkpoint '%s': variable %d has no %s", path,
              i + 1, vars[i] ? "name" : "operation");
      goto out;
    }
    if (!utf8_valid(names[i], strlen(names[i])) || !strcmp(names[i], "__metadata__")) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot save checkpoint '%s': '%s' cannot name a tensor (%s)",
              path, names[i], strcmp(names[i], "__metadata__") ? "not valid UTF-8" : "reserved");
      goto out;
    }
  }
  /* Take references under the lock; the values cannot change under us
   * afterwards (writes copy a shared buffer first), so the I/O runs unlocked. */
  if (!mfi_session_lock(sess, s)) goto out;
  for (int i = 0; i < n; i++) {
    mf_tensor **slot = mfi_session_slot(sess, vars[i], s);
    if (!slot) break;
    if (!*slot) {
      mfi_set(s, MF_FAILED_PRECONDITION,
              "cannot save checkpoint '%s': variable '%s' is uninitialized (run its initializer "
              "first)",
              path, vars[i]->name);
      break;
    }
    items[i].name = names[i];
    items[i].t = mf_tensor_retain(*slot);
    got++;
  }
  mfi_session_unlock(sess);
  if (!mfi_ok(s)) goto out;

  qsort(items, (size_t)n, sizeof *items, cmp_item);
  for (int i = 1; i < n; i++)
    if (!strcmp(items[i].name, items[i - 1].name)) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot save checkpoint '%s': two variables named '%s'", path,
              items[i].name);
      goto out;
    }

  crc_table ct;
  crc_init(&ct);
  uint32_t data_crc = 0;
  bool le = host_little_endian();
  entry *ents = calloc((size_t)n + 1, sizeof *ents);
  if (!ents) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    goto out;
  }
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    const mf_tensor *t = items[i].t;
    size_t nb = mf_tensor_nbytes(t);
    entry *e = &ents[i];
    e->name = items[i].name, e->name_len = strlen(items[i].name);
    e->dtype = st_names[mf_tensor_dtype(t)];
    e->ndim = mf_tensor_ndim(t);
    memcpy(e->dims, mf_tensor_dims(t), sizeof(int64_t) * (size_t)e->ndim);
    e->begin = at, e->end = at + nb;
    at = e->end;
    if (le || mf_dtype_size(mf_tensor_dtype(t)) == 1) {
      data_crc = crc_update(&ct, data_crc, mf_tensor_data(t), nb);
    } else {
      /* the CRC covers the little-endian bytes as written */
      size_t es = mf_dtype_size(mf_tensor_dtype(t));
      const unsigned char *p = mf_tensor_data(t);
      unsigned char tmp[8];
      for (size_t k = 0; k < nb; k += es) {
        for (size_t b = 0; b < es; b++) tmp[b] = p[k + es - 1 - b];
        data_crc = crc_update(&ct, data_crc, tmp, es);
      }
    }
  }
  char data_hex[9], header_hex[9];
  snprintf(data_hex, sizeof data_hex, "%08x", data_crc);
  canonical(&canon, ents, n, data_hex);
  snprintf(header_hex, sizeof header_hex, "%08x",
           canon.oom ? 0 : crc_update(&ct, 0, canon.p, canon.n));

  sb_str(&hdr, "{\"__metadata__\":{\"format\":\"moonflow\",\"moonflow_crc32\":\"");
  sb_str(&hdr, data_hex);
  sb_str(&hdr, "\",\"moonflow_header_crc32\":\"");
  sb_str(&hdr, header_hex);
  sb_str(&hdr, "\"}");
  for (int i = 0; i < n; i++) {
    const entry *e = &ents[i];
    sb_add(&hdr, ",", 1);
    sb_json_str(&hdr, e->name, e->name_len);
    sb_fmt(&hdr, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
    for (int d = 0; d < e->ndim; d++) sb_fmt(&hdr, "%s%lld", d ? "," : "", (long long)e->dims[d]);
    sb_fmt(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->begin,
           (unsigned long long)e->end);
  }
  sb_add(&hdr, "}", 1);
  while (!hdr.oom && (hdr.n + 8) % 8) sb_add(&hdr, " ", 1);
  free(ents);
  if (hdr.oom || canon.oom) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    goto out;
  }
  write_file(path, &hdr, items, n, s);

out:
  for (int i = 0; i < n; i++) mf_tensor_delete(items[i].t);
  free(items);
  free(hdr.p);
  free(canon.p);
}

/* ---------------------------------------------------------------- restore */

/* Reads the whole file; NULL with status on error. */
static unsigned char *read_file(const char *path, size_t *size, mf_status *s)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    if (e == ENOENT)
      mfi_set(s, MF_NOT_FOUND, "checkpoint '%s' not found (%s)", path, strerror(e));
    else
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot open checkpoint '%s': %s", path, strerror(e));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "checkpoint '%s' is not a regular file", path);
    fclose(f);
    return NULL;
  }
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      unsigned char *b = realloc(buf, cap * 2);
      if (!b) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = b, cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  if (!buf) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading checkpoint '%s'", path);
  } else if (ferror(f)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "cannot read checkpoint '%s': %s", path, strerror(errno));
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = n;
  return buf;
}

static const entry *find_entry(const header *h, const char *name)
{
  entry key = {.name = name, .name_len = strlen(name)};
  return bsearch(&key, h->e, (size_t)h->n, sizeof *h->e, cmp_name);
}

/* Checks a tensor against a variable's declared dtype and shape. */
static bool check_entry(const char *path, const entry *e, const mf_op *var, mf_status *s)
{
  const mfi_meta *m = &var->out[0];
  if (e->loadable < 0) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "checkpoint '%s': tensor '%s' has dtype %s, which moonflow cannot load (variable "
            "'%s' is %s)",
            path, e->name, e->dtype, var->name, mf_dtype_name(m->dtype));
    return false;
  }
  if ((mf_dtype)e->loadable != m->dtype) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "checkpoint '%s': tensor '%s' is %s (%s) but variable '%s' is %s", path, e->name,
            e->dtype, mf_dtype_name((mf_dtype)e->loadable), var->name, mf_dtype_name(m->dtype));
    return false;
  }
  bool ok = e->ndim <= MF_MAX_DIMS && (m->ndim < 0 || m->ndim == e->ndim);
  for (int d = 0; ok && m->ndim >= 0 && d < m->ndim; d++)
    ok = m->dims[d] < 0 || m->dims[d] == e->dims[d];
  if (!ok) {
    char a[256], b[256];
    mfi_shape_str(e->ndim, e->dims, a, sizeof a);
    mfi_shape_str(m->ndim, m->dims, b, sizeof b);
    mfi_set(s, MF_INVALID_ARGUMENT,
            "checkpoint '%s': tensor '%s' has shape %s but variable '%s' has shape %s", path,
            e->name, a, var->name, b);
    return false;
  }
  return true;
}

/* Parses and verifies the whole file into h (entries point into the arena
 * and buf). On success *data is the first data byte. */
static bool verify(const char *path, const unsigned char *buf, size_t size, jparser *j, header *h,
                   const unsigned char **data, mf_status *s)
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
  j->start = j->p = (const char *)buf + 8;
  j->end = j->p + hlen;
  jnode *root = jvalue(j, 0);
  if (root) {
    jskip_ws(j);
    if (j->p != j->end) {
      jfail(j, "trailing bytes after the JSON object");
      root = NULL;
    }
  }
  if (!root) {
    if (j->oom)
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading checkpoint '%s'", path);
    else
      mfi_set(s, MF_INVALID_ARGUMENT,
              "'%s' is not a valid safetensors checkpoint: the header is not valid JSON (%s)", path,
              j->err);
    return false;
  }
  *data = buf + 8 + hlen;
  uint64_t data_len = size - 8 - hlen;
  if (!read_header(root, data_len, h, msg, sizeof msg)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "'%s' is not a valid safetensors checkpoint: %s", path, msg);
    return false;
  }
  if (h->header_crc || h->data_crc || h->ours) {
    crc_table ct;
    crc_init(&ct);
    uint32_t want_h = 0, want_d;
    if (!h->data_crc || !parse_crc(h->data_crc, &want_d) || (h->ours && !h->header_crc) ||
        (h->header_crc && !parse_crc(h->header_crc, &want_h))) {
      mfi_set(s, MF_INVALID_ARGUMENT,
              "checkpoint '%s' is corrupted: its checksum metadata is malformed", path);
      return false;
    }
    if (h->header_crc) {
      sbuf c = {0};
      canonical(&c, h->e, h->n, h->data_crc);
      uint32_t got = c.oom ? 0 : crc_update(&ct, 0, c.p, c.n);
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
    uint32_t got = crc_update(&ct, 0, *data, (size_t)data_len);
    if (got != want_d) {
      mfi_set(s, MF_INVALID_ARGUMENT,
              "checkpoint '%s' is corrupted: data checksum mismatch (stored %08x, computed %08x)",
              path, want_d, got);
      return false;
    }
  }
  return true;
}

void mf_checkpoint_restore(mf_session *sess, mf_op *const *vars, const char *const *names, int n,
                           const char *path, mf_status *s)
{
  mfi_clear(s);
  if (!sess || !path || !*path || n < 0 || (n > 0 && (!vars || !names))) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_checkpoint_restore: needs a session, a path and %s",
            "n variables with n names");
    return;
  }
  for (int i = 0; i < n; i++)
    if (!vars[i] || !names[i]) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot restore checkpoint '%s': variable %d has no %s", path,
              i + 1, vars[i] ? "name" : "operation");
      return;
    }
  size_t size = 0;
  unsigned char *buf = read_file(path, &size, s);
  if (!buf) return;
  jparser j = {0};
  header h = {0};
  const unsigned char *data = NULL;
  mf_tensor **fresh = calloc((size_t)n + 1, sizeof *fresh);
  mf_tensor ***slots = calloc((size_t)n + 1, sizeof *slots);
  const entry **found = calloc((size_t)n + 1, sizeof *found);
  if (!fresh || !slots || !found) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading checkpoint '%s'", path);
    goto out;
  }
  if (!verify(path, buf, size, &j, &h, &data, s)) goto out;

  for (int i = 0; i < n; i++) {
    const entry *e = find_entry(&h, names[i]);
    if (!e) {
      mfi_set(s, MF_NOT_FOUND, "checkpoint '%s' has no tensor '%s' (for variable '%s')", path,
              names[i], vars[i]->name);
      goto out;
    }
    if (!(vars[i]->def->flags & MFI_VARIABLE)) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot restore checkpoint '%s': '%s' is not a variable",
              path, vars[i]->name);
      goto out;
    }
    if (!check_entry(path, e, vars[i], s)) goto out;
    found[i] = e;
  }
  for (int i = 0; i < n; i++) {
    const entry *e = found[i];
    fresh[i] = mfi_tensor_empty((mf_dtype)e->loadable, e->ndim, e->dims, s);
    if (!fresh[i]) goto out;
    size_t nb = (size_t)(e->end - e->begin);
    if (nb) memcpy(mfi_data(fresh[i]), data + e->begin, nb);
    if (!host_little_endian()) swap_elems(mfi_data(fresh[i]), nb, e->elem_size);
  }
  /* Everything checked: now the session changes, all or nothing. */
  if (!mfi_session_lock(sess, s)) goto out;
  for (int i = 0; i < n; i++)
    if (!(slots[i] = mfi_session_slot(sess, vars[i], s))) break;
  if (mfi_ok(s))
    for (int i = 0; i < n; i++) {
      mf_tensor_delete(*slots[i]);
      *slots[i] = fresh[i];
      fresh[i] = NULL;
    }
  mfi_session_unlock(sess);

out:
  if (fresh)
    for (int i = 0; i < n; i++) mf_tensor_delete(fresh[i]);
  free(fresh);
  free(slots);
  free(found);
  free(h.e);
  arena_free(&j);
  free(buf);
}
