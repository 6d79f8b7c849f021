/* Placement: which device runs each operation.
 *
 * An op's device string is parsed when the op is created. At planning time
 * each op gets a device: variables' reads and updates that of their
 * variable; otherwise the requested device when it exists and has a kernel
 * for the op; otherwise (no request, or soft placement) the preferred device
 * with a kernel — a GPU when there is one, else the CPU. A session keeps the
 * result per op, so a variable never moves once placed. */
#include "placement.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- parsing */

static bool parse_index(const char *p, size_t n, int *index)
{
  if (n == 1 && *p == '*') return *index = -1, true;
  if (n == 0 || n > 6) return false;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)p[i])) return false;
    v = v * 10 + (p[i] - '0');
  }
  *index = v;
  return true;
}

static int parse_type(const char *p, size_t n)
{
  for (int t = 0; t < MFI_NUM_DEVICE_TYPES; t++) {
    const char *name = mfi_device_type_name((mfi_device_type)t);
    if (strlen(name) == n && strncasecmp(p, name, n) == 0) return t;
  }
  return -1;
}

static const char usage[] = "write \"/cpu:0\", \"/gpu:1\", \"/device:GPU:0\" or "
                            "\"/job:localhost/replica:0/task:0/device:CPU:0\"";

/* "TYPE", "TYPE:N" or "TYPE:*" */
static bool parse_device(const char *str, const char *p, size_t n, mfi_device_spec *spec, char *err,
                         size_t errsize)
{
  const char *colon = memchr(p, ':', n);
  size_t tn = colon ? (size_t)(colon - p) : n;
  int t = parse_type(p, tn);
  if (t < 0) {
    snprintf(err, errsize,
             "device '%s' has an unknown device type '%.*s' (moonflow has CPU, GPU%s)", str,
             (int)tn, p, mfi_device_find(MFI_DEVICE_TEST, 0) ? ", TEST" : "");
    return false;
  }
  spec->type = t;
  spec->index = -1;
  if (!colon || parse_index(colon + 1, n - tn - 1, &spec->index)) return true;
  snprintf(err, errsize, "'%s' is not a device name (%s)", str, usage);
  return false;
}

bool mfi_device_spec_parse(const char *str, mfi_device_spec *spec, char *err, size_t errsize)
{
  spec->type = spec->index = -1;
  if (!str) str = "";
  for (const char *p = str; *p;) {
    if (*p == '/') p++;
    size_t n = strcspn(p, "/");
    const char *colon = memchr(p, ':', n);
    size_t key = colon ? (size_t)(colon - p) : n;
    if (key == 3 && strncmp(p, "job", 3) == 0) {
      if (n != 13 || strncmp(colon + 1, "localhost", 9) != 0) {
        snprintf(err, errsize,
                 "device '%s' names another job: a moonflow session runs in one process "
                 "(use /job:localhost or leave the job out)",
                 str);
        return false;
      }
    } else if ((key == 7 && strncmp(p, "replica", 7) == 0) ||
               (key == 4 && strncmp(p, "task", 4) == 0)) {
      int v = -1;
      if (!colon || !parse_index(colon + 1, n - key - 1, &v) || v != 0) {
        snprintf(err, errsize, "device '%s': a moonflow session has only %.*s 0", str, (int)key, p);
        return false;
      }
    } else if (key == 6 && strncmp(p, "device", 6) == 0 && colon) {
      if (!parse_device(str, colon + 1, n - 7, spec, err, errsize)) return false;
    } else if (n) {
      if (!parse_device(str, p, n, spec, err, errsize)) return false;
    } else {
      snprintf(err, errsize, "'%s' is not a device name (%s)", str, usage);
      return false;
    }
    p += n;
  }
  return true;
}

/* ---------------------------------------------------------------- placing */

static bool preferred_types[MFI_NUM_DEVICE_TYPES];

void mfi_prefer_device_type(mfi_device_type t) { preferred_types[t] = true; }

static bool has_kernel(const mf_op *op, const mfi_device *d)
{
  return op->def->kernel[d->type] != NULL;
}

/* The default device for an op: the first preferred (accelerator) device
 * with a kernel for it, else the CPU. */
static mfi_device *default_device(const mf_op *op)
{
  for (int i = 0; i < mfi_device_count(); i++) {
    mfi_device *d = mfi_device_at(i);
    if (preferred_types[d->type] && has_kernel(op, d)) return d;
  }
  return mfi_device_cpu();
}

/* A device matching the spec with a kernel for the op, or NULL. */
static mfi_device *matching(const mf_op *op, mfi_device_spec spec, bool *exists)
{
  *exists = false;
  for (int i = 0; i < mfi_device_count(); i++) {
    mfi_device *d = mfi_device_at(i);
    if ((int)d->type != spec.type || (spec.index >= 0 && d->index != spec.index)) continue;
    *exists = true;
    if (has_kernel(op, d)) return d;
  }
  return NULL;
}

mfi_device *mfi_place(const mf_op *op, mfi_device *colocate, bool soft, mf_status *s)
{
  char kernels[64];
  if (colocate) {
    if (has_kernel(op, colocate)) return colocate;
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "must run where its variable '%s' lives (%s), but %s has no %s kernel there",
                 op->inputs[0].op->name, colocate->name, op->def->type,
                 mfi_device_type_kernel_name(colocate->type));
    return NULL;
  }
  if (op->spec.type < 0) return default_device(op);
  bool exists;
  mfi_device *d = matching(op, op->spec, &exists);
  if (d || soft) return d ? d : default_device(op);
  const char *want = op->device;
  if (!exists)
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "cannot assign a device: '%s' was requested, but no such device exists (this "
                 "process has %d device%s; set config.allow_soft_placement to fall back)",
                 want, mfi_device_count(), mfi_device_count() == 1 ? "" : "s");
  else
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "cannot assign a device: '%s' was requested, but %s has no kernel for %s devices "
                 "(it has: %s; set config.allow_soft_placement to fall back)",
                 want, op->def->type, mfi_device_type_name((mfi_device_type)op->spec.type),
                 mfi_kernel_list(op->def, kernels, sizeof kernels));
  return NULL;
}

const char *mfi_kernel_list(const mfi_opdef *def, char *buf, size_t size)
{
  size_t n = 0;
  buf[0] = 0;
  for (int t = 0; t < MFI_NUM_DEVICE_TYPES; t++)
    if (def->kernel[t] && n < size)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "",
                            mfi_device_type_kernel_name((mfi_device_type)t));
  return buf;
}
