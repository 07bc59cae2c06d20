/* bench_image.c - .elimg packing and loading against the uncompressed safetensors source,
 * measured in one run, on a generated GPT-2 124M-shaped f16 model (gaussian weights,
 * std 0.02, like a trained transformer's spread; not constants) and on stories260K:
 *   pack      - per codec (none, lz4, shuffle-lz4): payload / stored bytes, seconds
 *   raw       - sequential read() of each file into a 4 MiB buffer (the storage baseline)
 *   load      - open + plan + arena + el_model_load; MB/s of the uncompressed payload
 *               (what lands in the arena), for the safetensors source and each image
 *   decode    - LZ4 decode (+ CRCs + unshuffle) of every chunk, one core, from memory
 *   peak RSS  - VmHWM of each load (reset through /proc/self/clear_refs before it)
 * The page cache is dropped (posix_fadvise DONTNEED after fdatasync) before each raw read
 * and each load. Medians of --reps runs (default 5). Files go to /var/tmp (not tmpfs).
 *
 * usage: bench_image [--reps N] [--stories PATH] [--no-gpt2] [--chunk SIZE] [--keep] */
#include "bench/bench_util.h"
#include "edgeload.h"
#include "kernels/fp16.h"
#include "loader/image.h"
#include "platform/platform.h"

#include <fcntl.h>
#include <lz4.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the GPT-2 124M-shaped model --------------------------------------------------------- */

typedef struct spec {
    char name[64];
    uint64_t shape[2];
    int ndim;
} spec;

static int gpt2_specs(spec *s) {
    int n = 0;
#define T1(nm, a) (snprintf(s[n].name, 64, "%s", nm), s[n].shape[0] = a, s[n].ndim = 1, n++)
#define T2(nm, a, b) (snprintf(s[n].name, 64, "%s", nm), s[n].shape[0] = a, s[n].shape[1] = b, s[n].ndim = 2, n++)
    T2("wte.weight", 50257, 768);
    T2("wpe.weight", 1024, 768);
    char nm[64];
    for (int l = 0; l < 12; l++) {
#define L1(suffix, a) (snprintf(nm, sizeof nm, "h.%d.%s", l, suffix), T1(nm, a))
#define L2(suffix, a, b) (snprintf(nm, sizeof nm, "h.%d.%s", l, suffix), T2(nm, a, b))
        L1("ln_1.weight", 768);
        L1("ln_1.bias", 768);
        L2("attn.c_attn.weight", 768, 2304);
        L1("attn.c_attn.bias", 2304);
        L2("attn.c_proj.weight", 768, 768);
        L1("attn.c_proj.bias", 768);
        L1("ln_2.weight", 768);
        L1("ln_2.bias", 768);
        L2("mlp.c_fc.weight", 768, 3072);
        L1("mlp.c_fc.bias", 3072);
        L2("mlp.c_proj.weight", 3072, 768);
        L1("mlp.c_proj.bias", 768);
    }
    T1("ln_f.weight", 768);
    T1("ln_f.bias", 768);
    return n;
}

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static double uniform(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static int write_gpt2(const char *path) {
    spec s[200];
    int n = gpt2_specs(s);
    char *json = malloc(64 * 1024);
    size_t len = 0;
    uint64_t off = 0;
    len += (size_t)sprintf(json, "{");
    for (int i = 0; i < n; i++) {
        uint64_t elems = s[i].shape[0] * (s[i].ndim == 2 ? s[i].shape[1] : 1);
        char shape[64];
        if (s[i].ndim == 2)
            snprintf(shape, sizeof shape, "%llu,%llu", (unsigned long long)s[i].shape[0],
                     (unsigned long long)s[i].shape[1]);
        else
            snprintf(shape, sizeof shape, "%llu", (unsigned long long)s[i].shape[0]);
        len += (size_t)sprintf(json + len, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%s],"
                               "\"data_offsets\":[%llu,%llu]}", i ? "," : "", s[i].name, shape,
                               (unsigned long long)off, (unsigned long long)(off + 2 * elems));
        off += 2 * elems;
    }
    len += (size_t)sprintf(json + len, "}");
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t jl = len;
    fwrite(&jl, 8, 1, f);
    fwrite(json, 1, len, f);
    free(json);
    uint16_t *buf = malloc(2u << 20);
    for (int i = 0; i < n; i++) {
        uint64_t elems = s[i].shape[0] * (s[i].ndim == 2 ? s[i].shape[1] : 1);
        bool ln_w = strstr(s[i].name, "ln_") && strstr(s[i].name, "weight");
        for (uint64_t done = 0; done < elems;) {
            uint64_t k = elems - done < (1u << 20) ? elems - done : (1u << 20);
            for (uint64_t j = 0; j < k; j += 2) { /* Box-Muller: two gaussians per draw */
                double r = sqrt(-2.0 * log(uniform())), th = 6.283185307179586 * uniform();
                float a = (float)(0.02 * r * cos(th)), b = (float)(0.02 * r * sin(th));
                if (ln_w) a += 1.0f, b += 1.0f; /* norm gains sit around 1 */
                buf[j] = el_fp32_to_fp16(a);
                if (j + 1 < k) buf[j + 1] = el_fp32_to_fp16(b);
            }
            fwrite(buf, 2, k, f);
            done += k;
        }
    }
    free(buf);
    return fclose(f);
}

/* ---- measurements -------------------------------------------------------------------------- */

/* One load; returns seconds; *payload = weight bytes placed, *hwm = VmHWM, *arena. */
static double load_once(const char *path, uint64_t *payload, uint64_t *hwm, uint64_t *arena) {
    el_model *m;
    el_arena *a;
    el_plan p;
    el_plan_params pp = {256, 1, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_F32};
    bench_reset_hwm();
    double t0 = el_now();
    if (el_model_open(path, NULL, &m) != EL_OK || el_plan_make(m, &pp, &p) != EL_OK) {
        fprintf(stderr, "bench_image: %s\n", el_last_error());
        exit(2);
    }
    el_arena_params ap;
    el_plan_arena_params(&p, p.total_bytes, 0, &ap);
    if (el_arena_init(&a, &ap) != EL_OK || el_model_load(m, &p, a, NULL, NULL) != EL_OK) {
        fprintf(stderr, "bench_image: %s\n", el_last_error());
        exit(2);
    }
    double t = el_now() - t0;
    el_arena_stats st;
    el_arena_stats_get(a, &st);
    *payload = st.region[EL_REGION_WEIGHTS].used;
    el_mem_report r;
    el_mem_report_get(&r);
    *hwm = r.vm_hwm;
    *arena = p.total_bytes;
    el_arena_deinit(a);
    el_model_close(m);
    return t;
}

/* Single-core decode speed of every chunk of an image, from memory: GB/s of raw bytes with
 * CRCs and unshuffle (el_img_decode) and with LZ4 alone. */
static void decode_speed(const char *img, double *full, double *lz4only) {
    el_file f;
    el_img_meta m;
    *full = *lz4only = 0;
    if (el_file_open(&f, img, 0) != EL_OK || el_img_meta_read(&f, 0, &m) != EL_OK) return;
    uint8_t *all = malloc((size_t)f.size), *dst = malloc((size_t)m.h.chunk_size),
            *scr = malloc((size_t)m.h.chunk_size);
    el_file_read_at(&f, all, (size_t)f.size, 0);
    uint64_t raw = 0;
    double t0 = el_now();
    for (int rep = 0; rep < 3; rep++)
        for (uint32_t i = 0; i < m.h.chunk_count; i++) {
            const el_img_chunk *c = &m.chunks[i];
            memcpy(scr, all + c->offset, c->stored_size);
            if (el_img_decode(c, scr, dst, scr)) fprintf(stderr, "decode failed\n");
            raw += c->raw_size;
        }
    *full = raw / (el_now() - t0) / 1e9;
    raw = 0;
    t0 = el_now();
    for (int rep = 0; rep < 3; rep++)
        for (uint32_t i = 0; i < m.h.chunk_count; i++) {
            const el_img_chunk *c = &m.chunks[i];
            if (c->codec == EL_IMG_CODEC_NONE) continue;
            LZ4_decompress_safe((const char *)all + c->offset, (char *)dst, (int)c->stored_size,
                                (int)c->raw_size);
            raw += c->raw_size;
        }
    *lz4only = raw ? raw / (el_now() - t0) / 1e9 : 0;
    free(all);
    free(dst);
    free(scr);
    el_img_meta_free(&m);
    el_file_close(&f);
}

static void bench_model(const char *label, const char *src, uint64_t chunk, int reps, bool keep) {
    static const el_img_codec codecs[3] = {EL_IMG_CODEC_NONE, EL_IMG_CODEC_LZ4, EL_IMG_CODEC_SHUFFLE_LZ4};
    char files[4][256];
    snprintf(files[0], sizeof files[0], "%s", src);
    printf("\n== %s: %s\n", label, src);
    printf("%-12s %12s %12s %8s %8s\n", "pack codec", "payload", "stored", "ratio", "seconds");
    for (int c = 0; c < 3; c++) {
        snprintf(files[c + 1], sizeof files[c + 1], "/var/tmp/bench_image_%s.%s.elimg", label,
                 el_img_codec_name(codecs[c]));
        el_image_pack_params p = {.dtype = EL_DT_NONE, .codec = codecs[c], .chunk_bytes = chunk};
        el_image_pack_stats st;
        double t0 = el_now();
        if (el_image_pack(src, files[c + 1], &p, &st) != EL_OK) {
            fprintf(stderr, "bench_image: pack: %s\n", el_last_error());
            exit(2);
        }
        printf("%-12s %12llu %12llu %8.3f %8.2f\n", el_img_codec_name(codecs[c]),
               (unsigned long long)st.raw_total, (unsigned long long)st.stored_total,
               (double)st.raw_total / (double)st.stored_total, el_now() - t0);
    }
    double raw[4][100], load[4][100], hwm[4][100];
    uint64_t fbytes[4] = {0}, payload = 0, arena = 0, h = 0;
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < 4; v++) {
            bench_drop_cache(files[v]);
            double t = bench_raw_read(files[v], &fbytes[v]);
            raw[v][r] = fbytes[v] / t / 1e6;
            bench_drop_cache(files[v]);
            t = load_once(files[v], &payload, &h, &arena);
            load[v][r] = payload / t / 1e6;
            hwm[v][r] = h / 1048576.0;
        }
    printf("page cache dropped before each; %d reps; medians; load MB/s = payload bytes placed / "
           "wall time (open + plan + arena + load)\n", reps);
    printf("%-24s %10s %10s %10s %12s %10s %10s\n", "file", "MiB", "raw MB/s", "load MB/s",
           "vs st load", "vs raw", "VmHWM MiB");
    double base = 0;
    for (int v = 0; v < 4; v++) {
        double mr = bench_median(raw[v], reps), ml = bench_median(load[v], reps), mh = bench_median(hwm[v], reps);
        if (v == 0) base = ml;
        char name[32];
        snprintf(name, sizeof name, "%s", v == 0 ? "safetensors" : el_img_codec_name(codecs[v - 1]));
        printf("%-24s %10.1f %10.0f %10.0f %12.2f %10.2f %10.1f\n", name, fbytes[v] / 1048576.0, mr,
               ml, ml / base, ml / mr, mh);
    }
    printf("arena (plan total at ctx 256) %.1f MiB; payload %.1f MiB\n", arena / 1048576.0,
           payload / 1048576.0);
    double full, only;
    decode_speed(files[3], &full, &only);
    printf("decode, one core, from memory: shuffle-lz4 chunks %.2f GB/s with CRCs + unshuffle, "
           "LZ4 alone %.2f GB/s\n", full, only);
    decode_speed(files[2], &full, &only);
    printf("decode, one core, from memory: lz4 chunks %.2f GB/s with CRCs, LZ4 alone %.2f GB/s\n",
           full, only);
    if (!keep)
        for (int v = 1; v < 4; v++) unlink(files[v]);
}

int main(int argc, char **argv) {
    int reps = 5;
    const char *stories = "assets/stories260K/stories260K.bin";
    bool gpt2 = true, keep = false;
    uint64_t chunk = 1u << 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--stories") && i + 1 < argc) stories = argv[++i];
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) el_size_parse(argv[++i], &chunk);
        else if (!strcmp(argv[i], "--no-gpt2")) gpt2 = false;
        else if (!strcmp(argv[i], "--keep")) keep = true;
        else {
            fprintf(stderr, "usage: bench_image [--reps N] [--stories PATH] [--no-gpt2] [--chunk SIZE] [--keep]\n");
            return 1;
        }
    }
    if (reps < 1 || reps > 100) reps = 5;
    printf("bench_image: %u CPUs, decode threads %u max, CRC32C path %s\n", el_cpu_count(),
           EL_IMG_DECODE_THREADS_MAX, "hw/table auto");
    if (access(stories, R_OK) == 0) bench_model("stories260K", stories, 65536, reps, keep);
    else printf("stories260K not found at %s (run from the repository root or pass --stories)\n", stories);
    if (gpt2) {
        const char *path = "/var/tmp/bench_image_gpt2_124m_f16.safetensors";
        if (access(path, R_OK) != 0) {
            printf("\ngenerating a GPT-2 124M-shaped f16 model (gaussian, std 0.02) in %s ...\n", path);
            if (write_gpt2(path)) return perror("write"), 1;
        }
        bench_model("gpt2-124M-f16", path, chunk, reps, keep);
        if (!keep) unlink(path);
    }
    return 0;
}
