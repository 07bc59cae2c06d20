/* fuzz_chat.h - the chat template contract checks (tokenizer/chat_template.h) shared by
 * fuzz_chat_template.c (template bytes fuzzed) and fuzz_chat_messages.c (conversation JSON
 * fuzzed). Included by those fuzz targets only. */
#ifndef EL_FUZZ_CHAT_H
#define EL_FUZZ_CHAT_H

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <string.h>

#define CHECK(c) \
    do {         \
        if (!(c)) __builtin_trap(); \
    } while (0)

#define FZ_WORK_CAP (256u * 1024u)
#define FZ_OUT_CAP (32u * 1024u)

static char fz_work[FZ_WORK_CAP] __attribute__((aligned(16)));
static char fz_out[FZ_OUT_CAP], fz_out2[FZ_OUT_CAP];

/* Renders and checks: a documented status with a message and nothing written, or a
 * NUL-terminated valid UTF-8 prompt within the buffer that a second render repeats. Returns
 * the status; the prompt is in fz_out (*n bytes). */
static el_status fz_chat_render(const char *t, size_t tlen, const char *msgs, size_t mlen, const el_chat_opts *o,
                                size_t *n) {
    *n = 1;
    el_status st = el_chat_render_json(t, tlen, msgs, mlen, o, fz_work, FZ_WORK_CAP, fz_out, FZ_OUT_CAP, n);
    CHECK(st == EL_OK || st == EL_E_INVALID || st == EL_E_UNSUPPORTED || st == EL_E_NOFIT);
    if (st != EL_OK) {
        CHECK(el_last_error()[0] != 0 && *n == 0);
        return st;
    }
    CHECK(*n < FZ_OUT_CAP && fz_out[*n] == 0 && el_utf8_check(fz_out, *n) == *n);
    size_t n2 = 0;
    CHECK(el_chat_render_json(t, tlen, msgs, mlen, o, fz_work, FZ_WORK_CAP, fz_out2, FZ_OUT_CAP, &n2) == EL_OK);
    CHECK(n2 == *n && !memcmp(fz_out, fz_out2, *n));
    return st;
}

#endif /* EL_FUZZ_CHAT_H */
