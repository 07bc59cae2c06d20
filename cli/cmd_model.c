/* cmd_model.c - the model commands that need no session: inspect, plan, load. */
#include "cli/cli.h"

#include "cli/board.h"
#include "loader/formats/gguf.h"

#include <stdlib.h>
#include <string.h>

/* Parses MODEL and the common options; returns -1 when --help was printed (exit 0),
 * 0 on success, or an exit code > 0. */
static int parse_args(int argc, char **argv, el_cli_opts *o, const char *help) {
    el_cli_opts_init(o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            el_cli_common_help(stdout);
            return -1;
        }
        int r = el_cli_parse_common(argc, argv, &i, o);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) return el_cli_usage("%s: unknown option %s", argv[0], argv[i]);
        if (o->model) return el_cli_usage("%s: one MODEL only (got %s and %s)", argv[0], o->model, argv[i]);
        o->model = argv[i];
    }
    if (!o->model) return el_cli_usage("%s MODEL: missing MODEL", argv[0]);
    return 0;
}

static void print_shape(FILE *f, const el_tensor_info *t) {
    fputc('[', f);
    for (uint32_t d = 0; d < t->ndim; d++)
        fprintf(f, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    fputc(']', f);
}

int el_cmd_inspect(int argc, char **argv) {
    el_cli_opts o;
    int rc = parse_args(argc, argv, &o,
                        "usage: edgeload inspect MODEL [--json]\n"
                        "Lists files, tensors (name, dtype, shape, bytes) and the config; reads headers only.\n");
    if (rc) return rc < 0 ? 0 : rc;
    el_model *m;
    el_model_open_params op = {.tokenizer_path = o.tokenizer, .offset = o.offset};
    el_status s = el_cli_resolve_offset(o.model, &op.offset);
    if (s == EL_OK) s = el_model_open(o.model, &op, &m);
    if (s != EL_OK) return el_cli_fail(s);
    size_t nt = el_model_tensor_count(m);
    uint64_t total = 0, per_dtype[EL_DT_COUNT] = {0}, blocks = 0;
    for (size_t i = 0; i < nt; i++) {
        el_tensor_info t;
        el_model_tensor(m, i, &t);
        total += t.nbytes;
        if (t.dtype == EL_DT_NONE) blocks += t.nbytes; /* GGUF block types */
        else per_dtype[t.dtype] += t.nbytes;
    }
    if (o.json) {
        printf("{\"model\":");
        el_cli_json_string(stdout, o.model);
        printf(",\"format\":\"%s\",\"family\":\"%s\"", el_model_format(m), el_model_family(m));
        el_cli_inspect_image(m, true);
        el_cli_inspect_gguf(m, true);
        printf(",\"files\":[");
        for (size_t i = 0; i < el_model_file_count(m); i++) {
            printf("%s{\"path\":", i ? "," : "");
            el_cli_json_string(stdout, el_model_file_path(m, i));
            printf(",\"bytes\":%llu}", (unsigned long long)el_model_file_size(m, i));
        }
        printf("],\"tensor_bytes\":%llu,\"tensors\":[", (unsigned long long)total);
        for (size_t i = 0; i < nt; i++) {
            el_tensor_info t;
            el_model_tensor(m, i, &t);
            printf("%s{\"name\":", i ? "," : "");
            el_cli_json_string(stdout, t.name);
            printf(",\"dtype\":\"%s\",\"shape\":[", el_gguf_tensor_type_name(m, i));
            for (uint32_t d = 0; d < t.ndim; d++) printf("%s%llu", d ? "," : "", (unsigned long long)t.shape[d]);
            printf("],\"bytes\":%llu,\"file\":%u,\"offset\":%llu}", (unsigned long long)t.nbytes,
                   t.file_index, (unsigned long long)t.file_offset);
        }
        printf("]}\n");
    } else {
        char a[32];
        printf("model    %s\nformat   %s\nfamily   %s\n", o.model, el_model_format(m), el_model_family(m));
        for (size_t i = 0; i < el_model_file_count(m); i++)
            printf("file %zu   %s (%s)\n", i, el_model_file_path(m, i),
                   el_size_format(el_model_file_size(m, i), a, sizeof a));
        el_cli_inspect_image(m, false);
        el_cli_inspect_gguf(m, false);
        printf("tensors  %zu, %s (%llu bytes)", nt, el_size_format(total, a, sizeof a), (unsigned long long)total);
        for (int d = 0; d < EL_DT_COUNT; d++)
            if (per_dtype[d]) printf("; %s %s", el_dtype_name((el_dtype)d), el_size_format(per_dtype[d], a, sizeof a));
        if (blocks) printf("; GGML block types %s", el_size_format(blocks, a, sizeof a));
        printf("\n\n%-56s %-7s %-22s %14s\n", "name", "dtype", "shape", "bytes");
        for (size_t i = 0; i < nt; i++) {
            el_tensor_info t;
            el_model_tensor(m, i, &t);
            printf("%-56s %-7s ", t.name, el_gguf_tensor_type_name(m, i));
            char shape[64];
            FILE *mf = fmemopen(shape, sizeof shape, "w");
            if (mf) {
                print_shape(mf, &t);
                fclose(mf);
            } else {
                shape[0] = 0;
            }
            printf("%-22s %14llu\n", shape, (unsigned long long)t.nbytes);
        }
    }
    el_model_close(m);
    return 0;
}

/* KV bytes with the other cache type (0: no KV cache, or that plan fails). */
static uint64_t kv_other(const el_model *m, const el_plan *p, el_dtype *other) {
    el_plan_params q = p->params;
    *other = q.kv_dtype == EL_DT_F16 ? EL_DT_F32 : EL_DT_F16;
    q.kv_dtype = *other;
    el_plan alt;
    if (!p->region_bytes[EL_REGION_KV] || el_plan_make(m, &q, &alt) != EL_OK) return 0;
    uint64_t kv = alt.region_bytes[EL_REGION_KV];
    return kv != p->region_bytes[EL_REGION_KV] ? kv : 0; /* encoders: no cache to shrink */
}

static const char *kv_name(el_dtype t) { return t == EL_DT_F16 ? "f16" : "f32"; }

static void print_plan(const el_model *m, const el_plan *p, uint64_t arena, bool json, bool fits) {
    el_dtype other;
    const uint64_t kv_alt = kv_other(m, p, &other);
    if (json) {
        printf("{\"model\":");
        el_cli_json_string(stdout, el_model_file_path(m, 0));
        printf(",\"family\":\"%s\",\"ctx\":%u,\"batch\":%u,\"dtype\":\"%s\",\"chunk\":%llu,\"regions\":{",
               el_model_family(m), p->params.ctx, p->params.batch,
               p->params.dtype == EL_DT_NONE ? "as-stored" : el_dtype_name(p->params.dtype),
               (unsigned long long)p->params.chunk_bytes);
        for (int r = 0; r < EL_REGION_COUNT; r++)
            printf("%s\"%s\":%llu", r ? "," : "", el_region_name(r), (unsigned long long)p->region_bytes[r]);
        printf("},\"total\":%llu,\"read_bytes\":%llu,\"arena\":%llu,\"fits\":%s",
               (unsigned long long)p->total_bytes, (unsigned long long)p->read_bytes,
               (unsigned long long)arena, fits ? "true" : "false");
        if (el_dtype_is_block(p->params.dtype))
            printf(",\"quantized_tensors\":%llu,\"kept_tensors\":%llu",
                   (unsigned long long)p->quantized_count, (unsigned long long)p->kept_count);
        printf(",\"max_input\":%llu,\"input_bytes\":%llu", (unsigned long long)p->max_input,
               (unsigned long long)p->input_bytes);
        printf(",\"stream\":\"%s\"", p->streamed ? "on" : "off");
        if (p->streamed)
            printf(",\"stream_layers\":%u,\"stream_slot_bytes\":%llu,\"stream_slots\":%u,"
                   "\"stream_bytes_per_token\":%llu,\"stream_pinned\":%u,"
                   "\"stream_stage_bytes\":%llu,\"stream_direct\":%s", p->stream_layers,
                   (unsigned long long)p->stream_slot_bytes, p->stream_slots,
                   (unsigned long long)p->stream_pass_bytes, p->stream_pinned,
                   (unsigned long long)p->stream_stage_bytes, p->stream_direct ? "true" : "false");
        if (p->streamed && p->params.memory != EL_MEMORY_HOST) /* GPU: through host slots */
            printf(",\"memory\":\"%s\",\"stream_host_slot_bytes\":%llu,"
                   "\"stream_copy_bytes_per_token\":%llu", el_memory_name(p->params.memory),
                   (unsigned long long)p->stream_slot_bytes,
                   (unsigned long long)(p->stream_layers - p->stream_pinned) * p->stream_slot_bytes);
        el_cli_plan_side_files(m, true);
        if (kv_alt)
            printf(",\"kv_dtype\":\"%s\",\"kv_bytes\":{\"%s\":%llu,\"%s\":%llu}",
                   kv_name(p->params.kv_dtype), kv_name(p->params.kv_dtype),
                   (unsigned long long)p->region_bytes[EL_REGION_KV], kv_name(other),
                   (unsigned long long)kv_alt);
        return;
    }
    char a[32], b[32];
    printf("memory plan for %s (%s)\n", el_model_file_path(m, 0), el_model_family(m));
    printf("  ctx %u, batch %u, weights %s, chunk %s\n", p->params.ctx, p->params.batch,
           p->params.dtype == EL_DT_NONE ? "as stored" : el_dtype_name(p->params.dtype),
           el_size_format(p->params.chunk_bytes, a, sizeof a));
    if (el_dtype_is_block(p->params.dtype))
        printf("  %llu tensors quantized to %s; %llu kept as stored (norms, biases, 1-D, rows "
               "not whole blocks of %zu, transposed at load)\n",
               (unsigned long long)p->quantized_count, el_dtype_name(p->params.dtype),
               (unsigned long long)p->kept_count, el_dtype_block(p->params.dtype));
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        printf("  %-8s %12s  (%llu bytes)", el_region_name(r), el_size_format(p->region_bytes[r], a, sizeof a),
               (unsigned long long)p->region_bytes[r]);
        if (r == EL_REGION_KV && kv_alt)
            printf("  %s; %s would be %s", kv_name(p->params.kv_dtype), kv_name(other),
                   el_size_format(kv_alt, a, sizeof a));
        putchar('\n');
    }
    printf("  %-8s %12s  (%llu bytes)\n", "total", el_size_format(p->total_bytes, a, sizeof a),
           (unsigned long long)p->total_bytes);
    if (p->input_bytes)
        printf("  input    %12s  per text (--max-input; %s of scratch: %u text buffer%s + a "
               "%u KiB read piece)\n", el_size_format(p->max_input, a, sizeof a),
               el_size_format(p->input_bytes, b, sizeof b), p->params.batch,
               p->params.batch == 1 ? "" : "s", EL_INPUT_PIECE >> 10);
    el_cli_plan_side_files(m, false);
    printf("  reads    %12s from storage\n", el_size_format(p->read_bytes, a, sizeof a));
    if (p->streamed) {
        printf("  stream   %12s  per token from storage: %u layers through %u slots of %s "
               "(weights region); a prefill chunk reads each layer once\n",
               el_size_format(p->stream_pass_bytes, a, sizeof a),
               p->stream_layers - p->stream_pinned, p->stream_slots,
               el_size_format(p->stream_slot_bytes, b, sizeof b));
        printf("  stream   %u of %u layers pinned resident (--pin-layers); stage %s%s\n",
               p->stream_pinned, p->stream_layers,
               el_size_format(p->stream_stage_bytes, a, sizeof a),
               p->stream_stage_bytes ? (p->stream_direct ? " (O_DIRECT windows, conversions, "
                                                           "image chunks)"
                                                         : " (conversions, transposes, image "
                                                           "chunks)")
                                     : " (none: layers read as stored)");
        if (p->params.memory != EL_MEMORY_HOST)
            printf("  stream   GPU (%s memory): layers read into 2 host slots of %s (staging%s), "
                   "%s per token copied host -> GPU slots\n", el_memory_name(p->params.memory),
                   el_size_format(p->stream_slot_bytes, a, sizeof a),
                   p->params.memory == EL_MEMORY_CUDA_DEVICE ? ", pinned" : "",
                   el_size_format((uint64_t)(p->stream_layers - p->stream_pinned) *
                                  p->stream_slot_bytes, b, sizeof b));
    } else
        printf("  stream   off (resident)\n");
    printf("  arena    %12s: %s\n", el_size_format(arena, a, sizeof a), fits ? "fits" : "DOES NOT FIT");
}

/* What the plan means on a board: fit against its typical free RAM and its default arena,
 * load time per storage kind (read bytes / MB/s), and the decode bound from its memory
 * bandwidth (every weight byte is read once per generated token). */
static void print_board(const el_board *b, const el_plan *p, uint64_t arena, bool arena_given,
                        bool fits, bool json) {
    uint64_t wbytes = p->region_bytes[EL_REGION_WEIGHTS];
    double tok_s = wbytes ? b->mem_bandwidth_gb_s * 1e9 / (double)wbytes : 0;
    bool fits_free = p->total_bytes <= b->ram_typical_free;
    bool fits_default = p->total_bytes <= b->default_arena;
    if (json) {
        printf(",\"board\":{\"name\":");
        el_cli_json_string(stdout, b->name);
        printf(",\"file\":");
        el_cli_json_string(stdout, b->path);
        printf(",\"ram_total\":%llu,\"ram_shared_with_gpu\":%s,\"ram_typical_free\":%llu,"
               "\"memory_bandwidth_gb_s\":%.9g,\"cpu\":{\"arch\":\"%s\",\"model\":",
               (unsigned long long)b->ram_total, b->ram_shared_with_gpu ? "true" : "false",
               (unsigned long long)b->ram_typical_free, b->mem_bandwidth_gb_s, b->cpu_arch);
        el_cli_json_string(stdout, b->cpu_model);
        printf(",\"cores\":%u,\"features\":[", b->cpu_cores);
        for (size_t i = 0; i < b->cpu_feature_count; i++)
            printf("%s\"%s\"", i ? "," : "", b->cpu_features[i]);
        printf("]},\"cuda_arch\":");
        if (b->cuda_arch[0])
            printf("\"%s\"", b->cuda_arch);
        else
            printf("null");
        printf(",\"default_arena\":%llu,\"default_threads\":%u,\"arena\":%llu,"
               "\"arena_from\":\"%s\",\"fits_arena\":%s,\"fits_free_ram\":%s,"
               "\"fits_default_arena\":%s,\"load\":[",
               (unsigned long long)b->default_arena, b->default_threads,
               (unsigned long long)arena, arena_given ? "--arena" : "board",
               fits ? "true" : "false", fits_free ? "true" : "false",
               fits_default ? "true" : "false");
        for (size_t i = 0; i < b->storage_count; i++) {
            printf("%s{\"kind\":\"%s\",\"read_mb_s\":%.9g,\"basis\":\"%s\",\"seconds\":%.9g",
                   i ? "," : "", b->storage[i].kind, b->storage[i].read_mb_s, b->storage[i].basis,
                   (double)p->read_bytes / (b->storage[i].read_mb_s * 1e6));
            if (p->streamed) /* every layer read once per token */
                printf(",\"stream_tok_s_bound\":%.9g",
                       b->storage[i].read_mb_s * 1e6 / (double)p->stream_pass_bytes);
            printf("}");
        }
        printf("],\"decode_bytes_per_token\":%llu,\"decode_tok_s_bound\":%.9g}",
               (unsigned long long)wbytes, tok_s);
        return;
    }
    char x[32], y[32], z[32];
    printf("board %s (%s)\n", b->name, b->path);
    printf("  RAM      %s%s; typically %s free after boot\n",
           el_size_format(b->ram_total, x, sizeof x),
           b->ram_shared_with_gpu ? ", shared by CPU and GPU" : "",
           el_size_format(b->ram_typical_free, y, sizeof y));
    printf("  plan     %s: %s the typical free RAM, %s the default arena (%s)\n",
           el_size_format(p->total_bytes, x, sizeof x), fits_free ? "fits" : "DOES NOT FIT",
           fits_default ? "fits" : "DOES NOT FIT", el_size_format(b->default_arena, y, sizeof y));
    printf("  arena    %s (%s): %s; the model needs %s\n", el_size_format(arena, x, sizeof x),
           arena_given ? "--arena" : "the board's default", fits ? "fits" : "DOES NOT FIT",
           el_size_format(p->total_bytes, z, sizeof z));
    for (size_t i = 0; i < b->storage_count; i++)
        printf("  load     %-9s %8.0f MB/s (%s): %.3g s for %s\n", b->storage[i].kind,
               b->storage[i].read_mb_s, b->storage[i].basis,
               (double)p->read_bytes / (b->storage[i].read_mb_s * 1e6),
               el_size_format(p->read_bytes, x, sizeof x));
    printf("  decode   at most %.1f tok/s: %.1f GB/s over %s of weights read per token\n", tok_s,
           b->mem_bandwidth_gb_s, el_size_format(wbytes, x, sizeof x));
    for (size_t i = 0; p->streamed && i < b->storage_count; i++)
        printf("  stream   at most %.2f tok/s from %s: %.0f MB/s over %s of layers per token\n",
               b->storage[i].read_mb_s * 1e6 / (double)p->stream_pass_bytes, b->storage[i].kind,
               b->storage[i].read_mb_s, el_size_format(p->stream_pass_bytes, x, sizeof x));
}

int el_cmd_plan(int argc, char **argv) {
    el_cli_opts o;
    int rc = parse_args(argc, argv, &o,
                        "usage: edgeload plan MODEL [--arena SIZE] [--ctx N] [--batch N] [--dtype T] [--kv-dtype T] [--stream M [--slots N] [--pin-layers K|auto] [--direct]] [--cuda-memory M] [--board NAME] [--json]\n"
                        "Computes every arena region from the headers; reads no weight. Exit 3 if it does not fit.\n"
                        "With --board: fit against the board's typical free RAM and default arena, load time\n"
                        "from each of its storage kinds, and the decode tok/s bound from its memory bandwidth.\n");
    if (rc) return rc < 0 ? 0 : rc;
    el_board board;
    if (o.board) {
        el_status bs = el_board_load(o.board, &board);
        if (bs != EL_OK) return el_cli_fail(bs);
    }
    el_model *m;
    el_model_open_params op = {.tokenizer_path = o.tokenizer, .offset = o.offset};
    el_status s = el_cli_resolve_offset(o.model, &op.offset);
    if (s == EL_OK) s = el_model_open(o.model, &op, &m);
    if (s != EL_OK) return el_cli_fail(s);
    el_plan p;
    /* --cuda-memory: the GPU path's plan (device memory adds pinned staging; a streamed
     * plan its host slots) */
    if (o.cuda_memory != EL_CUDA_MEMORY_AUTO)
        o.plan.memory = o.cuda_memory == EL_CUDA_MEMORY_DEVICE ? EL_MEMORY_CUDA_DEVICE
                                                                : EL_MEMORY_CUDA_MANAGED;
    s = el_plan_make(m, &o.plan, &p);
    if (s == EL_OK) s = el_plan_input(m, o.max_input, &p);
    if (s == EL_OK)
        s = el_cli_plan_stream(&o, m,
                               o.arena ? o.arena : o.board ? board.default_arena : UINT64_MAX,
                               &p);
    if (s != EL_OK) {
        rc = el_cli_fail(s);
        el_model_close(m);
        return rc;
    }
    uint64_t arena = o.arena ? o.arena : o.board ? board.default_arena : p.total_bytes;
    s = el_plan_check(m, &p, arena);
    print_plan(m, &p, arena, o.json, s == EL_OK);
    if (o.board) print_board(&board, &p, arena, o.arena != 0, s == EL_OK, o.json);
    if (o.json) printf("}\n");
    rc = s == EL_OK ? 0 : el_cli_fail(s);
    if (rc == 0 && o.board && p.total_bytes > board.ram_typical_free) {
        char x[32], y[32];
        fprintf(stderr, "edgeload: error: the plan needs %s, more than the %s that %s typically "
                "has free after boot; try --ctx or --dtype f16 (see above)\n",
                el_size_format(p.total_bytes, x, sizeof x),
                el_size_format(board.ram_typical_free, y, sizeof y), board.name);
        rc = el_status_exit_code(EL_E_NOFIT);
    }
    el_model_close(m);
    return rc;
}

int el_cmd_load(int argc, char **argv) {
    el_cli_opts o;
    int rc = parse_args(argc, argv, &o,
                        "usage: edgeload load MODEL [--arena SIZE] [--dtype T] [--chunk SIZE] [--direct] [--json]\n"
                        "Streams the weights into the arena, then reports arena use, peak RSS and MB/s.\n");
    if (rc) return rc < 0 ? 0 : rc;
    el_cli_loaded l;
    rc = el_cli_load(&o, &l);
    if (rc) return rc;
    el_cli_memory_report(stdout, &l, o.json);
    if (o.json) fputc('\n', stdout);
    el_cli_unload(&l);
    return 0;
}
