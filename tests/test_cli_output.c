/* test_cli_output.c - output errors are errors: generate, tokenize, embed, verify and
 * inspect with stdout on a full device (/dev/full: ENOSPC) or a pipe nobody reads (EPIPE,
 * SIGPIPE ignored) exit 4 with a message on stderr, never 0 and never killed by a signal. */
// ctest-labels: quick
#include "tests/image_common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs the CLI with argv (NULL-terminated, without the program) and stdout on out_fd;
 * stderr into *err. Returns the exit code, 128 + signal when killed. */
static int run_to(int out_fd, char **err, const char *const *argv) {
    const char *bin = getenv("EL_CLI");
    if (!bin) bin = EL_BINARY_DIR "/edgeload";
    const char *errp = el_test_path("stderr.txt");
    pid_t pid = fork();
    if (pid == 0) {
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out_fd, 1);
        dup2(e, 2);
        signal(SIGPIPE, SIG_DFL); /* as a shell would start it */
        const char *args[32];
        int n = 0;
        args[n++] = bin;
        for (; argv[n - 1] && n < 31; n++) args[n] = argv[n - 1];
        args[n] = NULL;
        execv(bin, (char *const *)args);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (err) *err = el_test_read_file(errp, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check(const char *what, const char *const *argv) {
    int full = open("/dev/full", O_WRONLY);
    if (full < 0) {
        printf("   %s: /dev/full missing, skipped\n", what);
        return;
    }
    char *err = NULL;
    int rc = run_to(full, &err, argv);
    close(full);
    if (rc != 4 || !err || !strstr(err, "No space left")) {
        fprintf(stderr, "   %s > /dev/full: exit %d: %s\n", what, rc, err ? err : "");
        EL_CHECK(false);
    }
    free(err);
    /* A pipe whose reader is gone: EPIPE, not death by SIGPIPE. */
    int p[2];
    EL_CHECK(pipe(p) == 0);
    close(p[0]);
    rc = run_to(p[1], &err, argv);
    close(p[1]);
    if (rc != 4 || !err || !strstr(err, "Broken pipe")) {
        fprintf(stderr, "   %s | closed pipe: exit %d: %s\n", what, rc, err ? err : "");
        EL_CHECK(false);
    }
    free(err);
    /* The same command to a file: exit 0. */
    int f = open(el_test_path("out.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EL_CHECK(run_to(f, NULL, argv) == 0);
    close(f);
}

int main(void) {
    const char *stories = img_stories();
    char img[1200], src[1200], bert[1200];
    snprintf(src, sizeof src, "%s", el_test_path("a.safetensors"));
    snprintf(img, sizeof img, "%s", el_test_path("a.elimg"));
    snprintf(bert, sizeof bert, "%s/tests/fixtures/hf_bert_base", EL_SOURCE_DIR);
    EL_CHECK(el_test_write_safetensors(src, k_img_tensors, IMG_NTENSORS, 5));
    el_image_pack_params pp = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_LZ4, .chunk_bytes = 65536};
    EL_CHECK_OK(el_image_pack(src, img, &pp, NULL));
    if (stories) {
        const char *gen[] = {"generate", stories, "-n", "40", "--temp", "0", "--device", "cpu", NULL};
        check("generate", gen);
        const char *genj[] = {"generate", stories, "-n", "5", "--json", "--device", "cpu", NULL};
        check("generate --json", genj);
        const char *tok[] = {"tokenize", stories, "Once upon a time", NULL};
        check("tokenize", tok);
    } else {
        printf("   stories260K not found: generate and tokenize skipped\n");
    }
    const char *emb[] = {"embed", bert, "--ids", "--device", "cpu", "2 7 9 3", NULL};
    check("embed", emb);
    const char *ver[] = {"verify", img, NULL};
    check("verify", ver);
    const char *ins[] = {"inspect", img, NULL};
    check("inspect", ins);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_cli_output");
}
