/* A small strict JSON reader and a JSON string writer (declared in json.h). */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* nesting */

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

bool mfi_utf8_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(p + i, n - i);
    if (!l) return false;
    i += l;
  }
  return true;
}

/* ---------------------------------------------------------------- writer */

void mfi_json_write_string(mfi_strbuf *b, const char *s, size_t n)
{
  mfi_sb_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      mfi_sb_add(b, e, 2);
    } else if (c < 0x20) {
      static const char *const short_esc[32] = {
          [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r"};
      if (short_esc[c])
        mfi_sb_str(b, short_esc[c]);
      else
        mfi_sb_fmt(b, "\\u%04x", c);
    } else {
      mfi_sb_add(b, s + i, 1);
    }
  }
  mfi_sb_add(b, "\"", 1);
}

/* ---------------------------------------------------------------- arena */

struct mfi_json_chunk {
  struct mfi_json_chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char mem[];
};

static void *arena_alloc(mfi_json_doc *doc, size_t n)
{
  n = (n + 15) & ~(size_t)15;
  if (!doc->arena || doc->arena->cap - doc->arena->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    struct mfi_json_chunk *c = malloc(sizeof *c + cap);
    if (!c) {
      doc->oom = true;
      return NULL;
    }
    c->next = doc->arena, c->used = 0, c->cap = cap;
    doc->arena = c;
  }
  void *r = doc->arena->mem + doc->arena->used;
  doc->arena->used += n;
  return r;
}

void mfi_json_free(mfi_json_doc *doc)
{
  while (doc->arena) {
    struct mfi_json_chunk *c = doc->arena;
    doc->arena = c->next;
    free(c);
  }
}

/* ---------------------------------------------------------------- reader */

typedef struct {
  const char *p, *end, *start;
  mfi_json_doc *doc;
} jparser;

static bool jfail(jparser *j, const char *what)
{
  if (!j->doc->err[0] && !j->doc->oom)
    snprintf(j->doc->err, sizeof j->doc->err, "%s at byte %zu", what, (size_t)(j->p - j->start));
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
  char *s = arena_alloc(j->doc, (size_t)(q - j->p) + 1);
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
    return jfail(j, "non-integer number (this reader takes integers only)");
  *v = neg ? -(int64_t)x : (int64_t)x;
  return true;
}

static mfi_json *jvalue(jparser *j, int depth);

/* An object or array at j->p (its opening bracket). */
static bool jcontainer(jparser *j, mfi_json *node, int depth)
{
  bool obj = node->type == MFI_JSON_OBJECT;
  char close = obj ? '}' : ']';
  mfi_json **tail = &node->first;
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
      key = k; /* duplicates are left to mfi_json_duplicate_key */
      jskip_ws(j);
      if (j->p >= j->end || *j->p != ':') return jfail(j, "expected ':'");
      j->p++;
    }
    mfi_json *v = jvalue(j, depth + 1);
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

static mfi_json *jvalue(jparser *j, int depth)
{
  if (depth > MAX_DEPTH) {
    jfail(j, "JSON nested too deeply");
    return NULL;
  }
  jskip_ws(j);
  if (j->p >= j->end) {
    jfail(j, "unexpected end of input");
    return NULL;
  }
  mfi_json *n = arena_alloc(j->doc, sizeof *n);
  if (!n) return NULL;
  memset(n, 0, sizeof *n);
  char c = *j->p;
  bool ok;
  if (c == '{') {
    n->type = MFI_JSON_OBJECT;
    ok = jcontainer(j, n, depth);
  } else if (c == '[') {
    n->type = MFI_JSON_ARRAY;
    ok = jcontainer(j, n, depth);
  } else if (c == '"') {
    n->type = MFI_JSON_STRING;
    ok = jstring(j, &n->str, &n->len);
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    n->type = MFI_JSON_INT;
    ok = jinteger(j, &n->num);
  } else {
    ok = jfail(j, "unexpected character (expected an object, array, string or integer)");
  }
  return ok ? n : NULL;
}

const mfi_json *mfi_json_parse(mfi_json_doc *doc, const char *text, size_t n)
{
  jparser j = {text, text + n, text, doc};
  mfi_json *root = jvalue(&j, 0);
  if (root) {
    jskip_ws(&j);
    if (j.p != j.end) {
      static const char *const what[] = {"object", "array", "string", "integer"};
      char msg[64];
      snprintf(msg, sizeof msg, "trailing bytes after the JSON %s", what[root->type]);
      jfail(&j, msg);
      root = NULL;
    }
  }
  return root;
}

/* ---------------------------------------------------------------- queries */

static int cmp_key(const void *a, const void *b)
{
  const mfi_json *const *x = a, *const *y = b;
  size_t n = (*x)->key_len < (*y)->key_len ? (*x)->key_len : (*y)->key_len;
  int c = memcmp((*x)->key, (*y)->key, n);
  if (c) return c;
  return (*x)->key_len < (*y)->key_len ? -1 : (*x)->key_len > (*y)->key_len;
}

/* Sorts the keys, so a huge object stays fast. */
const char *mfi_json_duplicate_key(const mfi_json *obj, bool *oom)
{
  if (obj->count < 2) return NULL;
  const mfi_json **m = malloc(sizeof *m * (size_t)obj->count);
  if (!m) {
    *oom = true;
    return NULL;
  }
  int n = 0;
  for (const mfi_json *x = obj->first; x; x = x->next) m[n++] = x;
  qsort(m, (size_t)n, sizeof *m, cmp_key);
  const char *dup = NULL;
  for (int i = 1; !dup && i < n; i++)
    if (!cmp_key(&m[i - 1], &m[i])) dup = m[i]->key;
  free(m);
  return dup;
}

const mfi_json *mfi_json_member(const mfi_json *obj, const char *key)
{
  size_t kl = strlen(key);
  for (const mfi_json *m = obj->first; m; m = m->next)
    if (m->key_len == kl && !memcmp(m->key, key, kl)) return m;
  return NULL;
}
