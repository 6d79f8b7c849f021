/* Checkpoint files in the safetensors format: reading (parse and verify a
 * whole file held in memory) and writing (lay out tensors, checksum them,
 * write the file atomically). The format is described in safetensors.c. */
#ifndef MOONFLOW_SAFETENSORS_H
#define MOONFLOW_SAFETENSORS_H

#include "internal.h"
#include "json.h"

#define MFI_ST_MAX_DIMS 64 /* ranks a file may hold (we load at most MF_MAX_DIMS) */

/* One tensor of a file. */
typedef struct {
  const char *name; /* in the file's JSON arena, or the writer's names */
  size_t name_len;
  const char *dtype; /* the safetensors name: "F32", "BF16", ... */
  size_t elem_size;
  int loadable; /* the mf_dtype it loads as, or -1 for dtypes we cannot load */
  int ndim;
  int64_t dims[MFI_ST_MAX_DIMS];
  uint64_t begin, end; /* byte offsets into the data */
} mfi_st_entry;

/* A parsed and verified file; it points into the caller's buffer, which must
 * outlive it. Start from a zeroed struct; mfi_st_free it whatever the
 * outcome of mfi_st_read. */
typedef struct {
  mfi_st_entry *e; /* sorted by name */
  int n;
  const unsigned char *data;         /* the first data byte */
  const char *data_crc, *header_crc; /* moonflow's metadata strings, or NULL */
  bool ours;                         /* "format": "moonflow" */
  mfi_json_doc json;
} mfi_st_file;

/* Parses and checks the file held in buf (size bytes) as hostile input:
 * every length and offset, the tensors tiling the data exactly, and the
 * checksums when present. False with status (naming path) on error. */
bool mfi_st_read(mfi_st_file *f, const char *path, const unsigned char *buf, size_t size,
                 mf_status *s);
void mfi_st_free(mfi_st_file *f);
/* The tensor named name, or NULL. */
const mfi_st_entry *mfi_st_find(const mfi_st_file *f, const char *name);
/* Copies e's data (end - begin bytes) to dst in host byte order. */
void mfi_st_load(const mfi_st_file *f, const mfi_st_entry *e, void *dst);

typedef struct {
  const char *name;
  mf_tensor *t;
} mfi_st_tensor;

/* Writes n tensors, sorted bytewise by name with no name repeated, each
 * name valid UTF-8 and not "__metadata__", to path (atomically, with
 * moonflow's checksums). False with status on error. */
bool mfi_st_write(const char *path, const mfi_st_tensor *t, int n, mf_status *s);

#endif
