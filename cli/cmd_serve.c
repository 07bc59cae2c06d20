/* cmd_serve.c - placeholder until the command lands. */
#include "cli/cli.h"

int el_cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "edgeload: error: 'serve' is not implemented yet\n");
    return 1;
}
