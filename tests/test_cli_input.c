/* test_cli_input.c - bounded input and files read in place. Through the CLI in fresh
 * processes, their peak RSS taken from wait4 (the process and what it reaped):
 *  - embed with a 100 MB stdin line between two short ones: that line is refused naming
 *    --max-input (exit 6), the lines after it still embed (the same vector as alone), and
 *    the peak stays within the arena + 4 MiB over the binary's own footprint (the peak of
 *    `edgeload --version`); so do a 100 MB conversation to chat and a 100 KiB prompt to
 *    generate and tokenize (exit 6 each), and a 100 MB request line to serve (skipped, the
 *    next request answered). The peak bounds are checked natively (under an emulator or
 *    a sanitizer the peaks are theirs); everything else everywhere;
 *  - --max-input shows in plan, and moves the input buffers in and out of scratch;
 *  - an image's tokenizer.json is listed by plan and read in place: opening the image opens
 *    the image file and nothing else (no memfd), its side-file path is a window onto it,
 *    and a generate from the image gives the ids the source folder gives. */
// ctest-labels: cli;bert;image
// ctest-timeout: 60
#include "tests/support/el_test.h"

#include "loader/model_impl.h"
#include "platform/platform.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures"
#define MIB (1024.0 * 1024.0)

static const char *cli_path(void) {
    const char *c = getenv("EL_CLI");
    return c && *c ? c : EL_BINARY_DIR "/edgeload";
}

/* Runs cmd with /bin/sh (stdin /dev/null, stdout and stderr into *out and *err): the exit
 * code, and in *peak the peak RSS in bytes of the shell and what it reaped. */
static int run_peak(const char *cmd, uint64_t *peak, char **out, char **err) {
    char po[600], pe[600];
    snprintf(po, sizeof po, "%s/.run_out", el_test_tmpdir());
    snprintf(pe, sizeof pe, "%s/.run_err", el_test_tmpdir());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int i = open("/dev/null", O_RDONLY), o = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            e = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    EL_CHECK(pid > 0 && wait4(pid, &st, 0, &ru) == pid);
    *peak = (uint64_t)ru.ru_maxrss * 1024u;
    free(*out);
    free(*err);
    *out = el_test_read_file(po, NULL);
    *err = el_test_read_file(pe, NULL);
    if (!*out) *out = calloc(1, 1);
    if (!*err) *err = calloc(1, 1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The plan's total (the arena the CLI reserves) for "plan ARGS --json". */
static uint64_t plan_total(const char *args, char **out, char **err) {
    char cmd[2048];
    uint64_t peak;
    snprintf(cmd, sizeof cmd, "exec %s plan %s --json", cli_path(), args);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    const char *p = strstr(*out, "\"total\":");
    return p ? strtoull(p + 8, NULL, 10) : 0;
}

static uint64_t g_footprint; /* peak RSS of `edgeload --version`: the binary, libc */
static bool g_emulated;      /* under qemu (EL_EMULATOR): peaks are the emulator's */

static void check_bound(const char *what, uint64_t peak, uint64_t arena) {
    uint64_t bound = arena + g_footprint + (4u << 20);
    printf("%s: peak %.2f MiB; arena %.2f MiB + footprint %.2f MiB + 4 MiB = %.2f MiB\n", what,
           peak / MIB, arena / MIB, g_footprint / MIB, bound / MIB);
#ifndef EL_SANITIZED /* ASan's allocator and shadow grow with use, not with the input */
    if (!g_emulated) EL_CHECK(peak > 0 && peak <= bound); /* qemu's code cache grows too */
#endif
}

/* The first embedding object's "embedding":[...] text after index idx in s, or NULL. */
static char *embedding_of(const char *s, int idx) {
    char key[32];
    snprintf(key, sizeof key, "{\"index\":%d,", idx);
    const char *p = strstr(s, key);
    p = p ? strstr(p, "\"embedding\":[") : NULL;
    const char *e = p ? strchr(p, ']') : NULL;
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static void embed_huge_line(char **out, char **err) {
    const char *model = FIX "/hf_bert_base";
    char cmd[2048], args[700];
    uint64_t peak = 0, small_peak = 0;
    snprintf(args, sizeof args, "%s --batch 2", model);
    uint64_t arena = plan_total(args, out, err);
    /* Token ids (--ids): the tokenizer is not what this is about. */
    snprintf(cmd, sizeof cmd, "printf '1 4 3\\n' | exec %s embed %s --ids --json --batch 2",
             cli_path(), model);
    EL_CHECK(run_peak(cmd, &small_peak, out, err) == 0);
    char *alone = embedding_of(*out, 0);
    snprintf(cmd, sizeof cmd, "{ printf '1 2 3\\n'; head -c 100000000 /dev/zero | tr '\\0' 5; "
             "printf '\\n1 4 3\\n'; } | exec %s embed %s --ids --json --batch 2", cli_path(),
             model);
    int rc = run_peak(cmd, &peak, out, err);
    EL_CHECK(rc == 6);
    EL_CHECK(strstr(*err, "text 1 is 100000000 bytes, more than --max-input 4096"));
    EL_CHECK(strstr(*out, "{\"index\":1,\"bytes\":100000000,\"error\":"));
    char *first = embedding_of(*out, 0), *third = embedding_of(*out, 2);
    EL_CHECK(first && third && alone && !strcmp(third, alone));
    if (rc != 6) fprintf(stderr, "   embed: %.300s\n   %.300s\n", *out, *err);
    const char *h = strstr(*out, "\"vm_hwm\":");
    uint64_t hwm = h ? strtoull(h + 9, NULL, 10) : 0;
    printf("embed: VmHWM %llu in its report, %llu from wait4\n", (unsigned long long)hwm,
           (unsigned long long)peak);
    /* The kernel batches RSS counts per thread: the two may differ by a few pages. */
    EL_CHECK(hwm > 0 && hwm <= peak + (1u << 20));
    printf("embed: a one-line run peaks at %.2f MiB, with the 100 MB line %.2f MiB\n",
           small_peak / MIB, peak / MIB);
#ifndef EL_SANITIZED /* ASan's quarantine keeps freed blocks: its peaks grow with use */
    if (!g_emulated) EL_CHECK(peak <= small_peak + (1u << 20));
#endif
    check_bound("embed, 100 MB line", peak, arena);
    free(alone), free(first), free(third);

    /* Text mode: the refused line is an empty output line, so lines stay aligned. */
    snprintf(cmd, sizeof cmd, "{ head -c 5000 /dev/zero | tr '\\0' 5; printf '\\n1 4 3\\n'; } | "
             "exec %s embed %s --ids --max-input 4999", cli_path(), model);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 6);
    EL_CHECK((*out)[0] == '\n' && strchr(*out + 1, '\n') && strstr(*err, "--max-input 4999"));
    /* Raised, the same line is read and parsed. */
    snprintf(cmd, sizeof cmd, "{ head -c 5000 /dev/zero | tr '\\0' 5; printf '\\n'; } | "
             "exec %s embed %s --ids --max-input 5000", cli_path(), model);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 2); /* read whole: 555...5 is no token id */
    EL_CHECK(strstr(*err, "is not a token id") && !strstr(*err, "--max-input"));
}

/* A folder of the tiny Llama fixture with a chat template. */
static const char *chat_folder(void) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/chat", el_test_tmpdir());
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/hf_llama_gqa/config.json' "
             "'%s/hf_llama_gqa/model.safetensors' '%s/hf_llama_gqa/tokenizer.json' '%s/'", dir,
             FIX, FIX, FIX, dir);
    EL_CHECK(system(cmd) == 0);
    char path[700];
    static const char cfg[] = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", "
                              "\"chat_template\": \"{% for m in messages %}<{{ m.role }}>"
                              "{{ m.content }}{% endfor %}<assistant>\"}";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    EL_CHECK(el_test_write_file(path, cfg, strlen(cfg)));
    return dir;
}

static void chat_and_generate(char **out, char **err) {
    const char *dir = chat_folder();
    char cmd[2048];
    uint64_t peak = 0;
    uint64_t arena = plan_total(dir, out, err);
    snprintf(cmd, sizeof cmd, "{ printf '[{\"role\":\"user\",\"content\":\"'; head -c 100000000 "
             "/dev/zero | tr '\\0' a; printf '\"}]'; } | exec %s chat '%s' --temp 0 -n 2 --json",
             cli_path(), dir);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 6);
    EL_CHECK(strstr(*err, "the conversation on stdin is 100000030 bytes, more than --max-input"));
    check_bound("chat, 100 MB conversation", peak, arena);
    /* A short one still answers. */
    snprintf(cmd, sizeof cmd, "printf '[{\"role\":\"user\",\"content\":\"hi\"}]' | exec %s chat "
             "'%s' --temp 0 -n 2 --json", cli_path(), dir);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    EL_CHECK(strstr(*out, "\"prompt\":\"<user>hi<assistant>\""));

    /* serve: a 100 MB request line is answered with an error and skipped, the next one
     * is served. */
    snprintf(cmd, sizeof cmd, "{ head -c 100000000 /dev/zero | tr '\\0' a; printf '\\n{\"id\":2,"
             "\"prompt\":\"Hi\",\"max_tokens\":2}\\n'; } | exec %s serve '%s'", cli_path(), dir);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    EL_CHECK(strstr(*out, "\"error\":\"the request line is longer than 65536 bytes"));
    EL_CHECK(strstr(*out, "{\"id\":2,\"done\":true"));
    check_bound("serve, 100 MB request line", peak, arena);

    /* generate and tokenize: a 100 KiB argument (the kernel's limit for one is 128 KiB). */
    const char *st = EL_SOURCE_DIR "/assets/stories260K/stories260K.bin";
    arena = plan_total(st, out, err);
    snprintf(cmd, sizeof cmd, "exec %s generate %s -n 4 -p \"$(head -c 102400 /dev/zero | tr "
             "'\\0' a)\"", cli_path(), st);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 6);
    EL_CHECK(strstr(*err, "the prompt is 102400 bytes, more than --max-input 8192"));
    check_bound("generate, 100 KiB prompt", peak, arena);
    snprintf(cmd, sizeof cmd, "exec %s tokenize %s \"$(head -c 102400 /dev/zero | tr '\\0' a)\"",
             cli_path(), st);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 6);
    EL_CHECK(strstr(*err, "TEXT is 102400 bytes, more than --max-input 8192"));
}

static void plan_shows_input(char **out, char **err) {
    char cmd[2048];
    uint64_t peak;
    const char *st = EL_SOURCE_DIR "/assets/stories260K/stories260K.bin";
    snprintf(cmd, sizeof cmd, "exec %s plan %s", cli_path(), st);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    EL_CHECK(strstr(*out, "8.00 KiB  per text (--max-input"));
    /* In process: the default follows the context within its bounds, and el_plan_input
     * moves scratch and the total by whole pages. */
    el_model *m = NULL;
    el_plan p;
    el_plan_params pp;
    memset(&pp, 0, sizeof pp);
    pp.dtype = EL_DT_NONE;
    EL_CHECK_OK(el_model_open(st, NULL, &m));
    if (m) EL_CHECK_OK(el_plan_make(m, &pp, &p)); /* ctx 512: 16 bytes per token */
    EL_CHECK(m && p.max_input == 512u * EL_INPUT_BYTES_PER_TOKEN);
    EL_CHECK(m && p.input_bytes == 8192u + 64u + EL_INPUT_PIECE);
    el_model_close(m);
    m = NULL;
    pp.batch = 3;
    EL_CHECK_OK(el_model_open(FIX "/hf_bert_base", NULL, &m));
    if (m) EL_CHECK_OK(el_plan_make(m, &pp, &p)); /* ctx 32: the 4 KiB minimum */
    if (!m) return;
    EL_CHECK(p.max_input == EL_INPUT_MIN && p.params.batch == 3);
    EL_CHECK(p.input_bytes == 3u * (EL_INPUT_MIN + 64u) + EL_INPUT_PIECE);
    uint64_t scratch = p.region_bytes[EL_REGION_SCRATCH], total = p.total_bytes;
    EL_CHECK_OK(el_plan_input(m, 1u << 20, &p));
    EL_CHECK(p.max_input == 1u << 20 && p.input_bytes == 3u * ((1u << 20) + 64u) + EL_INPUT_PIECE);
    EL_CHECK(p.region_bytes[EL_REGION_SCRATCH] - scratch == p.total_bytes - total);
    EL_CHECK(p.region_bytes[EL_REGION_SCRATCH] % 4096 == 0);
    const uint64_t old_pages = (3u * (EL_INPUT_MIN + 64u) + EL_INPUT_PIECE + 4095) / 4096,
                   new_pages = (3u * ((1u << 20) + 64u) + EL_INPUT_PIECE + 4095) / 4096;
    EL_CHECK(p.region_bytes[EL_REGION_SCRATCH] - scratch == (new_pages - old_pages) * 4096);
    EL_CHECK_OK(el_plan_input(m, 0, &p));
    EL_CHECK(p.region_bytes[EL_REGION_SCRATCH] == scratch && p.total_bytes == total);
    EL_CHECK_STATUS(el_plan_input(m, EL_INPUT_LIMIT + 1, &p), EL_E_USAGE);
    el_model_close(m);
}

static int count_fds(bool *memfd) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[300], link[600];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(p, link, sizeof link - 1);
        if (k > 0) link[k] = 0;
        if (k > 0 && strstr(link, "memfd:")) *memfd = true;
        n++;
    }
    if (d) closedir(d);
    return n;
}

static void image_side_files(char **out, char **err) {
    const char *dir = chat_folder();
    char img[700], cmd[2048];
    uint64_t peak;
    snprintf(img, sizeof img, "%s/side.elimg", el_test_tmpdir());
    snprintf(cmd, sizeof cmd, "exec %s pack '%s' -o '%s'", cli_path(), dir, img);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    snprintf(cmd, sizeof cmd, "exec %s plan '%s'", cli_path(), img);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    EL_CHECK(strstr(*out, "tokenizer.json: read in place from the image"));
    EL_CHECK(strstr(*out, "tokenizer_config.json: read in place from the image"));
    snprintf(cmd, sizeof cmd, "exec %s plan '%s' --json", cli_path(), img);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    EL_CHECK(strstr(*out, "\"side_files\":[") && strstr(*out, "{\"name\":\"tokenizer.json\",\"bytes\":15123,"));
    uint64_t arena = plan_total(img, out, err);

    /* Same ids from the image as from the folder. */
    char *want = NULL;
    snprintf(cmd, sizeof cmd, "exec %s generate '%s' -p 'Hello world' -n 4 --temp 0 --json",
             cli_path(), dir);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    const char *p = strstr(*out, "\"prompt_ids\":");
    want = p ? strndup(p, strcspn(p, "]")) : NULL;
    snprintf(cmd, sizeof cmd, "exec %s generate '%s' -p 'Hello world' -n 4 --temp 0 --json",
             cli_path(), img);
    EL_CHECK(run_peak(cmd, &peak, out, err) == 0);
    p = strstr(*out, "\"prompt_ids\":");
    EL_CHECK(want && p && !strncmp(p, want, strlen(want)));
    check_bound("generate from an image", peak, arena);
    free(want);

    /* In process: the image file is the one descriptor opening adds, and the side file is a
     * window onto it with the stored bytes. */
    bool memfd = false;
    int before = count_fds(&memfd);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(img, NULL, &m));
    int after = count_fds(&memfd);
    printf("image open: %d descriptors before, %d after\n", before, after);
    EL_CHECK(after == before + 1 && !memfd);
    char path[1200];
    EL_CHECK(m && el_model_side_file(m, "tokenizer.json", path, sizeof path));
    EL_CHECK(!strncmp(path, EL_FILE_WINDOW, strlen(EL_FILE_WINDOW)));
    size_t n = 0;
    char *src = el_test_read_file(FIX "/hf_llama_gqa/tokenizer.json", &n);
    el_file f;
    EL_CHECK_OK(el_file_open(&f, path, 0));
    EL_CHECK(f.size == n && n == 15123);
    char *got = malloc(n);
    EL_CHECK_OK(el_file_read_at(&f, got, n, 0));
    EL_CHECK(src && !memcmp(got, src, n));
    EL_CHECK_STATUS(el_file_read_at(&f, got, 2, n - 1), EL_E_INVALID); /* past the window */
    EL_CHECK(strstr(el_last_error(), "tokenizer.json") && strstr(el_last_error(), "truncated"));
    el_file_close(&f);
    /* A window past the end of its file, and malformed ones, do not open. */
    char bad[1300];
    el_file_window_path(bad, sizeof bad, img, 1u << 30, 10, "x.json");
    EL_CHECK_STATUS(el_file_open(&f, bad, 0), EL_E_INVALID);
    EL_CHECK(!el_file_window_path(bad, sizeof bad, img, 0, 10, "a:b"));
    EL_CHECK(el_file_open(&f, EL_FILE_WINDOW "12+x:/nonexistent:n", 0) != EL_OK);
    /* A sibling looked up the way tokenizers do (the last path component replaced) is no
     * window, even with that file next to the image. */
    char sib[1300], cfg[700];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", el_test_tmpdir());
    EL_CHECK(el_test_write_file(cfg, "{}", 2));
    snprintf(sib, sizeof sib, "%.*stokenizer_config.json", (int)(strrchr(path, '/') + 1 - path),
             path);
    EL_CHECK(el_file_open(&f, sib, 0) != EL_OK);
    free(got), free(src);
    el_model_close(m);
}

int main(void) {
    char *out = NULL, *err = NULL;
    char cmd[1200];
    g_emulated = getenv("EL_EMULATOR") && *getenv("EL_EMULATOR");
    snprintf(cmd, sizeof cmd, "exec %s --version", cli_path());
    EL_CHECK(run_peak(cmd, &g_footprint, &out, &err) == 0);
    plan_shows_input(&out, &err);
    embed_huge_line(&out, &err);
    chat_and_generate(&out, &err);
    image_side_files(&out, &err);
    free(out), free(err);
    return el_test_finish("test_cli_input");
}
