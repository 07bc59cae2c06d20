/* image_common.h - helpers the image tests share: load a model (source or image) into its
 * own arena, compare tensors, find stories260K, and locate a packed image's regions. */
#ifndef EL_TEST_IMAGE_COMMON_H
#define EL_TEST_IMAGE_COMMON_H

#include "tests/support/el_test.h"

#include "loader/image.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct img_loaded {
    el_model *m;
    el_plan plan;
    el_arena *a;
} img_loaded;

/* Opens (at offset), plans with dtype, reserves the plan's arena, loads. */
static inline el_status img_load(const char *path, uint64_t offset, el_dtype dt, img_loaded *out) {
    memset(out, 0, sizeof *out);
    el_model_open_params op = {.tokenizer_path = NULL, .offset = offset};
    el_status s = el_model_open(path, &op, &out->m);
    el_plan_params pp = {16, 1, dt, 0, EL_MEMORY_HOST, EL_DT_F32};
    if (s == EL_OK) s = el_plan_make(out->m, &pp, &out->plan);
    el_arena_params ap;
    if (s == EL_OK) {
        el_plan_arena_params(&out->plan, out->plan.total_bytes, 0, &ap);
        s = el_arena_init(&out->a, &ap);
    }
    if (s == EL_OK) s = el_model_load(out->m, &out->plan, out->a, NULL, NULL);
    return s;
}

static inline void img_unload(img_loaded *l) {
    el_arena_deinit(l->a);
    el_model_close(l->m);
    memset(l, 0, sizeof *l);
}

/* Number of tensors of a that differ from b by name, dtype, shape or bytes (-1: counts differ). */
static inline long img_tensor_diffs(const el_model *a, const el_model *b) {
    size_t n = el_model_tensor_count(a);
    if (n != el_model_tensor_count(b)) return -1;
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        el_tensor_info x, y;
        el_model_tensor(a, i, &x);
        if (el_model_tensor_find(b, x.name, &y) != EL_OK) {
            bad++;
            continue;
        }
        uint64_t bx = 0, by = 0;
        if (el_dtype_tensor_bytes(x.loaded_dtype, x.shape, x.ndim, x.name, &bx) != EL_OK ||
            el_dtype_tensor_bytes(y.loaded_dtype, y.shape, y.ndim, y.name, &by) != EL_OK ||
            x.loaded_dtype != y.loaded_dtype || x.ndim != y.ndim || bx != by ||
            memcmp(x.shape, y.shape, sizeof x.shape) || (bx && memcmp(x.data, y.data, bx))) {
            fprintf(stderr, "   tensor %s differs\n", x.name);
            bad++;
        }
    }
    return bad;
}

/* Files in dir whose name holds ".tmp." (pack's temporary files). */
static inline int img_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

/* Removes the files in dir whose name holds ".tmp." (what a killed pack may leave). */
static inline void img_remove_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) {
            char t[1400];
            snprintf(t, sizeof t, "%s/%s", dir, e->d_name);
            unlink(t);
        }
    if (d) closedir(d);
}

/* True if the file at path holds exactly want[0..want_len). */
static inline bool img_same_file(const char *path, const char *want, size_t want_len) {
    size_t n = 0;
    char *b = el_test_read_file(path, &n);
    bool same = b && n == want_len && !memcmp(b, want, n);
    free(b);
    return same;
}

/* el_test_run_cli with printf-style arguments. */
static inline int img_cli(char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int img_cli(char **out, char **err, const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return el_test_run_cli(args, out, err);
}

/* A tokenizer.json for stories260K's 512 ids: BPE with byte fallback (ids 3..258 are
 * <0x00>..<0xFF>), no merges, Metaspace; every text encodes to byte tokens. */
static inline bool img_write_tok512(const char *path) {
    static char json[16384];
    size_t o = (size_t)snprintf(json, sizeof json, "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\","
                                "\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"merges\":[],\"vocab\":{"
                                "\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int i = 3; i < 512; i++)
        o += (size_t)(i < 259 ? snprintf(json + o, sizeof json - o, ",\"<0x%02X>\":%d", i - 3, i)
                              : snprintf(json + o, sizeof json - o, ",\"t%d\":%d", i, i));
    o += (size_t)snprintf(json + o, sizeof json - o,
                          "}},\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\u2581\","
                          "\"prepend_scheme\":\"first\",\"split\":false},\"decoder\":{\"type\":"
                          "\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\","
                          "\"split\":false}}");
    return el_test_write_file(path, json, o);
}

static inline const char *img_stories(void) {
    static char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/assets/stories260K/stories260K.bin", EL_SOURCE_DIR);
    if (stat(path, &st) == 0) return path;
    const char *sh = el_test_shared_models();
    if (!sh) return NULL;
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", sh);
    return stat(path, &st) == 0 ? path : NULL;
}

/* A test model: several dtypes, a few tensors larger than a 64 KiB chunk, one of random
 * bytes (does not compress: stored plain) and small ones (chunks spanning tensors). */
static const el_test_tensor k_img_tensors[] = {
    {"embed.weight", EL_DT_F32, 2, {96, 512}},   /* 192 KiB */
    {"norm.weight", EL_DT_F32, 1, {100}},
    {"layer.0.w", EL_DT_F16, 2, {128, 300}},     /* 75 KiB */
    {"layer.0.b", EL_DT_BF16, 1, {77}},
    {"noise.u8", EL_DT_U8, 1, {150000}},
    {"ids.i32", EL_DT_I32, 1, {1000}},
    {"head.weight", EL_DT_F32, 2, {64, 333}},
};
#define IMG_NTENSORS (sizeof k_img_tensors / sizeof k_img_tensors[0])

#endif
