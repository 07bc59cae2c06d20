/* llama_detok.c - a driver for scripts/fixtures_spm.py: llama.cpp's own llama_detokenize
 * (remove_special false, unparse_special false: what a generation loop shows) on id lists.
 * Built by the script against a llama.cpp build (include/llama.h, libllama.so); not part of
 * edgeload. Usage: llama_detok MODEL.gguf < lines of space-separated ids; prints one line of
 * hex per input line. */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)level, (void)text, (void)user;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    static char line[1 << 16], out[1 << 16];
    static llama_token ids[1 << 14];
    while (fgets(line, sizeof line, stdin)) {
        int n = 0;
        for (char *p = strtok(line, " \n"); p && n < (1 << 14); p = strtok(NULL, " \n"))
            ids[n++] = atoi(p);
        int k = llama_detokenize(vocab, ids, n, out, sizeof out, false, false);
        if (k < 0) return 1;
        for (int i = 0; i < k; i++) printf("%02x", (unsigned char)out[i]);
        printf("\n");
    }
    llama_model_free(model);
    return 0;
}
