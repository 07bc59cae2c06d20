/* chat_template.h - a sandboxed Jinja-subset interpreter for model chat templates
 * (internal): renders tokenizer_config.json `chat_template` or GGUF `tokenizer.chat_template`
 * for a conversation exactly as transformers' apply_chat_template(tokenize=False) does
 * (jinja2 ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its
 * tojson / raise_exception / strftime_now / namespace). docs/CHAT.md lists the subset.
 *
 * Memory: everything (source copy, syntax tree, values, strings) lives in the caller's work
 * buffer, used as a bump arena; nothing is allocated with malloc and nothing outlives the
 * call; there is no global state, so renders may run in parallel with their own buffers.
 * A template from a hostile model file can only fail: output is bounded by out_cap, memory
 * by work_cap, loop iterations and evaluation steps by the limits below, nesting by
 * EL_CHAT_NEST_MAX and EL_CHAT_DEPTH_MAX (so the C stack by < 256 KiB); attribute access
 * reaches only the data given (message dicts, tools, variables) and the documented string,
 * dict and list methods. */
#ifndef EL_CHAT_TEMPLATE_H
#define EL_CHAT_TEMPLATE_H

#include "edgeload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_CHAT_DEPTH_MAX 64              /* value nesting (print, compare, tojson), JSON depth */
#define EL_CHAT_NEST_MAX 64               /* blocks and expressions nested in the template (the real
                                           * templates reach 14); bounds the C stack: < 256 KiB */
#define EL_CHAT_ITERS_DEFAULT 1000000u    /* loop iterations per render, all loops together */
#define EL_CHAT_STEPS_DEFAULT 20000000u   /* expression evaluations per render */
#define EL_CHAT_RANGE_MAX 100000          /* range() size, as jinja2's sandbox MAX_RANGE */
#define EL_CHAT_WORK_MIN (64u * 1024u)    /* below this el_chat_render refuses the buffer */

/* One message: role and content are UTF-8 with their lengths (need not be NUL-terminated).
 * content NULL: the message has no content key (transformers drops keys whose value is None). */
typedef struct el_chat_msg {
    const char *role;
    size_t role_len;
    const char *content;
    size_t content_len;
} el_chat_msg;

/* An extra template variable: name (NUL-terminated) = a JSON value (json_len bytes), e.g.
 * {"date_string", "\"26 Jul 2024\""} or {"enable_thinking", "false"}. */
typedef struct el_chat_var {
    const char *name;
    const char *json;
    size_t json_len;
} el_chat_var;

typedef struct el_chat_opts {
    bool add_generation_prompt;
    const char *bos_token;   /* NUL-terminated; NULL: bos_token is undefined in the template */
    const char *eos_token;   /* likewise */
    const char *tools_json;  /* a JSON array of tool schemas; NULL: tools is none */
    size_t tools_json_len;
    const el_chat_var *vars; /* n_vars extra variables (they override the ones above) */
    size_t n_vars;
    int64_t now;             /* strftime_now's clock, seconds since the epoch, local time;
                              * 0: time(NULL) */
    uint32_t max_iters;      /* 0: EL_CHAT_ITERS_DEFAULT */
    uint32_t max_steps;      /* 0: EL_CHAT_STEPS_DEFAULT */
    size_t *work_peak;       /* when not NULL: set to the most work memory in use at once
                              * (bytes, including the interpreter's own context), success or not */
} el_chat_opts;

/* Renders tmpl (tlen bytes of UTF-8) for msgs[0..n) into out (capacity out_cap, always
 * NUL-terminated on success; *out_len excludes the NUL). o may be NULL (all defaults).
 * work/work_cap: scratch memory (>= EL_CHAT_WORK_MIN; a few times the template plus the
 * conversation is typical; 1 MiB renders every template in tests/fixtures/chat).
 * Errors (el_last_error() says which, with line:col in the template where one applies):
 *   EL_E_UNSUPPORTED  syntax, a filter, test, tag or function outside the subset;
 *   EL_E_INVALID      the template raised (raise_exception: its message is quoted), a type
 *                     error, undefined variable use, a limit (loop iterations, steps, depth,
 *                     range size) or invalid UTF-8 in the template or the messages;
 *   EL_E_NOFIT        the output needs more than out_cap bytes, or the work memory ran out
 *                     (the message says which and how much was available);
 *   EL_E_USAGE        NULL pointers or work_cap < EL_CHAT_WORK_MIN. */
el_status el_chat_render(const char *tmpl, size_t tlen, const el_chat_msg *msgs, size_t n,
                         const el_chat_opts *o, void *work, size_t work_cap, char *out,
                         size_t out_cap, size_t *out_len);

/* The same with the conversation as a JSON array of message objects (messages_json,
 * mlen bytes), e.g. [{"role":"user","content":"hi"}]: every key of every message (tool_calls,
 * tool_call_id, content lists ...) is visible to the template, as in transformers. Parsed
 * into the work buffer (no malloc); EL_E_INVALID with the byte offset if it is not valid
 * JSON, nests deeper than EL_CHAT_DEPTH_MAX, or is not an array. */
el_status el_chat_render_json(const char *tmpl, size_t tlen, const char *messages_json,
                              size_t mlen, const el_chat_opts *o, void *work, size_t work_cap,
                              char *out, size_t out_cap, size_t *out_len);

/* Parses tmpl without rendering (model-open time check): EL_OK or the syntax error. */
el_status el_chat_check(const char *tmpl, size_t tlen, void *work, size_t work_cap);

/* ---- where a model keeps its template (tokenizer/chat_config.c; model-open time, malloc) ---- */

#define EL_CHAT_TEMPLATE_MAX (1u << 20) /* bytes of template we accept from a model */

/* A model's chat template and the special tokens its template reads. Strings are malloc'd,
 * NUL-terminated, owned by the struct (el_chat_config_free); NULL where absent. */
typedef struct el_chat_config {
    char *tmpl;          /* the "default" template */
    size_t tmpl_len;
    char *bos_token;     /* tokenizer_config.json bos_token (a string or {"content": ...}) */
    char *eos_token;
} el_chat_config;

/* From tokenizer_config.json text (json, len; fname for messages): chat_template as a string,
 * or as a list of {"name", "template"} (the one named "default", as transformers picks), and
 * bos_token / eos_token. A file without chat_template is EL_OK with tmpl NULL; a template
 * over EL_CHAT_TEMPLATE_MAX or of another type is EL_E_INVALID naming the field. On failure
 * *out is zeroed. */
el_status el_chat_config_parse(const char *json, size_t len, const char *fname, el_chat_config *out);
/* From a model's side files, each by its path (NULL: the model has not that file):
 * tokenizer_config.json and chat_template.jinja (when present it is the template: newer
 * transformers save it as that separate file). Neither: EL_OK with everything NULL. */
el_status el_chat_config_load(const char *config_json, const char *jinja, el_chat_config *out);
/* From a GGUF's metadata: tokenizer.chat_template and the texts of its BOS/EOS tokens
 * (fname for messages). No template: EL_OK with everything NULL. */
struct el_gguf;
el_status el_chat_config_gguf(const struct el_gguf *g, const char *fname, el_chat_config *out);
void el_chat_config_free(el_chat_config *c); /* NULL is fine; zeroes *c */

#endif /* EL_CHAT_TEMPLATE_H */
