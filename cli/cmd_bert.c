/* cmd_bert.c - `edgeload embed` and `edgeload classify`: load an encoder (BERT) into its
 * arena, tokenize texts (arguments, or lines of stdin) into batches of --batch, run each batch
 * in one pass and print one vector, or one label with its probability, per text. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_STDIN_BATCH 8u
#define MAX_ARG_BATCH 32u

static const char k_help_embed[] =
    "usage: edgeload embed MODEL [--arena SIZE] [--pooling mean|cls] [--normalize] [--json]\n"
    "                      [--batch N] [--ctx N] [--threads N] [--no-truncate] [--ids] [TEXT...]\n"
    "Prints one embedding per TEXT, in order: space-separated floats on one line each (or one\n"
    "JSON object with --json). Without TEXT, embeds the lines of stdin (a trailing \\r is\n"
    "dropped), --batch lines per pass.\n"
    "  --pooling P     mean (default: average of the last hidden states over the text's tokens,\n"
    "                  [CLS] and [SEP] included, as sentence-transformers) or cls ([CLS] state)\n"
    "  --normalize     divide each vector by its L2 norm (cosine similarity = dot product)\n";

static const char k_help_classify[] =
    "usage: edgeload classify MODEL [--arena SIZE] [--json] [--batch N] [--ctx N] [--threads N]\n"
    "                         [--no-truncate] [--ids] [TEXT...]\n"
    "Classifies each TEXT (or each line of stdin) with the model's sequence classification head\n"
    "(BertForSequenceClassification: pooler + classifier): one line per text, the most likely\n"
    "label, its probability and the text, tab-separated; --json gives every label's logit and\n"
    "probability. Labels are named by config.json's id2label; without it LABEL_0, LABEL_1, ...\n"
    "(as transformers names them; a notice says so). Probabilities: softmax over the labels,\n"
    "or the sigmoid of a single-output head.\n";

static const char k_help_common[] =
    "  --batch N       texts per pass (default: the number of TEXT arguments up to 32, else 8);\n"
    "                  the arena is planned for N texts of --ctx tokens\n"
    "  --ctx N         tokens per text, [CLS] and [SEP] included (default and maximum:\n"
    "                  max_position_embeddings)\n"
    "  --no-truncate   a text longer than --ctx tokens is an error (exit 6); by default it is\n"
    "                  cut to --ctx tokens with a notice on stderr\n"
    "  --ids           TEXT and stdin lines are token ids (space-separated), not text\n"
    "  --threads N     CPU threads (default: all online CPUs)\n"
    "  --max-input N   bytes of one TEXT or line (default 16 per --ctx token, 4K to 1M): a\n"
    "                  longer one is refused (an empty output line, or {\"error\"} in --json),\n"
    "                  the next ones go on, and the exit code is 6; stdin is read in pieces\n"
    "Input: an empty TEXT or line is embedded as [CLS] [SEP] (as transformers does); no input\n"
    "at all (empty stdin) prints nothing (--json: an empty list) and exits 0. Text must be\n"
    "UTF-8: invalid bytes stop the command with exit 2, naming the text and byte (results of\n"
    "earlier batches have been printed). A report (texts, tokens, seconds, texts/s, load time,\n"
    "peak RSS) goes to stderr, or into the JSON object.\n"
    "Exit codes: 0 ok; 1 usage; 2 invalid input (bad model, invalid UTF-8, an id outside the\n"
    "vocabulary, no classification head for classify); 3 does not fit (the plan needs more\n"
    "than --arena: nothing was read; the message says what would fit); 4 I/O error (also\n"
    "writing stdout); 6 a text over --ctx with --no-truncate (or more ids than --ctx), or\n"
    "over --max-input.\n";

typedef struct bert_cli {
    el_cli_opts o;
    bool classify;
    el_pooling pooling;
    bool normalize, no_truncate, ids_mode;
    unsigned threads;
    char **texts;   /* TEXT arguments (NULL: stdin) */
    int n_texts;
} bert_cli;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints "edgeload: error: ..." and returns the exit code of s. */
static int cli_fail(el_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cli_fail(el_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("edgeload: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return el_status_exit_code(s);
}

/* Returns -1 when --help was printed (exit 0), 0 on success, or an exit code > 0. */
static int parse_args(int argc, char **argv, bert_cli *c) {
    el_cli_opts_init(&c->o);
    c->pooling = EL_POOLING_MEAN;
    static char *texts_store[4096];
    c->texts = NULL;
    bool only_texts = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!only_texts && a[0] == '-' && a[1]) {
            if (!strcmp(a, "--")) {
                only_texts = true;
                continue;
            }
            if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                fputs(c->classify ? k_help_classify : k_help_embed, stdout);
                fputs(k_help_common, stdout);
                fputs("common options:\n", stdout);
                el_cli_common_help(stdout);
                return -1;
            }
            int r = el_cli_parse_common(argc, argv, &i, &c->o);
            if (r < 0) return 1;
            if (r > 0) continue;
            if (!strcmp(a, "--normalize") && !c->classify) {
                c->normalize = true;
            } else if (!strcmp(a, "--pooling") && !c->classify) {
                if (!v) return el_cli_usage("--pooling needs mean or cls");
                if (el_pooling_parse(v, &c->pooling) != EL_OK)
                    return el_cli_usage("--pooling %s: expected mean or cls", v);
                i++;
            } else if (!strcmp(a, "--no-truncate")) {
                c->no_truncate = true;
            } else if (!strcmp(a, "--ids")) {
                c->ids_mode = true;
            } else if (!strcmp(a, "--threads")) {
                char *end;
                if (!v || !*v || *v == '-') return el_cli_usage("--threads needs a number");
                unsigned long t = strtoul(v, &end, 10);
                if (*end || t > 64) return el_cli_usage("--threads %s: expected 0 to 64", v);
                c->threads = (unsigned)t;
                i++;
            } else {
                return el_cli_usage("%s: unknown option %s", argv[0], a);
            }
            continue;
        }
        if (!c->o.model) {
            c->o.model = argv[i];
        } else {
            if ((size_t)c->n_texts >= sizeof texts_store / sizeof texts_store[0])
                return el_cli_usage("%s: at most 4096 TEXT arguments (use stdin for more)",
                                    argv[0]);
            texts_store[c->n_texts++] = argv[i];
            c->texts = texts_store;
        }
    }
    if (!c->o.model) return el_cli_usage("%s MODEL: missing MODEL", argv[0]);
    if (c->o.plan.batch == 0)
        c->o.plan.batch = c->n_texts ? (c->n_texts < (int)MAX_ARG_BATCH ? (uint32_t)c->n_texts
                                                                        : MAX_ARG_BATCH)
                                     : DEFAULT_STDIN_BATCH;
    return 0;
}

/* ---- input ------------------------------------------------------------------------------ */

/* The next text into slot of the input buffers: 1 with *text and *len; 0 at the end; -1
 * on a read error; 2 when it is longer than --max-input (*len its length; skipped). */
static int next_text(const bert_cli *c, el_cli_input *in, int *next_arg, uint32_t slot,
                     const char **text, size_t *len) {
    if (c->texts) {
        if (*next_arg >= c->n_texts) return 0;
        *text = c->texts[(*next_arg)++];
        *len = strlen(*text);
        return *len > in->max ? 2 : 1;
    }
    int r = el_cli_input_line(in, slot, len);
    *text = in->text[slot];
    return r;
}

/* Parses space-separated token ids into ids (cap); 0 or the exit code (message printed). */
static int parse_ids(const char *text, size_t len, size_t idx, int32_t *ids, size_t cap,
                           size_t *n) {
    size_t k = 0, i = 0;
    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == ',')) i++;
        if (i == len) break;
        char *end;
        errno = 0;
        long v = strtol(text + i, &end, 10);
        if (end == text + i || errno || v < 0 || v > INT32_MAX)
            return cli_fail(EL_E_INVALID, "text %zu: '%.20s' is not a token id (--ids)", idx,
                            text + i);
        if (k == cap)
            return cli_fail(EL_E_TOOLONG, "text %zu: more than %zu token ids (--ctx)", idx, cap);
        ids[k++] = (int32_t)v;
        i = (size_t)(end - text);
    }
    if (k == 0) return cli_fail(EL_E_INVALID, "text %zu: no token ids (--ids)", idx);
    *n = k;
    return 0;
}

/* ---- output ----------------------------------------------------------------------------- */

static void json_text(const char *s, size_t len) {
    /* The text was checked to be UTF-8 by the tokenizer (or holds ids). */
    fputc('"', stdout);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            fputc(ch, stdout);
    }
    fputc('"', stdout);
}

typedef struct batch_state {
    uint32_t n;              /* texts in the batch */
    const char **text;       /* [batch] */
    size_t *text_len;        /* [batch] */
    bool *truncated;         /* [batch] */
    uint32_t *lengths;       /* [batch] tokens */
    int32_t *ids, *types;    /* [batch, ctx] */
    float *out;              /* [batch, dim | labels] */
    float *probs;            /* [batch, labels] (classify) */
    size_t done;             /* texts printed so far */
    uint64_t tokens;         /* tokens run so far */
} batch_state;

static void print_batch(const bert_cli *c, const el_encoder *e, batch_state *b) {
    const uint32_t dim = el_encoder_dim(e), nl = el_encoder_labels(e);
    for (uint32_t i = 0; i < b->n; i++, b->done++) {
        if (c->o.json) {
            printf("%s\n    {\"index\":%zu,\"text\":", b->done ? "," : "", b->done);
            json_text(b->text[i], b->text_len[i]);
            printf(",\"tokens\":%u,\"truncated\":%s,", b->lengths[i],
                   b->truncated[i] ? "true" : "false");
        }
        if (!c->classify) {
            const float *v = b->out + (size_t)i * dim;
            if (c->o.json) fputs("\"embedding\":[", stdout);
            for (uint32_t k = 0; k < dim; k++)
                printf("%s%.8g", k ? (c->o.json ? "," : " ") : "", v[k]);
            fputs(c->o.json ? "]}" : "\n", stdout);
            continue;
        }
        const float *lg = b->out + (size_t)i * nl, *pr = b->probs + (size_t)i * nl;
        uint32_t best = 0;
        for (uint32_t k = 1; k < nl; k++)
            if (pr[k] > pr[best]) best = k;
        if (c->o.json) {
            fputs("\"label\":", stdout);
            json_text(el_encoder_label(e, best), strlen(el_encoder_label(e, best)));
            printf(",\"probability\":%.8g,\"labels\":[", pr[best]);
            for (uint32_t k = 0; k < nl; k++) {
                printf("%s{\"label\":", k ? "," : "");
                json_text(el_encoder_label(e, k), strlen(el_encoder_label(e, k)));
                printf(",\"logit\":%.8g,\"probability\":%.8g}", lg[k], pr[k]);
            }
            fputs("]}", stdout);
        } else {
            printf("%s\t%.6f\t%.*s\n", el_encoder_label(e, best), pr[best], (int)b->text_len[i],
                   b->text[i]);
        }
    }
    el_cli_stdout_flush();
}

/* ---- the command -------------------------------------------------------------------------- */

static int run_batch(const bert_cli *c, el_encoder *e, batch_state *b, uint32_t seq) {
    const uint32_t dim = el_encoder_dim(e), nl = el_encoder_labels(e);
    el_status s = c->classify
        ? el_classify(e, b->ids, b->types, b->lengths, b->n, seq, b->out, b->probs,
                      (size_t)b->n * nl)
        : el_embed(e, b->ids, b->types, b->lengths, b->n, seq, c->pooling, c->normalize,
                   b->out, (size_t)b->n * dim);
    if (s != EL_OK) {
        char why[700];
        snprintf(why, sizeof why, "%s", el_last_error());
        return cli_fail(s, "texts %zu..%zu (sequences 0..%u of the batch): %s", b->done,
                        b->done + b->n - 1, b->n - 1, why);
    }
    for (uint32_t i = 0; i < b->n; i++) b->tokens += b->lengths[i];
    print_batch(c, e, b);
    b->n = 0;
    return 0;
}

/* Tokenizes text number idx into row slot of the batch. */
static int add_text(const bert_cli *c, const el_encoder *e, batch_state *b, uint32_t seq,
                    size_t idx, const char *text, size_t len) {
    const uint32_t slot = b->n;
    int32_t *ids = b->ids + (size_t)slot * seq, *types = b->types + (size_t)slot * seq;
    size_t n = 0;
    bool cut = false;
    if (c->ids_mode) {
        int rc = parse_ids(text, len, idx, ids, seq, &n);
        if (rc) return rc;
        memset(types, 0, seq * sizeof *types);
    } else {
        el_status s = el_encoder_tokenize(e, text, len, NULL, 0, seq, ids, types, seq, &n, &cut);
        if (s != EL_OK) return cli_fail(s, "text %zu: %s", idx, el_last_error());
    }
    if (cut && c->no_truncate)
        return cli_fail(EL_E_TOOLONG, "text %zu is longer than %u tokens (--ctx): shorten it, "
                        "or drop --no-truncate to cut it", idx, seq);
    if (cut)
        fprintf(stderr, "edgeload: notice: text %zu is longer than %u tokens: cut to its first "
                "%u (--ctx; --no-truncate makes this an error)\n", idx, seq, seq);
    b->text[slot] = text;
    b->text_len[slot] = len;
    b->truncated[slot] = cut;
    b->lengths[slot] = (uint32_t)n;
    b->n++;
    return 0;
}

static int bert_main(int argc, char **argv, bool classify) {
    bert_cli c;
    memset(&c, 0, sizeof c);
    c.classify = classify;
    int rc = parse_args(argc, argv, &c);
    if (rc) return rc < 0 ? 0 : rc;

    c.o.runs = true;
    el_cli_loaded L;
    if ((rc = el_cli_load(&c.o, &L)) != 0) return rc;
    double t_loaded = now_s();
    el_encoder *e = NULL;
    el_encoder_params ep = {c.threads, L.device};
    el_status s = el_encoder_init(L.model, L.arena, &L.plan, &ep, &e);
    if (s != EL_OK) {
        rc = el_cli_fail(s);
        el_cli_unload(&L);
        return rc;
    }
    const uint32_t batch = el_encoder_max_batch(e), seq = el_encoder_max_seq(e);
    const uint32_t dim = el_encoder_dim(e), nl = el_encoder_labels(e);
    if (classify && nl == 0) {
        rc = cli_fail(EL_E_UNSUPPORTED, "%s has no sequence classification head "
                      "(classifier.weight over a pooler): use `edgeload embed`", c.o.model);
        goto out;
    }
    if (classify && !el_encoder_labels_named(e))
        fprintf(stderr, "edgeload: notice: config.json has no id2label for the %u outputs of the "
                "classifier: they are named LABEL_0 .. LABEL_%u (as transformers names them)\n",
                nl, nl - 1);

    /* Every buffer the loop needs, before it starts. */
    batch_state b;
    memset(&b, 0, sizeof b);
    el_cli_input in;
    if ((rc = el_cli_input_init(&L, batch, 0, &in)) != 0) goto out;
    int next_arg = 0, refused = 0;
    size_t outw = classify ? nl : dim;
    b.text = calloc(batch, sizeof *b.text);
    b.text_len = calloc(batch, sizeof *b.text_len);
    b.truncated = calloc(batch, sizeof *b.truncated);
    b.lengths = calloc(batch, sizeof *b.lengths);
    b.ids = calloc((size_t)batch * seq, sizeof *b.ids);
    b.types = calloc((size_t)batch * seq, sizeof *b.types);
    b.out = calloc((size_t)batch * outw, sizeof *b.out);
    b.probs = calloc((size_t)batch * (nl ? nl : 1), sizeof *b.probs);
    if (!b.text || !b.text_len || !b.truncated || !b.lengths || !b.ids || !b.types || !b.out ||
        !b.probs) {
        rc = cli_fail(EL_E_NOMEM, "cannot allocate the input buffers");
        goto out_free;
    }

    if (c.o.json) {
        printf("{\"model\":");
        json_text(c.o.model, strlen(c.o.model));
        if (classify)
            printf(",\"labels\":%u,\"labels_named\":%s,\"results\":[", nl,
                   el_encoder_labels_named(e) ? "true" : "false");
        else
            printf(",\"dim\":%u,\"pooling\":\"%s\",\"normalized\":%s,\"embeddings\":[", dim,
                   c.pooling == EL_POOLING_CLS ? "cls" : "mean", c.normalize ? "true" : "false");
    }
    double t0 = now_s();
    size_t idx = 0;
    const char *text;
    size_t len;
    int got;
    while ((got = next_text(&c, &in, &next_arg, b.n, &text, &len)) > 0) {
        if (got == 2) {
            /* Refused: the texts before it are printed first, then its place in the output
             * (an empty line, or an error object), and the input goes on. */
            char what[48];
            snprintf(what, sizeof what, "text %zu", idx++);
            refused = el_cli_input_check(in.max, seq, what, len);
            if (b.n && (rc = run_batch(&c, e, &b, seq)) != 0) goto out_free;
            if (c.o.json)
                printf("%s\n    {\"index\":%zu,\"bytes\":%zu,\"error\":\"longer than --max-input "
                       "(%llu bytes)\"}", b.done ? "," : "", b.done, len,
                       (unsigned long long)in.max);
            else
                fputc('\n', stdout);
            b.done++;
            continue;
        }
        if ((rc = add_text(&c, e, &b, seq, idx++, text, len)) != 0) goto out_free;
        if (b.n == batch && (rc = run_batch(&c, e, &b, seq)) != 0) goto out_free;
    }
    if (b.n && (rc = run_batch(&c, e, &b, seq)) != 0) goto out_free;
    if (got < 0) {
        rc = cli_fail(EL_E_IO, "reading stdin: %s", strerror(in.err));
        goto out_free;
    }
    double secs = now_s() - t0;
    double load_s = t_loaded - L.t_start;
    el_mem_report mr = {0, 0, 0};
    el_mem_report_get(&mr);
    double rate = secs > 0 ? (double)b.done / secs : 0;
    if (c.o.json) {
        printf("%s],\"texts\":%zu,\"tokens\":%llu,\"seconds\":%.6f,\"texts_per_s\":%.3f,"
               "\"load_seconds\":%.6f,\"batch\":%u,\"ctx\":%u,\"threads\":%u,\"memory\":",
               b.done ? "\n  " : "", b.done, (unsigned long long)b.tokens, secs, rate, load_s,
               batch, seq, el_encoder_threads(e));
        el_cli_memory_report(stdout, &L, true);
        printf("}\n");
    } else {
        char a[32];
        fprintf(stderr, "edgeload: %zu texts, %llu tokens in %.3f s (%.1f texts/s; batch %u, "
                "ctx %u, %u threads); load %.3f s; peak RSS %s\n", b.done,
                (unsigned long long)b.tokens, secs, rate, batch, seq, el_encoder_threads(e),
                load_s, el_size_format(mr.vm_hwm, a, sizeof a));
    }
    rc = refused;
out_free:
    free(b.text);
    free(b.text_len);
    free(b.truncated);
    free(b.lengths);
    free(b.ids);
    free(b.types);
    free(b.out);
    free(b.probs);
out:
    el_encoder_deinit(e);
    el_cli_unload(&L);
    return rc;
}

int el_cmd_embed(int argc, char **argv) { return bert_main(argc, argv, false); }
int el_cmd_classify(int argc, char **argv) { return bert_main(argc, argv, true); }
