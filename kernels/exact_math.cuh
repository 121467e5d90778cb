// float32 exp and log made of IEEE float operations only (+, -, *, floor, compare and
// exponent-field arithmetic; compile without FMA contraction): the same bits from the host
// build's scalar and vector loops and from the GPU, whatever the math library. Cephes'
// polynomials (S. Moshier): within about 1 ulp of the correctly rounded result, as glibc's
// and CUDA's own expf/logf are. Branch-free, so the host build vectorises them. Subnormal
// floats count as 0, as on a GPU compiled with -ftz=true (CuPy's default): exp returns 0
// below FLT_MIN and log(subnormal) is -inf.
#pragma once
#include "portability.h"

#define DYN_FLT_MIN 1.17549435e-38f
#define DYN_FLT_MAX 3.40282347e+38f

// 2**n as a float, for -126 <= n <= 127
DYN_FN float dyn_pow2f(int n) { return dyn_float((dyn_u32)(n + 127) << 23); }

DYN_FN float dyn_expf(float x) {
    const float y = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);  // NaN stays NaN
    const float k = floorf(y * 1.44269504088896341f + 0.5f);  // NaN for a NaN x
    // Cody-Waite: ln 2 = 0.693359375 - 2.12194440e-4, the first exact in 9 bits
    const float r = (y - k * 0.693359375f) - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = (p * (r * r) + r) + 1.0f;
    // -150 .. 129: two scalings keep each factor a normal float. A NaN k takes n = 0 (its
    // result is NaN anyway) as an integer select: a select of k before r made GCC evaluate
    // the polynomial for both choices and blend the results
    const int n = k == k ? (int)k : 0;
    const int half = n / 2;
    const float result = (e * dyn_pow2f(half)) * dyn_pow2f(n - half);
    return result < DYN_FLT_MIN ? 0.0f : result;
}

DYN_FN float dyn_logf(float x) {
    const bool finite_normal = x >= DYN_FLT_MIN && x <= DYN_FLT_MAX;
    const dyn_u32 bits = dyn_float_bits(finite_normal ? x : 1.0f);
    const dyn_u32 mantissa_bits = (bits & 0x007FFFFFu) | 0x3F000000u;  // [0.5, 1)
    const bool low = dyn_float(mantissa_bits) < 0.707106781186547524f;
    const float exponent = (float)((int)(bits >> 23) - 126 - (low ? 1 : 0));
    // below sqrt(1/2) the mantissa doubles (its exponent field + 1: exact, as mantissa +
    // mantissa); selected as an integer, since a float select here made GCC evaluate the
    // polynomial below for both choices and blend the results
    const float m = dyn_float(mantissa_bits + (low ? 0x00800000u : 0u)) - 1.0f;  // exact
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m + -1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m + -1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m + -1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m + -2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    float y = (p * m) * z;
    y = y + exponent * -2.12194440e-4f;
    y = y + -0.5f * z;
    const float result = (m + y) + exponent * 0.693359375f;
    // a negative x or -inf: (x - x) * inf is the platform's default NaN, as 0 / 0 is (and a
    // NaN x itself), without a division per lane
    const float infinity = dyn_float(0x7F800000u);
    return finite_normal ? result
                         : (x > DYN_FLT_MAX ? infinity
                                            : (x >= 0.0f ? -infinity : (x - x) * infinity));
}
