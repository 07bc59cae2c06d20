/* cmd_bert.c - placeholder until the command lands. */
#include "cli/cli.h"

int el_cmd_embed(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "edgeload: error: 'embed' is not implemented yet\n");
    return 1;
}
int el_cmd_classify(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "edgeload: error: 'classify' is not implemented yet\n");
    return 1;
}
