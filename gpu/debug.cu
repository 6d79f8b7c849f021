// Debugging ops on the device: CheckNumerics. (Assert, Print and LuaFunc
// read their data in host memory and run the CPU's kernel everywhere.)
#include "kernel.h"

namespace MF_CUDA_NS {

// Work item c scans elements [c * len, (c + 1) * len) serially and writes
// what it found (bit 0: a NaN, bit 1: an Inf) to flags[c]: no atomics.
template <class T>
MF_GLOBAL void numerics_kernel(const T *x, int64_t n, int64_t len, int64_t chunks, uint8_t *flags)
{
  MF_FOR(c, chunks)
  {
    uint8_t f = 0;
    int64_t end = (c + 1) * len < n ? (c + 1) * len : n;
    for (int64_t i = c * len; i < end; i++) {
      T v = x[i];
      if (v != v)
        f |= 1;
      else if (v - v != v - v) // inf - inf is NaN; finite - finite is 0
        f |= 2;
    }
    flags[c] = f;
  }
}

static void k_check_numerics(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int64_t n = x->numel, chunks = n < 4096 ? n : 4096, len = chunks ? (n + chunks - 1) / chunks : 0;
  int found = 0;
  if (chunks > 0) {
    uint8_t *flags = (uint8_t *)mfi_scratch(k, (size_t)chunks);
    if (!flags) return;
    with_float(x->dtype, [&](auto z) {
      using T = decltype(z);
      MF_LAUNCH(numerics_kernel<T>, chunks, k->stream)(data<T>(x), n, len, chunks, flags);
    });
    if (!launched(k)) return;
    uint8_t host[4096];
    if (!to_host(k, host, flags, (size_t)chunks)) return;
    for (int64_t c = 0; c < chunks; c++) found |= host[c];
  }
  mfi_check_numerics_done(k, found);
}

extern const mfi_kernel_reg debug_kernels[] = {{"CheckNumerics", k_check_numerics}, {NULL, NULL}};

} // namespace MF_CUDA_NS
