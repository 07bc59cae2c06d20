/* test_tokenizer_chat.c - the chat template interpreter (tokenizer/chat_template.c) against
 * transformers' apply_chat_template renderings of the real templates of SmolLM2, Qwen2.5,
 * Llama 3.1/3.2, Phi-3/3.5, Mistral (v0.2, v1, Nemo/v3) and Gemma 3
 * (tests/fixtures/chat/chat_cases.json, made by scripts/fixtures_chat.py): every case byte
 * for byte, through the JSON entry point and (role/content conversations) the struct one,
 * with no heap allocation while rendering. Then the sandbox: raise_exception's message,
 * unsupported syntax with line:col, output and work buffers too small, runaway loops, deep
 * nesting, attribute access beyond the data, and a hostile mix of all of them. */
// ctest-labels: tokenizer
// ctest-timeout: 60
#include "tests/support/el_alloc_count.h"
#include "tests/support/el_test.h"
#include "tokenizer/chat_template.h"

#include <cjson/cJSON.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIXTURE EL_SOURCE_DIR "/tests/fixtures/chat/chat_cases.json"
#define WORK_CAP (1u << 20)
#define OUT_CAP (256u * 1024u)

static char g_work[WORK_CAP] __attribute__((aligned(16)));
static char g_out[OUT_CAP];

static void show_diff(const char *got, size_t ngot, const char *want) {
    size_t nw = strlen(want), i = 0;
    while (i < ngot && i < nw && got[i] == want[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  first difference at byte %zu (got %zu bytes, want %zu)\n  got:  ...%.*s\n  want: ...%.*s\n",
            i, ngot, nw, (int)(ngot - from < 120 ? ngot - from : 120), got + from,
            (int)(nw - from < 120 ? nw - from : 120), want + from);
}

/* Options for one fixture case; vars' JSON texts are malloc'd into var_json (freed by caller). */
typedef struct case_opts {
    el_chat_opts o;
    el_chat_var vars[4];
    char *var_json[4];
} case_opts;

static void make_opts(case_opts *co, const cJSON *tmpl, const cJSON *cs, const char *tools, int64_t now) {
    memset(co, 0, sizeof *co);
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(tmpl, "bos_token");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(tmpl, "eos_token");
    co->o.bos_token = cJSON_IsString(bos) ? bos->valuestring : NULL;
    co->o.eos_token = cJSON_IsString(eos) ? eos->valuestring : NULL;
    co->o.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "add_generation_prompt"));
    co->o.now = now;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "tools"))) {
        co->o.tools_json = tools;
        co->o.tools_json_len = strlen(tools);
    }
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(cs, "vars");
    size_t k = 0;
    for (const cJSON *v = vars ? vars->child : NULL; v && k < 4; v = v->next, k++) {
        co->var_json[k] = cJSON_PrintUnformatted(v);
        co->vars[k] = (el_chat_var){v->string, co->var_json[k], strlen(co->var_json[k])};
    }
    co->o.vars = co->vars;
    co->o.n_vars = k;
}

/* Messages of a role/content-only conversation as structs; false if it has other keys. */
static bool as_msgs(const cJSON *conv, el_chat_msg *m, size_t cap, size_t *n) {
    *n = 0;
    for (const cJSON *it = conv->child; it; it = it->next) {
        if (*n == cap) return false;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "role"), *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (cJSON_GetArraySize(it) != 2 || !cJSON_IsString(r) || !cJSON_IsString(c)) return false;
        m[*n] = (el_chat_msg){r->valuestring, strlen(r->valuestring), c->valuestring, strlen(c->valuestring)};
        (*n)++;
    }
    return true;
}

static void test_snippets(const cJSON *doc);
static el_status run(const char *tmpl, const el_chat_opts *o, size_t out_cap, size_t work_cap);

static void test_fixture(void) {
    size_t n = 0;
    char *text = el_test_read_file(FIXTURE, &n);
    EL_CHECK(text != NULL);
    if (!text) return;
    cJSON *doc = cJSON_ParseWithLength(text, n);
    EL_CHECK(doc != NULL);
    if (!doc) {
        free(text);
        return;
    }
    const cJSON *templates = cJSON_GetObjectItemCaseSensitive(doc, "templates");
    const cJSON *convs = cJSON_GetObjectItemCaseSensitive(doc, "conversations");
    const char *tools = cJSON_GetObjectItemCaseSensitive(doc, "tools")->valuestring;
    int64_t now = (int64_t)cJSON_GetObjectItemCaseSensitive(doc, "frozen_now_epoch")->valuedouble;
    int ncase = 0, nok = 0, nerr = 0, nstruct = 0;
    size_t max_peak = 0;
    long allocs = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(doc, "cases")) {
        const char *tname = cJSON_GetObjectItemCaseSensitive(cs, "template")->valuestring;
        const char *cname = cJSON_GetObjectItemCaseSensitive(cs, "conversation")->valuestring;
        const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(templates, tname);
        const char *src = cJSON_GetObjectItemCaseSensitive(tmpl, "template")->valuestring;
        const char *conv = cJSON_GetObjectItemCaseSensitive(convs, cname)->valuestring;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(cs, "expected");
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(cs, "error");
        case_opts co;
        make_opts(&co, tmpl, cs, tools, now);
        size_t len = 0, peak = 0;
        co.o.work_peak = &peak;
        el_alloc_arm();
        el_status st = el_chat_render_json(src, strlen(src), conv, strlen(conv), &co.o, g_work, WORK_CAP, g_out,
                                           OUT_CAP, &len);
        allocs += el_alloc_disarm();
        ncase++;
        EL_CHECK(peak > 0 && peak <= WORK_CAP);
        if (peak > max_peak) max_peak = peak;
        if (cJSON_IsString(want)) {
            bool same = st == EL_OK && len == strlen(want->valuestring) && !memcmp(g_out, want->valuestring, len);
            if (!same) {
                fprintf(stderr, "FAIL case %s/%s agp=%d: %s\n", tname, cname, co.o.add_generation_prompt,
                        st == EL_OK ? "output differs" : el_last_error());
                if (st == EL_OK) show_diff(g_out, len, want->valuestring);
            }
            EL_CHECK(same);
            nok += same;
            /* the struct entry point gives the same bytes */
            el_chat_msg m[16];
            size_t nm = 0;
            cJSON *cj = cJSON_Parse(conv);
            if (cj && as_msgs(cj, m, 16, &nm)) {
                size_t len2 = 0;
                el_alloc_arm();
                st = el_chat_render(src, strlen(src), m, nm, &co.o, g_work, WORK_CAP, g_out, OUT_CAP, &len2);
                allocs += el_alloc_disarm();
                bool same2 = st == EL_OK && len2 == strlen(want->valuestring) && !memcmp(g_out, want->valuestring, len2);
                if (!same2) fprintf(stderr, "FAIL struct case %s/%s: %s\n", tname, cname, st == EL_OK ? "differs" : el_last_error());
                EL_CHECK(same2);
                nstruct++;
            }
            cJSON_Delete(cj);
        } else {
            /* transformers failed: so must we; raise_exception's text must be quoted */
            const char *type = cJSON_GetObjectItemCaseSensitive(cs, "error_type")->valuestring;
            bool ok = st == EL_E_INVALID &&
                      (strcmp(type, "TemplateError") != 0 || strstr(el_last_error(), err->valuestring) != NULL);
            if (!ok)
                fprintf(stderr, "FAIL case %s/%s: want %s '%s', got %s (%s)\n", tname, cname, type, err->valuestring,
                        el_status_str(st), st == EL_OK ? g_out : el_last_error());
            EL_CHECK(ok);
            nerr += ok;
        }
        for (size_t k = 0; k < co.o.n_vars; k++) free(co.var_json[k]);
    }
    /* Errors format their message (el_errorf); successful renders allocate nothing. */
    EL_CHECK(allocs == 0);
    test_snippets(doc);
    printf("fixture: %d cases, %d rendered identically, %d failed as transformers did, %d also through "
           "el_chat_render; %ld heap allocations while rendering; work memory peak %zu bytes\n", ncase, nok, nerr,
           nstruct, allocs, max_peak);
    EL_CHECK(max_peak < 256 * 1024);
    cJSON_Delete(doc);
    free(text);
}

/* Renders tmpl for one user message "hi"; returns the status, output in g_out. */
static el_status run(const char *tmpl, const el_chat_opts *o, size_t out_cap, size_t work_cap) {
    el_chat_msg m = {"user", 4, "hi", 2};
    size_t len = 0;
    return el_chat_render(tmpl, strlen(tmpl), &m, 1, o, g_work, work_cap, g_out, out_cap, &len);
}
static bool out_is(const char *tmpl, const char *want) {
    el_status st = run(tmpl, NULL, OUT_CAP, WORK_CAP);
    bool ok = st == EL_OK && !strcmp(g_out, want);
    if (!ok) fprintf(stderr, "  %s -> %s [%s], want [%s]\n", tmpl, el_status_str(st), st == EL_OK ? g_out : el_last_error(), want);
    return ok;
}
static bool err_has(const char *tmpl, el_status want, const char *text) {
    el_status st = run(tmpl, NULL, OUT_CAP, WORK_CAP);
    bool ok = st == want && strstr(el_last_error(), text) != NULL;
    if (!ok) fprintf(stderr, "  %s -> %s (%s), want %s containing '%s'\n", tmpl, el_status_str(st),
                     st == EL_OK ? g_out : el_last_error(), el_status_str(want), text);
    return ok;
}

static void test_errors(void) {
    /* raise_exception: the template's message, EL_E_INVALID, with where */
    EL_CHECK(err_has("{% if messages|length < 2 %}{{ raise_exception('need two messages, got ' ~ messages|length) }}{% endif %}",
                     EL_E_INVALID, "1:32: the template raised an exception: need two messages, got 1"));
    /* unsupported syntax names line:col */
    EL_CHECK(err_has("hello\n  {{ x | nosuchfilter }}", EL_E_UNSUPPORTED, "2:10: filter 'nosuchfilter' is not supported"));
    EL_CHECK(err_has("{% call f() %}x{% endcall %}", EL_E_UNSUPPORTED, "1:4: tag 'call' is not supported"));
    EL_CHECK(err_has("{% include 'other.j2' %}", EL_E_UNSUPPORTED, "1:4: tag 'include'"));
    EL_CHECK(err_has("a\nb\n{% if true %}never closed", EL_E_UNSUPPORTED, "'endif' is missing"));
    EL_CHECK(err_has("{{ 1 +* 2 }}", EL_E_UNSUPPORTED, "1:7: unexpected '*'"));
    EL_CHECK(err_has("{{ x is frobnicated }}", EL_E_UNSUPPORTED, "1:9: test 'frobnicated' is not supported"));
    EL_CHECK(err_has("{{ 'unterminated }}", EL_E_UNSUPPORTED, "1:4: unterminated string"));
    EL_CHECK(err_has("{# no end", EL_E_UNSUPPORTED, "missing end of comment"));
    EL_CHECK(err_has("{{ '%s' % 'x' }}", EL_E_UNSUPPORTED, "formatting"));
    EL_CHECK(err_has("{% set x | upper %}block{% endset %}", EL_E_UNSUPPORTED, "1:10: expected '=' or '%}'"));
    EL_CHECK(err_has("{{ x.y }}", EL_E_INVALID, "'x' is undefined"));
    EL_CHECK(err_has("{{ 'a' + 1 }}", EL_E_INVALID, "unsupported operand types for +: 'str' and 'int'"));
    EL_CHECK(err_has("{{ 1 // 0 }}", EL_E_INVALID, "by zero"));
    EL_CHECK(err_has("{% break %}", EL_E_UNSUPPORTED, "outside a for loop"));
    EL_CHECK(el_chat_check("{% for m in messages %}{{ m.content }}{% endfor %}", 50, g_work, WORK_CAP) == EL_OK);
    EL_CHECK(el_chat_check("{% for m in messages %}", 23, g_work, WORK_CAP) == EL_E_UNSUPPORTED);
    EL_CHECK(err_has("\xff\xfe{{ x }}", EL_E_INVALID, "not valid UTF-8"));

    /* output too small: EL_E_NOFIT naming the capacity; exactly enough (with the NUL) works */
    EL_CHECK(run("{{ 'x' * 100 }}", NULL, 100, WORK_CAP) == EL_E_NOFIT);
    EL_CHECK(strstr(el_last_error(), "output buffer") != NULL);
    EL_CHECK(run("{{ 'x' * 100 }}", NULL, 101, WORK_CAP) == EL_OK && strlen(g_out) == 100);
    /* work memory too small, or below the minimum */
    EL_CHECK(run("{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ 'abcdefghij' %}{% endfor %}",
                 NULL, OUT_CAP, WORK_CAP) == EL_E_NOFIT);
    EL_CHECK(strstr(el_last_error(), "work memory") != NULL);
    size_t peak = 0;
    el_chat_opts po = {.work_peak = &peak};
    EL_CHECK(run("{{ 'x' * 1000 }}", &po, OUT_CAP, WORK_CAP) == EL_OK && peak > 1000 && peak < 64 * 1024);
    EL_CHECK(run("hi", NULL, OUT_CAP, 1024) == EL_E_USAGE);
    EL_CHECK(run("{{ 'y' * 2000000 }}", NULL, OUT_CAP, WORK_CAP) == EL_E_NOFIT);

    /* runaway loops: range is capped like jinja2's sandbox; iterations and steps are bounded */
    EL_CHECK(err_has("{% for i in range(1000000000) %}x{% endfor %}", EL_E_INVALID, "range too big"));
    EL_CHECK(err_has("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                     EL_E_INVALID, "loop iterations"));
    el_chat_opts lim = {.max_iters = 1000};
    EL_CHECK(run("{% for i in range(999) %}{% endfor %}ok", &lim, OUT_CAP, WORK_CAP) == EL_OK);
    EL_CHECK(run("{% for i in range(1001) %}{% endfor %}", &lim, OUT_CAP, WORK_CAP) == EL_E_INVALID);
    el_chat_opts steps = {.max_steps = 5000};
    EL_CHECK(run("{% for i in range(3000) %}{{ i }}{% endfor %}", &steps, OUT_CAP, WORK_CAP) == EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "evaluation steps") != NULL);
    /* deep nesting: expressions, blocks, values built in a loop */
    static char deep[8192];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 2000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 2000; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    EL_CHECK(err_has(deep, EL_E_INVALID, "nested deeper"));
    k = 0;
    for (int i = 0; i < 500; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, "{%% if true %%}");
    deep[k] = 0;
    EL_CHECK(err_has(deep, EL_E_INVALID, "nested deeper"));
    EL_CHECK(err_has("{% set ns = namespace(x=1) %}{% for i in range(500) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
                     EL_E_INVALID, "nested deeper"));
    EL_CHECK(err_has("{% set ns = namespace(x=1) %}{% for i in range(500) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}",
                     EL_E_INVALID, "nested deeper"));

    /* no way out of the data: dunder attributes are undefined (as jinja2's sandbox renders
     * them), their attributes fail, methods exist only as listed */
    EL_CHECK(out_is("[{{ messages.__class__ }}][{{ ''.__class__ }}][{{ messages[0].__dict__ }}]", "[][][]"));
    EL_CHECK(err_has("{{ ''.__class__.__mro__ }}", EL_E_INVALID, "undefined"));
    EL_CHECK(err_has("{{ ''.__class__.__mro__[1].__subclasses__() }}", EL_E_INVALID, "undefined"));
    EL_CHECK(out_is("[{{ messages.append }}][{{ messages[0].pop }}][{{ none.x }}]", "[][][]"));
    EL_CHECK(err_has("{{ messages.append(1) }}", EL_E_INVALID, "called as a function"));
    EL_CHECK(err_has("{{ cycler() }}{{ lipsum() }}", EL_E_INVALID, "'cycler' is undefined"));
    EL_CHECK(err_has("{% set ns = namespace() %}{% set ns._x = 1 %}", EL_E_INVALID, "cannot start with '_'"));
    EL_CHECK(err_has("{% set m = messages[0] %}{% set m.content = 'x' %}", EL_E_INVALID, "non-namespace"));
    EL_CHECK(err_has("{{ strftime_now('%n%s') }}", EL_E_UNSUPPORTED, "conversion"));
}

/* The fixture's snippets: semantics the model templates do not all reach, rendered by
 * transformers for one user message "hi" (as run() renders them). */
static void test_snippets(const cJSON *doc) {
    int n = 0, ok_n = 0;
    const cJSON *sn;
    cJSON_ArrayForEach(sn, cJSON_GetObjectItemCaseSensitive(doc, "snippets")) {
        const char *t = cJSON_GetObjectItemCaseSensitive(sn, "template")->valuestring;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(sn, "expected");
        el_status st = run(t, NULL, OUT_CAP, WORK_CAP);
        bool ok;
        if (cJSON_IsString(want)) {
            ok = st == EL_OK && !strcmp(g_out, want->valuestring);
            if (!ok) {
                fprintf(stderr, "FAIL snippet %s\n", t);
                if (st == EL_OK) show_diff(g_out, strlen(g_out), want->valuestring);
                else fprintf(stderr, "  %s\n", el_last_error());
            }
        } else {
            const char *type = cJSON_GetObjectItemCaseSensitive(sn, "error_type")->valuestring;
            const char *msg = cJSON_GetObjectItemCaseSensitive(sn, "error")->valuestring;
            ok = st != EL_OK && (strcmp(type, "TemplateError") != 0 || strstr(el_last_error(), msg));
            if (!ok) fprintf(stderr, "FAIL snippet %s: want %s, got %s\n", t, type, st == EL_OK ? g_out : el_last_error());
        }
        EL_CHECK(ok);
        n++;
        ok_n += ok;
    }
    printf("snippets: %d of %d as transformers\n", ok_n, n);
}

/* tokenizer_config.json / chat_template.jinja lookup (el_chat_config_*). */
static void test_config(void) {
    el_chat_config cc;
    const char *j1 = "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\", \"lstrip\": false}, "
                     "\"chat_template\": \"{{ bos_token }}{{ messages[0].content }}\"}";
    EL_CHECK_OK(el_chat_config_parse(j1, strlen(j1), "t1", &cc));
    EL_CHECK(cc.tmpl && !strcmp(cc.tmpl, "{{ bos_token }}{{ messages[0].content }}") && cc.tmpl_len == 40);
    EL_CHECK(cc.bos_token && !strcmp(cc.bos_token, "<s>") && cc.eos_token && !strcmp(cc.eos_token, "</s>"));
    el_chat_opts o = {.bos_token = cc.bos_token, .eos_token = cc.eos_token};
    EL_CHECK(run(cc.tmpl, &o, OUT_CAP, WORK_CAP) == EL_OK && !strcmp(g_out, "<s>hi"));
    el_chat_config_free(&cc);
    el_chat_config_free(NULL);
    const char *j2 = "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, "
                     "{\"name\": \"default\", \"template\": \"D\"}], \"bos_token\": null}";
    EL_CHECK_OK(el_chat_config_parse(j2, strlen(j2), "t2", &cc));
    EL_CHECK(cc.tmpl && !strcmp(cc.tmpl, "D") && !cc.bos_token && !cc.eos_token);
    el_chat_config_free(&cc);
    EL_CHECK_OK(el_chat_config_parse("{}", 2, "t3", &cc));
    EL_CHECK(!cc.tmpl);
    EL_CHECK_STATUS(el_chat_config_parse("{\"chat_template\": 5}", 20, "t4", &cc), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "chat_template") != NULL && !cc.tmpl);
    EL_CHECK_STATUS(el_chat_config_parse("{\"chat_template\": [{\"name\": \"x\", \"template\": \"T\"}]}", 50, "t5", &cc),
                    EL_E_INVALID);
    EL_CHECK_STATUS(el_chat_config_parse("{\"eos_token\": 3}", 16, "t6", &cc), EL_E_INVALID);
    EL_CHECK_STATUS(el_chat_config_parse("[1]", 3, "t7", &cc), EL_E_INVALID);
    /* side files: chat_template.jinja wins over tokenizer_config.json's template */
    const char *cfg = el_test_path("tokenizer_config.json"), *jinja = el_test_path("chat_template.jinja");
    EL_CHECK_OK(el_chat_config_load(NULL, NULL, &cc));
    EL_CHECK(!cc.tmpl && !cc.bos_token);
    EL_CHECK(el_test_write_file(cfg, j1, strlen(j1)));
    EL_CHECK_OK(el_chat_config_load(cfg, NULL, &cc));
    EL_CHECK(cc.tmpl && cc.tmpl[0] == '{' && cc.eos_token && !strcmp(cc.eos_token, "</s>"));
    el_chat_config_free(&cc);
    EL_CHECK(el_test_write_file(jinja, "J{{ eos_token }}\n", 17));
    EL_CHECK_OK(el_chat_config_load(cfg, jinja, &cc));
    EL_CHECK(cc.tmpl && !strcmp(cc.tmpl, "J{{ eos_token }}\n") && cc.tmpl_len == 17 && cc.bos_token);
    el_chat_config_free(&cc);
    el_test_tmpdir_cleanup();
}

/* A misaligned work buffer is fine (the context aligns itself); a message without content has
 * no content key; the conversation's JSON must be an array of objects. */
static void test_alignment(void) {
    el_chat_msg m = {"user", 4, "hi", 2};
    size_t len = 0;
    el_chat_msg nc[2] = {{"assistant", 9, NULL, 0}, {"user", 4, "", 0}};
    const char *t = "{% for m in messages %}{{ m.content is defined }}{{ m|length }}[{{ m.content }}]{% endfor %}";
    EL_CHECK_OK(el_chat_render(t, strlen(t), nc, 2, NULL, g_work, WORK_CAP, g_out, OUT_CAP, &len));
    EL_CHECK(!strcmp(g_out, "False1[]True2[]"));
    EL_CHECK_STATUS(el_chat_render_json(t, strlen(t), "{\"role\": \"user\"}", 16, NULL, g_work, WORK_CAP, g_out, OUT_CAP, &len),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "JSON array") != NULL);
    EL_CHECK_STATUS(el_chat_render_json(t, strlen(t), "[1]", 3, NULL, g_work, WORK_CAP, g_out, OUT_CAP, &len), EL_E_INVALID);
    EL_CHECK_STATUS(el_chat_render_json(t, strlen(t), "[{\"role\": \"\\ud800\"}]", 20, NULL, g_work, WORK_CAP, g_out,
                                        OUT_CAP, &len), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "surrogate") != NULL);
    EL_CHECK_STATUS(el_chat_render_json(t, strlen(t), "[{\"role\": 1,}]", 14, NULL, g_work, WORK_CAP, g_out, OUT_CAP, &len),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "byte 12") != NULL);
    EL_CHECK_OK(el_chat_render("{{ messages[0].content }}", 25, &m, 1, NULL, g_work + 3, WORK_CAP - 3, g_out, OUT_CAP, &len));
    EL_CHECK(len == 2 && !strcmp(g_out, "hi"));
}

/* Templates nested up to and past the limits run on a small thread stack: 256 KiB (1 MiB under
 * the sanitizers, whose frames are larger; 96 KiB overflows at -O2). */
static void *deep_worker(void *arg) {
    static char deep[16384];
    const char *kinds[] = {"(", "[", "{% if true %}", "-", "not "};
    int *fails = arg;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int levels = 1; levels <= EL_CHAT_NEST_MAX + 2; levels++) {
            size_t n = 0;
            bool block = kinds[k][0] == '{';
            if (!block) n += (size_t)snprintf(deep + n, sizeof deep - n, "{{ ");
            for (int i = 0; i < levels; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "%s", kinds[k]);
            n += (size_t)snprintf(deep + n, sizeof deep - n, block ? "x" : "1|trim|length");
            for (int i = 0; i < levels; i++)
                n += (size_t)snprintf(deep + n, sizeof deep - n, "%s",
                                      block ? "{% endif %}" : kinds[k][0] == '(' ? ")" : kinds[k][0] == '[' ? "]" : "");
            if (!block) snprintf(deep + n, sizeof deep - n, " }}");
            el_status st = run(deep, NULL, OUT_CAP, WORK_CAP);
            if (st != EL_OK && !(st == EL_E_INVALID && strstr(el_last_error(), "nested deeper"))) (*fails)++;
        }
    }
    return NULL;
}
static void test_stack(void) {
#if defined(EL_SANITIZED)
    size_t stack = 1u << 20;
#elif !defined(__OPTIMIZE__)
    size_t stack = 512u * 1024u; /* -O0 frames */
#else
    size_t stack = 256u * 1024u; /* the documented bound; 128 KiB suffices at -O2 on x86-64 */
#endif
    pthread_attr_t at;
    pthread_t th;
    int fails = 0;
    EL_CHECK(pthread_attr_init(&at) == 0 && pthread_attr_setstacksize(&at, stack) == 0);
    EL_CHECK(pthread_create(&th, &at, deep_worker, &fails) == 0 && pthread_join(th, NULL) == 0);
    EL_CHECK(fails == 0);
    pthread_attr_destroy(&at);
}

/* Numbers read and print with '.' even when the host set a decimal-comma LC_NUMERIC (checked
 * where such a locale is installed). */
static void test_locale(void) {
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!setlocale(LC_NUMERIC, names[i])) continue;
        EL_CHECK(out_is("{{ 2.5 }} {{ [0.1, 1e-7]|tojson }} {{ 1.5 + 1 }}", "2.5 [0.1, 1e-07] 2.5"));
        setlocale(LC_NUMERIC, "C");
        return;
    }
    printf("locale: no decimal-comma locale installed, not checked\n");
}

int main(void) {
    el_alloc_install();
    setenv("TZ", "UTC", 1);
    tzset();
    test_fixture();
    test_errors();
    test_config();
    test_alignment();
    test_stack();
    test_locale();
    return el_test_finish("test_tokenizer_chat");
}
