/* el_test.h - the tiny test harness every tests/test_*.c uses: checks that count and
 * continue, a closing "N passed, N failed" line, skips (exit 77), temp folders, and
 * helpers that write safetensors files. */
#ifndef EL_TEST_H
#define EL_TEST_H

#include "edgeload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int el_test_passed;
extern int el_test_failed;

#define EL_CHECK(cond)                                                                  \
    do {                                                                                \
        if (cond) {                                                                     \
            el_test_passed++;                                                           \
        } else {                                                                        \
            el_test_failed++;                                                           \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
        }                                                                               \
    } while (0)

/* Checks a status and prints el_last_error() when it differs. */
#define EL_CHECK_STATUS(expr, want)                                                     \
    do {                                                                                \
        el_status el_got_ = (expr);                                                     \
        if (el_got_ == (want)) {                                                        \
            el_test_passed++;                                                           \
        } else {                                                                        \
            el_test_failed++;                                                           \
            fprintf(stderr, "FAIL %s:%d: %s = %s, want %s (%s)\n", __FILE__, __LINE__,  \
                    #expr, el_status_str(el_got_), el_status_str(want), el_last_error());\
        }                                                                               \
    } while (0)

#define EL_CHECK_OK(expr) EL_CHECK_STATUS(expr, EL_OK)

/* Prints "<name>: N passed, N failed" and returns the exit code (0 iff none failed). */
int el_test_finish(const char *name);
/* Prints a reason and exits 77 (ctest reports the test skipped). */
void el_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* An arena for the plan: its total bytes and regions, in memory (EL_MEMORY_HOST for the CPU).
 * NULL, with a failed check, when el_arena_init refuses; the caller deinits it. */
el_arena *el_test_arena(const el_plan *plan, el_memory memory);

/* xorshift64 (shifts 13, 7, 17): advances *state (nonzero) and returns the new state: the
 * tests' seeded random inputs, each test with its own state. */
uint64_t el_test_xorshift64(uint64_t *state);
/* A float in [-1, 1) from the top 24 bits of the next state (exact in f32). */
float el_test_frand(uint64_t *state);

/* max |a[i] - b[i]| over n floats. */
float el_test_max_abs_diff(const float *a, const float *b, size_t n);
/* Index of the largest of n >= 1 floats, the first on a tie (the greedy sampler's pick). */
int32_t el_test_argmax(const float *x, size_t n);

/* A fresh empty temp folder under $TMPDIR (or /tmp), removed by el_test_tmpdir_cleanup.
 * Returns the path (static storage). */
const char *el_test_tmpdir(void);
void el_test_tmpdir_cleanup(void);
/* path = dir + "/" + name into a static rotating buffer (8 slots). */
const char *el_test_path(const char *name);

/* Writes bytes to path; returns false on failure. */
bool el_test_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (malloc'd, NUL-terminated); NULL on failure. Test code only. */
char *el_test_read_file(const char *path, size_t *n);

/* The bytes of hex string h (pairs of hex digits): malloc'd and NUL-terminated with *n bytes
 * (NULL if out of memory), or the first up to cap of them into out, returning how many. */
char *el_test_unhex(const char *h, size_t *n);
size_t el_test_unhex_into(const char *h, char *out, size_t cap);

/* A safetensors file from a JSON header string and a data section: writes
 * u64le(len(json)) + json + data. */
bool el_test_write_safetensors_raw(const char *path, const char *json, const void *data,
                                   size_t data_len);

/* Spec of one tensor for el_test_write_safetensors: data is filled with a deterministic
 * pattern from seed (for f32: values in [-1, 1); for others: bytes). */
typedef struct el_test_tensor {
    const char *name;
    el_dtype dtype;
    uint32_t ndim;
    uint64_t shape[EL_MAX_DIMS];
} el_test_tensor;

/* Writes a valid safetensors file with the tensors in order, contiguous. */
bool el_test_write_safetensors(const char *path, const el_test_tensor *t, size_t n,
                               uint32_t seed);
/* Fills buf (nbytes) with the data el_test_write_safetensors stores for tensor number
 * tensor_index under seed: floats (F32/F16/BF16/F64) in [-1, 1), other dtypes bytes.
 * Tests regenerate it to check loads byte for byte, in chunks (offset = byte offset in
 * the tensor, a multiple of the element size). */
void el_test_fill(uint32_t seed, size_t tensor_index, el_dtype dt, uint64_t offset,
                  void *buf, uint64_t nbytes);

/* Normalised mean squared error sum (got - want)^2 / sum want^2 (the plain sum when want is
 * all zero): how the CUDA tests compare the GPU with the CPU. */
double el_test_nmse(const float *got, const float *want, size_t n);

/* Peak RSS (VmHWM) in bytes, 0 if unknown. */
uint64_t el_test_vmhwm(void);

/* The shared models folder ($EL_SHARED_MODELS, else EL_SOURCE_DIR/../shared/models);
 * NULL if it does not exist. */
const char *el_test_shared_models(void);

/* Runs the CLI (path from $EL_CLI) with args through /bin/sh, capturing stdout and stderr
 * into malloc'd strings (either may be NULL to discard). Returns the exit code, or -1. */
int el_test_run_cli(const char *args, char **out, char **err);

#endif /* EL_TEST_H */
