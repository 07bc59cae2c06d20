/* rope_freq.h - RoPE inverse frequencies, one definition for the CPU and CUDA table
 * builders (so both rotate by identical angles): the default 1 / theta^(2i / head_dim) in
 * float, as transformers computes it, then the scaling the config names (linear: / factor;
 * llama3: low frequencies / factor, high ones kept, a smooth blend between). */
#ifndef EL_KERNELS_ROPE_FREQ_H
#define EL_KERNELS_ROPE_FREQ_H

#include <math.h>
#include <stddef.h>

#ifdef __CUDACC__
#define EL_HOST_DEVICE __host__ __device__
#else
#define EL_HOST_DEVICE
#endif

typedef enum el_rope_type {
    EL_ROPE_DEFAULT = 0,
    EL_ROPE_LINEAR = 1, /* positions / factor */
    EL_ROPE_LLAMA3 = 2, /* Llama 3.1+: wavelength-dependent */
} el_rope_type;

typedef struct el_rope {
    float theta;             /* base */
    int type;                /* el_rope_type */
    float factor;            /* linear, llama3 */
    float low_freq_factor;   /* llama3 */
    float high_freq_factor;  /* llama3 */
    float original_max_pos;  /* llama3: original_max_position_embeddings */
} el_rope;

static inline EL_HOST_DEVICE float el_rope_inv_freq(el_rope r, size_t i, size_t head_dim) {
    float f = 1.0f / powf(r.theta, (float)(2 * i) / (float)head_dim);
    if (r.type == EL_ROPE_LINEAR) return f / r.factor;
    if (r.type != EL_ROPE_LLAMA3) return f;
    const float two_pi = 6.283185307179586f;
    float wavelen = two_pi / f;
    float low_wl = r.original_max_pos / r.low_freq_factor;   /* longer: scaled */
    float high_wl = r.original_max_pos / r.high_freq_factor; /* shorter: kept */
    if (wavelen < high_wl) return f;
    if (wavelen > low_wl) return f / r.factor;
    float smooth = (r.original_max_pos / wavelen - r.low_freq_factor) /
                   (r.high_freq_factor - r.low_freq_factor);
    return (1.0f - smooth) * f / r.factor + smooth * f;
}

#endif /* EL_KERNELS_ROPE_FREQ_H */
