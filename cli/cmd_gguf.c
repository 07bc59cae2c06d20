/* cmd_gguf.c - the GGUF part of `inspect`: version, alignment, data offset and every
 * metadata entry (arrays summarised: element type, count, the first few items). */
#include "cli/cli.h"

#include "loader/formats/gguf.h"
#include "loader/model_impl.h"
#include "loader/safetensors.h"

#include <inttypes.h>
#include <string.h>

#define SHOW_ITEMS 6    /* array items shown */
#define SHOW_STR 120    /* bytes of a string shown (text); JSON gets up to 4 KiB */

/* One value: numbers as numbers, strings quoted (cut), arrays as "[type x n] items...". */
static void print_value(const el_gguf *g, const el_gguf_value *v, bool json, int depth) {
    char buf[4096];
    switch (v->type) {
    case EL_GGUF_U8: case EL_GGUF_U16: case EL_GGUF_U32: case EL_GGUF_U64:
        printf("%" PRIu64, v->num.u);
        return;
    case EL_GGUF_I8: case EL_GGUF_I16: case EL_GGUF_I32: case EL_GGUF_I64:
        printf("%" PRId64, v->num.i);
        return;
    case EL_GGUF_F32: case EL_GGUF_F64:
        if (json && !(v->num.f == v->num.f && v->num.f - v->num.f == 0)) printf("null");
        else printf("%.9g", v->num.f);
        return;
    case EL_GGUF_BOOL:
        printf("%s", v->num.u ? "true" : "false");
        return;
    case EL_GGUF_STRING: {
        size_t n = 0, cap = json ? sizeof buf : SHOW_STR + 1;
        if (el_gguf_read_string(g, v, buf, cap, &n) != EL_OK) n = 0;
        char shown[sizeof buf * 4 + 8];
        el_json_printable(buf, n, shown, sizeof shown);
        if (json) {
            el_cli_json_string(stdout, shown);
        } else {
            printf("\"%s\"%s", shown, v->len > n ? "..." : "");
        }
        return;
    }
    default: break;
    }
    /* an array */
    if (json) printf("{\"type\":\"array\",\"elem_type\":\"%s\",\"count\":%" PRIu64 ",\"head\":[",
                     el_gguf_value_type_name(v->elem_type), v->len);
    else printf("[%s x %" PRIu64 "]", el_gguf_value_type_name(v->elem_type), v->len);
    el_gguf_iter it;
    el_gguf_iter_init(g, v, &it);
    for (uint64_t i = 0; i < v->len && i < SHOW_ITEMS && depth < 3; i++) {
        el_gguf_value e;
        if (el_gguf_iter_next(&it, &e) != EL_OK) break;
        fputs(i ? ", " : (json ? "" : " "), stdout);
        print_value(g, &e, json, depth + 1);
    }
    if (json) printf("]}");
    else if (v->len > SHOW_ITEMS && depth < 3) printf(", ...");
}

void el_cli_inspect_gguf(const el_model *m, bool json) {
    const el_gguf *g = m->gguf;
    if (!g) return;
    if (json) {
        printf(",\"gguf\":{\"version\":%u,\"alignment\":%" PRIu64 ",\"data_offset\":%" PRIu64
               ",\"runnable\":%s,\"metadata\":[", g->version, g->alignment, g->data_offset,
               g->refuse[0] ? "false" : "true");
        for (size_t i = 0; i < g->n_kv; i++) {
            printf("%s{\"key\":", i ? "," : "");
            el_cli_json_string(stdout, g->kv[i].key);
            printf(",\"type\":\"%s\",\"value\":", el_gguf_value_type_name(g->kv[i].v.type));
            print_value(g, &g->kv[i].v, true, 0);
            printf("}");
        }
        printf("]}");
        return;
    }
    char a[32];
    printf("gguf     v%u, %zu metadata entries, %zu tensors, alignment %" PRIu64
           ", data at %" PRIu64 " (%s of header)\n", g->version, g->n_kv, g->n_tensors,
           g->alignment, g->data_offset, el_size_format(g->data_offset, a, sizeof a));
    if (g->refuse[0]) printf("runs     no: %s\n", g->refuse);
    for (size_t i = 0; i < g->n_kv; i++) {
        const el_gguf_value *v = &g->kv[i].v;
        printf("meta     %-44s %-7s ", g->kv[i].key, el_gguf_value_type_name(v->type));
        print_value(g, v, false, 0);
        putchar('\n');
    }
}
