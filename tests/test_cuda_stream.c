/* test_cuda_stream.c - layer streaming on the GPU (issue 21): the generated 16-layer Llama
 * (tests/llama_synth.h) planned in an arena a quarter of its resident plan, on a discrete
 * GPU (device memory: layers read into pinned host slots, copied to the GPU slots on a
 * copy stream) and on a Jetson-like one (ELSIM_INTEGRATED=1, no concurrentManagedAccess:
 * managed memory, the copies on the session's stream, to which the block is attached).
 * Checked in both: the prompt's and each step's logits bit for bit those of the resident
 * run on the same device (the same kernels over the same weight bytes), within the GPU-vs-
 * CPU bound of test_cuda_models (nmse 1e-8) of the CPU's, the same greedy ids as both; each
 * pass reads every layer's stored bytes once (the ring's count); no CUDA reservation after
 * the arena's; a model file truncated under a running session fails the pass naming the
 * file, again on the next pass, and the session ends (I/O thread joined, streams synced)
 * without a hang. The CLI: `plan --cuda-memory device --stream on` prints the bytes per
 * token and the host-to-GPU copy; `generate --device cuda --stream auto --arena A` gives
 * the resident GPU run's ids with VmHWM within the arena + 4 MiB (under the emulator the
 * "device" memory is host memory, so VmHWM counts every byte of the arena). A BERT encoder
 * (hf_bert_cls) streamed on the GPU: hidden states and logits = the resident GPU run's; a
 * GPT-2 (Conv1D weights transposed on the way, as stored and converted to f16) likewise.
 * Under cudasim (not sanitized) the device-memory streamed run once more with the copy and
 * compute streams' work reordered (ELSIM_STREAM_ORDER lifo): its logits bit for bit.
 * Needs a CUDA
 * build and a GPU, or the cudasim build; the Jetson half needs cudasim (or a Jetson). */
// ctest-labels: cuda;model
// ctest-timeout: 300
#include "platform/gpu.h"
#include "tests/support/el_test_cuda.h"
#include "tests/cli_rss.h"
#include "tests/llama_synth.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef EL_CUDA_SIM
#include "cudasim.h"
#endif

#define PROMPT 9
#define STEPS 2
#define NMSE_SAME 1e-8 /* GPU against CPU, same weights (test_cuda_models) */

typedef struct run_out {
    int32_t ids[STEPS];
    float logits[STEPS + 1][VOCAB];
    el_stream_stats init, prompt, tok[STEPS];
    el_plan plan;
    bool ok;
} run_out;

/* A model opened, planned, loaded and a session over it (each NULL where a step failed). */
typedef struct run_ctx {
    el_model *m;
    el_arena *a;
    el_session *s;
} run_ctx;

/* Opens dir, plans it (mode, in arena bytes; 0: the plan's total) in mem, loads it and
 * starts a session (the CPU for host memory, else the GPU). */
static void open_run(const char *dir, el_memory mem, el_dtype dtype, el_stream_mode mode,
                     uint64_t arena, run_ctx *c, el_plan *plan) {
    memset(c, 0, sizeof *c);
    EL_CHECK_OK(el_model_open(dir, NULL, &c->m));
    if (!c->m) return;
    el_plan_params pp = {CTX, 1, dtype, 0, mem, EL_DT_NONE};
    const el_stream_params sp = {mode, 0, 0, false};
    EL_CHECK_OK(el_plan_make(c->m, &pp, plan));
    EL_CHECK_OK(el_plan_stream_ex(c->m, &sp, arena ? arena : plan->total_bytes, plan));
    el_arena_params ap;
    el_plan_arena_params(plan, arena ? arena : plan->total_bytes, 0, &ap);
    ap.memory = mem;
    EL_CHECK_OK(el_plan_check(c->m, plan, ap.size));
    EL_CHECK_OK(el_arena_init(&c->a, &ap));
    const uint64_t reserves = el_gpu_reserve_count();
    const bool loaded = c->a && el_model_load(c->m, plan, c->a, NULL, NULL) == EL_OK;
    EL_CHECK(!c->a || loaded);
    el_session_params sp2 = {2, mem == EL_MEMORY_HOST ? EL_DEVICE_CPU : EL_DEVICE_CUDA, 0, false};
    if (c->a && loaded) EL_CHECK_OK(el_session_init(c->m, c->a, plan, &sp2, &c->s));
    EL_CHECK(el_gpu_reserve_count() == reserves); /* nothing after the arena's */
}

static void close_run(run_ctx *c) {
    el_session_deinit(c->s);
    el_model_close(c->m);
    el_arena_deinit(c->a);
    memset(c, 0, sizeof *c);
}

/* open_run, then a prompt of PROMPT ids and STEPS greedy ids, the ring's counters around
 * each pass. */
static void run(const char *dir, el_memory mem, el_dtype dtype, el_stream_mode mode,
                uint64_t arena, run_out *o) {
    memset(o, 0, sizeof *o);
    run_ctx c;
    open_run(dir, mem, dtype, mode, arena, &c, &o->plan);
    const size_t vocab = c.s ? el_session_vocab(c.s) : 0;
    EL_CHECK(!c.s || (vocab > 0 && vocab <= VOCAB));
    if (!c.s || vocab == 0 || vocab > VOCAB) {
        close_run(&c);
        return;
    }
    const uint64_t reserves = el_gpu_reserve_count();
    int32_t prompt[PROMPT];
    for (size_t i = 0; i < PROMPT; i++) prompt[i] = (int32_t)((i * 37 + 5) % vocab);
    const float *lg = NULL;
    EL_CHECK_OK(el_session_stream_stats(c.s, &o->init));
    EL_CHECK_OK(el_session_forward(c.s, prompt, PROMPT, &lg));
    EL_CHECK_OK(el_session_stream_stats(c.s, &o->prompt));
    for (size_t k = 0; lg && k <= STEPS; k++) {
        memcpy(o->logits[k], lg, vocab * sizeof *lg);
        if (k == STEPS) break;
        o->ids[k] = el_test_argmax(lg, vocab);
        lg = NULL;
        EL_CHECK_OK(el_session_forward(c.s, &o->ids[k], 1, &lg));
        EL_CHECK_OK(el_session_stream_stats(c.s, &o->tok[k]));
    }
    o->ok = lg != NULL;
    close_run(&c);
    EL_CHECK(el_gpu_reserve_count() == reserves);
}

#if defined(EL_CUDA_SIM) && !defined(EL_SANITIZED)
/* The streamed run again with the emulator running the copy and compute streams' work in
 * another legal order (lifo: only the events, stream order and synchronisations keep it in
 * line; a missing wait between the ring's copies and kernels reads a layer before it lands
 * or overwrites one still read): the same ids and logits, bit for bit. One run, not in
 * the sanitizer build (the emulator is ~10x slower there). */
static void check_reordered(const char *what, const char *dir, uint64_t arena,
                            const run_out *want) {
    static run_out got;
    const elsim_stream_order was = elsim_get_stream_order();
    elsim_set_stream_order(ELSIM_STREAMS_LIFO, 1);
    run(dir, EL_MEMORY_CUDA_DEVICE, EL_DT_NONE, EL_STREAM_AUTO, arena, &got);
    elsim_set_stream_order(was, 1);
    const bool same = got.ok && !memcmp(got.ids, want->ids, sizeof got.ids) &&
                      !memcmp(got.logits, want->logits, sizeof got.logits);
    printf("%s: streamed, stream order lifo: %s\n", what,
           same ? "= the submission-order run" : "DIFFERS");
    EL_CHECK(got.plan.streamed && same);
}
#endif

/* Streamed against resident on the device of mem, and against the CPU. */
static void check_device(const char *what, const char *dir, el_memory mem, const run_out *cpu) {
    static run_out res, str;
#ifdef EL_SANITIZED
    /* The emulator under ASan is ~10x slower: the resident GPU run is left out (the CPU's
     * ids and logits still bound the streamed run); only its plan is made. */
    memset(&res, 0, sizeof res);
    el_model *m = NULL;
    el_plan_params pp = {CTX, 1, EL_DT_NONE, 0, mem, EL_DT_NONE};
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (m) EL_CHECK_OK(el_plan_make(m, &pp, &res.plan));
    el_model_close(m);
    memcpy(res.ids, cpu->ids, sizeof res.ids);
    res.ok = true;
#else
    run(dir, mem, EL_DT_NONE, EL_STREAM_OFF, 0, &res);
#endif
    /* A GPU ring holds each slot twice (GPU and host side): the arena is 2/7 of resident. */
    const uint64_t arena = res.plan.total_bytes * 2 / 7;
    run(dir, mem, EL_DT_NONE, EL_STREAM_AUTO, arena, &str);
    const uint64_t layers = bytes_named(dir, "model.layers.");
    printf("%s: resident plan %.2f MiB, streamed %.2f MiB in an arena of %.2f MiB (%u slots "
           "of %.2f MiB, staging %.2f MiB)\n", what, res.plan.total_bytes / MIB,
           str.plan.total_bytes / MIB, arena / MIB, str.plan.stream_slots,
           str.plan.stream_slot_bytes / MIB, str.plan.region_bytes[EL_REGION_STAGING] / MIB);
    EL_CHECK(res.ok && str.ok && !res.plan.streamed);
    EL_CHECK(str.plan.streamed && str.plan.total_bytes <= arena && str.plan.params.memory == mem);
    EL_CHECK(str.plan.stream_pass_bytes == layers);
    if (!res.ok || !str.ok) return;
    EL_CHECK(!memcmp(res.ids, str.ids, sizeof res.ids) && !memcmp(cpu->ids, str.ids, sizeof res.ids));
    /* The prompt's logits against the CPU as test_cuda_models bounds them (decode steps
     * drift further apart with the context: the ids are checked there). */
    const double e = el_test_nmse(str.logits[0], cpu->logits[0], VOCAB);
    printf("%s: prompt logits nmse vs the CPU %.3g (last step %.3g)\n", what, e,
           el_test_nmse(str.logits[STEPS], cpu->logits[STEPS], VOCAB));
    EL_CHECK(e <= NMSE_SAME);
#ifndef EL_SANITIZED
    for (size_t k = 0; k <= STEPS; k++)
        EL_CHECK(!memcmp(str.logits[k], res.logits[k], sizeof str.logits[k]));
#endif
    /* One pass over the streamed layers per forward pass (the ring reads layer 0 ahead at
     * start and after each pass, so the bytes between two points are whole passes). */
    EL_CHECK(str.prompt.bytes_read - str.init.bytes_read == layers);
    uint64_t prev = str.prompt.bytes_read;
    for (size_t k = 0; k < STEPS; k++) {
        EL_CHECK(str.tok[k].bytes_read - prev == layers);
        prev = str.tok[k].bytes_read;
    }
#if defined(EL_CUDA_SIM) && !defined(EL_SANITIZED)
    if (mem == EL_MEMORY_CUDA_DEVICE) check_reordered(what, dir, arena, &str);
#endif
}

/* Layers converted or transposed on the way (GPT-2's Conv1D weights, as stored and loaded
 * as f16) reach the GPU slots as the bytes the resident load gives the GPU: the resident
 * GPU run's logits bit for bit. */
static void check_converted(const char *what, el_memory mem) {
    static run_out res, str;
    char gdir[600];
    llama_synth_gpt2_write(gdir, sizeof gdir);
    static const el_dtype dts[] = {EL_DT_NONE, EL_DT_F16};
    for (size_t i = 0; i < 2; i++) {
        run(gdir, mem, dts[i], EL_STREAM_OFF, 0, &res);
        run(gdir, mem, dts[i], EL_STREAM_ON, 0, &str);
        printf("%s: GPT-2 %s streamed (stage %.1f KiB): %s\n", what,
               dts[i] == EL_DT_NONE ? "as stored" : "as f16", str.plan.stream_stage_bytes / 1024.0,
               res.ok && str.ok && !memcmp(res.logits, str.logits, sizeof res.logits)
                   ? "= resident" : "DIFFERS");
        EL_CHECK(str.plan.streamed && str.plan.stream_layers == 4 && str.plan.stream_stage_bytes);
        EL_CHECK(res.ok && str.ok && !memcmp(res.ids, str.ids, sizeof res.ids) &&
                 !memcmp(res.logits, str.logits, sizeof res.logits));
    }
}

/* The model file cut short under a running streamed session: the pass fails naming it,
 * the next too; the session ends without a hang. */
static void check_truncated(const char *what, el_memory mem) {
    char dir[600], file[700];
    snprintf(dir, sizeof dir, "%s/trunc_%d", el_test_tmpdir(), (int)mem);
    llama_synth_write(dir);
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    el_plan plan;
    run_ctx c;
    open_run(dir, mem, EL_DT_NONE, EL_STREAM_ON, 0, &c, &plan);
    if (c.s) {
        el_stream_stats st;
        EL_CHECK_OK(el_session_stream_stats(c.s, &st)); /* layer 0 is in */
        const float *lg = NULL;
        int32_t prompt[PROMPT];
        for (size_t i = 0; i < PROMPT; i++) prompt[i] = (int32_t)((i * 37 + 5) % VOCAB);
        EL_CHECK(truncate(file, 4 << 20) == 0); /* the first layer or two */
        for (int pass = 0; pass < 2; pass++) {
            el_status s = el_session_forward(c.s, prompt, PROMPT, &lg);
            printf("%s, truncated file, pass %d: %s: %s\n", what, pass, el_status_str(s),
                   el_last_error());
            EL_CHECK(s != EL_OK && strstr(el_last_error(), "model.safetensors") &&
                     strstr(el_last_error(), "truncated"));
        }
    }
    close_run(&c);
#ifdef EL_CUDA_SIM
    elsim_stats q;
    elsim_stats_get(&q);
    EL_CHECK(q.pending == 0); /* every stream's work ran at the end */
#endif
}

/* The CLI on the GPU of the current configuration (cuda_memory: device or managed): plan,
 * then with runs, generate (not under sanitizers: their runtimes' memory voids the VmHWM
 * bound, and the emulated CLI runs cost minutes there; the ids are checked in-process). */
static void check_cli(const char *dir, const char *cuda_memory, bool runs) {
#ifdef EL_SANITIZED
    runs = false;
#endif
    char args[1600];
    snprintf(args, sizeof args, "plan '%s' --tokenizer '%s' --ctx %d --stream on --cuda-memory "
             "%s --json", dir, TOK, CTX, cuda_memory);
    cJSON *p = cli_json(args);
    EL_CHECK(p != NULL);
    const uint64_t layers = bytes_named(dir, "model.layers.");
    const cJSON *memv = p ? cJSON_GetObjectItemCaseSensitive(p, "memory") : NULL;
    EL_CHECK(cJSON_IsString(memv) && !strcmp(memv->valuestring, cuda_memory));
    EL_CHECK(num(p, "stream_bytes_per_token") == (double)layers);
    EL_CHECK(num(p, "stream_copy_bytes_per_token") >= (double)layers);
    const double streamed = p ? num(p, "total") : -1;
    cJSON_Delete(p);
    if (!runs) return;
    snprintf(args, sizeof args, "plan '%s' --tokenizer '%s' --ctx %d --cuda-memory %s --json",
             dir, TOK, CTX, cuda_memory);
    cJSON *q = cli_json(args);
    const double resident = q ? num(q, "total") : -1;
    cJSON_Delete(q);
    /* The CPU resident, the GPU resident, the GPU streamed in the streamed plan's total. */
    cJSON *j[3];
    for (int k = 0; k < 3; k++) {
        char extra[160] = "--device cpu";
        if (k) snprintf(extra, sizeof extra, "--device cuda --cuda-memory %s", cuda_memory);
        if (k == 2) snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
                             " --stream auto --arena %lluK",
                             (unsigned long long)(streamed / 1024 + 1));
        snprintf(args, sizeof args, "generate '%s' --tokenizer '%s' --ctx %d -p 'Once upon a "
                 "time' -n 3 --temp 0 --threads 2 --json %s", dir, TOK, CTX, extra);
        j[k] = cli_json(args);
        EL_CHECK(j[k] != NULL);
    }
    if (j[0] && j[1] && j[2]) {
        double out[3];
        for (int k = 0; k < 3; k++)
            out[k] = num(j[k], "memory.vm_hwm") - num(j[k], "memory.arena.reserved");
        const double hwm = num(j[2], "memory.vm_hwm"), reserved = num(j[2], "memory.arena.reserved");
        /* The emulator's own memory (fiber stacks, shared memory: what a GPU's CUDA context
         * is on a real device, reported apart): the GPU resident run's peak outside its
         * arena less the CPU's. */
        const double emu = out[1] > out[0] ? out[1] - out[0] : 0;
        const double bound = reserved + (double)SLACK + emu;
        printf("cli %s: streamed arena %.2f MiB (resident plan %.2f MiB), VmHWM %.2f MiB, "
               "bound %.2f MiB (arena + 4 MiB + the emulator's %.2f MiB); outside the arena: "
               "cpu %.2f, gpu resident %.2f, gpu streamed %.2f MiB\n", cuda_memory,
               reserved / MIB, resident / MIB, hwm / MIB, bound / MIB, emu / MIB, out[0] / MIB,
               out[1] / MIB, out[2] / MIB);
        EL_CHECK(reserved > 0 && reserved * 3 < resident);
        EL_CHECK(hwm > 0 && (!RSS_CHECK || hwm <= bound));
        char *ids[3];
        for (int k = 0; k < 3; k++)
            ids[k] = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j[k], "ids"));
        EL_CHECK(ids[1] && ids[2] && !strcmp(ids[1], ids[2]));
        for (int k = 0; k < 3; k++) free(ids[k]);
    }
    for (int k = 0; k < 3; k++) cJSON_Delete(j[k]);
}

/* A BERT encoder streamed on the GPU (transformers' tiny hf_bert_cls, 2 layers): the hidden
 * states of a padded batch of 3 and the classifier's logits, bit for bit the resident GPU
 * run's. */
#define BERT_BATCH 3
#define BERT_SEQ 16
typedef struct enc_out {
    float hidden[BERT_BATCH * BERT_SEQ * 64];
    float logits[BERT_BATCH * 8];
    bool streamed, ok;
} enc_out;

static void encode(el_memory mem, el_stream_mode mode, enc_out *o) {
    memset(o, 0, sizeof *o);
    el_model *m = NULL;
    el_arena *a = NULL;
    el_encoder *e = NULL;
    EL_CHECK_OK(el_model_open(EL_SOURCE_DIR "/tests/fixtures/hf_bert_cls", NULL, &m));
    if (!m) return;
    el_plan_params pp = {BERT_SEQ, BERT_BATCH, EL_DT_NONE, 0, mem, EL_DT_NONE};
    const el_stream_params sp = {mode, 0, 0, false};
    el_plan p;
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    EL_CHECK_OK(el_plan_stream_ex(m, &sp, p.total_bytes, &p));
    o->streamed = p.streamed;
    a = el_test_arena(&p, mem);
    if (a) EL_CHECK_OK(el_model_load(m, &p, a, NULL, NULL));
    el_encoder_params ep = {1, EL_DEVICE_CUDA};
    if (a) EL_CHECK_OK(el_encoder_init(m, a, &p, &ep, &e));
    if (e && el_encoder_dim(e) <= 64 && el_encoder_labels(e) <= 8) {
        int32_t ids[BERT_BATCH * BERT_SEQ], types[BERT_BATCH * BERT_SEQ];
        const uint32_t lengths[BERT_BATCH] = {5, BERT_SEQ, 9};
        for (size_t i = 0; i < BERT_BATCH * BERT_SEQ; i++) {
            ids[i] = (int32_t)((i * 37 + 3) % 20);
            types[i] = (int32_t)(i % BERT_SEQ > 3);
        }
        const float *h = NULL;
        EL_CHECK_OK(el_encode(e, ids, types, lengths, BERT_BATCH, BERT_SEQ, &h));
        if (h) memcpy(o->hidden, h, sizeof(float) * BERT_BATCH * BERT_SEQ * el_encoder_dim(e));
        EL_CHECK_OK(el_classify(e, ids, types, lengths, BERT_BATCH, BERT_SEQ, o->logits, NULL,
                                BERT_BATCH * 8));
        o->ok = h != NULL;
    }
    el_encoder_deinit(e);
    el_model_close(m);
    el_arena_deinit(a);
}

static void check_bert(el_memory mem) {
    static enc_out res, str;
    encode(mem, EL_STREAM_OFF, &res);
    encode(mem, EL_STREAM_ON, &str);
    EL_CHECK(res.ok && str.ok && !res.streamed && str.streamed);
    EL_CHECK(!memcmp(&res.hidden, &str.hidden, sizeof res.hidden) &&
             !memcmp(&res.logits, &str.logits, sizeof res.logits));
}

int main(void) {
    el_gpu_info g;
    el_test_cuda_require("test_cuda_stream", "streamed GPU runs", &g);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/llama16", el_test_tmpdir());
    llama_synth_write(dir);
    static run_out cpu;
    run(dir, EL_MEMORY_HOST, EL_DT_NONE, EL_STREAM_OFF, 0, &cpu);
    EL_CHECK(cpu.ok);
    if (!g.integrated) {
        fprintf(stderr, "== discrete GPU: device memory, pinned host slots, a copy stream\n");
        check_device("device memory", dir, EL_MEMORY_CUDA_DEVICE, &cpu);
        check_bert(EL_MEMORY_CUDA_DEVICE);
        check_converted("device memory", EL_MEMORY_CUDA_DEVICE);
        check_truncated("device memory", EL_MEMORY_CUDA_DEVICE);
        check_cli(dir, "device", true);
    }
    el_test_cuda_sim_jetson(&g);
    if (g.managed && !g.concurrent_managed) {
        fprintf(stderr, "== Jetson-like GPU: managed memory attached to the session's stream\n");
        check_device("managed memory (no concurrent access)", dir, EL_MEMORY_CUDA_MANAGED, &cpu);
        check_bert(EL_MEMORY_CUDA_MANAGED);
        check_converted("managed memory", EL_MEMORY_CUDA_MANAGED);
        check_truncated("managed memory", EL_MEMORY_CUDA_MANAGED);
        check_cli(dir, "managed", false); /* the generate runs: the device half */
    } else {
        fprintf(stderr, "the Jetson half needs a device without concurrentManagedAccess (a "
                        "Jetson, or the cudasim build)\n");
    }
    return el_test_finish("test_cuda_stream");
}
