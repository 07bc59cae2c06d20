/* test_loader_transpose.c - tensors marked transpose2d (stored [rows, cols], placed
 * [cols, rows], as GPT-2's Conv1D weights) land transposed in the arena, element for element,
 * with and without a dtype conversion (f32 -> f16, f32 -> bf16, f16 -> f32, bf16 kept), with
 * pieces that split stored rows (a 64 KiB chunk smaller than the tensor, rows longer than the
 * chunk), through O_DIRECT windows, next to untouched as-stored tensors; the same into GPU
 * device memory through the pinned upload ring and into managed memory when a GPU (or the
 * cudasim emulator) is there; and the piecewise converter directly, at arbitrary piece
 * boundaries. */
// ctest-labels: loader
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"

#include "kernels/fp16.h"
#include "arena/arena.h"
#include "loader/load_impl.h"
#include "platform/gpu.h"

#include <stdlib.h>
#include <string.h>

static const el_test_tensor k_tensors[] = {
    {"a.odd", EL_DT_F32, 2, {37, 53}},       /* odd both ways, smaller than a block */
    {"b.plain", EL_DT_F32, 2, {300, 257}},   /* not transposed: the as-stored path */
    {"c.big", EL_DT_F32, 2, {300, 257}},     /* 308400 bytes: pieces of 32 whole rows */
    {"d.f16", EL_DT_F16, 2, {129, 7}},
    {"e.bf16", EL_DT_BF16, 2, {5, 1031}},
    {"f.longrow", EL_DT_F32, 2, {3, 40000}}, /* a row of 160000 bytes: pieces split rows */
    {"g.row", EL_DT_F32, 2, {1, 17}},
    {"h.col", EL_DT_F32, 2, {17, 1}},
    {"i.empty", EL_DT_F32, 2, {0, 5}},
    {"j.bytes", EL_DT_U8, 2, {33, 65}},      /* any element size transposes */
};
#define NT (sizeof k_tensors / sizeof k_tensors[0])
#define SEED 11u

static bool marked(size_t i) { return i != 1; }

static bool is_float(el_dtype d) { return d == EL_DT_F32 || d == EL_DT_F16 || d == EL_DT_BF16; }

static float to_f32(el_dtype dt, const uint8_t *p) {
    float v;
    uint16_t h;
    if (dt == EL_DT_F32) return memcpy(&v, p, 4), v;
    memcpy(&h, p, 2);
    return dt == EL_DT_F16 ? el_fp16_to_fp32(h) : el_bf16_to_fp32(h);
}

/* Element (r, c) of the stored matrix src ([rows, cols] of from), as `to`, into out. */
static void expect_elem(el_dtype from, const uint8_t *src, uint64_t cols, uint64_t r,
                        uint64_t c, el_dtype to, uint8_t *out) {
    size_t es = el_dtype_size(from);
    const uint8_t *p = src + (r * cols + c) * es;
    if (from == to) {
        memcpy(out, p, es);
        return;
    }
    float v = to_f32(from, p);
    if (to == EL_DT_F32) {
        memcpy(out, &v, 4);
    } else {
        uint16_t h = to == EL_DT_F16 ? el_fp32_to_fp16(v) : el_fp32_to_bf16(v);
        memcpy(out, &h, 2);
    }
}

/* Mismatching elements of tensor i in the arena (placed = transposed if marked). */
static long check_tensor(el_model *m, size_t i, el_dtype target) {
    const el_test_tensor *spec = &k_tensors[i];
    el_tensor_info t;
    if (el_model_tensor_find(m, spec->name, &t) != EL_OK) return -1;
    uint64_t rows = spec->shape[0], cols = spec->shape[1];
    size_t es = el_dtype_size(spec->dtype);
    el_dtype want = target != EL_DT_NONE && is_float(spec->dtype) ? target : spec->dtype;
    if (t.loaded_dtype != want) return -2;
    if (rows * cols > 0 && !t.data) return -3;
    uint8_t *src = malloc(rows * cols * es + 1);
    el_test_fill(SEED, i, spec->dtype, 0, src, rows * cols * es);
    size_t ds = el_dtype_size(want);
    long bad = 0;
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++) {
            uint8_t exp[8];
            expect_elem(spec->dtype, src, cols, r, c, want, exp);
            uint64_t at = marked(i) ? c * rows + r : r * cols + c;
            if (memcmp((const uint8_t *)t.data + at * ds, exp, ds)) bad++;
        }
    free(src);
    return bad;
}

static void load_and_check(const char *path, el_dtype target, bool direct, el_memory mem) {
    fprintf(stderr, "-- target %s%s, %s memory\n",
            target == EL_DT_NONE ? "as stored" : el_dtype_name(target),
            direct ? ", O_DIRECT" : "", el_memory_name(mem));
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m) return;
    for (size_t i = 0; i < NT; i++) {
        long k = el_model_find(m, k_tensors[i].name);
        EL_CHECK(k >= 0);
        if (k >= 0) m->tensors.items[k].transpose2d = marked(i);
    }
    el_plan_params pp = {0, 0, target, 64 * 1024, mem, EL_DT_F32};
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    EL_CHECK(plan.params.chunk_bytes == 64 * 1024);
    el_arena *a = el_test_arena(&plan, mem);
    el_load_params lp = {direct, NULL, NULL};
    el_load_stats st = {0, 0, 0};
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, &lp, &st));
    uint8_t *host = NULL; /* GPU device memory: the weights copied back to check them */
    if (a && m->loaded && mem == EL_MEMORY_CUDA_DEVICE) {
        uint8_t *base = el_arena_region_base(a, EL_REGION_WEIGHTS);
        host = el_test_gpu_to_host(base, plan.region_bytes[EL_REGION_WEIGHTS]);
        for (size_t i = 0; i < m->tensors.count; i++)
            m->tensors.items[i].data = host + ((uint8_t *)m->tensors.items[i].data - base);
    }
    if (a && m->loaded) {
        EL_CHECK(st.bytes_read == plan.read_bytes);
        for (size_t i = 0; i < NT; i++) {
            long bad = check_tensor(m, i, target);
            if (bad) fprintf(stderr, "   %s: %ld bad\n", k_tensors[i].name, bad);
            EL_CHECK(bad == 0);
        }
        el_arena_stats as;
        el_arena_stats_get(a, &as);
        EL_CHECK(as.region[EL_REGION_STAGING].used == 0);
        /* No second copy: the weights region holds each tensor once. */
        EL_CHECK(as.region[EL_REGION_WEIGHTS].used <= plan.region_bytes[EL_REGION_WEIGHTS]);
    }
    free(host);
    el_arena_deinit(a);
    el_model_close(m);
}

/* The converter on its own: a [rows, cols] matrix cut into pieces at every kind of
 * boundary (inside a row, at a row end, several rows, a single element) gives the same
 * transpose as one whole piece and as the element-by-element definition. */
static void check_pieces(el_dtype from, el_dtype to, uint64_t rows, uint64_t cols) {
    size_t es = el_dtype_size(from), ds = el_dtype_size(to);
    uint64_t n = rows * cols;
    uint8_t *src = malloc(n * es), *want = malloc(n * ds), *got = malloc(n * ds);
    el_test_fill(SEED + 1, 0, from, 0, src, n * es);
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++)
            expect_elem(from, src, cols, r, c, to, want + (c * rows + r) * ds);
    /* Piece lengths: shorter than a row, a row +- 1, several rows and a bit, a block. */
    const uint64_t steps[] = {1, 2, 7, cols > 1 ? cols - 1 : 1, cols, cols + 1, 3 * cols + 5,
                              32 * cols, 1000};
    long bad = 0;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        memset(got, 0xAB, n * ds);
        uint64_t step = steps[k];
        for (uint64_t e = 0; e < n; e += step)
            el_convert_transposed(from, src + e * es, to, got, rows, cols, e,
                                  n - e < step ? n - e : step);
        if (memcmp(got, want, n * ds)) bad++;
    }
    memset(got, 0xAB, n * ds);
    el_convert_transposed(from, src, to, got, rows, cols, 0, n);
    if (memcmp(got, want, n * ds)) bad++;
    fprintf(stderr, "-- pieces %s -> %s [%llu, %llu]: %ld bad cuttings\n", el_dtype_name(from),
            el_dtype_name(to), (unsigned long long)rows, (unsigned long long)cols, bad);
    EL_CHECK(bad == 0);
    free(src);
    free(want);
    free(got);
}

int main(void) {
    const char *file = el_test_path("model.safetensors");
    EL_CHECK(el_test_write_safetensors(file, k_tensors, NT, SEED));

    check_pieces(EL_DT_F32, EL_DT_F32, 37, 53);
    check_pieces(EL_DT_F32, EL_DT_F16, 64, 96);
    check_pieces(EL_DT_F32, EL_DT_BF16, 3, 1000);
    check_pieces(EL_DT_F16, EL_DT_F32, 129, 7);
    check_pieces(EL_DT_BF16, EL_DT_BF16, 65, 33);
    check_pieces(EL_DT_U8, EL_DT_U8, 1, 77);
    /* Rows 4 KiB apart: the vector transpose walks its tiles in the other order. */
    check_pieces(EL_DT_F32, EL_DT_F32, 70, 1024);
    check_pieces(EL_DT_F32, EL_DT_F16, 40, 2048);

    load_and_check(file, EL_DT_NONE, false, EL_MEMORY_HOST);
    load_and_check(file, EL_DT_F16, false, EL_MEMORY_HOST);
    load_and_check(file, EL_DT_BF16, false, EL_MEMORY_HOST);
    load_and_check(file, EL_DT_F32, false, EL_MEMORY_HOST);
    /* With a GPU (or the emulator): through the pinned upload ring into device memory, and
     * into managed memory. */
    const bool gpu = el_device_available(EL_DEVICE_CUDA);
    for (int k = 0; gpu && k < 2; k++) {
        el_memory mem = k ? EL_MEMORY_CUDA_MANAGED : EL_MEMORY_CUDA_DEVICE;
        load_and_check(file, EL_DT_NONE, false, mem);
        load_and_check(file, EL_DT_F16, false, mem);
        load_and_check(file, EL_DT_F32, false, mem);
    }
    if (!gpu) printf("note: no GPU: the loads into GPU memory are not exercised here\n");
    el_file probe;
    if (el_file_open(&probe, file, EL_FILE_DIRECT) == EL_OK) {
        el_file_close(&probe);
        load_and_check(file, EL_DT_NONE, true, EL_MEMORY_HOST);
        load_and_check(file, EL_DT_F16, true, EL_MEMORY_HOST);
        if (gpu) load_and_check(file, EL_DT_F16, true, EL_MEMORY_CUDA_DEVICE);
    } else {
        printf("note: O_DIRECT refused in %s: the direct-I/O transpose is not exercised here\n",
               el_test_tmpdir());
    }

    /* Only 2-D tensors can be transposed: the plan refuses anything else. */
    static const el_test_tensor one[] = {{"v", EL_DT_F32, 1, {10}}};
    const char *f1 = el_test_path("one.safetensors");
    EL_CHECK(el_test_write_safetensors(f1, one, 1, SEED));
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(f1, NULL, &m));
    if (m) {
        m->tensors.items[0].transpose2d = true;
        el_plan plan;
        EL_CHECK_STATUS(el_plan_make(m, NULL, &plan), EL_E_INVALID);
        EL_CHECK(strstr(el_last_error(), "'v'") != NULL);
        el_model_close(m);
    }
    el_test_tmpdir_cleanup();
    return el_test_finish("test_loader_transpose");
}
