/* cmd_chat.c - `edgeload chat`: a conversation with an instruct model through its own chat
 * template (models/chat.c). On a terminal it is interactive (a line is a user turn; /reset
 * starts over, /exit or end of input ends); otherwise stdin holds one conversation as JSON
 * (an array of messages, or {"messages": [...]}) and the reply goes to stdout. Each turn
 * renders the whole conversation with add_generation_prompt and generates from it without
 * an extra BOS (the template writes the special tokens itself), stopping at the model's
 * end-of-turn token. All buffers are allocated before the arena is reserved. */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char k_help[] =
    "usage: edgeload chat MODEL [--arena SIZE] [--ctx N] [-n N] [--temp T] [--top-k K]\n"
    "                     [--top-p P] [--seed S] [--threads N] [--system TEXT] [--json]\n"
    "Chats with an instruct model through its chat template (tokenizer_config.json,\n"
    "chat_template.jinja or GGUF tokenizer.chat_template). On a terminal: one line per turn,\n"
    "/reset to start over, /exit (or end of input) to quit. Otherwise stdin holds one\n"
    "conversation as JSON ([{\"role\": \"user\", \"content\": \"...\"}] or {\"messages\": [...]})\n"
    "and the assistant's reply goes to stdout (with --json: the rendered prompt, the reply,\n"
    "its ids and the stats as one object).\n"
    "  -n, --steps N      most tokens per reply (default 512); a reply ends at end of turn\n"
    "  --temp T           temperature; 0 = greedy (default 0.7)\n"
    "  --top-k K, --top-p P, --seed S, --threads N, --device D: as for generate\n"
    "  --system TEXT      a system message first (interactive mode)\n"
    "  --max-input N      bytes of the conversation on stdin, or of a line (default 16 per\n"
    "                     --ctx token, 4K to 1M); longer: exit 6 (a line is skipped)\n";

#define CHAT_CONV_MAX (1u << 20) /* bytes of conversation JSON */
#define CHAT_WORK (1u << 20)     /* template interpreter scratch */
#define CHAT_REPLY_MAX (1u << 16)

typedef struct chat_buf {
    char *conv;        /* [CHAT_CONV_MAX] the conversation as a JSON array */
    size_t conv_len;
    char *work;        /* [CHAT_WORK] */
    char *prompt;      /* [CHAT_CONV_MAX + 64 KiB] the rendered prompt */
    char *reply;       /* [CHAT_REPLY_MAX] */
    size_t reply_len;
    int32_t *ids;      /* [n] reply ids (--json) */
    size_t n_ids, ids_cap;
    bool echo;         /* stream the reply to stdout */
} chat_buf;

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    chat_buf *b = user;
    if (b->n_ids < b->ids_cap) b->ids[b->n_ids] = id;
    b->n_ids++;
    if (b->reply_len + len < CHAT_REPLY_MAX) {
        memcpy(b->reply + b->reply_len, piece, len);
        b->reply_len += len;
    }
    if (!b->echo) return true;
    fwrite(piece, 1, len, stdout);
    return el_cli_stdout_flush();
}

/* Appends {"role": role, "content": text} to the conversation array (kept closed: "[...]"). */
static bool conv_add(chat_buf *b, const char *role, const char *text, size_t len) {
    size_t need = b->conv_len + strlen(role) + 6 * len + 40;
    if (need >= CHAT_CONV_MAX) return false;
    char *p = b->conv + (b->conv_len ? b->conv_len - 1 : 0); /* over the closing ']' */
    if (!b->conv_len) *p++ = '[';
    else *p++ = ',';
    p += sprintf(p, "{\"role\":\"%s\",\"content\":\"", role);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20) {
            p += sprintf(p, "\\u%04x", c);
        } else {
            *p++ = (char)c;
        }
    }
    p += sprintf(p, "\"}]");
    b->conv_len = (size_t)(p - b->conv);
    return true;
}

/* Renders the conversation and generates the assistant's reply into b->reply. */
static el_status chat_turn(el_session *s, const el_model *m, chat_buf *b, uint32_t steps,
                           const el_sampler_params *sp, el_gen_stats *gs) {
    size_t n = 0;
    el_status st = el_chat_format(m, b->conv, b->conv_len, true, b->work, CHAT_WORK, b->prompt,
                                  CHAT_CONV_MAX + (64u << 10), &n);
    if (st != EL_OK) return st;
    b->reply_len = 0;
    b->n_ids = 0;
    return el_generate(s, b->prompt, steps, sp, on_token, b, gs);
}

/* One conversation from stdin (JSON) -> the reply. */
static int chat_once(el_session *s, const el_model *m, chat_buf *b, el_cli_input *in,
                     uint32_t steps, const el_sampler_params *sp, bool json) {
    size_t len = 0;
    int r = el_cli_input_all(in, &len);
    if (r < 0) {
        fprintf(stderr, "edgeload: error: reading stdin: %s\n", strerror(in->err));
        return el_status_exit_code(EL_E_IO);
    }
    if (r == 2) return el_cli_input_check(in->max, in->ctx, "the conversation on stdin", len);
    cJSON *root = cJSON_ParseWithLength(in->text[0], len);
    const cJSON *msgs = cJSON_IsObject(root) ? cJSON_GetObjectItem(root, "messages") : root;
    char *text = cJSON_IsArray(msgs) ? cJSON_PrintUnformatted(msgs) : NULL;
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "edgeload: error: stdin: expected a JSON array of messages or an object "
                "with \"messages\"\n");
        return 2;
    }
    b->conv_len = strlen(text);
    int rc = 0;
    if (b->conv_len >= CHAT_CONV_MAX) {
        fprintf(stderr, "edgeload: error: the conversation is over %u bytes\n", CHAT_CONV_MAX);
        rc = 2;
    } else {
        memcpy(b->conv, text, b->conv_len + 1);
    }
    free(text);
    if (rc) return rc;
    el_gen_stats gs;
    b->echo = !json;
    el_status st = chat_turn(s, m, b, steps, sp, &gs);
    if (st != EL_OK) return el_cli_fail(st);
    if (!json) {
        fputc('\n', stdout);
        return el_cli_stdout_flush() ? 0 : 4;
    }
    printf("{\"prompt\":");
    el_cli_json_string(stdout, b->prompt);
    printf(",\"reply\":");
    b->reply[b->reply_len] = 0;
    el_cli_json_string(stdout, b->reply);
    printf(",\"ids\":[");
    for (size_t i = 0; i < b->n_ids && i < b->ids_cap; i++)
        printf("%s%d", i ? "," : "", b->ids[i]);
    printf("],\"prompt_tokens\":%u,\"generated_tokens\":%u,\"stopped_at_end_of_turn\":%s,"
           "\"gen_tok_per_s\":%.1f}\n", gs.prompt_tokens, gs.generated_tokens,
           gs.stopped_at_eos ? "true" : "false", gs.gen_tok_per_s);
    return el_cli_stdout_flush() ? 0 : 4;
}

static int chat_tty(el_session *s, const el_model *m, chat_buf *b, el_cli_input *in,
                    uint32_t steps, const el_sampler_params *sp, const char *system) {
    int rc = 0;
    b->conv_len = 0;
    if (system) conv_add(b, "system", system, strlen(system));
    size_t base = b->conv_len;
    fprintf(stderr, "edgeload chat: a line per turn, /reset to start over, /exit to quit\n");
    for (;;) {
        fprintf(stderr, "> ");
        size_t len = 0;
        int r = el_cli_input_line(in, 0, &len);
        if (r <= 0) break;
        if (r == 2) { /* skipped to its end: the conversation goes on */
            el_cli_input_check(in->max, in->ctx, "the line", len);
            continue;
        }
        const char *line = in->text[0];
        if (!strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            b->conv_len = base;
            continue;
        }
        size_t before = b->conv_len;
        if (!conv_add(b, "user", line, len)) {
            fprintf(stderr, "edgeload: the conversation is full (%u bytes): /reset\n",
                    CHAT_CONV_MAX);
            continue;
        }
        el_gen_stats gs;
        b->echo = true;
        el_status st = chat_turn(s, m, b, steps, sp, &gs);
        fputc('\n', stdout);
        if (!el_cli_stdout_flush()) {
            rc = 4;
            break;
        }
        if (st != EL_OK) {
            fprintf(stderr, "edgeload: %s (/reset starts over)\n", el_last_error());
            b->conv_len = before;
            if (st == EL_E_NODEV) {
                rc = 5;
                break;
            }
            continue;
        }
        if (!conv_add(b, "assistant", b->reply, b->reply_len)) b->conv_len = before;
    }
    return rc;
}

int el_cmd_chat(int argc, char **argv) {
    el_cli_opts o;
    el_cli_opts_init(&o);
    const char *system = NULL;
    el_cli_gen gp = {512, 0.7, 0, 0.9, -1, 0};
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
        if (rc < 0 && !strcmp(a, "--system")) {
            if (!v) return el_cli_usage("%s needs a value", a);
            system = v;
            rc = 0;
        } else if (rc < 0 && a[0] == '-' && a[1]) {
            return el_cli_usage("chat: unknown option %s", a);
        } else if (rc < 0) {
            if (o.model) return el_cli_usage("chat: one MODEL only (got %s and %s)", o.model, a);
            o.model = a;
            continue;
        }
        if (rc) return rc;
        i++;
    }
    if (!o.model) return el_cli_usage("chat MODEL: missing MODEL");
    if (gp.steps < 1) return el_cli_usage("chat: -n must be at least 1");
    o.runs = true;
    el_sampler_params sp;
    if (el_cli_gen_finish(&gp, &sp)) return 1;
    const double steps = gp.steps, threads = gp.threads;

    chat_buf b;
    memset(&b, 0, sizeof b);
    b.ids_cap = (size_t)steps;
    b.conv = malloc(CHAT_CONV_MAX);
    b.work = malloc(CHAT_WORK);
    b.prompt = malloc(CHAT_CONV_MAX + (64u << 10));
    b.reply = malloc(CHAT_REPLY_MAX);
    b.ids = malloc(b.ids_cap * sizeof *b.ids);
    el_cli_loaded L;
    int rc = 3;
    if (!b.conv || !b.work || !b.prompt || !b.reply || !b.ids) {
        fprintf(stderr, "edgeload: error: out of memory\n");
        goto out;
    }
    if ((rc = el_cli_load(&o, &L)) != 0) goto out;
    el_session *s = NULL;
    el_session_params ps = {threads > 0 ? (unsigned)threads : L.board_threads, L.device, 0,
                            L.no_cuda_graph};
    el_status st = EL_OK;
    if (!el_model_has_chat_template(L.model)) {
        fprintf(stderr, "edgeload: error: %s: the model has no chat template "
                "(tokenizer_config.json chat_template, chat_template.jinja or GGUF "
                "tokenizer.chat_template): use generate\n", o.model);
        rc = 2;
    } else if ((st = el_session_init(L.model, L.arena, &L.plan, &ps, &s)) != EL_OK ||
               (st = el_session_set_numerics(s, o.numerics)) != EL_OK) {
        if (s) el_session_deinit(s), s = NULL;
        rc = el_cli_fail(st);
    } else {
        el_session_set_prompt_bos(s, false);
        /* The conversation (or a line) in the input buffer the plan put in scratch, at most
         * what the conversation buffers take. */
        el_cli_input in;
        if ((rc = el_cli_input_init(&L, 1, STDIN_FILENO, &in)) == 0) {
            if (in.max > CHAT_CONV_MAX - 1) in.max = CHAT_CONV_MAX - 1;
            rc = isatty(STDIN_FILENO)
                ? chat_tty(s, L.model, &b, &in, (uint32_t)steps, &sp, system)
                : chat_once(s, L.model, &b, &in, (uint32_t)steps, &sp, o.json);
        }
    }
    el_session_deinit(s);
    el_cli_unload(&L);
out:
    free(b.conv);
    free(b.work);
    free(b.prompt);
    free(b.reply);
    free(b.ids);
    return rc;
}
