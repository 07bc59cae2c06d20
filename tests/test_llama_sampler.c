/* test_llama_sampler.c - token sampling: greedy, temperature, top-k, top-p against the
 * probabilities computed here (frequencies over many draws), seeds (same seed, same tokens),
 * and top-k selection on a larger vocabulary. */
// ctest-labels: llama
#include "models/session_impl.h"
#include "tests/support/el_test.h"

#include <math.h>
#include <string.h>

#define DRAWS 40000

/* Frequencies of each id over DRAWS samples (logits copied per draw: sampling scales them). */
static void histogram(el_sampler *s, const float *logits, size_t n, double *freq) {
    float buf[1024];
    static int count[1024];
    for (size_t i = 0; i < n; i++) count[i] = 0;
    for (int d = 0; d < DRAWS; d++) {
        memcpy(buf, logits, n * sizeof *buf);
        int32_t id = el_sampler_sample(s, buf);
        if (id >= 0 && (size_t)id < n) count[id]++;
    }
    for (size_t i = 0; i < n; i++) freq[i] = (double)count[i] / DRAWS;
}

/* softmax(logits / temp) in double, restricted to keep[] (renormalised). */
static void expected(const float *logits, size_t n, double temp, const bool *keep, double *p) {
    double mx = -1e300, sum = 0;
    /* Not fmax: gcc 12 for aarch64 has an internal compiler error vectorising an fmax
     * reduction over floats widened to double (the cross build in scripts/test.sh). */
    for (size_t i = 0; i < n; i++) {
        double v = logits[i] / temp;
        mx = v > mx ? v : mx;
    }
    for (size_t i = 0; i < n; i++) sum += (p[i] = keep[i] ? exp(logits[i] / temp - mx) : 0);
    for (size_t i = 0; i < n; i++) p[i] /= sum;
}

static bool close_freq(const double *f, const double *p, size_t n) {
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        /* 5 standard deviations of a binomial frequency, plus a little. */
        double sd = sqrt(p[i] * (1 - p[i]) / DRAWS);
        if (fabs(f[i] - p[i]) > 5 * sd + 1e-3) {
            fprintf(stderr, "  id %zu: frequency %.4f, expected %.4f\n", i, f[i], p[i]);
            ok = false;
        }
    }
    return ok;
}

int main(void) {
    /* Probabilities about 0.5, 0.3, 0.15, 0.05 at temperature 1. */
    const float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    el_prob_index cand[1024];
    el_sampler s;
    double f[1024], p[1024];
    bool all[4] = {true, true, true, true};

    /* Greedy: temperature 0, any seed. */
    for (uint64_t seed = 0; seed < 5; seed++) {
        el_sampler_params sp = {0.0f, 0, 1.0f, seed};
        el_sampler_init(&s, 4, cand, &sp);
        float b[4] = {1, 3, 3, -2};
        EL_CHECK(el_sampler_sample(&s, b) == 1);
    }
    /* NULL params = greedy. */
    el_sampler_init(&s, 4, cand, NULL);
    float b0[4] = {1, 3, 9, -2};
    EL_CHECK(el_sampler_sample(&s, b0) == 2);

    /* Plain temperature 1 and 0.5. */
    el_sampler_params sp = {1.0f, 0, 1.0f, 123};
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    expected(logits, 4, 1.0, all, p);
    EL_CHECK(close_freq(f, p, 4));
    sp.temperature = 0.5f;
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    expected(logits, 4, 0.5, all, p);
    EL_CHECK(close_freq(f, p, 4));

    /* top-k 2: only the two best, renormalised. */
    sp = (el_sampler_params){1.0f, 2, 1.0f, 9};
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    bool top2[4] = {true, true, false, false};
    expected(logits, 4, 1.0, top2, p);
    EL_CHECK(close_freq(f, p, 4));
    /* top-k 1 is greedy. */
    sp.top_k = 1;
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    EL_CHECK(f[0] == 1.0);

    /* top-p 0.7: 0.5 alone is not enough, 0.5 + 0.3 is: {0, 1}. top-p 0.85: {0, 1, 2}. */
    sp = (el_sampler_params){1.0f, 0, 0.7f, 5};
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    EL_CHECK(close_freq(f, p, 4)); /* same set as top-k 2 */
    sp.top_p = 0.85f;
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    bool top3[4] = {true, true, true, false};
    expected(logits, 4, 1.0, top3, p);
    EL_CHECK(close_freq(f, p, 4));
    /* top-k, then top-p over the renormalised survivors: k 3 leaves 0.5/0.95 = 0.526 for
     * the best, which alone reaches p 0.5 (over all four tokens, 0.5 would not be > 0.5). */
    sp = (el_sampler_params){1.0f, 3, 0.5f, 5};
    el_sampler_init(&s, 4, cand, &sp);
    histogram(&s, logits, 4, f);
    EL_CHECK(f[0] == 1.0);

    /* Seeds: the same seed draws the same tokens; another seed does not. */
    int32_t a[200], b[200], c[200];
    float buf[4];
    for (int run = 0; run < 3; run++) {
        el_sampler_params q = {1.0f, 0, 1.0f, run == 2 ? 43u : 42u};
        el_sampler_init(&s, 4, cand, &q);
        int32_t *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 200; i++) {
            memcpy(buf, logits, sizeof buf);
            out[i] = el_sampler_sample(&s, buf);
        }
    }
    EL_CHECK(!memcmp(a, b, sizeof a));
    EL_CHECK(memcmp(a, c, sizeof a) != 0);
    /* Seed 0 is a valid seed (the generator never sticks at zero). */
    el_sampler_init(&s, 4, cand, &(el_sampler_params){1.0f, 0, 1.0f, 0});
    bool varied = false;
    for (int i = 0; i < 50; i++) {
        memcpy(buf, logits, sizeof buf);
        varied = varied || el_sampler_sample(&s, buf) != 0;
    }
    EL_CHECK(varied);
    float lo = 1, hi = 0;
    for (int i = 0; i < 10000; i++) {
        float r = el_sampler_rand(&s);
        lo = fminf(lo, r);
        hi = fmaxf(hi, r);
    }
    EL_CHECK(lo >= 0 && lo < 0.01f && hi < 1.0f && hi > 0.99f);

    /* A larger vocabulary: top-k 37 of 1000 draws only from the true 37 best, and all of
     * them show up (quickselect keeps exactly the right set). */
    float big[1000];
    uint64_t r = 77;
    for (int i = 0; i < 1000; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        big[i] = (float)((r >> 40) % 1000) / 250.0f; /* ties included */
    }
    float sorted[1000];
    memcpy(sorted, big, sizeof sorted);
    for (int i = 0; i < 37; i++) { /* partial selection sort for the reference set */
        int best = i;
        for (int k = i + 1; k < 1000; k++)
            if (sorted[k] > sorted[best]) best = k;
        float t = sorted[i];
        sorted[i] = sorted[best];
        sorted[best] = t;
    }
    float thresh = sorted[36];
    int n_above = 0;
    for (int i = 0; i < 1000; i++) n_above += big[i] > thresh;
    sp = (el_sampler_params){1.0f, 37, 1.0f, 3};
    el_sampler_init(&s, 1000, cand, &sp);
    histogram(&s, big, 1000, f);
    int outside = 0, seen_above = 0, count = 0;
    for (int i = 0; i < 1000; i++) {
        if (f[i] > 0) count++;
        if (f[i] > 0 && big[i] < thresh) outside++;
        if (big[i] > thresh && f[i] > 0) seen_above++;
    }
    EL_CHECK(outside == 0);
    EL_CHECK(count == 37);
    EL_CHECK(seen_above == n_above);
    return el_test_finish("test_llama_sampler");
}
