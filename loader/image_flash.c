/* image_flash.c - `edgeload flash`: verifies every CRC of the source image, then writes it
 * to a block device, a partition or a file at an offset with aligned writes, fsyncs, drops
 * the written range from the page cache and verifies every CRC from what the target gives
 * back. Refuses a target that is too small or is (or holds a partition that is) a mounted
 * filesystem. */
#include "loader/image.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FLASH_BLOCK (1024u * 1024u)

/* realpath of /sys/dev/block/MAJ:MIN into out; false if the kernel has no such entry. */
static bool sys_block_path(dev_t d, char *out) {
    char link[64];
    snprintf(link, sizeof link, "/sys/dev/block/%u:%u", major(d), minor(d));
    return realpath(link, out) != NULL;
}

/* Scans mountinfo for a filesystem on dev or on a partition of dev (a whole disk).
 * Returns true with the mount point in mnt when one is found. */
static bool mounted_on(dev_t dev, char *mnt, size_t cap) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return false;
    char self[PATH_MAX], other[PATH_MAX], line[4096];
    bool have_self = sys_block_path(dev, self), hit = false;
    size_t self_len = have_self ? strlen(self) : 0;
    while (!hit && fgets(line, sizeof line, f)) {
        unsigned id, parent, ma, mi;
        char point[1024];
        if (sscanf(line, "%u %u %u:%u %*s %1023s", &id, &parent, &ma, &mi, point) != 5) continue;
        dev_t d = makedev(ma, mi);
        if (d == dev) {
            hit = true;
        } else if (have_self && sys_block_path(d, other) && !strncmp(other, self, self_len) &&
                   other[self_len] == '/') {
            hit = true; /* a partition of this disk */
        }
        if (hit) snprintf(mnt, cap, "%s (device %u:%u)", point, ma, mi);
    }
    fclose(f);
    return hit;
}

el_status el_image_target_check_mounted(const char *target) {
    struct stat st;
    if (stat(target, &st) != 0) return el_errorf(EL_E_IO, "%s: %s", target, strerror(errno));
    char mnt[1200];
    if (S_ISBLK(st.st_mode) && mounted_on(st.st_rdev, mnt, sizeof mnt))
        return el_errorf(EL_E_USAGE, "%s: refusing to write: a filesystem on it is mounted at %s; "
                         "unmount it first", target, mnt);
    return EL_OK;
}

el_status el_image_flash(const char *img, const char *target, uint64_t offset,
                         el_image_verify_report *r) {
    el_file in, tgt;
    /* The whole source is verified (header, table, manifest, stored files, every chunk's
     * CRC32C stored and decoded) before the first byte is written: a bad source must not
     * replace the good image already on the target. */
    el_image_verify_report pre;
    el_status s = el_image_verify(img, 0, &pre);
    if (s != EL_OK) {
        char why[700];
        snprintf(why, sizeof why, "%s", el_last_error());
        return el_errorf(s, "%s; nothing was written to %s", why, target);
    }
    if ((s = el_file_open(&in, img, 0)) != EL_OK) return s;
    el_img_meta meta;
    if ((s = el_img_meta_read(&in, 0, &meta)) != EL_OK) {
        el_file_close(&in);
        return s;
    }
    uint64_t size = meta.h.image_size, need = 0;
    el_img_meta_free(&meta);
    if ((s = el_image_target_check_mounted(target)) == EL_OK) s = el_file_open(&tgt, target, 0);
    if (s != EL_OK) {
        el_file_close(&in);
        return s;
    }
    uint64_t tsize = tgt.size;
    el_file_close(&tgt);
    if (!el_add_u64(offset, size, &need)) {
        el_file_close(&in);
        return el_errorf(EL_E_USAGE, "%s: --offset %llu + the image's %llu bytes is past 2^64 "
                         "bytes: no target is that large", target, (unsigned long long)offset,
                         (unsigned long long)size);
    }
    if (need > tsize) {
        el_file_close(&in);
        return el_errorf(EL_E_USAGE, "%s: the target is %llu bytes; the image needs %llu (%llu "
                         "bytes at offset %llu)", target, (unsigned long long)tsize,
                         (unsigned long long)need, (unsigned long long)size,
                         (unsigned long long)offset);
    }
    int fd = open(target, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        el_file_close(&in);
        return el_errorf(EL_E_IO, "%s: cannot open for writing: %s", target, strerror(errno));
    }
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, EL_DIRECT_ALIGN, FLASH_BLOCK) != 0) buf = NULL;
    if (!buf) s = el_errorf(EL_E_NOMEM, "out of memory");
    /* Writes end on 4 KiB boundaries of the target: the first piece reaches one, every
     * later piece is a whole number of blocks (the image is 4 KiB-padded at its end). */
    for (uint64_t pos = 0; s == EL_OK && pos < size;) {
        uint64_t n = FLASH_BLOCK - ((offset + pos) % EL_DIRECT_ALIGN);
        if (n > size - pos) n = size - pos;
        s = el_file_read_at(&in, buf, (size_t)n, pos);
        if (s == EL_OK) s = el_fd_write_at(fd, buf, (size_t)n, offset + pos, target);
        pos += n;
    }
    if (s == EL_OK) s = el_fd_sync(fd, target);
    if (s == EL_OK) posix_fadvise(fd, (off_t)offset, (off_t)size, POSIX_FADV_DONTNEED);
    if (close(fd) != 0 && s == EL_OK)
        s = el_errorf(EL_E_IO, "%s: close failed: %s", target, strerror(errno));
    free(buf);
    el_file_close(&in);
    if (s == EL_OK) s = el_image_verify(target, offset, r);
    return s;
}
