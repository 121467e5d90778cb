// One kernel source, two targets: this header maps the CUDA vocabulary the kernel uses onto
// plain C++ when the file is compiled by the host compiler (runner/kernel/backends/cpu.py).
//
// Host builds:
//   default            one thread per block (NPT = N), blocks spread over cores by OpenMP;
//                      __syncthreads() is a no-op and __shared__ arrays live on the stack.
//   DYN_THREADED_BLOCKS each block runs DYN_NTHREADS threads as fibers that switch at
//                      barriers; __syncthreads() is a barrier of the block's fibers and
//                      __shared__ arrays are static per OS thread, so blocks still spread
//                      over cores. Warps of DYN_WARP threads (32 unless a test build picks
//                      fewer) get __ballot_sync, __shfl_sync and __shfl_up_sync emulated
//                      through per-warp scratch and a per-warp barrier. A test build that
//                      executes the GPU's multi-thread path, warp intrinsics included.
#pragma once

#ifndef DYN_WARP
#define DYN_WARP 32
#endif
#define DYN_FULL_MASK 0xFFFFFFFFu

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)

#define DYN_FN static __device__ __forceinline__
#define DYN_SIMD _Pragma("unroll")
#define DYN_DYNAMIC_INDEX 0  // register arrays: index them with compile-time k only
typedef unsigned int dyn_u32;
typedef unsigned long long dyn_u64;
typedef long long dyn_i64;

DYN_FN dyn_u64 dyn_bits(double x) { return (dyn_u64)__double_as_longlong(x); }
DYN_FN double dyn_double(dyn_u64 b) { return __longlong_as_double((long long)b); }
DYN_FN dyn_u32 dyn_float_bits(float x) { return __float_as_uint(x); }
DYN_FN float dyn_float(dyn_u32 b) { return __uint_as_float(b); }
#define DYN_DYNAMIC_SHARED(type, name, count) extern __shared__ __align__(16) type name[]
#define DYN_LAUNCH_BOUNDS __launch_bounds__(DYN_NTHREADS)

#else  // host C++

#include <math.h>
#include <string.h>

// glibc's vector expf/logf (libmvec) are declared only under -ffast-math; declaring them
// here lets `#pragma omp simd` loops call them without fast-math's changes to the results.
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float) noexcept;
__attribute__((simd("notinbranch"))) float logf(float) noexcept;
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define DYN_FN static inline __attribute__((always_inline))
#define DYN_SIMD _Pragma("omp simd")
#define DYN_DYNAMIC_INDEX 1
#define DYN_LAUNCH_BOUNDS
typedef unsigned int dyn_u32;
typedef unsigned long long dyn_u64;
typedef long long dyn_i64;

DYN_FN dyn_u64 dyn_bits(double x) {
    dyn_u64 b;
    memcpy(&b, &x, sizeof b);
    return b;
}
DYN_FN double dyn_double(dyn_u64 b) {
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}
DYN_FN dyn_u32 dyn_float_bits(float x) {
    dyn_u32 b;
    memcpy(&b, &x, sizeof b);
    return b;
}
DYN_FN float dyn_float(dyn_u32 b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

struct dyn_dim3 {
    unsigned int x, y, z;
};
inline thread_local dyn_dim3 blockIdx{0, 0, 0};

// The dynamic shared memory of a launch: sized at compile time on the host.
#define DYN_DYNAMIC_SHARED(type, name, count) alignas(16) __shared__ type name[count]

#ifdef DYN_THREADED_BLOCKS
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

// The threads of a block are fibers on one OS thread (host.cpp: dyn_block_run). A fiber runs
// until it waits at a barrier, then hands the OS thread to the next live fiber; the order of
// hand-over reverses at every barrier release, so that code missing a barrier reads what
// another thread has not yet written (or overwrote) whichever of the two comes first in the
// thread order. Blocks run on OpenMP threads in parallel, each with its own shared memory.
struct dyn_fiber_barrier {
    int expected, arrived;
    unsigned generation;
};
struct dyn_fibers {  // one block's threads
    ucontext_t* contexts;  // one per thread
    bool* done;
    int direction;  // +1 or -1: the next fiber to run
    int live;       // fibers that have not returned
    int idle;       // hand-overs since a fiber last arrived at a barrier: a deadlock past 2T
};
// static, not inline: each build its own, sized by its DYN_WARP. GCC gives inline variables
// unique symbols that the dynamic linker merges across every build a process loads, so a
// build with warps of 32 would otherwise write into the arrays of a build of warps of 4.
static thread_local dyn_dim3 threadIdx{0, 0, 0};  // of the fiber running
static thread_local dyn_fibers* dyn_block_fibers = nullptr;
static thread_local dyn_fiber_barrier dyn_block_barrier;
static thread_local dyn_fiber_barrier dyn_warp_barriers[DYN_WARP];  // at most DYN_WARP warps
static thread_local dyn_u32 dyn_warp_scratch[DYN_WARP][2 * DYN_WARP];  // two halves a warp
static thread_local unsigned char dyn_warp_parity[DYN_WARP * DYN_WARP];  // a thread's next half
#define __shared__ static thread_local

// Hand the OS thread to the next live fiber in the current direction (none: stay).
DYN_FN void dyn_fiber_next() {
    dyn_fibers& fibers = *dyn_block_fibers;
    const int from = (int)threadIdx.x, n = DYN_NTHREADS;
    int to = from;
    do to = (to + fibers.direction + n) % n;
    while (fibers.done[to] && to != from);
    if (to == from) return;
    threadIdx.x = (unsigned int)to;
    swapcontext(&fibers.contexts[from], &fibers.contexts[to]);
}

DYN_FN void dyn_arrive_and_wait(dyn_fiber_barrier& barrier) {
    dyn_fibers& fibers = *dyn_block_fibers;
    fibers.idle = 0;
    const unsigned generation = barrier.generation;
    if (++barrier.arrived == barrier.expected) {
        barrier.arrived = 0;
        ++barrier.generation;
        fibers.direction = -fibers.direction;
        return;
    }
    while (barrier.generation == generation) {
        if (++fibers.idle > 2 * DYN_NTHREADS) {
            fprintf(stderr, "dynapsim threaded build: block %u deadlocked at a barrier\n",
                    blockIdx.x);
            abort();
        }
        dyn_fiber_next();
    }
}
#define __syncthreads() dyn_arrive_and_wait(dyn_block_barrier)

// This warp's half of the scratch for the next warp intrinsic. The halves alternate, so one
// barrier a call suffices: a lane writes a half again two calls later, after the barrier of
// the call between, which every lane reaches only once it has read that half.
DYN_FN dyn_u32* dyn_warp_half() {
    unsigned char& parity = dyn_warp_parity[threadIdx.x];
    dyn_u32* half = dyn_warp_scratch[threadIdx.x / DYN_WARP] + parity * DYN_WARP;
    parity ^= 1;
    return half;
}
DYN_FN void dyn_warp_sync() { dyn_arrive_and_wait(dyn_warp_barriers[threadIdx.x / DYN_WARP]); }

// Lane `src_lane`'s `value`, every lane of the warp taking part (as *_sync with a full mask).
DYN_FN dyn_u32 dyn_warp_read(dyn_u32 value, unsigned int src_lane) {
    dyn_u32* half = dyn_warp_half();
    half[threadIdx.x % DYN_WARP] = value;
    dyn_warp_sync();
    return half[src_lane % DYN_WARP];
}
DYN_FN dyn_u32 __ballot_sync(dyn_u32 mask, int predicate) {
    dyn_u32* half = dyn_warp_half();
    half[threadIdx.x % DYN_WARP] = predicate ? 1u : 0u;
    dyn_warp_sync();
    dyn_u32 bits = 0;
    for (unsigned int lane = 0; lane < DYN_WARP; ++lane) bits |= half[lane] << lane;
    return bits & mask;
}
DYN_FN int __shfl_sync(dyn_u32, int value, int src_lane) {
    return (int)dyn_warp_read((dyn_u32)value, (unsigned int)src_lane);
}
DYN_FN int __shfl_up_sync(dyn_u32, int value, unsigned int delta) {
    const unsigned int lane = threadIdx.x % DYN_WARP;
    return (int)dyn_warp_read((dyn_u32)value, lane >= delta ? lane - delta : lane);
}
#else
constexpr dyn_dim3 threadIdx{0, 0, 0};
#define __syncthreads() ((void)0)
#define __shared__
#endif
DYN_FN int __popc(dyn_u32 x) { return __builtin_popcount(x); }

#endif
