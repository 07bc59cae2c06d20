/* chat_template.c - the chat template interpreter (see chat_template.h): a lexer with
 * jinja2's whitespace rules (trim_blocks, lstrip_blocks, '-' and '+' markers, one trailing
 * newline dropped, \r\n and \r read as \n), a recursive-descent parser into a syntax tree,
 * and a tree walker over Python-like values. Everything lives in the caller's work buffer;
 * errors longjmp back to the entry point (nothing to free: the arena is the only memory). */
#include "tokenizer/chat_template.h"

#include "platform/platform.h"
#include "tokenizer/chat_case.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- values ------------------------------------------------------------------------- */

enum {
    V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_NS, V_LOOP, V_RANGE,
    V_FUNC, V_METHOD, V_MACRO
};

typedef struct val val;
typedef struct vlist vlist;
typedef struct vdict vdict;
typedef struct loopst loopst;

struct val {
    uint8_t k;     /* V_* */
    uint8_t tuple; /* V_LIST: a tuple (repr with parentheses) */
    uint16_t fn;   /* V_FUNC / V_METHOD: which */
    union {
        int64_t i;                                   /* V_INT, V_BOOL */
        double f;                                    /* V_FLOAT */
        struct { const char *p; size_t n; } s;       /* V_STR; V_UNDEF: the name, if known */
        vlist *l;                                    /* V_LIST */
        vdict *d;                                    /* V_DICT, V_NS */
        loopst *lp;                                  /* V_LOOP */
        struct { int64_t start, stop, step, n; } *r; /* V_RANGE */
        val *self;                                   /* V_METHOD: the bound object */
        const struct macro *mac;                     /* V_MACRO */
    } u;
};

struct vlist { size_t n; val *v; };
struct vdict { size_t n, cap; val *key, *v; }; /* insertion order, as Python's dict */
struct loopst { int64_t i, n; val seq; }; /* index, count, items (a list or a range) */

/* ---- syntax tree -------------------------------------------------------------------- */

enum {
    /* statements */
    S_DATA, S_OUT, S_IF, S_FOR, S_SET, S_BREAK, S_CONTINUE, S_BODY, S_MACRO,
    /* expressions */
    E_CONST, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_BIN, E_NOT, E_NEG,
    E_POS, E_AND, E_OR, E_COND, E_LIST, E_TUPLE, E_DICT, E_CMP, E_ARG
};

typedef struct node node;
struct node {
    uint8_t kind;
    uint8_t op;      /* E_BIN / E_CMP operator; E_TEST: negated; S_SET: 1 = a tuple target */
    uint16_t fn;     /* E_FILTER / E_TEST: which */
    uint32_t pos;    /* byte offset in the (normalised) source, for messages */
    node *a, *b, *c, *d, *e;
    node *next;      /* siblings: statements of a body, list items, call arguments */
    val v;           /* E_CONST; S_DATA / E_NAME / E_ATTR / E_ARG (keyword): v.u.s */
};

/* ---- tokens ------------------------------------------------------------------------- */

enum { TK_EOF, TK_DATA, TK_VBEGIN, TK_VEND, TK_BBEGIN, TK_BEND, TK_NAME, TK_STR, TK_INT,
       TK_FLOAT, TK_OP };

typedef struct tok {
    uint8_t kind;
    uint32_t pos;
    const char *p; /* TK_DATA / TK_NAME / TK_STR (decoded) / TK_OP text */
    size_t n;
    int64_t i;
    double f;
} tok;

/* ---- the render context ------------------------------------------------------------- */

typedef struct scope scope;
struct scope {
    scope *parent;
    size_t n, cap;
    const char **name;
    size_t *nlen;
    val *v;
};

typedef struct sink { char *p; size_t n, cap; bool arena, window; } sink; /* window: a capture at [top, ...) */

struct macro { const node *def; scope *closure; }; /* S_MACRO node and the scope it was defined in */

typedef struct ctx {
    char *mem;             /* the work buffer: [0, used) allocated */
    size_t cap, used, peak; /* peak: the most of [0, cap) in use at once */
    size_t top;            /* [top, cap): capture windows (macro and block-set output) */
    const char *src;       /* normalised template, in mem */
    size_t slen;
    /* lexer */
    size_t lpos;
    int lstate;            /* 0 data, 1 in {{ }}, 2 in {% %} */
    bool line_starting;
    bool pending_tag;      /* the tag at lpos is the next token (its data was cut already) */
    int bal;               /* brackets open inside a tag */
    tok la[3];             /* lookahead */
    int nla;
    int depth;             /* parse and evaluation nesting */
    int loops;             /* for-loops open while parsing (break/continue need one) */
    /* evaluation */
    scope *root;
    sink out;
    uint64_t iters, max_iters, steps, max_steps;
    uint64_t escapes;      /* namespace assignments so far (loop iterations keep their memory then) */
    time_t now;
    /* error */
    jmp_buf jb;
    el_status st;
    char msg[320];
} ctx;

static void lc_of(const ctx *c, size_t pos, unsigned *line, unsigned *col) {
    unsigned l = 1, k = 1;
    for (size_t i = 0; i < pos && i < c->slen; i++) {
        if (c->src[i] == '\n') {
            l++;
            k = 1;
        } else if (((unsigned char)c->src[i] & 0xc0) != 0x80) {
            k++;
        }
    }
    *line = l;
    *col = k;
}

/* Formats the error (with line:col when pos is a source offset) and unwinds to the entry. */
__attribute__((format(printf, 4, 5), noreturn)) static void fail(ctx *c, size_t pos, el_status st,
                                                                 const char *fmt, ...) {
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (pos != SIZE_MAX && c->src) {
        unsigned l, k;
        lc_of(c, pos, &l, &k);
        snprintf(c->msg, sizeof c->msg, "chat template %u:%u: %s", l, k, m);
    } else {
        snprintf(c->msg, sizeof c->msg, "chat template: %s", m);
    }
    c->st = st;
    longjmp(c->jb, 1);
}

static void *alloc(ctx *c, size_t n) {
    size_t at = (c->used + 7u) & ~(size_t)7u;
    if (at < c->used || at > c->top || n > c->top - at)
        fail(c, SIZE_MAX, EL_E_NOFIT,
             "needs more work memory than the %zu bytes given (%zu in use, %zu more asked); "
             "pass a larger work buffer",
             c->cap, c->used + (c->cap - c->top), n);
    c->used = at + n;
    if (c->used > c->peak) c->peak = c->used;
    return c->mem + at;
}

static size_t mul_size(ctx *c, size_t a, size_t b) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) fail(c, SIZE_MAX, EL_E_NOFIT, "size overflow");
    return r;
}

static void step(ctx *c, size_t pos) {
    if (++c->steps > c->max_steps)
        fail(c, pos, EL_E_INVALID, "more than %llu evaluation steps: the template does not "
             "terminate in bounded time", (unsigned long long)c->max_steps);
}

static void enter(ctx *c, size_t pos) {
    if (++c->depth > EL_CHAT_NEST_MAX)
        fail(c, pos, EL_E_INVALID, "nested deeper than %d levels (blocks and expressions)", EL_CHAT_NEST_MAX);
}
static void leave(ctx *c) { c->depth--; }

/* ---- sinks (output buffer, or a string growing at the top of the arena) --------------- */

/* A capture window that is full grows downwards into the free middle of the arena: its bytes
 * move down by as much as it grows (at least doubling), its end stays. */
static bool window_grow(ctx *c, sink *s, size_t need) {
    size_t at = (c->used + 7u) & ~(size_t)7u;
    size_t free_ = at < c->top ? c->top - at : 0;
    size_t grow = s->cap > need ? s->cap : need; /* at least double */
    grow = (grow + 7u) & ~(size_t)7u;             /* keeps the window's start aligned */
    if (grow > free_) grow = free_ & ~(size_t)7u;
    if (grow < need) return false;
    memmove(s->p - grow, s->p, s->n);
    s->p -= grow;
    s->cap += grow;
    c->top -= grow;
    if (c->used + (c->cap - c->top) > c->peak) c->peak = c->used + (c->cap - c->top);
    return true;
}

static void put(ctx *c, sink *s, const char *p, size_t n) {
    if (n > s->cap - s->n && s->window) window_grow(c, s, n - (s->cap - s->n));
    if (n > s->cap - s->n) {
        if (s->arena)
            fail(c, SIZE_MAX, EL_E_NOFIT, "needs more work memory than the %zu bytes given "
                 "(building a string of over %zu bytes); pass a larger work buffer",
                 c->cap, s->n + n);
        fail(c, SIZE_MAX, EL_E_NOFIT, "the rendered prompt needs more than the %zu bytes the "
             "output buffer holds (its capacity less the NUL)", s->cap);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
}
static void puts_(ctx *c, sink *s, const char *z) { put(c, s, z, strlen(z)); }

/* A string builder at the arena top: nothing else may be allocated until sb_end. */
static sink sb_begin(ctx *c) {
    size_t at = (c->used + 7u) & ~(size_t)7u;
    if (at > c->top) at = c->top;
    sink s = {c->mem + at, 0, c->top - at, true, false};
    return s;
}
static val sb_end(ctx *c, sink *s) {
    c->used = (size_t)(s->p - c->mem) + s->n;
    if (c->used > c->peak) c->peak = c->used;
    val v = {.k = V_STR};
    v.u.s.p = s->p;
    v.u.s.n = s->n;
    return v;
}

/* ---- small helpers ------------------------------------------------------------------ */

static val mk_str(const char *p, size_t n) {
    val v = {.k = V_STR};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
static val mk_int(int64_t i) { val v = {.k = V_INT}; v.u.i = i; return v; }
static val mk_bool(bool b) { val v = {.k = V_BOOL}; v.u.i = b; return v; }
static val mk_float(double f) { val v = {.k = V_FLOAT}; v.u.f = f; return v; }
static val mk_none(void) { val v = {.k = V_NONE}; return v; }
static val mk_undef(const char *name, size_t n) {
    val v = {.k = V_UNDEF};
    v.u.s.p = name;
    v.u.s.n = n;
    return v;
}
static bool s_eq(const char *p, size_t n, const char *z) { return strlen(z) == n && !memcmp(p, z, n); }

static val mk_list(ctx *c, size_t n, bool tuple) {
    vlist *l = alloc(c, sizeof *l);
    l->n = n;
    l->v = alloc(c, mul_size(c, n, sizeof(val))); /* never NULL, even when empty */
    val v = {.k = V_LIST, .tuple = tuple};
    v.u.l = l;
    return v;
}
static vdict *dict_new(ctx *c, size_t cap) {
    vdict *d = alloc(c, sizeof *d);
    d->n = 0;
    d->cap = cap ? cap : 4;
    d->key = alloc(c, mul_size(c, d->cap, sizeof(val)));
    d->v = alloc(c, mul_size(c, d->cap, sizeof(val)));
    return d;
}

static bool v_eq(ctx *c, const val *a, const val *b, int depth);

static val *dict_find(ctx *c, const vdict *d, const val *key) {
    for (size_t i = 0; i < d->n; i++) {
        step(c, SIZE_MAX);
        if (v_eq(c, &d->key[i], key, 0)) return &d->v[i];
    }
    return NULL;
}
static val *dict_find_s(const vdict *d, const char *p, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->key[i].k == V_STR && d->key[i].u.s.n == n && !memcmp(d->key[i].u.s.p, p, n))
            return &d->v[i];
    return NULL;
}
/* Sets key (an existing key keeps its place, as in Python). */
static void dict_set(ctx *c, vdict *d, val key, val v) {
    val *slot = dict_find(c, d, &key);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = mul_size(c, d->cap, 2);
        val *k2 = alloc(c, mul_size(c, cap, sizeof(val))), *v2 = alloc(c, cap * sizeof(val));
        memcpy(k2, d->key, d->n * sizeof(val));
        memcpy(v2, d->v, d->n * sizeof(val));
        d->key = k2;
        d->v = v2;
        d->cap = cap;
    }
    d->key[d->n] = key;
    d->v[d->n++] = v;
}

static const char *type_name(const val *v) {
    switch (v->k) {
    case V_UNDEF: return "undefined";
    case V_NONE: return "NoneType";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float";
    case V_STR: return "str";
    case V_LIST: return v->tuple ? "tuple" : "list";
    case V_DICT: return "dict";
    case V_NS: return "Namespace";
    case V_LOOP: return "LoopContext";
    case V_RANGE: return "range";
    default: return "function";
    }
}

/* Python's whitespace for str.strip()/split(): Unicode White_Space plus U+001C..U+001F. */
static bool py_space(uint32_t cp) { return (cp >= 0x1c && cp <= 0x1f) || el_uni_is_space(cp); }

/* Number of code points of valid UTF-8. */
static size_t u8_len(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xc0) != 0x80;
    return k;
}
/* Byte offset of code point index ci (ci <= length). */
static size_t u8_off(const char *p, size_t n, size_t ci) {
    size_t i = 0;
    while (i < n && ci > 0) {
        i++;
        while (i < n && ((unsigned char)p[i] & 0xc0) == 0x80) i++;
        ci--;
    }
    return i;
}
static size_t u8_next(const char *p, size_t n, size_t i) {
    i++;
    while (i < n && ((unsigned char)p[i] & 0xc0) == 0x80) i++;
    return i;
}
static size_t u8_prev(const char *p, size_t i) {
    i--;
    while (i > 0 && ((unsigned char)p[i] & 0xc0) == 0x80) i--;
    return i;
}

/* ---- Python str() / repr() of values --------------------------------------------------- */

/* strtod of text written with '.', whatever LC_NUMERIC the host process set (b is modified). */
static double parse_double(char *b, char **end) {
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1])
        for (char *q = b; *q; q++)
            if (*q == '.') *q = dp[0];
    return strtod(b, end);
}

/* Python's repr(float): the shortest digits that round-trip, fixed notation when the
 * exponent is in [-4, 16), else d.ddde+XX. */
static void fmt_float(double x, char *buf, size_t cap, bool json) {
    if (isnan(x)) { snprintf(buf, cap, "%s", json ? "NaN" : "nan"); return; }
    if (isinf(x)) { snprintf(buf, cap, "%s%s", x < 0 ? "-" : "", json ? "Infinity" : "inf"); return; }
    char e[40];
    int p;
    for (p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, x);
        if (strtod(e, NULL) == x) break;
    }
    /* e: [-]d[.ddd]e(+|-)XX */
    char digits[24] = "0";
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < sizeof digits - 1) digits[nd++] = *q;
    int ex = *q ? atoi(q + 1) : 0;
    if (nd == 0) nd = 1; /* "0" */
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    size_t o = 0;
    char out[64];
    if (neg) out[o++] = '-';
    if (ex >= -4 && ex < 16) {
        if (ex >= 0) {
            for (int i = 0; i <= ex; i++) out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)ex + 1 < nd)
                for (size_t i = (size_t)ex + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -ex - 1; i++) out[o++] = '0';
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
        snprintf(out + o, sizeof out - o, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
    snprintf(buf, cap, "%s", out);
}

static void put_int(ctx *c, sink *s, int64_t i) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)i);
    puts_(c, s, b);
}

/* repr() of a str: single quotes unless it holds ' and no ". Control characters are
 * escaped; other non-ASCII characters are kept (Python escapes the non-printable ones too). */
static void put_repr_str(ctx *c, sink *s, const char *p, size_t n) {
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char qc = sq && !dq ? '"' : '\'';
    put(c, s, &qc, 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *esc = NULL;
        char b[8];
        if (ch == '\\') esc = "\\\\";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch == (unsigned char)qc) esc = qc == '\'' ? "\\'" : "\\\"";
        else if (ch < 0x20 || ch == 0x7f) {
            snprintf(b, sizeof b, "\\x%02x", ch);
            esc = b;
        }
        if (esc) {
            put(c, s, p + run, i - run);
            puts_(c, s, esc);
            run = i + 1;
        }
    }
    put(c, s, p + run, n - run);
    put(c, s, &qc, 1);
}

static void put_val(ctx *c, sink *s, const val *v, bool repr, int depth);

static void put_seq(ctx *c, sink *s, const val *v, int depth) {
    if (v->k == V_RANGE) {
        char b[96];
        if (v->u.r->step == 1)
            snprintf(b, sizeof b, "range(%lld, %lld)", (long long)v->u.r->start, (long long)v->u.r->stop);
        else
            snprintf(b, sizeof b, "range(%lld, %lld, %lld)", (long long)v->u.r->start, (long long)v->u.r->stop,
                     (long long)v->u.r->step);
        puts_(c, s, b);
        return;
    }
    const vlist *l = v->u.l;
    puts_(c, s, v->tuple ? "(" : "[");
    for (size_t i = 0; i < l->n; i++) {
        if (i) puts_(c, s, ", ");
        put_val(c, s, &l->v[i], true, depth + 1);
    }
    if (v->tuple && l->n == 1) puts_(c, s, ",");
    puts_(c, s, v->tuple ? ")" : "]");
}

/* str(v) (repr = false) or repr(v), into s. */
static void put_val(ctx *c, sink *s, const val *v, bool repr, int depth) {
    if (depth > EL_CHAT_DEPTH_MAX)
        fail(c, SIZE_MAX, EL_E_INVALID, "a value nested deeper than %d levels", EL_CHAT_DEPTH_MAX);
    step(c, SIZE_MAX);
    char b[64];
    switch (v->k) {
    case V_UNDEF: if (repr) puts_(c, s, "Undefined"); return;
    case V_NONE: puts_(c, s, "None"); return;
    case V_BOOL: puts_(c, s, v->u.i ? "True" : "False"); return;
    case V_INT: put_int(c, s, v->u.i); return;
    case V_FLOAT: fmt_float(v->u.f, b, sizeof b, false); puts_(c, s, b); return;
    case V_STR:
        if (repr) put_repr_str(c, s, v->u.s.p, v->u.s.n);
        else put(c, s, v->u.s.p, v->u.s.n);
        return;
    case V_LIST: case V_RANGE: put_seq(c, s, v, depth); return;
    case V_DICT: case V_NS: {
        const vdict *d = v->u.d;
        puts_(c, s, v->k == V_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < d->n; i++) {
            if (i) puts_(c, s, ", ");
            put_val(c, s, &d->key[i], true, depth + 1);
            puts_(c, s, ": ");
            put_val(c, s, &d->v[i], true, depth + 1);
        }
        puts_(c, s, v->k == V_NS ? "}>" : "}");
        return;
    }
    case V_LOOP:
        snprintf(b, sizeof b, "<LoopContext %lld/%lld>", (long long)v->u.lp->i + 1,
                 (long long)v->u.lp->n);
        puts_(c, s, b);
        return;
    default: puts_(c, s, "<function>"); return;
    }
}

static val to_str(ctx *c, const val *v) {
    if (v->k == V_STR) return *v;
    sink s = sb_begin(c);
    put_val(c, &s, v, false, 0);
    return sb_end(c, &s);
}

/* ---- JSON out (Python json.dumps, as transformers' tojson override) ------------------- */

typedef struct jopts {
    int indent;          /* -1: none */
    const char *ind;     /* indent string (when given as a string) */
    size_t indn;
    bool ascii, sort;
    const char *isep, *ksep;
    size_t isepn, ksepn;
} jopts;

static void put_json_str(ctx *c, sink *s, const char *p, size_t n, bool ascii) {
    puts_(c, s, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        char b[16];
        const char *esc = NULL;
        size_t adv = 1;
        if (ch == '"') esc = "\\\"";
        else if (ch == '\\') esc = "\\\\";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch == '\b') esc = "\\b";
        else if (ch == '\f') esc = "\\f";
        else if (ch < 0x20) {
            snprintf(b, sizeof b, "\\u%04x", ch);
            esc = b;
        } else if (ascii && ch >= 0x80) {
            uint32_t cp;
            adv = el_uni_decode(p + i, n - i, &cp);
            if (cp >= 0x10000) {
                uint32_t x = cp - 0x10000;
                snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xd800 + (x >> 10), 0xdc00 + (x & 0x3ff));
            } else {
                snprintf(b, sizeof b, "\\u%04x", cp);
            }
            esc = b;
        }
        if (esc) {
            put(c, s, p + run, i - run);
            puts_(c, s, esc);
            run = i + adv;
        }
        i += adv;
    }
    put(c, s, p + run, n - run);
    puts_(c, s, "\"");
}

static void put_json_nl(ctx *c, sink *s, const jopts *o, int level) {
    puts_(c, s, "\n");
    for (int i = 0; i < level; i++) {
        if (o->ind) put(c, s, o->ind, o->indn);
        else
            for (int k = 0; k < o->indent; k++) puts_(c, s, " ");
    }
}

static int v_cmp(ctx *c, const val *a, const val *b, size_t pos, int depth);

static void put_json(ctx *c, sink *s, const val *v, const jopts *o, int level, size_t pos) {
    if (level > EL_CHAT_DEPTH_MAX)
        fail(c, pos, EL_E_INVALID, "tojson: a value nested deeper than %d levels", EL_CHAT_DEPTH_MAX);
    step(c, pos);
    char b[64];
    bool pretty = o->indent >= 0 || o->ind;
    switch (v->k) {
    case V_NONE: puts_(c, s, "null"); return;
    case V_BOOL: puts_(c, s, v->u.i ? "true" : "false"); return;
    case V_INT: put_int(c, s, v->u.i); return;
    case V_FLOAT: fmt_float(v->u.f, b, sizeof b, true); puts_(c, s, b); return;
    case V_STR: put_json_str(c, s, v->u.s.p, v->u.s.n, o->ascii); return;
    case V_LIST: {
        const vlist *l = v->u.l;
        if (l->n == 0) { puts_(c, s, "[]"); return; }
        puts_(c, s, "[");
        for (size_t i = 0; i < l->n; i++) {
            if (i) put(c, s, o->isep, o->isepn);
            if (pretty) put_json_nl(c, s, o, level + 1);
            put_json(c, s, &l->v[i], o, level + 1, pos);
        }
        if (pretty) put_json_nl(c, s, o, level);
        puts_(c, s, "]");
        return;
    }
    case V_DICT: {
        const vdict *d = v->u.d;
        if (d->n == 0) { puts_(c, s, "{}"); return; }
        puts_(c, s, "{");
        const val *prev = NULL;
        for (size_t k = 0; k < d->n; k++) {
            size_t i = k;
            if (o->sort) { /* the smallest key after prev: no allocation while building */
                const val *best = NULL;
                for (size_t j = 0; j < d->n; j++) {
                    if (prev && v_cmp(c, &d->key[j], prev, pos, 0) <= 0) continue;
                    if (!best || v_cmp(c, &d->key[j], best, pos, 0) < 0) {
                        best = &d->key[j];
                        i = j;
                    }
                }
                prev = best;
            }
            if (k) put(c, s, o->isep, o->isepn);
            if (pretty) put_json_nl(c, s, o, level + 1);
            const val *key = &d->key[i];
            if (key->k == V_STR) {
                put_json_str(c, s, key->u.s.p, key->u.s.n, o->ascii);
            } else if (key->k == V_INT || key->k == V_FLOAT || key->k == V_BOOL || key->k == V_NONE) {
                puts_(c, s, "\"");
                put_json(c, s, key, o, level + 1, pos);
                puts_(c, s, "\"");
            } else {
                fail(c, pos, EL_E_INVALID, "tojson: keys must be str, int, float, bool or None, "
                     "not %s", type_name(key));
            }
            put(c, s, o->ksep, o->ksepn);
            put_json(c, s, &d->v[i], o, level + 1, pos);
        }
        if (pretty) put_json_nl(c, s, o, level);
        puts_(c, s, "}");
        return;
    }
    case V_RANGE:
    default:
        fail(c, pos, EL_E_INVALID, "tojson: object of type %s is not JSON serializable",
             v->k == V_UNDEF ? "Undefined" : type_name(v));
    }
}

/* ---- JSON in (messages, tools, variables) -------------------------------------------- */

typedef struct jin { ctx *c; const char *p; size_t n, i; const char *what; } jin;

__attribute__((noreturn)) static void jfail(jin *j, const char *why) {
    fail(j->c, SIZE_MAX, EL_E_INVALID, "%s: invalid JSON at byte %zu: %s", j->what, j->i, why);
}
static void jws(jin *j) {
    while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' ||
                           j->p[j->i] == '\r'))
        j->i++;
}
static int hexv(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}
/* The escapes JSON and Python string literals share: \" \\ \b \f \n \r \t; -1 for others. */
static int esc_char(char e) {
    switch (e) {
    case '"': return '"';
    case '\\': return '\\';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return -1;
    }
}

static uint32_t jhex4(jin *j) {
    if (j->n - j->i < 4) jfail(j, "truncated \\u escape");
    uint32_t u = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexv((unsigned char)j->p[j->i + k]);
        if (h < 0) jfail(j, "bad \\u escape");
        u = u * 16 + (uint32_t)h;
    }
    j->i += 4;
    return u;
}
static val jstring(jin *j) {
    j->i++; /* opening quote */
    size_t start = j->i;
    bool esc = false;
    while (j->i < j->n && j->p[j->i] != '"') {
        unsigned char ch = (unsigned char)j->p[j->i];
        if (ch < 0x20) jfail(j, "raw control character in a string");
        if (ch == '\\') {
            esc = true;
            j->i++;
        }
        j->i++;
    }
    if (j->i >= j->n) jfail(j, "unterminated string");
    size_t end = j->i++;
    if (el_utf8_check(j->p + start, end - start) != end - start) jfail(j, "invalid UTF-8");
    if (!esc) return mk_str(j->p + start, end - start);
    char *o = alloc(j->c, end - start);
    size_t on = 0;
    size_t save = j->i;
    for (j->i = start; j->i < end;) {
        char ch = j->p[j->i++];
        if (ch != '\\') {
            o[on++] = ch;
            continue;
        }
        char e = j->p[j->i++];
        int se = e == '/' ? '/' : esc_char(e);
        if (se >= 0) {
            o[on++] = (char)se;
            continue;
        }
        switch (e) {
        case 'u': {
            uint32_t u = jhex4(j);
            if (u >= 0xd800 && u < 0xdc00) {
                if (j->i + 6 > end || j->p[j->i] != '\\' || j->p[j->i + 1] != 'u')
                    jfail(j, "lone surrogate");
                j->i += 2;
                uint32_t lo = jhex4(j);
                if (lo < 0xdc00 || lo >= 0xe000) jfail(j, "lone surrogate");
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            } else if (u >= 0xdc00 && u < 0xe000) {
                jfail(j, "lone surrogate");
            }
            if (u == 0) jfail(j, "\\u0000 is not allowed");
            on += el_uni_encode(u, o + on); /* <= 6 source bytes give <= 4 */
            break;
        }
        default: jfail(j, "invalid escape");
        }
    }
    j->i = save;
    return mk_str(o, on);
}
static val jvalue(jin *j, int depth) {
    if (depth > EL_CHAT_DEPTH_MAX) jfail(j, "nested too deep");
    step(j->c, SIZE_MAX);
    jws(j);
    if (j->i >= j->n) jfail(j, "unexpected end");
    char ch = j->p[j->i];
    if (ch == '"') return jstring(j);
    if (ch == '[' || ch == '{') {
        bool obj = ch == '{';
        j->i++;
        /* count is unknown: collect into a dict/list that grows */
        vdict *d = dict_new(j->c, 4);
        size_t cnt = 0;
        jws(j);
        if (j->i < j->n && j->p[j->i] == (obj ? '}' : ']')) {
            j->i++;
        } else {
            for (;;) {
                val k = mk_int((int64_t)cnt);
                if (obj) {
                    jws(j);
                    if (j->i >= j->n || j->p[j->i] != '"') jfail(j, "expected a key");
                    k = jstring(j);
                    jws(j);
                    if (j->i >= j->n || j->p[j->i] != ':') jfail(j, "expected ':'");
                    j->i++;
                }
                val v = jvalue(j, depth + 1);
                if (obj) dict_set(j->c, d, k, v);
                else {
                    if (d->n == d->cap) dict_set(j->c, d, k, v); /* grows */
                    else { d->key[d->n] = k; d->v[d->n++] = v; }
                }
                cnt++;
                jws(j);
                if (j->i < j->n && j->p[j->i] == ',') { j->i++; continue; }
                if (j->i < j->n && j->p[j->i] == (obj ? '}' : ']')) { j->i++; break; }
                jfail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            }
        }
        if (obj) {
            val v = {.k = V_DICT};
            v.u.d = d;
            return v;
        }
        val l = mk_list(j->c, d->n, false);
        for (size_t i = 0; i < d->n; i++) l.u.l->v[i] = d->v[i];
        return l;
    }
    if (j->n - j->i >= 4 && !memcmp(j->p + j->i, "true", 4)) { j->i += 4; return mk_bool(true); }
    if (j->n - j->i >= 5 && !memcmp(j->p + j->i, "false", 5)) { j->i += 5; return mk_bool(false); }
    if (j->n - j->i >= 4 && !memcmp(j->p + j->i, "null", 4)) { j->i += 4; return mk_none(); }
    /* number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
    size_t st = j->i;
    bool isf = false;
    if (j->p[j->i] == '-') j->i++;
    if (j->i >= j->n || j->p[j->i] < '0' || j->p[j->i] > '9') jfail(j, "unexpected character");
    if (j->p[j->i] == '0') j->i++;
    else while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') j->i++;
    if (j->i < j->n && j->p[j->i] == '.') {
        isf = true;
        j->i++;
        if (j->i >= j->n || j->p[j->i] < '0' || j->p[j->i] > '9') jfail(j, "bad number");
        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') j->i++;
    }
    if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
        isf = true;
        j->i++;
        if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-')) j->i++;
        if (j->i >= j->n || j->p[j->i] < '0' || j->p[j->i] > '9') jfail(j, "bad number");
        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') j->i++;
    }
    char b[64];
    if (j->i - st >= sizeof b) jfail(j, "number too long");
    memcpy(b, j->p + st, j->i - st);
    b[j->i - st] = 0;
    if (!isf) {
        char *end;
        errno = 0;
        long long x = strtoll(b, &end, 10);
        if (errno == 0) return mk_int(x);
        jfail(j, "integer out of the 64-bit range");
    }
    return mk_float(parse_double(b, NULL));
}
static val json_parse(ctx *c, const char *p, size_t n, const char *what) {
    jin j = {c, p, n, 0, what};
    val v = jvalue(&j, 0);
    jws(&j);
    if (j.i != n) jfail(&j, "trailing characters");
    return v;
}

/* ---- lexer ---------------------------------------------------------------------------- */

static bool is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_ident0(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static bool is_ident(char ch) { return is_ident0(ch) || is_digit(ch); }

/* Where the next tag opener ({{, {%, {#) at or after i starts; slen if none. */
static size_t find_tag(const ctx *c, size_t i) {
    for (; i + 1 < c->slen; i++)
        if (c->src[i] == '{' && (c->src[i + 1] == '{' || c->src[i + 1] == '%' || c->src[i + 1] == '#'))
            return i;
    return c->slen;
}

/* Decodes a string literal body (Python unicode-escape rules) into the arena. */
static tok lex_string(ctx *c, size_t at) {
    char q = c->src[at];
    size_t i = at + 1;
    bool esc = false;
    while (i < c->slen && c->src[i] != q) {
        if (c->src[i] == '\\') {
            esc = true;
            i++;
        }
        i++;
    }
    if (i >= c->slen) fail(c, at, EL_E_UNSUPPORTED, "unterminated string literal");
    tok t = {.kind = TK_STR, .pos = (uint32_t)at, .p = c->src + at + 1, .n = i - at - 1};
    c->lpos = i + 1;
    if (!esc) return t;
    char *o = alloc(c, t.n);
    size_t on = 0;
    for (size_t k = at + 1; k < i;) {
        char ch = c->src[k++];
        if (ch != '\\') {
            o[on++] = ch;
            continue;
        }
        char e = c->src[k++];
        uint32_t u = 0;
        int nh = 0;
        int se = e == '\'' ? '\'' : e == 'a' ? '\a' : e == 'v' ? '\v' : esc_char(e);
        if (se >= 0) {
            o[on++] = (char)se;
            continue;
        }
        switch (e) {
        case '\n': break;
        case 'x': nh = 2; break;
        case 'u': nh = 4; break;
        case 'U': nh = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                u = (uint32_t)(e - '0');
                for (int m = 0; m < 2 && k < i && c->src[k] >= '0' && c->src[k] <= '7'; m++)
                    u = u * 8 + (uint32_t)(c->src[k++] - '0');
                on += el_uni_encode(u, o + on);
            } else { /* unknown escapes stay as written */
                o[on++] = '\\';
                k--;
            }
        }
        if (nh) {
            for (int m = 0; m < nh; m++) {
                int h = k < i ? hexv((unsigned char)c->src[k]) : -1;
                if (h < 0) fail(c, k, EL_E_UNSUPPORTED, "truncated \\%c escape in a string", e);
                u = u * 16 + (uint32_t)h;
                k++;
            }
            if (u > 0x10ffff || (u >= 0xd800 && u < 0xe000))
                fail(c, k, EL_E_UNSUPPORTED, "escape \\%c gives no valid character (U+%X)", e, u);
            on += el_uni_encode(u, o + on); /* \xHH: 4 bytes give <= 2; others fit likewise */
        }
    }
    t.p = o;
    t.n = on;
    return t;
}

static tok lex_number(ctx *c, size_t at) {
    char b[64];
    size_t bn = 0, i = at;
    bool isf = false;
    /* Jinja: [1-9](_?\d)* | 0(_?0)* for integers, with '.' digits and e[+-]digits for floats */
    while (i < c->slen && (is_digit(c->src[i]) || (c->src[i] == '_' && i + 1 < c->slen && is_digit(c->src[i + 1])))) {
        if (c->src[i] != '_' && bn < sizeof b - 1) b[bn++] = c->src[i];
        i++;
    }
    if (i + 1 < c->slen && c->src[i] == '.' && is_digit(c->src[i + 1])) {
        isf = true;
        b[bn++] = '.';
        i++;
        while (i < c->slen && (is_digit(c->src[i]) || (c->src[i] == '_' && i + 1 < c->slen && is_digit(c->src[i + 1])))) {
            if (c->src[i] != '_' && bn < sizeof b - 1) b[bn++] = c->src[i];
            i++;
        }
    }
    if (i < c->slen && (c->src[i] == 'e' || c->src[i] == 'E')) {
        size_t k = i + 1;
        if (k < c->slen && (c->src[k] == '+' || c->src[k] == '-')) k++;
        if (k < c->slen && is_digit(c->src[k])) {
            isf = true;
            if (bn < sizeof b - 1) b[bn++] = 'e';
            for (size_t m = i + 1; m < k; m++)
                if (bn < sizeof b - 1) b[bn++] = c->src[m];
            i = k;
            while (i < c->slen && is_digit(c->src[i]))
                if (bn < sizeof b - 1) b[bn++] = c->src[i++];
                else i++;
        }
    }
    if (bn >= sizeof b - 1) fail(c, at, EL_E_UNSUPPORTED, "number literal too long");
    b[bn] = 0;
    tok t = {.kind = isf ? TK_FLOAT : TK_INT, .pos = (uint32_t)at};
    if (isf) {
        t.f = parse_double(b, NULL);
    } else {
        if (b[0] == '0' && bn > 1)
            for (size_t m = 1; m < bn; m++)
                if (b[m] != '0') fail(c, at, EL_E_UNSUPPORTED, "integer literal with a leading zero");
        errno = 0;
        t.i = strtoll(b, NULL, 10);
        if (errno) fail(c, at, EL_E_UNSUPPORTED, "integer literal out of the 64-bit range");
    }
    c->lpos = i;
    return t;
}

static const char *const ops2[] = {"//", "**", "==", "!=", ">=", "<="};

/* The next token. Data outside tags comes out with jinja2's whitespace rules applied. */
static tok lex_raw(ctx *c) {
    for (;;) {
        if (c->lstate == 0) {
            if (c->lpos >= c->slen) return (tok){.kind = TK_EOF, .pos = (uint32_t)c->slen};
            size_t t = c->pending_tag ? c->lpos : find_tag(c, c->lpos);
            if (!c->pending_tag) {
                size_t a = c->lpos, b = t;
                if (t < c->slen) {
                    char sign = t + 2 < c->slen ? c->src[t + 2] : 0;
                    char kind = c->src[t + 1];
                    if (sign == '-') {
                        while (b > a && is_ws(c->src[b - 1])) b--;
                    } else if (sign != '+' && kind != '{') { /* lstrip_blocks */
                        size_t l = b;
                        while (l > a && c->src[l - 1] != '\n') l--;
                        if (l > a || c->line_starting) {
                            size_t k = l;
                            while (k < b && is_ws(c->src[k])) k++;
                            if (k == b) b = l;
                        }
                    }
                }
                c->lpos = t;
                c->pending_tag = t < c->slen;
                if (b > a) return (tok){.kind = TK_DATA, .pos = (uint32_t)a, .p = c->src + a, .n = b - a};
                continue;
            }
            c->pending_tag = false;
            char kind = c->src[t + 1];
            size_t i = t + 2;
            if (i < c->slen && (c->src[i] == '-' || c->src[i] == '+')) i++;
            if (kind == '#') { /* comment: up to the first #} */
                size_t e = i;
                while (e + 1 < c->slen && !(c->src[e] == '#' && c->src[e + 1] == '}')) e++;
                if (e + 1 >= c->slen) fail(c, t, EL_E_UNSUPPORTED, "missing end of comment tag");
                size_t after = e + 2;
                if (e > i && c->src[e - 1] == '-') {
                    while (after < c->slen && is_ws(c->src[after])) after++;
                } else if (!(e > i && c->src[e - 1] == '+') && after < c->slen && c->src[after] == '\n') {
                    after++;
                }
                c->line_starting = c->src[after - 1] == '\n';
                c->lpos = after;
                continue;
            }
            c->lpos = i;
            c->lstate = kind == '{' ? 1 : 2;
            c->bal = 0;
            return (tok){.kind = kind == '{' ? TK_VBEGIN : TK_BBEGIN, .pos = (uint32_t)t};
        }
        /* inside {{ }} or {% %} */
        while (c->lpos < c->slen && is_ws(c->src[c->lpos])) c->lpos++;
        size_t i = c->lpos;
        if (i >= c->slen)
            fail(c, i, EL_E_UNSUPPORTED, "unexpected end of template: '%s' is missing",
                 c->lstate == 1 ? "}}" : "%}");
        const char *s = c->src;
        if (c->bal == 0) {
            char close = c->lstate == 1 ? '}' : '%';
            size_t e = SIZE_MAX, after = 0;
            bool strip = false, keep = false;
            if (s[i] == close && i + 1 < c->slen && s[i + 1] == '}') { e = i; after = i + 2; }
            else if ((s[i] == '-' || (s[i] == '+' && c->lstate == 2)) && i + 2 < c->slen &&
                     s[i + 1] == close && s[i + 2] == '}') {
                e = i;
                after = i + 3;
                strip = s[i] == '-';
                keep = s[i] == '+';
            }
            if (e != SIZE_MAX) {
                if (strip) {
                    while (after < c->slen && is_ws(s[after])) after++;
                } else if (c->lstate == 2 && !keep && after < c->slen && s[after] == '\n') {
                    after++; /* trim_blocks */
                }
                c->line_starting = s[after - 1] == '\n';
                tok tk = {.kind = c->lstate == 1 ? TK_VEND : TK_BEND, .pos = (uint32_t)e};
                c->lstate = 0;
                c->lpos = after;
                return tk;
            }
        }
        if (is_digit(s[i])) return lex_number(c, i);
        if (is_ident0(s[i])) {
            size_t k = i;
            while (k < c->slen && is_ident(s[k])) k++;
            c->lpos = k;
            return (tok){.kind = TK_NAME, .pos = (uint32_t)i, .p = s + i, .n = k - i};
        }
        if (s[i] == '\'' || s[i] == '"') return lex_string(c, i);
        for (size_t k = 0; k < sizeof ops2 / sizeof ops2[0]; k++)
            if (i + 1 < c->slen && s[i] == ops2[k][0] && s[i + 1] == ops2[k][1]) {
                c->lpos = i + 2;
                return (tok){.kind = TK_OP, .pos = (uint32_t)i, .p = s + i, .n = 2};
            }
        if (strchr("+-/*%~[](){}<>=.:|,;", s[i]) && s[i]) {
            if (s[i] == '(' || s[i] == '[' || s[i] == '{') c->bal++;
            if ((s[i] == ')' || s[i] == ']' || s[i] == '}') && c->bal > 0) c->bal--;
            c->lpos = i + 1;
            return (tok){.kind = TK_OP, .pos = (uint32_t)i, .p = s + i, .n = 1};
        }
        fail(c, i, EL_E_UNSUPPORTED, "unexpected character '%s%c' in a tag",
             (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? "\\x" : "",
             (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i]);
    }
}

static tok *peek_n(ctx *c, int k) {
    while (c->nla <= k) c->la[c->nla++] = lex_raw(c);
    return &c->la[k];
}
static tok *peek(ctx *c) { return peek_n(c, 0); }
static tok next(ctx *c) {
    tok t = *peek(c);
    memmove(c->la, c->la + 1, (size_t)(c->nla - 1) * sizeof(tok));
    c->nla--;
    return t;
}
static bool is_op(const tok *t, const char *op) { return t->kind == TK_OP && s_eq(t->p, t->n, op); }
static bool is_name(const tok *t, const char *nm) { return t->kind == TK_NAME && s_eq(t->p, t->n, nm); }
static bool skip_op(ctx *c, const char *op) {
    if (!is_op(peek(c), op)) return false;
    next(c);
    return true;
}
static bool skip_name(ctx *c, const char *nm) {
    if (!is_name(peek(c), nm)) return false;
    next(c);
    return true;
}
static const char *tok_desc(const tok *t, char *b, size_t cap) {
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_VEND: return "'}}'";
    case TK_BEND: return "'%}'";
    case TK_STR: return "a string";
    case TK_INT: case TK_FLOAT: return "a number";
    default: snprintf(b, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p); return b;
    }
}
static void expect_op(ctx *c, const char *op) {
    tok *t = peek(c);
    if (!is_op(t, op)) {
        char b[64];
        fail(c, t->pos, EL_E_UNSUPPORTED, "expected '%s', found %s", op, tok_desc(t, b, sizeof b));
    }
    next(c);
}

/* ---- parser ----------------------------------------------------------------------------- */

static const char *const filter_names[] = {
    "trim", "length", "count", "upper", "lower", "tojson", "string", "default", "d", "join",
    "replace", "capitalize", "title", "items", "selectattr", "rejectattr", "map", "list",
    "first", "last", "reverse", "int", "float", "abs", "safe", "unique", "min", "max", "sum",
    "select", "reject", "sort", "dictsort", "indent", "wordcount", "round", "batch", "e", "escape",
};
enum {
    F_TRIM, F_LENGTH, F_COUNT, F_UPPER, F_LOWER, F_TOJSON, F_STRING, F_DEFAULT, F_D, F_JOIN,
    F_REPLACE, F_CAPITALIZE, F_TITLE, F_ITEMS, F_SELECTATTR, F_REJECTATTR, F_MAP, F_LIST,
    F_FIRST, F_LAST, F_REVERSE, F_INT, F_FLOAT, F_ABS, F_SAFE, F_UNIQUE, F_MIN, F_MAX, F_SUM,
    F_SELECT, F_REJECT, F_SORT, F_DICTSORT,
    F_N_SUPPORTED /* the ones after are known to jinja, not to us */
};
static const char *const test_names[] = {
    "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true",
    "false", "mapping", "iterable", "sequence", "callable", "equalto", "eq", "==", "ne", "!=",
    "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "in", "odd", "even", "divisibleby", "lower",
    "upper", "sameas",
};
enum {
    T_DEFINED, T_UNDEFINED, T_NONE, T_STRING, T_NUMBER, T_INTEGER, T_FLOAT, T_BOOLEAN, T_TRUE,
    T_FALSE, T_MAPPING, T_ITERABLE, T_SEQUENCE, T_CALLABLE, T_EQ, T_EQ2, T_EQ3, T_NE, T_NE2,
    T_LT, T_LT2, T_LE, T_LE2, T_GT, T_GT2, T_GE, T_GE2, T_IN, T_ODD, T_EVEN, T_DIVISIBLEBY,
    T_LOWER, T_UPPER, T_SAMEAS, T_COUNT
};

#define FN_UNKNOWN 0xffffu /* a filter or test outside the subset: an error when evaluated */

static int lookup_name(const char *const *tab, size_t n, const char *p, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (s_eq(p, len, tab[i])) return (int)i;
    return -1;
}

static node *mk(ctx *c, int kind, size_t pos) {
    node *n = alloc(c, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->pos = (uint32_t)pos;
    return n;
}

static node *p_expr(ctx *c);
static node *p_or(ctx *c);
static node *p_unary(ctx *c, bool with_filter);
static node *p_tuple(ctx *c, bool with_cond);

/* Call arguments after '(' up to ')': positional, then name=value. */
static node *p_args(ctx *c) {
    node *head = NULL, **tail = &head;
    bool kw_seen = false;
    while (!is_op(peek(c), ")")) {
        if (head) expect_op(c, ",");
        if (is_op(peek(c), ")")) break;
        tok *t = peek(c);
        if (is_op(t, "*") || is_op(t, "**"))
            fail(c, t->pos, EL_E_UNSUPPORTED, "*args and **kwargs in calls are not supported");
        node *a = mk(c, E_ARG, t->pos);
        if (t->kind == TK_NAME && is_op(peek_n(c, 1), "=")) {
            tok nm = next(c);
            next(c);
            a->v = mk_str(nm.p, nm.n);
            kw_seen = true;
        } else if (kw_seen) {
            fail(c, t->pos, EL_E_UNSUPPORTED, "a positional argument after keyword arguments");
        }
        a->a = p_expr(c);
        *tail = a;
        tail = &a->next;
    }
    expect_op(c, ")");
    return head;
}

static node *p_primary(ctx *c) {
    tok t = next(c);
    node *n;
    char b[64];
    switch (t.kind) {
    case TK_NAME:
        n = mk(c, E_CONST, t.pos);
        if (s_eq(t.p, t.n, "true") || s_eq(t.p, t.n, "True")) n->v = mk_bool(true);
        else if (s_eq(t.p, t.n, "false") || s_eq(t.p, t.n, "False")) n->v = mk_bool(false);
        else if (s_eq(t.p, t.n, "none") || s_eq(t.p, t.n, "None")) n->v = mk_none();
        else {
            n->kind = E_NAME;
            n->v = mk_str(t.p, t.n);
        }
        return n;
    case TK_STR: {
        n = mk(c, E_CONST, t.pos);
        n->v = mk_str(t.p, t.n);
        while (peek(c)->kind == TK_STR) { /* adjacent literals concatenate */
            tok u = next(c);
            char *m = alloc(c, n->v.u.s.n + u.n);
            memcpy(m, n->v.u.s.p, n->v.u.s.n);
            memcpy(m + n->v.u.s.n, u.p, u.n);
            n->v = mk_str(m, n->v.u.s.n + u.n);
        }
        return n;
    }
    case TK_INT: n = mk(c, E_CONST, t.pos); n->v = mk_int(t.i); return n;
    case TK_FLOAT: n = mk(c, E_CONST, t.pos); n->v = mk_float(t.f); return n;
    case TK_OP:
        if (is_op(&t, "(")) {
            if (skip_op(c, ")")) return mk(c, E_TUPLE, t.pos);
            node *e = p_tuple(c, true);
            expect_op(c, ")");
            return e;
        }
        if (is_op(&t, "[") || is_op(&t, "{")) { /* [a, b, ...] or {k: v, ...}, a trailing comma allowed */
            bool dict = is_op(&t, "{");
            const char *close = dict ? "}" : "]";
            n = mk(c, dict ? E_DICT : E_LIST, t.pos);
            node **tail = &n->a;
            while (!is_op(peek(c), close)) {
                if (n->a) expect_op(c, ",");
                if (is_op(peek(c), close)) break;
                node *item = p_expr(c);
                if (dict) {
                    node *kv = mk(c, E_ARG, item->pos);
                    kv->a = item;
                    expect_op(c, ":");
                    kv->b = p_expr(c);
                    item = kv;
                }
                *tail = item;
                tail = &item->next;
            }
            expect_op(c, close);
            return n;
        }
        /* fallthrough */
    default:
        fail(c, t.pos, EL_E_UNSUPPORTED, "unexpected %s in an expression", tok_desc(&t, b, sizeof b));
    }
}

static node *p_subscript(ctx *c, node *obj) {
    tok t = next(c);
    if (is_op(&t, ".")) {
        tok nm = next(c);
        node *n = mk(c, E_ATTR, nm.pos);
        n->a = obj;
        if (nm.kind == TK_NAME) n->v = mk_str(nm.p, nm.n);
        else if (nm.kind == TK_INT) { n->kind = E_ITEM; n->b = mk(c, E_CONST, nm.pos); n->b->v = mk_int(nm.i); }
        else fail(c, nm.pos, EL_E_UNSUPPORTED, "expected a name after '.'");
        return n;
    }
    /* '[': an index or a slice a:b:c */
    node *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    for (;;) {
        tok *u = peek(c);
        if (is_op(u, ":")) {
            next(c);
            slice = true;
            if (++k > 2) fail(c, u->pos, EL_E_UNSUPPORTED, "a slice has at most 3 parts");
            continue;
        }
        if (is_op(u, "]")) break;
        if (parts[k]) fail(c, u->pos, EL_E_UNSUPPORTED, "expected ']' or ':' in a subscript");
        parts[k] = p_expr(c);
    }
    expect_op(c, "]");
    node *n = mk(c, slice ? E_SLICE : E_ITEM, t.pos);
    n->a = obj;
    if (!slice) {
        if (!parts[0]) fail(c, t.pos, EL_E_UNSUPPORTED, "empty subscript");
        n->b = parts[0];
    } else {
        n->b = parts[0];
        n->c = parts[1];
        n->d = parts[2];
    }
    return n;
}

static node *p_postfix(ctx *c, node *n) {
    for (;;) {
        tok *t = peek(c);
        if (is_op(t, ".") || is_op(t, "[")) n = p_subscript(c, n);
        else if (is_op(t, "(")) {
            next(c);
            node *call = mk(c, E_CALL, n->pos);
            call->a = n;
            call->b = p_args(c);
            n = call;
        } else return n;
    }
}

static node *p_filter_expr(ctx *c, node *n) {
    for (;;) {
        tok *t = peek(c);
        if (is_op(t, "|")) {
            next(c);
            tok nm = next(c);
            if (nm.kind != TK_NAME) fail(c, nm.pos, EL_E_UNSUPPORTED, "expected a filter name after '|'");
            int f = lookup_name(filter_names, sizeof filter_names / sizeof filter_names[0], nm.p, nm.n);
            node *fn = mk(c, E_FILTER, nm.pos);
            fn->fn = f < 0 || f >= F_N_SUPPORTED ? FN_UNKNOWN : (uint16_t)f; /* see check_unknown */
            fn->v = mk_str(nm.p, nm.n);
            fn->a = n;
            if (skip_op(c, "(")) fn->b = p_args(c);
            n = fn;
        } else if (is_name(t, "is")) {
            next(c);
            bool neg = skip_name(c, "not");
            tok nm = next(c);
            int f = -1;
            if (nm.kind == TK_NAME || nm.kind == TK_OP)
                f = lookup_name(test_names, T_COUNT, nm.p, nm.n);
            if (f < 0 && nm.kind != TK_NAME) fail(c, nm.pos, EL_E_UNSUPPORTED, "expected a test name after 'is'");
            node *tn = mk(c, E_TEST, nm.pos);
            tn->fn = f < 0 ? FN_UNKNOWN : (uint16_t)f;
            tn->v = mk_str(nm.p, nm.n);
            tn->op = neg;
            tn->a = n;
            tok *u = peek(c);
            if (is_op(u, "(")) {
                next(c);
                tn->b = p_args(c);
            } else if ((u->kind == TK_NAME || u->kind == TK_STR || u->kind == TK_INT || u->kind == TK_FLOAT ||
                        is_op(u, "[") || is_op(u, "{")) &&
                       !is_name(u, "else") && !is_name(u, "or") && !is_name(u, "and")) {
                if (is_name(u, "is")) fail(c, u->pos, EL_E_UNSUPPORTED, "tests cannot be chained with 'is'");
                /* one argument without parentheses: x is divisibleby 3 */
                node *a = mk(c, E_ARG, u->pos);
                a->a = p_postfix(c, p_primary(c));
                tn->b = a;
            }
            n = tn;
        } else if (is_op(t, "(")) {
            next(c);
            node *call = mk(c, E_CALL, n->pos);
            call->a = n;
            call->b = p_args(c);
            n = call;
        } else {
            return n;
        }
    }
}

static node *p_unary(ctx *c, bool with_filter) {
    tok *t = peek(c);
    node *n;
    enter(c, t->pos);
    if (is_op(t, "-") || is_op(t, "+")) {
        tok op = next(c);
        n = mk(c, is_op(&op, "-") ? E_NEG : E_POS, op.pos);
        n->a = p_unary(c, false);
    } else {
        n = p_primary(c);
    }
    n = p_postfix(c, n);
    if (with_filter) n = p_filter_expr(c, n);
    leave(c);
    return n;
}

/* Binary operators, loosest first. op codes are their first characters, // is '\\', ** '^'. */
static node *p_bin(ctx *c, int level);
static node *p_bin_next(ctx *c, int level) { return level == 3 ? p_unary(c, true) : p_bin(c, level + 1); }
static node *p_bin(ctx *c, int level) {
    static const char *const ops[4][4] = {{"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
    node *l = p_bin_next(c, level);
    for (;;) {
        tok *t = peek(c);
        const char *hit = NULL;
        for (int k = 0; k < 4 && ops[level][k]; k++)
            if (is_op(t, ops[level][k])) hit = ops[level][k];
        if (!hit) return l;
        tok op = next(c);
        node *n = mk(c, E_BIN, op.pos);
        n->op = (uint8_t)(!strcmp(hit, "//") ? '\\' : !strcmp(hit, "**") ? '^' : hit[0]);
        n->a = l;
        n->b = p_bin_next(c, level);
        l = n;
    }
}

/* compare ops: '=' ==, '!' !=, '<', 'l' <=, '>', 'g' >=, 'i' in, 'n' not in */
static node *p_compare(ctx *c) {
    node *first = p_bin(c, 0);
    node *n = NULL, **tail = NULL;
    for (;;) {
        tok *t = peek(c);
        uint8_t op = 0;
        if (is_op(t, "==")) op = '=';
        else if (is_op(t, "!=")) op = '!';
        else if (is_op(t, "<")) op = '<';
        else if (is_op(t, "<=")) op = 'l';
        else if (is_op(t, ">")) op = '>';
        else if (is_op(t, ">=")) op = 'g';
        else if (is_name(t, "in")) op = 'i';
        else if (is_name(t, "not") && is_name(peek_n(c, 1), "in")) op = 'n';
        if (!op) break;
        size_t pos = next(c).pos;
        if (op == 'n') next(c);
        if (!n) {
            n = mk(c, E_CMP, first->pos);
            n->a = first;
            tail = &n->b;
        }
        node *o = mk(c, E_ARG, pos);
        o->op = op;
        o->a = p_bin(c, 0);
        *tail = o;
        tail = &o->next;
    }
    return n ? n : first;
}

static node *p_not(ctx *c) {
    tok *t = peek(c);
    if (is_name(t, "not")) {
        size_t pos = next(c).pos;
        enter(c, pos);
        node *n = mk(c, E_NOT, pos);
        n->a = p_not(c);
        leave(c);
        return n;
    }
    return p_compare(c);
}
/* a and b (or_level false), a or b (true): left-associative chains */
static node *p_logic(ctx *c, bool or_level) {
    node *l = or_level ? p_logic(c, false) : p_not(c);
    while (is_name(peek(c), or_level ? "or" : "and")) {
        node *n = mk(c, or_level ? E_OR : E_AND, next(c).pos);
        n->a = l;
        n->b = or_level ? p_logic(c, false) : p_not(c);
        l = n;
    }
    return l;
}
static node *p_or(ctx *c) { return p_logic(c, true); }
/* a if cond [else b], nesting to the right */
static node *p_expr(ctx *c) {
    enter(c, peek(c)->pos);
    node *l = p_or(c);
    while (is_name(peek(c), "if")) {
        node *n = mk(c, E_COND, next(c).pos);
        n->b = l;
        n->a = p_or(c);
        if (skip_name(c, "else")) n->c = p_expr(c);
        l = n;
    }
    leave(c);
    return l;
}
/* expr, expr, ... (a tuple when there is a comma) */
static node *p_tuple(ctx *c, bool with_cond) {
    size_t pos = peek(c)->pos;
    node *first = with_cond ? p_expr(c) : p_or(c);
    if (!is_op(peek(c), ",")) return first;
    node *n = mk(c, E_TUPLE, pos);
    n->a = first;
    node **tail = &first->next;
    while (skip_op(c, ",")) {
        tok *t = peek(c);
        if (t->kind == TK_VEND || t->kind == TK_BEND || is_op(t, ")") || is_op(t, "]") || is_name(t, "if") || is_name(t, "in"))
            break;
        *tail = with_cond ? p_expr(c) : p_or(c);
        tail = &(*tail)->next;
    }
    return n;
}

/* ---- statements ---- */

static void expect_bend(ctx *c) {
    tok *t = peek(c);
    if (t->kind != TK_BEND) {
        char b[64];
        fail(c, t->pos, EL_E_UNSUPPORTED, "expected '%%}', found %s", tok_desc(t, b, sizeof b));
    }
    next(c);
}

/* Statements until a {% name %} from ends (a NULL-terminated list); *end_tok gets it. */
static node *p_body(ctx *c, const char *const *ends, tok *end_tok);

static node *p_target(ctx *c, bool allow_attr) {
    tok t = next(c);
    if (t.kind != TK_NAME) fail(c, t.pos, EL_E_UNSUPPORTED, "expected a variable name");
    node *n = mk(c, E_NAME, t.pos);
    n->v = mk_str(t.p, t.n);
    if (allow_attr && skip_op(c, ".")) {
        tok a = next(c);
        if (a.kind != TK_NAME) fail(c, a.pos, EL_E_UNSUPPORTED, "expected an attribute name");
        node *at = mk(c, E_ATTR, a.pos);
        at->a = n;
        at->v = mk_str(a.p, a.n);
        return at;
    }
    return n;
}

static node *p_statement(ctx *c, tok *kw) {
    static const char *const if_ends[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    static const char *const for_ends[] = {"else", "endfor", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    static const char *const endgen[] = {"endgeneration", NULL};
    size_t pos = kw->pos;
    if (is_name(kw, "if") || is_name(kw, "elif")) {
        node *n = mk(c, S_IF, pos);
        n->a = p_tuple(c, true);
        expect_bend(c);
        tok e;
        n->b = p_body(c, if_ends, &e);
        if (is_name(&e, "elif")) {
            node *b = mk(c, S_BODY, e.pos);
            b->a = p_statement(c, &e);
            n->c = b;
        } else if (is_name(&e, "else")) {
            expect_bend(c);
            n->c = p_body(c, endif, &e);
            expect_bend(c);
        } else {
            expect_bend(c);
        }
        return n;
    }
    if (is_name(kw, "for")) {
        node *n = mk(c, S_FOR, pos);
        node *t1 = p_target(c, false);
        if (skip_op(c, ",")) t1->next = p_target(c, false);
        if (t1->next && is_op(peek(c), ","))
            fail(c, peek(c)->pos, EL_E_UNSUPPORTED, "for loops unpack at most two names");
        n->a = t1;
        if (!skip_name(c, "in")) fail(c, peek(c)->pos, EL_E_UNSUPPORTED, "expected 'in' in a for loop");
        n->b = p_tuple(c, false);
        if (skip_name(c, "if")) n->e = p_expr(c);
        if (is_name(peek(c), "recursive"))
            fail(c, peek(c)->pos, EL_E_UNSUPPORTED, "recursive for loops are not supported");
        expect_bend(c);
        tok e;
        c->loops++;
        n->c = p_body(c, for_ends, &e);
        c->loops--;
        expect_bend(c);
        if (is_name(&e, "else")) {
            n->d = p_body(c, endfor, &e);
            expect_bend(c);
        }
        return n;
    }
    if (is_name(kw, "set")) {
        node *n = mk(c, S_SET, pos);
        node *t = p_target(c, true);
        if (is_op(peek(c), ",")) {
            if (t->kind != E_NAME) fail(c, t->pos, EL_E_UNSUPPORTED, "cannot unpack into an attribute");
            node **tail = &t->next;
            while (skip_op(c, ",")) {
                *tail = p_target(c, false);
                tail = &(*tail)->next;
            }
            n->op = 1;
        }
        n->a = t;
        if (!skip_op(c, "=")) { /* {% set x %}...{% endset %}: the body's output */
            static const char *const endset[] = {"endset", NULL};
            if (n->op || t->kind != E_NAME || peek(c)->kind != TK_BEND)
                fail(c, peek(c)->pos, EL_E_UNSUPPORTED, "expected '=' or '%%}' after the name in a set tag");
            expect_bend(c);
            tok e;
            n->c = p_body(c, endset, &e);
            expect_bend(c);
            return n;
        }
        n->b = p_tuple(c, true);
        expect_bend(c);
        return n;
    }
    if (is_name(kw, "macro")) { /* {% macro name(a, b=default) %}...{% endmacro %} */
        static const char *const endmacro[] = {"endmacro", NULL};
        tok nm = next(c);
        if (nm.kind != TK_NAME) fail(c, nm.pos, EL_E_UNSUPPORTED, "expected a macro name");
        node *n = mk(c, S_MACRO, pos);
        n->v = mk_str(nm.p, nm.n);
        expect_op(c, "(");
        node **tail = &n->a;
        while (!is_op(peek(c), ")")) {
            if (n->a) expect_op(c, ",");
            if (is_op(peek(c), ")")) break;
            node *prm = p_target(c, false);
            if (skip_op(c, "=")) prm->b = p_expr(c);
            *tail = prm;
            tail = &prm->next;
        }
        expect_op(c, ")");
        expect_bend(c);
        int loops = c->loops; /* break/continue cannot leave a macro */
        c->loops = 0;
        tok e;
        n->c = p_body(c, endmacro, &e);
        c->loops = loops;
        expect_bend(c);
        return n;
    }
    if (is_name(kw, "break") || is_name(kw, "continue")) {
        if (!c->loops) fail(c, pos, EL_E_UNSUPPORTED, "'%.*s' outside a for loop", (int)kw->n, kw->p);
        node *n = mk(c, is_name(kw, "break") ? S_BREAK : S_CONTINUE, pos);
        expect_bend(c);
        return n;
    }
    if (is_name(kw, "generation")) { /* transformers' assistant-mask marker: renders its body */
        expect_bend(c);
        node *n = mk(c, S_BODY, pos);
        tok e;
        n->a = p_body(c, endgen, &e);
        expect_bend(c);
        return n;
    }
    fail(c, pos, EL_E_UNSUPPORTED, "tag '%.*s' is not supported", (int)(kw->n > 40 ? 40 : kw->n), kw->p);
}

static node *p_body(ctx *c, const char *const *ends, tok *end_tok) {
    node *head = NULL, **tail = &head;
    enter(c, peek(c)->pos);
    for (;;) {
        tok t = next(c);
        node *n = NULL;
        if (t.kind == TK_EOF) {
            if (ends) {
                size_t k = 0;
                while (ends[k + 1]) k++;
                fail(c, t.pos, EL_E_UNSUPPORTED, "unexpected end of template: '%s' is missing", ends[k]);
            }
            break;
        } else if (t.kind == TK_DATA) {
            n = mk(c, S_DATA, t.pos);
            n->v = mk_str(t.p, t.n);
        } else if (t.kind == TK_VBEGIN) {
            n = mk(c, S_OUT, t.pos);
            n->a = p_tuple(c, true);
            tok *e = peek(c);
            if (e->kind != TK_VEND) {
                char b[64];
                fail(c, e->pos, EL_E_UNSUPPORTED, "expected '}}', found %s", tok_desc(e, b, sizeof b));
            }
            next(c);
        } else if (t.kind == TK_BBEGIN) {
            tok kw = next(c);
            if (kw.kind != TK_NAME) fail(c, kw.pos, EL_E_UNSUPPORTED, "expected a tag name after '{%%'");
            bool is_end = false;
            for (size_t i = 0; ends && ends[i]; i++)
                if (is_name(&kw, ends[i])) is_end = true;
            if (is_end) {
                *end_tok = kw;
                leave(c);
                return head;
            }
            n = p_statement(c, &kw);
        } else {
            char b[64];
            fail(c, t.pos, EL_E_UNSUPPORTED, "unexpected %s", tok_desc(&t, b, sizeof b));
        }
        *tail = n;
        tail = &n->next;
    }
    leave(c);
    return head;
}

/* ---- scopes ------------------------------------------------------------------------------ */

static scope *scope_new(ctx *c, scope *parent) {
    scope *s = alloc(c, sizeof *s);
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}
static void scope_set(ctx *c, scope *s, const char *name, size_t n, val v) {
    for (size_t i = 0; i < s->n; i++)
        if (s->nlen[i] == n && !memcmp(s->name[i], name, n)) {
            s->v[i] = v;
            return;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **nm = alloc(c, mul_size(c, cap, sizeof *nm));
        size_t *nl = alloc(c, cap * sizeof *nl);
        val *vv = alloc(c, cap * sizeof *vv);
        if (s->n) {
            memcpy(nm, s->name, s->n * sizeof *nm);
            memcpy(nl, s->nlen, s->n * sizeof *nl);
            memcpy(vv, s->v, s->n * sizeof *vv);
        }
        s->name = nm;
        s->nlen = nl;
        s->v = vv;
        s->cap = cap;
    }
    s->name[s->n] = name;
    s->nlen[s->n] = n;
    s->v[s->n++] = v;
}

/* Built-in functions (globals of transformers' environment). */
static const char *const func_names[] = {"range", "raise_exception", "strftime_now", "namespace", "dict"};
enum { FN_RANGE, FN_RAISE, FN_STRFTIME, FN_NAMESPACE, FN_DICT, FN_COUNT };

static val lookup(ctx *c, const scope *s, const char *name, size_t n) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (s->nlen[i] == n && !memcmp(s->name[i], name, n)) return s->v[i];
    int f = lookup_name(func_names, FN_COUNT, name, n);
    if (f >= 0) {
        val v = {.k = V_FUNC, .fn = (uint16_t)f};
        return v;
    }
    (void)c;
    return mk_undef(name, n);
}

__attribute__((noreturn)) static void fail_undef(ctx *c, size_t pos, const val *v, const char *what) {
    if (v->u.s.n)
        fail(c, pos, EL_E_INVALID, "'%.*s' is undefined%s", (int)(v->u.s.n > 60 ? 60 : v->u.s.n), v->u.s.p, what);
    fail(c, pos, EL_E_INVALID, "an undefined value%s", what);
}

/* ---- value semantics ------------------------------------------------------------------ */

static bool truthy(const val *v) {
    switch (v->k) {
    case V_UNDEF: case V_NONE: return false;
    case V_BOOL: case V_INT: return v->u.i != 0;
    case V_FLOAT: return v->u.f != 0.0;
    case V_STR: return v->u.s.n > 0;
    case V_LIST: return v->u.l->n > 0;
    case V_DICT: return v->u.d->n > 0;
    case V_RANGE: return v->u.r->n > 0;
    default: return true;
    }
}
static bool is_num(const val *v) { return v->k == V_INT || v->k == V_FLOAT || v->k == V_BOOL; }
static double num_f(const val *v) { return v->k == V_FLOAT ? v->u.f : (double)v->u.i; }

static bool v_eq(ctx *c, const val *a, const val *b, int depth) {
    if (depth > EL_CHAT_DEPTH_MAX) fail(c, SIZE_MAX, EL_E_INVALID, "comparing values nested deeper than %d levels", EL_CHAT_DEPTH_MAX);
    if (is_num(a) && is_num(b)) {
        if (a->k != V_FLOAT && b->k != V_FLOAT) return a->u.i == b->u.i;
        return num_f(a) == num_f(b);
    }
    if (a->k != b->k) return false;
    switch (a->k) {
    case V_UNDEF: case V_NONE: return true;
    case V_STR: return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
    case V_LIST:
        if (a->tuple != b->tuple || a->u.l->n != b->u.l->n) return false;
        for (size_t i = 0; i < a->u.l->n; i++) {
            step(c, SIZE_MAX);
            if (!v_eq(c, &a->u.l->v[i], &b->u.l->v[i], depth + 1)) return false;
        }
        return true;
    case V_DICT:
        if (a->u.d->n != b->u.d->n) return false;
        for (size_t i = 0; i < a->u.d->n; i++) {
            val *o = dict_find(c, b->u.d, &a->u.d->key[i]);
            if (!o || !v_eq(c, &a->u.d->v[i], o, depth + 1)) return false;
        }
        return true;
    case V_RANGE: /* Python: equal as sequences */
        return a->u.r->n == b->u.r->n && (a->u.r->n == 0 || (a->u.r->start == b->u.r->start &&
                                                            (a->u.r->n == 1 || a->u.r->step == b->u.r->step)));
    default: return a->u.d == b->u.d && a->fn == b->fn;
    }
}

/* <0, 0, >0 for the orderable pairs (numbers, strings, lists of those); TypeError else. */
static int v_cmp(ctx *c, const val *a, const val *b, size_t pos, int depth) {
    if (depth > EL_CHAT_DEPTH_MAX) fail(c, pos, EL_E_INVALID, "comparing values nested too deep");
    if (is_num(a) && is_num(b)) {
        if (a->k != V_FLOAT && b->k != V_FLOAT) return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
        double x = num_f(a), y = num_f(b);
        return x < y ? -1 : x > y;
    }
    if (a->k == V_STR && b->k == V_STR) { /* UTF-8 byte order is code point order */
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int r = memcmp(a->u.s.p, b->u.s.p, n);
        if (r) return r;
        return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
    }
    if (a->k == V_LIST && b->k == V_LIST && a->tuple == b->tuple) {
        size_t n = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (v_eq(c, &a->u.l->v[i], &b->u.l->v[i], depth + 1)) continue;
            return v_cmp(c, &a->u.l->v[i], &b->u.l->v[i], pos, depth + 1);
        }
        return a->u.l->n < b->u.l->n ? -1 : a->u.l->n > b->u.l->n;
    }
    fail(c, pos, EL_E_INVALID, "'<' not supported between instances of '%s' and '%s'", type_name(a), type_name(b));
}

/* Sequence access for iteration: lists, tuples, ranges; strings by character; dicts by key. */
static size_t seq_len(const val *v) {
    switch (v->k) {
    case V_LIST: return v->u.l->n;
    case V_DICT: case V_NS: return v->u.d->n;
    case V_RANGE: return (size_t)v->u.r->n;
    case V_STR: return u8_len(v->u.s.p, v->u.s.n);
    default: return 0;
    }
}

/* Item i of a list or range (i in range). */
static val seq_at(const val *seq, int64_t i) {
    return seq->k == V_RANGE ? mk_int(seq->u.r->start + i * seq->u.r->step) : seq->u.l->v[i];
}

/* The items of an iterable as a list value (strings split into characters). */
static val iter_items(ctx *c, const val *v, size_t pos) {
    switch (v->k) {
    case V_LIST: return *v;
    case V_UNDEF: return mk_list(c, 0, false); /* jinja's Undefined iterates as empty */
    case V_DICT: {
        val l = mk_list(c, v->u.d->n, false);
        memcpy(l.u.l->v, v->u.d->key, v->u.d->n * sizeof(val));
        return l;
    }
    case V_RANGE: {
        val l = mk_list(c, (size_t)v->u.r->n, false);
        for (int64_t i = 0; i < v->u.r->n; i++) l.u.l->v[i] = mk_int(v->u.r->start + i * v->u.r->step);
        return l;
    }
    case V_STR: {
        size_t n = u8_len(v->u.s.p, v->u.s.n);
        val l = mk_list(c, n, false);
        for (size_t i = 0, b = 0; i < n; i++) {
            size_t e = u8_next(v->u.s.p, v->u.s.n, b);
            l.u.l->v[i] = mk_str(v->u.s.p + b, e - b);
            b = e;
        }
        return l;
    }
    default:
        fail(c, pos, EL_E_INVALID, "'%s' object is not iterable", type_name(v));
    }
}

static val concat(ctx *c, const val *a, const val *b) {
    size_t n = a->u.s.n + b->u.s.n;
    if (n < a->u.s.n) fail(c, SIZE_MAX, EL_E_NOFIT, "string size overflow");
    char *p = alloc(c, n);
    memcpy(p, a->u.s.p, a->u.s.n);
    memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
    return mk_str(p, n);
}

static val binop(ctx *c, int op, const val *a, const val *b, size_t pos) {
    if (op == '~') {
        val x = to_str(c, a), y = to_str(c, b);
        return concat(c, &x, &y);
    }
    if (a->k == V_UNDEF) fail_undef(c, pos, a, "");
    if (b->k == V_UNDEF) fail_undef(c, pos, b, "");
    if (is_num(a) && is_num(b)) {
        bool fl = a->k == V_FLOAT || b->k == V_FLOAT;
        int64_t x = a->u.i, y = b->u.i, r;
        double fx = num_f(a), fy = num_f(b);
        switch (op) {
        case '+':
            if (fl) return mk_float(fx + fy);
            if (__builtin_add_overflow(x, y, &r)) break;
            return mk_int(r);
        case '-':
            if (fl) return mk_float(fx - fy);
            if (__builtin_sub_overflow(x, y, &r)) break;
            return mk_int(r);
        case '*':
            if (fl) return mk_float(fx * fy);
            if (__builtin_mul_overflow(x, y, &r)) break;
            return mk_int(r);
        case '/':
            if (fy == 0.0) fail(c, pos, EL_E_INVALID, "division by zero");
            return mk_float(fx / fy);
        case '\\': case '%':
            if (fl) {
                if (fy == 0.0) fail(c, pos, EL_E_INVALID, "float modulo or floor division by zero");
                /* CPython's float_divmod */
                double m = fmod(fx, fy), dv = (fx - m) / fy;
                if (m != 0.0 && ((fy < 0) != (m < 0))) {
                    m += fy;
                    dv -= 1.0;
                }
                double fd = floor(dv);
                if (dv - fd > 0.5) fd += 1.0;
                return op == '%' ? mk_float(m) : mk_float(fd);
            }
            if (y == 0) fail(c, pos, EL_E_INVALID, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) break;
            {
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) { m += y; q -= 1; }
                return mk_int(op == '%' ? m : q);
            }
        case '^':
            if (fl || y < 0) return mk_float(pow(fx, fy));
            r = 1;
            for (int64_t k = 0; k < y; k++) {
                if (__builtin_mul_overflow(r, x, &r)) fail(c, pos, EL_E_INVALID, "integer overflow in '**'");
                if (r == 0 || r == 1) break;
                if (k > 64 && (r == -1)) { r = (y % 2) ? -1 : 1; break; }
            }
            return mk_int(r);
        }
        fail(c, pos, EL_E_INVALID, "integer overflow (values beyond 64 bits are not supported)");
    }
    if (op == '+' && a->k == V_STR && b->k == V_STR) return concat(c, a, b);
    if (op == '+' && a->k == V_LIST && b->k == V_LIST && a->tuple == b->tuple) {
        val l = mk_list(c, a->u.l->n + b->u.l->n, a->tuple);
        memcpy(l.u.l->v, a->u.l->v, a->u.l->n * sizeof(val));
        memcpy(l.u.l->v + a->u.l->n, b->u.l->v, b->u.l->n * sizeof(val));
        return l;
    }
    if (op == '*' && ((a->k == V_STR || a->k == V_LIST) && (b->k == V_INT || b->k == V_BOOL))) {
        int64_t k = b->u.i < 0 ? 0 : b->u.i;
        if (a->k == V_STR) {
            size_t n = mul_size(c, a->u.s.n, (size_t)k);
            char *p = alloc(c, n);
            for (int64_t i = 0; i < k; i++) memcpy(p + (size_t)i * a->u.s.n, a->u.s.p, a->u.s.n);
            return mk_str(p, n);
        }
        val l = mk_list(c, mul_size(c, a->u.l->n, (size_t)k), a->tuple);
        for (int64_t i = 0; i < k; i++) memcpy(l.u.l->v + (size_t)i * a->u.l->n, a->u.l->v, a->u.l->n * sizeof(val));
        return l;
    }
    if (op == '*' && (b->k == V_STR || b->k == V_LIST) && (a->k == V_INT || a->k == V_BOOL)) return binop(c, op, b, a, pos);
    char ops[3] = {(char)op, 0, 0};
    if (op == '\\') { ops[0] = '/'; ops[1] = '/'; }
    if (op == '^') { ops[0] = '*'; ops[1] = '*'; }
    if (op == '%' && a->k == V_STR)
        fail(c, pos, EL_E_UNSUPPORTED, "printf-style string formatting ('%%') is not supported");
    fail(c, pos, EL_E_INVALID, "unsupported operand types for %s: '%s' and '%s'", ops, type_name(a), type_name(b));
}

static bool contains(ctx *c, const val *hay, const val *x, size_t pos) {
    switch (hay->k) {
    case V_STR:
        if (x->k != V_STR) fail(c, pos, EL_E_INVALID, "'in <string>' requires string as left operand, not %s", type_name(x));
        if (x->u.s.n == 0) return true;
        if (x->u.s.n > hay->u.s.n) return false;
        for (size_t i = 0; i + x->u.s.n <= hay->u.s.n; i++)
            if (!memcmp(hay->u.s.p + i, x->u.s.p, x->u.s.n)) return true;
        return false;
    case V_LIST:
        for (size_t i = 0; i < hay->u.l->n; i++) {
            step(c, pos);
            if (v_eq(c, &hay->u.l->v[i], x, 0)) return true;
        }
        return false;
    case V_DICT: return dict_find(c, hay->u.d, x) != NULL;
    case V_RANGE: {
        if (!is_num(x)) return false;
        double f = num_f(x);
        for (int64_t i = 0; i < hay->u.r->n; i++)
            if ((double)(hay->u.r->start + i * hay->u.r->step) == f) return true;
        return false;
    }
    case V_UNDEF: return false; /* jinja2's Undefined iterates as empty */
    default: fail(c, pos, EL_E_INVALID, "argument of type '%s' is not iterable", type_name(hay));
    }
}

/* ---- attribute and item access (the sandbox boundary) ---------------------------------- */

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper", "lower", "title",
    "capitalize", "replace", "find", "count", "join", "splitlines", "rsplit", "rfind",
    "isdigit", "isspace", "isalpha", "isalnum", "islower", "isupper", "format",
};
enum {
    M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_STARTSWITH, M_ENDSWITH, M_UPPER, M_LOWER, M_TITLE,
    M_CAPITALIZE, M_REPLACE, M_FIND, M_COUNT, M_JOIN, M_SPLITLINES, M_RSPLIT, M_RFIND,
    M_ISDIGIT, M_ISSPACE, M_ISALPHA, M_ISALNUM, M_ISLOWER, M_ISUPPER, M_FORMAT, M_N_STR,
    M_ITEMS = 100, M_KEYS, M_VALUES, M_GET, M_CYCLE, M_LCOUNT, M_LINDEX
};

static val method(ctx *c, const val *self, int m) {
    val *s = alloc(c, sizeof *s);
    *s = *self;
    val v = {.k = V_METHOD, .fn = (uint16_t)m};
    v.u.self = s;
    return v;
}

/* obj.name: dict methods win over keys (as Python getattr does first); names starting with
 * '_' are never reached (jinja2's sandbox gives an undefined that renders empty). */
static val get_attr(ctx *c, const val *obj, const char *name, size_t n, size_t pos) {
    if (obj->k == V_UNDEF) fail_undef(c, pos, obj, " (attribute access)");
    if (n > 0 && name[0] == '_') return mk_undef(name, n);
    switch (obj->k) {
    case V_DICT: {
        if (s_eq(name, n, "items")) return method(c, obj, M_ITEMS);
        if (s_eq(name, n, "keys")) return method(c, obj, M_KEYS);
        if (s_eq(name, n, "values")) return method(c, obj, M_VALUES);
        if (s_eq(name, n, "get")) return method(c, obj, M_GET);
        val *v = dict_find_s(obj->u.d, name, n);
        return v ? *v : mk_undef(name, n);
    }
    case V_NS: {
        val *v = dict_find_s(obj->u.d, name, n);
        return v ? *v : mk_undef(name, n);
    }
    case V_STR: {
        int m = lookup_name(str_methods, M_N_STR, name, n);
        return m >= 0 ? method(c, obj, m) : mk_undef(name, n);
    }
    case V_LIST: case V_RANGE: /* the sandbox's safe list methods */
        if (s_eq(name, n, "count")) return method(c, obj, M_LCOUNT);
        if (s_eq(name, n, "index")) return method(c, obj, M_LINDEX);
        return mk_undef(name, n);
    case V_LOOP: {
        const loopst *l = obj->u.lp;
        if (s_eq(name, n, "index")) return mk_int(l->i + 1);
        if (s_eq(name, n, "index0")) return mk_int(l->i);
        if (s_eq(name, n, "revindex")) return mk_int(l->n - l->i);
        if (s_eq(name, n, "revindex0")) return mk_int(l->n - l->i - 1);
        if (s_eq(name, n, "first")) return mk_bool(l->i == 0);
        if (s_eq(name, n, "last")) return mk_bool(l->i == l->n - 1);
        if (s_eq(name, n, "length")) return mk_int(l->n);
        if (s_eq(name, n, "previtem")) return l->i > 0 ? seq_at(&l->seq, l->i - 1) : mk_undef(name, n);
        if (s_eq(name, n, "nextitem")) return l->i + 1 < l->n ? seq_at(&l->seq, l->i + 1) : mk_undef(name, n);
        /* depth counts recursive loop levels, which are not supported: always the first */
        if (s_eq(name, n, "depth")) return mk_int(1);
        if (s_eq(name, n, "depth0")) return mk_int(0);
        if (s_eq(name, n, "cycle")) return method(c, obj, M_CYCLE);
        return mk_undef(name, n);
    }
    default: return mk_undef(name, n);
    }
}

static bool as_index(const val *k, int64_t *i) {
    if (k->k != V_INT && k->k != V_BOOL) return false;
    *i = k->u.i;
    return true;
}

/* obj[key]: items first, then attributes (jinja2's getitem). */
static val get_item(ctx *c, const val *obj, const val *key, size_t pos) {
    if (obj->k == V_UNDEF) fail_undef(c, pos, obj, " (subscript)");
    int64_t i;
    switch (obj->k) {
    case V_DICT: {
        val *v = dict_find(c, obj->u.d, key);
        if (v) return *v;
        break;
    }
    case V_LIST: case V_RANGE:
        if (as_index(key, &i)) {
            int64_t n = (int64_t)seq_len(obj);
            if (i < 0) i += n;
            if (i < 0 || i >= n) return mk_undef(NULL, 0);
            return obj->k == V_LIST ? obj->u.l->v[i] : mk_int(obj->u.r->start + i * obj->u.r->step);
        }
        break;
    case V_STR:
        if (as_index(key, &i)) {
            int64_t n = (int64_t)u8_len(obj->u.s.p, obj->u.s.n);
            if (i < 0) i += n;
            if (i < 0 || i >= n) return mk_undef(NULL, 0);
            size_t b = u8_off(obj->u.s.p, obj->u.s.n, (size_t)i);
            return mk_str(obj->u.s.p + b, u8_next(obj->u.s.p, obj->u.s.n, b) - b);
        }
        break;
    default: break;
    }
    if (key->k == V_STR) return get_attr(c, obj, key->u.s.p, key->u.s.n, pos);
    return mk_undef(NULL, 0);
}

/* Python slice indices for length n. */
static void slice_ix(ctx *c, const val *a, const val *b, const val *s, int64_t n, int64_t *start,
                     int64_t *stop, int64_t *stepv, size_t pos) {
    int64_t st = 1;
    if (s && s->k != V_NONE && s->k != V_UNDEF) {
        if (!as_index(s, &st)) fail(c, pos, EL_E_INVALID, "slice indices must be integers or None");
        if (st == 0) fail(c, pos, EL_E_INVALID, "slice step cannot be zero");
    }
    int64_t lo = st > 0 ? 0 : -1, hi = st > 0 ? n : -1;
    int64_t x;
    if (a && a->k != V_NONE && a->k != V_UNDEF) {
        if (!as_index(a, &x)) fail(c, pos, EL_E_INVALID, "slice indices must be integers or None");
        if (x < 0) { x += n; if (x < 0) x = st > 0 ? 0 : -1; }
        else if (x >= n) x = st > 0 ? n : n - 1;
        lo = x;
    } else lo = st > 0 ? 0 : n - 1;
    if (b && b->k != V_NONE && b->k != V_UNDEF) {
        if (!as_index(b, &x)) fail(c, pos, EL_E_INVALID, "slice indices must be integers or None");
        if (x < 0) { x += n; if (x < 0) x = st > 0 ? 0 : -1; }
        else if (x >= n) x = st > 0 ? n : n - 1;
        hi = x;
    }
    *start = lo;
    *stop = hi;
    *stepv = st;
}

static val slice(ctx *c, const val *obj, const val *a, const val *b, const val *s, size_t pos) {
    if (obj->k == V_UNDEF) fail_undef(c, pos, obj, " (slice)");
    if (obj->k != V_LIST && obj->k != V_STR && obj->k != V_RANGE) return mk_undef(NULL, 0); /* as jinja2's getitem */
    val items = obj->k == V_STR ? iter_items(c, obj, pos) : obj->k == V_RANGE ? iter_items(c, obj, pos) : *obj;
    int64_t n = (int64_t)items.u.l->n, lo, hi, st;
    slice_ix(c, a, b, s, n, &lo, &hi, &st, pos);
    size_t cnt = 0;
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) cnt++;
    if (obj->k == V_STR) {
        sink o = sb_begin(c);
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st)
            put(c, &o, items.u.l->v[i].u.s.p, items.u.l->v[i].u.s.n);
        return sb_end(c, &o);
    }
    val l = mk_list(c, cnt, obj->tuple);
    size_t k = 0;
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) l.u.l->v[k++] = items.u.l->v[i];
    return l;
}

/* ---- calls: arguments --------------------------------------------------------------- */

#define ARGS_MAX 8
typedef struct args {
    size_t n;              /* positional */
    val v[ARGS_MAX];
    size_t nk;             /* keyword */
    const char *kn[ARGS_MAX];
    size_t kl[ARGS_MAX];
    val kv[ARGS_MAX];
} args;

static val eval(ctx *c, scope *s, const node *n);

static void eval_args(ctx *c, scope *s, const node *a, args *out, size_t pos) {
    memset(out, 0, sizeof *out);
    for (; a; a = a->next) {
        val v = eval(c, s, a->a);
        if (a->v.k == V_STR) {
            if (out->nk == ARGS_MAX) fail(c, pos, EL_E_UNSUPPORTED, "more than %d keyword arguments", ARGS_MAX);
            out->kn[out->nk] = a->v.u.s.p;
            out->kl[out->nk] = a->v.u.s.n;
            out->kv[out->nk++] = v;
        } else {
            if (out->n == ARGS_MAX) fail(c, pos, EL_E_UNSUPPORTED, "more than %d arguments", ARGS_MAX);
            out->v[out->n++] = v;
        }
    }
}

/* Argument i by position or by name (NULL if absent); more positional ones than names fail. */
static const val *arg(ctx *c, const args *a, size_t i, const char *name, size_t pos) {
    const val *r = i < a->n ? &a->v[i] : NULL;
    for (size_t k = 0; k < a->nk; k++)
        if (s_eq(a->kn[k], a->kl[k], name)) {
            if (r) fail(c, pos, EL_E_INVALID, "got multiple values for argument '%s'", name);
            r = &a->kv[k];
        }
    return r;
}
static void args_max(ctx *c, const args *a, size_t npos, const char *const *names, const char *fn, size_t pos) {
    if (a->n > npos) fail(c, pos, EL_E_INVALID, "%s takes at most %zu positional arguments (%zu given)", fn, npos, a->n);
    for (size_t k = 0; k < a->nk; k++) {
        bool ok = false;
        for (size_t i = 0; names && names[i]; i++)
            if (s_eq(a->kn[k], a->kl[k], names[i])) ok = true;
        if (!ok) fail(c, pos, EL_E_INVALID, "%s got an unexpected keyword argument '%.*s'", fn, (int)a->kl[k], a->kn[k]);
    }
}
static const char *need_str(ctx *c, const val *v, size_t *n, const char *what, size_t pos) {
    if (v->k != V_STR) fail(c, pos, EL_E_INVALID, "%s must be a string, not %s", what, type_name(v));
    *n = v->u.s.n;
    return v->u.s.p;
}

/* ---- string functions ------------------------------------------------------------------ */

/* strip with Python semantics: chars NULL = whitespace, else any of chars' characters. */
static val str_strip(const val *s, const char *chars, size_t cn, bool left, bool right) {
    const char *p = s->u.s.p;
    size_t a = 0, b = s->u.s.n;
    for (int side = 0; side < 2; side++) {
        if ((side == 0 && !left) || (side == 1 && !right)) continue;
        for (;;) {
            if (a >= b) break;
            size_t at = side == 0 ? a : u8_prev(p, b);
            size_t end = side == 0 ? u8_next(p, b, a) : b;
            uint32_t cp;
            el_uni_decode(p + at, end - at, &cp);
            bool hit;
            if (!chars) hit = py_space(cp);
            else {
                hit = false;
                for (size_t k = 0; k < cn;) {
                    size_t e = u8_next(chars, cn, k);
                    if (e - k == end - at && !memcmp(chars + k, p + at, e - k)) hit = true;
                    k = e;
                }
            }
            if (!hit) break;
            if (side == 0) a = end;
            else b = at;
        }
    }
    return mk_str(p + a, b - a);
}

/* Python's case mapping of one code point (tokenizer/chat_case_tables.c): which = 0 upper,
 * 1 lower, 2 title; writes up to 3 code points to out, returns how many. */
static size_t case_map(uint32_t cp, int which, uint32_t out[3]) {
    size_t lo_ = 0, hi = el_chat_case_special_count;
    while (lo_ < hi) {
        size_t mid = (lo_ + hi) / 2;
        const el_chat_case_entry *e = &el_chat_case_special[mid];
        if (e->cp == cp) {
            const uint32_t *m = which == 0 ? e->up : which == 1 ? e->low : e->title;
            size_t k = which == 0 ? e->nu : which == 1 ? e->nl : e->nt;
            memcpy(out, m, k * sizeof *out);
            return k;
        }
        if (e->cp < cp) lo_ = mid + 1;
        else hi = mid;
    }
    lo_ = 0;
    hi = el_chat_case_run_count;
    while (lo_ < hi) { /* the last run starting at or before cp */
        size_t mid = (lo_ + hi) / 2;
        if (el_chat_case_runs[mid].start <= cp) lo_ = mid + 1;
        else hi = mid;
    }
    out[0] = cp;
    if (lo_ > 0) {
        const el_chat_case_run *r = &el_chat_case_runs[lo_ - 1];
        uint32_t k = cp - r->start;
        if (k < r->n) out[0] = (uint32_t)((int64_t)cp + (k % 2 ? r->odd[which] : r->even[which]));
    }
    return 1;
}

/* EL_CHAT_* properties of a code point. */
static unsigned case_flags(uint32_t cp) {
    size_t lo_ = 0, hi = el_chat_case_flag_count;
    while (lo_ < hi) {
        size_t mid = (lo_ + hi) / 2;
        if (el_chat_case_flag_start[mid] <= cp) lo_ = mid + 1;
        else hi = mid;
    }
    return lo_ > 0 ? el_chat_case_flag_bits[lo_ - 1] : 0;
}

/* Python's final-sigma rule for the capital sigma at byte i of p[lo, hi): lower-cased to
 * final ς when a cased character precedes it and none follows (case-ignorable ones skipped). */
static bool final_sigma(const char *p, size_t lo, size_t hi, size_t i) {
    uint32_t cp = 0;
    size_t j = i;
    bool before = false;
    while (j > lo) {
        j = u8_prev(p, j);
        el_uni_decode(p + j, hi - j, &cp);
        unsigned f = case_flags(cp);
        if (f & EL_CHAT_IGNORABLE) continue;
        before = (f & EL_CHAT_CASED) != 0;
        break;
    }
    if (!before) return false;
    for (j = u8_next(p, hi, i); j < hi; j = u8_next(p, hi, j)) {
        el_uni_decode(p + j, hi - j, &cp);
        unsigned f = case_flags(cp);
        if (f & EL_CHAT_IGNORABLE) continue;
        return (f & EL_CHAT_CASED) == 0;
    }
    return true;
}

/* jinja2's title filter splits words at whitespace and -({[< (its _word_beginning_split_re). */
static bool title_sep(uint32_t cp) { return py_space(cp) || (cp && cp < 0x80 && strchr("-({[<", (int)cp)); }

/* Python's str.upper ('u'), lower ('l'), title ('t'), capitalize ('c'), and jinja2's title
 * filter ('T': each word's first character upper-cased, the rest lower-cased as its own
 * string; words end at whitespace and -({[<). Full mappings (ß -> SS) and lower-casing's
 * final-sigma rule. */
static val str_case(ctx *c, const val *s, int mode) {
    sink o = sb_begin(c);
    bool prev_cased = false, word_start = true;
    const char *p = s->u.s.p;
    size_t lo = 0, hi = s->u.s.n; /* the string lower-casing sees (for final sigma) */
    for (size_t i = 0; i < s->u.s.n;) {
        size_t e = u8_next(p, s->u.s.n, i);
        uint32_t cp, m[3];
        el_uni_decode(p + i, e - i, &cp);
        int which;
        if (mode == 'T') {
            bool sep = title_sep(cp);
            which = sep ? 3 : word_start ? 0 : 1;
            if (!sep && word_start) { /* jinja2 lower-cases item[1:]: the rest of this word */
                lo = e;
                for (hi = e; hi < s->u.s.n;) {
                    size_t he = u8_next(p, s->u.s.n, hi);
                    uint32_t hc;
                    el_uni_decode(p + hi, he - hi, &hc);
                    if (title_sep(hc)) break;
                    hi = he;
                }
            }
            word_start = sep;
        } else {
            which = mode == 'u' ? 0 : mode == 'l' ? 1 : mode == 't' ? (prev_cased ? 1 : 2) : (i == 0 ? 2 : 1);
        }
        size_t k;
        if (which == 1 && cp == 0x3a3) {
            m[0] = final_sigma(p, lo, hi, i) ? 0x3c2 : 0x3c3;
            k = 1;
        } else {
            k = which == 3 ? (m[0] = cp, 1) : case_map(cp, which, m);
        }
        for (size_t j = 0; j < k; j++) {
            char b[4];
            put(c, &o, b, el_uni_encode(m[j], b));
        }
        prev_cased = (case_flags(cp) & EL_CHAT_CASED) != 0;
        i = e;
    }
    return sb_end(c, &o);
}

/* Python's str.islower() (lower) or isupper(): a cased character, and none of the other case
 * or titlecase. */
static bool str_is_case(const val *s, bool lower) {
    bool cased = false;
    for (size_t i = 0; i < s->u.s.n;) {
        size_t e = u8_next(s->u.s.p, s->u.s.n, i);
        uint32_t cp;
        el_uni_decode(s->u.s.p + i, e - i, &cp);
        unsigned f = case_flags(cp);
        if (f & (EL_CHAT_TITLE | (lower ? EL_CHAT_UPPER : EL_CHAT_LOWER))) return false;
        if (f & (lower ? EL_CHAT_LOWER : EL_CHAT_UPPER)) cased = true;
        i = e;
    }
    return cased;
}

static bool find_sub(const char *p, size_t n, const char *q, size_t m, size_t from, size_t *at) {
    if (m > n) return false;
    for (size_t i = from; i + m <= n; i++)
        if (!memcmp(p + i, q, m)) {
            *at = i;
            return true;
        }
    return false;
}

static val str_replace(ctx *c, const val *s, const val *old, const val *nw, int64_t count) {
    sink o = sb_begin(c);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0, at;
    int64_t done = 0;
    if (old->u.s.n == 0) { /* Python inserts new between every character */
        for (;;) {
            if (count >= 0 && done >= count) break;
            put(c, &o, nw->u.s.p, nw->u.s.n);
            done++;
            if (i >= n) break;
            size_t e = u8_next(p, n, i);
            put(c, &o, p + i, e - i);
            i = e;
        }
        put(c, &o, p + i, n - i);
        return sb_end(c, &o);
    }
    while ((count < 0 || done < count) && find_sub(p, n, old->u.s.p, old->u.s.n, i, &at)) {
        put(c, &o, p + i, at - i);
        put(c, &o, nw->u.s.p, nw->u.s.n);
        i = at + old->u.s.n;
        done++;
    }
    put(c, &o, p + i, n - i);
    return sb_end(c, &o);
}

/* str.split(sep=None, maxsplit=-1) */
static val str_split(ctx *c, const val *s, const val *sep, int64_t maxsplit, size_t pos) {
    const char *p = s->u.s.p;
    size_t n = s->u.s.n;
    /* two passes: count, then fill */
    val parts = {0};
    for (int pass = 0; pass < 2; pass++) {
        size_t cnt = 0, i = 0;
        int64_t splits = 0;
        if (sep && sep->k != V_NONE) {
            size_t sl;
            const char *sp = need_str(c, sep, &sl, "split separator", pos);
            if (sl == 0) fail(c, pos, EL_E_INVALID, "empty separator");
            size_t at;
            while ((maxsplit < 0 || splits < maxsplit) && find_sub(p, n, sp, sl, i, &at)) {
                if (pass) parts.u.l->v[cnt] = mk_str(p + i, at - i);
                cnt++;
                splits++;
                i = at + sl;
            }
            if (pass) parts.u.l->v[cnt] = mk_str(p + i, n - i);
            cnt++;
        } else {
            for (;;) {
                while (i < n) {
                    size_t e = u8_next(p, n, i);
                    uint32_t cp;
                    el_uni_decode(p + i, e - i, &cp);
                    if (!py_space(cp)) break;
                    i = e;
                }
                if (i >= n) break;
                size_t st = i;
                if (maxsplit >= 0 && splits >= maxsplit) { /* the rest, as it is */
                    if (pass) parts.u.l->v[cnt] = mk_str(p + st, n - st);
                    cnt++;
                    break;
                }
                while (i < n) {
                    size_t e = u8_next(p, n, i);
                    uint32_t cp;
                    el_uni_decode(p + i, e - i, &cp);
                    if (py_space(cp)) break;
                    i = e;
                }
                if (pass) parts.u.l->v[cnt] = mk_str(p + st, i - st);
                cnt++;
                splits++;
            }
        }
        if (!pass) parts = mk_list(c, cnt, false);
    }
    return parts;
}

static val str_join(ctx *c, const val *sep, const val *items, size_t pos) {
    val l = iter_items(c, items, pos);
    /* every item as str first (allocations), then one builder */
    val *strs = l.u.l->n ? alloc(c, mul_size(c, l.u.l->n, sizeof(val))) : NULL;
    for (size_t i = 0; i < l.u.l->n; i++) strs[i] = to_str(c, &l.u.l->v[i]);
    sink o = sb_begin(c);
    for (size_t i = 0; i < l.u.l->n; i++) {
        if (i && sep) put(c, &o, sep->u.s.p, sep->u.s.n);
        put(c, &o, strs[i].u.s.p, strs[i].u.s.n);
    }
    return sb_end(c, &o);
}

static int64_t need_int(ctx *c, const val *v, const char *what, size_t pos) {
    int64_t i;
    if (!as_index(v, &i)) fail(c, pos, EL_E_INVALID, "%s must be an integer, not %s", what, type_name(v));
    return i;
}

static val call_method(ctx *c, const val *m, const args *a, size_t pos) {
    const val *self = m->u.self;
    size_t n;
    const char *p;
    switch (m->fn) {
    case M_ITEMS: case M_KEYS: case M_VALUES: {
        args_max(c, a, 0, NULL, "dict method", pos);
        const vdict *d = self->u.d;
        val l = mk_list(c, d->n, false);
        for (size_t i = 0; i < d->n; i++) {
            if (m->fn == M_KEYS) l.u.l->v[i] = d->key[i];
            else if (m->fn == M_VALUES) l.u.l->v[i] = d->v[i];
            else {
                val t = mk_list(c, 2, true);
                t.u.l->v[0] = d->key[i];
                t.u.l->v[1] = d->v[i];
                l.u.l->v[i] = t;
            }
        }
        return l;
    }
    case M_GET: {
        static const char *const nm[] = {"key", "default", NULL};
        args_max(c, a, 2, nm, "get", pos);
        const val *k = arg(c, a, 0, "key", pos), *dflt = arg(c, a, 1, "default", pos);
        if (!k) fail(c, pos, EL_E_INVALID, "get expected at least 1 argument");
        val *v = dict_find(c, self->u.d, k);
        return v ? *v : dflt ? *dflt : mk_none();
    }
    case M_LCOUNT: case M_LINDEX: {
        args_max(c, a, 1, NULL, "list method", pos);
        if (a->n < 1) fail(c, pos, EL_E_INVALID, "list.count/index takes 1 argument");
        val l = iter_items(c, self, pos);
        int64_t cnt = 0;
        for (size_t i = 0; i < l.u.l->n; i++) {
            step(c, pos);
            if (!v_eq(c, &l.u.l->v[i], &a->v[0], 0)) continue;
            if (m->fn == M_LINDEX) return mk_int((int64_t)i);
            cnt++;
        }
        if (m->fn == M_LINDEX) fail(c, pos, EL_E_INVALID, "list.index(x): x not in list");
        return mk_int(cnt);
    }
    case M_CYCLE:
        if (a->n == 0) fail(c, pos, EL_E_INVALID, "no items for cycling given");
        return a->v[self->u.lp->i % (int64_t)a->n];
    default: break;
    }
    /* string methods */
    static const char *const nm_chars[] = {"chars", NULL};
    switch (m->fn) {
    case M_STRIP: case M_LSTRIP: case M_RSTRIP: {
        args_max(c, a, 1, NULL, "strip", pos);
        const val *ch = arg(c, a, 0, "chars", pos);
        const char *cp = NULL;
        size_t cn = 0;
        if (ch && ch->k != V_NONE) cp = need_str(c, ch, &cn, "strip argument", pos);
        return str_strip(self, cp, cn, m->fn != M_RSTRIP, m->fn != M_LSTRIP);
    }
    case M_SPLIT: case M_RSPLIT: {
        static const char *const nm[] = {"sep", "maxsplit", NULL};
        args_max(c, a, 2, nm, "split", pos);
        const val *ms = arg(c, a, 1, "maxsplit", pos);
        int64_t mx = ms ? need_int(c, ms, "maxsplit", pos) : -1;
        if (m->fn == M_RSPLIT && mx >= 0) fail(c, pos, EL_E_UNSUPPORTED, "rsplit with maxsplit is not supported");
        return str_split(c, self, arg(c, a, 0, "sep", pos), mx, pos);
    }
    case M_STARTSWITH: case M_ENDSWITH: {
        args_max(c, a, 1, NULL, "startswith/endswith", pos);
        const val *x = arg(c, a, 0, "prefix", pos);
        if (!x) fail(c, pos, EL_E_INVALID, "startswith/endswith takes 1 argument");
        size_t cnt = x->k == V_LIST && x->tuple ? x->u.l->n : 1;
        for (size_t i = 0; i < cnt; i++) {
            const val *q = x->k == V_LIST && x->tuple ? &x->u.l->v[i] : x;
            p = need_str(c, q, &n, "prefix/suffix", pos);
            if (n > self->u.s.n) continue;
            if (m->fn == M_STARTSWITH ? !memcmp(self->u.s.p, p, n) : !memcmp(self->u.s.p + self->u.s.n - n, p, n))
                return mk_bool(true);
        }
        return mk_bool(false);
    }
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE:
        args_max(c, a, 0, nm_chars, "str method", pos);
        return str_case(c, self, m->fn == M_UPPER ? 'u' : m->fn == M_LOWER ? 'l' : m->fn == M_TITLE ? 't' : 'c');
    case M_REPLACE: {
        args_max(c, a, 3, NULL, "replace", pos);
        if (a->n < 2) fail(c, pos, EL_E_INVALID, "replace expected at least 2 arguments");
        need_str(c, &a->v[0], &n, "replace argument", pos);
        need_str(c, &a->v[1], &n, "replace argument", pos);
        return str_replace(c, self, &a->v[0], &a->v[1], a->n > 2 ? need_int(c, &a->v[2], "count", pos) : -1);
    }
    case M_FIND: case M_RFIND: case M_COUNT: {
        args_max(c, a, 1, NULL, "find/count", pos);
        if (a->n < 1) fail(c, pos, EL_E_INVALID, "find/count takes 1 argument");
        p = need_str(c, &a->v[0], &n, "substring", pos);
        size_t at, i = 0;
        int64_t cnt = 0, first = -1, last = -1;
        if (n == 0) {
            int64_t len = (int64_t)u8_len(self->u.s.p, self->u.s.n);
            return mk_int(m->fn == M_COUNT ? len + 1 : m->fn == M_FIND ? 0 : len);
        }
        while (find_sub(self->u.s.p, self->u.s.n, p, n, i, &at)) {
            int64_t ci = (int64_t)u8_len(self->u.s.p, at);
            if (first < 0) first = ci;
            last = ci;
            cnt++;
            i = m->fn == M_COUNT ? at + n : at + 1;
        }
        return mk_int(m->fn == M_COUNT ? cnt : m->fn == M_FIND ? first : last);
    }
    case M_JOIN:
        args_max(c, a, 1, NULL, "join", pos);
        if (a->n < 1) fail(c, pos, EL_E_INVALID, "join takes 1 argument");
        {
            val l = iter_items(c, &a->v[0], pos);
            for (size_t i = 0; i < l.u.l->n; i++)
                if (l.u.l->v[i].k != V_STR)
                    fail(c, pos, EL_E_INVALID, "sequence item %zu: expected str instance, %s found", i, type_name(&l.u.l->v[i]));
            return str_join(c, self, &l, pos);
        }
    case M_SPLITLINES: {
        args_max(c, a, 0, NULL, "splitlines", pos);
        val sep = mk_str("\n", 1);
        val l = str_split(c, self, &sep, -1, pos);
        if (l.u.l->n && l.u.l->v[l.u.l->n - 1].u.s.n == 0) l.u.l->n--;
        for (size_t i = 0; i < l.u.l->n; i++) /* \r\n endings */
            if (l.u.l->v[i].u.s.n && l.u.l->v[i].u.s.p[l.u.l->v[i].u.s.n - 1] == '\r') l.u.l->v[i].u.s.n--;
        return l;
    }
    case M_FORMAT: { /* str.format with {}, {0}, {name} and {{ }}; no conversions or specs */
        val strs[ARGS_MAX], kstrs[ARGS_MAX];
        for (size_t i = 0; i < a->n; i++) strs[i] = to_str(c, &a->v[i]);
        for (size_t i = 0; i < a->nk; i++) kstrs[i] = to_str(c, &a->kv[i]);
        sink o = sb_begin(c);
        p = self->u.s.p;
        n = self->u.s.n;
        size_t auto_i = 0;
        int numbering = 0; /* 1 automatic {}, 2 manual {0}: Python refuses to mix them */
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '}') {
                if (i + 1 < n && p[i + 1] == '}') i++;
                else fail(c, pos, EL_E_INVALID, "format: single '}' encountered in format string");
                put(c, &o, "}", 1);
                continue;
            }
            if (p[i] != '{') {
                put(c, &o, p + i, 1);
                continue;
            }
            if (i + 1 < n && p[i + 1] == '{') {
                put(c, &o, "{", 1);
                i++;
                continue;
            }
            size_t e = i + 1;
            while (e < n && p[e] != '}') e++;
            if (e >= n) fail(c, pos, EL_E_INVALID, "format: single '{' encountered in format string");
            const char *f = p + i + 1;
            size_t fl = e - i - 1;
            const val *v = NULL;
            if (memchr(f, ':', fl) || memchr(f, '!', fl) || memchr(f, '.', fl) || memchr(f, '[', fl))
                fail(c, pos, EL_E_UNSUPPORTED, "format: conversions, specs and lookups in '{...}' are not supported");
            int kind = fl == 0 ? 1 : (f[0] >= '0' && f[0] <= '9') ? 2 : 0;
            if (kind && numbering && kind != numbering)
                fail(c, pos, EL_E_INVALID, "format: cannot switch between automatic field numbering and manual field specification");
            if (kind) numbering = kind;
            if (fl == 0) {
                if (auto_i >= a->n) fail(c, pos, EL_E_INVALID, "format: replacement index %zu out of range", auto_i);
                v = &strs[auto_i++];
            } else if (f[0] >= '0' && f[0] <= '9') {
                size_t k = 0;
                for (size_t j = 0; j < fl && k < 1000; j++) k = k * 10 + (size_t)(f[j] - '0');
                if (k >= a->n) fail(c, pos, EL_E_INVALID, "format: replacement index %zu out of range", k);
                v = &strs[k];
            } else {
                for (size_t k = 0; k < a->nk; k++)
                    if (a->kl[k] == fl && !memcmp(a->kn[k], f, fl)) v = &kstrs[k];
                if (!v) fail(c, pos, EL_E_INVALID, "format: no argument named '%.*s'", (int)(fl > 40 ? 40 : fl), f);
            }
            put(c, &o, v->u.s.p, v->u.s.n);
            i = e;
        }
        return sb_end(c, &o);
    }
    case M_ISDIGIT: case M_ISSPACE: case M_ISALPHA: case M_ISALNUM: case M_ISLOWER: case M_ISUPPER: {
        args_max(c, a, 0, NULL, "str method", pos);
        p = self->u.s.p;
        n = self->u.s.n;
        if (m->fn == M_ISLOWER || m->fn == M_ISUPPER) return mk_bool(str_is_case(self, m->fn == M_ISLOWER));
        if (n == 0) return mk_bool(false);
        for (size_t i = 0; i < n;) {
            size_t e = u8_next(p, n, i);
            uint32_t cp;
            el_uni_decode(p + i, e - i, &cp);
            int cls = el_uni_class(cp);
            bool ok = true;
            switch (m->fn) {
            case M_ISDIGIT: ok = cp >= '0' && cp <= '9'; break;
            case M_ISSPACE: ok = py_space(cp); break;
            case M_ISALPHA: ok = cls == EL_UNI_LETTER; break;
            case M_ISALNUM: ok = cls == EL_UNI_LETTER || cls == EL_UNI_NUMBER; break;
            default: break;
            }
            if (!ok) return mk_bool(false);
            i = e;
        }
        return mk_bool(true);
    }
    default: fail(c, pos, EL_E_UNSUPPORTED, "method not supported");
    }
}

/* ---- built-in functions ---------------------------------------------------------------- */

static val call_func(ctx *c, int fn, const args *a, size_t pos) {
    switch (fn) {
    case FN_RANGE: {
        args_max(c, a, 3, NULL, "range", pos);
        if (a->n == 0) fail(c, pos, EL_E_INVALID, "range expected at least 1 argument");
        int64_t start = 0, stop, st = 1;
        if (a->n == 1) stop = need_int(c, &a->v[0], "range argument", pos);
        else {
            start = need_int(c, &a->v[0], "range argument", pos);
            stop = need_int(c, &a->v[1], "range argument", pos);
            if (a->n > 2) st = need_int(c, &a->v[2], "range step", pos);
        }
        if (st == 0) fail(c, pos, EL_E_INVALID, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)stop - (double)start) / (double)st) : ceil(((double)start - (double)stop) / -(double)st);
        if (cnt < 0) cnt = 0;
        if (cnt > EL_CHAT_RANGE_MAX)
            fail(c, pos, EL_E_INVALID, "range too big: the sandbox blocks ranges larger than %d (as jinja2's MAX_RANGE)", EL_CHAT_RANGE_MAX);
        val v = {.k = V_RANGE};
        v.u.r = alloc(c, sizeof *v.u.r);
        v.u.r->start = start;
        v.u.r->stop = stop;
        v.u.r->step = st;
        v.u.r->n = (int64_t)cnt;
        return v;
    }
    case FN_RAISE: {
        val m = a->n ? to_str(c, &a->v[0]) : mk_str("", 0);
        fail(c, pos, EL_E_INVALID, "the template raised an exception: %.*s", (int)(m.u.s.n > 200 ? 200 : m.u.s.n), m.u.s.p);
    }
    case FN_STRFTIME: {
        args_max(c, a, 1, NULL, "strftime_now", pos);
        size_t n;
        if (a->n < 1) fail(c, pos, EL_E_INVALID, "strftime_now takes a format");
        const char *f = need_str(c, &a->v[0], &n, "strftime_now format", pos);
        char fmt[64];
        if (n >= sizeof fmt) fail(c, pos, EL_E_UNSUPPORTED, "strftime_now format longer than %zu bytes", sizeof fmt - 1);
        for (size_t i = 0; i < n; i++) /* only conversions C and Python agree on */
            if (f[i] == '%' && (i + 1 >= n || !strchr("aAbBdHIjmMpSyYeZ%", f[i + 1])))
                fail(c, pos, EL_E_UNSUPPORTED, "strftime_now: conversion '%%%c' is not supported", i + 1 < n ? f[i + 1] : ' ');
            else if (f[i] == '%') i++;
        memcpy(fmt, f, n);
        fmt[n] = 0;
        struct tm tm;
        if (!localtime_r(&c->now, &tm)) fail(c, pos, EL_E_INVALID, "strftime_now: the clock is out of range");
        char *o = alloc(c, 256);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        size_t k = strftime(o, 256, fmt, &tm);
#pragma GCC diagnostic pop
        if (k == 0 && n > 0) fail(c, pos, EL_E_INVALID, "strftime_now: the result is empty or too long");
        return mk_str(o, k);
    }
    case FN_NAMESPACE: case FN_DICT: {
        if (a->n > 1 || (a->n == 1 && a->v[0].k != V_DICT))
            fail(c, pos, EL_E_INVALID, "%s() takes keyword arguments or one dict", func_names[fn]);
        vdict *d = dict_new(c, a->nk + (a->n ? a->v[0].u.d->n : 0) + 4);
        if (a->n)
            for (size_t i = 0; i < a->v[0].u.d->n; i++) dict_set(c, d, a->v[0].u.d->key[i], a->v[0].u.d->v[i]);
        for (size_t k = 0; k < a->nk; k++) {
            if (fn == FN_NAMESPACE && a->kl[k] && a->kn[k][0] == '_')
                fail(c, pos, EL_E_INVALID, "namespace attributes cannot start with '_'");
            dict_set(c, d, mk_str(a->kn[k], a->kl[k]), a->kv[k]);
        }
        val v = {.k = fn == FN_NAMESPACE ? V_NS : V_DICT};
        v.u.d = d;
        return v;
    }
    default: fail(c, pos, EL_E_UNSUPPORTED, "function not supported");
    }
}

/* ---- tests -------------------------------------------------------------------------- */

static bool test_odd_even(ctx *c, int t, const val *v, size_t pos);

static bool run_test(ctx *c, int t, const val *v, const args *a, size_t pos) {
    const val *x = a->n ? &a->v[0] : NULL;
    switch (t) {
    case T_ODD: case T_EVEN: return test_odd_even(c, t, v, pos);
    case T_DEFINED: return v->k != V_UNDEF;
    case T_UNDEFINED: return v->k == V_UNDEF;
    case T_NONE: return v->k == V_NONE;
    case T_STRING: return v->k == V_STR;
    case T_NUMBER: return is_num(v);
    case T_INTEGER: return v->k == V_INT;
    case T_FLOAT: return v->k == V_FLOAT;
    case T_BOOLEAN: return v->k == V_BOOL;
    case T_TRUE: return v->k == V_BOOL && v->u.i;
    case T_FALSE: return v->k == V_BOOL && !v->u.i;
    case T_MAPPING: return v->k == V_DICT;
    case T_ITERABLE: return v->k == V_STR || v->k == V_LIST || v->k == V_DICT || v->k == V_RANGE || v->k == V_UNDEF;
    case T_SEQUENCE: return v->k == V_STR || v->k == V_LIST || v->k == V_DICT || v->k == V_RANGE || v->k == V_UNDEF;
    case T_CALLABLE: return v->k == V_FUNC || v->k == V_METHOD || v->k == V_MACRO;
    case T_LOWER: case T_UPPER: { /* str(v).islower() / isupper() */
        val s = to_str(c, v);
        return str_is_case(&s, t == T_LOWER);
    }
    default: break;
    }
    if (!x) fail(c, pos, EL_E_INVALID, "test '%s' needs an argument", test_names[t]);
    switch (t) {
    case T_EQ: case T_EQ2: case T_EQ3: return v_eq(c, v, x, 0);
    case T_NE: case T_NE2: return !v_eq(c, v, x, 0);
    case T_LT: case T_LT2: return v_cmp(c, v, x, pos, 0) < 0;
    case T_LE: case T_LE2: return v_cmp(c, v, x, pos, 0) <= 0;
    case T_GT: case T_GT2: return v_cmp(c, v, x, pos, 0) > 0;
    case T_GE: case T_GE2: return v_cmp(c, v, x, pos, 0) >= 0;
    case T_IN: return contains(c, x, v, pos);
    case T_SAMEAS: return v->k == x->k && (v->k == V_NONE || v->k == V_UNDEF || ((v->k == V_BOOL || v->k == V_INT) && v->u.i == x->u.i));
    case T_DIVISIBLEBY: {
        int64_t d = need_int(c, x, "divisibleby argument", pos);
        if (d == 0) fail(c, pos, EL_E_INVALID, "integer modulo by zero");
        return need_int(c, v, "divisibleby operand", pos) % d == 0;
    }
    default: break;
    }
    return false;
}
/* jinja2: value % 2 == 1 (odd) or == 0 (even), so floats take part */
static bool test_odd_even(ctx *c, int t, const val *v, size_t pos) {
    if (!is_num(v)) fail(c, pos, EL_E_INVALID, "odd/even needs a number, not %s", type_name(v));
    val two = mk_int(2), m = binop(c, '%', v, &two, pos), want = mk_int(t == T_ODD ? 1 : 0);
    return v_eq(c, &m, &want, 0);
}

/* ---- filters --------------------------------------------------------------------------- */

/* item.attr for selectattr/map(attribute=): dotted names, items first (jinja2's getitem). */
static val attr_path(ctx *c, const val *item, const val *attr, size_t pos) {
    if (attr->k == V_INT) return get_item(c, item, attr, pos);
    size_t n;
    const char *p = need_str(c, attr, &n, "attribute", pos);
    val v = *item;
    size_t i = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && p[e] != '.') e++;
        val key = mk_str(p + i, e - i);
        int64_t ix = 0;
        bool num = e > i;
        for (size_t k = i; k < e; k++) {
            if (!is_digit(p[k]) || ix > (INT64_MAX - 9) / 10) { num = false; break; }
            ix = ix * 10 + (p[k] - '0');
        }
        if (num) key = mk_int(ix);
        if (v.k == V_UNDEF) return v;
        v = get_item(c, &v, &key, pos);
        i = e + 1;
    }
    return v;
}

/* The key sort and dictsort compare: strings lower-cased unless case_sensitive. */
static val sort_key(ctx *c, const val *v, bool case_sensitive) {
    return v->k == V_STR && !case_sensitive ? str_case(c, v, 'l') : *v;
}

/* Stable insertion sort of l's items by keys[] (Python's sort is stable); in place. */
static void sort_items(ctx *c, val *items, val *keys, size_t n, bool reverse, size_t pos) {
    for (size_t i = 1; i < n; i++) {
        val it = items[i], k = keys[i];
        size_t j = i;
        while (j > 0) {
            step(c, pos);
            int r = v_cmp(c, &keys[j - 1], &k, pos, 0);
            if (reverse ? r >= 0 : r <= 0) break;
            items[j] = items[j - 1];
            keys[j] = keys[j - 1];
            j--;
        }
        items[j] = it;
        keys[j] = k;
    }
}

__attribute__((noreturn)) static void fail_unknown(ctx *c, const node *n) {
    fail(c, n->pos, EL_E_UNSUPPORTED, "%s '%.*s' is not supported", n->kind == E_FILTER ? "filter" : "test",
         (int)(n->v.u.s.n > 40 ? 40 : n->v.u.s.n), n->v.u.s.p);
}

static val eval_filter(ctx *c, scope *s, const node *n) {
    if (n->fn == FN_UNKNOWN) fail_unknown(c, n);
    val v = eval(c, s, n->a);
    args a;
    eval_args(c, s, n->b, &a, n->pos);
    size_t pos = n->pos;
    const char *fname = filter_names[n->fn];
    switch (n->fn) {
    case F_TRIM: {
        args_max(c, &a, 1, (const char *const[]){"chars", NULL}, fname, pos);
        const val *ch = arg(c, &a, 0, "chars", pos);
        val sv = to_str(c, &v);
        size_t cn = 0;
        const char *cp = ch && ch->k != V_NONE ? need_str(c, ch, &cn, "trim chars", pos) : NULL;
        return str_strip(&sv, cp, cn, true, true);
    }
    case F_LENGTH: case F_COUNT:
        if (v.k == V_STR || v.k == V_LIST || v.k == V_DICT || v.k == V_NS || v.k == V_RANGE || v.k == V_UNDEF)
            return mk_int((int64_t)seq_len(&v));
        fail(c, pos, EL_E_INVALID, "object of type '%s' has no len()", type_name(&v));
    case F_UPPER: case F_LOWER: case F_CAPITALIZE: case F_TITLE: {
        val sv = to_str(c, &v);
        return str_case(c, &sv, n->fn == F_UPPER ? 'u' : n->fn == F_LOWER ? 'l' : n->fn == F_TITLE ? 'T' : 'c');
    }
    case F_TOJSON: {
        static const char *const nm[] = {"indent", "ensure_ascii", "separators", "sort_keys", NULL};
        args_max(c, &a, 4, nm, fname, pos);
        jopts o = {.indent = -1, .isep = ", ", .isepn = 2, .ksep = ": ", .ksepn = 2};
        const val *ind = arg(c, &a, 0, "indent", pos), *asc = arg(c, &a, 1, "ensure_ascii", pos),
                  *sep = arg(c, &a, 2, "separators", pos), *srt = arg(c, &a, 3, "sort_keys", pos);
        if (ind && ind->k == V_STR) {
            o.ind = ind->u.s.p;
            o.indn = ind->u.s.n;
        } else if (ind && ind->k != V_NONE) {
            int64_t k = need_int(c, ind, "indent", pos);
            if (k > 64) fail(c, pos, EL_E_UNSUPPORTED, "tojson indent above 64");
            o.indent = k < 0 ? 0 : (int)k;
        }
        if (o.indent >= 0 || o.ind) { o.isep = ","; o.isepn = 1; }
        if (sep && sep->k != V_NONE) {
            if (sep->k != V_LIST || sep->u.l->n != 2 || sep->u.l->v[0].k != V_STR || sep->u.l->v[1].k != V_STR)
                fail(c, pos, EL_E_INVALID, "tojson separators must be two strings");
            o.isep = sep->u.l->v[0].u.s.p;
            o.isepn = sep->u.l->v[0].u.s.n;
            o.ksep = sep->u.l->v[1].u.s.p;
            o.ksepn = sep->u.l->v[1].u.s.n;
        }
        o.ascii = asc && truthy(asc);
        o.sort = srt && truthy(srt);
        sink sb = sb_begin(c);
        put_json(c, &sb, &v, &o, 0, pos);
        return sb_end(c, &sb);
    }
    case F_STRING: case F_SAFE: return to_str(c, &v); /* safe: jinja2's Markup is a str */
    case F_DEFAULT: case F_D: {
        static const char *const nm[] = {"default_value", "boolean", NULL};
        args_max(c, &a, 2, nm, fname, pos);
        const val *dv = arg(c, &a, 0, "default_value", pos), *b = arg(c, &a, 1, "boolean", pos);
        bool use = (b && truthy(b)) ? !truthy(&v) : v.k == V_UNDEF;
        return use ? (dv ? *dv : mk_str("", 0)) : v;
    }
    case F_JOIN: {
        static const char *const nm[] = {"d", "attribute", NULL};
        args_max(c, &a, 2, nm, fname, pos);
        const val *sep = arg(c, &a, 0, "d", pos), *at = arg(c, &a, 1, "attribute", pos);
        val l = iter_items(c, &v, pos);
        if (at) {
            val m = mk_list(c, l.u.l->n, false);
            for (size_t i = 0; i < l.u.l->n; i++) m.u.l->v[i] = attr_path(c, &l.u.l->v[i], at, pos);
            l = m;
        }
        val sv = sep ? to_str(c, sep) : mk_str("", 0);
        return str_join(c, &sv, &l, pos);
    }
    case F_REPLACE: {
        args_max(c, &a, 3, (const char *const[]){"old", "new", "count", NULL}, fname, pos);
        const val *o = arg(c, &a, 0, "old", pos), *w = arg(c, &a, 1, "new", pos), *k = arg(c, &a, 2, "count", pos);
        if (!o || !w) fail(c, pos, EL_E_INVALID, "replace needs old and new");
        val sv = to_str(c, &v), os = to_str(c, o), ws = to_str(c, w);
        return str_replace(c, &sv, &os, &ws, k && k->k != V_NONE ? need_int(c, k, "count", pos) : -1);
    }
    case F_ITEMS: {
        if (v.k == V_UNDEF) return mk_list(c, 0, false);
        if (v.k != V_DICT) fail(c, pos, EL_E_INVALID, "can only get item pairs from a mapping, not %s", type_name(&v));
        val m = {.k = V_METHOD, .fn = M_ITEMS};
        m.u.self = &v;
        args none;
        memset(&none, 0, sizeof none);
        return call_method(c, &m, &none, pos);
    }
    case F_SELECTATTR: case F_REJECTATTR: case F_SELECT: case F_REJECT: {
        bool attr = n->fn == F_SELECTATTR || n->fn == F_REJECTATTR;
        bool want = n->fn == F_SELECTATTR || n->fn == F_SELECT;
        if (a.nk) fail(c, pos, EL_E_UNSUPPORTED, "%s with keyword arguments is not supported", fname);
        size_t ti = attr ? 1 : 0;
        if (attr && a.n < 1) fail(c, pos, EL_E_INVALID, "%s needs an attribute name", fname);
        int t = -1;
        if (a.n > ti) {
            size_t tn;
            const char *tp = need_str(c, &a.v[ti], &tn, "test name", pos);
            t = lookup_name(test_names, T_COUNT, tp, tn);
            if (t < 0) fail(c, pos, EL_E_UNSUPPORTED, "test '%.*s' is not supported", (int)(tn > 40 ? 40 : tn), tp);
        }
        args ta;
        memset(&ta, 0, sizeof ta);
        for (size_t i = ti + 1; i < a.n; i++) ta.v[ta.n++] = a.v[i];
        val l = truthy(&v) ? iter_items(c, &v, pos) : mk_list(c, 0, false); /* jinja2: `if value:` */
        val out = mk_list(c, l.u.l->n, false);
        size_t k = 0;
        for (size_t i = 0; i < l.u.l->n; i++) {
            step(c, pos);
            val x = attr ? attr_path(c, &l.u.l->v[i], &a.v[0], pos) : l.u.l->v[i];
            bool r = t < 0 ? truthy(&x) : run_test(c, t, &x, &ta, pos);
            if (r == want) out.u.l->v[k++] = l.u.l->v[i];
        }
        out.u.l->n = k;
        return out;
    }
    case F_MAP: {
        val l = truthy(&v) ? iter_items(c, &v, pos) : mk_list(c, 0, false); /* jinja2: `if value:` */
        val out = mk_list(c, l.u.l->n, false);
        const val *at = arg(c, &a, SIZE_MAX, "attribute", pos);
        const val *dflt = arg(c, &a, SIZE_MAX, "default", pos);
        int f = -1;
        if (!at) {
            size_t fl;
            if (a.n < 1) fail(c, pos, EL_E_INVALID, "map needs a filter name or attribute=");
            const char *fp = need_str(c, &a.v[0], &fl, "filter name", pos);
            f = lookup_name(filter_names, F_N_SUPPORTED, fp, fl);
            if (f != F_TRIM && f != F_UPPER && f != F_LOWER && f != F_STRING && f != F_LENGTH && f != F_TOJSON &&
                f != F_CAPITALIZE && f != F_TITLE)
                fail(c, pos, EL_E_UNSUPPORTED, "map('%.*s') is not supported", (int)(fl > 40 ? 40 : fl), fp);
        }
        for (size_t i = 0; i < l.u.l->n; i++) {
            step(c, pos);
            if (at) {
                val x = attr_path(c, &l.u.l->v[i], at, pos);
                out.u.l->v[i] = x.k == V_UNDEF && dflt ? *dflt : x;
                continue;
            }
            val x = l.u.l->v[i];
            if (f == F_LENGTH) { out.u.l->v[i] = mk_int((int64_t)seq_len(&x)); continue; }
            if (f == F_TOJSON) {
                jopts o = {.indent = -1, .isep = ", ", .isepn = 2, .ksep = ": ", .ksepn = 2};
                sink sb = sb_begin(c);
                put_json(c, &sb, &x, &o, 0, pos);
                out.u.l->v[i] = sb_end(c, &sb);
                continue;
            }
            val sv = to_str(c, &x);
            out.u.l->v[i] = f == F_TRIM ? str_strip(&sv, NULL, 0, true, true)
                          : f == F_STRING ? sv
                          : str_case(c, &sv, f == F_UPPER ? 'u' : f == F_LOWER ? 'l' : f == F_TITLE ? 'T' : 'c');
        }
        return out;
    }
    case F_SORT: case F_DICTSORT: {
        bool ds = n->fn == F_DICTSORT;
        static const char *const nm_sort[] = {"reverse", "case_sensitive", "attribute", NULL};
        static const char *const nm_ds[] = {"case_sensitive", "by", "reverse", NULL};
        args_max(c, &a, 3, ds ? nm_ds : nm_sort, fname, pos);
        const val *rv = arg(c, &a, ds ? 2 : 0, "reverse", pos), *cs = arg(c, &a, ds ? 0 : 1, "case_sensitive", pos);
        const val *at = ds ? NULL : arg(c, &a, 2, "attribute", pos), *by = ds ? arg(c, &a, 1, "by", pos) : NULL;
        bool by_value = false;
        if (by && by->k == V_STR && s_eq(by->u.s.p, by->u.s.n, "value")) by_value = true;
        else if (by && !(by->k == V_STR && s_eq(by->u.s.p, by->u.s.n, "key")))
            fail(c, pos, EL_E_INVALID, "dictsort: you can only sort by either \"key\" or \"value\"");
        val l;
        if (ds) {
            if (v.k != V_DICT) fail(c, pos, EL_E_INVALID, "dictsort needs a mapping, not %s", type_name(&v));
            val m = {.k = V_METHOD, .fn = M_ITEMS};
            m.u.self = &v;
            args none;
            memset(&none, 0, sizeof none);
            l = call_method(c, &m, &none, pos);
        } else {
            val src = iter_items(c, &v, pos);
            l = mk_list(c, src.u.l->n, false);
            memcpy(l.u.l->v, src.u.l->v, src.u.l->n * sizeof(val));
        }
        val *keys = alloc(c, mul_size(c, l.u.l->n, sizeof(val)));
        for (size_t i = 0; i < l.u.l->n; i++) {
            val k = ds ? l.u.l->v[i].u.l->v[by_value ? 1 : 0] : at ? attr_path(c, &l.u.l->v[i], at, pos) : l.u.l->v[i];
            keys[i] = sort_key(c, &k, cs && truthy(cs));
        }
        sort_items(c, l.u.l->v, keys, l.u.l->n, rv && truthy(rv), pos);
        return l;
    }
    case F_LIST: return iter_items(c, &v, pos);
    case F_FIRST: case F_LAST: {
        val l = iter_items(c, &v, pos);
        if (l.u.l->n == 0) return mk_undef(NULL, 0);
        return l.u.l->v[n->fn == F_FIRST ? 0 : l.u.l->n - 1];
    }
    case F_REVERSE: {
        if (v.k == V_STR) {
            val neg = mk_int(-1);
            return slice(c, &v, NULL, NULL, &neg, pos);
        }
        val l = iter_items(c, &v, pos);
        val out = mk_list(c, l.u.l->n, false);
        for (size_t i = 0; i < l.u.l->n; i++) out.u.l->v[i] = l.u.l->v[l.u.l->n - 1 - i];
        return out;
    }
    case F_INT: case F_FLOAT: {
        const val *dv = arg(c, &a, 0, "default", pos);
        if (v.k == V_INT || v.k == V_BOOL) return n->fn == F_INT ? mk_int(v.u.i) : mk_float((double)v.u.i);
        if (v.k == V_FLOAT) {
            if (n->fn == F_FLOAT) return v;
            if (!(v.u.f > -9.2e18 && v.u.f < 9.2e18)) fail(c, pos, EL_E_INVALID, "int: value out of range");
            return mk_int((int64_t)v.u.f);
        }
        if (v.k == V_STR && v.u.s.n > 0 && v.u.s.n < 40) {
            char b[48];
            memcpy(b, v.u.s.p, v.u.s.n);
            b[v.u.s.n] = 0;
            char *e;
            errno = 0;
            if (n->fn == F_INT) {
                long long x = strtoll(b, &e, 10);
                if (!errno && *e == 0) return mk_int(x);
            } else {
                double x = parse_double(b, &e);
                if (*e == 0) return mk_float(x);
            }
        }
        return dv ? *dv : n->fn == F_INT ? mk_int(0) : mk_float(0.0);
    }
    case F_ABS:
        if (v.k == V_FLOAT) return mk_float(fabs(v.u.f));
        if (v.k == V_INT || v.k == V_BOOL) {
            if (v.u.i == INT64_MIN) fail(c, pos, EL_E_INVALID, "integer overflow in abs");
            return mk_int(v.u.i < 0 ? -v.u.i : v.u.i);
        }
        fail(c, pos, EL_E_INVALID, "bad operand type for abs(): '%s'", type_name(&v));
    case F_UNIQUE: {
        val l = iter_items(c, &v, pos);
        val out = mk_list(c, l.u.l->n, false);
        size_t k = 0;
        for (size_t i = 0; i < l.u.l->n; i++) {
            bool seen = false;
            for (size_t j = 0; j < k && !seen; j++) {
                step(c, pos);
                seen = v_eq(c, &out.u.l->v[j], &l.u.l->v[i], 0);
            }
            if (!seen) out.u.l->v[k++] = l.u.l->v[i];
        }
        out.u.l->n = k;
        return out;
    }
    case F_MIN: case F_MAX: {
        val l = iter_items(c, &v, pos);
        if (l.u.l->n == 0) return mk_undef(NULL, 0);
        size_t best = 0;
        for (size_t i = 1; i < l.u.l->n; i++) {
            int r = v_cmp(c, &l.u.l->v[i], &l.u.l->v[best], pos, 0);
            if (n->fn == F_MIN ? r < 0 : r > 0) best = i;
        }
        return l.u.l->v[best];
    }
    case F_SUM: {
        val l = iter_items(c, &v, pos);
        val acc = mk_int(0);
        for (size_t i = 0; i < l.u.l->n; i++) acc = binop(c, '+', &acc, &l.u.l->v[i], pos);
        return acc;
    }
    default: fail(c, pos, EL_E_UNSUPPORTED, "filter '%s' is not supported", fname);
    }
}

/* ---- evaluation -------------------------------------------------------------------------- */

static int exec_body(ctx *c, scope *s, const node *n);

/* Runs body with its output captured (a macro call, a block set) and returns that output as a
 * string. The output goes to a window at the top of the arena that grows downwards as needed
 * (window_grow), so the body may allocate below it as usual; the result is then moved down. */
static val capture(ctx *c, scope *s, const node *body, size_t pos) {
    size_t at = (c->used + 7u) & ~(size_t)7u;
    size_t win = 256;
    if (at > c->top || c->top - at < win)
        fail(c, pos, EL_E_NOFIT, "needs more work memory than the %zu bytes given (no room left to "
             "capture a macro's output); pass a larger work buffer", c->cap);
    size_t old_top = c->top;
    c->top -= win;
    if (c->used + (c->cap - c->top) > c->peak) c->peak = c->used + (c->cap - c->top);
    sink saved = c->out;
    c->out = (sink){c->mem + c->top, 0, win, true, true};
    exec_body(c, s, body);
    sink got = c->out;
    c->out = saved;
    c->top = old_top;
    char *p = alloc(c, got.n);
    memmove(p, got.p, got.n); /* the freed window may overlap the new string */
    return mk_str(p, got.n);
}

static val call_macro(ctx *c, const val *f, const args *a, size_t pos) {
    const node *def = f->u.mac->def;
    scope *ms = scope_new(c, f->u.mac->closure);
    size_t i = 0;
    for (const node *prm = def->a; prm; prm = prm->next, i++) {
        const char *nm = prm->v.u.s.p;
        size_t nl = prm->v.u.s.n;
        const val *v = i < a->n ? &a->v[i] : NULL;
        for (size_t k = 0; k < a->nk; k++)
            if (a->kl[k] == nl && !memcmp(a->kn[k], nm, nl)) {
                if (v) fail(c, pos, EL_E_INVALID, "macro '%.*s' got multiple values for '%.*s'", (int)def->v.u.s.n,
                            def->v.u.s.p, (int)nl, nm);
                v = &a->kv[k];
            }
        val x = v ? *v : prm->b ? eval(c, ms, prm->b) : mk_undef(nm, nl);
        scope_set(c, ms, nm, nl, x);
    }
    /* extra arguments: varargs (a list) and kwargs (a dict), as jinja2 offers them */
    val va = mk_list(c, a->n > i ? a->n - i : 0, true);
    for (size_t k = i; k < a->n; k++) va.u.l->v[k - i] = a->v[k];
    vdict *kw = dict_new(c, a->nk + 1);
    for (size_t k = 0; k < a->nk; k++) {
        bool named = false;
        for (const node *prm = def->a; prm; prm = prm->next)
            if (prm->v.u.s.n == a->kl[k] && !memcmp(prm->v.u.s.p, a->kn[k], a->kl[k])) named = true;
        if (!named) dict_set(c, kw, mk_str(a->kn[k], a->kl[k]), a->kv[k]);
    }
    val kv = {.k = V_DICT};
    kv.u.d = kw;
    scope_set(c, ms, "varargs", 7, va);
    scope_set(c, ms, "kwargs", 6, kv);
    return capture(c, ms, def->c, pos);
}

static val eval(ctx *c, scope *s, const node *n) {
    step(c, n->pos);
    enter(c, n->pos);
    val r;
    switch (n->kind) {
    case E_CONST: r = n->v; break;
    case E_NAME: r = lookup(c, s, n->v.u.s.p, n->v.u.s.n); break;
    case E_ATTR: {
        val o = eval(c, s, n->a);
        r = get_attr(c, &o, n->v.u.s.p, n->v.u.s.n, n->pos);
        break;
    }
    case E_ITEM: {
        val o = eval(c, s, n->a), k = eval(c, s, n->b);
        r = get_item(c, &o, &k, n->pos);
        break;
    }
    case E_SLICE: {
        val o = eval(c, s, n->a);
        val a = n->b ? eval(c, s, n->b) : mk_none(), b = n->c ? eval(c, s, n->c) : mk_none(),
            st = n->d ? eval(c, s, n->d) : mk_none();
        r = slice(c, &o, &a, &b, &st, n->pos);
        break;
    }
    case E_CALL: {
        val f = eval(c, s, n->a);
        args a;
        eval_args(c, s, n->b, &a, n->pos);
        if (f.k == V_FUNC) r = call_func(c, f.fn, &a, n->pos);
        else if (f.k == V_METHOD) r = call_method(c, &f, &a, n->pos);
        else if (f.k == V_MACRO) r = call_macro(c, &f, &a, n->pos);
        else if (f.k == V_UNDEF) fail_undef(c, n->pos, &f, " (called as a function)");
        else fail(c, n->pos, EL_E_INVALID, "'%s' object is not callable", type_name(&f));
        break;
    }
    case E_FILTER: r = eval_filter(c, s, n); break;
    case E_TEST: {
        if (n->fn == FN_UNKNOWN) fail_unknown(c, n);
        val v = eval(c, s, n->a);
        args a;
        eval_args(c, s, n->b, &a, n->pos);
        r = mk_bool(run_test(c, n->fn, &v, &a, n->pos) != (n->op != 0));
        break;
    }
    case E_BIN: {
        val a = eval(c, s, n->a), b = eval(c, s, n->b);
        r = binop(c, n->op, &a, &b, n->pos);
        break;
    }
    case E_NOT: { val a = eval(c, s, n->a); r = mk_bool(!truthy(&a)); break; }
    case E_NEG: case E_POS: {
        val a = eval(c, s, n->a);
        if (a.k == V_UNDEF) fail_undef(c, n->pos, &a, "");
        if (!is_num(&a)) fail(c, n->pos, EL_E_INVALID, "bad operand type for unary %c: '%s'", n->kind == E_NEG ? '-' : '+', type_name(&a));
        if (n->kind == E_POS) r = a.k == V_BOOL ? mk_int(a.u.i) : a;
        else if (a.k == V_FLOAT) r = mk_float(-a.u.f);
        else if (a.u.i == INT64_MIN) fail(c, n->pos, EL_E_INVALID, "integer overflow");
        else r = mk_int(-a.u.i);
        break;
    }
    case E_AND: { val a = eval(c, s, n->a); r = truthy(&a) ? eval(c, s, n->b) : a; break; }
    case E_OR: { val a = eval(c, s, n->a); r = truthy(&a) ? a : eval(c, s, n->b); break; }
    case E_COND: {
        val t = eval(c, s, n->a);
        r = truthy(&t) ? eval(c, s, n->b) : n->c ? eval(c, s, n->c) : mk_undef(NULL, 0);
        break;
    }
    case E_LIST: case E_TUPLE: {
        size_t cnt = 0;
        for (const node *i = n->a; i; i = i->next) cnt++;
        r = mk_list(c, cnt, n->kind == E_TUPLE);
        size_t k = 0;
        for (const node *i = n->a; i; i = i->next) r.u.l->v[k++] = eval(c, s, i);
        break;
    }
    case E_DICT: {
        size_t cnt = 0;
        for (const node *i = n->a; i; i = i->next) cnt++;
        vdict *d = dict_new(c, cnt);
        for (const node *i = n->a; i; i = i->next) {
            val k = eval(c, s, i->a), v = eval(c, s, i->b);
            if (k.k == V_LIST && !k.tuple) fail(c, i->pos, EL_E_INVALID, "unhashable type: 'list'");
            if (k.k == V_DICT || k.k == V_UNDEF) fail(c, i->pos, EL_E_INVALID, "unhashable type: '%s'", type_name(&k));
            dict_set(c, d, k, v);
        }
        r.k = V_DICT;
        r.tuple = 0;
        r.fn = 0;
        r.u.d = d;
        break;
    }
    case E_CMP: {
        val a = eval(c, s, n->a);
        r = mk_bool(true);
        for (const node *o = n->b; o; o = o->next) {
            val b = eval(c, s, o->a);
            bool ok;
            switch (o->op) {
            case '=': ok = v_eq(c, &a, &b, 0); break;
            case '!': ok = !v_eq(c, &a, &b, 0); break;
            case 'i': ok = contains(c, &b, &a, o->pos); break;
            case 'n': ok = !contains(c, &b, &a, o->pos); break;
            default: {
                if (a.k == V_UNDEF) fail_undef(c, o->pos, &a, "");
                if (b.k == V_UNDEF) fail_undef(c, o->pos, &b, "");
                int k = v_cmp(c, &a, &b, o->pos, 0);
                ok = o->op == '<' ? k < 0 : o->op == 'l' ? k <= 0 : o->op == '>' ? k > 0 : k >= 0;
            }
            }
            if (!ok) { r = mk_bool(false); break; }
            a = b;
        }
        break;
    }
    default: fail(c, n->pos, EL_E_UNSUPPORTED, "internal: unknown expression node %d", n->kind);
    }
    leave(c);
    return r;
}

enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

static void assign(ctx *c, scope *s, const node *t, bool multi, const val *v, size_t pos) {
    if (!multi) {
        if (t->kind == E_ATTR) { /* ns.attr = v */
            val ns = lookup(c, s, t->a->v.u.s.p, t->a->v.u.s.n);
            if (ns.k != V_NS)
                fail(c, pos, EL_E_INVALID, "cannot assign attribute on non-namespace object ('%.*s' is %s)",
                     (int)t->a->v.u.s.n, t->a->v.u.s.p, type_name(&ns));
            if (t->v.u.s.n && t->v.u.s.p[0] == '_')
                fail(c, pos, EL_E_INVALID, "namespace attributes cannot start with '_'");
            dict_set(c, ns.u.d, t->v, *v);
            c->escapes++;
            return;
        }
        scope_set(c, s, t->v.u.s.p, t->v.u.s.n, *v);
        return;
    }
    size_t cnt = 0;
    for (const node *i = t; i; i = i->next) cnt++;
    val items = iter_items(c, v, pos);
    if (items.u.l->n != cnt)
        fail(c, pos, EL_E_INVALID, "cannot unpack %zu values into %zu names", items.u.l->n, cnt);
    size_t k = 0;
    for (const node *i = t; i; i = i->next) scope_set(c, s, i->v.u.s.p, i->v.u.s.n, items.u.l->v[k++]);
}

static void exec_for(ctx *c, scope *s, const node *n) {
    val it = eval(c, s, n->b);
    if (it.k == V_NONE || it.k == V_INT || it.k == V_FLOAT || it.k == V_BOOL)
        fail(c, n->b->pos, EL_E_INVALID, "'%s' object is not iterable", type_name(&it));
    /* ranges stay lazy (up to EL_CHAT_RANGE_MAX items each, iterations bounded below) */
    val items = it.k == V_RANGE && !n->e ? it : iter_items(c, &it, n->b->pos);
    bool multi = n->a->next != NULL;
    scope *ls = scope_new(c, s);
    scope_set(c, ls, "loop", 4, mk_none()); /* reserve the scope's arrays before any mark */
    if (n->e) { /* for x in xs if cond: filter first, loop.* count the kept items */
        val kept = mk_list(c, items.u.l->n, false);
        size_t k = 0;
        for (size_t i = 0; i < items.u.l->n; i++) {
            if (++c->iters > c->max_iters)
                fail(c, n->pos, EL_E_INVALID, "more than %llu loop iterations: the template does not terminate in bounded time",
                     (unsigned long long)c->max_iters);
            ls->n = 0;
            assign(c, ls, n->a, multi, &items.u.l->v[i], n->pos);
            val t = eval(c, ls, n->e);
            if (truthy(&t)) kept.u.l->v[k++] = items.u.l->v[i];
        }
        kept.u.l->n = k;
        items = kept;
    }
    loopst *lp = alloc(c, sizeof *lp);
    lp->n = (int64_t)seq_len(&items);
    lp->seq = items;
    val lv = {.k = V_LOOP};
    lv.u.lp = lp;
    for (int64_t i = 0; i < lp->n; i++) {
        if (++c->iters > c->max_iters)
            fail(c, n->pos, EL_E_INVALID, "more than %llu loop iterations: the template does not terminate in bounded time",
                 (unsigned long long)c->max_iters);
        lp->i = i;
        /* an iteration's temporaries go at its end unless something kept a reference:
         * a namespace assignment, or the loop scope growing its arrays */
        size_t mark = c->used, cap0 = ls->cap;
        uint64_t esc0 = c->escapes;
        ls->n = 0; /* every iteration starts from the enclosing scope (jinja2 semantics) */
        scope_set(c, ls, "loop", 4, lv);
        val item = seq_at(&items, i);
        assign(c, ls, n->a, multi, &item, n->pos);
        int f = exec_body(c, ls, n->c);
        if (c->escapes == esc0 && ls->cap == cap0) c->used = mark;
        if (f == FLOW_BREAK) break;
    }
    if (lp->n == 0 && n->d) exec_body(c, s, n->d);
}

static int exec_body(ctx *c, scope *s, const node *n) {
    enter(c, n ? n->pos : 0);
    for (; n; n = n->next) {
        step(c, n->pos);
        switch (n->kind) {
        case S_DATA: put(c, &c->out, n->v.u.s.p, n->v.u.s.n); break;
        case S_OUT: {
            size_t mark = c->used;
            uint64_t esc0 = c->escapes;
            val v = eval(c, s, n->a);
            put_val(c, &c->out, &v, false, 0);
            if (c->escapes == esc0) c->used = mark; /* no namespace kept a temporary: they go */
            break;
        }
        case S_IF: {
            size_t mark = c->used;
            uint64_t esc0 = c->escapes;
            val v = eval(c, s, n->a);
            bool t = truthy(&v);
            if (c->escapes == esc0) c->used = mark;
            int f = exec_body(c, s, t ? n->b : n->c);
            if (f != FLOW_NORMAL) { leave(c); return f; }
            break;
        }
        case S_BODY: {
            int f = exec_body(c, s, n->a);
            if (f != FLOW_NORMAL) { leave(c); return f; }
            break;
        }
        case S_FOR: exec_for(c, s, n); break;
        case S_SET: {
            val v = n->b ? eval(c, s, n->b) : capture(c, s, n->c, n->pos);
            assign(c, s, n->a, n->op != 0, &v, n->pos);
            break;
        }
        case S_MACRO: {
            struct macro *m = alloc(c, sizeof *m);
            m->def = n;
            m->closure = s;
            val v = {.k = V_MACRO};
            v.u.mac = m;
            scope_set(c, s, n->v.u.s.p, n->v.u.s.n, v);
            break;
        }
        case S_BREAK: leave(c); return FLOW_BREAK;
        case S_CONTINUE: leave(c); return FLOW_CONTINUE;
        default: fail(c, n->pos, EL_E_UNSUPPORTED, "internal: unknown statement node %d", n->kind);
        }
    }
    leave(c);
    return FLOW_NORMAL;
}

/* ---- entry points ------------------------------------------------------------------------ */

/* Copies the template into the arena with \r\n and \r as \n and one trailing \n dropped
 * (jinja2's defaults), after checking it is UTF-8. */
static void load_source(ctx *c, const char *t, size_t n) {
    if (el_utf8_check(t, n) != n)
        fail(c, SIZE_MAX, EL_E_INVALID, "the template is not valid UTF-8 (at byte %zu)", el_utf8_check(t, n));
    if (n > UINT32_MAX - 16) fail(c, SIZE_MAX, EL_E_UNSUPPORTED, "template larger than 4 GiB");
    char *s = alloc(c, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && t[i + 1] == '\n') i++;
        } else {
            s[k++] = t[i];
        }
    }
    if (k > 0 && s[k - 1] == '\n') k--;
    s[k] = 0;
    c->src = s;
    c->slen = k;
}

static void ctx_init(ctx *c, void *work, size_t work_cap, const el_chat_opts *o) {
    memset(c, 0, sizeof *c);
    c->mem = work;
    c->cap = c->top = work_cap;
    c->line_starting = true;
    c->max_iters = o && o->max_iters ? o->max_iters : EL_CHAT_ITERS_DEFAULT;
    c->max_steps = o && o->max_steps ? o->max_steps : EL_CHAT_STEPS_DEFAULT;
    c->now = o && o->now ? (time_t)o->now : time(NULL);
}

/* jinja2 reports an unknown filter or test when it compiles the template, except inside an
 * if statement or a conditional expression (a "soft" frame, which a for body leaves), where
 * the error waits until the expression runs. Same here. */
static void check_unknown(ctx *c, const node *n, bool soft) {
    for (; n; n = n->next) {
        bool cs = soft;
        switch (n->kind) {
        case S_IF: case E_COND: cs = true; break;
        case S_MACRO:
            check_unknown(c, n->a, soft);
            check_unknown(c, n->c, false);
            continue;
        case S_FOR:
            check_unknown(c, n->a, soft);
            check_unknown(c, n->b, soft);
            check_unknown(c, n->c, false);
            check_unknown(c, n->d, soft);
            check_unknown(c, n->e, false);
            continue;
        case E_FILTER: case E_TEST:
            if (n->fn == FN_UNKNOWN && !soft) fail_unknown(c, n);
            break;
        default: break;
        }
        check_unknown(c, n->a, cs);
        check_unknown(c, n->b, cs);
        check_unknown(c, n->c, cs);
        check_unknown(c, n->d, cs);
        check_unknown(c, n->e, cs);
    }
}

static node *parse(ctx *c, const char *tmpl, size_t tlen) {
    load_source(c, tmpl, tlen);
    tok end;
    node *body = p_body(c, NULL, &end);
    check_unknown(c, body, false);
    return body;
}

/* The shared render: msgs_val is the messages list (built by the caller inside the arena). */
static el_status render(ctx *c, const node *body, val msgs, const el_chat_opts *o, char *out,
                        size_t out_cap, size_t *out_len) {
    scope *g = scope_new(c, NULL);
    c->root = g;
    scope_set(c, g, "messages", 8, msgs);
    scope_set(c, g, "add_generation_prompt", 21, mk_bool(o && o->add_generation_prompt));
    scope_set(c, g, "tools", 5, mk_none());
    scope_set(c, g, "documents", 9, mk_none());
    if (o && o->bos_token) scope_set(c, g, "bos_token", 9, mk_str(o->bos_token, strlen(o->bos_token)));
    if (o && o->eos_token) scope_set(c, g, "eos_token", 9, mk_str(o->eos_token, strlen(o->eos_token)));
    if (o && o->bos_token && el_utf8_check(o->bos_token, strlen(o->bos_token)) != strlen(o->bos_token))
        fail(c, SIZE_MAX, EL_E_INVALID, "bos_token is not valid UTF-8");
    if (o && o->eos_token && el_utf8_check(o->eos_token, strlen(o->eos_token)) != strlen(o->eos_token))
        fail(c, SIZE_MAX, EL_E_INVALID, "eos_token is not valid UTF-8");
    if (o && o->tools_json)
        scope_set(c, g, "tools", 5, json_parse(c, o->tools_json, o->tools_json_len, "tools"));
    for (size_t i = 0; o && i < o->n_vars; i++) {
        const el_chat_var *v = &o->vars[i];
        if (!v->name || !v->json) fail(c, SIZE_MAX, EL_E_USAGE, "variable %zu has no name or value", i);
        scope_set(c, g, v->name, strlen(v->name), json_parse(c, v->json, v->json_len, v->name));
    }
    scope *top = scope_new(c, g); /* the template's own variables */
    c->out = (sink){out, 0, out_cap - 1, false, false};
    exec_body(c, top, body);
    out[c->out.n] = 0;
    *out_len = c->out.n;
    return EL_OK;
}

/* The context sits at the start of the work buffer, aligned for its jmp_buf. */
static ctx *ctx_at(void *work, size_t work_cap, const el_chat_opts *o) {
    uintptr_t a = ((uintptr_t)work + 15u) & ~(uintptr_t)15u;
    ctx *c = (ctx *)a;
    size_t skip = (size_t)(a - (uintptr_t)work);
    ctx_init(c, (char *)a, work_cap - skip, o); /* offsets from an aligned base: allocations align */
    c->used = c->peak = sizeof *c;
    return c;
}

static el_status check_args(const char *tmpl, void *work, size_t work_cap, char *out, size_t out_cap, size_t *out_len) {
    if (!tmpl || !work || (out_len && (!out || out_cap == 0)))
        return el_errorf(EL_E_USAGE, "el_chat_render: template, work and output buffers are required");
    if (work_cap < EL_CHAT_WORK_MIN)
        return el_errorf(EL_E_USAGE, "el_chat_render: work buffer of %zu bytes is below the minimum %u",
                         work_cap, EL_CHAT_WORK_MIN);
    return EL_OK;
}

/* The messages as a list of dicts, from structs (msgs) or JSON text (json). */
static val build_messages(ctx *c, const el_chat_msg *msgs, size_t n, const char *json, size_t mlen) {
    if (json) {
        val l = json_parse(c, json, mlen, "messages");
        if (l.k != V_LIST) fail(c, SIZE_MAX, EL_E_INVALID, "messages: expected a JSON array of messages, got %s", type_name(&l));
        for (size_t i = 0; i < l.u.l->n; i++)
            if (l.u.l->v[i].k != V_DICT)
                fail(c, SIZE_MAX, EL_E_INVALID, "messages[%zu]: expected an object, got %s", i, type_name(&l.u.l->v[i]));
        return l;
    }
    val l = mk_list(c, n, false);
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role) fail(c, SIZE_MAX, EL_E_USAGE, "message %zu has no role", i);
        if (el_utf8_check(msgs[i].role, msgs[i].role_len) != msgs[i].role_len ||
            (msgs[i].content && el_utf8_check(msgs[i].content, msgs[i].content_len) != msgs[i].content_len))
            fail(c, SIZE_MAX, EL_E_INVALID, "message %zu is not valid UTF-8", i);
        vdict *d = dict_new(c, 2);
        dict_set(c, d, mk_str("role", 4), mk_str(msgs[i].role, msgs[i].role_len));
        if (msgs[i].content) dict_set(c, d, mk_str("content", 7), mk_str(msgs[i].content, msgs[i].content_len));
        l.u.l->v[i].k = V_DICT;
        l.u.l->v[i].tuple = 0;
        l.u.l->v[i].u.d = d;
    }
    return l;
}

static el_status render_entry(const char *tmpl, size_t tlen, const el_chat_msg *msgs, size_t n,
                              const char *json, size_t mlen, const el_chat_opts *o, void *work,
                              size_t work_cap, char *out, size_t out_cap, size_t *out_len) {
    if (!out_len || (n && !msgs)) return el_errorf(EL_E_USAGE, "el_chat_render: out_len and messages are required");
    *out_len = 0;
    el_status st = check_args(tmpl, work, work_cap, out, out_cap, out_len);
    if (st != EL_OK) return st;
    ctx *c = ctx_at(work, work_cap, o);
    size_t *peak = o ? o->work_peak : NULL;
    if (setjmp(c->jb)) {
        out[0] = 0;
        if (peak) *peak = c->peak + (size_t)(c->mem - (char *)work);
        return el_errorf(c->st, "%s", c->msg);
    }
    const node *body = parse(c, tmpl, tlen);
    st = render(c, body, build_messages(c, msgs, n, json, mlen), o, out, out_cap, out_len);
    if (peak) *peak = c->peak + (size_t)(c->mem - (char *)work);
    return st;
}

el_status el_chat_render(const char *tmpl, size_t tlen, const el_chat_msg *msgs, size_t n,
                         const el_chat_opts *o, void *work, size_t work_cap, char *out,
                         size_t out_cap, size_t *out_len) {
    return render_entry(tmpl, tlen, msgs, n, NULL, 0, o, work, work_cap, out, out_cap, out_len);
}

el_status el_chat_render_json(const char *tmpl, size_t tlen, const char *messages_json,
                              size_t mlen, const el_chat_opts *o, void *work, size_t work_cap,
                              char *out, size_t out_cap, size_t *out_len) {
    if (!messages_json) return el_errorf(EL_E_USAGE, "el_chat_render_json: messages are required");
    return render_entry(tmpl, tlen, NULL, 0, messages_json, mlen, o, work, work_cap, out, out_cap, out_len);
}

el_status el_chat_check(const char *tmpl, size_t tlen, void *work, size_t work_cap) {
    el_status st = check_args(tmpl, work, work_cap, NULL, 0, NULL);
    if (st != EL_OK) return st;
    ctx *c = ctx_at(work, work_cap, NULL);
    if (setjmp(c->jb)) return el_errorf(c->st, "%s", c->msg);
    parse(c, tmpl, tlen);
    return EL_OK;
}
