/* el_test.c - the test harness behind el_test.h. */
#include "tests/support/el_test.h"

#include "kernels/fp16.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int el_test_passed;
int el_test_failed;

int el_test_finish(const char *name) {
    el_test_tmpdir_cleanup();
    printf("%s: %d passed, %d failed\n", name, el_test_passed, el_test_failed);
    return el_test_failed == 0 && el_test_passed > 0 ? 0 : 1;
}

void el_test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("SKIPPED: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    el_test_tmpdir_cleanup();
    exit(77);
}

static char g_tmpdir[512];

const char *el_test_tmpdir(void) {
    if (g_tmpdir[0]) return g_tmpdir;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/eltest.XXXXXX", base);
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "mkdtemp(%s): %s\n", g_tmpdir, strerror(errno));
        exit(2);
    }
    return g_tmpdir;
}

static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

void el_test_tmpdir_cleanup(void) {
    if (!g_tmpdir[0]) return;
    if (!getenv("EL_TEST_KEEP")) rm_tree(g_tmpdir);
    g_tmpdir[0] = 0;
}

const char *el_test_path(const char *name) {
    static char slots[8][1024];
    static int next;
    char *p = slots[next++ & 7];
    snprintf(p, 1024, "%s/%s", el_test_tmpdir(), name);
    return p;
}

bool el_test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

char *el_test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = 0;
    if (n) *n = len;
    return buf;
}

static bool write_le64(FILE *f, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    return fwrite(b, 1, 8, f) == 8;
}

bool el_test_write_safetensors_raw(const char *path, const char *json, const void *data,
                                   size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    size_t jl = strlen(json);
    bool ok = write_le64(f, jl) && fwrite(json, 1, jl, f) == jl &&
              (data_len == 0 || fwrite(data, 1, data_len, f) == data_len);
    return fclose(f) == 0 && ok;
}

static uint32_t mix(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

void el_test_fill(uint32_t seed, size_t tensor_index, el_dtype dt, uint64_t offset,
                  void *buf, uint64_t nbytes) {
    size_t es = el_dtype_size(dt);
    uint8_t *out = buf;
    uint32_t base = mix(seed * 0x9e3779b9u + (uint32_t)tensor_index * 0x85ebca6bu + 1u);
    for (uint64_t i = 0; i < nbytes; i += es) {
        uint64_t el = (offset + i) / es;
        uint32_t r = mix(base ^ (uint32_t)el ^ (uint32_t)(el >> 32) * 0xc2b2ae35u);
        float v = (float)(r >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */
        switch (dt) {
        case EL_DT_F32: memcpy(out + i, &v, 4); break;
        case EL_DT_F64: { double d = v; memcpy(out + i, &d, 8); } break;
        case EL_DT_F16: { uint16_t h = el_fp32_to_fp16(v); memcpy(out + i, &h, 2); } break;
        case EL_DT_BF16: { uint16_t h = el_fp32_to_bf16(v); memcpy(out + i, &h, 2); } break;
        default:
            for (size_t k = 0; k < es && i + k < nbytes; k++) out[i + k] = (uint8_t)(((uint64_t)r * 0x9e3779b97f4a7c15ull) >> (8 * k));
        }
    }
}

bool el_test_write_safetensors(const char *path, const el_test_tensor *t, size_t n,
                               uint32_t seed) {
    size_t cap = 256 + n * 256, len = 0;
    char *json = malloc(cap);
    if (!json) return false;
    uint64_t off = 0;
    len += (size_t)snprintf(json + len, cap - len, "{");
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = el_dtype_size(t[i].dtype);
        len += (size_t)snprintf(json + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                i ? "," : "", t[i].name, el_dtype_name(t[i].dtype));
        for (uint32_t d = 0; d < t[i].ndim; d++) {
            bytes *= t[i].shape[d];
            len += (size_t)snprintf(json + len, cap - len, "%s%llu", d ? "," : "",
                                    (unsigned long long)t[i].shape[d]);
        }
        len += (size_t)snprintf(json + len, cap - len, "],\"data_offsets\":[%llu,%llu]}",
                                (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    snprintf(json + len, cap - len, "}");
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(json);
        return false;
    }
    size_t jl = strlen(json);
    bool ok = write_le64(f, jl) && fwrite(json, 1, jl, f) == jl;
    free(json);
    uint8_t *buf = malloc(1 << 20);
    ok = ok && buf;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t bytes = el_dtype_size(t[i].dtype);
        for (uint32_t d = 0; d < t[i].ndim; d++) bytes *= t[i].shape[d];
        for (uint64_t o = 0; ok && o < bytes; o += 1 << 20) {
            uint64_t k = bytes - o < (1 << 20) ? bytes - o : (1 << 20);
            el_test_fill(seed, i, t[i].dtype, o, buf, k);
            ok = fwrite(buf, 1, k, f) == k;
        }
    }
    free(buf);
    return fclose(f) == 0 && ok;
}

double el_test_nmse(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0 ? num / den : num;
}

uint64_t el_test_vmhwm(void) {
    el_mem_report r;
    return el_mem_report_get(&r) == EL_OK ? r.vm_hwm : 0;
}

const char *el_test_shared_models(void) {
    static char path[1024];
    const char *env = getenv("EL_SHARED_MODELS");
    if (env && *env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/../shared/models", EL_SOURCE_DIR);
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? path : NULL;
}

int el_test_run_cli(const char *args, char **out, char **err) {
    const char *cli = getenv("EL_CLI");
    char def[1024];
    if (!cli || !*cli) {
        snprintf(def, sizeof def, "%s/edgeload", EL_BINARY_DIR);
        cli = def;
    }
    const char *dir = el_test_tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s >'%s/.cli_out' 2>'%s/.cli_err' </dev/null", cli, args,
             dir, dir);
    int rc = system(cmd);
    char p[1024];
    if (out) {
        snprintf(p, sizeof p, "%s/.cli_out", dir);
        *out = el_test_read_file(p, NULL);
    }
    if (err) {
        snprintf(p, sizeof p, "%s/.cli_err", dir);
        *err = el_test_read_file(p, NULL);
    }
    if (rc == -1 || !WIFEXITED(rc)) return -1;
    return WEXITSTATUS(rc);
}

size_t el_test_unhex_into(const char *h, char *out, size_t cap) {
    size_t n = strlen(h) / 2;
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

char *el_test_unhex(const char *h, size_t *n) {
    const size_t len = strlen(h) / 2;
    char *out = malloc(len + 1);
    *n = out ? el_test_unhex_into(h, out, len) : 0;
    if (out) out[len] = 0;
    return out;
}

el_arena *el_test_arena(const el_plan *plan, el_memory memory) {
    el_arena_params ap;
    el_plan_arena_params(plan, plan->total_bytes, 0, &ap);
    ap.memory = memory;
    el_arena *a = NULL;
    EL_CHECK_OK(el_arena_init(&a, &ap));
    return a;
}

uint64_t el_test_xorshift64(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

float el_test_frand(uint64_t *state) {
    return (float)((double)(el_test_xorshift64(state) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

float el_test_max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

int32_t el_test_argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}
