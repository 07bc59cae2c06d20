/* input.c - bounded input for the commands that read texts (embed, classify, chat,
 * generate, tokenize): buffers the plan counted in the arena's scratch region, stdin read
 * in fixed pieces, and a line over --max-input counted and skipped, never held whole. */
#include "cli/cli.h"

#include "arena/arena.h"
#include "platform/platform.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int el_cli_input_init(const el_cli_loaded *L, uint32_t n, int fd, el_cli_input *in) {
    memset(in, 0, sizeof *in);
    in->max = L->plan.max_input;
    in->ctx = L->plan.params.ctx;
    in->fd = fd;
    in->n = n;
    uint64_t line = 0;
    el_status s = EL_OK;
    if (n == 0 || n > L->plan.params.batch || !el_align_up_u64(in->max + 1, 64, &line))
        s = el_errorf(EL_E_USAGE, "input: %u texts of %llu bytes, the plan has %u", n,
                      (unsigned long long)in->max, L->plan.params.batch);
    void *p = NULL;
    if (s == EL_OK) s = el_arena_alloc(L->arena, EL_REGION_SCRATCH, n * sizeof *in->text, 64, &p);
    in->text = p;
    for (uint32_t i = 0; s == EL_OK && i < n; i++) {
        s = el_arena_alloc(L->arena, EL_REGION_SCRATCH, line, 64, &p);
        in->text[i] = p;
    }
    if (s == EL_OK) s = el_arena_alloc(L->arena, EL_REGION_SCRATCH, EL_INPUT_PIECE, 64, &p);
    in->piece = p;
    return s == EL_OK ? 0 : el_cli_fail(s);
}

/* Refills the piece when it is used up: true while bytes are available. */
static bool fill(el_cli_input *in) {
    while (in->pos == in->len && !in->eof && !in->err) {
        ssize_t r = read(in->fd, in->piece, EL_INPUT_PIECE);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) in->err = errno ? errno : EIO;
        if (r == 0) in->eof = true;
        in->pos = 0;
        in->len = r > 0 ? (size_t)r : 0;
    }
    return in->pos < in->len;
}

int el_cli_input_line(el_cli_input *in, uint32_t slot, size_t *len) {
    char *dst = in->text[slot];
    uint64_t n = 0; /* bytes of the line so far (saturating) */
    bool any = false, nl = false;
    while (!nl && fill(in)) {
        any = true;
        const char *p = in->piece + in->pos;
        size_t avail = in->len - in->pos;
        const char *end = memchr(p, '\n', avail);
        size_t take = end ? (size_t)(end - p) : avail;
        if (n < in->max) { /* the part that fits; beyond max the line is only counted */
            size_t keep = in->max - n < take ? (size_t)(in->max - n) : take;
            memcpy(dst + n, p, keep);
        }
        n = n + take < n ? UINT64_MAX : n + take;
        in->pos += take + (end ? 1 : 0);
        nl = end != NULL;
    }
    if (in->err) return -1;
    if (!any) return 0;
    if (n > in->max) {
        *len = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
        return 2;
    }
    if (n > 0 && dst[n - 1] == '\r') n--;
    dst[n] = 0;
    *len = (size_t)n;
    return 1;
}

int el_cli_input_all(el_cli_input *in, size_t *len) {
    char *dst = in->text[0];
    uint64_t n = 0; /* bytes so far (saturating); past max only counted */
    while (fill(in)) {
        size_t take = in->len - in->pos;
        if (n < in->max)
            memcpy(dst + n, in->piece + in->pos, in->max - n < take ? (size_t)(in->max - n) : take);
        in->pos += take;
        n = n + take < n ? UINT64_MAX : n + take;
    }
    if (in->err) return -1;
    *len = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
    if (n > in->max) return 2;
    dst[n] = 0;
    return 1;
}

int el_cli_input_check(uint64_t max_input, uint32_t ctx, const char *what, uint64_t len) {
    if (len <= max_input) return 0;
    char a[32];
    fprintf(stderr, "edgeload: error: %s is %llu bytes, more than --max-input %llu (%s; the "
            "default is %u bytes per token of the context, %u tokens here, within %u KiB to "
            "%u MiB): shorten it or raise --max-input\n", what, (unsigned long long)len,
            (unsigned long long)max_input, el_size_format(max_input, a, sizeof a),
            EL_INPUT_BYTES_PER_TOKEN, ctx, EL_INPUT_MIN >> 10, EL_INPUT_DEFAULT_MAX >> 20);
    return el_status_exit_code(EL_E_TOOLONG);
}
