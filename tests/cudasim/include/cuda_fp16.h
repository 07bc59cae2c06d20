/* cuda_fp16.h (cudasim) - the IEEE half type and its conversions for the emulator. The
 * float -> half rounding is round-to-nearest-even, computed here with float arithmetic
 * (scale by a power of two, rintf) rather than bit manipulation, and must agree bit for bit
 * with kernels/fp16.h (tests/test_cudasim.c sweeps both). NaN becomes sign | 0x7e00 as in
 * kernels/fp16.h (a real GPU gives the canonical 0x7fff; NaN bits never matter to edgeload).
 * C sees the plain struct; C++ adds the float conversions. */
#ifndef ELSIM_CUDA_FP16_H
#define ELSIM_CUDA_FP16_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C++" {
struct __half {
    unsigned short __x; /* the binary16 bits */
    __half() = default;
    inline __half(float f);
    inline operator float() const;
};
}
typedef struct __half_raw {
    unsigned short x;
} __half_raw;
#else
typedef struct __half {
    unsigned short __x;
} __half;
#endif

/* binary16 bits of f, rounded to nearest even. */
static inline unsigned short elsim_f32_to_f16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    unsigned short sign = (unsigned short)((u >> 16) & 0x8000u);
    uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return (unsigned short)(sign | 0x7e00u); /* NaN */
    float a = fabsf(f);
    int e = (int)(mag >> 23) - 127; /* floor(log2 a) for normal floats */
    if (e > 15) return (unsigned short)(sign | 0x7c00u); /* inf, or >= 2^16: too large */
    if (e < -14) /* half subnormal range: count units of 2^-24 (1024 carries to 0x400) */
        return (unsigned short)(sign | (unsigned short)rintf(ldexpf(a, 24)));
    /* 11 significant bits: q in [1024, 2048]; 2048 carries into the exponent (to inf at the
     * top, 65520 and above). */
    unsigned q = (unsigned)rintf(ldexpf(a, 10 - e));
    return (unsigned short)(sign | (((unsigned)(e + 15) << 10) + (q - 1024u)));
}

static inline float elsim_f16_bits_to_f32(unsigned short h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in float */
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    if (e == 31) u = sign | 0x7f800000u | (m << 13); /* inf or NaN (payload kept) */
    else u = sign | ((e + 112u) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline __half __float2half_rn(float f) {
    __half h;
    h.__x = elsim_f32_to_f16_bits(f);
    return h;
}
static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline float __half2float(__half h) { return elsim_f16_bits_to_f32(h.__x); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short x) {
    __half h;
    h.__x = x;
    return h;
}

#ifdef __cplusplus
inline __half::__half(float f) : __x(elsim_f32_to_f16_bits(f)) {}
inline __half::operator float() const { return elsim_f16_bits_to_f32(__x); }
#endif

#endif /* ELSIM_CUDA_FP16_H */
