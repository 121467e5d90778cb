// Host entry points of the CPU build of dynapsim.cu: the grid loop a CUDA launch would run.
// Arguments arrive as CUDA's launch API takes them: an array of pointers to the values, in
// kernel-signature order (runner/backends/_kernel_args.py builds it).
#include <utility>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "dynapsim.cu"

#ifdef DYN_THREADED_BLOCKS
#include <thread>
#include <vector>
#endif

template <class... A, size_t... I>
static void dyn_call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<A*>(args[I])...);
}

template <class... A>
static void dyn_launch(void (*kernel)(A...), int n_blocks, void** args) {
#ifdef DYN_THREADED_BLOCKS
    // Blocks one after another (their __shared__ arrays are static); threads for real.
    for (int b = 0; b < n_blocks; ++b) {
        std::barrier<> barrier(DYN_NTHREADS);
        dyn_block_barrier = &barrier;
        std::vector<std::thread> threads;
        for (unsigned int t = 0; t < DYN_NTHREADS; ++t) {
            threads.emplace_back([=] {
                threadIdx.x = t;
                blockIdx.x = (unsigned int)b;
                dyn_call(kernel, args, std::index_sequence_for<A...>{});
            });
        }
        for (std::thread& thread : threads) thread.join();
    }
#else
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < n_blocks; ++b) {
        blockIdx.x = (unsigned int)b;
        dyn_call(kernel, args, std::index_sequence_for<A...>{});
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
