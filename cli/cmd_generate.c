/* cmd_generate.c - `edgeload generate`: load a model into its arena, start a session and
 * stream generated text to stdout token by token; the speed and memory report goes to
 * stderr (or everything as one JSON object with --json). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char k_help[] =
    "usage: edgeload generate MODEL [--tokenizer FILE] [--arena SIZE] [-p PROMPT] [-n N]\n"
    "                         [--temp T] [--top-k K] [--top-p P] [--seed S] [--ctx N]\n"
    "                         [--threads N] [--device cpu|cuda|auto] [--json]\n"
    "Generates text after PROMPT, streaming it to stdout; the report goes to stderr.\n"
    "  -p, --prompt TEXT  the prompt (default: empty, start from BOS); longer than\n"
    "                     --max-input bytes: exit 6\n"
    "  -n, --steps N      tokens to generate (default 256); stops early at end of text\n"
    "  --temp T           temperature; 0 = greedy (default 1.0)\n"
    "  --top-k K          sample from the K most likely tokens (default 0 = all)\n"
    "  --top-p P          nucleus sampling threshold (default 0.9; 1 = off)\n"
    "  --seed S           random seed (default: from the clock; printed in the report)\n"
    "  --threads N        CPU threads (default: all online CPUs)\n"
    "  --device D         auto, cpu or cuda (default auto: the CPU until CUDA can run here)\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes len bytes as a JSON string; bytes that are not valid UTF-8 become U+FFFD. */
static void json_bytes(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            i++;
        } else if (c < 0x20) {
            if (c == '\n')
                fputs("\\n", f);
            else if (c == '\t')
                fputs("\\t", f);
            else
                fprintf(f, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            i++;
        } else {
            size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
            bool ok = n > 0 && len - i >= n;
            unsigned cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
            for (size_t k = 1; ok && k < n; k++) {
                ok = (p[i + k] & 0xc0) == 0x80;
                cp = cp << 6 | (p[i + k] & 0x3f);
            }
            ok = ok && !(n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
                 !(n == 4 && (cp < 0x10000 || cp > 0x10ffff));
            if (ok) {
                fwrite(p + i, 1, n, f);
                i += n;
            } else {
                fputs("\\ufffd", f);
                i++;
            }
        }
    }
    fputc('"', f);
}

typedef struct gen_out {
    bool json;
    const char *prompt; /* echoed before the first token (text mode), so errors print none */
    double t_first;  /* now_s() at the first token */
    int32_t *ids;    /* [cap] generated ids (JSON) */
    size_t n, cap;
    char *text;      /* generated text (JSON) */
    size_t len, text_cap;
    bool oom;
} gen_out;

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    gen_out *g = user;
    if (g->n == 0) g->t_first = now_s();
    if (!g->json) {
        if (g->n == 0) fputs(g->prompt, stdout);
        fwrite(piece, 1, len, stdout);
        g->n++;
        /* A failed write (full disk, closed pipe) stops the generation; main exits 4. */
        return el_cli_stdout_flush();
    }
    if (g->n < g->cap) g->ids[g->n] = id;
    g->n++;
    if (g->len + len > g->text_cap) {
        size_t cap = (g->len + len) * 2 + 64;
        char *t = realloc(g->text, cap);
        if (!t) {
            g->oom = true;
            return false;
        }
        g->text = t;
        g->text_cap = cap;
    }
    memcpy(g->text + g->len, piece, len);
    g->len += len;
    return true;
}


int el_cmd_generate(int argc, char **argv) {
    el_cli_opts o;
    el_cli_opts_init(&o);
    const char *prompt = "";
    el_cli_gen gp = {256, 1.0, 0, 0.9, -1, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            el_cli_common_help(stdout);
            return 0;
        }
        int r = el_cli_parse_common(argc, argv, &i, &o);
        if (r < 0) return 1;
        if (r > 0) continue;
        int rc = el_cli_parse_gen(a, v, &gp);
        if (rc < 0 && (!strcmp(a, "-p") || !strcmp(a, "--prompt"))) {
            if (!v) return el_cli_usage("%s needs a value", a);
            prompt = v;
            rc = 0;
        } else if (rc < 0 && a[0] == '-' && a[1]) {
            return el_cli_usage("generate: unknown option %s", a);
        } else if (rc < 0) {
            if (o.model)
                return el_cli_usage("generate: one MODEL only (got %s and %s)", o.model, a);
            o.model = a;
            continue;
        }
        if (rc) return rc;
        i++; /* consumed the value */
    }
    if (!o.model) return el_cli_usage("generate MODEL: missing MODEL");
    o.runs = true;
    el_sampler_params sp;
    if (el_cli_gen_finish(&gp, &sp)) return 1;
    const double steps = gp.steps, threads = gp.threads;

    el_cli_loaded L;
    int rc = el_cli_load(&o, &L);
    if (rc) return rc;
    if ((rc = el_cli_input_check(L.plan.max_input, L.plan.params.ctx, "the prompt",
                                 strlen(prompt))) != 0) {
        el_cli_unload(&L);
        return rc;
    }
    el_session_params ps = {threads > 0 ? (unsigned)threads : L.board_threads, L.device, 0,
                            L.no_cuda_graph};
    el_session *s = NULL;
    el_status st = el_session_init(L.model, L.arena, &L.plan, &ps, &s);
    if (st == EL_OK && (st = el_session_set_numerics(s, o.numerics)) != EL_OK)
        el_session_deinit(s), s = NULL;
    if (st != EL_OK) {
        rc = el_cli_fail(st);
        el_cli_unload(&L);
        return rc;
    }
    gen_out g;
    memset(&g, 0, sizeof g);
    g.json = o.json;
    int32_t *prompt_ids = NULL;
    size_t n_prompt = 0;
    if (o.json) {
        /* The prompt's ids for the report; room as in cmd_tokenize.c (3 per byte + 8). */
        size_t cap = 3 * strlen(prompt) + 8;
        prompt_ids = malloc(cap * sizeof *prompt_ids);
        g.cap = (size_t)steps;
        g.ids = malloc((g.cap ? g.cap : 1) * sizeof *g.ids);
        if (!prompt_ids || !g.ids) {
            fprintf(stderr, "edgeload: error: out of memory\n");
            rc = 3;
            goto done;
        }
        st = el_tokenize(L.model, prompt, strlen(prompt), true, prompt_ids, cap, &n_prompt);
        if (st != EL_OK) {
            rc = el_cli_fail(st);
            goto done;
        }
    }
    g.prompt = prompt;
    el_gen_stats gs;
    st = el_generate(s, prompt, (uint32_t)steps, &sp, on_token, &g, &gs);
    if (!o.json && st == EL_OK) {
        if (gs.generated_tokens == 0) fputs(prompt, stdout);
        fputc('\n', stdout);
    } else if (!o.json && gs.generated_tokens > 0) {
        fputc('\n', stdout);
    }
    el_cli_stdout_flush();
    if (st != EL_OK) {
        rc = el_cli_fail(st);
        goto done;
    }
    if (g.oom) {
        fprintf(stderr, "edgeload: error: out of memory collecting the text\n");
        rc = 3;
        goto done;
    }
    double ttft = gs.generated_tokens ? g.t_first - L.t_start : 0;
    if (o.json) {
        printf("{\"prompt\":");
        json_bytes(stdout, prompt, strlen(prompt));
        printf(",\"prompt_ids\":[");
        for (size_t i = 0; i < n_prompt; i++) printf("%s%d", i ? "," : "", prompt_ids[i]);
        printf("],\"text\":");
        json_bytes(stdout, g.text ? g.text : "", g.len);
        printf(",\"ids\":[");
        for (size_t i = 0; i < g.n && i < g.cap; i++) printf("%s%d", i ? "," : "", g.ids[i]);
        printf("],\"stats\":{\"prompt_tokens\":%u,\"generated_tokens\":%u,"
               "\"prompt_seconds\":%.6f,\"gen_seconds\":%.6f,\"prompt_tok_per_s\":%.1f,"
               "\"gen_tok_per_s\":%.1f,\"time_to_first_token_s\":%.6f,"
               "\"first_token_after_generate_s\":%.6f,\"stopped_at_eos\":%s,\"threads\":%u,"
               "\"seed\":%llu,\"temperature\":%g,\"top_k\":%u,\"top_p\":%g},\"memory\":",
               gs.prompt_tokens, gs.generated_tokens, gs.prompt_seconds, gs.gen_seconds,
               gs.prompt_tok_per_s, gs.gen_tok_per_s, ttft, gs.first_token_seconds,
               gs.stopped_at_eos ? "true" : "false", el_session_threads(s),
               (unsigned long long)sp.seed, sp.temperature, sp.top_k, sp.top_p);
        el_cli_memory_report(stdout, &L, true);
        printf("}\n");
    } else {
        fprintf(stderr, "\ngenerate   %u prompt tokens in %.2f ms (%.0f tok/s); %u generated "
                "in %.2f ms (%.0f tok/s)%s\n", gs.prompt_tokens, gs.prompt_seconds * 1e3,
                gs.prompt_tok_per_s, gs.generated_tokens, gs.gen_seconds * 1e3,
                gs.gen_tok_per_s, gs.stopped_at_eos ? ", stopped at end of text" : "");
        fprintf(stderr, "           time to first token %.2f ms from start (load included), "
                "%.2f ms after the prompt; %u thread(s), seed %llu\n", ttft * 1e3,
                gs.first_token_seconds * 1e3, el_session_threads(s),
                (unsigned long long)sp.seed);
        el_cli_memory_report(stderr, &L, false);
    }
    rc = 0;
done:
    free(prompt_ids);
    free(g.ids);
    free(g.text);
    el_session_deinit(s);
    el_cli_unload(&L);
    return rc;
}
