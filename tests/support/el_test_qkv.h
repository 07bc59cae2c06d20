/* el_test_qkv.h - the q|k|v epilogue's check (el_cuda_linear_qkv, RoPE and the KV cache
 * stores in the matmul launch), shared by the CUDA kernel tests for every weight type: the
 * fused launch bit for bit against what the decoder runs without it (el_cuda_linear_parts,
 * then el_cuda_rope_at of q and k, then the cache stores). GQA: NH query heads, NKV key/value
 * heads of HD; q rows padded (ld QD + 3); an f16 bias on k, an f32 one on v, none on q. */
#ifndef EL_TEST_QKV_H
#define EL_TEST_QKV_H

#include "edgeload.h"
#include "kernels/cuda/cuda_ops.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    EL_TEST_QKV_NH = 4,
    EL_TEST_QKV_NKV = 2,
    EL_TEST_QKV_HD = 16,
    EL_TEST_QKV_QD = EL_TEST_QKV_NH * EL_TEST_QKV_HD,
    EL_TEST_QKV_KVD = EL_TEST_QKV_NKV * EL_TEST_QKV_HD,
    EL_TEST_QKV_ROWS = EL_TEST_QKV_QD + 2 * EL_TEST_QKV_KVD, /* weight rows: q, k, v */
    EL_TEST_QKV_NP = 1024, /* cache rows (positions) */
    EL_TEST_QKV_NMAX = 11, /* input rows at most */
};

/* Device buffers of the check: tables of any values in [-1, 1) (both sides read the same),
 * the biases, [side][k, v] caches, the unfused path's k and v rows, q of each side, the
 * position word. */
typedef struct el_test_qkv {
    float *cos, *sin, *k, *v, *q[2], *cache0;
    void *bk, *bv, *c[2][2];
    int32_t *word;
    uint8_t *got, *want; /* host: a cache each */
} el_test_qkv;

/* Allocates and fills t from *rng (CUDA builds; a build without it fails the checks). */
void el_test_qkv_init(el_test_qkv *t, uint64_t *rng);
void el_test_qkv_deinit(el_test_qkv *t);

/* One case: weights dw (device, dt: EL_TEST_QKV_ROWS rows of rb bytes, q's then k's then
 * v's), n <= NMAX input rows dx of in values, with the prologue's norm pn (or NULL);
 * case c: an f16 cache when c is odd (else f32), pairs c % 3 (rotate-half, interleaved, no
 * RoPE); positions from pos0, by value or (byword) from the device word. Both caches are compared whole (no other row is written); the fused
 * launch gets no k and v outputs (NULL). Returns whether q and both caches are the same
 * bytes (and says which case differs on stderr). */
bool el_test_qkv_case(el_test_qkv *t, el_dtype dt, const void *dw, size_t rb, const float *dx,
                      size_t n, size_t in, const el_cuda_prenorm *pn, int c, size_t pos0,
                      bool byword);

#endif /* EL_TEST_QKV_H */
