/* vector_types.h (cudasim) - dim3, uint3 and the small vector types (float2, float4, int4...)
 * with their make_* helpers, in C and C++ (C++ adds dim3's constructors). Alignments are the
 * real ones, so a misaligned float4 load faults under the emulator's sanitizer builds too. */
#ifndef ELSIM_VECTOR_TYPES_H
#define ELSIM_VECTOR_TYPES_H

#define ELSIM_ALIGN(n) __attribute__((aligned(n)))

typedef struct uint3 {
    unsigned int x, y, z;
} uint3;
typedef struct int3 {
    int x, y, z;
} int3;
typedef struct float3 {
    float x, y, z;
} float3;
typedef struct ELSIM_ALIGN(8) int2 {
    int x, y;
} int2;
typedef struct ELSIM_ALIGN(8) uint2 {
    unsigned int x, y;
} uint2;
typedef struct ELSIM_ALIGN(8) float2 {
    float x, y;
} float2;
typedef struct ELSIM_ALIGN(16) int4 {
    int x, y, z, w;
} int4;
typedef struct ELSIM_ALIGN(16) uint4 {
    unsigned int x, y, z, w;
} uint4;
typedef struct ELSIM_ALIGN(16) float4 {
    float x, y, z, w;
} float4;
typedef struct ELSIM_ALIGN(16) double2 {
    double x, y;
} double2;

#ifdef __cplusplus
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
#define ELSIM_INLINE static inline
#else
typedef struct dim3 {
    unsigned int x, y, z;
} dim3;
#define ELSIM_INLINE static inline
#endif

ELSIM_INLINE int2 make_int2(int x, int y) {
    int2 v = {x, y};
    return v;
}
ELSIM_INLINE uint2 make_uint2(unsigned int x, unsigned int y) {
    uint2 v = {x, y};
    return v;
}
ELSIM_INLINE float2 make_float2(float x, float y) {
    float2 v = {x, y};
    return v;
}
ELSIM_INLINE uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) {
    uint3 v = {x, y, z};
    return v;
}
ELSIM_INLINE int3 make_int3(int x, int y, int z) {
    int3 v = {x, y, z};
    return v;
}
ELSIM_INLINE float3 make_float3(float x, float y, float z) {
    float3 v = {x, y, z};
    return v;
}
ELSIM_INLINE int4 make_int4(int x, int y, int z, int w) {
    int4 v = {x, y, z, w};
    return v;
}
ELSIM_INLINE uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    uint4 v = {x, y, z, w};
    return v;
}
ELSIM_INLINE float4 make_float4(float x, float y, float z, float w) {
    float4 v = {x, y, z, w};
    return v;
}
ELSIM_INLINE double2 make_double2(double x, double y) {
    double2 v = {x, y};
    return v;
}

#endif /* ELSIM_VECTOR_TYPES_H */
