/* test_boards.c - board profiles: every committed boards/NAME.json is complete and reads back
 * through `edgeload plan --board` with the file's own values; plan --board's numbers (load
 * seconds = read bytes / MB/s, decode bound = bandwidth / weight bytes) for the bundled
 * model; broken files (not JSON, each field missing, wrong types, negative sizes, out of
 * range) give exit 2 naming the field; an unknown name gives exit 1 listing the boards;
 * the search path; --board defaults for arena and threads and explicit flags winning. */
// ctest-labels: cli;boards
// ctest-timeout: 120
#include "tests/llama_fixture.h"

#include <dirent.h>
#include <math.h>
#include <string.h>

#define BOARDS_DIR EL_SOURCE_DIR "/boards"

static const char *const k_required_boards[] = {
    "jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb",
    "jetson-agx-thor",      "raspberry-pi-5-8gb",  "generic-x86_64"};

static const char *const k_fields[] = {
    "schema", "name", "ram_total", "ram_shared_with_gpu", "ram_typical_free",
    "memory_bandwidth_gb_s", "storage", "cpu", "cuda_arch", "default_arena",
    "default_threads", "sources"};

static bool close_to(double a, double b) { return fabs(a - b) <= 1e-6 * fabs(b) + 1e-12; }

static uint64_t size_of(const cJSON *v) {
    uint64_t b = 0;
    if (cJSON_IsString(v) && el_size_parse(v->valuestring, &b) == EL_OK) return b;
    if (cJSON_IsNumber(v)) return (uint64_t)v->valuedouble;
    return UINT64_MAX;
}

static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* `plan STORIES --board spec --json` parsed; NULL if it failed. *rc gets the exit code. */
static cJSON *plan_json(const char *spec, const char *extra, int *rc) {
    char args[2048];
    snprintf(args, sizeof args, "plan " STORIES_BIN " --board '%s' --json %s", spec,
             extra ? extra : "");
    char *out = NULL;
    *rc = el_test_run_cli(args, &out, NULL);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    free(out);
    return j;
}

/* The file's own values against what plan --board reports, and the derived numbers. */
static void check_board_file(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, BOARDS_DIR "/%s.json", name);
    char *text = el_test_read_file(path, NULL);
    EL_CHECK(text != NULL);
    if (!text) {
        fprintf(stderr, "missing board file %s\n", path);
        return;
    }
    cJSON *f = cJSON_Parse(text);
    free(text);
    EL_CHECK(f != NULL);
    if (!f) return;
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        bool has = cJSON_GetObjectItem(f, k_fields[i]) != NULL;
        EL_CHECK(has);
        if (!has) fprintf(stderr, "%s: no field %s\n", name, k_fields[i]);
    }
    const cJSON *cpu = cJSON_GetObjectItem(f, "cpu");
    EL_CHECK(cJSON_GetObjectItem(cpu, "cores") && cJSON_GetObjectItem(cpu, "arch") &&
             cJSON_GetObjectItem(cpu, "features") && cJSON_GetObjectItem(cpu, "model"));
    EL_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(f, "sources")) >= 1);
    EL_CHECK(!strcmp(cJSON_GetObjectItem(f, "name")->valuestring, name));

    int rc = -1;
    cJSON *j = plan_json(name, NULL, &rc); /* by name: found next to the executable */
    EL_CHECK(rc == 0 && j);
    const cJSON *b = cJSON_GetObjectItem(j, "board");
    EL_CHECK(b != NULL);
    if (!b) {
        cJSON_Delete(f);
        cJSON_Delete(j);
        return;
    }
    EL_CHECK(!strcmp(cJSON_GetObjectItem(b, "name")->valuestring, name));
    EL_CHECK(num(b, "ram_total") == (double)size_of(cJSON_GetObjectItem(f, "ram_total")));
    EL_CHECK(num(b, "ram_typical_free") ==
             (double)size_of(cJSON_GetObjectItem(f, "ram_typical_free")));
    uint64_t def_arena = size_of(cJSON_GetObjectItem(f, "default_arena"));
    EL_CHECK(num(b, "default_arena") == (double)def_arena);
    EL_CHECK(num(b, "default_threads") == num(f, "default_threads"));
    EL_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(b, "ram_shared_with_gpu")) ==
             cJSON_IsTrue(cJSON_GetObjectItem(f, "ram_shared_with_gpu")));
    double bw = num(f, "memory_bandwidth_gb_s");
    EL_CHECK(bw > 0 && close_to(num(b, "memory_bandwidth_gb_s"), bw));
    EL_CHECK(num(cJSON_GetObjectItem(b, "cpu"), "cores") == num(cpu, "cores"));
    const cJSON *ca = cJSON_GetObjectItem(f, "cuda_arch"), *cb = cJSON_GetObjectItem(b, "cuda_arch");
    EL_CHECK((cJSON_IsNull(ca) && cJSON_IsNull(cb)) ||
             (cJSON_IsString(ca) && cJSON_IsString(cb) && !strcmp(ca->valuestring, cb->valuestring)));
    /* Without --arena the arena is the board's default. */
    EL_CHECK(num(j, "arena") == (double)def_arena && num(b, "arena") == (double)def_arena);
    /* Load seconds per storage kind = read bytes / (MB/s x 10^6), in the file's order. */
    double read_bytes = num(j, "read_bytes");
    const cJSON *fs = cJSON_GetObjectItem(f, "storage"), *ls = cJSON_GetObjectItem(b, "load");
    EL_CHECK(cJSON_GetArraySize(fs) >= 1 && cJSON_GetArraySize(fs) == cJSON_GetArraySize(ls));
    for (int i = 0; i < cJSON_GetArraySize(fs) && i < cJSON_GetArraySize(ls); i++) {
        const cJSON *a = cJSON_GetArrayItem(fs, i), *l = cJSON_GetArrayItem(ls, i);
        double mbs = num(a, "read_mb_s");
        EL_CHECK(!strcmp(cJSON_GetObjectItem(a, "kind")->valuestring,
                         cJSON_GetObjectItem(l, "kind")->valuestring));
        EL_CHECK(mbs > 0 && close_to(num(l, "seconds"), read_bytes / (mbs * 1e6)));
    }
    /* Decode bound = bandwidth / the weights region (every weight read once per token). */
    double wbytes = num(cJSON_GetObjectItem(j, "regions"), "weights");
    EL_CHECK(num(b, "decode_bytes_per_token") == wbytes);
    EL_CHECK(wbytes > 0 && close_to(num(b, "decode_tok_s_bound"), bw * 1e9 / wbytes));
    double total = num(j, "total");
    EL_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(b, "fits_free_ram")) ==
             (total <= num(b, "ram_typical_free")));
    EL_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(b, "fits_default_arena")) ==
             (total <= (double)def_arena));
    cJSON_Delete(j);
    cJSON_Delete(f);
}

static void test_committed_boards(void) {
    for (size_t i = 0; i < sizeof k_required_boards / sizeof k_required_boards[0]; i++)
        check_board_file(k_required_boards[i]);
    /* Any other committed board is held to the same standard. */
    DIR *d = opendir(BOARDS_DIR);
    EL_CHECK(d != NULL);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        size_t k = strlen(e->d_name);
        if (k <= 5 || strcmp(e->d_name + k - 5, ".json")) continue;
        n++;
        bool required = false;
        for (size_t i = 0; i < sizeof k_required_boards / sizeof k_required_boards[0]; i++)
            if (!strncmp(e->d_name, k_required_boards[i], k - 5) &&
                strlen(k_required_boards[i]) == k - 5)
                required = true;
        if (!required) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(k - 5), e->d_name);
            check_board_file(name);
        }
    }
    if (d) closedir(d);
    EL_CHECK(n >= 6);
}

/* plan --board in text form and the read bytes it uses match what load measures. */
static void test_plan_numbers(void) {
    char *out = NULL;
    int rc = el_test_run_cli("plan " STORIES_BIN " --board raspberry-pi-5-8gb", &out, NULL);
    EL_CHECK(rc == 0 && out && strstr(out, "board raspberry-pi-5-8gb") &&
             strstr(out, "microsd") && strstr(out, "tok/s") && strstr(out, "fits"));
    free(out);
    int prc = -1;
    cJSON *plan = plan_json("raspberry-pi-5-8gb", NULL, &prc);
    rc = el_test_run_cli("load " STORIES_BIN " --json", &out, NULL);
    cJSON *load = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(rc == 0 && load && plan);
    EL_CHECK(num(load, "bytes_read") == num(plan, "read_bytes"));
    /* The microSD line of the Pi: 104 MB/s. */
    const cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(plan, "board"), "load"), 0);
    EL_CHECK(close_to(num(l0, "seconds"), num(load, "bytes_read") / 104e6));
    cJSON_Delete(plan);
    cJSON_Delete(load);
    free(out);
    /* --arena wins over the board's default arena. */
    cJSON *j = plan_json("jetson-orin-nano-8gb", "--arena 8M", &rc);
    EL_CHECK(rc == 0 && j && num(j, "arena") == 8.0 * 1024 * 1024);
    EL_CHECK(j && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "board"), "arena_from")->valuestring,
                          "--arena"));
    cJSON_Delete(j);
}

/* ---- broken board files -------------------------------------------------------------- */

static const char k_good[] =
    "{\"schema\":1,\"name\":\"testbox\",\"ram_total\":\"1G\",\"ram_shared_with_gpu\":false,"
    "\"ram_typical_free\":\"512M\",\"memory_bandwidth_gb_s\":10,"
    "\"storage\":[{\"kind\":\"emmc\",\"read_mb_s\":200,\"basis\":\"estimate\"}],"
    "\"cpu\":{\"arch\":\"aarch64\",\"model\":\"Test\",\"cores\":4,\"features\":[\"asimd\"]},"
    "\"cuda_arch\":null,\"default_arena\":\"64M\",\"default_threads\":1,"
    "\"sources\":[\"made up for the test\"]}";

/* Writes text as DIR/testbox.json and runs plan --board on that path: exit code + stderr. */
static int try_board(const char *text, size_t len, char **err) {
    const char *path = el_test_path("testbox.json");
    el_test_write_file(path, text, len);
    char args[1024];
    snprintf(args, sizeof args, "plan " STORIES_BIN " --board %s", path);
    return el_test_run_cli(args, NULL, err);
}

static void expect_invalid(const char *text, const char *want) {
    char *err = NULL;
    int rc = try_board(text, strlen(text), &err);
    bool ok = rc == 2 && err && strstr(err, "testbox.json") && strstr(err, want);
    EL_CHECK(ok);
    if (!ok) fprintf(stderr, "board %.120s\n  rc %d, stderr %s  want '%s'\n", text, rc,
                     err ? err : "(none)", want);
    free(err);
}

/* k_good with one member replaced (value NULL: removed). */
static char *variant(const char *key, const char *value_json) {
    cJSON *j = cJSON_Parse(k_good);
    const char *dot = strchr(key, '.');
    cJSON *obj = j;
    char k[64];
    snprintf(k, sizeof k, "%s", key);
    if (dot) {
        k[dot - key] = 0;
        obj = cJSON_GetObjectItem(j, k);
        snprintf(k, sizeof k, "%s", dot + 1);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, k);
    if (value_json) cJSON_AddItemToObject(obj, k, cJSON_Parse(value_json));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void expect_variant(const char *key, const char *value_json, const char *want) {
    char *s = variant(key, value_json);
    expect_invalid(s, want);
    free(s);
}

static void test_broken_files(void) {
    char *err = NULL;
    /* The good one works: the baseline for every variant below. */
    EL_CHECK(try_board(k_good, strlen(k_good), &err) == 0);
    free(err);
    /* Not JSON, truncated, empty, not an object. */
    expect_invalid("this is not json", "not valid JSON");
    char cut[64];
    memcpy(cut, k_good, 60);
    cut[60] = 0;
    expect_invalid(cut, "JSON");
    expect_invalid("", "empty JSON");
    expect_invalid("[1,2]", "one JSON object");
    /* Each required field missing, by name. */
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "missing field \"%s\"", k_fields[i]);
        expect_variant(k_fields[i], NULL, want);
    }
    expect_variant("cpu.cores", NULL, "missing field \"cpu.cores\"");
    expect_variant("cpu.arch", NULL, "missing field \"cpu.arch\"");
    expect_variant("cpu.features", NULL, "missing field \"cpu.features\"");
    /* Wrong types. */
    expect_variant("ram_total", "true", "\"ram_total\" must be a size");
    expect_variant("ram_shared_with_gpu", "\"yes\"", "\"ram_shared_with_gpu\" must be true or false");
    expect_variant("memory_bandwidth_gb_s", "\"fast\"", "\"memory_bandwidth_gb_s\" must be a number");
    expect_variant("storage", "{}", "\"storage\" must be an array");
    expect_variant("storage", "[]", "\"storage\" must be an array");
    expect_variant("storage", "[{\"kind\":\"emmc\",\"read_mb_s\":\"200\",\"basis\":\"estimate\"}]",
                   "\"storage[0].read_mb_s\" must be a number");
    expect_variant("storage", "[{\"kind\":\"emmc\",\"read_mb_s\":200,\"basis\":\"guess\"}]",
                   "storage[0].basis");
    expect_variant("cpu", "\"arm\"", "\"cpu\" must be an object");
    expect_variant("cpu.cores", "\"four\"", "\"cpu.cores\" must be an integer");
    expect_variant("cpu.arch", "\"riscv64\"", "cpu.arch");
    expect_variant("cpu.features", "[1]", "cpu.features[0]");
    expect_variant("cuda_arch", "87", "\"cuda_arch\" must be null or");
    expect_variant("cuda_arch", "\"ampere\"", "\"cuda_arch\" must be null or");
    expect_variant("default_threads", "\"1\"", "\"default_threads\" must be an integer");
    expect_variant("sources", "[]", "\"sources\" must be a non-empty array");
    expect_variant("name", "\"Test Box\"", "\"name\" must be a name");
    expect_variant("schema", "2", "schema");
    /* Negative and out-of-range values. */
    expect_variant("ram_total", "-1", "\"ram_total\" must be a size");
    expect_variant("default_arena", "\"-4G\"", "\"default_arena\" must be a size");
    expect_variant("ram_typical_free", "-0.5", "\"ram_typical_free\" must be a size");
    expect_variant("memory_bandwidth_gb_s", "-10", "\"memory_bandwidth_gb_s\" must be a number > 0");
    expect_variant("memory_bandwidth_gb_s", "0", "\"memory_bandwidth_gb_s\" must be a number > 0");
    expect_variant("storage", "[{\"kind\":\"emmc\",\"read_mb_s\":0,\"basis\":\"estimate\"}]",
                   "read_mb_s");
    expect_variant("cpu.cores", "0", "\"cpu.cores\" must be an integer in [1, 1024]");
    expect_variant("default_threads", "65", "\"default_threads\" must be an integer in [0, 64]");
    expect_variant("default_threads", "-1", "\"default_threads\" must be an integer in [0, 64]");
    expect_variant("ram_typical_free", "\"2G\"", "more than \"ram_total\"");
    expect_variant("default_arena", "\"768M\"", "more than \"ram_typical_free\"");
    expect_variant("ram_total", "\"1e400\"", "\"ram_total\" must be a size");
    /* Too large to be a board profile. */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, k_good, strlen(k_good));
    huge[big] = 0;
    int rc = try_board(huge, big, &err);
    EL_CHECK(rc == 2 && err && strstr(err, "larger than"));
    free(err);
    free(huge);
}

/* ---- names and the search path ------------------------------------------------------- */

static void test_lookup(void) {
    char *err = NULL;
    int rc = el_test_run_cli("plan " STORIES_BIN " --board no-such-board", NULL, &err);
    EL_CHECK(rc == 1 && err && strstr(err, "unknown board 'no-such-board'") &&
             strstr(err, "jetson-orin-nano-8gb") && strstr(err, "EDGELOAD_BOARDS"));
    free(err);
    rc = el_test_run_cli("plan " STORIES_BIN " --board 'bad name!'", NULL, &err);
    EL_CHECK(rc == 1);
    free(err);
    rc = el_test_run_cli("plan " STORIES_BIN " --board /nonexistent/x.json", NULL, &err);
    EL_CHECK(rc == 1 && err && strstr(err, "does not exist"));
    free(err);
    rc = el_test_run_cli("plan " STORIES_BIN " --board " EL_SOURCE_DIR "/boards/", NULL, &err);
    EL_CHECK(rc == 1 && err && strstr(err, "not a regular file"));
    free(err);
    /* The unknown board fails before the model is opened (no model error). */
    rc = el_test_run_cli("generate /nonexistent.bin --board no-such-board", NULL, &err);
    EL_CHECK(rc == 1 && err && strstr(err, "unknown board"));
    free(err);

    /* $EDGELOAD_BOARDS comes first: a board of our own, and one shadowing a committed name. */
    const char *dir = el_test_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/mybox.json", dir);
    char *s = variant("name", "\"mybox\"");
    EL_CHECK(el_test_write_file(path, s, strlen(s)));
    free(s);
    snprintf(path, sizeof path, "%s/generic-x86_64.json", dir);
    s = variant("name", "\"generic-x86_64\"");
    EL_CHECK(el_test_write_file(path, s, strlen(s)));
    free(s);
    snprintf(path, sizeof path, "%s/wrongname.json", dir);
    EL_CHECK(el_test_write_file(path, k_good, strlen(k_good))); /* says "testbox" */
    char env[1100];
    snprintf(env, sizeof env, "/nonexistent-dir:%s", dir);
    setenv("EDGELOAD_BOARDS", env, 1);
    cJSON *j = plan_json("mybox", NULL, &rc);
    EL_CHECK(rc == 0 && j && num(j, "arena") == 64.0 * 1024 * 1024);
    cJSON_Delete(j);
    j = plan_json("generic-x86_64", NULL, &rc);
    EL_CHECK(rc == 0 && j && num(cJSON_GetObjectItem(j, "board"), "default_arena") ==
                                 64.0 * 1024 * 1024);
    cJSON_Delete(j);
    rc = el_test_run_cli("plan " STORIES_BIN " --board wrongname", NULL, &err);
    EL_CHECK(rc == 2 && err && strstr(err, "must match the file"));
    free(err);
    unsetenv("EDGELOAD_BOARDS");
    /* Without it, the committed generic-x86_64 again. */
    j = plan_json("generic-x86_64", NULL, &rc);
    EL_CHECK(rc == 0 && j && num(cJSON_GetObjectItem(j, "board"), "default_arena") ==
                                 8.0 * 1024 * 1024 * 1024);
    cJSON_Delete(j);
}

/* ---- fit and defaults -------------------------------------------------------------- */

static void test_fit_and_defaults(void) {
    /* A board whose free RAM is below the plan: exit 3 and "fits_free_ram": false. */
    char *s = variant("ram_typical_free", "\"1M\"");
    cJSON *j0 = cJSON_Parse(s);
    free(s);
    cJSON_ReplaceItemInObject(j0, "default_arena", cJSON_CreateString("1M"));
    s = cJSON_PrintUnformatted(j0);
    cJSON_Delete(j0);
    const char *path = el_test_path("testbox.json");
    el_test_write_file(path, s, strlen(s));
    free(s);
    int rc = -1;
    cJSON *j = plan_json(path, NULL, &rc);
    EL_CHECK(rc == 3 && j);
    const cJSON *b = cJSON_GetObjectItem(j, "board");
    EL_CHECK(b && cJSON_IsFalse(cJSON_GetObjectItem(b, "fits_free_ram")) &&
             cJSON_IsFalse(cJSON_GetObjectItem(b, "fits_default_arena")) &&
             cJSON_IsFalse(cJSON_GetObjectItem(j, "fits")));
    cJSON_Delete(j);
    /* --arena big enough fixes the arena, not the board's free RAM: still 3. */
    j = plan_json(path, "--arena 16M", &rc);
    EL_CHECK(rc == 3 && j && cJSON_IsTrue(cJSON_GetObjectItem(j, "fits")));
    cJSON_Delete(j);

    /* --board defaults on a model command: 1 thread, the plan checked against the 64M
     * budget and only the plan's total reserved; explicit flags win. */
    el_test_write_file(path, k_good, strlen(k_good));
    char args[1024], *out = NULL;
    rc = el_test_run_cli("plan " STORIES_BIN " --json", &out, NULL);
    j = out ? cJSON_Parse(out) : NULL;
    const double plan_total = j ? num(j, "total") : -1;
    EL_CHECK(rc == 0 && plan_total > 0 && plan_total < 64.0 * 1024 * 1024);
    cJSON_Delete(j);
    free(out);
    out = NULL;
    snprintf(args, sizeof args,
             "generate " STORIES_BIN " --board %s -p Lily -n 3 --temp 0 --json --device cpu",
             path);
    rc = el_test_run_cli(args, &out, NULL);
    j = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(rc == 0 && j);
    EL_CHECK(num(cJSON_GetObjectItem(j, "stats"), "threads") == 1);
    const cJSON *arena = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "memory"), "arena");
    EL_CHECK(num(arena, "reserved") == plan_total);
    cJSON_Delete(j);
    free(out);
    snprintf(args, sizeof args, "generate " STORIES_BIN " --board %s -p Lily -n 3 --temp 0 "
             "--json --threads 2 --arena 16M", path);
    rc = el_test_run_cli(args, &out, NULL);
    j = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(rc == 0 && j);
    EL_CHECK(num(cJSON_GetObjectItem(j, "stats"), "threads") == 2);
    arena = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "memory"), "arena");
    EL_CHECK(num(arena, "reserved") == 16.0 * 1024 * 1024);
    cJSON_Delete(j);
    free(out);
    /* load --board: the plan's total within the board's budget. */
    snprintf(args, sizeof args, "load " STORIES_BIN " --board %s --json", path);
    rc = el_test_run_cli(args, &out, NULL);
    j = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(rc == 0 && j && num(cJSON_GetObjectItem(j, "arena"), "reserved") == plan_total);
    cJSON_Delete(j);
    free(out);
    /* A budget smaller than the plan: exit 3 before anything is read, naming the need. */
    {
        char small[4096];
        const char *at = strstr(k_good, "\"default_arena\":\"64M\"");
        EL_CHECK(at != NULL && strlen(k_good) < sizeof small);
        if (at) {
            int pre = (int)(at - k_good);
            snprintf(small, sizeof small, "%.*s\"default_arena\":\"1M\"%s", pre, k_good,
                     at + strlen("\"default_arena\":\"64M\""));
            el_test_write_file(path, small, strlen(small));
            char *err = NULL;
            snprintf(args, sizeof args, "generate " STORIES_BIN " --board %s -p Lily -n 3", path);
            EL_CHECK(el_test_run_cli(args, NULL, &err) == 3 && err && strstr(err, "needs"));
            free(err);
        }
    }
    /* A broken board on a model command: 2, nothing loaded. */
    el_test_write_file(path, "{", 1);
    snprintf(args, sizeof args, "load " STORIES_BIN " --board %s", path);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 2);
}

int main(void) {
    fixture_require_stories();
    test_committed_boards();
    test_plan_numbers();
    test_broken_files();
    test_lookup();
    test_fit_and_defaults();
    return el_test_finish("test_boards");
}
