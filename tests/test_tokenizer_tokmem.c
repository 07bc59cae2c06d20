/* test_tokenizer_tokmem.c - tokenizer/tok_mem.c: the measure mode counts what a bump allocator
 * over a 4 KiB-aligned block would use (alignment padding included), the build mode hands
 * out exactly that block, zeroed, and refuses past its end; el_tok_build_heap gives a
 * tokenizer owning one block of the measured size and refuses a build that allocates
 * differently the second time; a real backend (hf-bpe) measures the same bytes its build
 * uses and encodes the same from a heap block as from a caller's block. */
// ctest-labels: tokenizer;unit
// ctest-timeout: 30
#include "tests/support/el_test.h"
#include "platform/platform.h"
#include "tokenizer/tok_mem.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* A fake backend: an el_tokenizer and a few tables of sizes from args. */
typedef struct fake_args {
    size_t sizes[4];
    size_t aligns[4];
    int *calls; /* counts builds; odd calls allocate one byte more when `unstable` */
    bool unstable;
} fake_args;

static const el_tokenizer_vtable k_fake_vt = {"fake", NULL, NULL, NULL};

static el_status fake_build(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const fake_args *a = args;
    int call = (*a->calls)++;
    el_tokenizer *t = el_tok_alloc(mem, sizeof *t, 64);
    if (!t) return el_errorf(EL_E_NOMEM, "fake: no room");
    el_tokenizer_base_init(t);
    t->vt = &k_fake_vt;
    for (int i = 0; i < 4; i++) {
        size_t n = a->sizes[i] + (a->unstable && (call & 1) ? 1 : 0);
        uint8_t *p = el_tok_alloc(mem, n, a->aligns[i]);
        if (!p) return el_errorf(EL_E_NOMEM, "fake: no room for table %d", i);
        EL_CHECK(((uintptr_t)p & (a->aligns[i] - 1)) == 0);
        bool zero = true;
        for (size_t k = 0; k < n; k++) zero = zero && p[k] == 0;
        EL_CHECK(zero); /* zeroed */
        memset(p, 0xab, n);
    }
    *out = t;
    return EL_OK;
}

static void test_measure_and_block(void) {
    int calls = 0;
    fake_args a = {{10, 300000, 0, 7}, {1, 64, 8, 4096}, &calls, false};
    size_t bytes = 0;
    EL_CHECK_OK(el_tok_measure(fake_build, &a, &bytes));
    /* sizeof(el_tokenizer) at 0, then 10 bytes, 300000 at 64, 0 at 8, 7 at 4096 */
    size_t want = sizeof(el_tokenizer);
    want = want + 10;
    want = (want + 63) / 64 * 64 + 300000;
    want = (want + 7) / 8 * 8;
    want = (want + 4095) / 4096 * 4096 + 7;
    EL_CHECK(bytes == want);

    /* Build into a caller's block of exactly that size: all used, nothing past it. */
    uint8_t *block = NULL;
    EL_CHECK(posix_memalign((void **)&block, 4096, bytes + 64) == 0);
    memset(block, 0x5a, bytes + 64);
    el_tok_mem m;
    el_tok_mem_block(&m, block, bytes);
    el_tokenizer *t = NULL;
    EL_CHECK_OK(fake_build(&a, &m, &t));
    EL_CHECK(m.used == bytes && (uint8_t *)t == block);
    bool untouched = true;
    for (size_t i = bytes; i < bytes + 64; i++) untouched = untouched && block[i] == 0x5a;
    EL_CHECK(untouched);
    /* One byte short: the last table does not fit. */
    el_tok_mem_block(&m, block, bytes - 1);
    t = NULL;
    EL_CHECK_STATUS(fake_build(&a, &m, &t), EL_E_NOMEM);
    free(block);

    /* Plain allocator edges. */
    el_tok_mem_block(&m, (void *)&m, 0);
    EL_CHECK(el_tok_alloc(&m, 0, 1) != NULL && el_tok_alloc(&m, 1, 1) == NULL);
    EL_CHECK(el_tok_alloc_array(&m, SIZE_MAX / 2, 4, 4) == NULL); /* overflow */
    el_tok_mem_measure(&m);
    char *s = el_tok_strdup(&m, "abc", 3);
    EL_CHECK(s && !strcmp(s, "abc") && m.used == 4);
    EL_CHECK(el_tok_alloc(&m, SIZE_MAX - 2, 1) == NULL);
    el_tok_mem_release(&m);
}

static void test_build_heap(void) {
    int calls = 0;
    fake_args a = {{1, 2, 3, 4}, {1, 2, 4, 8}, &calls, false};
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tok_build_heap(fake_build, &a, &t));
    EL_CHECK(t && t->block == t && calls == 2); /* measured, then built at the block's start */
    el_tokenizer_close(t);
    /* A build that takes other sizes the second time is refused, nothing leaked. */
    a.unstable = true;
    calls = 0;
    t = NULL;
    EL_CHECK_STATUS(el_tok_build_heap(fake_build, &a, &t), EL_E_NOMEM);
    EL_CHECK(t == NULL);
    a.sizes[3] = 0;
    a.unstable = false;
    int odd = 1;
    a.calls = &odd; /* measure sees the +1 byte, build does not: fewer bytes than measured */
    a.unstable = true;
    EL_CHECK_STATUS(el_tok_build_heap(fake_build, &a, &t), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "measured") != NULL && t == NULL);
}

/* hf-bpe through mem: a measure then a build into a caller's block equals the heap open. */
static void test_hf_bpe(void) {
    const char *path = EL_SOURCE_DIR "/tests/fixtures/hf_tokenizer/tokenizer.json";
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("no %s: the hf-bpe part is skipped\n", path);
        return;
    }
    fclose(f);
    el_tok_mem m;
    el_tok_mem_measure(&m);
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_open_mem(path, 0, &m, &t));
    size_t bytes = m.used;
    el_tok_mem_release(&m);
    EL_CHECK(bytes > 0);
    void *block = NULL;
    EL_CHECK(posix_memalign(&block, 4096, bytes) == 0);
    el_tok_mem_block(&m, block, bytes);
    t = NULL;
    EL_CHECK_OK(el_tokenizer_open_mem(path, 0, &m, &t));
    EL_CHECK(t && m.used == bytes && t->block == NULL && t->vt->close == NULL);
    el_tokenizer *h = NULL;
    EL_CHECK_OK(el_tokenizer_open(path, 0, &h));
    /* The same bytes streamed from memory: the same tokenizer. */
    size_t len = 0;
    char *text_json = el_test_read_file(path, &len);
    el_tokenizer *pm = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_parse(text_json, len, "in memory", 0, &pm));
    EL_CHECK(pm && h && pm->vocab_size == h->vocab_size && pm->bos_id == h->bos_id);
    el_tokenizer_close(pm);
    EL_CHECK_STATUS(el_tokenizer_hf_bpe_parse(text_json, len / 2, "cut", 0, &pm), EL_E_INVALID);
    EL_CHECK(pm == NULL && strstr(el_last_error(), "cut"));
    free(text_json);
    if (t && h) {
        static const char text[] = "Hello world, the tokenizer tables live in one block.";
        int32_t a[64], b[64];
        size_t na = 0, nb = 0;
        EL_CHECK_OK(el_tokenizer_encode(t, text, sizeof text - 1, true, a, 64, &na));
        EL_CHECK_OK(el_tokenizer_encode(h, text, sizeof text - 1, true, b, 64, &nb));
        EL_CHECK(na == nb && na > 3 && !memcmp(a, b, na * sizeof *a));
    }
    el_tokenizer_close(h);
    free(block); /* t lives in it */
}

int main(void) {
    test_measure_and_block();
    test_build_heap();
    test_hf_bpe();
    return el_test_finish("test_tokenizer_tokmem");
}
