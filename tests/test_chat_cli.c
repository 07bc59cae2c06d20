/* test_chat_cli.c - `edgeload chat` and el_chat_format wired to a model: the tiny HF Llama
 * fixture (tests/fixtures/hf_llama_gqa) given a tokenizer_config.json with a chat template.
 * The rendering itself is checked against transformers in test_tokenizer_chat; here: the
 * model's template is found and used, the reply is what el_generate gives for the rendered
 * prompt without an extra BOS (greedy, same ids), the conversation can come as an array or
 * {"messages": [...]}, and the failures (no template, bad JSON, a template that raises)
 * exit 2 with the reason. */
// ctest-labels: llama;cli
#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures/hf_llama_gqa"

static const char k_tmpl[] =
    "{% for m in messages %}{% if m.role == 'system' and not loop.first %}"
    "{{ raise_exception('system first') }}{% endif %}<{{ m.role }}>{{ m.content | trim }}\\n"
    "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";

/* A copy of the fixture with tokenizer_config.json (template t, or none when NULL). */
static const char *folder(const char *name, const char *t) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", el_test_tmpdir(), name);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/config.json' '%s/model.safetensors' "
             "'%s/tokenizer.json' '%s/'", dir, FIX, FIX, FIX, dir);
    EL_CHECK(system(cmd) == 0);
    if (t) {
        char path[700], json[2048];
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        snprintf(json, sizeof json, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", "
                 "\"chat_template\": \"%s\"}", t);
        EL_CHECK(el_test_write_file(path, json, strlen(json)));
    }
    return dir;
}

static int chat(const char *dir, const char *conv, char **out, char **err) {
    const char *in = el_test_path("conv.json");
    EL_CHECK(el_test_write_file(in, conv, strlen(conv)));
    char args[1600];
    /* el_test_run_cli gives the command /dev/null as stdin: run a group that reads the file. */
    snprintf(args, sizeof args, "--version >/dev/null; { ${EL_CLI:-%s/edgeload} chat '%s' "
             "--temp 0 -n 8 --json < '%s'; }", EL_BINARY_DIR, dir, in);
    return el_test_run_cli(args, out, err);
}

typedef struct collect {
    int32_t ids[16];
    size_t n;
} collect;

static bool on_token(void *u, int32_t id, const char *piece, size_t len) {
    collect *c = u;
    (void)piece, (void)len;
    if (c->n < 16) c->ids[c->n++] = id;
    return true;
}

/* The reply el_generate gives for prompt without BOS, greedy, 8 tokens, into ids. */
static size_t api_ids(const char *dir, const char *prompt, int32_t *ids) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return 0;
    EL_CHECK(el_model_has_chat_template(m));
    el_plan plan;
    el_plan_params pp = {0, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_session *s = NULL;
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    if (a) EL_CHECK_OK(el_session_init(m, a, &plan, NULL, &s));
    collect c;
    memset(&c, 0, sizeof c);
    if (s) {
        el_session_set_prompt_bos(s, false);
        el_gen_stats st;
        EL_CHECK_OK(el_generate(s, prompt, 8, NULL, on_token, &c, &st));
        int32_t tok[256];
        size_t nt = 0;
        EL_CHECK_OK(el_tokenize(m, prompt, strlen(prompt), false, tok, 256, &nt));
        EL_CHECK(st.prompt_tokens == nt && nt > 0 && tok[0] != 1); /* no BOS (1) in front */
    }
    memcpy(ids, c.ids, c.n * sizeof *ids);
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return c.n;
}

int main(void) {
    const char *dir = folder("with_template", k_tmpl);
    static const char conv[] = "[{\"role\": \"system\", \"content\": \" Be brief. \"}, "
                               "{\"role\": \"user\", \"content\": \"The future of AI is\"}]";
    const char *want_prompt = "<system>Be brief.\n<user>The future of AI is\n<assistant>";
    char *out = NULL, *err = NULL;
    EL_CHECK(chat(dir, conv, &out, &err) == 0);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    const cJSON *p = j ? cJSON_GetObjectItem(j, "prompt") : NULL;
    EL_CHECK(cJSON_IsString(p) && !strcmp(p->valuestring, want_prompt));
    if (!cJSON_IsString(p)) fprintf(stderr, "   chat: %s / %s\n", out, err);
    int32_t want[16];
    size_t n = api_ids(dir, want_prompt, want);
    const cJSON *ids = j ? cJSON_GetObjectItem(j, "ids") : NULL;
    bool same = n > 0 && cJSON_GetArraySize(ids) == (int)n;
    for (size_t i = 0; same && i < n; i++)
        same = cJSON_GetArrayItem(ids, (int)i)->valueint == want[i];
    fprintf(stderr, "   chat reply: %zu ids, %s el_generate's on the rendered prompt\n", n,
            same ? "equal to" : "NOT equal to");
    EL_CHECK(same);
    cJSON_Delete(j);
    free(out), free(err);

    /* serve: a "messages" request answers with the same tokens. */
    const char *req = el_test_path("req.jsonl");
    char line[700];
    snprintf(line, sizeof line, "{\"id\":7,\"messages\":%s,\"max_tokens\":8}\n"
             "{\"id\":8,\"messages\":[],\"max_tokens\":8,\"prompt\":\"x\"}\n", conv);
    EL_CHECK(el_test_write_file(req, line, strlen(line)));
    char args[1600];
    snprintf(args, sizeof args, "--version >/dev/null; { ${EL_CLI:-%s/edgeload} serve '%s' < "
             "'%s'; }", EL_BINARY_DIR, dir, req);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 0);
    size_t k = 0;
    bool match = true;
    for (const char *q = out ? strstr(out, "\"token_id\":") : NULL; q;
         q = strstr(q + 1, "\"token_id\":"), k++)
        match = match && k < n && atoi(q + 11) == want[k];
    fprintf(stderr, "   serve \"messages\": %zu tokens, %s\n", k, match ? "the same" : "DIFFERENT");
    EL_CHECK(match && k == n);
    EL_CHECK(out && strstr(out, "\"id\":8,\"error\":\"give \\\"prompt\\\" or \\\"messages\\\", not both"));
    free(out), free(err);

    /* Packed into an image, the template travels with it and renders the same. */
    const char *img = el_test_path("chat.elimg");
    snprintf(args, sizeof args, "pack '%s' -o '%s'", dir, img);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 0);
    EL_CHECK(chat(img, conv, &out, &err) == 0);
    j = out ? cJSON_Parse(out) : NULL;
    p = j ? cJSON_GetObjectItem(j, "prompt") : NULL;
    EL_CHECK(cJSON_IsString(p) && !strcmp(p->valuestring, want_prompt));
    if (!cJSON_IsString(p)) fprintf(stderr, "   chat on the image: %s / %s\n", out, err);
    cJSON_Delete(j);
    free(out), free(err);

    /* {"messages": [...]} is the same conversation. */
    char wrapped[512];
    snprintf(wrapped, sizeof wrapped, "{\"messages\": %s}", conv);
    EL_CHECK(chat(dir, wrapped, &out, &err) == 0);
    j = out ? cJSON_Parse(out) : NULL;
    p = j ? cJSON_GetObjectItem(j, "prompt") : NULL;
    EL_CHECK(cJSON_IsString(p) && !strcmp(p->valuestring, want_prompt));
    cJSON_Delete(j);
    free(out), free(err);

    /* Failures: bad JSON, a template that raises, a model without a template. */
    EL_CHECK(chat(dir, "[{\"role\": ", &out, &err) == 2);
    EL_CHECK(err && strstr(err, "JSON"));
    free(out), free(err);
    EL_CHECK(chat(dir, "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", "
                  "\"content\": \"b\"}]", &out, &err) == 2);
    EL_CHECK(err && strstr(err, "system first"));
    free(out), free(err);
    const char *plain = folder("no_template", NULL);
    EL_CHECK(chat(plain, conv, &out, &err) == 2);
    EL_CHECK(err && strstr(err, "no chat template"));
    free(out), free(err);
    /* A template that does not parse is refused when the model opens, by name. */
    const char *bad = folder("bad_template", "{% for m in messages %}");
    EL_CHECK(chat(bad, conv, &out, &err) != 0);
    EL_CHECK(err && strstr(err, "chat template"));
    free(out), free(err);
    return el_test_finish("test_chat_cli");
}
