/* phased.cuh - a phased launch: one persistent kernel that runs the tasks of up to
 * EL_PHASES_MAX phases in order, a phase's tasks only after every task of the phases
 * before it has finished (what two launches on a stream give, in one launch).
 *
 * Each block loops drawing tickets t = atomicAdd(&ctl[0], 1): tickets end[p-1] .. end[p]-1
 * are phase p's tasks, in order. Before a task of phase p > 0 thread 0 waits until ctl[1]
 * (finished tasks) reaches end[p-1]; a task ends with a barrier, then thread 0's
 * __threadfence() and atomicAdd(&ctl[1], 1). Only tasks of tickets below end[p-1] can
 * finish before ctl[1] reaches it, so one counter serves every phase. A waiting ticket waits
 * only on tickets drawn before it by blocks that are running (a block draws only while it
 * runs, and a task never waits on a later one), so any grid size is deadlock-free on a GPU
 * without co-residency, and the emulator, which runs blocks one at a time, has its first
 * block draw every task in order. Each block draws exactly one ticket past the last task and
 * exits; the one that draws end + gridDim.x - 1 is the last alive and sets both words back
 * to 0, so the next launch (or graph replay) finds them so without a launch of its own.
 *
 * Memory ordering: what a phase writes and a later phase reads goes through ordinary loads
 * after the waiter's __threadfence() and the block barrier, never ld.global.nc (__ldg,
 * const __restrict__ kernel parameters): the non-coherent path may serve stale lines within
 * one launch. Weights and what earlier launches wrote may use it. */
#ifndef EL_CUDA_PHASED_CUH
#define EL_CUDA_PHASED_CUH

#include "kernels/cuda/cuda_common.cuh"

#define EL_PHASES_MAX 3

/* end[p]: the tickets of phases 0 .. p (cumulative; a phase of no tasks repeats the end
 * before it): end[EL_PHASES_MAX - 1] tasks in all. */
struct el_phases {
    unsigned end[EL_PHASES_MAX];
};

/* The phase of ticket t < ph.end[EL_PHASES_MAX - 1], *start its first ticket (constant indices: ph
 * stays a kernel parameter). */
static __device__ __forceinline__ int el_phase_of(const el_phases &ph, unsigned t,
                                                  unsigned *start) {
    int p = 0;
    *start = 0;
#pragma unroll
    for (int i = 0; i + 1 < EL_PHASES_MAX; i++)
        if (t >= ph.end[i]) p = i + 1, *start = ph.end[i];
    return p;
}

/* Runs run(phase, task) for every task of ph's phases over the blocks of the grid; ctl: two
 * zero words (device memory), zero again when the launch ends. Every thread of the block
 * calls it; run may use block barriers (every thread reaches them). */
template <typename F>
static __device__ __forceinline__ void el_phased(unsigned *ctl, const el_phases &ph, F &&run) {
    __shared__ unsigned ticket;
    const unsigned total = ph.end[EL_PHASES_MAX - 1];
    for (;;) {
        if (threadIdx.x == 0) {
            const unsigned t = atomicAdd(&ctl[0], 1u);
            if (t == total + gridDim.x - 1) { /* the last block: every other has exited */
                __threadfence(); /* after every block's last count (each fenced below) */
                atomicExch(&ctl[0], 0u);
                atomicExch(&ctl[1], 0u);
            }
            unsigned start;
            el_phase_of(ph, t, &start);
            if (t < total && start) {
                while (*(volatile unsigned *)&ctl[1] < start) {}
                __threadfence();
            }
            ticket = t;
        }
        __syncthreads();
        const unsigned t = ticket;
        if (t >= total) return; /* the whole block */
        unsigned start;
        const int p = el_phase_of(ph, t, &start);
        run(p, t - start);
        __syncthreads(); /* the task's writes, and every thread's read of ticket */
        if (threadIdx.x == 0) {
            __threadfence();
            atomicAdd(&ctl[1], 1u);
            __threadfence(); /* the count before this block's next ticket (the reset's order) */
        }
    }
}

/* Blocks for a phased launch of tasks: enough to fill the device (8 blocks of 256 threads
 * an SM), never more than the tasks. */
static inline unsigned el_phased_grid(unsigned tasks) {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        sms <= 0)
        sms = 1;
    const unsigned cap = 8u * (unsigned)sms;
    return tasks < cap ? tasks : cap;
}

#endif /* EL_CUDA_PHASED_CUH */
