/* json_util.c - the guard in front of cJSON for every JSON file we read (safetensors
 * headers, sharded indexes, config.json, tokenizer.json): a bounded lexical pre-scan
 * (strict: only JSON whitespace between tokens, no raw control bytes in strings), the whole
 * text valid UTF-8, exact integers from doubles, and printable fragments for messages. */
#include "loader/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define EL_JSON_U53_MAX 9007199254740992.0 /* 2^53: every integer up to here is exact */

bool el_utf8_valid(const char *s, size_t n) { return el_utf8_check(s, n) == n; }

static bool is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One pass over the bytes, never past len. Depth counts [ and { outside strings. With
 * strict, strings are also checked so that cJSON's lenient spots cannot change meaning. */
static el_status json_scan(const char *json, size_t len, int max_depth, bool strict,
                           const char *fname) {
    const unsigned char *p = (const unsigned char *)json;
    uint64_t values = 1; /* cJSON nodes: at most one per ',' and per container, plus one */
    int depth = 0;
    bool in_str = false;
    size_t str_start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = p[i];
        if (in_str) {
            if (c == '"') {
                in_str = false;
            } else if (c == '\\') {
                if (i + 1 >= len) break; /* unterminated; reported below */
                unsigned e = p[i + 1];
                if (!strict) {
                    i++;
                    continue;
                }
                if (e == 'u') {
                    if (len - i < 6 || !is_hex(p[i + 2]) || !is_hex(p[i + 3]) ||
                        !is_hex(p[i + 4]) || !is_hex(p[i + 5]))
                        return el_errorf(EL_E_INVALID,
                                         "%s: invalid \\u escape at byte %zu: expected 4 hex "
                                         "digits; the JSON is corrupt",
                                         fname, i);
                    if (p[i + 2] == '0' && p[i + 3] == '0' && p[i + 4] == '0' &&
                        p[i + 5] == '0')
                        return el_errorf(EL_E_INVALID,
                                         "%s: string contains \\u0000 at byte %zu: NUL is not "
                                         "allowed in names or values we read",
                                         fname, i);
                    i += 5;
                } else if (e != 0 && strchr("\"\\/bfnrt", (int)e)) {
                    i++;
                } else {
                    return el_errorf(EL_E_INVALID,
                                     "%s: invalid escape '\\%c' at byte %zu: the JSON is "
                                     "corrupt",
                                     fname, e >= 0x20 && e < 0x7f ? (char)e : '?', i);
                }
            } else if (strict && c < 0x20) {
                return el_errorf(EL_E_INVALID,
                                 "%s: raw control byte 0x%02x in a string at byte %zu: JSON "
                                 "requires it escaped; the file is corrupt",
                                 fname, c, i);
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
            str_start = i;
        } else if ((c == ',' || c == '[' || c == '{') && ++values > EL_JSON_VALUES_MAX) {
            return el_errorf(EL_E_INVALID,
                             "%s: more than %u JSON values (at byte %zu): parsing would need "
                             "over %u MiB; the file is corrupt or hostile",
                             fname, EL_JSON_VALUES_MAX, i,
                             (unsigned)(EL_JSON_VALUES_MAX / (1024u * 1024u / 64u)));
        }
        if (in_str) continue;
        if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return el_errorf(EL_E_INVALID,
                                 "%s: JSON nests deeper than %d (at byte %zu); the file is "
                                 "corrupt or hostile",
                                 fname, max_depth, i);
        } else if (c == ']' || c == '}') {
            if (depth > 0) depth--;
        } else if (strict && c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            /* cJSON skips every byte <= 0x20 between tokens; JSON allows only these four. */
            return el_errorf(EL_E_INVALID, "%s: control byte 0x%02x between JSON tokens at byte "
                             "%zu: only space, tab, CR and LF may separate them; the file is "
                             "corrupt", fname, c, i);
        }
    }
    if (strict && in_str)
        return el_errorf(EL_E_INVALID,
                         "%s: string starting at byte %zu is not terminated within the %zu "
                         "bytes of JSON (truncated file?)",
                         fname, str_start, len);
    return EL_OK;
}

el_status el_json_check_depth(const char *json, size_t len, int max_depth, const char *fname) {
    return json_scan(json, len, max_depth, false, fname ? fname : "JSON");
}

el_status el_json_parse(const char *json, size_t len, const char *fname, struct cJSON **out) {
    *out = NULL;
    if (!fname) fname = "JSON";
    if (!json || len == 0)
        return el_errorf(EL_E_INVALID, "%s: empty JSON: expected an object", fname);
    size_t bad = el_utf8_check(json, len);
    if (bad != len) {
        /* The bytes before it name the key or string it is in. */
        size_t from = bad > 48 ? bad - 48 : 0, to = len - bad > 8 ? bad + 8 : len;
        char near[256];
        el_json_printable(json + from, to - from, near, sizeof near);
        return el_errorf(EL_E_INVALID, "%s: invalid UTF-8 at byte %zu (0x%02x) in '%s': JSON "
                         "text is UTF-8; the file is corrupt", fname, bad,
                         (unsigned char)json[bad], near);
    }
    el_status st = json_scan(json, len, EL_JSON_DEPTH_MAX, true, fname);
    if (st != EL_OK) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        size_t pos = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        if (pos + 1 >= len)
            return el_errorf(EL_E_INVALID,
                             "%s: not valid JSON: parse error at byte %zu of %zu, its "
                             "end (truncated?)",
                             fname, pos, len);
        return el_errorf(EL_E_INVALID, "%s: not valid JSON: parse error near byte %zu of %zu",
                         fname, pos, len);
    }
    size_t pos = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
    for (size_t i = pos; i < len; i++) {
        char c = json[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            cJSON_Delete(root);
            return el_errorf(EL_E_INVALID,
                             "%s: unexpected bytes after the JSON value at byte %zu of %zu",
                             fname, i, len);
        }
    }
    *out = root;
    return EL_OK;
}

bool el_json_get_u64(const struct cJSON *item, uint64_t max, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double d = item->valuedouble;
    /* The comparisons are false for NaN; the bound keeps the cast defined. */
    if (!(d >= 0.0 && d <= EL_JSON_U53_MAX)) return false;
    uint64_t v = (uint64_t)d;
    if ((double)v != d || v > max) return false;
    *out = v;
    return true;
}

const char *el_json_printable(const char *s, size_t n, char *buf, size_t cap) {
    if (cap == 0) return buf;
    bool utf8 = el_utf8_valid(s, n);
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        size_t k;
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\' || (c >= 0x80 && !utf8)) {
            k = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
        } else if (c >= 0x80) {
            /* Keep a whole UTF-8 sequence together so a cut never splits one. */
            k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            memcpy(tmp, s + i, k);
        } else {
            tmp[0] = (char)c;
            k = 1;
        }
        if (o + k + 4 > cap) { /* keep room for "..." and the NUL */
            if (o + 4 <= cap) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(buf + o, tmp, k);
        o += k;
        if (c >= 0x80 && utf8) i += k - 1;
    }
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

const char *el_json_describe(const struct cJSON *item, char *buf, size_t cap) {
    if (cap == 0) return buf;
    if (!item) {
        snprintf(buf, cap, "nothing");
    } else if (cJSON_IsNumber(item)) {
        snprintf(buf, cap, "%.17g", item->valuedouble);
    } else if (cJSON_IsString(item)) {
        char tmp[96];
        el_json_printable(item->valuestring, strlen(item->valuestring), tmp, sizeof tmp);
        snprintf(buf, cap, "'%s'", tmp);
    } else if (cJSON_IsBool(item)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(item) ? "true" : "false");
    } else if (cJSON_IsNull(item)) {
        snprintf(buf, cap, "null");
    } else if (cJSON_IsArray(item)) {
        snprintf(buf, cap, "an array");
    } else if (cJSON_IsObject(item)) {
        snprintf(buf, cap, "an object");
    } else {
        snprintf(buf, cap, "an unknown value");
    }
    return buf;
}
