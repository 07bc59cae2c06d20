/* sampler.c - picking the next token from logits: greedy (temperature 0), or temperature,
 * then top-k, then top-p (nucleus) over the renormalised survivors, then a draw from a
 * seeded xorshift64* generator. Sorting works in caller memory (the session's scratch) and
 * allocates nothing. */
#include "models/session_impl.h"

#include <math.h>

void el_sampler_params_default(el_sampler_params *p) {
    *p = (el_sampler_params){.temperature = 1.0f, .top_k = 0, .top_p = 0.9f, .seed = 0};
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void el_sampler_init(el_sampler *s, uint32_t vocab, el_prob_index *cand,
                     const el_sampler_params *p) {
    s->vocab = vocab;
    s->cand = cand;
    s->p = p ? *p : (el_sampler_params){0.0f, 0, 1.0f, 0};
    s->rng = splitmix64(s->p.seed);
    if (s->rng == 0) s->rng = 0x2545f4914f6cdd1dull; /* xorshift must not start at 0 */
}

static uint32_t rand_u32(el_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (uint32_t)((s->rng * 0x2545f4914f6cdd1dull) >> 32);
}

float el_sampler_rand(el_sampler *s) { return (float)(rand_u32(s) >> 8) / 16777216.0f; }

static bool before(const el_prob_index *x, const el_prob_index *y) {
    return x->prob > y->prob || (x->prob == y->prob && x->id < y->id);
}

static void swap_pi(el_prob_index *a, el_prob_index *b) {
    el_prob_index t = *a;
    *a = *b;
    *b = t;
}

/* Restores the heap below root in c[0..end): every entry comes before its children, so
 * the root is the worst. */
static void sift_down(el_prob_index *c, size_t root, size_t end) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= end) return;
        if (child + 1 < end && before(&c[child], &c[child + 1])) child++;
        if (!before(&c[root], &c[child])) return;
        swap_pi(&c[root], &c[child]);
        root = child;
    }
}

/* The k best of c[0..n) (0 < k <= n) into c[0..k), best first, in place: a heap of k whose
 * root is the worst kept, replaced by each better entry, then heapsorted (moving the worst
 * to the back leaves the best first). Not qsort: glibc's qsort may malloc a merge buffer,
 * and this runs once per generated token. */
static void best_first(el_prob_index *c, size_t n, size_t k) {
    for (size_t i = k / 2; i-- > 0;) sift_down(c, i, k);
    for (size_t i = k; i < n; i++)
        if (before(&c[i], &c[0])) {
            swap_pi(&c[i], &c[0]);
            sift_down(c, 0, k);
        }
    for (size_t end = k; end > 1; end--) {
        swap_pi(&c[0], &c[end - 1]);
        sift_down(c, 0, end - 1);
    }
}

int32_t el_sampler_sample(el_sampler *s, float *logits) {
    const size_t n = s->vocab;
    if (!(s->p.temperature > 0.0f)) return (int32_t)el_cpu_argmax(logits, n);
    for (size_t i = 0; i < n; i++) logits[i] /= s->p.temperature;
    el_cpu_softmax(NULL, logits, n);
    bool use_k = s->p.top_k > 0 && s->p.top_k < n;
    bool use_p = s->p.top_p > 0.0f && s->p.top_p < 1.0f;
    float coin = el_sampler_rand(s);
    if (!use_k && !use_p) {
        float cdf = 0;
        for (size_t i = 0; i < n; i++) {
            cdf += logits[i];
            if (coin < cdf) return (int32_t)i;
        }
        return (int32_t)el_cpu_argmax(logits, n); /* rounding left the cdf below coin */
    }
    el_prob_index *c = s->cand;
    size_t m = 0;
    /* Without top-k, tokens below (1 - top_p) / (n - 1) cannot be in the nucleus (together
     * they hold less than 1 - top_p), so they need no sorting. */
    float cutoff = !use_k && n > 1 ? (1.0f - s->p.top_p) / (float)(n - 1) : 0.0f;
    for (size_t i = 0; i < n; i++)
        if (logits[i] >= cutoff) c[m++] = (el_prob_index){logits[i], (int32_t)i};
    if (m == 0) return (int32_t)el_cpu_argmax(logits, n);
    const size_t k = use_k && m > s->p.top_k ? s->p.top_k : m;
    best_first(c, m, k);
    m = k;
    float mass = 0;
    for (size_t i = 0; i < m; i++) mass += c[i].prob;
    if (use_p) {
        /* Smallest prefix whose (renormalised) mass reaches top_p. */
        float target = s->p.top_p * mass, cum = 0;
        size_t last = m - 1;
        for (size_t i = 0; i < m; i++) {
            cum += c[i].prob;
            if (cum >= target) {
                last = i;
                break;
            }
        }
        m = last + 1;
        mass = cum;
    }
    float r = coin * mass, cdf = 0;
    for (size_t i = 0; i < m; i++) {
        cdf += c[i].prob;
        if (r < cdf) return c[i].id;
    }
    return c[m - 1].id;
}
