/* Small float32 math shared by kernels whose loops must vectorise. */
#ifndef MOONFLOW_OPS_FASTMATH_H
#define MOONFLOW_OPS_FASTMATH_H

#include <stdint.h>

/* The per-row gate loops are built for AVX-512 and AVX2 too, picked at load
 * time (a build for the oldest x86-64 stays portable). Same results either
 * way: no reductions, no FMA contraction. Not under ASan or TSan: their
 * instrumented ifunc resolvers would run before the sanitizer's runtime. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define MF_HOT_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MF_HOT_LOOP
#endif

/* float32 exp without a libm call, so the gate loops vectorise (libm's
 * tanhf alone cost more than all the GEMMs): 2^n p(r) with |r| <= ln2/2,
 * Cephes's expf polynomial, within 2 ulp. The input is clamped so 2^n stays
 * a normal float; NaN passes through. */
static inline float exp_f(float x)
{
  /* Unions rather than memcpy for the bit casts: GCC vectorises these loops. */
  union {
    float f;
    int32_t i;
  } t, sc;
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  t.f = x * 1.44269504089f + 12582912.0f; /* 1.5 * 2^23: rounds to an integer */
  int32_t n = t.i - 0x4B400000;
  float k = t.f - 12582912.0f;
  float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  sc.i = (int32_t)((uint32_t)(n + 127) << 23); /* unsigned: NaN gives any n */
  return p * sc.f;
}

#endif
