/* cmd_tokenize.c - `edgeload tokenize MODEL TEXT`: the model's tokenizer on TEXT, ids on one
 * line, space-separated (BOS first unless --no-bos). Opens headers only: no arena, no load. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: edgeload tokenize MODEL [--tokenizer FILE] [--no-bos] [--json] [--max-input N] TEXT\n"
    "Prints the token ids of TEXT on one line, space-separated (BOS first unless --no-bos).\n"
    "With --json: {\"ids\": [...], \"count\": N}. A TEXT over --max-input (default 16 bytes\n"
    "per token of the model's context) is refused with exit 6.\n";

int el_cmd_tokenize(int argc, char **argv) {
    el_cli_opts o;
    el_cli_opts_init(&o);
    const char *text = NULL;
    bool bos = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return 0;
        }
        int r = el_cli_parse_common(argc, argv, &i, &o);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "--no-bos")) {
            bos = false;
        } else if (!strcmp(a, "--")) { /* what follows is TEXT, even if it starts with '-' */
            if (i + 1 < argc && !text && o.model) text = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return el_cli_usage("tokenize: unknown option %s", a);
        } else if (!o.model) {
            o.model = a;
        } else if (!text) {
            text = a;
        } else {
            return el_cli_usage("tokenize: one TEXT only (quote it)");
        }
    }
    if (!o.model || !text)
        return el_cli_usage("tokenize MODEL TEXT: missing %s", o.model ? "TEXT" : "MODEL");
    el_model *m = NULL;
    el_model_open_params op = {.tokenizer_path = o.tokenizer, .offset = o.offset};
    el_status st = el_cli_resolve_offset(o.model, &op.offset);
    if (st == EL_OK) st = el_model_open(o.model, &op, &m);
    if (st != EL_OK) return el_cli_fail(st);
    /* The input bound a run of this model would have (a plan reads no weight). */
    el_plan plan;
    if (el_plan_make(m, &o.plan, &plan) == EL_OK &&
        el_plan_input(m, o.max_input, &plan) == EL_OK && plan.input_bytes) {
        int rc = el_cli_input_check(plan.max_input, plan.params.ctx, "TEXT", strlen(text));
        if (rc) {
            el_model_close(m);
            return rc;
        }
    }
    /* The encoder's working space: a byte-fallback tokenizer whose pre-tokenizer turns a
     * space into U+2581 (3 bytes) can give up to 3 ids per input byte, plus BOS/prefix. */
    size_t len = strlen(text), cap = 3 * len + 8, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        el_model_close(m);
        fprintf(stderr, "edgeload: error: out of memory\n");
        return 3;
    }
    st = el_tokenize(m, text, len, bos, ids, cap, &n);
    int rc = 0;
    if (st != EL_OK) {
        rc = el_cli_fail(st);
    } else if (o.json) {
        printf("{\"ids\":[");
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
        printf("],\"count\":%zu}\n", n);
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
    el_model_close(m);
    return rc;
}
