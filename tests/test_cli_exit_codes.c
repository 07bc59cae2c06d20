/* test_cli_exit_codes.c - the exit code table holds on the paths that used to break it:
 * prompt + -n past the context is 6 (3 means the arena does not fit), a config without
 * max_position_embeddings is 2 and says to pass --ctx, --offset 0 is accepted, an --offset
 * near 2^64 is reported as given (never wrapped), --mlock/--hugepages that cannot be had
 * say so, and an option given twice (or with its alias) is refused with exit 1. */
// ctest-labels: quick
#include "tests/image_common.h"

static void expect(int want, const char *needle, int rc, char *err, const char *what) {
    if (rc != want || (needle && (!err || !strstr(err, needle)))) {
        fprintf(stderr, "   %s: exit %d (want %d), stderr: %s\n", what, rc, want, err ? err : "");
        EL_CHECK(false);
    }
    free(err);
}

static void duplicates(const char *stories, const char *img) {
    char *err = NULL;
    int rc = img_cli(NULL, &err, "generate '%s' -n 3 -n 5 --temp 0", stories);
    expect(1, "-n given twice", rc, err, "-n -n");
    rc = img_cli(NULL, &err, "generate '%s' -n 3 --steps 5 --temp 0", stories);
    expect(1, "--steps given after -n", rc, err, "-n --steps");
    rc = img_cli(NULL, &err, "generate '%s' --ctx 16 --ctx 32 -n 1", stories);
    expect(1, "--ctx given twice", rc, err, "--ctx --ctx");
    rc = img_cli(NULL, &err, "load '%s' --progress --no-progress", stories);
    expect(1, "--no-progress given after --progress", rc, err, "--progress --no-progress");
    rc = img_cli(NULL, &err, "pack '%s' -o a.elimg --output b.elimg", stories);
    expect(1, "given after -o", rc, err, "pack -o --output");
    rc = img_cli(NULL, &err, "verify '%s' --offset 0 --offset 0", img);
    expect(1, "--offset given twice", rc, err, "verify --offset twice");
    rc = img_cli(NULL, &err, "tokenize '%s' --json --json hello", stories);
    expect(1, "--json given twice", rc, err, "tokenize --json twice");
    /* Values that look like options are values. */
    rc = img_cli(NULL, &err, "generate '%s' -p -n -n 2 --temp 0", stories);
    expect(0, NULL, rc, err, "-p -n -n 2");
}

static void offsets(const char *img) {
    char *err = NULL, *out = NULL;
    int rc;
    rc = img_cli(NULL, &err, "verify '%s' --offset 0", img);
    expect(0, NULL, rc, err, "verify --offset 0");
    rc = img_cli(NULL, &err, "load '%s' --offset 0 --no-progress", img);
    expect(0, NULL, rc, err, "load --offset 0");
    rc = img_cli(NULL, &err, "inspect '%s' --offset 0", img);
    expect(0, NULL, rc, err, "inspect --offset 0");
    char target[1200];
    snprintf(target, sizeof target, "%s", el_test_path("target.bin"));
    size_t n = 0;
    char *b = el_test_read_file(img, &n);
    EL_CHECK(b && el_test_write_file(target, b, n));
    free(b);
    static const char *const big[] = {"18446744073709551615", "18446744073709547520"};
    for (int i = 0; i < 2; i++) {
        int rc = img_cli(&out, &err, "flash '%s' '%s' --offset %s", img, target, big[i]);
        /* The offset as given; no sum that wrapped around 2^64 (smaller than the image). */
        bool ok = rc == 1 && err && strstr(err, big[i]) && strstr(err, "2^64");
        if (!ok) fprintf(stderr, "   flash --offset %s: exit %d: %s\n", big[i], rc, err ? err : "");
        EL_CHECK(ok);
        free(err);
        free(out);
        rc = img_cli(NULL, &err, "verify '%s' --offset %s", img, big[i]);
        ok = rc == 2 && err && strstr(err, big[i]);
        if (!ok) fprintf(stderr, "   verify --offset %s: exit %d: %s\n", big[i], rc, err ? err : "");
        EL_CHECK(ok);
        free(err);
    }
}

static void context(const char *stories) {
    char *err = NULL;
    int rc = img_cli(NULL, &err, "generate '%s' --ctx 16 -n 20 -p 'Once upon a time' --temp 0", stories);
    expect(6, "--ctx 25", rc, err, "prompt + -n past --ctx");
    rc = img_cli(NULL, &err, "generate '%s' -n 600 -p 'Once upon a time' --temp 0", stories);
    expect(6, "512", rc, err, "prompt + -n past the model's positions");
    /* A config without max_position_embeddings: 2 (the input lacks it), pass --ctx. */
    char dir[1200], from[1300], to[1300];
    snprintf(dir, sizeof dir, "%s", el_test_path("nomax"));
    EL_CHECK(mkdir(dir, 0755) == 0);
    static const char *const files[] = {"model.safetensors", "tokenizer.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/tests/fixtures/hf_llama_gqa/%s", EL_SOURCE_DIR, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        size_t n = 0;
        char *b = el_test_read_file(from, &n);
        EL_CHECK(b && el_test_write_file(to, b, n));
        free(b);
    }
    snprintf(from, sizeof from, "%s/tests/fixtures/hf_llama_gqa/config.json", EL_SOURCE_DIR);
    size_t n = 0;
    char *cfg = el_test_read_file(from, &n);
    char *k = cfg ? strstr(cfg, "\"max_position_embeddings\"") : NULL;
    EL_CHECK(k != NULL);
    if (k) memcpy(k, "\"xax", 4); /* the key is gone, the JSON stays valid */
    snprintf(to, sizeof to, "%s/config.json", dir);
    EL_CHECK(cfg && el_test_write_file(to, cfg, n));
    free(cfg);
    rc = img_cli(NULL, &err, "plan '%s'", dir);
    expect(2, "pass --ctx", rc, err, "no max_position_embeddings");
    rc = img_cli(NULL, &err, "plan '%s' --ctx 16", dir);
    expect(0, NULL, rc, err, "--ctx given");
}

/* A tokenizer whose ids outnumber the text's bytes (byte fallback after Metaspace: a
 * space is 3 byte tokens): tokenize and generate --json give the ids, not exit 3. */
static void many_ids(const char *stories) {
    const char *tok = el_test_path("tok512.json");
    EL_CHECK(img_write_tok512(tok));
    char *out = NULL, *err = NULL;
    int rc = img_cli(&out, &err, "tokenize '%s' --tokenizer '%s' 'a b c'", stories, tok);
    int count = 0;
    for (char *p = out; p && *p; p++) count += *p == ' ';
    if (rc != 0 || count + 1 != 13) fprintf(stderr, "   tokenize: exit %d: %s%s\n", rc, out ? out : "", err ? err : "");
    EL_CHECK(rc == 0 && count + 1 == 13); /* BOS + 3 x (3 bytes of U+2581 + 1) */
    free(out);
    free(err);
    rc = img_cli(&out, NULL, "generate '%s' --tokenizer '%s' -p 'a b c' -n 2 --json --temp 0", stories, tok);
    EL_CHECK(rc == 0 && out && strstr(out, "\"prompt_ids\":[1,"));
    free(out);
}

/* --mlock / --hugepages: when the memory report does not say "locked" / "huge pages", a
 * warning says the arena runs without them. */
static void arena_flags(const char *stories) {
    char *out = NULL, *err = NULL;
    int rc = img_cli(&out, &err, "load '%s' --mlock --hugepages --no-progress", stories);
    EL_CHECK(rc == 0 && out && err);
    if (out && err) {
        bool locked = strstr(out, ", locked") != NULL, huge = strstr(out, "huge pages") != NULL;
        EL_CHECK(locked == (strstr(err, "--mlock:") == NULL));
        EL_CHECK(huge == (strstr(err, "--hugepages:") == NULL));
        printf("   --mlock %s, --hugepages %s\n", locked ? "locked" : "fell back (warned)",
               huge ? "huge pages" : "fell back (warned)");
    }
    free(out);
    free(err);
}

int main(void) {
    const char *stories = img_stories();
    if (!stories) el_test_skip("stories260K not found");
    char img[1200];
    snprintf(img, sizeof img, "%s", el_test_path("s.elimg"));
    el_image_pack_params pp = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_LZ4, .chunk_bytes = 1 << 20};
    EL_CHECK_OK(el_image_pack(stories, img, &pp, NULL));
    duplicates(stories, img);
    offsets(img);
    context(stories);
    arena_flags(stories);
    many_ids(stories);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_cli_exit_codes");
}
