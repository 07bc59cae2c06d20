/* test_loader_quant.c - quantize on load: the llama fixture (tests/fixtures/hf_llama_gqa, f32)
 * loaded with --dtype q8_0/q4_0/q4_1/q5_0/q5_1 places every 2-D tensor whose rows are whole
 * blocks as that type, byte-identical to gguf-py's quantization of the same tensor, and keeps
 * the rest (norms, the down projections' rows of 100) as stored; the reference is
 * tests/fixtures/quant/hf_llama_gqa_load.txt (scripts/fixtures_quant.py). Small chunks split
 * the embedding across staging pieces; O_DIRECT too. The plan sizes the quantized weights.
 * An .elimg packed with --dtype q4_1 (shuffle + LZ4) keeps the same bytes. The plan's rule
 * for which tensors a Q* dtype takes, and its error for block rows that are not whole. */
// ctest-labels: loader
#include "arena/arena.h"
#include "loader/image.h"
#include "loader/load_impl.h"
#include "platform/crc32c.h"
#include "platform/gpu.h"
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"

#include <stdlib.h>
#include <string.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures/"

/* Loads path with --dtype dt (image: as stored, its tensors already dt) into memory mem and
 * compares every tensor with the reference lines of dt. */
static void check_type(el_dtype dt, bool direct, const char *ref, const char *path,
                       el_memory mem) {
    const bool image = strstr(path, ".elimg") != NULL;
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m) return;
    el_plan_params pp = {0, 1, image ? EL_DT_NONE : dt, 64 * 1024, mem, EL_DT_F32};
    el_plan plan, plan32;
    el_status st = el_plan_make(m, &pp, &plan);
    if (image && st == EL_E_UNSUPPORTED) {
        /* The family's plan checks that the forward pass takes the image's dtypes: not
         * until models/ binds block-type weights. */
        fprintf(stderr, "%s (.elimg): not loaded: %s\n", el_dtype_name(dt), el_last_error());
        el_model_close(m);
        return;
    }
    EL_CHECK_OK(st);
    if (!image) {
        pp.dtype = EL_DT_F32;
        EL_CHECK_OK(el_plan_make(m, &pp, &plan32));
        /* Quantized weights take less room than f32 (Q8_0: 34 bytes per 128). */
        EL_CHECK(plan.region_bytes[EL_REGION_WEIGHTS] < plan32.region_bytes[EL_REGION_WEIGHTS] / 2);
        /* The plan says which: 13 matrices quantized; 5 norms and 2 down projections (rows
         * of 100) kept. */
        EL_CHECK(plan.quantized_count == 13 && plan.kept_count == 7);
        EL_CHECK(plan32.quantized_count == 0 && plan32.kept_count == 0);
    } else {
        plan32 = plan;
    }
    el_arena *a = el_test_arena(&plan, mem);
    el_load_params lp = {direct, NULL, NULL};
    el_status ls = a ? el_model_load(m, &plan, a, &lp, NULL) : EL_E_USAGE;
    EL_CHECK_OK(ls);
    /* GPU device memory: the weights copied back to the host to check them. */
    uint8_t *host = NULL, *base = a ? el_arena_region_base(a, EL_REGION_WEIGHTS) : NULL;
    if (ls == EL_OK && mem == EL_MEMORY_CUDA_DEVICE) {
        host = el_test_gpu_to_host(base, plan.region_bytes[EL_REGION_WEIGHTS]);
    }
    int matched = 0, quantized = 0, bad = 0;
    const char *name = el_dtype_name(dt);
    for (const char *line = ref; a && *line;) {
        char ty[16], tn[160], tdt[16];
        unsigned crc = 0;
        int used = 0;
        if (sscanf(line, "%15s %159s %15s %x%n", ty, tn, tdt, &crc, &used) != 4) break;
        line += used;
        while (*line == '\n') line++;
        if (strcmp(ty, name)) continue;
        el_tensor_info ti;
        el_dtype want;
        EL_CHECK_OK(el_model_tensor_find(m, tn, &ti));
        EL_CHECK_OK(el_dtype_parse(tdt, &want));
        uint64_t bytes = 0;
        EL_CHECK_OK(el_dtype_tensor_bytes(ti.loaded_dtype, ti.shape, ti.ndim, tn, &bytes));
        const uint8_t *data = host && ti.data ? host + ((const uint8_t *)ti.data - base) : ti.data;
        uint32_t got = data ? el_crc32c(0, data, (size_t)bytes) : 0;
        if (ti.loaded_dtype != want || got != crc) {
            fprintf(stderr, "  %s %s: loaded %s crc %08x, gguf-py %s crc %08x\n", name, tn,
                    el_dtype_name(ti.loaded_dtype), got, tdt, crc);
            bad++;
        }
        matched++;
        quantized += want == dt;
    }
    fprintf(stderr, "%s%s%s%s: %d tensors compared (%d quantized), %d differ; weights %llu bytes "
            "(f32: %llu)\n", name, direct ? " (O_DIRECT)" : "", image ? " (.elimg)" : "",
            mem == EL_MEMORY_HOST ? "" : mem == EL_MEMORY_CUDA_DEVICE ? " (GPU device memory)"
                                                                      : " (GPU managed memory)",
            matched, quantized, bad,
            (unsigned long long)plan.region_bytes[EL_REGION_WEIGHTS],
            (unsigned long long)plan32.region_bytes[EL_REGION_WEIGHTS]);
    EL_CHECK(matched == 20 && quantized == 13 && bad == 0);
    free(host);
    el_model_close(m);
    el_arena_deinit(a);
}

static void test_plan_rules(void) {
    el_tensor t;
    memset(&t, 0, sizeof t);
    char name[] = "blk.0.ffn_down.weight";
    t.name = name;
    /* Float matrices with rows of whole blocks are quantized, f32, f16 or bf16. */
    const el_dtype floats[] = {EL_DT_F32, EL_DT_F16, EL_DT_BF16};
    for (size_t i = 0; i < 3; i++) {
        t.dtype = floats[i];
        t.ndim = 2, t.shape[0] = 3, t.shape[1] = 64, t.transpose2d = false;
        EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_Q5_1) == EL_DT_Q5_1);
        EL_CHECK(el_plan_staged(&t, EL_DT_Q5_1));
        uint64_t b = 0;
        EL_CHECK_OK(el_plan_tensor_bytes(&t, EL_DT_Q5_1, &b));
        EL_CHECK(b == 3 * 2 * 24);
        t.shape[1] = 100; /* rows that are not whole blocks */
        EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_Q8_0) == floats[i]);
        t.shape[1] = 64, t.transpose2d = true; /* placed transposed */
        EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_Q8_0) == floats[i]);
        t.transpose2d = false, t.ndim = 1; /* norms, biases */
        EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_Q8_0) == floats[i]);
        EL_CHECK(!el_plan_staged(&t, EL_DT_Q8_0));
        /* Float targets are unchanged by the block types. */
        t.ndim = 2;
        EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_F16) == EL_DT_F16);
    }
    /* Integers and tensors already quantized stay as they are. */
    t.dtype = EL_DT_I32;
    EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_Q4_0) == EL_DT_I32);
    t.dtype = EL_DT_Q4_K, t.shape[1] = 512;
    EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_Q8_0) == EL_DT_Q4_K);
    EL_CHECK(el_plan_tensor_dtype(&t, EL_DT_F16) == EL_DT_Q4_K);
    uint64_t b = 0;
    EL_CHECK_OK(el_plan_tensor_bytes(&t, EL_DT_NONE, &b));
    EL_CHECK(b == 3 * 2 * 144);
    /* A stored block tensor whose rows are not whole blocks: refused at plan, by name. */
    t.shape[1] = 100;
    EL_CHECK_STATUS(el_plan_tensor_bytes(&t, EL_DT_NONE, &b), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "blk.0.ffn_down.weight") && strstr(el_last_error(), "Q4_K"));
}

int main(void) {
    test_plan_rules();
    size_t n = 0;
    char *ref = el_test_read_file(FIX "quant/hf_llama_gqa_load.txt", &n);
    EL_CHECK(ref != NULL);
    if (!ref) return el_test_finish("test_loader_quant");
    static const el_dtype types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0, EL_DT_Q5_1};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_type(types[i], false, ref, FIX "hf_llama_gqa", EL_MEMORY_HOST);
    check_type(EL_DT_Q4_1, true, ref, FIX "hf_llama_gqa", EL_MEMORY_HOST);
    /* With a GPU (or the emulator): quantized on the way into device memory (through the
     * pinned upload buffers) and into managed memory. */
    if (el_device_available(EL_DEVICE_CUDA)) {
        check_type(EL_DT_Q8_0, false, ref, FIX "hf_llama_gqa", EL_MEMORY_CUDA_DEVICE);
        check_type(EL_DT_Q5_1, true, ref, FIX "hf_llama_gqa", EL_MEMORY_CUDA_DEVICE);
        check_type(EL_DT_Q4_0, false, ref, FIX "hf_llama_gqa", EL_MEMORY_CUDA_MANAGED);
    } else {
        printf("note: no GPU: quantizing into GPU memory is not exercised here\n");
    }

    /* Packed quantized: the image holds Q4_1 tensors and loads them as they are. */
    el_test_tmpdir();
    const char *img = el_test_path("q4_1.elimg");
    el_image_pack_params ip = {EL_DT_Q4_1, EL_IMG_CODEC_SHUFFLE_LZ4, 64 * 1024, NULL, 0, false};
    EL_CHECK_OK(el_image_pack(FIX "hf_llama_gqa", img, &ip, NULL));
    check_type(EL_DT_Q4_1, false, ref, img, EL_MEMORY_HOST);
    check_type(EL_DT_Q4_1, true, ref, img, EL_MEMORY_HOST);
    el_test_tmpdir_cleanup();

    /* Types that cannot be quantized to on load are refused by name. */
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(FIX "hf_llama_gqa", NULL, &m));
    el_plan_params pp = {0, 1, EL_DT_Q4_K, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    EL_CHECK_STATUS(el_plan_make(m, &pp, &plan), EL_E_USAGE);
    EL_CHECK(strstr(el_last_error(), "Q4_K") && strstr(el_last_error(), "q8_0"));
    el_model_close(m);
    free(ref);
    return el_test_finish("test_loader_quant");
}
