/* A small JSON reader and writer.
 *
 * The reader is strict and bounded, for untrusted input: objects, arrays,
 * strings (every JSON escape; valid UTF-8 only; no NUL) and integers that
 * fit int64 (no fractions, exponents, true, false or null), nesting at most
 * 32 deep. Nodes live in an arena owned by an mfi_json_doc and freed all at
 * once. Duplicate keys are kept; mfi_json_duplicate_key finds them.
 *
 * The writer appends JSON text to an mfi_strbuf. */
#ifndef MOONFLOW_JSON_H
#define MOONFLOW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

typedef enum { MFI_JSON_OBJECT, MFI_JSON_ARRAY, MFI_JSON_STRING, MFI_JSON_INT } mfi_json_type;

typedef struct mfi_json {
  mfi_json_type type;
  char *str; /* STRING: decoded, NUL-terminated */
  size_t len;
  int64_t num;     /* INT */
  const char *key; /* member of an object: its key (decoded, NUL-terminated) */
  size_t key_len;
  struct mfi_json *first, *next; /* OBJECT, ARRAY: children, in order */
  int count;
} mfi_json;

struct mfi_json_chunk;

typedef struct {
  struct mfi_json_chunk *arena;
  char err[200]; /* after a failed parse (unless oom): "bad number at byte 12" */
  bool oom;
} mfi_json_doc;

/* Parses text[0, n): one value with optional whitespace around it. NULL on
 * failure, with doc->oom or doc->err set. Start from a zeroed doc, and
 * mfi_json_free it afterwards whatever the outcome. */
const mfi_json *mfi_json_parse(mfi_json_doc *doc, const char *text, size_t n);
void mfi_json_free(mfi_json_doc *doc);

/* The first member of obj named key, or NULL. */
const mfi_json *mfi_json_member(const mfi_json *obj, const char *key);
/* A key that occurs twice in obj, or NULL; *oom set when memory ran out. */
const char *mfi_json_duplicate_key(const mfi_json *obj, bool *oom);

/* Appends s[0, n) as a JSON string literal; bytes >= 0x80 pass through. */
void mfi_json_write_string(mfi_strbuf *b, const char *s, size_t n);

/* True when s[0, n) is valid UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF). */
bool mfi_utf8_valid(const char *s, size_t n);

#endif
