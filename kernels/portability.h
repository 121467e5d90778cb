// One kernel source, two targets: this header maps the CUDA vocabulary the kernel uses onto
// plain C++ when the file is compiled by the host compiler (runner/kernel/backends/cpu.py).
//
// Host builds:
//   default            one thread per block (NPT = N), blocks spread over cores by OpenMP;
//                      __syncthreads() is a no-op and __shared__ arrays live on the stack.
//   DYN_THREADED_BLOCKS each block runs DYN_NTHREADS real std::threads; __syncthreads() is a
//                      C++20 std::barrier and __shared__ arrays are static, so blocks run one
//                      after another. Warps of DYN_WARP threads (32 unless a test build picks
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
#include <barrier>
inline thread_local dyn_dim3 threadIdx{0, 0, 0};
inline std::barrier<>* dyn_block_barrier = nullptr;
inline thread_local std::barrier<>* dyn_warp_barrier = nullptr;  // this thread's warp
inline thread_local dyn_u32* dyn_warp_scratch = nullptr;         // 2 DYN_WARP words per warp
inline thread_local int dyn_warp_parity = 0;  // which half of the scratch the next call uses
#define __syncthreads() dyn_block_barrier->arrive_and_wait()
#define __shared__ static

// This warp's half of the scratch for the next warp intrinsic. The halves alternate, so one
// barrier a call suffices: a lane writes a half again two calls later, after the barrier of
// the call between, which every lane reaches only once it has read that half.
DYN_FN dyn_u32* dyn_warp_half() {
    dyn_u32* half = dyn_warp_scratch + dyn_warp_parity * DYN_WARP;
    dyn_warp_parity ^= 1;
    return half;
}

// Lane `src_lane`'s `value`, every lane of the warp taking part (as *_sync with a full mask).
DYN_FN dyn_u32 dyn_warp_read(dyn_u32 value, unsigned int src_lane) {
    dyn_u32* half = dyn_warp_half();
    half[threadIdx.x % DYN_WARP] = value;
    dyn_warp_barrier->arrive_and_wait();
    return half[src_lane % DYN_WARP];
}
DYN_FN dyn_u32 __ballot_sync(dyn_u32 mask, int predicate) {
    dyn_u32* half = dyn_warp_half();
    half[threadIdx.x % DYN_WARP] = predicate ? 1u : 0u;
    dyn_warp_barrier->arrive_and_wait();
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
