/* cmd_serve.c - `edgeload serve`: load a model once, then answer JSON-line requests on
 * stdin/stdout, or on a Unix socket for up to --max-clients connections at once, until EOF
 * or a signal. The protocol, limits, timeouts and exit codes are in docs/SERVE.md.
 *
 * One thread, one poll() loop: it accepts, reads every client's bytes into that client's
 * fixed input buffer, expires clients (idle, a request line left unfinished, replies not
 * read), and answers one complete request line at a time, taking clients round-robin, so
 * a client waits at most one generation per other client with a request ready. Replies go
 * straight to the client's non-blocking socket; a client that stops reading is dropped
 * after --io-timeout. A stop signal cancels the generation at its next token.
 *
 * Memory: the client table (max_clients x one request line) is allocated and touched once,
 * before the model loads, and is the only per-client memory; the reply line and the
 * prompt-id check are static. The only heap use per request is cJSON's tree of the one
 * request line, bounded by EL_SERVE_LINE_MAX and freed before the next. Signals only set a
 * flag and write a byte to a pipe that poll() watches. */
#include "cli/cli.h"

#include "loader/safetensors.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EL_SERVE_LINE_MAX 65536u /* bytes of one request line, the newline not counted */
#define EL_SERVE_ID_MAX 128u     /* bytes of a string id */
#define EL_SERVE_OUT_CAP 16384u  /* one reply line: id (<= 6 x 128) + piece (<= 6 x 1024) */
#define EL_SERVE_CLIENTS_DEFAULT 64u
#define EL_SERVE_CLIENTS_MAX 1024u
#define EL_SERVE_PROMPT_PER_CTX 8u /* prompt bytes allowed per context token (tokenizing is
                                    * not cancellable: this bounds its time) */
#define EL_SERVE_STOP_GRACE_MS 500 /* after a stop signal: time left to flush a reply */

static const char k_help[] =
    "usage: edgeload serve MODEL [--arena SIZE] [--ctx N] [--threads N] [--socket PATH]\n"
    "                      [--board NAME] [--tokenizer FILE]\n"
    "Loads MODEL once, then answers one JSON request per line until EOF or SIGTERM/SIGINT:\n"
    "  {\"id\":1,\"prompt\":\"Once upon a time\",\"max_tokens\":32}   (optional: \"temperature\"\n"
    "  (default 0 = greedy), \"top_k\", \"top_p\", \"seed\"; {\"cmd\":\"stats\"} reports memory);\n"
    "  or \"messages\":[{\"role\":\"user\",\"content\":\"..\"}] instead of \"prompt\": rendered with\n"
    "  the model's chat template, ending at its end-of-turn token\n"
    "Replies, one JSON object per line: {\"id\":..,\"token\":\"..\",\"token_id\":N} per token, then\n"
    "{\"id\":..,\"done\":true,...} with timings, or {\"id\":..,\"error\":\"..\"}. See docs/SERVE.md.\n"
    "  --socket PATH      listen on a Unix socket instead of stdin/stdout\n"
    "  --max-clients N    connections served at once on the socket (default 64; one more\n"
    "                     is told \"busy\" and closed)\n"
    "  --io-timeout S     seconds a request line may stay unfinished, or a reply unread,\n"
    "                     before the client is dropped (default 10)\n"
    "  --idle-timeout S   seconds a connection may stay silent (default 300; 0 = never)\n"
    "  --threads N        CPU threads (default: the board's, else all online CPUs)\n"
    "A stop signal cancels the generation in hand at its next token (its final line says\n"
    "\"cancelled\":true) and exits 0.\n";

/* ---- stop flag: set by SIGTERM/SIGINT, seen by the loop and at every token ----------- */

static volatile sig_atomic_t g_stop;
static int g_wake[2] = {-1, -1}; /* self-pipe: the handler writes, poll() wakes */
static double g_stop_at;         /* now_ms() when the loop first saw g_stop */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static bool stopping(void) {
    if (g_stop && g_stop_at == 0) g_stop_at = now_ms();
    return g_stop != 0;
}

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    g_stop = 1;
    if (g_wake[1] >= 0) {
        ssize_t r = write(g_wake[1], "x", 1);
        (void)r; /* a full pipe already wakes the loop */
    }
    errno = saved;
}

static int install_signals(void) {
    if (pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll() returns EINTR; writes retry themselves */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return -1;
    signal(SIGPIPE, SIG_IGN); /* a client that goes away is an EPIPE, not a death */
    return 0;
}

/* ---- output: one reply line at a time in a fixed buffer, written with write(2) ------ */

typedef struct out_line {
    int fd;
    char buf[EL_SERVE_OUT_CAP];
    size_t n;
    bool failed; /* the reader went away (EPIPE) or the write failed */
    int err;     /* errno of that failure */
} out_line;

static void out_raw(out_line *o, const char *s, size_t n) {
    if (n > sizeof o->buf - 1 - o->n) n = sizeof o->buf - 1 - o->n; /* room for '\n' */
    memcpy(o->buf + o->n, s, n);
    o->n += n;
}

static void out_fmt(out_line *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(out_line *o, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (w > 0) out_raw(o, tmp, (size_t)w < sizeof tmp ? (size_t)w : sizeof tmp - 1);
}

/* s[0..n) as a JSON string; bytes that are not valid UTF-8 become U+FFFD. */
static void out_json_bytes(out_line *o, const char *s, size_t n) {
    out_raw(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            out_raw(o, e, 2);
            i++;
        } else if (c < 0x20) {
            if (c == '\n')
                out_raw(o, "\\n", 2);
            else if (c == '\t')
                out_raw(o, "\\t", 2);
            else
                out_fmt(o, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            out_raw(o, s + i, 1);
            i++;
        } else {
            size_t bad = el_utf8_check(s + i, n - i);
            if (bad == 0) {
                out_raw(o, "\\ufffd", 6);
                i++;
            } else {
                size_t k = el_utf8_len(s + i, n - i, 0);
                out_raw(o, s + i, k);
                i += k;
            }
        }
    }
    out_raw(o, "\"", 1);
}

/* Writes buf[0..n) whole to fd (blocking or not): waits for room up to timeout_ms without
 * progress, and no longer than EL_SERVE_STOP_GRACE_MS after a stop signal. 0, or the errno
 * of the failure (ETIMEDOUT: the reader stopped reading). */
static int write_full(int fd, const char *buf, size_t n, int timeout_ms) {
    size_t done = 0;
    double last = now_ms();
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            last = now_ms();
            continue;
        }
        if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno;
        if (w == 0) return EIO;
        double t = now_ms(), left = last + timeout_ms - t;
        if (stopping()) {
            double grace = g_stop_at + EL_SERVE_STOP_GRACE_MS - t;
            if (grace < left) left = grace;
        }
        if (left <= 0) return ETIMEDOUT;
        struct pollfd p[2] = {{fd, POLLOUT, 0}, {g_wake[0], POLLIN, 0}};
        if (poll(p, 2, (int)left + 1) < 0 && errno != EINTR) return errno;
        if (p[1].revents & POLLIN) { /* drain the wake-up; g_stop is what counts */
            char tmp[16];
            while (read(g_wake[0], tmp, sizeof tmp) > 0) {}
        }
    }
    return 0;
}

static int g_io_timeout_ms = 10000;

/* Ends the line and writes it whole to the current client. */
static void out_end(out_line *o) {
    o->buf[o->n++] = '\n';
    if (!o->failed) {
        int e = write_full(o->fd, o->buf, o->n, g_io_timeout_ms);
        if (e) {
            o->failed = true;
            o->err = e;
        }
    }
    o->n = 0;
}

/* ---- the server state ---------------------------------------------------------------- */

typedef struct server {
    el_cli_loaded *L;
    el_session *s;
    out_line out;
    uint64_t requests, errors, tokens; /* since start */
    /* the request being answered */
    char id[6 * EL_SERVE_ID_MAX + 8];  /* the id as JSON text; "" when unknown */
    char carry[4];                     /* bytes of a character split across tokens */
    size_t ncarry;
    uint32_t n_tokens;
    bool cancelled;                    /* a stop signal ended the generation */
    bool device_lost;                  /* a GPU failure: answer it, then stop serving */
} server;

static int32_t g_prompt_ids[EL_SERVE_LINE_MAX + 2]; /* the prompt-length check (len + 2) */
/* "messages" requests: the conversation as JSON text, the template's scratch and the
 * rendered prompt (static: nothing allocated per request beyond cJSON's tree). */
#define EL_SERVE_CHAT_WORK (1u << 20)
static char g_chat_json[EL_SERVE_LINE_MAX + 64];
static char g_chat_work[EL_SERVE_CHAT_WORK];
static char g_chat_prompt[2 * EL_SERVE_LINE_MAX];

static void reply_start(server *sv) {
    out_raw(&sv->out, "{", 1);
    if (sv->id[0]) {
        out_raw(&sv->out, "\"id\":", 5);
        out_raw(&sv->out, sv->id, strlen(sv->id));
        out_raw(&sv->out, ",", 1);
    }
}

/* Always returns 0, so that handlers can `return reply_error(...)`. */
static int reply_error(server *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reply_error(server *sv, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sv->errors++;
    reply_start(sv);
    out_raw(&sv->out, "\"error\":", 8);
    out_json_bytes(&sv->out, msg, strlen(msg));
    out_raw(&sv->out, "}", 1);
    out_end(&sv->out);
    return 0;
}

/* Length of the complete prefix of s[0..n): a trailing lead byte whose sequence is cut
 * short stays out (it may be completed by the next token). */
static size_t complete_prefix(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xc0) == 0x80) continue; /* continuation: look further back */
        size_t want = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1;
        return want > back ? n - back : n;
    }
    return n;
}

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    server *sv = user;
    char text[4 + 1024];
    size_t n = sv->ncarry;
    memcpy(text, sv->carry, n);
    if (len > sizeof text - n) len = sizeof text - n;
    memcpy(text + n, piece, len);
    n += len;
    size_t keep = complete_prefix(text, n);
    sv->ncarry = n - keep;
    memcpy(sv->carry, text + keep, sv->ncarry);
    reply_start(sv);
    out_raw(&sv->out, "\"token\":", 8);
    out_json_bytes(&sv->out, text, keep);
    out_fmt(&sv->out, ",\"token_id\":%d}", id);
    out_end(&sv->out);
    sv->n_tokens++;
    if (stopping()) sv->cancelled = true; /* a stop signal: end at this token */
    return !sv->out.failed && !sv->cancelled; /* or the client went away */
}

/* ---- one request ----------------------------------------------------------------------- */

enum { F_ID = 1, F_PROMPT = 2, F_MAX = 4, F_TEMP = 8, F_TOPK = 16, F_TOPP = 32, F_SEED = 64,
       F_CMD = 128, F_MSGS = 256 };

static unsigned field_bit(const char *k) {
    static const char *const names[] = {"id", "prompt", "max_tokens", "temperature",
                                        "top_k", "top_p", "seed", "cmd", "messages"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(k, names[i])) return 1u << i;
    return 0;
}

/* Stores the request's id as JSON text in sv->id; false (with an error reply) if invalid. */
static bool take_id(server *sv, const cJSON *id) {
    if (cJSON_IsString(id)) {
        size_t n = strlen(id->valuestring);
        if (n > EL_SERVE_ID_MAX) {
            reply_error(sv, "\"id\" is %zu bytes; at most %u", n, EL_SERVE_ID_MAX);
            return false;
        }
        out_line tmp;
        tmp.n = 0;
        out_json_bytes(&tmp, id->valuestring, n);
        memcpy(sv->id, tmp.buf, tmp.n);
        sv->id[tmp.n] = 0;
        return true;
    }
    if (cJSON_IsNumber(id) && isfinite(id->valuedouble)) {
        double d = id->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            snprintf(sv->id, sizeof sv->id, "%.0f", d);
        else
            snprintf(sv->id, sizeof sv->id, "%.17g", d);
        return true;
    }
    char got[64];
    reply_error(sv, "\"id\" must be a string or a number, got %s",
                el_json_describe(id, got, sizeof got));
    return false;
}

static int reply_stats(server *sv) {
    el_mem_report mr = {0, 0, 0};
    el_mem_report_get(&mr);
    el_arena_stats st;
    el_arena_stats_get(sv->L->arena, &st);
    reply_start(sv);
    out_fmt(&sv->out, "\"stats\":{\"requests\":%llu,\"errors\":%llu,\"tokens\":%llu,",
            (unsigned long long)sv->requests, (unsigned long long)sv->errors,
            (unsigned long long)sv->tokens);
    out_fmt(&sv->out, "\"vm_hwm\":%llu,\"vm_rss\":%llu,\"arena_reserved\":%llu,"
            "\"arena_peak\":%llu,\"ctx\":%u,\"threads\":%u}}",
            (unsigned long long)mr.vm_hwm, (unsigned long long)mr.vm_rss,
            (unsigned long long)st.reserved, (unsigned long long)st.peak, el_session_ctx(sv->s),
            el_session_threads(sv->s));
    out_end(&sv->out);
    return 0;
}

/* A number field in [lo, hi] (integral when integer); false with an error reply. */
static bool get_num(server *sv, const cJSON *it, const char *name, double lo, double hi,
                    bool integer, double *out) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo ||
        it->valuedouble > hi || (integer && it->valuedouble != floor(it->valuedouble))) {
        char got[64];
        reply_error(sv, "\"%s\" must be %s in [%.17g, %.17g], got %s", name,
                    integer ? "an integer" : "a number", lo, hi,
                    el_json_describe(it, got, sizeof got));
        return false;
    }
    *out = it->valuedouble;
    return true;
}

static int handle_request(server *sv, const cJSON *root) {
    uint32_t ctx = el_session_ctx(sv->s);
    const cJSON *f[9] = {0};
    unsigned seen = 0;
    const cJSON *it;
    /* The id first, so that every later error carries it. */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !take_id(sv, id)) return 0;
    cJSON_ArrayForEach(it, root) {
        unsigned bit = field_bit(it->string);
        if (!bit) {
            char name[80];
            el_json_printable(it->string, strlen(it->string), name, sizeof name);
            return reply_error(sv, "unknown field \"%s\" (known: id, prompt, messages, "
                               "max_tokens, temperature, top_k, top_p, seed, cmd)", name);
        }
        if (seen & bit) return reply_error(sv, "field \"%s\" appears twice", it->string);
        seen |= bit;
        f[__builtin_ctz(bit)] = it;
    }
    if (seen & F_CMD) {
        const cJSON *cmd = f[7];
        if (!cJSON_IsString(cmd) || strcmp(cmd->valuestring, "stats"))
            return reply_error(sv, "\"cmd\" must be \"stats\"");
        if (seen & ~(F_CMD | F_ID)) return reply_error(sv, "a \"cmd\" request takes only \"id\"");
        return reply_stats(sv);
    }
    if (!(seen & F_ID)) return reply_error(sv, "missing field \"id\"");
    if ((seen & F_PROMPT) && (seen & F_MSGS))
        return reply_error(sv, "give \"prompt\" or \"messages\", not both");
    if (!(seen & (F_PROMPT | F_MSGS)))
        return reply_error(sv, "missing field \"prompt\" (or \"messages\")");
    if (!(seen & F_MAX)) return reply_error(sv, "missing field \"max_tokens\"");
    const char *text = NULL;
    bool chat = (seen & F_MSGS) != 0;
    if (chat) {
        /* A conversation: rendered with the model's chat template; the template writes
         * the special tokens, so no BOS is added (as transformers' add_special_tokens). */
        if (!cJSON_IsArray(f[8])) {
            char got[64];
            return reply_error(sv, "\"messages\" must be a list of messages, got %s",
                               el_json_describe(f[8], got, sizeof got));
        }
        if (!cJSON_PrintPreallocated((cJSON *)f[8], g_chat_json, (int)sizeof g_chat_json, 0))
            return reply_error(sv, "\"messages\" is too long");
        size_t n = 0;
        el_status cs = el_chat_format(sv->L->model, g_chat_json, strlen(g_chat_json), true,
                                      g_chat_work, sizeof g_chat_work, g_chat_prompt,
                                      sizeof g_chat_prompt, &n);
        if (cs != EL_OK) return reply_error(sv, "%s", el_last_error());
        text = g_chat_prompt;
    } else {
        const cJSON *prompt = f[1];
        if (!cJSON_IsString(prompt)) {
            char got[64];
            return reply_error(sv, "\"prompt\" must be a string, got %s",
                               el_json_describe(prompt, got, sizeof got));
        }
        text = prompt->valuestring;
    }
    size_t plen = strlen(text);
    size_t bad = el_utf8_check(text, plen);
    if (bad != plen) return reply_error(sv, "\"prompt\" is not valid UTF-8 (at byte %zu)", bad);
    double max_tokens = 0, temp = 0, top_k = 0, top_p = 0.9, seed = 0;
    if (!get_num(sv, f[2], "max_tokens", 1, ctx, true, &max_tokens) ||
        ((seen & F_TEMP) && !get_num(sv, f[3], "temperature", 0, 100, false, &temp)) ||
        ((seen & F_TOPK) && !get_num(sv, f[4], "top_k", 0, 1e9, true, &top_k)) ||
        ((seen & F_TOPP) && !get_num(sv, f[5], "top_p", 0, 1, false, &top_p)) ||
        ((seen & F_SEED) && !get_num(sv, f[6], "seed", 0, 9007199254740992.0, true, &seed)))
        return 0;
    /* Tokenizing cannot be interrupted and some tokenizers take quadratic time: a prompt
     * longer than EL_SERVE_PROMPT_PER_CTX bytes per context token is refused unread. */
    uint64_t max_bytes = (uint64_t)ctx * EL_SERVE_PROMPT_PER_CTX;
    if (plen > max_bytes)
        return reply_error(sv, "the prompt is %zu bytes; this server takes at most %llu (%u bytes "
                           "per token of its context of %u)", plen, (unsigned long long)max_bytes,
                           EL_SERVE_PROMPT_PER_CTX, ctx);
    if (plen > sv->L->plan.max_input)
        return reply_error(sv, "the prompt is %zu bytes; this server takes at most %llu "
                           "(--max-input)", plen, (unsigned long long)sv->L->plan.max_input);
    /* The prompt's length in tokens, to say what does not fit in this protocol's words. */
    size_t n_prompt = 0;
    el_status st = el_tokenize(sv->L->model, text, plen, !chat, g_prompt_ids,
                               sizeof g_prompt_ids / sizeof g_prompt_ids[0], &n_prompt);
    if (st != EL_OK) return reply_error(sv, "%s", el_last_error());
    if (n_prompt > ctx)
        return reply_error(sv, "the prompt is %zu tokens, longer than the context of %u tokens "
                           "(serve --ctx)", n_prompt, ctx);
    if (n_prompt + (uint64_t)max_tokens > ctx)
        return reply_error(sv, "the prompt (%zu tokens) + max_tokens %.0f is past the context "
                           "of %u tokens: use max_tokens <= %zu", n_prompt, max_tokens, ctx,
                           (size_t)ctx - n_prompt);
    el_sampler_params sp;
    el_sampler_params_default(&sp);
    sp.temperature = (float)temp;
    sp.top_k = (uint32_t)top_k;
    sp.top_p = (float)top_p;
    sp.seed = (uint64_t)seed;
    sv->ncarry = 0;
    sv->n_tokens = 0;
    sv->cancelled = false;
    el_session_reset(sv->s);
    el_gen_stats gs;
    el_session_set_prompt_bos(sv->s, !chat);
    st = el_generate(sv->s, text, (uint32_t)max_tokens, &sp, on_token, sv, &gs);
    el_session_set_prompt_bos(sv->s, true);
    sv->tokens += sv->n_tokens;
    if (sv->out.failed) return 0;
    /* A failed launch or a faulted kernel leaves the CUDA context unusable: every later
     * request would fail the same way, so the service ends (exit 5) for its supervisor to
     * restart it, rather than answering errors forever. */
    if (st == EL_E_NODEV) sv->device_lost = true;
    if (st != EL_OK) return reply_error(sv, "%s", el_last_error());
    reply_start(sv);
    out_fmt(&sv->out, "\"done\":true,\"tokens\":%u,\"prompt_tokens\":%u,\"prefill_ms\":%.3f,"
            "\"decode_tok_s\":%.1f,\"stopped_at_eos\":%s", gs.generated_tokens,
            gs.prompt_tokens, gs.prompt_seconds * 1e3, gs.gen_tok_per_s,
            gs.stopped_at_eos ? "true" : "false");
    if (sv->cancelled) out_raw(&sv->out, ",\"cancelled\":true", 17);
    if (sv->ncarry) { /* bytes that never became a character */
        out_raw(&sv->out, ",\"tail\":", 8);
        out_json_bytes(&sv->out, sv->carry, sv->ncarry);
    }
    out_raw(&sv->out, "}", 1);
    out_end(&sv->out);
    return 0;
}

static int handle_line(server *sv, char *line, size_t n) {
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == n) return 0; /* blank lines are keep-alives: no reply */
    sv->id[0] = 0;
    sv->requests++;
    size_t bad = el_utf8_check(line, n);
    if (bad != n) return reply_error(sv, "the request is not valid UTF-8 (at byte %zu)", bad);
    cJSON *root = NULL;
    if (el_json_parse(line, n, "request", &root) != EL_OK)
        return reply_error(sv, "%s", el_last_error());
    if (!cJSON_IsObject(root)) {
        reply_error(sv, "a request is one JSON object per line");
    } else {
        handle_request(sv, root);
    }
    cJSON_Delete(root);
    return 0;
}

/* ---- clients ------------------------------------------------------------------------- */

/* One connection (or stdin/stdout). in: the bytes of its next request line(s), capacity
 * EL_SERVE_LINE_MAX + 1, a slice of the client table allocated once at start. */
typedef struct client {
    int in_fd, out_fd;  /* -1: a free slot; the same socket twice for a connection */
    char *in;
    size_t len;         /* bytes held in in */
    bool discarding;    /* inside a line longer than the limit: skip to its newline */
    bool eof;           /* the client sent its last byte */
    double last_ms;     /* last byte read from or written to it */
    double partial_ms;  /* when the unfinished line in `in` began; 0: none */
} client;

typedef struct loop {
    client *c;          /* [max] */
    unsigned max;       /* slots */
    unsigned next;      /* round-robin: the slot looked at first for the next request */
    int lfd;            /* listening socket, -1 for stdin/stdout */
    double idle_ms;     /* 0: never */
    uint64_t busy, dropped; /* connections refused (table full) / dropped (timeouts) */
} loop;

static void client_close(loop *lp, client *c) {
    if (c->in_fd < 0) return;
    if (lp->lfd >= 0) close(c->in_fd); /* stdin/stdout stay open */
    c->in_fd = c->out_fd = -1;
    c->len = 0;
    c->discarding = c->eof = false;
    c->partial_ms = 0;
}

static void client_open(client *c, int in_fd, int out_fd) {
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    c->len = 0;
    c->discarding = c->eof = false;
    c->last_ms = now_ms();
    c->partial_ms = 0;
}

/* An error line to a client outside a request (timeouts, busy): best effort, no wait. */
static void say(int fd, const char *msg) {
    char line[512];
    int n = snprintf(line, sizeof line, "{\"error\":\"%s\"}\n", msg);
    if (n > 0) {
        ssize_t w = write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

/* Reads what the client has sent into its buffer (one read). */
static void client_read(client *c) {
    if (c->len == EL_SERVE_LINE_MAX + 1) return; /* a full line is waiting to be served */
    ssize_t got = read(c->in_fd, c->in + c->len, EL_SERVE_LINE_MAX + 1 - c->len);
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0) {
        c->eof = true;
        return;
    }
    c->last_ms = now_ms();
    if (c->discarding) { /* the rest of a too-long line: keep what follows its newline */
        char *nl = memchr(c->in, '\n', (size_t)got);
        if (!nl) return;
        size_t keep = (size_t)got - (size_t)(nl + 1 - c->in);
        memmove(c->in, nl + 1, keep);
        c->len = keep;
        c->discarding = false;
    } else {
        c->len += (size_t)got;
    }
    c->partial_ms = c->len && !memchr(c->in, '\n', c->len) ? (c->partial_ms ? c->partial_ms : now_ms()) : 0;
}

/* True if the client holds something to answer: a whole line, a line that overflowed the
 * buffer, or a last line without its newline at EOF. */
static bool client_ready(const client *c) {
    if (c->in_fd < 0 || c->len == 0) return false;
    return memchr(c->in, '\n', c->len) || c->len == EL_SERVE_LINE_MAX + 1 || c->eof;
}

/* Answers the client's next line. */
static void client_serve(server *sv, client *c) {
    sv->out.fd = c->out_fd;
    sv->out.n = 0;
    sv->out.failed = false;
    char *nl = memchr(c->in, '\n', c->len);
    size_t n, used;
    if (nl) {
        n = (size_t)(nl - c->in);
        used = n + 1;
    } else if (c->len == EL_SERVE_LINE_MAX + 1) {
        sv->id[0] = 0;
        sv->requests++;
        reply_error(sv, "the request line is longer than %u bytes", EL_SERVE_LINE_MAX);
        c->len = 0;
        c->discarding = true;
        c->partial_ms = 0;
        return;
    } else { /* EOF after a last line without newline: there is room for its NUL */
        n = used = c->len;
    }
    c->in[n] = 0;
    handle_line(sv, c->in, n);
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
    c->partial_ms = c->len && !memchr(c->in, '\n', c->len) ? now_ms() : 0;
    c->last_ms = now_ms();
}

/* Accepts one connection: a free slot, or "busy" and closed. */
static void accept_one(loop *lp) {
    int fd = accept4(lp->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return; /* the client gave up before we accepted */
    for (unsigned i = 0; i < lp->max; i++)
        if (lp->c[i].in_fd < 0) {
            client_open(&lp->c[i], fd, fd);
            return;
        }
    lp->busy++;
    say(fd, "busy: every connection slot is taken (serve --max-clients); try again later");
    close(fd);
}

/* Drops clients past their deadlines; returns the ms until the next deadline (-1: none). */
static int expire(loop *lp) {
    double t = now_ms(), next = -1;
    for (unsigned i = 0; i < lp->max; i++) {
        client *c = &lp->c[i];
        if (c->in_fd < 0 || lp->lfd < 0) continue; /* stdin has no deadlines */
        double due;
        const char *why;
        if (c->partial_ms) {
            due = c->partial_ms + g_io_timeout_ms;
            why = "timeout: the request line was not finished within --io-timeout";
        } else if (lp->idle_ms > 0) {
            due = c->last_ms + lp->idle_ms;
            why = "timeout: the connection was idle for --idle-timeout";
        } else {
            continue;
        }
        if (due <= t) {
            say(c->out_fd, why);
            lp->dropped++;
            client_close(lp, c);
        } else if (next < 0 || due - t < next) {
            next = due - t;
        }
    }
    return next < 0 ? -1 : (int)next + 1;
}

/* The loop: until a stop signal, EOF on stdin (stdin/stdout mode), a write failure on
 * stdout, or a lost GPU. Returns LINE_STOP, LINE_EOF or LINE_ERROR. */
enum { LINE_EOF, LINE_STOP, LINE_ERROR };

static int serve_loop(server *sv, loop *lp) {
    struct pollfd *pf = (struct pollfd *)(lp->c + lp->max); /* [max + 2], after the table */
    for (;;) {
        if (stopping()) return LINE_STOP;
        if (sv->device_lost) return LINE_STOP;
        /* Answer one ready request, round-robin, then look at the sockets again. */
        bool any_ready = false;
        for (unsigned k = 0; k < lp->max; k++) {
            unsigned i = (lp->next + k) % lp->max;
            client *c = &lp->c[i];
            if (!client_ready(c)) continue;
            client_serve(sv, c);
            lp->next = (i + 1) % lp->max;
            if (sv->out.failed) {
                if (lp->lfd < 0) return LINE_ERROR;
                lp->dropped++;
                client_close(lp, c);
            }
            any_ready = true;
            break;
        }
        if (lp->lfd < 0 && lp->c[0].eof && !client_ready(&lp->c[0])) return LINE_EOF;
        int timeout = expire(lp);
        for (unsigned i = 0; i < lp->max; i++) {
            client *c = &lp->c[i];
            if (c->in_fd >= 0 && c->eof && !client_ready(c)) client_close(lp, c);
        }
        if (any_ready) timeout = 0;
        else
            for (unsigned i = 0; i < lp->max; i++)
                if (client_ready(&lp->c[i])) timeout = 0;
        nfds_t n = 0;
        pf[n++] = (struct pollfd){g_wake[0], POLLIN, 0};
        if (lp->lfd >= 0) pf[n++] = (struct pollfd){lp->lfd, POLLIN, 0};
        nfds_t first = n;
        for (unsigned i = 0; i < lp->max; i++) {
            client *c = &lp->c[i];
            bool want = c->in_fd >= 0 && !c->eof && c->len < EL_SERVE_LINE_MAX + 1;
            pf[n++] = (struct pollfd){want ? c->in_fd : -1, POLLIN, 0};
        }
        int r = poll(pf, n, timeout);
        if (r < 0 && errno != EINTR) return LINE_ERROR;
        if (r <= 0) continue;
        if (pf[0].revents & POLLIN) {
            char tmp[16];
            while (read(g_wake[0], tmp, sizeof tmp) > 0) {}
        }
        if (lp->lfd >= 0 && (pf[1].revents & POLLIN)) accept_one(lp);
        for (unsigned i = 0; i < lp->max; i++)
            if (pf[first + i].fd >= 0 && (pf[first + i].revents & (POLLIN | POLLHUP | POLLERR)))
                client_read(&lp->c[i]);
    }
}

/* ---- the socket ------------------------------------------------------------------------ */

static int open_socket(const char *path, int *out_fd) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path)
        return el_cli_usage("--socket %s: the path is longer than %zu bytes", path,
                            sizeof addr.sun_path - 1);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            fprintf(stderr, "edgeload: error: --socket %s exists and is not a socket; remove it "
                    "or choose another path\n", path);
            return 1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof addr) == 0;
        if (probe >= 0) close(probe);
        if (live) {
            fprintf(stderr, "edgeload: error: --socket %s: another server is listening there\n",
                    path);
            return 1;
        }
        unlink(path); /* a stale socket from a server that did not clean up */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "edgeload: error: --socket %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return el_status_exit_code(EL_E_IO);
    }
    *out_fd = fd;
    return 0;
}

/* ---- the command ----------------------------------------------------------------------- */

int el_cmd_serve(int argc, char **argv) {
    el_cli_opts o;
    el_cli_opts_init(&o);
    const char *sock_path = NULL;
    long threads = -1;
    double max_clients = EL_SERVE_CLIENTS_DEFAULT, io_timeout = 10, idle_timeout = 300;
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
        if (!strcmp(a, "--socket")) {
            if (!v || !*v) return el_cli_usage("--socket needs a path");
            sock_path = v;
            i++;
        } else if (!strcmp(a, "--threads")) {
            char *end = NULL;
            threads = v ? strtol(v, &end, 10) : -1;
            if (!v || !*v || *end || threads < 0 || threads > 64)
                return el_cli_usage("--threads: expected an integer in [0, 64]");
            i++;
        } else if (!strcmp(a, "--max-clients") || !strcmp(a, "--io-timeout") ||
                   !strcmp(a, "--idle-timeout")) {
            bool clients = a[2] == 'm';
            double lo = clients || a[3] == 'o' ? 1 : 0, hi = clients ? EL_SERVE_CLIENTS_MAX : 86400;
            char *end = NULL;
            double x = v ? strtod(v, &end) : -1;
            if (!v || !*v || *end || !(x >= lo && x <= hi) || (clients && x != (double)(unsigned)x))
                return el_cli_usage("%s: expected %s in [%g, %g]", a,
                                    clients ? "an integer" : "seconds", lo, hi);
            *(clients ? &max_clients : a[2] == 'i' && a[3] == 'o' ? &io_timeout : &idle_timeout) = x;
            i++;
        } else if (a[0] == '-' && a[1]) {
            return el_cli_usage("serve: unknown option %s", a);
        } else {
            if (o.model) return el_cli_usage("serve: one MODEL only (got %s and %s)", o.model, a);
            o.model = a;
        }
    }
    if (!o.model) return el_cli_usage("serve MODEL: missing MODEL");
    if (o.json) return el_cli_usage("serve: replies are always JSON lines; drop --json");
    /* A service touches its whole arena once at start: later requests cannot fault it in
     * (no OOM mid-request, and VmHWM is flat from the first request on). */
    o.arena_flags |= EL_ARENA_PREFAULT;
    o.runs = true;
    g_io_timeout_ms = (int)(io_timeout * 1000);
    /* The client table: slots, their input lines and the poll set, allocated and touched
     * once here (stdin/stdout mode: one slot). Nothing per client is allocated later. */
    loop lp;
    memset(&lp, 0, sizeof lp);
    lp.max = sock_path ? (unsigned)max_clients : 1;
    lp.idle_ms = idle_timeout * 1000;
    size_t table = lp.max * sizeof(client) + (lp.max + 2) * sizeof(struct pollfd);
    size_t bytes = table + (size_t)lp.max * (EL_SERVE_LINE_MAX + 1);
    char *mem = malloc(bytes);
    if (!mem) {
        fprintf(stderr, "edgeload: error: out of memory for %u client buffers (%zu bytes)\n",
                lp.max, bytes);
        return el_status_exit_code(EL_E_NOMEM);
    }
    /* Every page written now (not zeroes: a compiler may fold malloc + memset 0 into a
     * calloc that leaves them untouched), so RSS does not grow as clients arrive. */
    memset(mem, 0x5a, bytes);
    memset(mem, 0, table);
    lp.c = (client *)mem;
    for (unsigned i = 0; i < lp.max; i++) {
        lp.c[i].in = mem + table + (size_t)i * (EL_SERVE_LINE_MAX + 1);
        lp.c[i].in_fd = lp.c[i].out_fd = -1;
    }
    int lfd = -1;
    if (sock_path) {
        int rc = open_socket(sock_path, &lfd);
        if (rc) {
            free(mem);
            return rc;
        }
    }
    if (install_signals() != 0) {
        fprintf(stderr, "edgeload: error: cannot set up signal handling: %s\n", strerror(errno));
        if (lfd >= 0) close(lfd), unlink(sock_path);
        free(mem);
        return el_status_exit_code(EL_E_IO);
    }
    /* Worker threads inherit a mask with the stop signals blocked, so the handler runs on
     * this thread; a signal during the load waits and is seen by the loop. */
    sigset_t stop_set, old_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, &old_set);
    server sv;
    memset(&sv, 0, sizeof sv);
    el_cli_loaded L;
    int rc = el_cli_load(&o, &L);
    el_session *s = NULL;
    if (rc == 0) {
        el_session_params ps = {threads >= 0 ? (unsigned)threads : L.board_threads, L.device,
                                0, L.no_cuda_graph};
        el_status st = el_session_init(L.model, L.arena, &L.plan, &ps, &s);
        if (st == EL_OK && (st = el_session_set_numerics(s, o.numerics)) != EL_OK)
            el_session_deinit(s), s = NULL;
        if (st != EL_OK) {
            rc = el_cli_fail(st);
            el_cli_unload(&L);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    if (rc) {
        if (lfd >= 0) close(lfd), unlink(sock_path);
        free(mem);
        return rc;
    }
    sv.L = &L;
    sv.s = s;
    char a[32], b[32];
    fprintf(stderr, "edgeload: serving %s (ctx %u, %u thread(s), arena %s; %u client slot(s), "
            "%s of request buffers: lines of at most %u bytes) on %s\n", o.model,
            el_session_ctx(s), el_session_threads(s), el_size_format(L.arena_bytes, a, sizeof a),
            lp.max, el_size_format(bytes, b, sizeof b), EL_SERVE_LINE_MAX,
            sock_path ? sock_path : "stdin/stdout");
    lp.lfd = lfd;
    int stdout_fl = -1; /* stdout's flags to restore: the file description may be shared */
    if (lfd < 0) {
        /* A pipe or socket on stdout gets non-blocking writes, so a reader that stops
         * reading cannot hold a stop signal (write_full waits with a deadline). */
        struct stat ob;
        if (fstat(1, &ob) == 0 && (S_ISFIFO(ob.st_mode) || S_ISSOCK(ob.st_mode))) {
            stdout_fl = fcntl(1, F_GETFL);
            if (stdout_fl >= 0) fcntl(1, F_SETFL, stdout_fl | O_NONBLOCK);
        }
        client_open(&lp.c[0], 0, 1);
    } else {
        fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    }
    int end = serve_loop(&sv, &lp);
    if (stdout_fl >= 0) fcntl(1, F_SETFL, stdout_fl);
    rc = 0;
    if (end == LINE_ERROR && lfd < 0) {
        int e = sv.out.failed ? sv.out.err : errno;
        fprintf(stderr, "edgeload: error: %s: %s\n",
                sv.out.failed ? "cannot write replies to stdout" : "cannot read stdin",
                strerror(e));
        rc = el_status_exit_code(EL_E_IO);
    }
    if (sv.device_lost) rc = el_status_exit_code(EL_E_NODEV);
    fprintf(stderr, "edgeload: served %llu request(s), %llu error(s), %llu token(s); %llu "
            "connection(s) refused busy, %llu dropped (timeouts, replies not read); %s\n",
            (unsigned long long)sv.requests, (unsigned long long)sv.errors,
            (unsigned long long)sv.tokens, (unsigned long long)lp.busy,
            (unsigned long long)lp.dropped,
            sv.device_lost ? "stopped: the GPU failed (see the error reply)"
            : g_stop       ? "stopped by a signal"
                           : "end of input");
    if (lfd >= 0) {
        for (unsigned i = 0; i < lp.max; i++) client_close(&lp, &lp.c[i]);
        close(lfd);
        unlink(sock_path);
    }
    el_session_deinit(s);
    el_cli_unload(&L);
    free(mem);
    return rc;
}
