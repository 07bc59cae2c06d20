/* cmd_model.c - the model commands that need no session: inspect, plan, load. */
#include "cli/cli.h"

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
    el_status s = el_model_open(o.model, &op, &m);
    if (s != EL_OK) return el_cli_fail(s);
    size_t nt = el_model_tensor_count(m);
    uint64_t total = 0, per_dtype[EL_DT_COUNT] = {0};
    for (size_t i = 0; i < nt; i++) {
        el_tensor_info t;
        el_model_tensor(m, i, &t);
        total += t.nbytes;
        per_dtype[t.dtype] += t.nbytes;
    }
    if (o.json) {
        printf("{\"model\":");
        el_cli_json_string(stdout, o.model);
        printf(",\"format\":\"%s\",\"family\":\"%s\"", el_model_format(m), el_model_family(m));
        el_cli_inspect_image(m, true);
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
            printf(",\"dtype\":\"%s\",\"shape\":[", el_dtype_name(t.dtype));
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
        printf("tensors  %zu, %s (%llu bytes)", nt, el_size_format(total, a, sizeof a), (unsigned long long)total);
        for (int d = 0; d < EL_DT_COUNT; d++)
            if (per_dtype[d]) printf("; %s %s", el_dtype_name((el_dtype)d), el_size_format(per_dtype[d], a, sizeof a));
        printf("\n\n%-56s %-5s %-22s %14s\n", "name", "dtype", "shape", "bytes");
        for (size_t i = 0; i < nt; i++) {
            el_tensor_info t;
            el_model_tensor(m, i, &t);
            printf("%-56s %-5s ", t.name, el_dtype_name(t.dtype));
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

static void print_plan(const el_model *m, const el_plan *p, uint64_t arena, bool json, bool fits) {
    if (json) {
        printf("{\"model\":");
        el_cli_json_string(stdout, el_model_file_path(m, 0));
        printf(",\"family\":\"%s\",\"ctx\":%u,\"batch\":%u,\"dtype\":\"%s\",\"chunk\":%llu,\"regions\":{",
               el_model_family(m), p->params.ctx, p->params.batch,
               p->params.dtype == EL_DT_NONE ? "as-stored" : el_dtype_name(p->params.dtype),
               (unsigned long long)p->params.chunk_bytes);
        for (int r = 0; r < EL_REGION_COUNT; r++)
            printf("%s\"%s\":%llu", r ? "," : "", el_region_name(r), (unsigned long long)p->region_bytes[r]);
        printf("},\"total\":%llu,\"read_bytes\":%llu,\"arena\":%llu,\"fits\":%s}\n",
               (unsigned long long)p->total_bytes, (unsigned long long)p->read_bytes,
               (unsigned long long)arena, fits ? "true" : "false");
        return;
    }
    char a[32];
    printf("memory plan for %s (%s)\n", el_model_file_path(m, 0), el_model_family(m));
    printf("  ctx %u, batch %u, weights %s, chunk %s\n", p->params.ctx, p->params.batch,
           p->params.dtype == EL_DT_NONE ? "as stored" : el_dtype_name(p->params.dtype),
           el_size_format(p->params.chunk_bytes, a, sizeof a));
    for (int r = 0; r < EL_REGION_COUNT; r++)
        printf("  %-8s %12s  (%llu bytes)\n", el_region_name(r), el_size_format(p->region_bytes[r], a, sizeof a),
               (unsigned long long)p->region_bytes[r]);
    printf("  %-8s %12s  (%llu bytes)\n", "total", el_size_format(p->total_bytes, a, sizeof a),
           (unsigned long long)p->total_bytes);
    printf("  reads    %12s from storage\n", el_size_format(p->read_bytes, a, sizeof a));
    printf("  arena    %12s: %s\n", el_size_format(arena, a, sizeof a), fits ? "fits" : "DOES NOT FIT");
}

int el_cmd_plan(int argc, char **argv) {
    el_cli_opts o;
    int rc = parse_args(argc, argv, &o,
                        "usage: edgeload plan MODEL [--arena SIZE] [--ctx N] [--batch N] [--dtype T] [--json]\n"
                        "Computes every arena region from the headers; reads no weight. Exit 3 if it does not fit.\n");
    if (rc) return rc < 0 ? 0 : rc;
    el_model *m;
    el_model_open_params op = {.tokenizer_path = o.tokenizer, .offset = o.offset};
    el_status s = el_model_open(o.model, &op, &m);
    if (s != EL_OK) return el_cli_fail(s);
    el_plan p;
    s = el_plan_make(m, &o.plan, &p);
    if (s != EL_OK) {
        rc = el_cli_fail(s);
        el_model_close(m);
        return rc;
    }
    uint64_t arena = o.arena ? o.arena : p.total_bytes;
    s = el_plan_check(m, &p, arena);
    print_plan(m, &p, arena, o.json, s == EL_OK);
    rc = s == EL_OK ? 0 : el_cli_fail(s);
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
