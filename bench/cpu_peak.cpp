// This core's peaks for the roofline in bench/RESULTS.md (x86-64 with AVX): the clock from
// dependent integer adds (1 cycle each), the divider's throughput from 8 independent
// `vdivps ymm` chains, and a mix of ymm multiplies and adds.
//   g++ -O2 -mavx2 -std=c++20 bench/cpu_peak.cpp -o /tmp/cpu_peak && taskset -c 0 /tmp/cpu_peak
#include <chrono>
#include <cstdio>
#include <immintrin.h>
static double secs(auto f) { auto t0 = std::chrono::steady_clock::now(); f(); return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
int main() {
    const long n = 400000000;
    long x = 0;
    double t_add = secs([&] { for (long i = 0; i < n; ++i) asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x)); });
    double ghz = 4.0 * n / t_add / 1e9;
    printf("clock ~ %.2f GHz (4 dependent adds per iteration)\n", ghz);
    const long m = 50000000;
    __m256 a0 = _mm256_set1_ps(1.1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, d = _mm256_set1_ps(1.0000001f);
    double t_div = secs([&] { for (long i = 0; i < m; ++i) asm volatile(
        "vdivps %8, %0, %0\n\tvdivps %8, %1, %1\n\tvdivps %8, %2, %2\n\tvdivps %8, %3, %3\n\t"
        "vdivps %8, %4, %4\n\tvdivps %8, %5, %5\n\tvdivps %8, %6, %6\n\tvdivps %8, %7, %7"
        : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7) : "x"(d)); });
    printf("vdivps ymm: %.2f cycles each (throughput), %.2e divisions/s\n", t_div * ghz * 1e9 / (8.0 * m), 8.0 * m * 8 / t_div);
    double t_mul = secs([&] { for (long i = 0; i < m; ++i) asm volatile(
        "vmulps %8, %0, %0\n\tvmulps %8, %1, %1\n\tvaddps %8, %2, %2\n\tvaddps %8, %3, %3\n\t"
        "vmulps %8, %4, %4\n\tvmulps %8, %5, %5\n\tvaddps %8, %6, %6\n\tvaddps %8, %7, %7"
        : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7) : "x"(d)); });
    printf("vmulps/vaddps ymm mix: %.2f per cycle, %.2e float ops/s\n", 8.0 * m / (t_mul * ghz * 1e9), 8.0 * m * 8 / t_mul);
    float s; _mm_store_ss(&s, _mm256_castps256_ps128(_mm256_add_ps(_mm256_add_ps(a0, a1), a7))); printf("(%g %ld)\n", s, x);
}
