/* el_test_proc.h - a child process of the CLI with pipes both ways (test code only): start
 * `edgeload ARGS...` with stdin and stdout piped to the test, write request lines, read
 * reply lines with a timeout, signal it, wait for its exit code, read its VmHWM; and a
 * program killed at a chosen moment. */
#ifndef EL_TEST_PROC_H
#define EL_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct el_test_proc {
    pid_t pid;          /* -1 when not running */
    int in_fd;          /* the child's stdin (write end); -1 once closed */
    int out_fd;         /* the child's stdout (read end) */
    char buf[1 << 17];  /* bytes read from out_fd, not yet returned as lines */
    size_t len;
} el_test_proc;

/* Starts the CLI ($EL_CLI, else EL_BINARY_DIR/edgeload) with args (NULL-terminated, without
 * the program name); the child's stderr goes to err_path (truncated) or is inherited when
 * NULL. False on failure. */
bool el_test_proc_start(el_test_proc *p, const char *const *args, const char *err_path);
/* Writes all of s to the child's stdin; false on failure. */
bool el_test_proc_write(el_test_proc *p, const char *s, size_t n);
/* The next line of the child's stdout (without the newline) into line (capacity cap,
 * longer lines are cut); returns its length, or -1 on EOF, -2 after timeout_ms. */
long el_test_proc_readline(el_test_proc *p, char *line, size_t cap, int timeout_ms);
void el_test_proc_close_stdin(el_test_proc *p);
/* Waits up to timeout_ms for the exit; returns the exit code, 128 + signal if it was
 * killed, or -1 on timeout (then it is killed with SIGKILL). Closes the pipes. */
int el_test_proc_wait(el_test_proc *p, int timeout_ms);
/* Runs argv (argv[0] the program's path; its stdout and stderr to /dev/null), sends it
 * SIGKILL after delay_us microseconds and reaps it: a crash at a random point. Returns its
 * wait status, or -1 when it could not be started. */
int el_test_proc_kill_after(const char *const *argv, long delay_us);
/* VmHWM / VmRSS of a running process in bytes (from /proc/PID/status), 0 if unknown. */
uint64_t el_test_proc_status_bytes(pid_t pid, const char *key);

#endif /* EL_TEST_PROC_H */
