/* el_test_proc.c - child processes with pipes both ways, behind el_test_proc.h. */
#include "tests/support/el_test_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

bool el_test_proc_start(el_test_proc *p, const char *const *args, const char *err_path) {
    memset(p, 0, sizeof *p);
    p->pid = -1;
    p->in_fd = p->out_fd = -1;
    const char *cli = getenv("EL_CLI");
    char def[1024];
    if (!cli || !*cli) {
        snprintf(def, sizeof def, "%s/edgeload", EL_BINARY_DIR);
        cli = def;
    }
    const char *argv[64];
    size_t n = 0;
    argv[n++] = cli;
    for (size_t i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return false;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return false;
    }
    signal(SIGPIPE, SIG_IGN); /* a child that exits early is an EPIPE in the test */
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) dup2(fd, 2);
        }
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    return true;
}

bool el_test_proc_write(el_test_proc *p, const char *s, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(p->in_fd, s + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        done += (size_t)w;
    }
    return true;
}

long el_test_proc_readline(el_test_proc *p, char *line, size_t cap, int timeout_ms) {
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            size_t n = (size_t)(nl - p->buf);
            size_t k = n < cap - 1 ? n : cap - 1;
            memcpy(line, p->buf, k);
            line[k] = 0;
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            return (long)k;
        }
        if (p->len == sizeof p->buf) p->len = 0; /* a runaway line: drop it */
        int left = (int)(deadline - now_ms());
        if (left <= 0) return -2;
        struct pollfd pf = {p->out_fd, POLLIN, 0};
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -2;
        ssize_t got = read(p->out_fd, p->buf + p->len, sizeof p->buf - p->len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        p->len += (size_t)got;
    }
}

void el_test_proc_close_stdin(el_test_proc *p) {
    if (p->in_fd >= 0) close(p->in_fd);
    p->in_fd = -1;
}

int el_test_proc_wait(el_test_proc *p, int timeout_ms) {
    el_test_proc_close_stdin(p);
    if (p->pid < 0) return -1;
    double deadline = now_ms() + timeout_ms;
    int status = 0, rc = -1;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (r < 0 || now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (p->out_fd >= 0) close(p->out_fd);
    p->out_fd = -1;
    p->pid = -1;
    return rc;
}

int el_test_proc_kill_after(const char *const *argv, long delay_us) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    usleep((useconds_t)delay_us);
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

uint64_t el_test_proc_status_bytes(pid_t pid, const char *key) {
    char path[64], text[8192];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    size_t kl = strlen(key);
    for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, key, kl) && l[kl] == ':') return strtoull(l + kl + 1, NULL, 10) * 1024;
    }
    return 0;
}
