/* tok_merge.c - see tok_merge.h. */
#include "tokenizer/tok_merge.h"

#include <stdbool.h>

void el_tok_merge_init(el_tok_merge *w, int32_t *work, size_t m, el_tok_pair_fn pair,
                       const void *ctx, const float *score) {
    *w = (el_tok_merge){.pair = pair, .ctx = ctx, .score = score, .sym = work,
                        .nx = work + m, .pv = work + 2 * m, .pid = work + 3 * m,
                        .h = work + 4 * m, .at = work + 5 * m};
}

/* Pair a before b: higher score first, then the leftmost. */
static bool before(const el_tok_merge *w, int32_t a, int32_t b) {
    float sa = w->score[w->pid[a]], sb = w->score[w->pid[b]];
    return sa > sb || (sa == sb && a < b);
}

static void heap_put(el_tok_merge *w, size_t i, int32_t pos) {
    w->h[i] = pos;
    w->at[pos] = (int32_t)i;
}

static void heap_fix(el_tok_merge *w, size_t i) {
    int32_t pos = w->h[i];
    while (i > 0 && before(w, pos, w->h[(i - 1) / 2])) {
        heap_put(w, i, w->h[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->hn) break;
        if (c + 1 < w->hn && before(w, w->h[c + 1], w->h[c])) c++;
        if (!before(w, w->h[c], pos)) break;
        heap_put(w, i, w->h[c]);
        i = c;
    }
    heap_put(w, i, pos);
}

/* Looks up pair (i, nx[i]) again and moves i into, within or out of the heap. */
static void pair_update(el_tok_merge *w, int32_t i) {
    int32_t id = w->nx[i] >= 0 ? w->pair(w->ctx, w->sym[i], w->sym[w->nx[i]]) : -1;
    w->pid[i] = id;
    int32_t k = w->at[i];
    if (id < 0) {
        if (k < 0) return;
        w->at[i] = -1;
        if ((size_t)k == --w->hn) return;
        heap_put(w, (size_t)k, w->h[w->hn]);
        heap_fix(w, (size_t)k);
    } else if (k < 0) {
        heap_put(w, w->hn++, i);
        heap_fix(w, w->hn - 1);
    } else {
        heap_fix(w, (size_t)k);
    }
}

void el_tok_merge_run(el_tok_merge *w, size_t m) {
    for (size_t i = 0; i < m; i++) {
        w->nx[i] = i + 1 < m ? (int32_t)i + 1 : -1;
        w->pv[i] = (int32_t)i - 1;
        w->at[i] = -1;
    }
    w->hn = 0;
    for (size_t i = 0; i + 1 < m; i++) pair_update(w, (int32_t)i);
    while (w->hn) {
        int32_t i = w->h[0], j = w->nx[i];
        w->sym[i] = w->pid[i];
        w->nx[i] = w->nx[j];
        if (w->nx[j] >= 0) w->pv[w->nx[j]] = i;
        w->nx[j] = -1;
        pair_update(w, j); /* j is gone: out of the heap */
        if (w->pv[i] >= 0) pair_update(w, w->pv[i]);
        pair_update(w, i);
    }
}
