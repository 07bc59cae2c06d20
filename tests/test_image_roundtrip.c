/* test_image_roundtrip.c - pack -> open -> load gives every tensor byte-identical to the
 * normal load of the source (each codec, several chunk sizes, safetensors and stories260K),
 * or the same as the loader's own conversion with --dtype f16 (and within f16 rounding of
 * the f32 source); an image inside a bigger file at --offset loads; stories260K generates
 * the same ids from the image as from the checkpoint (library and CLI). */
// ctest-labels: image
#include "tests/image_common.h"

#include "kernels/fp16.h"

#include <math.h>

static void roundtrip(const char *src, el_dtype dt, el_img_codec codec, uint64_t chunk,
                      const char *tag) {
    const char *img = el_test_path("rt.elimg");
    el_image_pack_params p = {.dtype = dt, .codec = codec, .chunk_bytes = chunk};
    el_image_pack_stats st;
    EL_CHECK_OK(el_image_pack(src, img, &p, &st));
    img_loaded a, b;
    el_status sa = img_load(src, 0, dt, &a);
    EL_CHECK_OK(sa);
    el_status s = img_load(img, 0, EL_DT_NONE, &b);
    EL_CHECK_OK(s);
    if (s == EL_OK && sa == EL_OK) {
        long d = img_tensor_diffs(a.m, b.m);
        printf("   %s: codec %s chunk %llu: %u chunks (%u none), ratio %.3f, %ld tensors differ\n",
               tag, el_img_codec_name(codec), (unsigned long long)chunk, st.chunks,
               st.chunks_by_codec[0], (double)st.raw_total / (double)st.stored_total, d);
        EL_CHECK(d == 0);
        EL_CHECK(!strcmp(el_model_format(b.m), "elimg"));
        EL_CHECK(!strcmp(el_model_family(a.m), el_model_family(b.m)));
        /* The image's plan needs no more weights than the source's. */
        EL_CHECK(b.plan.region_bytes[EL_REGION_WEIGHTS] == a.plan.region_bytes[EL_REGION_WEIGHTS]);
        EL_CHECK(b.plan.region_bytes[EL_REGION_KV] == a.plan.region_bytes[EL_REGION_KV]);
    }
    el_image_verify_report r;
    EL_CHECK_OK(el_image_verify(img, 0, &r));
    img_unload(&a);
    img_unload(&b);
}

/* f16 image of an f32 source: every float tensor within f16 rounding of the generated values. */
static void f16_tolerance(const char *src) {
    const char *img = el_test_path("f16.elimg");
    el_image_pack_params p = {.dtype = EL_DT_F16, .codec = EL_IMG_CODEC_SHUFFLE_LZ4, .chunk_bytes = 65536};
    EL_CHECK_OK(el_image_pack(src, img, &p, NULL));
    img_loaded b;
    el_status sb = img_load(img, 0, EL_DT_NONE, &b);
    EL_CHECK_OK(sb);
    if (sb != EL_OK) {
        img_unload(&b);
        return;
    }
    double worst = 0;
    for (size_t i = 0; i < IMG_NTENSORS; i++) {
        if (k_img_tensors[i].dtype != EL_DT_F32) continue;
        el_tensor_info t;
        EL_CHECK_OK(el_model_tensor_find(b.m, k_img_tensors[i].name, &t));
        EL_CHECK(t.loaded_dtype == EL_DT_F16 && t.dtype == EL_DT_F16);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t.ndim; d++) n *= t.shape[d];
        float *want = malloc(n * 4);
        el_test_fill(5, i, EL_DT_F32, 0, want, n * 4);
        const uint16_t *h = t.data;
        for (uint64_t k = 0; k < n; k++) {
            double e = fabs((double)el_fp16_to_fp32(h[k]) - want[k]);
            if (e > worst) worst = e;
        }
        free(want);
    }
    printf("   f16 image: worst |error| vs the f32 source %.2e\n", worst);
    EL_CHECK(worst <= 1.0 / 2048); /* values in [-1, 1): half an f16 ulp at 1 is 2^-11 */
    /* --dtype f32 on an f16 image would need a conversion: refused, exit 1. */
    el_plan pl;
    el_plan_params pp = {16, 1, EL_DT_F32, 0, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_STATUS(el_plan_make(b.m, &pp, &pl), EL_E_USAGE);
    img_unload(&b);
}

/* The image at an offset inside a bigger file (junk before and after). */
static void at_offset(const char *src, uint64_t offset) {
    char img[1200], big[1200];
    snprintf(img, sizeof img, "%s", el_test_path("o.elimg"));
    snprintf(big, sizeof big, "%s", el_test_path("partition.bin"));
    el_image_pack_params p = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_LZ4, .chunk_bytes = 65536};
    EL_CHECK_OK(el_image_pack(src, img, &p, NULL));
    size_t n = 0;
    char *bytes = el_test_read_file(img, &n);
    size_t total = (size_t)offset + n + 12345;
    uint8_t *part = malloc(total);
    for (size_t i = 0; i < total; i++) part[i] = (uint8_t)(i * 131 + 7);
    memcpy(part + offset, bytes, n);
    EL_CHECK(el_test_write_file(big, part, total));
    img_loaded a, b;
    el_status s1 = img_load(src, 0, EL_DT_NONE, &a), s2 = img_load(big, offset, EL_DT_NONE, &b);
    EL_CHECK_OK(s1);
    EL_CHECK_OK(s2);
    if (s1 == EL_OK && s2 == EL_OK) EL_CHECK(img_tensor_diffs(a.m, b.m) == 0);
    img_unload(&a);
    img_unload(&b);
    el_image_verify_report r;
    EL_CHECK_OK(el_image_verify(big, offset, &r));
    /* Without --offset (or a wrong one) it is not a model. */
    el_model *m = NULL;
    el_model_open_params op = {NULL, offset + 4096};
    EL_CHECK_STATUS(el_model_open(big, &op, &m), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "--offset") != NULL);
    char args[1500];
    snprintf(args, sizeof args, "load '%s' --offset %llu --no-progress", big, (unsigned long long)offset);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 0);
    snprintf(args, sizeof args, "verify '%s' --offset %llu", big, (unsigned long long)offset);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 0);
    free(bytes);
    free(part);
}

typedef struct ids {
    int32_t v[64];
    size_t n;
} ids;

static bool on_tok(void *user, int32_t id, const char *piece, size_t len) {
    (void)piece;
    (void)len;
    ids *x = user;
    if (x->n < 64) x->v[x->n++] = id;
    return true;
}

static void gen_ids(const char *path, ids *out) {
    img_loaded l;
    memset(out, 0, sizeof *out);
    el_model_open_params op = {NULL, 0};
    EL_CHECK_OK(el_model_open(path, &op, &l.m));
    if (!l.m) return;
    el_plan_params pp = {0, 1, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(l.m, &pp, &l.plan));
    l.a = el_test_arena(&l.plan, EL_MEMORY_HOST);
    EL_CHECK_OK(el_model_load(l.m, &l.plan, l.a, NULL, NULL));
    el_session_params sp = {1, EL_DEVICE_CPU, 0, false};
    el_session *s = NULL;
    EL_CHECK_OK(el_session_init(l.m, l.a, &l.plan, &sp, &s));
    el_sampler_params greedy = {0.0f, 0, 1.0f, 0};
    if (s) EL_CHECK_OK(el_generate(s, "Once upon a time", 40, &greedy, on_tok, out, NULL));
    el_session_deinit(s);
    img_unload(&l);
}

static void stories(void) {
    const char *src = img_stories();
    if (!src) {
        printf("   stories260K not found: its part is skipped\n");
        return;
    }
    roundtrip(src, EL_DT_NONE, EL_IMG_CODEC_SHUFFLE_LZ4, 65536, "stories260K");
    roundtrip(src, EL_DT_NONE, EL_IMG_CODEC_LZ4, 1 << 20, "stories260K");
    roundtrip(src, EL_DT_F16, EL_IMG_CODEC_SHUFFLE_LZ4, 65536, "stories260K f16");
    char img[1200];
    snprintf(img, sizeof img, "%s", el_test_path("stories.elimg"));
    el_image_pack_params p = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_SHUFFLE_LZ4, .chunk_bytes = 65536};
    EL_CHECK_OK(el_image_pack(src, img, &p, NULL));
    ids a, b;
    gen_ids(src, &a);
    gen_ids(img, &b);
    printf("   stories260K greedy: %zu ids from the checkpoint, %zu from the image\n", a.n, b.n);
    EL_CHECK(a.n > 10 && a.n == b.n && !memcmp(a.v, b.v, a.n * sizeof a.v[0]));
    /* The CLI: same text, and the tokenizer came out of the image (no tok512.bin next to it). */
    char args[1500], *o1 = NULL, *o2 = NULL;
    snprintf(args, sizeof args, "generate '%s' -p 'Once upon a time' -n 30 --temp 0 --no-progress", src);
    EL_CHECK(el_test_run_cli(args, &o1, NULL) == 0);
    snprintf(args, sizeof args, "generate '%s' -p 'Once upon a time' -n 30 --temp 0 --no-progress", img);
    EL_CHECK(el_test_run_cli(args, &o2, NULL) == 0);
    EL_CHECK(o1 && o2 && strlen(o1) > 40 && !strcmp(o1, o2));
    free(o1);
    free(o2);
}

int main(void) {
    static char src[1200];
    snprintf(src, sizeof src, "%s", el_test_path("m.safetensors"));
    EL_CHECK(el_test_write_safetensors(src, k_img_tensors, IMG_NTENSORS, 5));
    static const el_img_codec codecs[] = {EL_IMG_CODEC_NONE, EL_IMG_CODEC_LZ4, EL_IMG_CODEC_SHUFFLE_LZ4};
    for (int c = 0; c < 3; c++) {
        roundtrip(src, EL_DT_NONE, codecs[c], 65536, "safetensors");
        roundtrip(src, EL_DT_NONE, codecs[c], 1 << 20, "safetensors");
    }
    roundtrip(src, EL_DT_F16, EL_IMG_CODEC_SHUFFLE_LZ4, 65536, "safetensors f16");
    roundtrip(src, EL_DT_BF16, EL_IMG_CODEC_LZ4, 131072, "safetensors bf16");
    f16_tolerance(src);
    at_offset(src, 12288);
    at_offset(src, 1000); /* not 4 KiB aligned: still loads (buffered reads) */
    /* An image repacked from an image is the same model. */
    char img1[1200], img2[1200];
    snprintf(img1, sizeof img1, "%s", el_test_path("a.elimg"));
    snprintf(img2, sizeof img2, "%s", el_test_path("b.elimg"));
    el_image_pack_params p = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_LZ4, .chunk_bytes = 65536};
    EL_CHECK_OK(el_image_pack(src, img1, &p, NULL));
    p.codec = EL_IMG_CODEC_SHUFFLE_LZ4;
    EL_CHECK_OK(el_image_pack(img1, img2, &p, NULL));
    img_loaded a, b;
    el_status s1 = img_load(src, 0, EL_DT_NONE, &a), s2 = img_load(img2, 0, EL_DT_NONE, &b);
    EL_CHECK_OK(s1);
    EL_CHECK_OK(s2);
    if (s1 == EL_OK && s2 == EL_OK) EL_CHECK(img_tensor_diffs(a.m, b.m) == 0);
    img_unload(&a);
    img_unload(&b);
    stories();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_image_roundtrip");
}
