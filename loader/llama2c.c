/* llama2c.c - llama2.c legacy checkpoints: a 7 x int32 header, then fp32 arrays stacked over
 * layers. We validate the header against the exact file size and synthesise a tensor table
 * with Hugging Face Llama names that point at per-layer slices of the stacked arrays, so the
 * planner, the loader and the llama family see the same thing as for an HF folder. */
#include "loader/model_impl.h"

#include <stdio.h>
#include <string.h>

#define L2C_HEADER_BYTES 28u
/* Upper bounds well above any published llama2.c-format model; they keep every product
 * below 2^63 and reject files that merely start with small integers. */
#define L2C_MAX_DIM (1u << 16)
#define L2C_MAX_HIDDEN (1u << 18)
#define L2C_MAX_LAYERS 1024u
#define L2C_MAX_VOCAB (1u << 21)
#define L2C_MAX_SEQ (1u << 20)

typedef struct l2c_header {
    int32_t dim;        /* model width */
    int32_t hidden_dim; /* FFN width */
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t vocab_size; /* negative: the classifier is stored separately (untied) */
    int32_t seq_len;    /* maximum positions */
} l2c_header;

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void parse_header(const uint8_t head[L2C_HEADER_BYTES], l2c_header *h) {
    h->dim = rd_i32(head + 0);
    h->hidden_dim = rd_i32(head + 4);
    h->n_layers = rd_i32(head + 8);
    h->n_heads = rd_i32(head + 12);
    h->n_kv_heads = rd_i32(head + 16);
    h->vocab_size = rd_i32(head + 20);
    h->seq_len = rd_i32(head + 24);
}

static bool in_range(int32_t v, uint32_t max) { return v >= 1 && (uint32_t)v <= max; }

/* Returns NULL if the header is valid, else a static description of the first problem. */
static const char *header_problem(const l2c_header *h) {
    if (!in_range(h->dim, L2C_MAX_DIM)) return "dim must be in 1..65536";
    if (!in_range(h->hidden_dim, L2C_MAX_HIDDEN)) return "hidden_dim must be in 1..262144";
    if (!in_range(h->n_layers, L2C_MAX_LAYERS)) return "n_layers must be in 1..1024";
    if (!in_range(h->n_heads, (uint32_t)h->dim)) return "n_heads must be in 1..dim";
    if (h->dim % h->n_heads) return "dim must be a multiple of n_heads";
    if ((h->dim / h->n_heads) % 2) return "head size (dim / n_heads) must be even for RoPE";
    if (!in_range(h->n_kv_heads, (uint32_t)h->n_heads)) return "n_kv_heads must be in 1..n_heads";
    if (h->n_heads % h->n_kv_heads) return "n_heads must be a multiple of n_kv_heads";
    if (h->vocab_size == 0 || h->vocab_size < -(int32_t)L2C_MAX_VOCAB ||
        h->vocab_size > (int32_t)L2C_MAX_VOCAB)
        return "vocab_size must be non-zero with |vocab_size| <= 2097152";
    if (!in_range(h->seq_len, L2C_MAX_SEQ)) return "seq_len must be in 1..1048576";
    return NULL;
}

bool el_llama2c_detect(const uint8_t head[28], uint64_t file_size) {
    if (file_size < L2C_HEADER_BYTES) return false;
    l2c_header h;
    parse_header(head, &h);
    return header_problem(&h) == NULL;
}

/* The stacked arrays of a checkpoint, in file order. Shapes are per layer when stacked. */
enum {
    A_EMBED, A_RMS_ATT, A_WQ, A_WK, A_WV, A_WO, A_RMS_FFN, A_W1, A_W2, A_W3, A_RMS_FINAL,
    A_FREQ_REAL, A_FREQ_IMAG, A_WCLS, A_COUNT
};

typedef struct l2c_array {
    const char *hf_name;  /* full name, or the part after "model.layers.N." when stacked;
                             NULL = skipped (RoPE tables: we compute our own) */
    bool stacked;         /* one slice per layer */
    uint64_t rows, cols;  /* shape of one slice ([out, in] for projections) */
    uint64_t offset;      /* absolute file offset of the array */
    uint64_t slice_bytes; /* bytes of one slice */
} l2c_array;

el_status el_llama2c_read(el_model *m) {
    el_file *f = &m->files[0];
    uint8_t head[L2C_HEADER_BYTES];
    if (f->size < L2C_HEADER_BYTES)
        return el_errorf(EL_E_INVALID, "%s: %llu bytes, too small for a llama2.c header (28)",
                         f->path, (unsigned long long)f->size);
    el_status s = el_file_read_at(f, head, sizeof head, 0);
    if (s != EL_OK) return s;
    l2c_header h;
    parse_header(head, &h);
    const char *why = header_problem(&h);
    if (why)
        return el_errorf(EL_E_INVALID,
                         "%s: llama2.c header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                         "n_kv_heads %d, vocab_size %d, seq_len %d): %s",
                         f->path, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads,
                         h.vocab_size, h.seq_len, why);

    const uint64_t dim = (uint64_t)h.dim, hidden = (uint64_t)h.hidden_dim;
    const uint64_t layers = (uint64_t)h.n_layers, seq = (uint64_t)h.seq_len;
    const bool tied = h.vocab_size > 0;
    const uint64_t vocab = tied ? (uint64_t)h.vocab_size : (uint64_t)(-(int64_t)h.vocab_size);
    const uint64_t head_size = dim / (uint64_t)h.n_heads;
    const uint64_t kv_dim = head_size * (uint64_t)h.n_kv_heads;

    l2c_array a[A_COUNT] = {
        [A_EMBED] = {"model.embed_tokens.weight", false, vocab, dim, 0, 0},
        [A_RMS_ATT] = {"input_layernorm.weight", true, 1, dim, 0, 0},
        [A_WQ] = {"self_attn.q_proj.weight", true, dim, dim, 0, 0},
        [A_WK] = {"self_attn.k_proj.weight", true, kv_dim, dim, 0, 0},
        [A_WV] = {"self_attn.v_proj.weight", true, kv_dim, dim, 0, 0},
        [A_WO] = {"self_attn.o_proj.weight", true, dim, dim, 0, 0},
        [A_RMS_FFN] = {"post_attention_layernorm.weight", true, 1, dim, 0, 0},
        [A_W1] = {"mlp.gate_proj.weight", true, hidden, dim, 0, 0},
        [A_W2] = {"mlp.down_proj.weight", true, dim, hidden, 0, 0},
        [A_W3] = {"mlp.up_proj.weight", true, hidden, dim, 0, 0},
        [A_RMS_FINAL] = {"model.norm.weight", false, 1, dim, 0, 0},
        [A_FREQ_REAL] = {NULL, false, seq, head_size / 2, 0, 0},
        [A_FREQ_IMAG] = {NULL, false, seq, head_size / 2, 0, 0},
        [A_WCLS] = {"lm_head.weight", false, vocab, dim, 0, 0},
    };
    /* The bounds in header_problem keep every product here far below 2^64, but the sizes
     * still go through the checked helpers: the bounds may change, the checks stay. */
    uint64_t off = L2C_HEADER_BYTES;
    for (int i = 0; i < A_COUNT; i++) {
        if (i == A_WCLS && tied) continue;
        uint64_t n, bytes;
        if (!el_mul_u64(a[i].rows, a[i].cols, &n) || !el_mul_u64(n, 4, &a[i].slice_bytes) ||
            !el_mul_u64(a[i].slice_bytes, a[i].stacked ? layers : 1, &bytes))
            return el_errorf(EL_E_INVALID, "%s: llama2.c header implies sizes past 2^64",
                             f->path);
        a[i].offset = off;
        if (!el_add_u64(off, bytes, &off))
            return el_errorf(EL_E_INVALID, "%s: llama2.c header implies sizes past 2^64",
                             f->path);
    }
    if (off != f->size)
        return el_errorf(EL_E_INVALID,
                         "%s: size %llu, header implies %llu (dim %d, hidden_dim %d, "
                         "n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d%s): "
                         "the file is %s",
                         f->path, (unsigned long long)f->size, (unsigned long long)off, h.dim,
                         h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size,
                         h.seq_len, tied ? "" : ", untied classifier",
                         f->size < off ? "truncated" : "longer than its header says");

    /* Tensor table in file order. */
    char name[128];
    for (int i = 0; i < A_COUNT; i++) {
        if (!a[i].hf_name || (i == A_WCLS && tied)) continue;
        uint64_t nslices = a[i].stacked ? layers : 1;
        for (uint64_t l = 0; l < nslices; l++) {
            el_tensor t;
            memset(&t, 0, sizeof t);
            if (a[i].stacked)
                snprintf(name, sizeof name, "model.layers.%u.%s", (unsigned)l, a[i].hf_name);
            else
                snprintf(name, sizeof name, "%s", a[i].hf_name);
            t.name = name;
            t.dtype = EL_DT_F32;
            t.loaded_dtype = EL_DT_F32;
            if (a[i].rows == 1) { /* norms are vectors */
                t.ndim = 1;
                t.shape[0] = a[i].cols;
            } else {
                t.ndim = 2;
                t.shape[0] = a[i].rows;
                t.shape[1] = a[i].cols;
            }
            t.nbytes = a[i].slice_bytes;
            t.file = 0;
            t.offset = a[i].offset + l * a[i].slice_bytes;
            if ((s = el_tensor_table_push(&m->tensors, &t)) != EL_OK) return s;
        }
    }

    el_config *c = &m->config;
    snprintf(c->model_type, sizeof c->model_type, "llama");
    snprintf(c->architecture, sizeof c->architecture, "LlamaForCausalLM");
    snprintf(c->hidden_act, sizeof c->hidden_act, "silu");
    c->hidden_size = (uint32_t)dim;
    c->intermediate_size = (uint32_t)hidden;
    c->num_layers = (uint32_t)layers;
    c->num_heads = (uint32_t)h.n_heads;
    c->num_kv_heads = (uint32_t)h.n_kv_heads;
    c->head_dim = (uint32_t)head_size;
    c->vocab_size = (uint32_t)vocab;
    c->max_positions = (uint32_t)seq;
    c->norm_eps = 1e-5;
    c->rope_theta = 10000.0;
    c->tie_word_embeddings = tied;
    c->has_tie_word_embeddings = true;
    c->bos_token_id = 1;
    c->eos_token_id = 2;
    c->pad_token_id = -1;
    m->has_config = true;
    m->flags |= EL_MODEL_ROPE_INTERLEAVED;
    snprintf(m->format, sizeof m->format, "llama2c");
    return EL_OK;
}
