/* test_image_ab.c - the A/B layout: `flash --ab` writes the slot not in use and switches
 * the header only after it verifies; an injected write failure at every write operation
 * of a flash leaves a target whose header names a whole image (the old one, or the new one
 * once the switch began); a torn header copy is outvoted by the other; a bad source or a
 * too small target changes nothing; the CLI reads the active slot. */
// ctest-labels: image
#include "tests/image_common.h"

#include "platform/platform.h"

static bool slot_holds(const char *target, const el_image_ab *ab, uint32_t slot, const char *img_bytes,
                       size_t n) {
    size_t tn = 0;
    char *t = el_test_read_file(target, &tn);
    bool same = t && ab->slot_offset[slot] + n <= tn && !memcmp(t + ab->slot_offset[slot], img_bytes, n);
    free(t);
    return same;
}

int main(void) {
    const char *stories = img_stories();
    if (!stories) el_test_skip("stories260K not found");
    char a[1200], b[1200], target[1200];
    snprintf(a, sizeof a, "%s", el_test_path("a.elimg"));
    snprintf(b, sizeof b, "%s", el_test_path("b.elimg"));
    snprintf(target, sizeof target, "%s", el_test_path("disk.bin"));
    el_image_pack_params pa = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_SHUFFLE_LZ4, .chunk_bytes = 1 << 20};
    el_image_pack_params pb = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_NONE, .chunk_bytes = 256 << 10};
    EL_CHECK_OK(el_image_pack(stories, a, &pa, NULL));
    EL_CHECK_OK(el_image_pack(stories, b, &pb, NULL));
    size_t na = 0, nb = 0;
    char *ba = el_test_read_file(a, &na), *bb = el_test_read_file(b, &nb);
    EL_CHECK(ba && bb && na != nb);
    char *junk = malloc(3u << 20);
    memset(junk, 0xA5, 3u << 20);
    EL_CHECK(el_test_write_file(target, junk, 3u << 20));

    /* First use: slot A, generation 1; the CLI reads it. */
    char *out = NULL, *err = NULL;
    EL_CHECK(img_cli(&out, &err, "flash '%s' '%s' --ab", a, target) == 0);
    EL_CHECK(out && strstr(out, "slot A") && strstr(out, "generation 1"));
    free(out);
    free(err);
    el_image_ab ab;
    uint64_t off = 0;
    EL_CHECK_OK(el_image_ab_resolve(target, &off, &ab));
    EL_CHECK(ab.active == 0 && ab.generation == 1 && off == 8192 && ab.image_size == na);
    EL_CHECK(slot_holds(target, &ab, 0, ba, na));
    EL_CHECK(img_cli(&out, NULL, "verify '%s'", target) == 0 && out && strstr(out, "slot A active"));
    free(out);
    char *gen_img = NULL, *gen_ab = NULL;
    EL_CHECK(img_cli(&gen_img, NULL, "generate '%s' -p Once -n 12 --temp 0 --device cpu", a) == 0);
    EL_CHECK(img_cli(&gen_ab, NULL, "generate '%s' -p Once -n 12 --temp 0 --device cpu", target) == 0);
    EL_CHECK(gen_img && gen_ab && !strcmp(gen_img, gen_ab));
    free(gen_img);
    free(gen_ab);

    /* Second: slot B, generation 2; slot A untouched. */
    EL_CHECK(img_cli(NULL, NULL, "flash '%s' '%s' --ab", b, target) == 0);
    EL_CHECK_OK(el_image_ab_resolve(target, &off, &ab));
    EL_CHECK(ab.active == 1 && ab.generation == 2 && ab.image_size == nb);
    EL_CHECK(slot_holds(target, &ab, 1, bb, nb) && slot_holds(target, &ab, 0, ba, na));

    /* An injected failure at every write operation of the next flash (a -> slot A): the
     * header always names a slot whose image verifies. */
    int old = 0, neu = 0, bad = 0;
    uint64_t nth = 1;
    for (; nth < 500; nth++) {
        EL_CHECK(el_fault_set_write(nth));
        el_image_verify_report r;
        el_status s = el_image_flash_ab(a, target, &ab, &r);
        el_fault_clear();
        uint64_t o2 = 0;
        el_image_ab now;
        bool ok = el_image_ab_resolve(target, &o2, &now) == EL_OK && o2 != 0 &&
                  el_image_verify(target, o2, &r) == EL_OK;
        if (!ok) bad++;
        if (s == EL_OK) break;
        if (now.generation == 2) old++;
        else neu++;
        /* Back to generation 2 naming slot B for the next round. */
        if (now.generation != 2) {
            EL_CHECK(el_test_write_file(target, junk, 3u << 20));
            EL_CHECK_OK(el_image_flash_ab(a, target, &ab, &r));
            EL_CHECK_OK(el_image_flash_ab(b, target, &ab, &r));
        }
    }
    printf("   injected write failures: %llu write ops in a flash; %d left the old slot active, "
           "%d the new one, %d broken\n", (unsigned long long)nth, old, neu, bad);
    EL_CHECK(bad == 0 && old >= 3);

    /* A torn header copy: the other one still names a good slot. */
    EL_CHECK_OK(el_image_ab_resolve(target, &off, &ab));
    size_t tn = 0;
    char *t = el_test_read_file(target, &tn);
    for (int copy = 0; copy < 2 && t; copy++) {
        char *c = malloc(tn);
        memcpy(c, t, tn);
        c[copy * 4096 + 20] ^= 0x5a;
        EL_CHECK(el_test_write_file(target, c, tn));
        uint64_t o2 = 0;
        el_image_verify_report r;
        EL_CHECK(el_image_ab_resolve(target, &o2, NULL) == EL_OK && o2 != 0 &&
                 el_image_verify(target, o2, &r) == EL_OK);
        free(c);
    }
    /* Both copies damaged: refused (exit 2), never read as a plain image. */
    if (t) {
        t[20] ^= 0x5a;
        t[4096 + 20] ^= 0x5a;
        EL_CHECK(el_test_write_file(target, t, tn));
        EL_CHECK(img_cli(NULL, &err, "verify '%s'", target) == 2 && err && strstr(err, "A/B header"));
        free(err);
        t[20] ^= 0x5a;
        t[4096 + 20] ^= 0x5a;
        EL_CHECK(el_test_write_file(target, t, tn));
    }

    /* A source with a bad chunk: refused, the target byte-identical. */
    el_img_meta meta;
    EL_CHECK_OK(el_img_meta_parse_memory((const uint8_t *)ba, na, "a", &meta));
    char *bad_img = malloc(na);
    memcpy(bad_img, ba, na);
    bad_img[meta.chunks[0].offset + 100] ^= 1;
    el_img_meta_free(&meta);
    char badp[1200];
    snprintf(badp, sizeof badp, "%s", el_test_path("bad.elimg"));
    EL_CHECK(el_test_write_file(badp, bad_img, na));
    EL_CHECK(img_cli(NULL, NULL, "flash '%s' '%s' --ab", badp, target) == 2);
    EL_CHECK(t && img_same_file(target, t, tn));
    /* A target whose slots cannot hold the image: 1, untouched. */
    char small[1200];
    snprintf(small, sizeof small, "%s", el_test_path("small.bin"));
    EL_CHECK(el_test_write_file(small, junk, 1u << 20));
    EL_CHECK(img_cli(NULL, &err, "flash '%s' '%s' --ab", a, small) == 1 && err && strstr(err, "slot"));
    free(err);
    EL_CHECK(img_same_file(small, junk, 1u << 20));
    EL_CHECK(img_cli(NULL, NULL, "flash '%s' '%s' --ab --offset 4096", a, target) == 1);
    free(t);
    free(bad_img);
    free(junk);
    free(ba);
    free(bb);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_image_ab");
}
