/* quant.c - reference quantize (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) and dequantize (those and
 * Q4_K, Q5_K, Q6_K) of one row, written from ggml's block layouts. The arithmetic follows
 * gguf-py's numpy code step by step in f32, so the bytes and floats match it exactly:
 * scales are divided (not multiplied by a reciprocal) where it divides, quantized values are
 * truncated after adding 0.5 (8.5, 16.5) or rounded half away from zero (Q8_0), scales are
 * rounded to f16 only when stored. Every product and sum is its own statement so that no
 * compiler fuses a multiply-add (ISO C mode: GCC contracts nothing across statements). */
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"

#include <math.h>
#include <string.h>

static inline void put_f16(uint8_t *p, float v) {
    uint16_t h = el_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}
static inline float get_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return el_fp16_to_fp32(h);
}

bool el_quant_can_quantize(el_dtype dt) {
    return dt == EL_DT_Q8_0 || dt == EL_DT_Q4_0 || dt == EL_DT_Q4_1 || dt == EL_DT_Q5_0 ||
           dt == EL_DT_Q5_1;
}

/* The value of largest magnitude (the first on ties), as numpy's argmax of abs. */
static float signed_absmax(const float *x) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void min_max(const float *x, float *mn, float *mx) {
    float a = x[0], b = x[0];
    for (int j = 1; j < 32; j++) {
        if (x[j] < a) a = x[j];
        if (x[j] > b) b = x[j];
    }
    *mn = a;
    *mx = b;
}

/* trunc(v) as an integer clipped to [0, hi]. A non-finite v (a scale whose reciprocal
 * overflows: f32 denormal inputs) gives 0, as numpy's float-to-uint8 cast does on x86-64. */
static inline uint8_t trunc_clip(float v, int hi) {
    v = truncf(v);
    if (!isfinite(v) || !(v > 0)) return 0;
    return v >= (float)hi ? (uint8_t)hi : (uint8_t)v;
}

/* 32 values of 4 or 5 bits: low nibbles as q[j] | q[j + 16] << 4, fifth bits in a LE u32. */
static void pack_nibbles(const uint8_t q[32], uint8_t *qs, uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0x0f) | (q[j + 16] << 4));
    for (int j = 0; j < 32; j++) h |= (uint32_t)((q[j] >> 4) & 1u) << j;
    if (qh) memcpy(qh, &h, 4);
}

static void quantize_block(el_dtype dt, const float *x, uint8_t *o) {
    uint8_t q[32];
    if (dt == EL_DT_Q8_0) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        put_f16(o, d);
        for (int j = 0; j < 32; j++) {
            float v = roundf(x[j] * id); /* half away from zero, as np_roundf */
            o[2 + j] = isfinite(v) ? (uint8_t)(int8_t)v : 0; /* non-finite: as trunc_clip */
        }
        return;
    }
    const bool five = dt == EL_DT_Q5_0 || dt == EL_DT_Q5_1;
    const int hi = five ? 31 : 15;
    if (dt == EL_DT_Q4_0 || dt == EL_DT_Q5_0) {
        float d = signed_absmax(x) / (five ? -16.0f : -8.0f);
        float id = d != 0 ? 1.0f / d : 0.0f, bias = five ? 16.5f : 8.5f;
        for (int j = 0; j < 32; j++) {
            float v = x[j] * id;
            q[j] = trunc_clip(v + bias, hi);
        }
        put_f16(o, d);
        pack_nibbles(q, o + (five ? 6 : 2), five ? o + 2 : NULL);
        return;
    }
    float mn, mx; /* Q4_1, Q5_1 */
    min_max(x, &mn, &mx);
    float d = (mx - mn) / (float)hi, id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        float v = (x[j] - mn) * id;
        q[j] = trunc_clip(v + 0.5f, hi);
    }
    put_f16(o, d);
    put_f16(o + 2, mn);
    pack_nibbles(q, o + (five ? 8 : 4), five ? o + 4 : NULL);
}

void el_quantize_row(el_dtype dt, const float *x, void *out, size_t n) {
    const size_t bb = el_dtype_block_bytes(dt);
    uint8_t *o = out;
    for (size_t b = 0; b < n / 32; b++) quantize_block(dt, x + 32 * b, o + bb * b);
}

/* ---- unpack and dequantize ---------------------------------------------------------- */

/* The 4/5-bit values of a 32-block (Q4_x: qh NULL) in element order. */
static void unpack_nibbles(const uint8_t *qs, const uint8_t *qh, int8_t q[32]) {
    uint32_t h = 0;
    if (qh) memcpy(&h, qh, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0x0f) | (((h >> j) & 1u) << 4));
        q[j + 16] = (int8_t)((qs[j] >> 4) | (((h >> (j + 16)) & 1u) << 4));
    }
}

void el_quant_unpack(el_dtype dt, const uint8_t *b, el_qblock *u) {
    u->off = 0;
    u->m = 0;
    u->nsub = 1;
    u->has_min = dt == EL_DT_Q4_1 || dt == EL_DT_Q5_1;
    switch (dt) {
    case EL_DT_Q8_0:
        u->d = get_f16(b);
        memcpy(u->q, b + 2, 32);
        return;
    case EL_DT_Q4_0:
    case EL_DT_Q5_0: {
        const bool five = dt == EL_DT_Q5_0;
        u->d = get_f16(b);
        u->off = five ? 16 : 8;
        unpack_nibbles(b + (five ? 6 : 2), five ? b + 2 : NULL, u->q);
        return;
    }
    case EL_DT_Q4_1:
    case EL_DT_Q5_1: {
        const bool five = dt == EL_DT_Q5_1;
        u->d = get_f16(b);
        u->m = get_f16(b + 2);
        unpack_nibbles(b + (five ? 8 : 4), five ? b + 4 : NULL, u->q);
        return;
    }
    case EL_DT_Q4_K:
    case EL_DT_Q5_K: { /* d, dmin, scales[12], (Q5_K: qh[32]), qs[128] */
        const bool five = dt == EL_DT_Q5_K;
        const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
        u->d = get_f16(b);
        u->m = get_f16(b + 2);
        u->nsub = 8;
        uint8_t scm[16];
        el_quant_k_scales(b + 4, scm);
        for (int j = 0; j < 8; j++) {
            u->sc[j] = scm[j];
            u->mn[j] = scm[8 + j];
            const uint8_t *p = qs + 32 * (j / 2); /* two sub-blocks per 32 bytes: lo, hi */
            for (int l = 0; l < 32; l++) {
                int q = (j & 1) ? p[l] >> 4 : p[l] & 0x0f;
                if (five) q |= ((qh[l] >> j) & 1) << 4;
                u->q[32 * j + l] = (int8_t)q;
            }
        }
        return;
    }
    default: { /* Q6_K: ql[128], qh[64], scales[16] (i8), d */
        const uint8_t *ql = b, *qh = b + 128;
        u->d = get_f16(b + 208);
        u->m = u->d;
        u->nsub = 16;
        for (int j = 0; j < 16; j++) {
            u->sc[j] = (int8_t)b[192 + j];
            u->mn[j] = 32 * u->sc[j];
        }
        /* Per 128 elements (g): four runs of 32 = ql low nibbles of bytes 0..31, of 32..63,
         * then the high nibbles; qh adds bits 0-1, 2-3, 4-5, 6-7 of its 32 bytes. */
        for (int g = 0; g < 2; g++)
            for (int i = 0; i < 128; i++) {
                int run = i / 32, l = i % 32;
                int lo = ql[64 * g + 32 * (run & 1) + l];
                lo = run < 2 ? lo & 0x0f : lo >> 4;
                u->q[128 * g + i] = (int8_t)(lo | (((qh[32 * g + l] >> (2 * run)) & 3) << 4));
            }
        return;
    }
    }
}

/* One block into y, in gguf-py's order of f32 operations. */
static void dequantize_block(el_dtype dt, const uint8_t *b, float *y) {
    el_qblock u;
    el_quant_unpack(dt, b, &u);
    if (u.nsub == 1) {
        for (int i = 0; i < 32; i++) {
            float v = u.d * (float)(u.q[i] - u.off);
            y[i] = u.has_min ? v + u.m : v; /* (no + 0: it would turn -0 into +0) */
        }
        return;
    }
    const int len = 256 / (int)u.nsub;
    for (int i = 0; i < 256; i++) {
        const int j = i / len;
        const float dl = u.d * (float)u.sc[j];
        if (dt == EL_DT_Q6_K) {
            y[i] = dl * (float)(u.q[i] - 32);
        } else {
            const float ml = u.m * (float)u.mn[j], v = dl * (float)u.q[i];
            y[i] = v - ml;
        }
    }
}

void el_dequantize_row(el_dtype dt, const void *q, float *out, size_t n) {
    const uint8_t *b = q;
    switch (dt) {
    case EL_DT_F32: memcpy(out, q, n * 4); return;
    case EL_DT_F16:
    case EL_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            out[i] = dt == EL_DT_F16 ? el_fp16_to_fp32(h) : el_bf16_to_fp32(h);
        }
        return;
    default: {
        const size_t bb = el_dtype_block_bytes(dt), blk = el_dtype_block(dt);
        for (size_t k = 0; k < n / blk; k++) dequantize_block(dt, b + bb * k, out + blk * k);
        return;
    }
    }
}
