// float32 exp and log made of IEEE operations only (+, -, *, /, floor and exponent-field
// arithmetic; compile without FMA contraction): the same bits from the host build's scalar
// and vector loops and from the GPU, and the correctly rounded result in all but the rarest
// double-rounding cases (each is evaluated in double, to ~1e-14 relative, then rounded once:
// what the reference backend's exp/log of float64 rounded to float32 gives). Branch-free, so
// the host build vectorises them. Subnormal floats count as 0, as on a GPU compiled with
// -ftz=true (CuPy's default): exp returns 0 below FLT_MIN and log(subnormal) is -inf.
#pragma once
#include "portability.h"

#define DYN_FLT_MIN 1.17549435e-38f
#define DYN_FLT_MAX 3.40282347e+38f

DYN_FN float dyn_expf(float x) {
    const float clamped = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);  // NaN stays NaN
    const double y = (double)clamped;
    double k = floor(y * 1.4426950408889634 + 0.5);
    k = k == k ? k : 0.0;  // NaN: any finite k, the result is NaN anyway
    // Cody-Waite: ln 2 = hi + lo with hi's low 21 bits zero, so k * hi is exact
    const double r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
    double h = 2.505210838544172e-08;  // Taylor to r**11 / 11!: |r| <= ln(2)/2
    h = h * r + 2.755731922398589e-07;
    h = h * r + 2.7557319223985893e-06;
    h = h * r + 2.48015873015873e-05;
    h = h * r + 0.0001984126984126984;
    h = h * r + 0.001388888888888889;
    h = h * r + 0.008333333333333333;
    h = h * r + 0.041666666666666664;
    h = h * r + 0.16666666666666666;
    h = h * r + 0.5;
    h = h * r + 1.0;
    h = h * r + 1.0;
    const float result = (float)(h * dyn_double((dyn_u64)((dyn_i64)k + 1023) << 52));
    return result < DYN_FLT_MIN ? 0.0f : result;
}

DYN_FN float dyn_logf(float x) {
    const bool finite_normal = x >= DYN_FLT_MIN && x <= DYN_FLT_MAX;
    const dyn_u32 bits = dyn_float_bits(finite_normal ? x : 1.0f);
    const double mantissa = (double)dyn_float((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
    const bool high = mantissa > 1.4142135623730951;
    const double m = high ? mantissa * 0.5 : mantissa;
    const double exponent = (double)((int)(bits >> 23) - 127 + (high ? 1 : 0));
    const double s = (m - 1.0) / (m + 1.0);  // |s| <= 0.1716: atanh series to s**17
    const double s2 = s * s;
    double h = 0.058823529411764705;
    h = h * s2 + 0.06666666666666667;
    h = h * s2 + 0.07692307692307693;
    h = h * s2 + 0.09090909090909091;
    h = h * s2 + 0.1111111111111111;
    h = h * s2 + 0.14285714285714285;
    h = h * s2 + 0.2;
    h = h * s2 + 0.3333333333333333;
    h = h * s2 + 1.0;
    const float result = (float)(exponent * 0.6931471805599453 + 2.0 * s * h);
    const float infinity = dyn_float(0x7F800000u);
    return finite_normal ? result
                         : (x > DYN_FLT_MAX ? infinity
                                            : (x >= 0.0f ? -infinity : (x - x) / (x - x)));
}
