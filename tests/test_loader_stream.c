/* test_loader_stream.c - the streaming loader: every tensor lands byte-exact (or converted
 * exactly) in the arena, through direct reads and staging, with injected short reads, EINTR
 * and a failing read, with O_DIRECT, and from a sharded folder. */
#include "tests/support/el_test.h"

#include "kernels/fp16.h"
#include "platform/platform.h"

#include <stdlib.h>
#include <string.h>

static const el_test_tensor k_tensors[] = {
    {"a.f32", EL_DT_F32, 2, {300, 257}},      /* 308400 bytes: several 64 KiB chunks */
    {"b.f16", EL_DT_F16, 1, {70001}},
    {"c.bf16", EL_DT_BF16, 2, {3, 33333}},
    {"d.i32", EL_DT_I32, 1, {1000}},
    {"e.u8", EL_DT_U8, 1, {12345}},            /* odd size: next tensor starts unaligned */
    {"f.scalar", EL_DT_F32, 0, {0}},
    {"g.empty", EL_DT_F16, 2, {0, 5}},
    {"h.f64", EL_DT_F64, 1, {999}},
    {"i.f32", EL_DT_F32, 1, {40000}},
};
#define NT (sizeof k_tensors / sizeof k_tensors[0])
#define SEED 7u

static uint64_t nelem(const el_test_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* Checks every tensor of a loaded model against the pattern, converted to `target`. */
static int check_contents(el_model *m, const el_test_tensor *spec, size_t n, uint32_t seed,
                          el_dtype target) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        el_tensor_info t;
        if (el_model_tensor_find(m, spec[i].name, &t) != EL_OK) return -1;
        uint64_t ne = nelem(&spec[i]);
        size_t es = el_dtype_size(spec[i].dtype);
        uint8_t *src = malloc(ne * es + 1);
        el_test_fill(seed, i, spec[i].dtype, 0, src, ne * es);
        bool is_float = spec[i].dtype == EL_DT_F32 || spec[i].dtype == EL_DT_F16 ||
                        spec[i].dtype == EL_DT_BF16;
        el_dtype want = (target != EL_DT_NONE && is_float) ? target : spec[i].dtype;
        if (t.loaded_dtype != want) bad++;
        if (ne > 0 && !t.data) bad++;
        if (((uintptr_t)t.data & 63) != 0) bad++;
        for (uint64_t k = 0; ne > 0 && t.data && k < ne; k++) {
            float v;
            uint16_t h;
            if (want == spec[i].dtype) {
                if (memcmp((const uint8_t *)t.data + k * es, src + k * es, es)) { bad++; break; }
                continue;
            }
            if (spec[i].dtype == EL_DT_F32) memcpy(&v, src + 4 * k, 4);
            else if (spec[i].dtype == EL_DT_F16) { memcpy(&h, src + 2 * k, 2); v = el_fp16_to_fp32(h); }
            else { memcpy(&h, src + 2 * k, 2); v = el_bf16_to_fp32(h); }
            if (want == EL_DT_F32) {
                float got;
                memcpy(&got, (const uint8_t *)t.data + 4 * k, 4);
                if (got != v) { bad++; break; }
            } else {
                uint16_t got, exp = want == EL_DT_F16 ? el_fp32_to_fp16(v) : el_fp32_to_bf16(v);
                memcpy(&got, (const uint8_t *)t.data + 2 * k, 2);
                if (got != exp) { bad++; break; }
            }
        }
        free(src);
    }
    return bad;
}

typedef struct prog { uint64_t calls, last_done, total; } prog;
static void on_progress(const el_load_progress *p, void *user) {
    prog *g = user;
    g->calls++;
    g->last_done = p->bytes_done;
    g->total = p->bytes_total;
}

/* Opens, plans with target dtype and a 64 KiB chunk, loads; returns the load status and
 * checks contents when it succeeded. */
static el_status load_and_check(const char *path, el_dtype target, bool direct,
                                const el_test_tensor *spec, size_t n, int *bad) {
    el_model *m = NULL;
    el_arena *a = NULL;
    el_status s = el_model_open(path, NULL, &m);
    if (s != EL_OK) return s;
    el_plan_params pp = {0, 0, target, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    s = el_plan_make(m, &pp, &plan);
    el_arena_params ap;
    if (s == EL_OK) {
        el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
        s = el_arena_init(&a, &ap);
    }
    prog g = {0, 0, 0};
    el_load_params lp = {direct, on_progress, &g};
    el_load_stats st = {0, 0, 0};
    if (s == EL_OK) s = el_model_load(m, &plan, a, &lp, &st);
    if (s == EL_OK) {
        *bad = check_contents(m, spec, n, SEED, target);
        EL_CHECK(st.bytes_read == plan.read_bytes);
        EL_CHECK(g.calls >= 1 && g.last_done == plan.read_bytes && g.total == plan.read_bytes);
        el_arena_stats as;
        el_arena_stats_get(a, &as);
        EL_CHECK(as.region[EL_REGION_STAGING].used == 0); /* staging given back */
        EL_CHECK(as.region[EL_REGION_WEIGHTS].used <= plan.region_bytes[EL_REGION_WEIGHTS]);
    } else if (a) {
        el_arena_stats as;
        el_arena_stats_get(a, &as);
        EL_CHECK(as.region[EL_REGION_WEIGHTS].used == 0); /* a failed load gives it back */
    }
    el_arena_deinit(a);
    el_model_close(m);
    return s;
}

int main(void) {
    const char *file = el_test_path("model.safetensors");
    EL_CHECK(el_test_write_safetensors(file, k_tensors, NT, SEED));
    int bad = -1;

    /* As stored: straight into place. Then converted both ways through staging. */
    EL_CHECK_OK(load_and_check(file, EL_DT_NONE, false, k_tensors, NT, &bad));
    EL_CHECK(bad == 0);
    bad = -1;
    EL_CHECK_OK(load_and_check(file, EL_DT_F16, false, k_tensors, NT, &bad));
    EL_CHECK(bad == 0);
    bad = -1;
    EL_CHECK_OK(load_and_check(file, EL_DT_F32, false, k_tensors, NT, &bad));
    EL_CHECK(bad == 0);
    bad = -1;
    EL_CHECK_OK(load_and_check(file, EL_DT_BF16, false, k_tensors, NT, &bad));
    EL_CHECK(bad == 0);

    /* Short reads and EINTR change nothing but the number of reads. */
    el_fault_plan fp = {0, 3, 2};
    if (el_fault_set(&fp)) {
        el_io_stats before, after;
        el_io_stats_get(&before);
        bad = -1;
        EL_CHECK_OK(load_and_check(file, EL_DT_NONE, false, k_tensors, NT, &bad));
        EL_CHECK(bad == 0);
        bad = -1;
        EL_CHECK_OK(load_and_check(file, EL_DT_F16, false, k_tensors, NT, &bad));
        EL_CHECK(bad == 0);
        el_io_stats_get(&after);
        EL_CHECK(after.reads - before.reads > 2 * NT);
        /* A failing read anywhere in the weights: EL_E_IO naming the file, arena released. */
        for (uint64_t nth = 3; nth <= 12; nth += 3) {
            el_fault_plan fail = {nth, 0, 0};
            el_fault_set(&fail);
            bad = -1;
            EL_CHECK_STATUS(load_and_check(file, nth % 2 ? EL_DT_F16 : EL_DT_NONE, false,
                                           k_tensors, NT, &bad), EL_E_IO);
            EL_CHECK(strstr(el_last_error(), "model.safetensors") != NULL);
        }
        el_fault_clear();
    } else {
        printf("note: fault injection not compiled in (EL_FAULT_INJECTION off): skipped those checks\n");
    }

    /* O_DIRECT through aligned staging windows (needs a filesystem that allows it). */
    el_file probe;
    if (el_file_open(&probe, file, EL_FILE_DIRECT) == EL_OK) {
        el_file_close(&probe);
        bad = -1;
        EL_CHECK_OK(load_and_check(file, EL_DT_NONE, true, k_tensors, NT, &bad));
        EL_CHECK(bad == 0);
        bad = -1;
        EL_CHECK_OK(load_and_check(file, EL_DT_F16, true, k_tensors, NT, &bad));
        EL_CHECK(bad == 0);
    } else {
        printf("note: O_DIRECT refused on %s (%s): direct-I/O load not exercised here\n",
               el_test_tmpdir(), el_last_error());
    }

    /* A sharded folder: two shards and an index; tensors keep their contents. */
    static const el_test_tensor s0[] = {{"x.w", EL_DT_F32, 2, {64, 33}}, {"x.b", EL_DT_F32, 1, {33}}};
    static const el_test_tensor s1[] = {{"y.w", EL_DT_F16, 2, {17, 100}}};
    EL_CHECK(el_test_write_safetensors(el_test_path("m-00001-of-00002.safetensors"), s0, 2, SEED));
    EL_CHECK(el_test_write_safetensors(el_test_path("m-00002-of-00002.safetensors"), s1, 1, SEED));
    const char *idx = "{\"metadata\":{\"total_size\":1},\"weight_map\":{"
                      "\"x.w\":\"m-00001-of-00002.safetensors\",\"x.b\":\"m-00001-of-00002.safetensors\","
                      "\"y.w\":\"m-00002-of-00002.safetensors\"}}";
    EL_CHECK(el_test_write_file(el_test_path("model.safetensors.index.json"), idx, strlen(idx)));
    el_model *m = NULL;
    /* model.safetensors also exists in this folder: the index must win. */
    EL_CHECK_OK(el_model_open(el_test_tmpdir(), NULL, &m));
    if (m) {
        EL_CHECK(!strcmp(el_model_format(m), "safetensors-sharded"));
        EL_CHECK(el_model_file_count(m) == 2 && el_model_tensor_count(m) == 3);
        el_model_close(m);
    }
    bad = -1;
    EL_CHECK_OK(load_and_check(el_test_path("model.safetensors.index.json"), EL_DT_NONE, false,
                               s0, 2, &bad));
    EL_CHECK(bad == 0);
    return el_test_finish("test_loader_stream");
}
