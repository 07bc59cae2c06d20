/* bench_cuda_kernels.c - time per call of the CUDA ops at decode shapes (one token) against
 * the CPU kernel of the same name on one thread, measured in the same run: median
 * milliseconds of each and the ratio cuda / cpu. On a GPU the ratio is below 1 (launch
 * latency dominates shapes this small); under the CPU emulator (-DEL_CUDA_SIM=ON) it is what
 * emulation costs, which says how long a GPU forward pass takes to test there. Each CUDA
 * call is followed by cudaDeviceSynchronize (its queued work runs then).
 *
 * Shapes (--shape tiny|small): tiny is stories260K (dim 64, hidden 172, 8 heads of 8, vocab
 * 512), small is GPT-2 small (dim 768, hidden 3072, 12 heads of 64, vocab 50257); context
 * 128 positions for attention.
 *
 * usage: bench_cuda_kernels [--shape tiny|small] [--reps N] */
#include "bench/bench_util.h"
#include "kernels/cpu/cpu.h"
#include "platform/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"

#include <cuda_runtime_api.h>

typedef struct shape {
    const char *name;
    size_t dim, hidden, heads, head_dim, vocab, ctx;
} shape;

static const shape k_shapes[] = {
    {"tiny", 64, 172, 8, 8, 512, 128},
    {"small", 768, 3072, 12, 64, 50257, 128},
};

typedef struct bufs {
    float *x, *y, *w, *q, *k, *v, *o, *att; /* host */
    float *dx, *dy, *dw, *dq, *dk, *dv, *do_;  /* device */
} bufs;

enum { OP_MATMUL_QKV, OP_MATMUL_UP, OP_MATMUL_VOCAB, OP_RMSNORM, OP_SOFTMAX, OP_ATTENTION, OP_N };
static const char *const k_op_names[OP_N] = {"matmul dim->dim", "matmul dim->hidden",
                                             "matmul dim->vocab", "rmsnorm", "softmax vocab",
                                             "attention 1 row"};

static void run_cpu(int op, el_pool *p, const shape *s, bufs *b) {
    switch (op) {
    case OP_MATMUL_QKV:
        el_cpu_matmul(p, b->y, s->dim, b->x, b->w, EL_DT_F32, 1, s->dim, s->dim);
        break;
    case OP_MATMUL_UP:
        el_cpu_matmul(p, b->y, s->hidden, b->x, b->w, EL_DT_F32, 1, s->dim, s->hidden);
        break;
    case OP_MATMUL_VOCAB:
        el_cpu_matmul(p, b->y, s->vocab, b->x, b->w, EL_DT_F32, 1, s->dim, s->vocab);
        break;
    case OP_RMSNORM: el_cpu_rmsnorm(p, b->y, b->x, b->w, EL_DT_F32, 1, s->dim, 1e-5f); break;
    case OP_SOFTMAX: el_cpu_softmax(p, b->y, s->vocab); break;
    default:
        el_cpu_attention(p, b->o, b->q, b->k, b->v, b->att, s->ctx, 1, s->ctx - 1, s->heads,
                         s->heads, s->head_dim);
        break;
    }
}

static el_status run_cuda(int op, const shape *s, bufs *b) {
    switch (op) {
    case OP_MATMUL_QKV:
        return el_cuda_matmul(b->dy, s->dim, b->dx, b->dw, EL_DT_F32, 1, s->dim, s->dim, NULL);
    case OP_MATMUL_UP:
        return el_cuda_matmul(b->dy, s->hidden, b->dx, b->dw, EL_DT_F32, 1, s->dim, s->hidden,
                              NULL);
    case OP_MATMUL_VOCAB:
        return el_cuda_matmul(b->dy, s->vocab, b->dx, b->dw, EL_DT_F32, 1, s->dim, s->vocab, NULL);
    case OP_RMSNORM:
        return el_cuda_rmsnorm(b->dy, b->dx, b->dw, EL_DT_F32, 1, s->dim, 1e-5f, NULL);
    case OP_SOFTMAX: return el_cuda_softmax(b->dy, 1, s->vocab, NULL);
    default:
        return el_cuda_attention(b->do_, b->dq, b->dk, b->dv, 1, s->ctx - 1, s->heads, s->heads,
                                 s->head_dim, NULL);
    }
}

static void *dev(const float *src, size_t n) {
    void *d = NULL;
    if (cudaMalloc(&d, n * sizeof(float)) != cudaSuccess) return NULL;
    cudaMemcpy(d, src, n * sizeof(float), cudaMemcpyHostToDevice);
    return d;
}

static float *host(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; p && i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}
#endif /* EL_HAVE_CUDA */

int main(int argc, char **argv) {
    const char *shape_name = "tiny";
    int reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape_name = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_cuda_kernels [--shape tiny|small] [--reps N]\n");
            return 1;
        }
    }
    if (reps < 1 || reps > 10000) reps = 20;
#ifndef EL_HAVE_CUDA
    (void)shape_name;
    printf("bench_cuda_kernels: this build has no CUDA (EL_CUDA=ON on a GPU machine, or "
           "EL_CUDA_SIM=ON for the CPU emulator)\n");
    return 0;
#else
    const shape *s = NULL;
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (!strcmp(k_shapes[i].name, shape_name)) s = &k_shapes[i];
    if (!s) {
        fprintf(stderr, "bench_cuda_kernels: unknown shape %s (tiny, small)\n", shape_name);
        return 1;
    }
    el_gpu_info g;
    if (el_gpu_info_get(0, &g) != EL_OK) {
        printf("bench_cuda_kernels: no GPU: %s\n", el_last_error());
        return 0;
    }
    size_t wmax = s->dim * (s->vocab > s->hidden ? s->vocab : s->hidden);
    size_t ymax = s->vocab > s->hidden ? s->vocab : s->hidden;
    size_t kv = s->ctx * s->heads * s->head_dim, qd = s->heads * s->head_dim;
    bufs b = {host(s->dim), host(ymax), host(wmax), host(qd), host(kv), host(kv), host(qd),
              host(s->heads * s->ctx), NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    b.dx = dev(b.x, s->dim);
    b.dy = dev(b.y, ymax);
    b.dw = dev(b.w, wmax);
    b.dq = dev(b.q, qd);
    b.dk = dev(b.k, kv);
    b.dv = dev(b.v, kv);
    b.do_ = dev(b.o, qd);
    if (!b.x || !b.y || !b.w || !b.q || !b.k || !b.v || !b.o || !b.att || !b.dx || !b.dy ||
        !b.dw || !b.dq || !b.dk || !b.dv || !b.do_) {
        fprintf(stderr, "bench_cuda_kernels: out of memory\n");
        return 1;
    }
    el_pool p;
    if (el_pool_init(&p, 1, el_cpu_isa_best()) != EL_OK) return 1;
    printf("bench_cuda_kernels: shape %s on GPU 0: %s (sm_%d%d), CPU kernels on 1 thread (%s), "
           "median of %d\n", s->name, g.name, g.cc_major, g.cc_minor,
           el_isa_name(el_cpu_isa_best()), reps);
    printf("%-20s %12s %12s %10s\n", "op", "cuda ms", "cpu ms", "cuda/cpu");
    double *tc = malloc((size_t)reps * sizeof(double));
    double *tg = malloc((size_t)reps * sizeof(double));
    for (int op = 0; op < OP_N && tc && tg; op++) {
        run_cpu(op, &p, s, &b); /* warm both */
        if (run_cuda(op, s, &b) != EL_OK || cudaDeviceSynchronize() != cudaSuccess) {
            fprintf(stderr, "bench_cuda_kernels: %s: %s\n", k_op_names[op], el_last_error());
            return 1;
        }
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            run_cpu(op, &p, s, &b);
            double t1 = bench_now();
            (void)run_cuda(op, s, &b);
            cudaDeviceSynchronize();
            double t2 = bench_now();
            tc[r] = (t1 - t0) * 1e3;
            tg[r] = (t2 - t1) * 1e3;
        }
        double mc = bench_median(tc, reps), mg = bench_median(tg, reps);
        printf("%-20s %12.4f %12.4f %10.1f\n", k_op_names[op], mg, mc, mc > 0 ? mg / mc : 0.0);
    }
    free(tc);
    free(tg);
    el_pool_deinit(&p);
    cudaFree(b.dx), cudaFree(b.dy), cudaFree(b.dw), cudaFree(b.dq), cudaFree(b.dk),
        cudaFree(b.dv), cudaFree(b.do_);
    free(b.x), free(b.y), free(b.w), free(b.q), free(b.k), free(b.v), free(b.o), free(b.att);
    return 0;
#endif
}
