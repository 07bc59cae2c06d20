/* config.c - Hugging Face config.json into el_config: the GPT-2, BERT and Llama spellings
 * of the same facts, each checked for type and range; unknown keys are ignored. */
#include "loader/safetensors.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EL_LABELS_MAX 4096 /* id2label entries accepted */

/* Python's json (what wrote and what reads these files upstream) keeps the last of
 * repeated keys; cJSON keeps all, so take the last to mean the same thing. null counts as
 * absent: HF writes null for unset options ("n_inner": null). */
static const cJSON *find(const cJSON *obj, const char *key) {
    const cJSON *hit = NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && !strcmp(c->string, key)) hit = c;
    return cJSON_IsNull(hit) ? NULL : hit;
}

/* The first present spelling of a field; *key_out names it for messages. */
static const cJSON *find_any(const cJSON *obj, const char *const *keys, size_t nkeys,
                             const char **key_out) {
    for (size_t i = 0; i < nkeys && keys[i]; i++) {
        const cJSON *v = find(obj, keys[i]);
        if (v) {
            *key_out = keys[i];
            return v;
        }
    }
    return NULL;
}

typedef struct u32_field {
    const char *keys[3]; /* spellings, first wins */
    size_t off;          /* offsetof the uint32_t in el_config */
} u32_field;

static const u32_field k_u32_fields[] = {
    {{"hidden_size", "n_embd", "dim"}, offsetof(el_config, hidden_size)},
    {{"intermediate_size", "n_inner", NULL}, offsetof(el_config, intermediate_size)},
    {{"num_hidden_layers", "n_layer", NULL}, offsetof(el_config, num_layers)},
    {{"num_attention_heads", "n_head", NULL}, offsetof(el_config, num_heads)},
    {{"num_key_value_heads", NULL, NULL}, offsetof(el_config, num_kv_heads)},
    {{"head_dim", NULL, NULL}, offsetof(el_config, head_dim)},
    {{"vocab_size", NULL, NULL}, offsetof(el_config, vocab_size)},
    {{"max_position_embeddings", "n_positions", NULL}, offsetof(el_config, max_positions)},
    {{"type_vocab_size", NULL, NULL}, offsetof(el_config, type_vocab_size)},
    {{"sliding_window", NULL, NULL}, offsetof(el_config, sliding_window)},
    {{"max_window_layers", NULL, NULL}, offsetof(el_config, max_window_layers)},
    {{"sliding_window_pattern", NULL, NULL}, offsetof(el_config, sliding_window_pattern)},
};

/* Copies a UTF-8 string into dst (capacity cap), cutting at a character boundary. */
static void copy_trunc(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* A string field into dst. too_long_ok: cut (display-only values) instead of rejecting
 * (values that select behaviour, where a cut one could match something else). */
static el_status get_string(const cJSON *v, const char *key, char *dst, size_t cap,
                            bool too_long_ok, const char *fname) {
    char got[128];
    if (!cJSON_IsString(v))
        return el_errorf(EL_E_INVALID, "%s: %s: expected a string, got %s", fname, key,
                         el_json_describe(v, got, sizeof got));
    size_t n = strlen(v->valuestring);
    if (!el_utf8_valid(v->valuestring, n))
        return el_errorf(EL_E_INVALID, "%s: %s: expected valid UTF-8, got %s", fname, key,
                         el_json_describe(v, got, sizeof got));
    if (n >= cap && !too_long_ok)
        return el_errorf(EL_E_INVALID, "%s: %s: expected at most %zu bytes, got %zu (%s)",
                         fname, key, cap - 1, n, el_json_describe(v, got, sizeof got));
    copy_trunc(dst, cap, v->valuestring, n);
    return EL_OK;
}

/* A token id: an integer in [-1, UINT32_MAX] (-1 = none), or a list of them (the first is
 * taken; an empty list means none). With vocab (non-zero) every id must be below it. */
static el_status get_token_id(const cJSON *v, const char *key, uint32_t vocab, int64_t *out,
                              const char *fname) {
    char got[128];
    int64_t first = -1;
    bool list = cJSON_IsArray(v);
    int i = 0;
    for (const cJSON *c = list ? v->child : v; c; c = list ? c->next : NULL, i++) {
        uint64_t u;
        int64_t id = -1;
        if (cJSON_IsNumber(c) && c->valuedouble == -1.0) {
            id = -1;
        } else if (el_json_get_u64(c, UINT32_MAX, &u)) {
            id = (int64_t)u;
        } else {
            if (list)
                return el_errorf(EL_E_INVALID,
                                 "%s: %s[%d]: expected a token id (integer 0..%u), got %s",
                                 fname, key, i, UINT32_MAX, el_json_describe(c, got, sizeof got));
            return el_errorf(EL_E_INVALID,
                             "%s: %s: expected a token id (integer 0..%u) or a list of them, "
                             "got %s",
                             fname, key, UINT32_MAX, el_json_describe(c, got, sizeof got));
        }
        if (vocab && id >= (int64_t)vocab)
            return el_errorf(EL_E_INVALID, "%s: %s%s: token id %lld is outside the vocabulary "
                             "(vocab_size %u: ids 0..%u)", fname, key, list ? "[]" : "",
                             (long long)id, vocab, vocab - 1);
        if (i == 0) first = id;
    }
    *out = first;
    return EL_OK;
}

/* A non-negative decimal without sign or leading zeros ("0", "17"), below limit. */
static bool parse_label_key(const char *s, uint32_t limit, uint32_t *out) {
    if (!s || !*s || (s[0] == '0' && s[1])) return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v >= limit) return false;
    }
    *out = (uint32_t)v;
    return true;
}

static el_status get_id2label(const cJSON *v, el_config *c, const char *fname) {
    char got[128], key[96];
    if (!cJSON_IsObject(v))
        return el_errorf(EL_E_INVALID,
                         "%s: id2label: expected an object {\"0\": \"NAME\", ...}, got %s",
                         fname, el_json_describe(v, got, sizeof got));
    size_t n = 0;
    for (const cJSON *e = v->child; e; e = e->next) n++;
    if (n > EL_LABELS_MAX)
        return el_errorf(EL_E_INVALID, "%s: id2label: expected at most %d labels, got %zu",
                         fname, EL_LABELS_MAX, n);
    if (n == 0) return EL_OK;
    char (*labels)[64] = malloc(n * sizeof *labels);
    bool *seen = calloc(n, sizeof *seen);
    if (!labels || !seen) {
        free(labels);
        free(seen);
        return el_errorf(EL_E_NOMEM, "%s: id2label: out of memory for %zu labels", fname, n);
    }
    el_status st = EL_OK;
    for (const cJSON *e = v->child; e && st == EL_OK; e = e->next) {
        const char *k = e->string ? e->string : "";
        uint32_t id;
        if (!parse_label_key(k, (uint32_t)n, &id) || seen[id]) {
            st = el_errorf(EL_E_INVALID,
                           "%s: id2label: expected keys \"0\"..\"%zu\", each once, got '%s'",
                           fname, n - 1, el_json_printable(k, strlen(k), key, sizeof key));
            break;
        }
        seen[id] = true;
        char field[32];
        snprintf(field, sizeof field, "id2label[\"%u\"]", (unsigned)id);
        st = get_string(e, field, labels[id], sizeof labels[id], true, fname);
    }
    free(seen);
    if (st != EL_OK) {
        free(labels);
        return st;
    }
    /* n distinct keys, each < n: every id 0..n-1 is present. */
    c->id2label = labels;
    c->num_labels = (uint32_t)n;
    return EL_OK;
}

/* A positive finite number into *out. */
static el_status get_positive(const cJSON *v, const char *key, double *out, const char *fname) {
    char got[128];
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0.0 && isfinite(v->valuedouble)))
        return el_errorf(EL_E_INVALID, "%s: %s: expected a positive number, got %s", fname, key,
                         el_json_describe(v, got, sizeof got));
    *out = v->valuedouble;
    return EL_OK;
}

/* layer_types: "full_attention" or "sliding_attention" per layer (at most 4096). */
static el_status get_layer_types(const cJSON *v, el_config *c, const char *fname) {
    char got[128];
    if (!cJSON_IsArray(v))
        return el_errorf(EL_E_INVALID, "%s: layer_types: expected a list, got %s", fname,
                         el_json_describe(v, got, sizeof got));
    uint32_t n = 0;
    for (const cJSON *e = v->child; e; e = e->next, n++) {
        if (n >= 64 * 64)
            return el_errorf(EL_E_INVALID, "%s: layer_types: more than %u entries", fname,
                             64 * 64);
        bool sliding = cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
        if (!sliding && !(cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")))
            return el_errorf(EL_E_UNSUPPORTED, "%s: layer_types[%u]: %s: expected "
                             "\"full_attention\" or \"sliding_attention\"", fname, n,
                             el_json_describe(e, got, sizeof got));
        if (sliding) c->sliding_layers[n / 64] |= 1ull << (n % 64);
    }
    c->n_layer_types = n;
    return EL_OK;
}

/* A RoPE scaling object (rope_scaling, or rope_parameters): its type ("rope_type", or
 * "type" in older files) and the fields that type needs. */
static el_status parse_rope(const cJSON *o, const char *key, el_config *c, const char *fname) {
    char got[128];
    if (!cJSON_IsObject(o))
        return el_errorf(EL_E_INVALID, "%s: %s: expected an object, got %s", fname, key,
                         el_json_describe(o, got, sizeof got));
    const cJSON *rt = find(o, "rope_type");
    if (!rt) rt = find(o, "type");
    const char *type = "default";
    if (rt) {
        if (!cJSON_IsString(rt))
            return el_errorf(EL_E_INVALID, "%s: %s.rope_type: expected a string, got %s", fname,
                             key, el_json_describe(rt, got, sizeof got));
        type = rt->valuestring;
    }
    if (strcmp(type, "default") && strcmp(type, "linear") && strcmp(type, "llama3"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: %s.rope_type '%.32s': scaled RoPE of this type "
                         "is not supported (supported: default, linear, llama3)", fname, key,
                         type);
    snprintf(c->rope_type, sizeof c->rope_type, "%s", type);
    const cJSON *prf = find(o, "partial_rotary_factor");
    if (prf && !(cJSON_IsNumber(prf) && prf->valuedouble == 1.0))
        return el_errorf(EL_E_UNSUPPORTED, "%s: %s.partial_rotary_factor %s: partial RoPE is "
                         "not supported", fname, key, el_json_describe(prf, got, sizeof got));
    if (!strcmp(type, "default")) return EL_OK;
    static const struct { const char *k; size_t off; bool llama3_only; } f[] = {
        {"factor", offsetof(el_config, rope_factor), false},
        {"low_freq_factor", offsetof(el_config, rope_low_freq_factor), true},
        {"high_freq_factor", offsetof(el_config, rope_high_freq_factor), true},
        {"original_max_position_embeddings", offsetof(el_config, rope_original_max_pos), true},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].llama3_only && strcmp(type, "llama3")) continue;
        const cJSON *v = find(o, f[i].k);
        if (!v || !cJSON_IsNumber(v) || !(v->valuedouble > 0.0 && v->valuedouble < 1e9))
            return el_errorf(EL_E_INVALID, "%s: %s.%s: %s RoPE needs a positive number, got %s",
                             fname, key, f[i].k, type,
                             v ? el_json_describe(v, got, sizeof got) : "nothing");
        memcpy((char *)c + f[i].off, &v->valuedouble, sizeof(double));
    }
    if (!strcmp(type, "llama3") && !(c->rope_low_freq_factor < c->rope_high_freq_factor))
        return el_errorf(EL_E_INVALID, "%s: %s: low_freq_factor %g must be below "
                         "high_freq_factor %g", fname, key, c->rope_low_freq_factor,
                         c->rope_high_freq_factor);
    return EL_OK;
}

static el_status parse_fields(const cJSON *root, el_config *c, const char *fname) {
    char got[128];
    const char *key;
    const cJSON *v;
    el_status st;

    if ((v = find(root, "model_type")) &&
        (st = get_string(v, "model_type", c->model_type, sizeof c->model_type, false,
                         fname)) != EL_OK)
        return st;
    if ((v = find(root, "architectures"))) {
        if (!cJSON_IsArray(v))
            return el_errorf(EL_E_INVALID,
                             "%s: architectures: expected a list of strings, got %s", fname,
                             el_json_describe(v, got, sizeof got));
        if (v->child && (st = get_string(v->child, "architectures[0]", c->architecture,
                                         sizeof c->architecture, true, fname)) != EL_OK)
            return st;
    }
    static const char *const act_keys[] = {"hidden_act", "activation_function",
                                           "hidden_activation"};
    if ((v = find_any(root, act_keys, 3, &key)) &&
        (st = get_string(v, key, c->hidden_act, sizeof c->hidden_act, false, fname)) != EL_OK)
        return st;

    if ((v = find(root, "position_embedding_type")) &&
        (st = get_string(v, "position_embedding_type", c->position_embedding_type,
                         sizeof c->position_embedding_type, false, fname)) != EL_OK)
        return st;
    if ((v = find(root, "problem_type")) &&
        (st = get_string(v, "problem_type", c->problem_type, sizeof c->problem_type, false,
                         fname)) != EL_OK)
        return st;

    for (size_t i = 0; i < sizeof k_u32_fields / sizeof k_u32_fields[0]; i++) {
        const u32_field *f = &k_u32_fields[i];
        if (!(v = find_any(root, f->keys, 3, &key))) continue;
        uint64_t u;
        if (!el_json_get_u64(v, UINT32_MAX, &u))
            return el_errorf(EL_E_INVALID, "%s: %s: expected an integer 0..%u, got %s", fname,
                             key, UINT32_MAX, el_json_describe(v, got, sizeof got));
        uint32_t u32 = (uint32_t)u;
        /* head_dim 0 would make every attention row empty (and divide by zero in the
         * softmax scale); absent means hidden_size / num_attention_heads. */
        if (u32 == 0 && f->off == offsetof(el_config, head_dim))
            return el_errorf(EL_E_INVALID, "%s: head_dim: expected a positive integer, got 0 "
                             "(leave it out to mean hidden_size / num_attention_heads)", fname);
        memcpy((char *)c + f->off, &u32, sizeof u32);
    }

    static const char *const eps_keys[] = {"rms_norm_eps", "layer_norm_epsilon",
                                           "layer_norm_eps"};
    if ((v = find_any(root, eps_keys, 3, &key))) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble < 1.0))
            return el_errorf(EL_E_INVALID, "%s: %s: expected a number in [0, 1), got %s",
                             fname, key, el_json_describe(v, got, sizeof got));
        c->norm_eps = v->valuedouble;
    }
    /* transformers 5 writes RoPE settings as "rope_parameters": {"rope_theta": ..,
     * "rope_type": .., scaling fields}; 4.x wrote a top-level rope_theta and "rope_scaling".
     * default, linear and llama3 are implemented; other types are refused by name. */
    const cJSON *rp = find(root, "rope_parameters");
    if (rp && !cJSON_IsNull(rp) && !cJSON_IsObject(rp))
        return el_errorf(EL_E_INVALID, "%s: rope_parameters: expected an object, got %s",
                         fname, el_json_describe(rp, got, sizeof got));
    if (rp && cJSON_IsNull(rp)) rp = NULL;
    const cJSON *rs = find(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs) && (st = parse_rope(rs, "rope_scaling", c, fname)) != EL_OK)
        return st;
    /* Gemma 3 (transformers 5) nests them per layer type. */
    const cJSON *rp_full = rp ? find(rp, "full_attention") : NULL;
    const cJSON *rp_slide = rp ? find(rp, "sliding_attention") : NULL;
    if (rp_full || rp_slide) {
        if (rp_full && (st = parse_rope(rp_full, "rope_parameters.full_attention", c, fname)) !=
                           EL_OK)
            return st;
        if (rp_slide) {
            el_config loc;
            memset(&loc, 0, sizeof loc);
            if ((st = parse_rope(rp_slide, "rope_parameters.sliding_attention", &loc, fname)) !=
                EL_OK)
                return st;
            if (loc.rope_type[0] && strcmp(loc.rope_type, "default"))
                return el_errorf(EL_E_UNSUPPORTED, "%s: rope_parameters.sliding_attention: "
                                 "scaled RoPE on sliding layers is not supported", fname);
            if ((v = find(rp_slide, "rope_theta")) &&
                (st = get_positive(v, "rope_parameters.sliding_attention.rope_theta",
                                   &c->rope_local_theta, fname)) != EL_OK)
                return st;
        }
        rp = rp_full;
    } else if (rp && (st = parse_rope(rp, "rope_parameters", c, fname)) != EL_OK) {
        return st;
    }
    if ((v = find(root, "rope_local_base_freq")) &&
        (st = get_positive(v, "rope_local_base_freq", &c->rope_local_theta, fname)) != EL_OK)
        return st;
    if ((v = find(root, "query_pre_attn_scalar")) &&
        (st = get_positive(v, "query_pre_attn_scalar", &c->query_pre_attn_scalar, fname)) !=
            EL_OK)
        return st;
    static const char *const caps[] = {"final_logit_softcapping", "attn_logit_softcapping"};
    for (size_t i = 0; i < 2; i++)
        if (find(root, caps[i])) snprintf(c->softcapping, sizeof c->softcapping, "%s", caps[i]);
    if ((v = find(root, "layer_types")) && (st = get_layer_types(v, c, fname)) != EL_OK)
        return st;
    if ((v = find(root, "partial_rotary_factor")) && !(cJSON_IsNumber(v) && v->valuedouble == 1.0))
        return el_errorf(EL_E_UNSUPPORTED, "%s: partial_rotary_factor %s: partial RoPE is not "
                         "supported", fname, el_json_describe(v, got, sizeof got));
    /* rope_parameters always carries rope_theta (transformers writes it): a missing one
     * means a damaged key, and the 10000 default would silently run a model trained at
     * another base. Both spellings present must agree. */
    const cJSON *rp_theta = rp ? find(rp, "rope_theta") : NULL;
    if (rp && !rp_theta)
        return el_errorf(EL_E_INVALID, "%s: rope_parameters: no rope_theta (keys are damaged, or "
                         "the file is not from transformers); refusing to guess the RoPE base",
                         fname);
    v = find(root, "rope_theta");
    for (int k = 0; k < 2; k++) {
        const cJSON *t = k ? rp_theta : v;
        if (t && (!cJSON_IsNumber(t) || !(t->valuedouble > 0.0 && isfinite(t->valuedouble))))
            return el_errorf(EL_E_INVALID, "%s: %srope_theta: expected a positive number, got %s",
                             fname, k ? "rope_parameters." : "", el_json_describe(t, got, sizeof got));
    }
    if (v && rp_theta && v->valuedouble != rp_theta->valuedouble)
        return el_errorf(EL_E_INVALID, "%s: rope_theta %.17g and rope_parameters.rope_theta %.17g "
                         "disagree", fname, v->valuedouble, rp_theta->valuedouble);
    if (v || rp_theta) c->rope_theta = (v ? v : rp_theta)->valuedouble;
    static const struct { const char *key; size_t off, has; } bools[] = {
        {"tie_word_embeddings", offsetof(el_config, tie_word_embeddings),
         offsetof(el_config, has_tie_word_embeddings)},
        {"attention_bias", offsetof(el_config, attention_bias), 0},
        {"mlp_bias", offsetof(el_config, mlp_bias), 0},
        {"use_sliding_window", offsetof(el_config, use_sliding_window), 0},
        {"use_bidirectional_attention", offsetof(el_config, bidirectional), 0},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        if (!(v = find(root, bools[i].key))) continue;
        if (!cJSON_IsBool(v))
            return el_errorf(EL_E_INVALID, "%s: %s: expected true or false, got %s", fname,
                             bools[i].key, el_json_describe(v, got, sizeof got));
        *((bool *)((char *)c + bools[i].off)) = cJSON_IsTrue(v);
        if (bools[i].has) *((bool *)((char *)c + bools[i].has)) = true;
    }

    static const struct { const char *key; size_t off; } ids[] = {
        {"bos_token_id", offsetof(el_config, bos_token_id)},
        {"eos_token_id", offsetof(el_config, eos_token_id)},
        {"pad_token_id", offsetof(el_config, pad_token_id)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        if (!(v = find(root, ids[i].key))) continue;
        int64_t id = -1;
        /* bos and eos must name tokens of the vocabulary; pad is only padding. */
        uint32_t limit = i < 2 ? c->vocab_size : 0;
        if ((st = get_token_id(v, ids[i].key, limit, &id, fname)) != EL_OK) return st;
        memcpy((char *)c + ids[i].off, &id, sizeof id);
    }

    if ((v = find(root, "id2label")) && (st = get_id2label(v, c, fname)) != EL_OK) return st;
    return EL_OK;
}

el_status el_config_parse(const char *json, size_t json_len, const char *fname,
                          el_config *out) {
    if (!fname) fname = "config.json";
    cJSON *root;
    el_status st = el_json_parse(json, json_len, fname, &root);
    if (st != EL_OK) return st;
    if (!cJSON_IsObject(root)) {
        char got[128];
        st = el_errorf(EL_E_INVALID, "%s: expected a JSON object, got %s", fname,
                       el_json_describe(root, got, sizeof got));
        cJSON_Delete(root);
        return st;
    }
    el_config c;
    memset(&c, 0, sizeof c);
    c.bos_token_id = c.eos_token_id = c.pad_token_id = -1;
    st = parse_fields(root, &c, fname);
    cJSON_Delete(root);
    if (st != EL_OK) {
        el_config_free(&c);
        return st;
    }
    *out = c;
    return EL_OK;
}

void el_config_free(el_config *c) {
    if (!c) return;
    free(c->id2label);
    c->id2label = NULL;
    c->num_labels = 0;
}
