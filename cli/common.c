/* common.c - what every model command shares: options, the open -> plan -> check ->
 * arena -> load sequence, the progress bar, the memory report, error printing. */
#include "cli/cli.h"

#include "cli/board.h"
#include "loader/image.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void el_cli_opts_init(el_cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->plan.dtype = EL_DT_NONE;
    o->plan.kv_dtype = EL_DT_NONE; /* the default: f16 */
    o->progress = -1;
    o->device = EL_DEVICE_AUTO;
}

static int parse_u32(const char *opt, const char *v, uint32_t min, uint32_t *out) {
    char *end;
    if (!v || !*v || *v == '-') return el_cli_usage("%s needs a number", opt), -1;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || x < min || x > UINT32_MAX)
        return el_cli_usage("%s %s: expected an integer >= %u", opt, v, min), -1;
    *out = (uint32_t)x;
    return 1;
}

static const char *canonical(const char *a) {
    static const char *const alias[][2] = {
        {"-p", "--prompt"}, {"-n", "--steps"}, {"-o", "--output"}, {"--no-progress", "--progress"},
    };
    for (size_t k = 0; k < sizeof alias / sizeof alias[0]; k++)
        if (!strcmp(a, alias[k][0])) return alias[k][1];
    return a;
}

int el_cli_once(const char *arg) {
    /* One command per process: the options it consumed, by name and by argv slot (the
     * same slot checked twice is one use). */
    static const char *seen[64], *slot[64];
    static unsigned n_seen;
    if (!arg || arg[0] != '-' || !arg[1] || !strcmp(arg, "--")) return 0;
    const char *c = canonical(arg);
    for (unsigned k = 0; k < n_seen; k++)
        if (slot[k] == arg) return 0;
    for (unsigned k = 0; k < n_seen; k++)
        if (!strcmp(seen[k], c)) {
            if (!strcmp(slot[k], arg))
                return el_cli_usage("%s given twice: give each option once", arg);
            return el_cli_usage("%s given after %s: they set the same thing; give it once", arg,
                                slot[k]);
        }
    if (n_seen < sizeof seen / sizeof seen[0]) {
        slot[n_seen] = arg;
        seen[n_seen++] = c;
    }
    return 0;
}

el_status el_cli_resolve_offset(const char *path, uint64_t *offset) {
    if (*offset || !path) return EL_OK;
    el_status s = el_image_ab_resolve(path, offset, NULL);
    /* Folders and unreadable paths are the model open's to report. */
    return s == EL_E_INVALID ? s : EL_OK;
}

int el_cli_parse_offset(const char *v, uint64_t *out) {
    if (v && !strcmp(v, "0")) { /* the image starts at the beginning: allowed, like any offset */
        *out = 0;
        return 0;
    }
    if (el_size_parse(v, out) != EL_OK) return el_cli_usage("--offset: %s", el_last_error());
    return 0;
}

int el_cli_parse_common(int argc, char **argv, int *i, el_cli_opts *o) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (el_cli_once(a)) return -1;
#define NEED_VALUE()                                                  \
    do {                                                              \
        if (!v) return el_cli_usage("%s needs a value", a), -1;       \
        (*i)++;                                                       \
    } while (0)
    if (!strcmp(a, "--arena")) {
        NEED_VALUE();
        if (el_size_parse(v, &o->arena) != EL_OK) return el_cli_usage("--arena: %s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--chunk")) {
        NEED_VALUE();
        if (el_size_parse(v, &o->plan.chunk_bytes) != EL_OK)
            return el_cli_usage("--chunk: %s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--ctx")) {
        NEED_VALUE();
        return parse_u32(a, v, 1, &o->plan.ctx);
    }
    if (!strcmp(a, "--batch")) {
        NEED_VALUE();
        return parse_u32(a, v, 1, &o->plan.batch);
    }
    if (!strcmp(a, "--dtype")) {
        NEED_VALUE();
        if (el_dtype_parse(v, &o->plan.dtype) != EL_OK) return el_cli_usage("--dtype: %s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--kv-dtype")) {
        NEED_VALUE();
        if (el_dtype_parse(v, &o->plan.kv_dtype) != EL_OK)
            return el_cli_usage("--kv-dtype: %s", el_last_error()), -1;
        if (o->plan.kv_dtype != EL_DT_F32 && o->plan.kv_dtype != EL_DT_F16)
            return el_cli_usage("--kv-dtype %s: the KV cache holds f32 or f16", v), -1;
        return 1;
    }
    if (!strcmp(a, "--stream")) {
        NEED_VALUE();
        if (el_stream_parse(v, &o->stream) != EL_OK) return el_cli_usage("%s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--slots")) {
        NEED_VALUE();
        return parse_u32(a, v, 2, &o->stream_slots);
    }
    if (!strcmp(a, "--pin-layers")) {
        NEED_VALUE();
        if (!strcmp(v, "auto")) return o->pin_layers = EL_STREAM_PIN_AUTO, 1;
        return parse_u32(a, v, 0, &o->pin_layers);
    }
    if (!strcmp(a, "--offset")) {
        NEED_VALUE();
        return el_cli_parse_offset(v, &o->offset) ? -1 : 1;
    }
    if (!strcmp(a, "--device")) {
        NEED_VALUE();
        if (el_device_parse(v, &o->device) != EL_OK)
            return el_cli_usage("--device: %s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--cuda-memory")) {
        NEED_VALUE();
        if (el_cuda_memory_parse(v, &o->cuda_memory) != EL_OK)
            return el_cli_usage("--cuda-memory: %s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--max-input")) {
        NEED_VALUE();
        if (el_size_parse(v, &o->max_input) != EL_OK)
            return el_cli_usage("--max-input: %s", el_last_error()), -1;
        if (o->max_input > EL_INPUT_LIMIT)
            return el_cli_usage("--max-input %s: at most 1G", v), -1;
        return 1;
    }
    if (!strcmp(a, "--numerics")) {
        NEED_VALUE();
        if (el_numerics_parse(v, &o->numerics) != EL_OK)
            return el_cli_usage("--numerics: %s", el_last_error()), -1;
        return 1;
    }
    if (!strcmp(a, "--board")) {
        NEED_VALUE();
        o->board = v;
        return 1;
    }
    if (!strcmp(a, "--tokenizer")) {
        NEED_VALUE();
        o->tokenizer = v;
        return 1;
    }
    if (!strcmp(a, "--json")) return o->json = true, 1;
    if (!strcmp(a, "--progress")) return o->progress = 1, 1;
    if (!strcmp(a, "--no-progress")) return o->progress = 0, 1;
    if (!strcmp(a, "--direct")) return o->direct_io = true, 1;
    if (!strcmp(a, "--no-cuda-graph")) return o->no_cuda_graph = true, 1;
    if (!strcmp(a, "--mlock")) return o->arena_flags |= EL_ARENA_LOCK, 1;
    if (!strcmp(a, "--hugepages")) return o->arena_flags |= EL_ARENA_HUGEPAGES, 1;
#undef NEED_VALUE
    return 0;
}

void el_cli_common_help(FILE *f) {
    fputs("  --arena SIZE      the one memory reservation, e.g. 512M, 1.5G (default: the plan's total)\n"
          "  --ctx N           context length in tokens (default: the model's maximum)\n"
          "  --batch N         sequences per pass (default 1)\n"
          "  --dtype T         weight dtype in the arena: f32, f16, bf16 (default: as stored)\n"
          "  --kv-dtype T      a decoder's KV cache: f16 (default: half the bytes) or f32\n"
          "  --numerics N      a decoder's CPU arithmetic: exact (edgeload's; auto, the\n"
          "                    default) or ggml (llama.cpp's rounding: attention, RMSNorm,\n"
          "                    RoPE, SwiGLU/GEGLU, 32-block, Q4_K and Q6_K dot\n"
          "                    products; slower prompts)\n"
          "  --chunk SIZE      I/O chunk (default 4M)\n"
          "  --stream M        layers (decoders, BERT) read from storage every pass, in a ring of\n"
          "                    layer slots: on, auto (when the model does not fit --arena) or off\n"
          "                    (default; CPU only)\n"
          "  --slots N         layer slots in the --stream ring (default 2: one computed,\n"
          "                    one read)\n"
          "  --pin-layers K    keep the first K streamed layers resident; auto: as many as fit\n"
          "                    --arena (default 0)\n"
          "  --max-input SIZE  bytes of one input text: a prompt, a stdin line, a conversation\n"
          "                    (default: 16 per --ctx token, 4K to 1M); longer ones: exit 6\n"
          "  --tokenizer FILE  tokenizer file (default: found next to the model)\n"
          "  --offset BYTES    an .elimg image starting this far into MODEL (partition, device)\n"
          "  --board NAME      defaults (arena, threads) from boards/NAME.json\n"
          "  --device D        auto, cpu or cuda (default auto: CUDA when it can run here, else\n"
          "                    the CPU, saying which and why); cuda unavailable -> exit 5\n"
          "  --cuda-memory M   managed or device: where a GPU arena lives (default auto:\n"
          "                    managed on integrated GPUs, device + pinned staging on others)\n"
          "  --no-cuda-graph   on a GPU, launch each decode step's kernels one by one instead\n"
          "                    of replaying one captured CUDA graph (also: EL_CUDA_GRAPH=0)\n"
          "  --direct          read with O_DIRECT (bypass the page cache)\n"
          "  --mlock           lock the arena in RAM;  --hugepages  back it with huge pages\n"
          "  --progress | --no-progress   force the progress bar on or off (default: on a terminal)\n"
          "  --json            machine-readable output\n",
          f);
}

int el_cli_fail(el_status s) {
    const char *msg = el_last_error();
    fprintf(stderr, "edgeload: error: %s\n", msg && *msg ? msg : el_status_str(s));
    return el_status_exit_code(s);
}

int el_cli_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("edgeload: usage: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return 1;
}

typedef struct progress_state {
    double last;
    bool shown;
} progress_state;

static void progress_cb(const el_load_progress *p, void *user) {
    progress_state *st = user;
    double t = now_s();
    bool final = p->bytes_done >= p->bytes_total;
    if (!final && t - st->last < 0.1) return;
    st->last = t;
    st->shown = true;
    double frac = p->bytes_total ? (double)p->bytes_done / (double)p->bytes_total : 1.0;
    double mbs = p->seconds > 0 ? (double)p->bytes_done / p->seconds / 1e6 : 0;
    double eta = mbs > 0 ? (double)(p->bytes_total - p->bytes_done) / (mbs * 1e6) : 0;
    char done[32], total[32], bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    el_size_format(p->bytes_done, done, sizeof done);
    el_size_format(p->bytes_total, total, sizeof total);
    fprintf(stderr, "\rloading [%s] %5.1f%%  %s / %s  %.0f MB/s  ETA %.1fs   ", bar, frac * 100,
            done, total, mbs, eta);
    fflush(stderr);
}

el_status el_cli_plan_stream(const el_cli_opts *o, const el_model *m, uint64_t arena,
                             el_plan *p) {
    const el_stream_params sp = {o->stream, o->stream_slots, o->pin_layers, o->direct_io};
    return el_plan_stream_ex(m, &sp, arena, p);
}

int el_cli_load(const el_cli_opts *o, el_cli_loaded *out) {
    memset(out, 0, sizeof *out);
    out->t_start = now_s();
    uint64_t board_arena = 0;
    if (o->board) {
        el_board b;
        el_status bs = el_board_load(o->board, &b);
        if (bs != EL_OK) return el_cli_fail(bs);
        board_arena = b.default_arena;
        out->board_threads = b.default_threads;
    }
    el_model_open_params op = {.tokenizer_path = o->tokenizer, .offset = o->offset};
    el_status s = el_cli_resolve_offset(o->model, &op.offset);
    if (s == EL_OK) s = el_model_open(o->model, &op, &out->model);
    if (s != EL_OK) return el_cli_fail(s);
    el_plan_params pp = o->plan;
    pp.memory = EL_MEMORY_HOST;
    out->device = EL_DEVICE_CPU;
    out->no_cuda_graph = o->no_cuda_graph;
    char why[800];
    why[0] = 0;
    if (o->runs) {
        s = el_device_resolve_model(out->model, o->device, o->cuda_memory, &out->device,
                                    &pp.memory, why, sizeof why);
        if (s != EL_OK) goto fail;
        if (o->numerics == EL_NUMERICS_GGML && o->device == EL_DEVICE_AUTO &&
            pp.memory != EL_MEMORY_HOST) { /* llama.cpp's rounding is CPU code: say so */
            snprintf(why, sizeof why, "cpu (auto: --numerics ggml runs on the CPU only)");
            pp.memory = EL_MEMORY_HOST;
            out->device = EL_DEVICE_CPU;
        }
    }
replan:
    if ((s = el_plan_make(out->model, &pp, &out->plan)) != EL_OK ||
        (s = el_plan_input(out->model, o->max_input, &out->plan)) != EL_OK)
        goto fail;
    s = el_cli_plan_stream(o, out->model,
                           o->arena ? o->arena : board_arena ? board_arena : UINT64_MAX,
                           &out->plan);
    if (s == EL_E_UNSUPPORTED && o->device == EL_DEVICE_AUTO && pp.memory != EL_MEMORY_HOST) {
        /* A GPU plan streaming cannot serve: auto takes the CPU, and says why. */
        snprintf(why, sizeof why, "cpu (auto: %s)", el_last_error());
        pp.memory = EL_MEMORY_HOST;
        out->device = EL_DEVICE_CPU;
        goto replan;
    }
    if (s != EL_OK) goto fail;
    /* --arena is the reservation. A board's default_arena is a budget: the plan must fit
     * it, but only what the plan needs is reserved (serve prefaults its arena: a 48 GiB
     * board budget must not become 48 GiB of touched memory for a small model). */
    out->arena_bytes = o->arena ? o->arena : out->plan.total_bytes;
    if ((s = el_plan_check(out->model, &out->plan,
                           o->arena || !board_arena ? out->arena_bytes : board_arena)) != EL_OK)
        goto fail;
    el_mem_report mr;
    if (el_mem_report_get(&mr) == EL_OK && mr.mem_available && out->arena_bytes > mr.mem_available) {
        char a[32], b[32];
        fprintf(stderr, "edgeload: warning: the arena (%s) is larger than MemAvailable (%s): "
                "the OOM killer may end this process while it loads\n",
                el_size_format(out->arena_bytes, a, sizeof a),
                el_size_format(mr.mem_available, b, sizeof b));
    }
    el_arena_params ap;
    el_plan_arena_params(&out->plan, out->arena_bytes, o->arena_flags, &ap);
    ap.memory = pp.memory;
    s = el_arena_init(&out->arena, &ap);
    if (s == EL_E_NODEV && o->device == EL_DEVICE_AUTO && pp.memory != EL_MEMORY_HOST) {
        /* The GPU cannot hold the arena: the CPU runs it, and says why. */
        snprintf(why, sizeof why, "cpu (auto: %s)", el_last_error());
        pp.memory = EL_MEMORY_HOST;
        out->device = EL_DEVICE_CPU;
        goto replan;
    }
    if (s != EL_OK) goto fail;
    el_arena_stats ast;
    el_arena_stats_get(out->arena, &ast);
    /* --mlock / --hugepages are best effort: say when the arena runs without them. */
    if ((o->arena_flags & EL_ARENA_LOCK) && !ast.locked)
        fprintf(stderr, "edgeload: warning: --mlock: the arena could not be locked in RAM "
                "(RLIMIT_MEMLOCK or CAP_IPC_LOCK missing); continuing unlocked: pages may be "
                "swapped out\n");
    if ((o->arena_flags & EL_ARENA_HUGEPAGES) && !ast.hugepages)
        fprintf(stderr, "edgeload: warning: --hugepages: no huge pages could be reserved "
                "(vm.nr_hugepages); continuing with normal pages (transparent huge pages "
                "advised)\n");
    if (o->runs && o->device != EL_DEVICE_CPU) fprintf(stderr, "edgeload: device: %s\n", why);
    progress_state ps = {0, false};
    bool bar = o->progress == 1 || (o->progress == -1 && isatty(STDERR_FILENO) && !o->json);
    el_load_params lp = {o->direct_io, bar ? progress_cb : NULL, &ps};
    s = el_model_load(out->model, &out->plan, out->arena, &lp, &out->stats);
    if (ps.shown) fputc('\n', stderr);
    if (s != EL_OK) goto fail;
    return 0;
fail:;
    int rc = el_cli_fail(s);
    el_cli_unload(out);
    return rc;
}

void el_cli_unload(el_cli_loaded *l) {
    el_arena_deinit(l->arena);
    el_model_close(l->model);
    l->arena = NULL;
    l->model = NULL;
}

void el_cli_memory_report(FILE *f, const el_cli_loaded *l, bool json) {
    el_arena_stats st;
    el_arena_stats_get(l->arena, &st);
    el_mem_report mr = {0, 0, 0};
    el_mem_report_get(&mr);
    double mbs = l->stats.seconds > 0 ? (double)l->stats.bytes_read / l->stats.seconds / 1e6 : 0;
    if (json) {
        fprintf(f, "{\"arena\":{\"reserved\":%llu,\"used\":%llu,\"peak\":%llu,\"regions\":{",
                (unsigned long long)st.reserved, (unsigned long long)st.used,
                (unsigned long long)st.peak);
        for (int r = 0; r < EL_REGION_COUNT; r++)
            fprintf(f, "%s\"%s\":{\"capacity\":%llu,\"used\":%llu,\"peak\":%llu}", r ? "," : "",
                    el_region_name(r), (unsigned long long)st.region[r].capacity,
                    (unsigned long long)st.region[r].used, (unsigned long long)st.region[r].peak);
        fprintf(f, "},\"memory\":\"%s\",\"gpu_reserved\":%llu},\"vm_hwm\":%llu,\"vm_rss\":%llu,\"bytes_read\":%llu,\"tensors\":%llu,"
                "\"seconds\":%.6f,\"mb_per_s\":%.1f}",
                el_memory_name(st.memory), (unsigned long long)st.gpu_reserved,
                (unsigned long long)mr.vm_hwm, (unsigned long long)mr.vm_rss,
                (unsigned long long)l->stats.bytes_read, (unsigned long long)l->stats.tensors,
                l->stats.seconds, mbs);
        return;
    }
    char a[32], b[32], c[32];
    fprintf(f, "memory report\n");
    fprintf(f, "  arena      %s reserved, %s used, %s peak%s%s\n",
            el_size_format(st.reserved, a, sizeof a), el_size_format(st.used, b, sizeof b),
            el_size_format(st.peak, c, sizeof c), st.locked ? ", locked" : "",
            st.hugepages ? ", huge pages" : "");
    if (st.memory != EL_MEMORY_HOST)
        fprintf(f, "  gpu        %s of it in CUDA %s memory (weights, kv, act)\n",
                el_size_format(st.gpu_reserved, a, sizeof a), el_memory_name(st.memory));
    for (int r = 0; r < EL_REGION_COUNT; r++)
        fprintf(f, "    %-9s %12s capacity  %12s used  %12s peak\n", el_region_name(r),
                el_size_format(st.region[r].capacity, a, sizeof a),
                el_size_format(st.region[r].used, b, sizeof b),
                el_size_format(st.region[r].peak, c, sizeof c));
    fprintf(f, "  process    peak RSS (VmHWM) %s, now %s\n", el_size_format(mr.vm_hwm, a, sizeof a),
            el_size_format(mr.vm_rss, b, sizeof b));
    fprintf(f, "  load       %s read, %llu tensors, %.3f s, %.0f MB/s\n",
            el_size_format(l->stats.bytes_read, a, sizeof a), (unsigned long long)l->stats.tensors,
            l->stats.seconds, mbs);
}

int el_cli_stdout_errno;

bool el_cli_stdout_flush(void) {
    errno = 0;
    bool ok = fflush(stdout) == 0 && !ferror(stdout);
    if (!ok && !el_cli_stdout_errno) el_cli_stdout_errno = errno;
    return ok;
}

void el_cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int el_cli_parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    if (!v) return el_cli_usage("%s needs a value", opt);
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return el_cli_usage("%s %s: expected a number in [%g, %g]", opt, v, lo, hi);
    *out = x;
    return 0;
}

int el_cli_parse_gen(const char *a, const char *v, el_cli_gen *g) {
    if (!strcmp(a, "-n") || !strcmp(a, "--steps")) return el_cli_parse_num(a, v, 0, 1e9, &g->steps);
    if (!strcmp(a, "--temp")) return el_cli_parse_num(a, v, 0, 100, &g->temp);
    if (!strcmp(a, "--top-k")) return el_cli_parse_num(a, v, 0, 1e9, &g->top_k);
    if (!strcmp(a, "--top-p")) return el_cli_parse_num(a, v, 0, 1, &g->top_p);
    if (!strcmp(a, "--seed")) return el_cli_parse_num(a, v, 0, 1.8e19, &g->seed);
    if (!strcmp(a, "--threads")) return el_cli_parse_num(a, v, 0, 64, &g->threads);
    return -1;
}

int el_cli_gen_finish(const el_cli_gen *g, el_sampler_params *sp) {
    if (g->steps != (double)(uint32_t)g->steps || g->top_k != (double)(uint32_t)g->top_k ||
        g->threads != (double)(unsigned)g->threads)
        return el_cli_usage("-n, --top-k and --threads take whole numbers");
    el_sampler_params_default(sp);
    sp->temperature = (float)g->temp;
    sp->top_k = (uint32_t)g->top_k;
    sp->top_p = (float)g->top_p;
    sp->seed = g->seed >= 0 ? (uint64_t)g->seed : (uint64_t)time(NULL);
    return 0;
}
