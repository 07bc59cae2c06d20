/* test_image_firmware.c - what a firmware tool must never do, tested through the CLI:
 * pack never replaces a symlink, FIFO, device or directory (unless --write-through says
 * to write into it), leaves no temporary file after SIGKILL (or one the next pack
 * removes), refuses a corrupt tokenizer.json instead of baking it into an image or falling
 * back to vocab.txt / tok*.bin next to it; flash verifies every chunk of its source before
 * writing a byte to the target. */
// ctest-labels: image
// ctest-timeout: 60
#include "tests/image_common.h"
#include "tests/support/el_test_proc.h"

#include "platform/crc32c.h"
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[1024];

static int temp_files(void) { return img_temp_files(g_dir); }

/* -o a symlink, FIFO, directory or device: refused (exit 1, the reason named), nothing
 * changed; --write-through writes to the link's target / into the FIFO. */
static void pack_outputs(const char *src, const char *ref) {
    size_t ref_len = 0;
    char *ref_bytes = el_test_read_file(ref, &ref_len);
    char link[1200], target[1200], fifo[1200], sub[1200], *err = NULL;
    snprintf(target, sizeof target, "%s/target.bin", g_dir);
    snprintf(link, sizeof link, "%s/link.elimg", g_dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.elimg", g_dir);
    snprintf(sub, sizeof sub, "%s/subdir", g_dir);
    EL_CHECK(el_test_write_file(target, "keep", 4));
    EL_CHECK(symlink(target, link) == 0);
    EL_CHECK(img_cli(NULL, &err, "pack '%s' -o '%s' --chunk 64K", src, link) == 1);
    EL_CHECK(err && strstr(err, "symbolic link") && strstr(err, "--write-through"));
    free(err);
    struct stat st;
    EL_CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && img_same_file(target, "keep", 4));
    /* --write-through: the link stays a link, its target becomes the image. */
    EL_CHECK(img_cli(NULL, NULL, "pack '%s' -o '%s' --chunk 64K --write-through", src, link) == 0);
    EL_CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && img_same_file(target, ref_bytes, ref_len));

    EL_CHECK(mkfifo(fifo, 0600) == 0);
    EL_CHECK(img_cli(NULL, &err, "pack '%s' -o '%s' --chunk 64K", src, fifo) == 1);
    EL_CHECK(err && strstr(err, "FIFO"));
    free(err);
    EL_CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    /* --write-through into a FIFO: a reader gets the whole image, in order. */
    pid_t reader = fork();
    if (reader == 0) {
        char got[1200];
        snprintf(got, sizeof got, "%s/from_fifo.bin", g_dir);
        int in = open(fifo, O_RDONLY), out = open(got, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char buf[65536];
        for (ssize_t r; (r = read(in, buf, sizeof buf)) > 0;)
            if (write(out, buf, (size_t)r) != r) _exit(1);
        _exit(0);
    }
    EL_CHECK(img_cli(NULL, NULL, "pack '%s' -o '%s' --chunk 64K --write-through", src, fifo) == 0);
    int rst = 0;
    waitpid(reader, &rst, 0);
    char got[1200];
    snprintf(got, sizeof got, "%s/from_fifo.bin", g_dir);
    EL_CHECK(WIFEXITED(rst) && WEXITSTATUS(rst) == 0 && img_same_file(got, ref_bytes, ref_len));
    EL_CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));

    EL_CHECK(mkdir(sub, 0755) == 0);
    EL_CHECK(img_cli(NULL, &err, "pack '%s' -o '%s' --write-through", src, sub) == 1);
    EL_CHECK(err && strstr(err, "directory"));
    free(err);
    EL_CHECK(lstat(sub, &st) == 0 && S_ISDIR(st.st_mode));

    /* A character device (the null device, made here so the system's /dev/null is never
     * at stake): refused; with --write-through the image is streamed into it and the
     * node stays a device. */
    char node[1200];
    snprintf(node, sizeof node, "%s/null", g_dir);
    if (mknod(node, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        EL_CHECK(img_cli(NULL, &err, "pack '%s' -o '%s'", src, node) == 1);
        EL_CHECK(err && strstr(err, "character device"));
        free(err);
        EL_CHECK(lstat(node, &st) == 0 && S_ISCHR(st.st_mode));
        EL_CHECK(img_cli(NULL, NULL, "pack '%s' -o '%s' --write-through", src, node) == 0);
        EL_CHECK(lstat(node, &st) == 0 && S_ISCHR(st.st_mode));
        unlink(node);
    } else {
        printf("   character-device output skipped: mknod: %s\n", strerror(errno));
    }
    EL_CHECK(temp_files() == 0);
    free(ref_bytes);
}

/* SIGKILL at random times: no temporary file stays for good (O_TMPFILE leaves none;
 * a named one, between link and rename, is removed by the next pack). A temporary file
 * held by a live pack (its flock) is left alone. */
static void pack_killed(const char *big, const char *out) {
    const char *bin = getenv("EL_CLI");
    if (!bin) bin = EL_BINARY_DIR "/edgeload";
    srand((unsigned)time(NULL));
    int left = 0;
    for (int k = 0; k < 12; k++) {
        const char *const argv[] = {bin, "pack", big, "-o", out, "--chunk", "64K", NULL};
        el_test_proc_kill_after(argv, rand() % 60000);
        left += temp_files();
    }
    printf("   SIGKILL during pack: 12 runs, %d temporary files seen after the kills\n", left);
    EL_CHECK(left <= 2); /* only the link -> rename window leaves one (removed next run) */
    /* Stale named temporaries (a killed pack of the fallback path) and a live one. */
    char stale[1200], live[1200];
    snprintf(stale, sizeof stale, "%s/.out.elimg.tmp.AbC123", g_dir);
    snprintf(live, sizeof live, "%s/.out.elimg.tmp.LiVe00", g_dir);
    EL_CHECK(el_test_write_file(stale, "half an image", 13));
    EL_CHECK(el_test_write_file(live, "being written", 13));
    int fd = open(live, O_RDONLY);
    EL_CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    EL_CHECK(img_cli(NULL, NULL, "pack '%s' -o '%s' --chunk 64K", big, out) == 0);
    EL_CHECK(access(stale, F_OK) != 0 && access(live, F_OK) == 0);
    close(fd);
    unlink(live);
    EL_CHECK(temp_files() == 0);
    el_image_verify_report r;
    EL_CHECK_OK(el_image_verify(out, 0, &r));
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Inside an image: a valid tokenizer.json (512 tokens, as stories260K) is packed next to
 * tok512.bin, then its stored bytes are damaged and every CRC made to match again (as an
 * older pack would have stored a corrupt file): verify passes, but tokenize refuses the
 * image's tokenizer.json instead of falling back to its tok512.bin. dir holds the model. */
static void in_image(const char *dir, const char *img) {
    char tj[1300];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    EL_CHECK(img_write_tok512(tj));
    char model[1300];
    snprintf(model, sizeof model, "%s/stories260K.bin", dir);
    EL_CHECK(img_cli(NULL, NULL, "pack '%s' -o '%s'", model, img) == 0);
    size_t n = 0;
    uint8_t *b = (uint8_t *)el_test_read_file(img, &n);
    el_img_meta meta;
    EL_CHECK(b && el_img_meta_parse_memory(b, n, "img", &meta) == EL_OK);
    if (!b) return;
    const el_img_side *side = NULL;
    for (uint32_t i = 0; i < meta.side_count; i++)
        if (!strcmp(meta.side[i].name, "tokenizer.json")) side = &meta.side[i];
    EL_CHECK(side != NULL);
    if (side) {
        /* Damage byte 0 so that the new CRC prints as many digits as the old one: the
         * manifest keeps its size and only its CRC and the header's change. */
        char old_crc[32], new_crc[32];
        snprintf(old_crc, sizeof old_crc, "\"crc32c\":%u", side->crc);
        uint8_t *f = b + side->offset;
        bool done = false;
        for (int c = '!'; c < 0x7f && !done; c++) {
            if (c == '{' || c == ' ') continue;
            f[0] = (uint8_t)c;
            snprintf(new_crc, sizeof new_crc, "\"crc32c\":%u", el_crc32c(0, f, (size_t)side->size));
            done = strlen(new_crc) == strlen(old_crc);
        }
        char *man = (char *)b + meta.h.manifest_offset;
        char *hit = done ? memmem(man, (size_t)meta.h.manifest_size, old_crc, strlen(old_crc)) : NULL;
        EL_CHECK(hit != NULL);
        if (hit) {
            memcpy(hit, new_crc, strlen(new_crc));
            put32(b + 80, el_crc32c(0, man, (size_t)meta.h.manifest_size));
            put32(b + 124, el_crc32c(0, b, 124));
        }
        EL_CHECK(el_test_write_file(img, b, n));
        char *err = NULL;
        EL_CHECK(img_cli(NULL, NULL, "verify '%s'", img) == 0); /* the container is whole */
        EL_CHECK(img_cli(NULL, &err, "tokenize '%s' 'Once upon a time'", img) == 2);
        if (!err || !strstr(err, "tokenizer.json")) fprintf(stderr, "   stderr: %s\n", err ? err : "");
        EL_CHECK(err && strstr(err, "tokenizer.json"));
        free(err);
    }
    el_img_meta_free(&meta);
    free(b);
    unlink(img);
    unlink(tj);
}

/* A corrupt tokenizer.json next to a working tok512.bin (llama2.c) or vocab.txt (BERT):
 * tokenize and pack exit 2 naming it; they never fall back to the other file. */
static void corrupt_tokenizer(void) {
    const char *stories = img_stories();
    if (!stories) {
        printf("   corrupt tokenizer.json: stories260K not found, skipped\n");
        return;
    }
    char dir[1200], model[1300], tok[1300], tj[1300], *err = NULL;
    snprintf(dir, sizeof dir, "%s/stories", g_dir);
    EL_CHECK(mkdir(dir, 0755) == 0);
    snprintf(model, sizeof model, "%s/stories260K.bin", dir);
    snprintf(tok, sizeof tok, "%s/tok512.bin", dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    size_t n = 0;
    char *b = el_test_read_file(stories, &n);
    EL_CHECK(b && el_test_write_file(model, b, n));
    free(b);
    char tsrc[1300];
    snprintf(tsrc, sizeof tsrc, "%s", stories);
    snprintf(strrchr(tsrc, '/') + 1, 32, "tok512.bin");
    b = el_test_read_file(tsrc, &n);
    EL_CHECK(b && el_test_write_file(tok, b, n));
    free(b);
    EL_CHECK(img_cli(NULL, NULL, "tokenize '%s' 'Once upon a time'", model) == 0);
    EL_CHECK(el_test_write_file(tj, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", 41));
    EL_CHECK(img_cli(NULL, &err, "tokenize '%s' 'Once upon a time'", model) == 2);
    EL_CHECK(err && strstr(err, "tokenizer.json"));
    free(err);
    char img[1300];
    snprintf(img, sizeof img, "%s/stories.elimg", g_dir);
    EL_CHECK(img_cli(NULL, &err, "pack '%s' -o '%s'", model, img) == 2);
    EL_CHECK(err && strstr(err, "tokenizer.json") && strstr(err, "refusing to pack"));
    free(err);
    EL_CHECK(access(img, F_OK) != 0 && temp_files() == 0);
    in_image(dir, img);

    /* BERT: tokenizer.json (corrupt) and vocab.txt. */
    char bdir[1200], vocab[1300];
    snprintf(bdir, sizeof bdir, "%s/bert", g_dir);
    EL_CHECK(mkdir(bdir, 0755) == 0);
    static const char *const files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char from[1300], to[1300];
        snprintf(from, sizeof from, "%s/tests/fixtures/hf_bert_base/%s", EL_SOURCE_DIR, files[i]);
        snprintf(to, sizeof to, "%s/%s", bdir, files[i]);
        b = el_test_read_file(from, &n);
        EL_CHECK(b && el_test_write_file(to, b, n));
        free(b);
    }
    /* 50 tokens: the specials, then filler words. */
    char v[2048];
    size_t o = (size_t)snprintf(v, sizeof v, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int i = 5; i < 50; i++) o += (size_t)snprintf(v + o, sizeof v - o, "w%d\n", i);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", bdir);
    EL_CHECK(el_test_write_file(vocab, v, o));
    EL_CHECK(img_cli(NULL, NULL, "tokenize '%s' 'w7 w9'", bdir) == 0);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", bdir);
    EL_CHECK(el_test_write_file(tj, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": ", 41));
    EL_CHECK(img_cli(NULL, &err, "tokenize '%s' 'w7 w9'", bdir) == 2);
    EL_CHECK(err && strstr(err, "tokenizer.json"));
    free(err);
    EL_CHECK(img_cli(NULL, &err, "pack '%s' -o '%s'", bdir, img) == 2);
    EL_CHECK(err && strstr(err, "tokenizer.json"));
    free(err);
}

/* flash: a source with one bad chunk is refused (exit 2) before anything is written: the
 * good image already on the target stays byte-identical and verifies. */
static void flash_verifies_first(const char *good) {
    size_t n = 0;
    char *bytes = el_test_read_file(good, &n);
    char target[1200], bad[1200], *err = NULL;
    snprintf(target, sizeof target, "%s/disk.bin", g_dir);
    snprintf(bad, sizeof bad, "%s/bad.elimg", g_dir);
    EL_CHECK(el_test_write_file(target, bytes, n));
    el_img_meta meta;
    EL_CHECK_OK(el_img_meta_parse_memory((const uint8_t *)bytes, n, "good", &meta));
    uint32_t last = meta.h.chunk_count - 1;
    uint64_t at = meta.chunks[last].offset + meta.chunks[last].stored_size / 2;
    el_img_meta_free(&meta);
    bytes[at] ^= 0x40;
    EL_CHECK(el_test_write_file(bad, bytes, n));
    bytes[at] ^= 0x40;
    EL_CHECK(img_cli(NULL, &err, "flash '%s' '%s'", bad, target) == 2);
    EL_CHECK(err && strstr(err, "chunk") && strstr(err, "nothing was written"));
    free(err);
    EL_CHECK(img_same_file(target, bytes, n));
    EL_CHECK(img_cli(NULL, NULL, "verify '%s'", target) == 0);
    free(bytes);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", el_test_tmpdir());
    char src[1200], big[1200], ref[1200], out[1200];
    snprintf(src, sizeof src, "%s/a.safetensors", g_dir);
    snprintf(big, sizeof big, "%s/big.safetensors", g_dir);
    snprintf(ref, sizeof ref, "%s/ref.elimg", g_dir);
    snprintf(out, sizeof out, "%s/out.elimg", g_dir);
    EL_CHECK(el_test_write_safetensors(src, k_img_tensors, IMG_NTENSORS, 5));
    static const el_test_tensor bigt[] = {
        {"w1", EL_DT_F32, 2, {1024, 1024}}, {"w2", EL_DT_F16, 2, {1024, 2048}},
    };
    EL_CHECK(el_test_write_safetensors(big, bigt, 2, 9));
    EL_CHECK(img_cli(NULL, NULL, "pack '%s' -o '%s' --chunk 64K", src, ref) == 0);
    pack_outputs(src, ref);
    pack_killed(big, out);
    corrupt_tokenizer();
    flash_verifies_first(out);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_image_firmware");
}
