/* cmd_image.c - placeholder until the command lands. */
#include "cli/cli.h"

int el_cmd_pack(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "edgeload: error: 'pack' is not implemented yet\n");
    return 1;
}
int el_cmd_verify(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "edgeload: error: 'verify' is not implemented yet\n");
    return 1;
}
int el_cmd_flash(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "edgeload: error: 'flash' is not implemented yet\n");
    return 1;
}
