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
#include <deque>
#include <thread>
#include <vector>
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

template <class... A>
static void dyn_launch(void (*kernel)(A...), int n_blocks, void** args) {
#ifdef DYN_THREADED_BLOCKS
    // Blocks one after another (their __shared__ arrays are static); threads for real, with
    // a barrier per block and one per warp (the warp intrinsics' emulation).
    for (int b = 0; b < n_blocks; ++b) {
        std::barrier<> barrier(DYN_NTHREADS);
        dyn_block_barrier = &barrier;
        std::deque<std::barrier<>> warp_barriers;  // barriers cannot move: no vector
        for (int w = 0; w < DYN_NWARPS; ++w) warp_barriers.emplace_back(DYN_WARP);
        std::vector<dyn_u32> scratch(DYN_NWARPS * 2 * DYN_WARP);  // two halves a warp
        std::vector<std::thread> threads;
        for (unsigned int t = 0; t < DYN_NTHREADS; ++t) {
            threads.emplace_back([=, &warp_barriers, &scratch] {
                dyn_flush_subnormals flush;
                threadIdx.x = t;
                blockIdx.x = (unsigned int)b;
                dyn_warp_barrier = &warp_barriers[t / DYN_WARP];
                dyn_warp_scratch = scratch.data() + t / DYN_WARP * 2 * DYN_WARP;
                dyn_call(kernel, args, std::index_sequence_for<A...>{});
            });
        }
        for (std::thread& thread : threads) thread.join();
    }
#else
#pragma omp parallel
    {
        dyn_flush_subnormals flush;
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < n_blocks; ++b) {
            blockIdx.x = (unsigned int)b;
            dyn_call(kernel, args, std::index_sequence_for<A...>{});
        }
    }
#endif
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
