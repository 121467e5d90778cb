// Host entry points of the CPU build of dynapsim.cu: the grid loop a CUDA launch would run.
// Arguments arrive as CUDA's launch API takes them: an array of pointers to the values, in
// kernel-signature order (runner/kernel/kernel_calls.py builds it).
#include <utility>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

// The one-thread build's vector paths, which dynapsim.cu includes through this macro (the
// GPU source holds GPU code only)
#if DYN_NTHREADS == 1
#define DYN_HOST_VECTORS "host_vector.h"
#endif
#include "dynapsim.cu"

#ifdef DYN_THREADED_BLOCKS
#include <memory>
#endif

template <class... A, size_t... I>
static void dyn_call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<A*>(args[I])...);
}

// Subnormal floats flushed to zero, inputs and results (MXCSR FTZ and DAZ), as the GPU build
// runs (CuPy compiles with -ftz=true); the caller's setting is restored afterwards.
struct dyn_flush_subnormals {
#if defined(__SSE__)
    unsigned int saved = _mm_getcsr();
    dyn_flush_subnormals() { _mm_setcsr(saved | 0x8040u); }
    ~dyn_flush_subnormals() { _mm_setcsr(saved); }
#endif
};

#ifdef DYN_THREADED_BLOCKS
// A fiber's stack: the kernel's per-thread arrays (DYN_NPT values each) and its calls, with
// room to spare; allocated once per OS thread and launch, touched only as far as it is used.
constexpr size_t DYN_FIBER_STACK = ((size_t)1 << 20) + (size_t)DYN_NPT * 1024;

namespace {  // this build's own (internal linkage: see portability.h on inline variables)
// The threads of block blockIdx.x as fibers of this OS thread (portability.h), from thread 0
// on, until every one has returned.
template <class... A>
struct dyn_block_run {
    void (*kernel)(A...);
    void** args;
    std::unique_ptr<char[]> stacks{new char[DYN_NTHREADS * DYN_FIBER_STACK]};
    ucontext_t contexts[DYN_NTHREADS], launcher;
    bool done[DYN_NTHREADS];

    static inline thread_local dyn_block_run* current = nullptr;

    static void fiber() {
        dyn_block_run& run = *current;
        dyn_call(run.kernel, run.args, std::index_sequence_for<A...>{});
        run.done[threadIdx.x] = true;
        dyn_fibers& fibers = *dyn_block_fibers;
        fibers.idle = 0;
        if (--fibers.live > 0) dyn_fiber_next();  // never resumed; the last one returns
    }

    void block() {
        dyn_fibers fibers{contexts, done, 1, DYN_NTHREADS, 0};
        dyn_block_fibers = &fibers;
        current = this;
        dyn_block_barrier = {DYN_NTHREADS, 0, 0};
        for (int w = 0; w < DYN_NWARPS; ++w) dyn_warp_barriers[w] = {DYN_WARP, 0, 0};
        for (int t = 0; t < DYN_NTHREADS; ++t) {
            done[t] = false;
            dyn_warp_parity[t] = 0;
            getcontext(&contexts[t]);  // the flushed MXCSR included
            contexts[t].uc_stack.ss_sp = stacks.get() + t * DYN_FIBER_STACK;
            contexts[t].uc_stack.ss_size = DYN_FIBER_STACK;
            contexts[t].uc_link = &launcher;
            makecontext(&contexts[t], &dyn_block_run::fiber, 0);
        }
        threadIdx.x = 0;
        swapcontext(&launcher, &contexts[0]);
    }
};
}  // namespace
#endif

template <class... A>
static void dyn_launch(void (*kernel)(A...), int n_blocks, void** args) {
#pragma omp parallel
    {
        dyn_flush_subnormals flush;
#ifdef DYN_THREADED_BLOCKS
        // threads of a block as fibers, switching at barriers (portability.h)
        auto run = std::make_unique<dyn_block_run<A...>>();
        run->kernel = kernel;
        run->args = args;
#endif
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < n_blocks; ++b) {
            blockIdx.x = (unsigned int)b;
#ifdef DYN_THREADED_BLOCKS
            run->block();
#else
            dyn_call(kernel, args, std::index_sequence_for<A...>{});
#endif
        }
    }
}

extern "C" void dyn_launch_run(int n_blocks, void** args) { dyn_launch(dynapsim_run, n_blocks, args); }
extern "C" void dyn_launch_draw(int n_blocks, void** args) { dyn_launch(dynapsim_draw, n_blocks, args); }

extern "C" void dyn_set_num_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}
