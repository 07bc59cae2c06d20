// ref_ggml_ops_dump.cpp - built and run by scripts/ref_ggml_ops.py (developer-run): decodes
// one batch of prompt ids with llama.cpp (defaults: flash attention auto, f16 KV cache) and
// writes the f32 graph tensors whose names are listed in $DUMP (comma-separated; a matrix
// product is named mm_<weight name>, and in_mm_<weight name> is its f32 input) to
// $OUT/<name>_<occurrence>.bin, with their shapes on stdout. Usage: ref_ggml_ops_dump
// MODEL.gguf ID...
#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

static std::map<std::string, int> seen;

static bool wanted(const std::string &n) {
    const char *list = getenv("DUMP");
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        if (n == std::string(p, e ? (size_t)(e - p) : strlen(p))) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static void dump(struct ggml_tensor *t, const std::string &n);

static bool on_tensor(struct ggml_tensor *t, bool ask, void *) {
    std::string n = t->name;
    const bool mm = t->op == GGML_OP_MUL_MAT && t->src[0] && t->src[1];
    if (mm) n = std::string("mm_") + t->src[0]->name;
    if (ask) return wanted(n) || (mm && wanted("in_" + n));
    if (mm && wanted("in_" + n) && t->src[1]->type == GGML_TYPE_F32 &&
        ggml_is_contiguous(t->src[1]))
        dump(t->src[1], "in_" + n);
    if (wanted(n) && t->type == GGML_TYPE_F32) dump(t, n);
    return true;
}

static void dump(struct ggml_tensor *t, const std::string &n) {
    std::vector<float> buf(ggml_nelements(t));
    ggml_backend_tensor_get(t, buf.data(), 0, ggml_nbytes(t));
    char path[1024];
    int k = seen[n]++;
    snprintf(path, sizeof path, "%s/%s_%d.bin", getenv("OUT"), n.c_str(), k);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf.data(), sizeof(float), buf.size(), f) != buf.size()) abort();
    fclose(f);
    printf("%s %d %lld %lld %lld\n", n.c_str(), k, (long long)t->ne[0], (long long)t->ne[1],
           (long long)t->ne[2]);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    std::vector<llama_token> ids;
    for (int i = 2; i < argc; i++) ids.push_back(atoi(argv[i]));
    llama_backend_init();
    llama_model *m = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!m) return 1;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.cb_eval = on_tensor;
    cp.cb_eval_user_data = nullptr;
    llama_context *ctx = llama_init_from_model(m, cp);
    if (!ctx) return 1;
    llama_batch b = llama_batch_get_one(ids.data(), (int32_t)ids.size());
    if (llama_decode(ctx, b)) return 1;
    llama_free(ctx);
    llama_model_free(m);
    return 0;
}
