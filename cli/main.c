/* main.c - the `edgeload` command: dispatches to the subcommands in cli/cmd_*.c. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct el_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} el_cmd;

static const el_cmd k_cmds[] = {
    {"inspect", el_cmd_inspect, "list a model's files, tensors, dtypes, shapes and bytes"},
    {"plan", el_cmd_plan, "show the memory plan; exit 3 if it does not fit --arena"},
    {"load", el_cmd_load, "load the weights into the arena and report memory and speed"},
    {"generate", el_cmd_generate, "generate text from a prompt (streams to stdout)"},
    {"chat", el_cmd_chat, "chat with an instruct model through its chat template"},
    {"tokenize", el_cmd_tokenize, "print the token ids of a text"},
    {"embed", el_cmd_embed, "sentence embeddings from an encoder (BERT)"},
    {"classify", el_cmd_classify, "classify texts with an encoder's classification head"},
    {"pack", el_cmd_pack, "pack a model into a flashable .elimg image or a GGUF file"},
    {"verify", el_cmd_verify, "check every CRC of an .elimg image"},
    {"flash", el_cmd_flash, "write an image to a device, partition or file and verify it"},
    {"serve", el_cmd_serve, "load once, answer JSON-line requests until stopped"},
    {"devices", el_cmd_devices, "list the GPUs this build can use (or say why none)"},
};

static void usage(FILE *f) {
    fprintf(f, "edgeload %s - model loader and inference runtime for fixed-memory devices\n\n"
               "usage: edgeload COMMAND [options]   (edgeload COMMAND --help for its options)\n\n"
               "commands:\n", EL_VERSION_STRING);
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", k_cmds[i].name, k_cmds[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 usage, 2 invalid or corrupt input, 3 does not fit (arena),\n"
               "            4 I/O error (also writing stdout), 5 requested device unavailable,\n"
               "            6 request longer than the context (prompt + -n past --ctx)\n");
}

/* What reached stdout must have been written: a full disk, a closed pipe (EPIPE: SIGPIPE
 * is ignored so the write fails instead of killing us) or an I/O error exits 4 with the
 * reason, never 0. Commands that stream check each write too (el_cli_stdout_ok). */
static int finish(int rc) {
    bool bad = !el_cli_stdout_flush();
    int e = el_cli_stdout_errno;
    if (fclose(stdout) != 0 && !bad) {
        bad = true;
        e = errno;
    }
    if (!bad) return rc;
    fprintf(stderr, "edgeload: error: writing to stdout failed: %s\n",
            e ? strerror(e) : "a write failed (full disk, closed pipe or I/O error)");
    return rc ? rc : 4;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return finish(0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("edgeload %s\n", EL_VERSION_STRING);
        return finish(0);
    }
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        if (!strcmp(argv[1], k_cmds[i].name)) return finish(k_cmds[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "edgeload: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 1;
}
