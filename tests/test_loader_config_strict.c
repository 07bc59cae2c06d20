/* test_loader_config_strict.c - config.json and tokenizer.json values that used to be
 * accepted silently are refused: head_dim 0, bos/eos ids outside the vocabulary, a damaged
 * or non-numeric rope_theta inside rope_parameters (no fallback to 10000), raw control
 * bytes between JSON tokens, invalid UTF-8 anywhere in the text (also in strings nobody
 * reads and in keys). */
// ctest-labels: loader;unit;quick
#include "tests/support/el_test.h"

#include "loader/safetensors.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static el_status parse_n(const char *json, size_t n, el_config *c) {
    return el_config_parse(json, n, "config.json", c);
}

static void refused(const char *json, const char *needle) {
    el_config c;
    el_status s = parse_n(json, strlen(json), &c);
    if (s == EL_OK) el_config_free(&c);
    if (s != EL_E_INVALID || !strstr(el_last_error(), needle)) {
        fprintf(stderr, "   %s\n   -> %s: %s (want '%s')\n", json, el_status_str(s),
                s == EL_OK ? "accepted" : el_last_error(), needle);
        EL_CHECK(false);
    }
}

static double theta(const char *json) {
    el_config c;
    EL_CHECK_OK(parse_n(json, strlen(json), &c));
    el_config_free(&c);
    return c.rope_theta;
}

static void values(void) {
    refused("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"head_dim\": 0}", "head_dim");
    refused("{\"vocab_size\": 50, \"bos_token_id\": 50}", "bos_token_id");
    refused("{\"vocab_size\": 50, \"eos_token_id\": 1000000}", "outside the vocabulary");
    refused("{\"vocab_size\": 50, \"eos_token_id\": [2, 77]}", "eos_token_id");
    el_config c;
    const char *ok = "{\"vocab_size\": 50, \"bos_token_id\": 1, \"eos_token_id\": [2, 49], \"head_dim\": 16}";
    EL_CHECK_OK(parse_n(ok, strlen(ok), &c));
    EL_CHECK(c.bos_token_id == 1 && c.eos_token_id == 2 && c.head_dim == 16);
    el_config_free(&c);
    /* rope_parameters: a damaged key, a string, a zero, two spellings that disagree. */
    refused("{\"rope_parameters\": {\"rope_thetb\": 500000.0, \"rope_type\": \"default\"}}", "rope_theta");
    refused("{\"rope_parameters\": {\"rope_theta\": \"500000\", \"rope_type\": \"default\"}}", "rope_parameters.rope_theta");
    refused("{\"rope_parameters\": {\"rope_theta\": 0, \"rope_type\": \"default\"}}", "rope_theta");
    refused("{\"rope_theta\": 10000, \"rope_parameters\": {\"rope_theta\": 500000}}", "disagree");
    EL_CHECK(theta("{\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}}") == 500000.0);
    EL_CHECK(theta("{\"rope_theta\": 500000}") == 500000.0);
}

static void bytes(void) {
    /* Control bytes between tokens (cJSON skips every byte <= 0x20). */
    refused("{\"vocab_size\":\x01 50}", "control byte 0x01");
    refused("{\x1f\"vocab_size\": 50}", "control byte 0x1f");
    refused("{\"vocab_size\": 50\x0b}", "control byte 0x0b");
    el_config c;
    const char *ws = "{\t\"vocab_size\":\r\n 50 }\n";
    EL_CHECK_OK(parse_n(ws, strlen(ws), &c));
    el_config_free(&c);
    /* Invalid UTF-8 in a value nobody reads, in a key, an overlong, a surrogate. */
    refused("{\"vocab_size\": 50, \"note\": \"caf\xe9\"}", "invalid UTF-8");
    refused("{\"voc\xff\": 1, \"vocab_size\": 50}", "invalid UTF-8");
    refused("{\"note\": \"\xc0\xaf\", \"vocab_size\": 50}", "invalid UTF-8");
    refused("{\"note\": \"\xed\xa0\x80\", \"vocab_size\": 50}", "invalid UTF-8");
    const char *u = "{\"note\": \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\", \"vocab_size\": 50}";
    EL_CHECK_OK(parse_n(u, strlen(u), &c));
    el_config_free(&c);
}

/* tokenizer.json goes through the same strict reader. */
static void tokenizer(void) {
    char src[1200];
    snprintf(src, sizeof src, "%s/tests/fixtures/hf_tokenizer/tokenizer.json", EL_SOURCE_DIR);
    size_t n = 0;
    char *t = el_test_read_file(src, &n);
    EL_CHECK(t && n > 10 && t[0] == '{');
    if (!t) return;
    const char *path = el_test_path("tokenizer.json");
    el_tokenizer *tok = NULL;
    EL_CHECK(el_test_write_file(path, t, n));
    EL_CHECK_OK(el_tokenizer_open(path, 0, &tok));
    el_tokenizer_close(tok);
    tok = NULL;
    /* A control byte right after the opening brace. */
    char *b = malloc(n + 2);
    b[0] = '{';
    b[1] = '\x02';
    memcpy(b + 2, t + 1, n - 1);
    EL_CHECK(el_test_write_file(path, b, n + 1));
    EL_CHECK_STATUS(el_tokenizer_open(path, 0, &tok), EL_E_INVALID);
    EL_CHECK(!tok && strstr(el_last_error(), "control byte"));
    /* An invalid UTF-8 byte inside the first string. */
    memcpy(b, t, n);
    char *q = memchr(b, '"', n);
    EL_CHECK(q && q[1] != '"');
    if (q) q[1] = (char)0xfe;
    EL_CHECK(el_test_write_file(path, b, n));
    EL_CHECK_STATUS(el_tokenizer_open(path, 0, &tok), EL_E_INVALID);
    EL_CHECK(!tok && strstr(el_last_error(), "invalid UTF-8"));
    free(b);
    free(t);
}

int main(void) {
    values();
    bytes();
    tokenizer();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_loader_config_strict");
}
