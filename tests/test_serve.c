/* test_serve.c - `edgeload serve` on the bundled model, driven through its pipes: greedy
 * replies equal `edgeload generate` and the llama2.c reference ids; malformed requests get
 * error lines and the loop goes on; SIGTERM mid-request cancels it at the next token (its
 * final line says "cancelled") and exits 0 within a second; 1,000
 * requests leave VmHWM where the first left it; the Unix socket answers the same. All on
 * the CPU (--device cpu): serve on the GPU is in tests/test_cuda_cli.c. */
// ctest-labels: llama;cli;serve
// ctest-timeout: 300
#include "tests/llama_fixture.h"
#include "tests/support/el_test_proc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 60000
/* Bytes VmHWM may move after the first requests: 4 pages in a normal build. Under the
 * sanitizers the child's allocator is ASan's, whose size-class regions and metadata grow in
 * page steps as cJSON's per-request blocks land in new size classes (measured up to +68 KiB
 * over 1,000 requests); the strict bound is the release build's. */
#ifdef EL_SANITIZED
#define VMHWM_SLACK (256u * 1024u)
#else
#define VMHWM_SLACK (4u * 4096u)
#endif

static el_test_proc g_p; /* 128 KiB of read buffer: static */
static char g_line[1 << 17];

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool start(const char *const *args) {
    bool ok = el_test_proc_start(&g_p, args, el_test_path("serve.err"));
    if (!ok) fprintf(stderr, "could not start the CLI\n");
    return ok;
}

static bool send_line(const char *s) {
    return el_test_proc_write(&g_p, s, strlen(s)) && el_test_proc_write(&g_p, "\n", 1);
}

/* The next reply as JSON (NULL on EOF, timeout or a line that is not JSON). */
static cJSON *next_reply(void) {
    long n = el_test_proc_readline(&g_p, g_line, sizeof g_line, TIMEOUT_MS);
    if (n < 0) return NULL;
    cJSON *j = cJSON_Parse(g_line);
    if (!j) fprintf(stderr, "reply is not JSON: %s\n", g_line);
    return j;
}

/* A generation's replies: token texts concatenated, ids, and the final line (caller
 * frees). Returns false if any line is off-protocol. */
typedef struct gen_reply {
    char text[16384];
    size_t len;
    int32_t ids[1024];
    size_t n;
    cJSON *done; /* the done or error line */
} gen_reply;

static bool read_generation(double want_id, gen_reply *g) {
    memset(g, 0, sizeof *g);
    for (;;) {
        cJSON *j = next_reply();
        if (!j) return false;
        const cJSON *id = cJSON_GetObjectItem(j, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble != want_id) {
            cJSON_Delete(j);
            return false;
        }
        const cJSON *tok = cJSON_GetObjectItem(j, "token");
        if (cJSON_IsString(tok)) {
            size_t k = strlen(tok->valuestring);
            if (g->len + k < sizeof g->text) {
                memcpy(g->text + g->len, tok->valuestring, k);
                g->len += k;
            }
            const cJSON *tid = cJSON_GetObjectItem(j, "token_id");
            if (!cJSON_IsNumber(tid) || g->n >= 1024) {
                cJSON_Delete(j);
                return false;
            }
            g->ids[g->n++] = (int32_t)tid->valuedouble;
            cJSON_Delete(j);
            continue;
        }
        g->done = j;
        return true;
    }
}

static bool is_true(const cJSON *j, const char *k) { return cJSON_IsTrue(cJSON_GetObjectItem(j, k)); }
static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* ---- greedy replies equal generate and the reference -------------------------------- */

static void test_greedy_matches_generate(void) {
    char *gen = NULL;
    int rc = el_test_run_cli("generate " STORIES_BIN " -p 'Once upon a time' -n 40 --temp 0 "
                             "--device cpu --arena 16M", &gen, NULL);
    EL_CHECK(rc == 0 && gen);
    const char *args[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", NULL};
    if (!start(args)) return;
    gen_reply g;
    EL_CHECK(send_line("{\"id\":7,\"prompt\":\"Once upon a time\",\"max_tokens\":40}"));
    EL_CHECK(read_generation(7, &g));
    EL_CHECK(g.done && is_true(g.done, "done"));
    EL_CHECK(num(g.done, "tokens") == (double)g.n);
    EL_CHECK(num(g.done, "prompt_tokens") == 5);
    EL_CHECK(num(g.done, "prefill_ms") >= 0 && num(g.done, "decode_tok_s") >= 0);
    /* generate prints prompt + text + "\n"; the token lines concatenate to the text. */
    char want[20000];
    snprintf(want, sizeof want, "Once upon a time%.*s\n", (int)g.len, g.text);
    EL_CHECK(gen && !strcmp(gen, want));
    if (gen && strcmp(gen, want)) fprintf(stderr, "generate: %s\nserve:    %s", gen, want);
    /* The ids are the llama2.c reference's (fixture from scripts/ref_llama2c.py). */
    cJSON *fx = fixture_load(STORIES_FIXTURE);
    int32_t *ref = NULL;
    size_t nref = fixture_ids(cJSON_GetObjectItem(fx, "generated_ids"), &ref);
    size_t k = nref < g.n ? nref : g.n;
    EL_CHECK(k >= 20 && !memcmp(ref, g.ids, k * sizeof *ref));
    free(ref);
    cJSON_Delete(fx);
    cJSON_Delete(g.done);
    /* The same request again gives the same reply: each request starts a fresh session. */
    gen_reply g2;
    EL_CHECK(send_line("{\"id\":8,\"prompt\":\"Lily\",\"max_tokens\":5}"));
    EL_CHECK(read_generation(8, &g2));
    cJSON_Delete(g2.done);
    EL_CHECK(send_line("{\"id\":7,\"prompt\":\"Once upon a time\",\"max_tokens\":40}"));
    EL_CHECK(read_generation(7, &g2));
    EL_CHECK(g2.n == g.n && !memcmp(g2.ids, g.ids, g.n * sizeof g.ids[0]));
    cJSON_Delete(g2.done);
    /* Sampling with a seed is reproducible across requests. */
    const char *sampled = "{\"id\":9,\"prompt\":\"Lily\",\"max_tokens\":30,\"temperature\":1,"
                          "\"top_p\":0.9,\"top_k\":40,\"seed\":11}";
    EL_CHECK(send_line(sampled));
    EL_CHECK(read_generation(9, &g));
    EL_CHECK(send_line(sampled));
    EL_CHECK(read_generation(9, &g2));
    EL_CHECK(g.n > 0 && g.n == g2.n && !memcmp(g.ids, g2.ids, g.n * sizeof g.ids[0]));
    cJSON_Delete(g.done);
    cJSON_Delete(g2.done);
    EL_CHECK(el_test_proc_wait(&g_p, TIMEOUT_MS) == 0); /* EOF ends the loop: exit 0 */
    free(gen);
}

/* ---- malformed requests ------------------------------------------------------------ */

typedef struct bad_case {
    const char *line;
    const char *want;  /* a substring of the error message */
    double id;         /* -1: the reply carries no id */
} bad_case;

static void check_error(const bad_case *c) {
    cJSON *j = next_reply();
    EL_CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "no reply to: %.80s\n", c->line);
        return;
    }
    const cJSON *err = cJSON_GetObjectItem(j, "error");
    bool ok = cJSON_IsString(err) && strstr(err->valuestring, c->want);
    const cJSON *id = cJSON_GetObjectItem(j, "id");
    bool id_ok = c->id < 0 ? id == NULL : cJSON_IsNumber(id) && id->valuedouble == c->id;
    EL_CHECK(ok && id_ok);
    if (!ok || !id_ok) fprintf(stderr, "request %.80s\n  got %.300s\n  want '%s'\n", c->line,
                               g_line, c->want);
    cJSON_Delete(j);
}

static void test_malformed(void) {
    static char long_prompt[8000], too_long[70000];
    /* 1200 words: past the 512-token context. */
    size_t o = (size_t)snprintf(long_prompt, sizeof long_prompt, "{\"id\":20,\"prompt\":\"");
    for (int i = 0; i < 1200; i++) o += (size_t)snprintf(long_prompt + o, sizeof long_prompt - o, "a ");
    snprintf(long_prompt + o, sizeof long_prompt - o, "\",\"max_tokens\":1}");
    /* A line past the 65536-byte limit, then a good one on the same write. */
    o = (size_t)snprintf(too_long, sizeof too_long, "{\"id\":21,\"prompt\":\"");
    while (o < 66000) too_long[o++] = 'x';
    snprintf(too_long + o, sizeof too_long - o, "\",\"max_tokens\":1}");
    const bad_case cases[] = {
        {"this is not json", "not valid JSON", -1},
        {"{\"id\":1,\"prompt\":\"Hi\",\"max_tokens\":3", "not valid JSON", -1},
        {"[1,2,3]", "one JSON object", -1},
        {"{\"id\":2,\"prompt\":5,\"max_tokens\":3}", "\"prompt\" must be a string", 2},
        {"{\"id\":3,\"prompt\":\"Hi\",\"max_tokens\":\"3\"}", "\"max_tokens\" must be an integer", 3},
        {"{\"id\":4,\"prompt\":\"Hi\",\"max_tokens\":2.5}", "\"max_tokens\" must be an integer", 4},
        {"{\"id\":5,\"prompt\":\"Hi\",\"max_tokens\":0}", "in [1, 512]", 5},
        {"{\"id\":6,\"prompt\":\"Hi\",\"max_tokens\":513}", "in [1, 512]", 6},
        {"{\"id\":7,\"prompt\":\"Hi\",\"max_tokens\":-1}", "in [1, 512]", 7},
        {"{\"id\":8,\"max_tokens\":3}", "missing field \"prompt\"", 8},
        {"{\"id\":9,\"prompt\":\"Hi\"}", "missing field \"max_tokens\"", 9},
        {"{\"prompt\":\"Hi\",\"max_tokens\":3}", "missing field \"id\"", -1},
        {"{\"id\":{\"a\":1},\"prompt\":\"Hi\",\"max_tokens\":3}", "\"id\" must be", -1},
        {"{\"id\":10,\"prompt\":\"Hi\",\"max_tokens\":3,\"max_token\":3}", "unknown field", 10},
        {"{\"id\":11,\"prompt\":\"Hi\",\"prompt\":\"Ho\",\"max_tokens\":3}", "twice", 11},
        {"{\"id\":12,\"prompt\":\"Hi\",\"max_tokens\":3,\"temperature\":-1}", "temperature", 12},
        {"{\"id\":13,\"prompt\":\"Hi\",\"max_tokens\":3,\"top_p\":1.5}", "top_p", 13},
        {"{\"id\":14,\"prompt\":\"Hi\",\"max_tokens\":3,\"seed\":-2}", "seed", 14},
        {"{\"id\":15,\"prompt\":\"Hi\\ud800\",\"max_tokens\":3}", "not valid JSON", -1}, /* lone surrogate */
        {"{\"id\":16,\"prompt\":\"a\xff\",\"max_tokens\":3}", "not valid UTF-8", -1},
        {"{\"id\":17,\"prompt\":\"a\\u0000b\",\"max_tokens\":3}", "\\u0000", -1},
        {"{\"id\":18,\"prompt\":\"Once upon a time\",\"max_tokens\":510}", "max_tokens <= 507", 18},
        {long_prompt, "longer than the context of 512", 20},
        {"{\"cmd\":\"reboot\"}", "\"cmd\" must be \"stats\"", -1},
        {too_long, "longer than 65536 bytes", -1},
    };
    const char *args[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", NULL};
    if (!start(args)) return;
    gen_reply good;
    EL_CHECK(send_line("{\"id\":100,\"prompt\":\"Once upon a time\",\"max_tokens\":12}"));
    EL_CHECK(read_generation(100, &good));
    cJSON_Delete(good.done);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EL_CHECK(send_line(cases[i].line));
        check_error(&cases[i]);
    }
    /* A NUL byte inside a line and a blank line (ignored, no reply). */
    static const char nul_req[] = "{\"id\":30,\"prompt\":\"a\0b\",\"max_tokens\":1}\n\n";
    EL_CHECK(el_test_proc_write(&g_p, nul_req, sizeof nul_req - 1));
    bad_case nul = {"<NUL>", "control byte", -1};
    check_error(&nul);
    /* After all that, the same good request gives the same reply. */
    gen_reply again;
    EL_CHECK(send_line("{\"id\":100,\"prompt\":\"Once upon a time\",\"max_tokens\":12}"));
    EL_CHECK(read_generation(100, &again));
    EL_CHECK(again.done && is_true(again.done, "done"));
    EL_CHECK(again.n == good.n && !memcmp(again.ids, good.ids, good.n * sizeof good.ids[0]));
    cJSON_Delete(again.done);
    /* The stats request counts them. */
    EL_CHECK(send_line("{\"cmd\":\"stats\",\"id\":31}"));
    cJSON *st = next_reply();
    const cJSON *stats = cJSON_GetObjectItem(st, "stats");
    EL_CHECK(num(st, "id") == 31 && num(stats, "errors") >= 25 && num(stats, "vm_hwm") > 0);
    cJSON_Delete(st);
    EL_CHECK(el_test_proc_wait(&g_p, TIMEOUT_MS) == 0);
}

/* ---- signals ------------------------------------------------------------------------ */

static void test_sigterm_mid_request(void) {
    const char *args[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", NULL};
    if (!start(args)) return;
    /* A one-page stdout pipe: serve blocks in write() inside request 1 until we read, so the
     * signal lands mid-request for sure. Request 2 is already queued on stdin. */
    int sz = fcntl(g_p.out_fd, F_SETPIPE_SZ, 4096);
    EL_CHECK(sz >= 4096 && sz < 65536);
    EL_CHECK(send_line("{\"id\":1,\"prompt\":\"Once upon a time\",\"max_tokens\":400}\n"
                       "{\"id\":2,\"prompt\":\"Lily\",\"max_tokens\":5}"));
    sleep_ms(500);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    EL_CHECK(kill(g_p.pid, SIGTERM) == 0);
    gen_reply g;
    EL_CHECK(read_generation(1, &g));
    /* Cancelled at a token: what was generated is reported, with "cancelled". */
    EL_CHECK(g.done && is_true(g.done, "done") && is_true(g.done, "cancelled"));
    EL_CHECK(g.n > 10 && g.n < 400 && num(g.done, "tokens") == (double)g.n);
    cJSON_Delete(g.done);
    /* Nothing for request 2: the loop stopped; exit 0 within a second of the signal. */
    EL_CHECK(el_test_proc_readline(&g_p, g_line, sizeof g_line, TIMEOUT_MS) == -1);
    EL_CHECK(el_test_proc_wait(&g_p, TIMEOUT_MS) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("   SIGTERM mid-request: cancelled after %zu tokens, exit 0 after %.3f s\n", g.n, secs);
    EL_CHECK(secs < 1.0);
    char *err = el_test_read_file(el_test_path("serve.err"), NULL);
    EL_CHECK(err && strstr(err, "stopped by a signal"));
    free(err);

    /* Idle: SIGINT ends it at once, exit 0, stdin still open. */
    if (!start(args)) return;
    gen_reply h;
    EL_CHECK(send_line("{\"id\":3,\"prompt\":\"Lily\",\"max_tokens\":3}"));
    EL_CHECK(read_generation(3, &h));
    cJSON_Delete(h.done);
    EL_CHECK(kill(g_p.pid, SIGINT) == 0);
    EL_CHECK(el_test_proc_readline(&g_p, g_line, sizeof g_line, TIMEOUT_MS) == -1);
    EL_CHECK(el_test_proc_wait(&g_p, TIMEOUT_MS) == 0);
}

/* ---- memory across 1,000 requests -------------------------------------------------- */

static void test_vmhwm_flat(void) {
    const char *args[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", "--threads",
                          "2", NULL};
#ifdef EL_SANITIZED
    /* ASan parks freed blocks in a quarantine (up to 256 MiB) instead of reusing them, so
     * the per-request cJSON tree would look like growth; reuse them at once instead. */
    char asan[1024];
    const char *prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0", prev ? prev : "", prev ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
#endif
    if (!start(args)) return;
    static const char *const prompts[] = {"Once upon a time", "Lily", "The cat", "",
                                          "One day, a little boy named Tim went to the park",
                                          "She was happy"};
    uint64_t hwm_first = 0, hwm_last = 0;
    int ok = 0;
    char req[512];
    for (int i = 0; i < 1000; i++) {
        snprintf(req, sizeof req, "{\"id\":%d,\"prompt\":\"%s\",\"max_tokens\":%d%s}", i,
                 prompts[i % 6], 1 + (i * 7) % 48, i % 3 ? "" : ",\"temperature\":0.8,\"seed\":5");
        if (!send_line(req)) break;
        gen_reply g;
        bool got = read_generation(i, &g);
        if (got && is_true(g.done, "done")) ok++;
        cJSON_Delete(g.done);
        if (!got) break;
        if (i % 50 == 7) { /* a malformed line now and then must not cost memory either */
            send_line("{\"id\":-1,\"prompt\":[1,2,3],\"max_tokens\":1}");
            cJSON_Delete(next_reply());
        }
        /* The baseline follows the first request of each decode variant (0 samples, 1 is
         * greedy): on a GPU each variant's first step captures its CUDA graph, once. */
        if (i == 1) hwm_first = el_test_proc_status_bytes(g_p.pid, "VmHWM");
    }
    hwm_last = el_test_proc_status_bytes(g_p.pid, "VmHWM");
    uint64_t rss = el_test_proc_status_bytes(g_p.pid, "VmRSS");
    EL_CHECK(ok == 1000);
    EL_CHECK(hwm_first >= 16u * 1024 * 1024 && hwm_last >= hwm_first); /* arena prefaulted */
    EL_CHECK(hwm_last <= hwm_first + VMHWM_SLACK);
    printf("serve: 1000 requests: VmHWM after the first two %llu bytes, after the last %llu bytes "
           "(+%lld), VmRSS %llu\n", (unsigned long long)hwm_first, (unsigned long long)hwm_last,
           (long long)(hwm_last - hwm_first), (unsigned long long)rss);
    EL_CHECK(el_test_proc_wait(&g_p, TIMEOUT_MS) == 0);
}

/* ---- the Unix socket --------------------------------------------------------------- */

static int connect_to(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    for (int tries = 0; tries < 600; tries++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        if (fd >= 0) close(fd);
        sleep_ms(50);
    }
    return -1;
}

/* Sends one request on a fresh connection and reads the replies until done/error. */
static bool socket_request(const char *path, const char *req, char *text, size_t cap,
                           bool *done) {
    int fd = connect_to(path);
    if (fd < 0) return false;
    bool ok = write(fd, req, strlen(req)) == (ssize_t)strlen(req) && write(fd, "\n", 1) == 1;
    static char buf[1 << 16];
    size_t len = 0, tl = 0;
    *done = false;
    text[0] = 0;
    while (ok) {
        char *nl = memchr(buf, '\n', len);
        if (!nl) {
            struct pollfd pf = {fd, POLLIN, 0};
            if (poll(&pf, 1, TIMEOUT_MS) <= 0) break;
            ssize_t r = read(fd, buf + len, sizeof buf - len - 1);
            if (r <= 0) break;
            len += (size_t)r;
            continue;
        }
        *nl = 0;
        cJSON *j = cJSON_Parse(buf);
        const cJSON *t = cJSON_GetObjectItem(j, "token");
        if (cJSON_IsString(t) && tl + strlen(t->valuestring) < cap) {
            memcpy(text + tl, t->valuestring, strlen(t->valuestring) + 1);
            tl += strlen(t->valuestring);
        }
        bool end = j && (cJSON_GetObjectItem(j, "done") || cJSON_GetObjectItem(j, "error"));
        *done = j && is_true(j, "done");
        cJSON_Delete(j);
        memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf));
        len -= (size_t)(nl + 1 - buf);
        if (end || !j) break;
    }
    close(fd);
    return ok;
}

static void test_socket(void) {
    char *gen = NULL;
    el_test_run_cli("generate " STORIES_BIN " -p 'Once upon a time' -n 25 --temp 0 --device cpu", &gen, NULL);
    const char *sock = el_test_path("serve.sock");
    const char *args[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", "--socket",
                          sock, NULL};
    if (!start(args)) return;
    char text[8192], want[8300];
    bool done = false;
    EL_CHECK(socket_request(sock, "{\"id\":1,\"prompt\":\"Once upon a time\",\"max_tokens\":25}",
                            text, sizeof text, &done));
    EL_CHECK(done);
    snprintf(want, sizeof want, "Once upon a time%s\n", text);
    EL_CHECK(gen && !strcmp(gen, want));
    /* A second connection after the first closed; a malformed request there too. */
    EL_CHECK(socket_request(sock, "{\"id\":2,\"prompt\":7}", text, sizeof text, &done));
    EL_CHECK(!done);
    EL_CHECK(socket_request(sock, "{\"id\":3,\"prompt\":\"Lily\",\"max_tokens\":4}", text,
                            sizeof text, &done));
    EL_CHECK(done);
    /* A second server on the same path refuses (exit 1) while the first listens. */
    char args2[1024];
    snprintf(args2, sizeof args2, "serve " STORIES_BIN " --arena 16M --device cpu --socket %s", sock);
    EL_CHECK(el_test_run_cli(args2, NULL, NULL) == 1);
    EL_CHECK(kill(g_p.pid, SIGTERM) == 0);
    EL_CHECK(el_test_proc_wait(&g_p, TIMEOUT_MS) == 0);
    struct stat sb;
    EL_CHECK(stat(sock, &sb) != 0); /* removed on exit */
    free(gen);
}

static void test_usage(void) {
    EL_CHECK(el_test_run_cli("serve", NULL, NULL) == 1);
    EL_CHECK(el_test_run_cli("serve " STORIES_BIN " --threads x", NULL, NULL) == 1);
    EL_CHECK(el_test_run_cli("serve " STORIES_BIN " --bogus", NULL, NULL) == 1);
    /* An arena too small: 3 before any request is read. */
    EL_CHECK(el_test_run_cli("serve " STORIES_BIN " --arena 64K", NULL, NULL) == 3);
    /* EOF at once: exit 0, nothing on stdout. */
    char *out = NULL;
    EL_CHECK(el_test_run_cli("serve " STORIES_BIN " --arena 16M --device cpu", &out, NULL) == 0);
    EL_CHECK(out && out[0] == 0);
    free(out);
    /* A regular file where the socket should go: 1, the file is untouched. */
    const char *f = el_test_path("not_a_socket");
    EL_CHECK(el_test_write_file(f, "keep", 4));
    char args[1024];
    snprintf(args, sizeof args, "serve " STORIES_BIN " --arena 16M --device cpu --socket %s", f);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 1);
    size_t n = 0;
    char *kept = el_test_read_file(f, &n);
    EL_CHECK(kept && n == 4);
    free(kept);
}

int main(void) {
    fixture_require_stories();
    test_usage();
    test_greedy_matches_generate();
    test_malformed();
    test_sigterm_mid_request();
    test_vmhwm_flat();
    test_socket();
    return el_test_finish("test_serve");
}
