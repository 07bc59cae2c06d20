// ref_ggml_kquant_op.cpp - built and run by scripts/ref_ggml_kquant.py (developer-run):
// quantizes an f32 matrix with ggml's own quantizer and runs ggml's CPU MUL_MAT on it, the
// weights in a plain CPU context (never repacked, as llama.cpp leaves a Q5_K matrix on x86
// and a Q4_K one whose row count is not a multiple of 8): batches under 8 tokens take
// ggml_vec_dot_<type>_q8_K, from 8 its tiled K-quant matmul.
// Usage: ref_ggml_kquant_op q4_k|q5_k W.f32 ROWS IN X.f32 OUTDIR N...
//   W.f32: [ROWS, IN] f32; X.f32: [max N, IN] f32 (a batch of n: its first n rows);
//   writes OUTDIR/w.bin (the quantized rows as stored) and OUTDIR/out<n>.bin ([n, ROWS] f32).
#include "ggml-cpu.h"
#include "ggml.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static std::vector<float> read_f32(const char *path, size_t n) {
    std::vector<float> v(n);
    FILE *f = fopen(path, "rb");
    if (!f || fread(v.data(), sizeof(float), n, f) != n) abort();
    fclose(f);
    return v;
}

static void write_bytes(const std::string &path, const void *p, size_t n) {
    FILE *f = fopen(path.c_str(), "wb");
    if (!f || fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 8) return 2;
    const ggml_type type = !strcmp(argv[1], "q5_k")   ? GGML_TYPE_Q5_K
                           : !strcmp(argv[1], "q4_k") ? GGML_TYPE_Q4_K
                                                      : GGML_TYPE_COUNT;
    if (type == GGML_TYPE_COUNT) return 2;
    const int64_t rows = atoll(argv[3]), in = atoll(argv[4]);
    std::vector<int> ns;
    for (int i = 7; i < argc; i++) ns.push_back(atoi(argv[i]));
    int nmax = 0;
    for (int n : ns) nmax = n > nmax ? n : nmax;
    const std::vector<float> w = read_f32(argv[2], (size_t)(rows * in));
    const std::vector<float> x = read_f32(argv[5], (size_t)(nmax * in));
    const std::string out = argv[6];
    ggml_cpu_init();
    std::vector<uint8_t> q(ggml_row_size(type, in) * rows);
    ggml_quantize_chunk(type, w.data(), q.data(), 0, rows, in, nullptr);
    write_bytes(out + "/w.bin", q.data(), q.size());
    for (int n : ns) {
        ggml_init_params ip = {q.size() + (size_t)(n * in + n * rows) * 4 * 4 + (64u << 20),
                               nullptr, false};
        ggml_context *ctx = ggml_init(ip);
        ggml_tensor *a = ggml_new_tensor_2d(ctx, type, in, rows);
        ggml_tensor *b = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, in, n);
        memcpy(a->data, q.data(), q.size());
        memcpy(b->data, x.data(), (size_t)(n * in) * sizeof(float));
        ggml_tensor *c = ggml_mul_mat(ctx, a, b); // [rows, n]: c[t][r] = row r . token t
        ggml_cgraph *gf = ggml_new_graph(ctx);
        ggml_build_forward_expand(gf, c);
        if (ggml_graph_compute_with_ctx(ctx, gf, 2) != GGML_STATUS_SUCCESS) return 1;
        write_bytes(out + "/out" + std::to_string(n) + ".bin", c->data,
                    (size_t)(n * rows) * sizeof(float));
        ggml_free(ctx);
    }
    return 0;
}
