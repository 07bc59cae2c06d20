/* test_serve_load.c - `edgeload serve --socket` under load, bounded: 45 fast clients x 20
 * requests each (one thread per client) while 5 hostile clients misbehave: one idle, one
 * that sends requests and never reads a reply, one 100 KB request line, one of garbage
 * lines, one that sends half a line and stops. Asserts every fast request is answered
 * within a bound (the --io-timeout a non-reading client may cost, plus slack), the hostile
 * ones get errors or are dropped, more connections than slots get "busy", VmHWM stays
 * flat, and SIGTERM in the middle of a long generation exits 0 within a second.
 * EL_SERVE_LOAD_REQUESTS=N runs N requests per fast client (a soak of minutes). */
// ctest-labels: serve;cli
// ctest-timeout: 120
#include "tests/llama_fixture.h"
#include "tests/support/el_test_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define N_FAST 45
static int M_REQ = 20; /* $EL_SERVE_LOAD_REQUESTS for a longer soak */
#define SLOTS 52
#define IO_TIMEOUT_S 1
/* A fast request waits at most for the generations queued before it (each a few ms) and
 * once for the non-reading client to be dropped (--io-timeout); the rest is slack for a
 * shared 2-core machine and the sanitizers. */
#define BOUND_MS (IO_TIMEOUT_S * 1000.0 + 4000.0)

static el_test_proc g_p;
static char g_sock[1024];

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int connect_sock(void) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", g_sock);
    for (int tries = 0; tries < 400; tries++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        if (fd >= 0) close(fd);
        sleep_ms(50);
    }
    return -1;
}

static bool send_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads lines until one containing "done" or "error" (or EOF/timeout): 1 done, 2 error,
 * 0 EOF, -1 timeout. buf/len carry bytes across calls. */
static int read_until_end(int fd, char *buf, size_t cap, size_t *len, int timeout_ms, char *last,
                          size_t last_cap) {
    double end = now_ms() + timeout_ms;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', *len))) {
            *nl = 0;
            int kind = strstr(buf, "\"done\":true") ? 1 : strstr(buf, "\"error\"") ? 2 : 3;
            if (kind != 3 && last) {
                size_t k = strlen(buf) < last_cap - 1 ? strlen(buf) : last_cap - 1;
                memcpy(last, buf, k);
                last[k] = 0;
            }
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, *len - used);
            *len -= used;
            if (kind != 3) return kind;
        }
        int left = (int)(end - now_ms());
        if (left <= 0) return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) return -1;
        ssize_t r = read(fd, buf + *len, cap - *len - 1);
        if (r <= 0) return 0;
        *len += (size_t)r;
    }
}

typedef struct fast_client {
    int index;
    int answered;
    double worst_ms, total_ms;
    char why[256];
} fast_client;

static void *fast_main(void *arg) {
    fast_client *fc = arg;
    int fd = connect_sock();
    if (fd < 0) {
        snprintf(fc->why, sizeof fc->why, "cannot connect");
        return NULL;
    }
    static __thread char buf[1 << 16];
    size_t len = 0;
    for (int k = 0; k < M_REQ; k++) {
        char req[256];
        int n = snprintf(req, sizeof req, "{\"id\":%d,\"prompt\":\"Once upon a time\",\"max_tokens\":%d}\n",
                         fc->index * 1000 + k, 4 + (k + fc->index) % 8);
        double t0 = now_ms();
        if (!send_all(fd, req, (size_t)n)) {
            snprintf(fc->why, sizeof fc->why, "request %d: send failed", k);
            break;
        }
        char last[512];
        int r = read_until_end(fd, buf, sizeof buf, &len, 30000, last, sizeof last);
        double ms = now_ms() - t0;
        if (r != 1) {
            snprintf(fc->why, sizeof fc->why, "request %d: %s after %.0f ms: %.120s", k,
                     r == 2 ? "error" : r == 0 ? "EOF" : "timeout", ms, r == 2 ? last : "");
            break;
        }
        fc->answered++;
        fc->total_ms += ms;
        if (ms > fc->worst_ms) fc->worst_ms = ms;
    }
    close(fd);
    return NULL;
}

static uint64_t status_bytes(const char *key) { return el_test_proc_status_bytes(g_p.pid, key); }

int main(void) {
    fixture_require_stories();
    const char *soak = getenv("EL_SERVE_LOAD_REQUESTS");
    if (soak && atoi(soak) > 0) M_REQ = atoi(soak);
    snprintf(g_sock, sizeof g_sock, "%s", el_test_path("load.sock"));
    char slots[16], io[16];
    snprintf(slots, sizeof slots, "%d", SLOTS);
    snprintf(io, sizeof io, "%d", IO_TIMEOUT_S);
    const char *args[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", "--threads", "1",
                          "--socket", g_sock, "--max-clients", slots, "--io-timeout", io,
                          "--idle-timeout", M_REQ > 100 ? "36000" : "60", NULL};
    EL_CHECK(el_test_proc_start(&g_p, args, el_test_path("serve.err")));
    int warm = connect_sock();
    EL_CHECK(warm >= 0);
    static char wbuf[1 << 16];
    size_t wlen = 0;
    const char *w = "{\"id\":0,\"prompt\":\"Lily\",\"max_tokens\":4}\n";
    EL_CHECK(send_all(warm, w, strlen(w)) && read_until_end(warm, wbuf, sizeof wbuf, &wlen, 30000, NULL, 0) == 1);
    close(warm);
    uint64_t hwm0 = status_bytes("VmHWM");

    /* The hostile five. */
    int idle = connect_sock();
    int noread = connect_sock();
    int big = connect_sock();
    int garbage = connect_sock();
    int partial = connect_sock();
    EL_CHECK(idle >= 0 && noread >= 0 && big >= 0 && garbage >= 0 && partial >= 0);
    /* Never reads: enough long requests to fill its socket buffers several times over. */
    int nb = fcntl(noread, F_GETFL);
    fcntl(noread, F_SETFL, nb | O_NONBLOCK);
    for (int k = 0; k < 400; k++) {
        char req[128];
        int n = snprintf(req, sizeof req, "{\"id\":%d,\"prompt\":\"Once\",\"max_tokens\":400}\n", k);
        if (write(noread, req, (size_t)n) != n) break;
    }
    const char *half = "{\"id\":1,\"prompt\":\"Once up";
    EL_CHECK(send_all(partial, half, strlen(half)));

    fast_client fc[N_FAST];
    pthread_t th[N_FAST];
    memset(fc, 0, sizeof fc);
    double t0 = now_ms();
    for (int i = 0; i < N_FAST; i++) {
        fc[i].index = i + 1;
        EL_CHECK(pthread_create(&th[i], NULL, fast_main, &fc[i]) == 0);
    }
    /* Meanwhile: a 100 KB line and garbage lines, each answered with an error. */
    char *huge = malloc(100001);
    memset(huge, 'x', 100000);
    huge[100000] = '\n';
    static char hbuf[1 << 16];
    size_t hlen = 0;
    char last[512];
    EL_CHECK(send_all(big, huge, 100001));
    free(huge);
    EL_CHECK(read_until_end(big, hbuf, sizeof hbuf, &hlen, 30000, last, sizeof last) == 2 &&
             strstr(last, "longer than"));
    static const char *const junk[] = {"\x01\x02\x03 not json", "{\"id\":5,\"prompt\":", "[1,2,3]",
                                       "{\"id\":6,\"prompt\":\"x\",\"max_tokens\":1e9}", "\xff\xfe\xfd"};
    int junk_errors = 0;
    for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++) {
        hlen = 0;
        EL_CHECK(send_all(garbage, junk[k], strlen(junk[k])) && send_all(garbage, "\n", 1));
        junk_errors += read_until_end(garbage, hbuf, sizeof hbuf, &hlen, 30000, NULL, 0) == 2;
    }
    EL_CHECK(junk_errors == (int)(sizeof junk / sizeof junk[0]));
    for (int i = 0; i < N_FAST; i++) pthread_join(th[i], NULL);
    double wall = now_ms() - t0;
    int answered = 0, failed = 0;
    double worst = 0, total = 0;
    for (int i = 0; i < N_FAST; i++) {
        answered += fc[i].answered;
        total += fc[i].total_ms;
        if (fc[i].worst_ms > worst) worst = fc[i].worst_ms;
        if (fc[i].why[0]) {
            fprintf(stderr, "   fast client %d: %s\n", fc[i].index, fc[i].why);
            failed++;
        }
    }
    printf("   %d fast clients x %d requests: %d answered in %.2f s, mean %.1f ms, worst %.0f ms "
           "(bound %.0f ms)\n", N_FAST, M_REQ, answered, wall / 1e3, answered ? total / answered : 0,
           worst, BOUND_MS);
    EL_CHECK(failed == 0 && answered == N_FAST * M_REQ);
    EL_CHECK(worst < BOUND_MS);

    /* The half line: dropped with a timeout error after --io-timeout. */
    hlen = 0;
    EL_CHECK(read_until_end(partial, hbuf, sizeof hbuf, &hlen, 10000, last, sizeof last) == 2 &&
             strstr(last, "timeout"));
    /* The idle client is still connected (60 s idle timeout): nothing was sent to it. */
    struct pollfd ip = {idle, POLLIN, 0};
    EL_CHECK(poll(&ip, 1, 0) == 0);

    /* More connections than free slots: the extra ones are told "busy" and closed. */
    int extra[SLOTS + 8], busy = 0;
    for (int i = 0; i < SLOTS + 8; i++) extra[i] = connect_sock();
    sleep_ms(1000); /* serve accepts them all; the ones past the slots get their line */
    for (int i = 0; i < SLOTS + 8; i++) {
        if (extra[i] < 0) continue;
        hlen = 0;
        if (read_until_end(extra[i], hbuf, sizeof hbuf, &hlen, 20, last, sizeof last) == 2 &&
            strstr(last, "busy"))
            busy++;
    }
    printf("   %d extra connections with %d slots: %d told busy\n", SLOTS + 8, SLOTS, busy);
    EL_CHECK(busy >= 8);
    for (int i = 0; i < SLOTS + 8; i++)
        if (extra[i] >= 0) close(extra[i]);

    uint64_t hwm1 = status_bytes("VmHWM");
    printf("   VmHWM %llu -> %llu bytes (%+lld)\n", (unsigned long long)hwm0, (unsigned long long)hwm1,
           (long long)hwm1 - (long long)hwm0);
#ifdef EL_SANITIZED
    EL_CHECK(hwm1 <= hwm0 + 2u * 1024u * 1024u);
#else
    EL_CHECK(hwm1 <= hwm0 + 256u * 1024u);
#endif

    /* SIGTERM during a long generation for a reading client: exit 0 within a second. */
    int longc = connect_sock();
    const char *lr = "{\"id\":9,\"prompt\":\"Once upon a time\",\"max_tokens\":500}\n";
    EL_CHECK(longc >= 0 && send_all(longc, lr, strlen(lr)));
    char one[64];
    struct pollfd lp = {longc, POLLIN, 0};
    EL_CHECK(poll(&lp, 1, 30000) == 1 && read(longc, one, sizeof one) > 0);
    double ts = now_ms();
    EL_CHECK(kill(g_p.pid, SIGTERM) == 0);
    int rc = el_test_proc_wait(&g_p, 5000);
    double stop_ms = now_ms() - ts;
    printf("   SIGTERM mid-generation: exit %d after %.0f ms\n", rc, stop_ms);
    EL_CHECK(rc == 0 && stop_ms < 1000);
    char *err = el_test_read_file(el_test_path("serve.err"), NULL);
    EL_CHECK(err && strstr(err, "stopped by a signal"));
    if (err) {
        char *sv = strstr(err, "edgeload: served");
        if (sv) printf("   %s", sv);
    }
    free(err);
    close(longc);
    /* A silent connection is closed after --idle-timeout, with a line saying so. */
    const char *args2[] = {"serve", STORIES_BIN, "--arena", "16M", "--device", "cpu", "--socket",
                           g_sock, "--idle-timeout", "1", NULL};
    EL_CHECK(el_test_proc_start(&g_p, args2, el_test_path("serve2.err")));
    int quiet = connect_sock();
    double tq = now_ms();
    hlen = 0;
    EL_CHECK(quiet >= 0 && read_until_end(quiet, hbuf, sizeof hbuf, &hlen, 10000, last, sizeof last) == 2 &&
             strstr(last, "idle"));
    double idle_ms = now_ms() - tq;
    printf("   --idle-timeout 1: a silent connection closed after %.0f ms\n", idle_ms);
    EL_CHECK(idle_ms >= 900 && idle_ms < 5000);
    close(quiet);
    EL_CHECK(kill(g_p.pid, SIGTERM) == 0 && el_test_proc_wait(&g_p, 5000) == 0);
    close(idle);
    close(noread);
    close(big);
    close(garbage);
    close(partial);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_serve_load");
}
