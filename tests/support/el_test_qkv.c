/* el_test_qkv.c - the q|k|v epilogue's check, behind el_test_qkv.h. Builds without a CUDA
 * backend too (empty there: the tests skip first). */
#include "tests/support/el_test_qkv.h"
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"
#include "kernels/fp16.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include <cuda_runtime_api.h>

enum { NH = EL_TEST_QKV_NH, NKV = EL_TEST_QKV_NKV, HD = EL_TEST_QKV_HD, QD = EL_TEST_QKV_QD,
       KVD = EL_TEST_QKV_KVD, NP = EL_TEST_QKV_NP, NMAX = EL_TEST_QKV_NMAX, LDQ = QD + 3 };

void el_test_qkv_init(el_test_qkv *t, uint64_t *rng) {
    memset(t, 0, sizeof *t);
    float *bias = malloc(2 * KVD * 4);
    uint16_t *bk = malloc(KVD * 2);
    t->cache0 = malloc(NP * KVD * 4);
    for (size_t i = 0; i < NP * HD; i++) t->cache0[i] = el_test_frand(rng);
    t->cos = el_test_dev_copy(t->cache0, NP * HD / 2 * 4);
    t->sin = el_test_dev_copy(t->cache0 + NP * HD / 2, NP * HD / 2 * 4);
    for (size_t i = 0; i < 2 * KVD; i++) bias[i] = el_test_frand(rng);
    for (size_t i = 0; i < NP * KVD; i++) t->cache0[i] = el_test_frand(rng);
    for (size_t i = 0; i < KVD; i++) bk[i] = el_fp32_to_fp16(bias[i]);
    t->bk = el_test_dev_copy(bk, KVD * 2);
    t->bv = el_test_dev_copy(bias + KVD, KVD * 4);
    for (int f = 0; f < 2; f++) {
        for (int k = 0; k < 2; k++) t->c[f][k] = el_test_dev_copy(NULL, NP * KVD * 4);
        t->q[f] = el_test_dev_copy(NULL, NMAX * LDQ * 4);
    }
    t->k = el_test_dev_copy(NULL, NMAX * KVD * 4);
    t->v = el_test_dev_copy(NULL, NMAX * KVD * 4);
    t->word = el_test_dev_copy(NULL, 4);
    t->got = malloc(NP * KVD * 4);
    t->want = malloc(NP * KVD * 4);
    free(bias), free(bk);
}

void el_test_qkv_deinit(el_test_qkv *t) {
    for (int f = 0; f < 2; f++) {
        for (int k = 0; k < 2; k++) cudaFree(t->c[f][k]);
        cudaFree(t->q[f]);
    }
    cudaFree(t->cos), cudaFree(t->sin), cudaFree(t->bk), cudaFree(t->bv), cudaFree(t->k),
        cudaFree(t->v), cudaFree(t->word);
    free(t->cache0), free(t->got), free(t->want);
    memset(t, 0, sizeof *t);
}

/* Whether device buffers a and b hold the same bytes. */
static bool same_bytes(el_test_qkv *t, const void *a, const void *b, size_t bytes) {
    el_test_host_copy(t->got, a, bytes);
    el_test_host_copy(t->want, b, bytes);
    return !memcmp(t->got, t->want, bytes);
}

bool el_test_qkv_case(el_test_qkv *t, el_dtype dt, const void *dw, size_t rb, const float *dx,
                      size_t n, size_t in, const el_cuda_prenorm *pn, int c, size_t pos0,
                      bool byword) {
    const int kvf16 = c % 2, mode = c % 3;
    const bool inter = mode == 1;
    const size_t esz = kvf16 ? 2 : 4;
    const el_dtype kvt = kvf16 ? EL_DT_F16 : EL_DT_F32;
    const int32_t p32 = (int32_t)pos0;
    const char *w = dw;
    EL_CHECK(n <= NMAX);
    cudaMemcpy(t->word, &p32, 4, cudaMemcpyHostToDevice);
    for (int u = 0; u < 2; u++) {
        cudaMemset(t->q[u], 0, NMAX * LDQ * 4);
        for (int k = 0; k < 2; k++)
            cudaMemcpy(t->c[u][k], t->cache0, NP * KVD * 4, cudaMemcpyHostToDevice);
    }
    el_cuda_part parts[3] = {{t->q[0], LDQ, w, NULL, EL_DT_F32, QD},
                             {t->k, KVD, w + QD * rb, t->bk, EL_DT_F16, KVD},
                             {t->v, KVD, w + (QD + KVD) * rb, t->bv, EL_DT_F32, KVD}};
    /* Unfused: the decoder's path without linear_qkv. */
    EL_CHECK_OK(el_cuda_linear_parts(parts, 3, dx, dt, n, in, EL_CUDA_EPI_STORE, pn, NULL));
    if (mode != 2)
        EL_CHECK_OK(el_cuda_rope_at(t->q[0], LDQ, NH, t->k, KVD, NKV, n, HD, t->cos, t->sin,
                                    pos0, byword ? t->word : NULL, inter, NULL));
    if (byword)
        EL_CHECK_OK(el_cuda_kv_store_at(t->c[0][0], t->c[0][1], kvt, t->k, t->v, n * KVD,
                                        t->word, KVD, NULL));
    else
        EL_CHECK_OK(el_cuda_kv_store((char *)t->c[0][0] + pos0 * KVD * esz,
                                     (char *)t->c[0][1] + pos0 * KVD * esz, kvt, t->k, t->v,
                                     n * KVD, NULL));
    /* Fused: one launch, no k and v outputs. */
    parts[0].y = t->q[1];
    parts[1].y = parts[2].y = NULL;
    const el_cuda_qkv r = {mode != 2 ? t->cos : NULL, mode != 2 ? t->sin : NULL, HD,
                           byword ? 0 : pos0, byword ? t->word : NULL, inter,
                           t->c[1][0], t->c[1][1], kvt};
    EL_CHECK(el_cuda_linear_qkv_fuses(parts, dt, &r));
    EL_CHECK_OK(el_cuda_linear_qkv(parts, dx, dt, n, in, pn, &r, NULL));
    bool same = same_bytes(t, t->q[1], t->q[0], n * LDQ * 4);
    for (int k = 0; k < 2; k++) same = same && same_bytes(t, t->c[1][k], t->c[0][k], NP * KVD * 4);
    if (!same)
        fprintf(stderr, "linear_qkv %s n=%zu in=%zu %s cache, %s, norm %d, pos %zu%s: not the "
                "separate kernels' bits\n", el_dtype_name(dt), n, in, el_dtype_name(kvt),
                mode == 0 ? "rotate-half" : mode == 1 ? "interleaved" : "no RoPE",
                pn ? (int)pn->kind : 0, pos0, byword ? " (word)" : "");
    return same;
}

#else
void el_test_qkv_init(el_test_qkv *t, uint64_t *rng) {
    (void)rng;
    memset(t, 0, sizeof *t);
    EL_CHECK(false);
}
void el_test_qkv_deinit(el_test_qkv *t) { (void)t; }
bool el_test_qkv_case(el_test_qkv *t, el_dtype dt, const void *dw, size_t rb, const float *dx,
                      size_t n, size_t in, const el_cuda_prenorm *pn, int c, size_t pos0,
                      bool byword) {
    (void)t, (void)dt, (void)dw, (void)rb, (void)dx, (void)n, (void)in, (void)pn, (void)c,
        (void)pos0, (void)byword;
    return false;
}
#endif
