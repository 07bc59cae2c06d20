/* board.h - board profiles: the facts about one target board (memory, bandwidth, storage,
 * CPU, CUDA arch, default arena and threads) read from boards/NAME.json, validated field by
 * field into a typed struct. The file format is described in docs/BOARDS.md. */
#ifndef EL_CLI_BOARD_H
#define EL_CLI_BOARD_H

#include "edgeload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_BOARD_FILE_MAX (64u * 1024u) /* bytes; a board file is a page of facts */
#define EL_BOARD_STORAGE_MAX 8          /* storage kinds per board */
#define EL_BOARD_FEATURES_MAX 24        /* CPU feature names per board */
#define EL_BOARD_SCHEMA 1               /* the "schema" value this code reads */

typedef struct el_board_storage {
    char kind[32];       /* "nvme", "emmc", "microsd", "usb3-ssd", ... */
    double read_mb_s;    /* sequential read, MB/s (10^6 bytes per second), > 0 */
    char basis[16];      /* "datasheet", "interface" (bus limit) or "estimate" */
} el_board_storage;

typedef struct el_board {
    char name[64];                   /* [a-z0-9._-], equals the file's stem when looked up */
    char path[1024];                 /* the file it came from */
    uint64_t ram_total;              /* bytes of DRAM on the board */
    bool ram_shared_with_gpu;        /* one DRAM for CPU and GPU (Jetson) */
    uint64_t ram_typical_free;       /* bytes, MemAvailable after a headless boot */
    double mem_bandwidth_gb_s;       /* peak DRAM bandwidth, 10^9 bytes per second */
    el_board_storage storage[EL_BOARD_STORAGE_MAX];
    size_t storage_count;            /* >= 1 */
    char cpu_arch[16];               /* "aarch64" or "x86_64" */
    char cpu_model[64];              /* e.g. "Cortex-A78AE" */
    unsigned cpu_cores;              /* >= 1 */
    char cpu_features[EL_BOARD_FEATURES_MAX][24]; /* Linux /proc/cpuinfo flag names */
    size_t cpu_feature_count;
    char cuda_arch[16];              /* "sm_87", ...; "" when the board has no CUDA GPU */
    uint64_t default_arena;          /* bytes, <= ram_typical_free */
    unsigned default_threads;        /* 0 = all online CPUs; <= 64 */
} el_board;

/* Reads the board `spec`: a path to a .json file (contains '/' or ends in ".json"), or a
 * NAME looked up as NAME.json in, in order: each folder of $EDGELOAD_BOARDS (':'-separated),
 * <exe>/../share/edgeload/boards, <exe>/../boards (a build folder inside the repository)
 * and <exe>/boards, where <exe> is the folder holding the running executable.
 * Errors: EL_E_USAGE for an unknown name (the message lists the folders searched and the
 * boards found) or a missing file; EL_E_IO when it cannot be read; EL_E_INVALID for a file
 * that is not JSON, misses a field or has a field of the wrong type or range (the message
 * names the file and the field). *out is fully written on success only. */
el_status el_board_load(const char *spec, el_board *out);

/* Parses board JSON text (len bytes) named fname in messages. Same checks as above. */
el_status el_board_parse(const char *json, size_t len, const char *fname, el_board *out);

#endif /* EL_CLI_BOARD_H */
