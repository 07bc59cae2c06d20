/* test_image_atomic.c - pack replaces an image atomically: with an injected write failure
 * at every write operation of a pack (writes, fsyncs, the rename, the folder fsync) the
 * old image stays byte-identical and verifies, and no temporary file is left; a pack child
 * killed with SIGKILL at random times leaves either the old or the new image, whole. Also
 * flash onto a file target (with offset), and its refusals (too small, mounted). */
// ctest-labels: image
#include "tests/image_common.h"
#include "tests/support/el_test_proc.h"

#include "platform/platform.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const el_image_pack_params k_pack = {.dtype = EL_DT_NONE,
                                             .codec = EL_IMG_CODEC_SHUFFLE_LZ4,
                                             .chunk_bytes = 65536};

/* The two images the runs below switch between: a packed to out (the old one, left in
 * place) and b packed to dir/new.elimg (the new one); both read back (malloc'd). */
static void old_and_new(const char *dir, const char *a, const char *b, const char *out,
                        char **old, size_t *old_len, char **neu, size_t *new_len) {
    EL_CHECK_OK(el_image_pack(a, out, &k_pack, NULL));
    *old = el_test_read_file(out, old_len);
    char newpath[1200];
    snprintf(newpath, sizeof newpath, "%s/new.elimg", dir);
    EL_CHECK_OK(el_image_pack(b, newpath, &k_pack, NULL));
    *neu = el_test_read_file(newpath, new_len);
}

static void injected(const char *dir, const char *a, const char *b, const char *out) {
    size_t old_len = 0, new_len = 0;
    char *old, *neu;
    old_and_new(dir, a, b, out, &old, &old_len, &neu, &new_len);
    int failures = 0, bad = 0;
    uint64_t nth = 1;
    for (; nth < 10000; nth++) {
        EL_CHECK(el_fault_set_write(nth));
        el_status s = el_image_pack(b, out, &k_pack, NULL);
        el_fault_clear();
        el_image_verify_report r;
        bool verifies = el_image_verify(out, 0, &r) == EL_OK;
        bool is_old = img_same_file(out, old, old_len), is_new = img_same_file(out, neu, new_len);
        if (s == EL_OK) {
            EL_CHECK(is_new && verifies);
            break;
        }
        failures++;
        /* Only the folder fsync comes after the rename: then the new image is in place. */
        if (s != EL_E_IO || !verifies || !(is_old || is_new) || img_temp_files(dir) != 0) {
            fprintf(stderr, "   write op %llu: %s, verifies %d, old %d, new %d, temps %d: %s\n",
                    (unsigned long long)nth, el_status_str(s), verifies, is_old, is_new,
                    img_temp_files(dir), el_last_error());
            bad++;
        }
        if (is_new) { /* restore the old image for the next round */
            EL_CHECK(el_test_write_file(out, old, old_len));
        }
    }
    printf("   injected write failures: %d failure points, all left a whole image; pack "
           "succeeded at write op %llu\n", failures, (unsigned long long)nth);
    EL_CHECK(failures >= 5 && bad == 0);
    free(old);
    free(neu);
}

static void killed(const char *dir, const char *a, const char *b, const char *out) {
    size_t old_len = 0, new_len = 0;
    char *old, *neu;
    old_and_new(dir, a, b, out, &old, &old_len, &neu, &new_len);
    const char *cli = getenv("EL_CLI");
    if (!cli) cli = EL_BINARY_DIR "/edgeload";
    srand((unsigned)time(NULL));
    int olds = 0, news = 0, bad = 0;
    for (int k = 0; k < 20; k++) {
        EL_CHECK(el_test_write_file(out, old, old_len));
        const char *const argv[] = {cli, "pack", b, "-o", out, "--chunk", "64K", NULL};
        el_test_proc_kill_after(argv, rand() % 60000);
        el_image_verify_report r;
        bool verifies = el_image_verify(out, 0, &r) == EL_OK;
        bool is_old = img_same_file(out, old, old_len), is_new = img_same_file(out, neu, new_len);
        olds += is_old;
        news += is_new;
        if (!verifies || !(is_old || is_new)) bad++;
        /* A killed pack may leave its temporary file (it had no chance to remove it). */
        img_remove_temp_files(dir);
    }
    printf("   SIGKILL during pack: 20 runs, %d left the old image, %d the new, %d broken\n", olds,
           news, bad);
    EL_CHECK(bad == 0);
    free(old);
    free(neu);
}

static void flash(const char *dir, const char *img) {
    char target[1200], small[1200], args[3000];
    snprintf(target, sizeof target, "%s/disk.bin", dir);
    snprintf(small, sizeof small, "%s/small.bin", dir);
    size_t n = 0;
    char *bytes = el_test_read_file(img, &n);
    size_t tl = n + 3 * 4096 + 777;
    char *junk = malloc(tl);
    memset(junk, 0xA5, tl);
    EL_CHECK(el_test_write_file(target, junk, tl));
    EL_CHECK(el_test_write_file(small, junk, n));
    el_image_verify_report r;
    EL_CHECK_OK(el_image_flash(img, target, 8192, &r));
    size_t got_len = 0;
    char *got = el_test_read_file(target, &got_len);
    EL_CHECK(got_len == tl && !memcmp(got + 8192, bytes, n) && (uint8_t)got[0] == 0xA5 &&
             (uint8_t)got[tl - 1] == 0xA5);
    snprintf(args, sizeof args, "flash '%s' '%s' --offset 4096", img, target);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 0);
    snprintf(args, sizeof args, "load '%s' --offset 4096 --no-progress", target);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 0);
    /* Too small (image + offset past its end): refused, nothing written. */
    char *err = NULL;
    snprintf(args, sizeof args, "flash '%s' '%s' --offset 512", img, small);
    EL_CHECK(el_test_run_cli(args, NULL, &err) == 1);
    EL_CHECK(err && strstr(err, "the image needs"));
    free(err);
    EL_CHECK(img_same_file(small, junk, n));
    /* A corrupt image is refused before anything is written. */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/bad.elimg", dir);
    bytes[20] ^= 1;
    EL_CHECK(el_test_write_file(bad, bytes, n));
    bytes[20] ^= 1;
    EL_CHECK(el_test_write_file(small, junk, n));
    snprintf(args, sizeof args, "flash '%s' '%s'", bad, small);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 2);
    EL_CHECK(img_same_file(small, junk, n));
    /* A mounted filesystem: a device node for the root filesystem's device, if this process
     * may make one (only the check runs: nothing is ever written to it). */
    struct stat st;
    char node[1200];
    snprintf(node, sizeof node, "%s/rootdev", dir);
    if (stat("/", &st) == 0 && major(st.st_dev) != 0 && mknod(node, S_IFBLK | 0600, st.st_dev) == 0) {
        EL_CHECK_STATUS(el_image_target_check_mounted(node), EL_E_USAGE);
        EL_CHECK(strstr(el_last_error(), "mounted") != NULL);
        unlink(node);
    } else {
        printf("   mounted-target check skipped: cannot make a block device node for / here\n");
    }
    EL_CHECK_OK(el_image_target_check_mounted(target)); /* a plain file */
    snprintf(args, sizeof args, "flash '%s' '%s/missing.bin'", img, dir);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 4);
    free(bytes);
    free(junk);
    free(got);
}

int main(void) {
    char dir[1024], a[1200], b[1200], out[1200];
    snprintf(dir, sizeof dir, "%s", el_test_tmpdir());
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.elimg", dir);
    EL_CHECK(el_test_write_safetensors(a, k_img_tensors, IMG_NTENSORS, 5));
    /* b: bigger (several MiB) so a pack takes long enough to be killed midway. */
    static const el_test_tensor big[] = {
        {"w1", EL_DT_F32, 2, {1024, 1024}}, {"w2", EL_DT_F16, 2, {1024, 2048}}, {"w3", EL_DT_F32, 1, {5000}},
    };
    EL_CHECK(el_test_write_safetensors(b, big, 3, 9));
    injected(dir, a, b, out);
    killed(dir, a, b, out);
    flash(dir, out);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_image_atomic");
}
