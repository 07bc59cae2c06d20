/* cli.h - shared pieces of the `edgeload` command: common model options, the
 * open -> plan -> check -> arena -> load sequence every model command runs, reports and
 * error printing. Each subcommand lives in cli/cmd_<name>.c and is listed in cli/main.c. */
#ifndef EL_CLI_H
#define EL_CLI_H

#include "edgeload.h"

#include <stdbool.h>
#include <stdio.h>

/* Options shared by model commands (inspect, plan, load, generate, ...). */
typedef struct el_cli_opts {
    const char *model;          /* positional MODEL */
    uint64_t arena;             /* --arena SIZE (0 = not given) */
    el_plan_params plan;        /* --ctx, --batch, --dtype, --chunk */
    bool json;                  /* --json */
    int progress;               /* --progress 1 / --no-progress 0 / auto -1 */
    bool direct_io;             /* --direct */
    const char *tokenizer;      /* --tokenizer FILE */
    unsigned arena_flags;       /* --mlock, --hugepages */
    uint64_t offset;            /* --offset BYTES: an image inside a partition/device */
    const char *board;          /* --board NAME: defaults from boards/NAME.json */
    el_device device;           /* --device auto|cpu|cuda (default auto) */
    el_cuda_memory cuda_memory; /* --cuda-memory auto|managed|device */
    bool no_cuda_graph;         /* --no-cuda-graph: decode steps launch kernels one by one */
    bool runs;                  /* set by commands that run the model: el_cli_load resolves
                                   --device and reserves the arena where it will run */
    uint64_t max_input;         /* --max-input BYTES (0 = the plan's default from --ctx) */
    el_stream_mode stream;      /* --stream auto|on|off (default off) */
    uint32_t stream_slots;      /* --slots N (0: EL_STREAM_SLOTS) */
    uint32_t pin_layers;        /* --pin-layers K|auto (default 0) */
    el_numerics numerics;       /* --numerics auto|exact|ggml (default auto) */
} el_cli_opts;

void el_cli_opts_init(el_cli_opts *o);
/* el_plan_stream_ex with --stream, --slots, --pin-layers and --direct. */
el_status el_cli_plan_stream(const el_cli_opts *o, const el_model *m, uint64_t arena,
                             el_plan *p);
/* Tries to consume the common option at argv[*i] (and its value, advancing *i).
 * Returns 1 if consumed, 0 if argv[*i] is not a common option, -1 on a bad value
 * (message printed to stderr). */
int el_cli_parse_common(int argc, char **argv, int *i, el_cli_opts *o);
/* Refuses an option given twice (aliases count as one: -p/--prompt, -n/--steps,
 * -o/--output, --progress/--no-progress): prints the usage error and returns 1; 0 for a
 * first use or a non-option argument. Commands call it on every option they consume. */
int el_cli_once(const char *arg);
/* Where the image in path starts: *offset (--offset) when non-zero, else the active slot
 * of an A/B layout (docs/FORMAT.md) when path has one, else 0. EL_E_INVALID (message set)
 * when path has an A/B header and neither copy is valid. */
el_status el_cli_resolve_offset(const char *path, uint64_t *offset);
/* --offset BYTES: a size as el_size_parse, or 0. */
int el_cli_parse_offset(const char *v, uint64_t *out);
/* Prints the common options' help lines. */
void el_cli_common_help(FILE *f);


/* Prints "edgeload: error: <el_last_error() or status text>" to stderr; returns the exit
 * code for s. */
int el_cli_fail(el_status s);
/* Prints "edgeload: usage: ..." to stderr; returns 1. */
int el_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A model opened, planned and loaded into its arena. */
typedef struct el_cli_loaded {
    el_model *model;
    el_plan plan;
    uint64_t arena_bytes;
    el_arena *arena;
    el_load_stats stats;
    double t_start;             /* el_now() before open: time to first token counts from it */
    unsigned board_threads;     /* --board's default_threads (0 = none / all online CPUs);
                                   commands use it when --threads is not given */
    el_device device;           /* where the model runs (o->runs): the CPU or CUDA */
    bool no_cuda_graph;         /* --no-cuda-graph (el_session_params.no_cuda_graph) */
} el_cli_loaded;

/* With o->runs, first resolves --device for the opened model (printing "edgeload: device:
 * <which> (<why>)" unless --device cpu) and plans for that device's memory; --device auto
 * falls back to the CPU, saying so, when the GPU arena cannot be reserved; --device cuda
 * then exits 5 with requested and free bytes.
 * Reads --board when given (its default_arena and default_threads become the defaults),
 * opens o->model, plans (--ctx/--dtype/...), checks the plan against --arena (default: the
 * board's default_arena, else the plan's total), warns when the arena exceeds MemAvailable, reserves the arena, loads with a
 * progress bar when asked. On failure prints the error, cleans up and returns the exit code
 * (so callers `return rc;`); 0 on success. */
int el_cli_load(const el_cli_opts *o, el_cli_loaded *out);
void el_cli_unload(el_cli_loaded *l);
/* The memory report: arena reserved/used/peak per region, VmHWM, bytes read, seconds, MB/s.
 * Human-readable to f, or one JSON object when json. */
void el_cli_memory_report(FILE *f, const el_cli_loaded *l, bool json);

/* Bounded input (cli/input.c). The plan puts n text buffers of max_input + 1 bytes and
 * one EL_INPUT_PIECE read buffer in scratch; input is read from fd in pieces, so a line
 * longer than the limit is counted and skipped without ever being held. */
typedef struct el_cli_input {
    uint64_t max;       /* bytes of one text (the plan's max_input) */
    uint32_t ctx;       /* the plan's context, for messages */
    char **text;        /* [n] buffers of max + 1 bytes (NUL-terminated texts), in scratch */
    uint32_t n;
    int fd;             /* where the input comes from (stdin) */
    char *piece;        /* [EL_INPUT_PIECE] bytes read from fd; [pos, len) not handed out */
    size_t pos, len;
    bool eof;
    int err;            /* errno of a failed read, else 0 */
} el_cli_input;

/* Carves n text buffers and the read piece from the scratch region of L's arena (the plan
 * counted them for n <= its batch). 0, or the exit code after printing why. */
int el_cli_input_init(const el_cli_loaded *L, uint32_t n, int fd, el_cli_input *in);
/* The next line of fd (its '\n' and a trailing '\r' dropped) into text[slot]: 1 with *len;
 * 0 at the end of the input; -1 on a read error (in->err); 2 when the line is longer than
 * max: skipped to its end in bounded memory, *len its length (saturating). */
int el_cli_input_line(el_cli_input *in, uint32_t slot, size_t *len);
/* All of the rest of fd into text[0] (NUL-terminated): 1 with *len; -1 on a read error; 2
 * when it is longer than max (read to its end in bounded memory, *len its length). */
int el_cli_input_all(el_cli_input *in, size_t *len);
/* Checks a text of len bytes against max_input: 0, or EL_E_TOOLONG's exit code after
 * printing "<what> is N bytes, more than --max-input M ..." to stderr. */
int el_cli_input_check(uint64_t max_input, uint32_t ctx, const char *what, uint64_t len);

/* Writes s as a JSON string literal (quotes, escapes; s is valid UTF-8). */
/* fflush(stdout); false once any write to stdout has failed (the first failure's errno is
 * kept in el_cli_stdout_errno for main's message, 0 if unknown). */
bool el_cli_stdout_flush(void);
extern int el_cli_stdout_errno;
void el_cli_json_string(FILE *f, const char *s);

/* Subcommands: argv[0] is the subcommand name. Return the process exit code. */
int el_cmd_inspect(int argc, char **argv);
int el_cmd_plan(int argc, char **argv);
int el_cmd_load(int argc, char **argv);
int el_cmd_generate(int argc, char **argv);
int el_cmd_chat(int argc, char **argv);
/* Parses option opt's value v as a number in [lo, hi] into *out: 0, or the usage exit code
 * (1) after printing why. */
int el_cli_parse_num(const char *opt, const char *v, double lo, double hi, double *out);
/* The sampling and length options generate and chat share. */
typedef struct el_cli_gen {
    double steps, temp, top_k, top_p, seed, threads; /* seed < 0: from the clock */
} el_cli_gen;
/* Option a with value v if it is one of -n/--steps, --temp, --top-k, --top-p, --seed,
 * --threads: 0 (value consumed) or the usage exit code; -1 if a is none of them. */
int el_cli_parse_gen(const char *a, const char *v, el_cli_gen *g);
/* Checks the whole-number options and fills *sp: 0, or the usage exit code. */
int el_cli_gen_finish(const el_cli_gen *g, el_sampler_params *sp);
int el_cmd_tokenize(int argc, char **argv);
int el_cmd_embed(int argc, char **argv);    /* cli/cmd_bert.c */
int el_cmd_classify(int argc, char **argv); /* cli/cmd_bert.c */
int el_cmd_pack(int argc, char **argv);     /* cli/cmd_image.c */
int el_cmd_verify(int argc, char **argv);   /* cli/cmd_image.c */
int el_cmd_flash(int argc, char **argv);    /* cli/cmd_image.c */
int el_cmd_serve(int argc, char **argv);    /* cli/cmd_serve.c */
int el_cmd_devices(int argc, char **argv);  /* cli/cmd_devices.c */
/* inspect's image part (cli/cmd_image.c): header, codec statistics, chunks; a no-op for a
 * model that is not an image. With json, the member ,"image":{...} of inspect's object. */
void el_cli_inspect_image(const el_model *m, bool json);
/* plan's lines for the files stored inside an image (tokenizer, config, chat template):
 * name, bytes, and that they are read in place from the image; with json the member
 * ,"side_files":[...]. Nothing for a model that is not an image. (cli/cmd_image.c) */
void el_cli_plan_side_files(const el_model *m, bool json);
/* The GGUF part of inspect (metadata); nothing for other formats. */
void el_cli_inspect_gguf(const el_model *m, bool json);

#endif /* EL_CLI_H */
