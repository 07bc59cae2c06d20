/* board.c - finding and reading board profiles (boards/NAME.json): the search path, the
 * bounded file read, and a field-by-field validation into el_board. cJSON lives only inside
 * el_board_parse; nothing of it outlives the call. */
#include "cli/board.h"

#include "loader/safetensors.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- field readers: each names the file and the field in its message ----------------- */

typedef struct board_ctx {
    const char *fname;
    const cJSON *root;
} board_ctx;

static const cJSON *field(const board_ctx *c, const cJSON *obj, const char *key,
                          const char *where, el_status *st) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) *st = el_errorf(EL_E_INVALID, "%s: missing field \"%s%s\" (see docs/BOARDS.md)",
                             c->fname, where, key);
    return it;
}

static el_status bad_type(const board_ctx *c, const char *where, const char *key,
                          const cJSON *it, const char *want) {
    char got[128];
    return el_errorf(EL_E_INVALID, "%s: field \"%s%s\" must be %s, got %s", c->fname, where,
                     key, want, el_json_describe(it, got, sizeof got));
}

/* A string matching [a-z0-9._-] (lowercase names) or any printable text (free = true). */
static el_status get_string(const board_ctx *c, const cJSON *obj, const char *where,
                            const char *key, bool free_text, char *buf, size_t cap) {
    el_status st = EL_OK;
    const cJSON *it = field(c, obj, key, where, &st);
    if (!it) return st;
    if (!cJSON_IsString(it) || !it->valuestring[0])
        return bad_type(c, where, key, it, "a non-empty string");
    size_t n = strlen(it->valuestring);
    if (n >= cap)
        return el_errorf(EL_E_INVALID, "%s: field \"%s%s\" is %zu bytes, longer than %zu",
                         c->fname, where, key, n, cap - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)it->valuestring[i];
        bool ok = free_text ? ch >= 0x20
                            : (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                                  ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return bad_type(c, where, key, it,
                            free_text ? "printable text" : "a name of [a-z0-9._-]");
    }
    memcpy(buf, it->valuestring, n + 1);
    return EL_OK;
}

/* A size: a non-negative integer of bytes or a string in --arena syntax ("7.4G"). */
static el_status get_size(const board_ctx *c, const cJSON *obj, const char *key, uint64_t min,
                          uint64_t *out) {
    el_status st = EL_OK;
    const cJSON *it = field(c, obj, key, "", &st);
    if (!it) return st;
    uint64_t v = 0;
    if (cJSON_IsString(it)) {
        if (el_size_parse(it->valuestring, &v) != EL_OK)
            return bad_type(c, "", key, it, "a size such as \"7.4G\" or a byte count");
    } else if (!el_json_get_u64(it, UINT64_C(1) << 53, &v)) {
        return bad_type(c, "", key, it, "a size such as \"7.4G\" or a byte count >= 0");
    }
    if (v < min) {
        char a[32];
        return el_errorf(EL_E_INVALID, "%s: field \"%s\" is %llu bytes, less than %s",
                         c->fname, key, (unsigned long long)v, el_size_format(min, a, sizeof a));
    }
    *out = v;
    return EL_OK;
}

static el_status get_number(const board_ctx *c, const cJSON *obj, const char *where,
                            const char *key, double lo, double hi, double *out) {
    el_status st = EL_OK;
    const cJSON *it = field(c, obj, key, where, &st);
    if (!it) return st;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || !(it->valuedouble > lo) ||
        it->valuedouble > hi) {
        char want[96];
        snprintf(want, sizeof want, "a number > %g and <= %g", lo, hi);
        return bad_type(c, where, key, it, want);
    }
    *out = it->valuedouble;
    return EL_OK;
}

static el_status get_uint(const board_ctx *c, const cJSON *obj, const char *where,
                          const char *key, unsigned lo, unsigned hi, unsigned *out) {
    el_status st = EL_OK;
    const cJSON *it = field(c, obj, key, where, &st);
    if (!it) return st;
    uint64_t v = 0;
    if (!el_json_get_u64(it, hi, &v) || v < lo) {
        char want[96];
        snprintf(want, sizeof want, "an integer in [%u, %u]", lo, hi);
        return bad_type(c, where, key, it, want);
    }
    *out = (unsigned)v;
    return EL_OK;
}

static el_status get_bool(const board_ctx *c, const cJSON *obj, const char *key, bool *out) {
    el_status st = EL_OK;
    const cJSON *it = field(c, obj, key, "", &st);
    if (!it) return st;
    if (!cJSON_IsBool(it)) return bad_type(c, "", key, it, "true or false");
    *out = cJSON_IsTrue(it);
    return EL_OK;
}

/* ---- the sections ------------------------------------------------------------------ */

static el_status parse_storage(const board_ctx *c, el_board *b) {
    el_status st = EL_OK;
    const cJSON *arr = field(c, c->root, "storage", "", &st);
    if (!arr) return st;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1 || n > EL_BOARD_STORAGE_MAX) {
        char want[64];
        snprintf(want, sizeof want, "an array of 1 to %d storage objects", EL_BOARD_STORAGE_MAX);
        return bad_type(c, "", "storage", arr, want);
    }
    b->storage_count = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        char where[32];
        snprintf(where, sizeof where, "storage[%zu].", b->storage_count);
        if (!cJSON_IsObject(e)) return bad_type(c, "", "storage[]", e, "an object");
        el_board_storage *s = &b->storage[b->storage_count];
        if ((st = get_string(c, e, where, "kind", false, s->kind, sizeof s->kind)) != EL_OK ||
            (st = get_number(c, e, where, "read_mb_s", 0, 1e6, &s->read_mb_s)) != EL_OK ||
            (st = get_string(c, e, where, "basis", false, s->basis, sizeof s->basis)) != EL_OK)
            return st;
        if (strcmp(s->basis, "datasheet") && strcmp(s->basis, "interface") &&
            strcmp(s->basis, "estimate"))
            return el_errorf(EL_E_INVALID, "%s: field \"%sbasis\" is '%s': expected "
                             "\"datasheet\", \"interface\" or \"estimate\"", c->fname, where,
                             s->basis);
        b->storage_count++;
    }
    return EL_OK;
}

static el_status parse_cpu(const board_ctx *c, el_board *b) {
    el_status st = EL_OK;
    const cJSON *cpu = field(c, c->root, "cpu", "", &st);
    if (!cpu) return st;
    if (!cJSON_IsObject(cpu)) return bad_type(c, "", "cpu", cpu, "an object");
    if ((st = get_string(c, cpu, "cpu.", "arch", false, b->cpu_arch, sizeof b->cpu_arch)) ||
        (st = get_string(c, cpu, "cpu.", "model", true, b->cpu_model, sizeof b->cpu_model)) ||
        (st = get_uint(c, cpu, "cpu.", "cores", 1, 1024, &b->cpu_cores)))
        return st;
    if (strcmp(b->cpu_arch, "aarch64") && strcmp(b->cpu_arch, "x86_64"))
        return el_errorf(EL_E_INVALID, "%s: field \"cpu.arch\" is '%s': expected \"aarch64\" "
                         "or \"x86_64\"", c->fname, b->cpu_arch);
    const cJSON *arr = field(c, cpu, "features", "cpu.", &st);
    if (!arr) return st;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 0 || n > EL_BOARD_FEATURES_MAX) {
        char want[64];
        snprintf(want, sizeof want, "an array of at most %d names", EL_BOARD_FEATURES_MAX);
        return bad_type(c, "cpu.", "features", arr, want);
    }
    b->cpu_feature_count = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        char where[32];
        snprintf(where, sizeof where, "cpu.features[%zu]", b->cpu_feature_count);
        char *dst = b->cpu_features[b->cpu_feature_count];
        size_t len = cJSON_IsString(e) ? strlen(e->valuestring) : 0;
        bool ok = len > 0 && len < sizeof b->cpu_features[0];
        for (size_t i = 0; ok && i < len; i++) {
            char ch = e->valuestring[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
        }
        if (!ok) return bad_type(c, where, "", e, "a feature name of [a-z0-9_.], < 24 bytes");
        memcpy(dst, e->valuestring, len + 1);
        b->cpu_feature_count++;
    }
    return EL_OK;
}

static el_status parse_cuda(const board_ctx *c, el_board *b) {
    el_status st = EL_OK;
    const cJSON *it = field(c, c->root, "cuda_arch", "", &st);
    if (!it) return st;
    b->cuda_arch[0] = 0;
    if (cJSON_IsNull(it)) return EL_OK;
    const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 5 && n <= 6 && !strncmp(s, "sm_", 3);
    for (size_t i = 3; ok && i < n; i++) ok = s[i] >= '0' && s[i] <= '9';
    if (!ok) return bad_type(c, "", "cuda_arch", it, "null or \"sm_NN\" (e.g. \"sm_87\")");
    memcpy(b->cuda_arch, s, n + 1);
    return EL_OK;
}

static el_status parse_sources(const board_ctx *c) {
    el_status st = EL_OK;
    const cJSON *arr = field(c, c->root, "sources", "", &st);
    if (!arr) return st;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1)
        return bad_type(c, "", "sources", arr, "a non-empty array of strings");
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (!cJSON_IsString(e) || !e->valuestring[0])
        return bad_type(c, "", "sources[]", e, "a non-empty string");
    return EL_OK;
}

static el_status parse_root(const board_ctx *c, el_board *b) {
    el_status st;
    unsigned schema = 0;
    if ((st = get_uint(c, c->root, "", "schema", 1, 1000, &schema)) != EL_OK) return st;
    if (schema != EL_BOARD_SCHEMA)
        return el_errorf(EL_E_INVALID, "%s: \"schema\" is %u; this edgeload reads schema %d",
                         c->fname, schema, EL_BOARD_SCHEMA);
    if ((st = get_string(c, c->root, "", "name", false, b->name, sizeof b->name)) ||
        (st = get_size(c, c->root, "ram_total", 1, &b->ram_total)) ||
        (st = get_bool(c, c->root, "ram_shared_with_gpu", &b->ram_shared_with_gpu)) ||
        (st = get_size(c, c->root, "ram_typical_free", 1, &b->ram_typical_free)) ||
        (st = get_number(c, c->root, "", "memory_bandwidth_gb_s", 0, 1e5,
                         &b->mem_bandwidth_gb_s)) ||
        (st = parse_storage(c, b)) || (st = parse_cpu(c, b)) || (st = parse_cuda(c, b)) ||
        (st = get_size(c, c->root, "default_arena", 4096, &b->default_arena)) ||
        (st = get_uint(c, c->root, "", "default_threads", 0, 64, &b->default_threads)) ||
        (st = parse_sources(c)))
        return st;
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(c->root, "description");
    if (desc && !cJSON_IsString(desc))
        return bad_type(c, "", "description", desc, "a string (it is optional)");
    char x[32], y[32];
    if (b->ram_typical_free > b->ram_total)
        return el_errorf(EL_E_INVALID, "%s: \"ram_typical_free\" (%s) is more than "
                         "\"ram_total\" (%s)", c->fname,
                         el_size_format(b->ram_typical_free, x, sizeof x),
                         el_size_format(b->ram_total, y, sizeof y));
    if (b->default_arena > b->ram_typical_free)
        return el_errorf(EL_E_INVALID, "%s: \"default_arena\" (%s) is more than "
                         "\"ram_typical_free\" (%s): the board could not reserve it", c->fname,
                         el_size_format(b->default_arena, x, sizeof x),
                         el_size_format(b->ram_typical_free, y, sizeof y));
    return EL_OK;
}

el_status el_board_parse(const char *json, size_t len, const char *fname, el_board *out) {
    if (!fname) fname = "board";
    cJSON *root = NULL;
    el_status st = el_json_parse(json, len, fname, &root);
    if (st != EL_OK) return st;
    el_board b;
    memset(&b, 0, sizeof b);
    board_ctx c = {fname, root};
    if (!cJSON_IsObject(root)) {
        char got[64];
        st = el_errorf(EL_E_INVALID, "%s: a board file is one JSON object, got %s", fname,
                       el_json_describe(root, got, sizeof got));
    } else {
        st = parse_root(&c, &b);
    }
    cJSON_Delete(root);
    if (st != EL_OK) return st;
    snprintf(b.path, sizeof b.path, "%s", fname);
    *out = b;
    return EL_OK;
}

/* ---- finding the file -------------------------------------------------------------- */

/* Reads at most EL_BOARD_FILE_MAX bytes of path into buf (capacity cap > that). */
static el_status read_small_file(const char *path, char *buf, size_t cap, size_t *n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return el_errorf(EL_E_USAGE, "board file %s does not exist", path);
        return el_errorf(EL_E_IO, "cannot open board file %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return el_errorf(EL_E_USAGE, "board file %s is not a regular file", path);
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return el_errorf(EL_E_IO, "cannot read board file %s: %s", path, strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got > EL_BOARD_FILE_MAX)
        return el_errorf(EL_E_INVALID, "board file %s is larger than %u bytes: not a board "
                         "profile", path, EL_BOARD_FILE_MAX);
    *n = got;
    return EL_OK;
}

static bool is_name(const char *s) {
    if (!*s || strlen(s) >= 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

#define MAX_DIRS 12

typedef struct search_path {
    char dir[MAX_DIRS][PATH_MAX];
    int n;
} search_path;

static void add_dir(search_path *sp, const char *a, const char *b) {
    if (sp->n >= MAX_DIRS || !a || !*a) return;
    int w = snprintf(sp->dir[sp->n], sizeof sp->dir[0], "%s%s", a, b ? b : "");
    if (w > 0 && (size_t)w < sizeof sp->dir[0]) sp->n++;
}

static void build_search_path(search_path *sp) {
    sp->n = 0;
    const char *env = getenv("EDGELOAD_BOARDS");
    if (env) {
        char part[PATH_MAX];
        while (*env) {
            size_t k = strcspn(env, ":");
            if (k > 0 && k < sizeof part) {
                memcpy(part, env, k);
                part[k] = 0;
                add_dir(sp, part, NULL);
            }
            env += k;
            if (*env == ':') env++;
        }
    }
    char exe[PATH_MAX];
    ssize_t r = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (r > 0) {
        exe[r] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            add_dir(sp, exe, "/../share/edgeload/boards");
            add_dir(sp, exe, "/../boards");
            add_dir(sp, exe, "/boards");
        }
    }
}

/* Appends the board names found in the search path to buf (for the unknown-name message). */
static void list_boards(const search_path *sp, char *buf, size_t cap) {
    size_t o = strlen(buf);
    int found = 0;
    for (int i = 0; i < sp->n; i++) {
        DIR *d = opendir(sp->dir[i]);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t k = strlen(e->d_name);
            if (k <= 5 || strcmp(e->d_name + k - 5, ".json")) continue;
            int w = snprintf(buf + o, cap - o, "%s%.*s", found++ ? ", " : "", (int)(k - 5),
                             e->d_name);
            if (w < 0 || (size_t)w >= cap - o) {
                buf[o] = 0;
                closedir(d);
                return;
            }
            o += (size_t)w;
        }
        closedir(d);
    }
    if (!found) snprintf(buf + o, cap - o, "none");
}

static el_status load_file(const char *path, const char *want_name, el_board *out) {
    static char buf[EL_BOARD_FILE_MAX + 1];
    size_t n = 0;
    el_status st = read_small_file(path, buf, sizeof buf, &n);
    if (st != EL_OK) return st;
    el_board b;
    if ((st = el_board_parse(buf, n, path, &b)) != EL_OK) return st;
    if (want_name && strcmp(b.name, want_name))
        return el_errorf(EL_E_INVALID, "%s: \"name\" is '%s' but the file is %s.json: the name "
                         "must match the file", path, b.name, want_name);
    *out = b;
    return EL_OK;
}

el_status el_board_load(const char *spec, el_board *out) {
    if (!spec || !*spec) return el_errorf(EL_E_USAGE, "--board needs a board name or a file");
    size_t len = strlen(spec);
    if (strchr(spec, '/') || (len > 5 && !strcmp(spec + len - 5, ".json")))
        return load_file(spec, NULL, out);
    if (!is_name(spec))
        return el_errorf(EL_E_USAGE, "--board '%s': a board name is letters, digits, '.', '_' "
                         "and '-' (or give a path to a .json file)", spec);
    search_path sp;
    build_search_path(&sp);
    for (int i = 0; i < sp.n; i++) {
        char path[PATH_MAX + 80];
        snprintf(path, sizeof path, "%s/%s.json", sp.dir[i], spec);
        if (access(path, F_OK) == 0) {
            char real[PATH_MAX];
            return load_file(realpath(path, real) ? real : path, spec, out);
        }
    }
    char dirs[2048] = "", known[2048] = "";
    size_t o = 0;
    for (int i = 0; i < sp.n && o < sizeof dirs; i++) {
        int w = snprintf(dirs + o, sizeof dirs - o, "%s%s", i ? ", " : "", sp.dir[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
    list_boards(&sp, known, sizeof known);
    return el_errorf(EL_E_USAGE, "unknown board '%s' (boards found: %s); looked for %s.json "
                     "in %s; set $EDGELOAD_BOARDS to add folders, or give a .json path",
                     spec, known, spec, sp.n ? dirs : "(no folders)");
}
