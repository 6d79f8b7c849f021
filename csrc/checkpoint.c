/* Checkpoints: the values of a session's variables saved to and restored
 * from safetensors files (the format is in safetensors.c). Restoring checks
 * the whole file and every variable before the session changes, so it
 * changes all the variables or none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "internal.h"
#include "json.h"
#include "safetensors.h"

/* ---------------------------------------------------------------- save */

static int cmp_item(const void *a, const void *b)
{
  return strcmp(((const mfi_st_tensor *)a)->name, ((const mfi_st_tensor *)b)->name);
}

void mf_checkpoint_save(mf_session *sess, mf_op *const *vars, const char *const *names, int n,
                        const char *path, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!sess || !path || !*path || n < 0 || (n > 0 && (!vars || !names))) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_checkpoint_save: needs a session, a path and %s",
            "n variables with n names");
    return;
  }
  mfi_st_tensor *items = calloc((size_t)n + 1, sizeof *items);
  if (!items) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory saving checkpoint '%s'", path);
    return;
  }
  for (int i = 0; i < n; i++) {
    if (!vars[i] || !names[i] || !*names[i]) {
      mfi_set(s, MF_INVALID_ARGUMENT, "cannot save checkpoint '%s': variable %d has no %s", path,
              i + 1, vars[i] ? "name" : "operation");
      goto out;
    }
    if (!mfi_utf8_valid(names[i], strlen(names[i])) || !strcmp(names[i], "__metadata__")) {
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
    if (!(items[i].t = mfi_tensor_to(*slot, mfi_device_cpu(), s))) break; /* a GPU's: copied */
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
  mfi_st_write(path, items, n, s);

out:
  for (int i = 0; i < n; i++) mf_tensor_delete(items[i].t);
  free(items);
}

/* ---------------------------------------------------------------- the index file, temporary files
 */

struct bytes {
  const void *data;
  size_t size;
};

static bool fill_bytes(FILE *f, void *ctx)
{
  const struct bytes *b = ctx;
  return mfi_fwrite_all(f, b->data, b->size);
}

void mf_checkpoint_write_file(const char *path, const void *data, size_t size, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!path || !*path || (size > 0 && !data)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_checkpoint_write_file: needs a path and %s",
            "size bytes of data");
    return;
  }
  struct bytes b = {data, size};
  mfi_write_file_atomic(path, "checkpoint index", fill_bytes, &b, s);
}

int mf_checkpoint_remove_stale_temps(const char *prefix, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!prefix || !*prefix || prefix[strlen(prefix) - 1] == '/') {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_checkpoint_remove_stale_temps: prefix must name %s",
            "files (\"dir/model\")");
    return -1;
  }
  return mfi_remove_stale_temps(prefix, s);
}

/* ---------------------------------------------------------------- restore */

/* Checks a tensor against a variable's declared dtype and shape. */
static bool check_entry(const char *path, const mfi_st_entry *e, const mf_op *var, mf_status *s)
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

void mf_checkpoint_restore(mf_session *sess, mf_op *const *vars, const char *const *names, int n,
                           const char *path, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
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
  unsigned char *buf = mfi_read_file(path, "checkpoint", &size, s);
  if (!buf) return;
  mfi_st_file file = {0};
  mf_tensor **fresh = calloc((size_t)n + 1, sizeof *fresh);
  mf_tensor ***slots = calloc((size_t)n + 1, sizeof *slots);
  const mfi_st_entry **found = calloc((size_t)n + 1, sizeof *found);
  if (!fresh || !slots || !found) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory reading checkpoint '%s'", path);
    goto out;
  }
  if (!mfi_st_read(&file, path, buf, size, s)) goto out;

  for (int i = 0; i < n; i++) {
    const mfi_st_entry *e = mfi_st_find(&file, names[i]);
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
    const mfi_st_entry *e = found[i];
    fresh[i] = mfi_tensor_empty((mf_dtype)e->loadable, e->ndim, e->dims, s);
    if (!fresh[i]) goto out;
    mfi_st_load(&file, e, mfi_data(fresh[i]));
  }
  /* Everything checked: now the session changes, all or nothing. Each
   * value goes to the device its variable lives on first. */
  if (!mfi_session_lock(sess, s)) goto out;
  for (int i = 0; i < n; i++) {
    mfi_device *d = mfi_session_device(sess, vars[i], s);
    mf_tensor *moved = d ? mfi_tensor_to(fresh[i], d, s) : NULL;
    if (!moved || !(slots[i] = mfi_session_slot(sess, vars[i], s))) {
      mf_tensor_delete(moved);
      break;
    }
    mf_tensor_delete(fresh[i]);
    fresh[i] = moved;
  }
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
  mfi_st_free(&file);
  free(buf);
}

/* ---------------------------------------------------------------- listing */

typedef struct {
  char *name;
  char file_dtype[16];
  mf_dtype dtype;
  int ndim;
  int64_t *dims;
} listed;

struct mf_checkpoint_contents {
  int n;
  listed *e;
};

void mf_checkpoint_contents_delete(mf_checkpoint_contents *c)
{
  if (!c) return;
  for (int i = 0; i < c->n; i++) free(c->e[i].name), free(c->e[i].dims);
  free(c->e);
  free(c);
}

mf_checkpoint_contents *mf_checkpoint_list(const char *path, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!path || !*path) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_checkpoint_list: path is %s", path ? "empty" : "NULL");
    return NULL;
  }
  size_t size = 0;
  unsigned char *buf = mfi_read_file(path, "checkpoint", &size, s);
  if (!buf) return NULL;
  mfi_st_file file = {0};
  mf_checkpoint_contents *c = calloc(1, sizeof *c);
  if (!c) goto oom;
  if (!mfi_st_read(&file, path, buf, size, s)) goto fail;
  c->e = calloc(file.n ? (size_t)file.n : 1, sizeof *c->e);
  if (!c->e) goto oom;
  for (int i = 0; i < file.n; i++, c->n++) {
    const mfi_st_entry *e = &file.e[i];
    listed *l = &c->e[i];
    l->name = malloc(e->name_len + 1);
    l->dims = malloc(sizeof(int64_t) * (e->ndim ? (size_t)e->ndim : 1));
    if (!l->name || !l->dims) {
      free(l->name), free(l->dims);
      goto oom;
    }
    memcpy(l->name, e->name, e->name_len);
    l->name[e->name_len] = 0;
    snprintf(l->file_dtype, sizeof l->file_dtype, "%s", e->dtype);
    l->dtype = e->loadable >= 0 ? (mf_dtype)e->loadable : MF_NUM_DTYPES;
    l->ndim = e->ndim;
    memcpy(l->dims, e->dims, sizeof(int64_t) * (size_t)e->ndim);
  }
  mfi_st_free(&file);
  free(buf);
  return c;
oom:
  mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory listing checkpoint '%s'", path);
fail:
  mf_checkpoint_contents_delete(c);
  mfi_st_free(&file);
  free(buf);
  return NULL;
}

static const listed *entry(const mf_checkpoint_contents *c, int i)
{
  return c && i >= 0 && i < c->n ? &c->e[i] : NULL;
}

int mf_checkpoint_contents_count(const mf_checkpoint_contents *c) { return c ? c->n : 0; }
const char *mf_checkpoint_contents_name(const mf_checkpoint_contents *c, int i)
{
  const listed *l = entry(c, i);
  return l ? l->name : NULL;
}
mf_dtype mf_checkpoint_contents_dtype(const mf_checkpoint_contents *c, int i)
{
  const listed *l = entry(c, i);
  return l ? l->dtype : MF_NUM_DTYPES;
}
const char *mf_checkpoint_contents_file_dtype(const mf_checkpoint_contents *c, int i)
{
  const listed *l = entry(c, i);
  return l ? l->file_dtype : NULL;
}
int mf_checkpoint_contents_ndim(const mf_checkpoint_contents *c, int i)
{
  const listed *l = entry(c, i);
  return l ? l->ndim : -1;
}
const int64_t *mf_checkpoint_contents_dims(const mf_checkpoint_contents *c, int i)
{
  const listed *l = entry(c, i);
  return l ? l->dims : NULL;
}
