// One kernel source, two targets: this header maps the CUDA vocabulary the kernel uses onto
// plain C++ when the file is compiled by the host compiler (runner/backends/cpu.py).
//
// Host builds:
//   default            one thread per block (NPT = N), blocks spread over cores by OpenMP;
//                      __syncthreads() is a no-op and __shared__ arrays live on the stack.
//   DYN_THREADED_BLOCKS each block runs DYN_NTHREADS real std::threads; __syncthreads() is a
//                      C++20 std::barrier and __shared__ arrays are static, so blocks run one
//                      after another. A test build that executes the GPU's multi-thread path.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)

#define DYN_FN static __device__ __forceinline__
#define DYN_SIMD _Pragma("unroll")
#define DYN_DYNAMIC_INDEX 0  // register arrays: index them with compile-time k only
typedef unsigned int dyn_u32;
typedef unsigned long long dyn_u64;
typedef long long dyn_i64;

DYN_FN dyn_u64 dyn_bits(double x) { return (dyn_u64)__double_as_longlong(x); }
DYN_FN double dyn_double(dyn_u64 b) { return __longlong_as_double((long long)b); }

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

struct dyn_dim3 {
    unsigned int x, y, z;
};
inline thread_local dyn_dim3 blockIdx{0, 0, 0};

#ifdef DYN_THREADED_BLOCKS
#include <barrier>
inline thread_local dyn_dim3 threadIdx{0, 0, 0};
inline std::barrier<>* dyn_block_barrier = nullptr;
#define __syncthreads() dyn_block_barrier->arrive_and_wait()
#define __shared__ static
#else
constexpr dyn_dim3 threadIdx{0, 0, 0};
#define __syncthreads() ((void)0)
#define __shared__
#endif

#endif
