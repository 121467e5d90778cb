// Philox4x32-10 and the IEEE-exact Box-Muller normal of runner/physics/philox.py, bit for bit.
// Only +, -, *, /, sqrt, floor and exponent-field arithmetic are used (no libm log/cos/exp,
// whose last bits differ between platforms); compile without FMA contraction.
#pragma once
#include "portability.h"

#define DYN_STREAM_NEURON 0u
#define DYN_STREAM_CORE 1u

// Philox's 32-bit output words: as such on a GPU; held in 64-bit integers on the host, whose
// vector passes compute them in 64-bit lanes (host_vector.h: dyn_neuron_normals) and make
// doubles of them through the exponent field (dyn_uniform_open01). The values are the same.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
typedef dyn_u32 dyn_word;
#else
typedef dyn_u64 dyn_word;
#endif

struct dyn_philox_out {
    dyn_word x0, x1;
};

// Words 0 and 1 of Philox4x32-10(counter, key): all that Box-Muller consumes.
DYN_FN dyn_philox_out dyn_philox(dyn_word c0, dyn_word c1, dyn_word c2, dyn_word c3, dyn_u32 k0,
                                 dyn_u32 k1) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const dyn_u64 p0 = (dyn_u64)0xD2511F53u * (dyn_u32)c0;
        const dyn_u64 p1 = (dyn_u64)0xCD9E8D57u * (dyn_u32)c2;
        const dyn_u32 hi0 = (dyn_u32)(p0 >> 32), lo0 = (dyn_u32)p0;
        const dyn_u32 hi1 = (dyn_u32)(p1 >> 32), lo1 = (dyn_u32)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    dyn_philox_out out = {c0, c1};
    return out;
}

// (word + 0.5) / 2**32. On the host the word becomes a double exactly through the exponent
// field (2**52 + word, less 2**52): AVX2 has no vector conversion of 64-bit integers.
DYN_FN double dyn_uniform_open01(dyn_word word) {
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
    const double exact = (double)word;
#else
    const double exact = dyn_double(0x4330000000000000ull | word) - 4503599627370496.0;
#endif
    return (exact + 0.5) * 2.3283064365386963e-10;
}

// Natural log of u in (0, 1): frexp through the exponent field (u is normal) + atanh series.
DYN_FN double dyn_exact_log(double u) {
    const dyn_u64 bits = dyn_bits(u);
    double exponent = (double)((int)((bits >> 52) & 0x7FF) - 1022);
    double mantissa = dyn_double((bits & 0x800FFFFFFFFFFFFFull) | (1022ull << 52));
    const bool small = mantissa < 0.7071067811865476;
    mantissa = small ? mantissa * 2.0 : mantissa;
    exponent = small ? exponent - 1.0 : exponent;
    const double s = (mantissa - 1.0) / (mantissa + 1.0);
    const double s2 = s * s;
    double h = 0.043478260869565216;
    h = h * s2 + 0.047619047619047616;
    h = h * s2 + 0.05263157894736842;
    h = h * s2 + 0.058823529411764705;
    h = h * s2 + 0.06666666666666667;
    h = h * s2 + 0.07692307692307693;
    h = h * s2 + 0.09090909090909091;
    h = h * s2 + 0.1111111111111111;
    h = h * s2 + 0.14285714285714285;
    h = h * s2 + 0.2;
    h = h * s2 + 0.3333333333333333;
    h = h * s2 + 1.0;
    return exponent * 0.6931471805599453 + 2.0 * s * h;
}

// exp(y) by range reduction on ln 2, a Taylor series and exact scaling by 2**k. Outside
// 2**-1022..2**1023 it returns 0 or inf: the float32 of runner.physics.philox.exact_exp either way,
// which is all the caller keeps (branch-free, so the host build vectorises it).
DYN_FN double dyn_exact_exp(double y) {
    const double k = floor(y * 1.4426950408889634 + 0.5);
    const double r = y - k * 0.6931471805599453;
    double h = 2.8114572543455206e-15;
    h = h * r + 4.779477332387385e-14;
    h = h * r + 7.647163731819816e-13;
    h = h * r + 1.1470745597729725e-11;
    h = h * r + 1.6059043836821613e-10;
    h = h * r + 2.08767569878681e-09;
    h = h * r + 2.505210838544172e-08;
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
    const double kc = k < -1023.0 ? -1023.0 : (k > 1024.0 ? 1024.0 : k);
    // biased exponent 0 / 2047 encode 0.0 / inf: the out-of-range results
    return h * dyn_double((dyn_u64)((long long)kc + 1023) << 52);
}

// cos(2*pi*t) for t in (0, 1), reduced to one octant in exact turn arithmetic.
DYN_FN double dyn_exact_cos_2pi(double t) {
    t = t > 0.5 ? 1.0 - t : t;
    const double sign = t > 0.25 ? -1.0 : 1.0;
    t = t > 0.25 ? 0.5 - t : t;
    const bool use_sine = t > 0.125;
    const double x = (use_sine ? 0.25 - t : t) * 6.283185307179586;
    const double x2 = x * x;
    double c = 4.110317623312165e-19;
    c = c * x2 + -1.5619206968586225e-16;
    c = c * x2 + 4.779477332387385e-14;
    c = c * x2 + -1.1470745597729725e-11;
    c = c * x2 + 2.08767569878681e-09;
    c = c * x2 + -2.755731922398589e-07;
    c = c * x2 + 2.48015873015873e-05;
    c = c * x2 + -0.001388888888888889;
    c = c * x2 + 0.041666666666666664;
    c = c * x2 + -0.5;
    c = c * x2 + 1.0;
    double s = 1.9572941063391263e-20;
    s = s * x2 + -8.22063524662433e-18;
    s = s * x2 + 2.8114572543455206e-15;
    s = s * x2 + -7.647163731819816e-13;
    s = s * x2 + 1.6059043836821613e-10;
    s = s * x2 + -2.505210838544172e-08;
    s = s * x2 + 2.7557319223985893e-06;
    s = s * x2 + -0.0001984126984126984;
    s = s * x2 + 0.008333333333333333;
    s = s * x2 + -0.16666666666666666;
    s = s * x2 + 1.0;
    return sign * (use_sine ? x * s : c);
}

// One N(0, 1) draw in three parts, which a host loop may run as passes of their own (short
// dependency chains pipeline; dynapsim.cu: dyn_draw): the Philox words of counter (element,
// parameter + 32*stream, instance lo, instance hi) and key (seed lo, seed hi), then words 0
// and 1 through Box-Muller's cosine branch, radius times cosine.
DYN_FN dyn_philox_out dyn_normal_words(dyn_u64 seed, dyn_u64 instance, dyn_u32 stream,
                                       dyn_u32 parameter, dyn_u32 element) {
    return dyn_philox(element, parameter + 32u * stream, (dyn_u32)instance,
                      (dyn_u32)(instance >> 32), (dyn_u32)seed, (dyn_u32)(seed >> 32));
}
DYN_FN double dyn_box_muller_radius(dyn_word x0) {
    return sqrt(-2.0 * dyn_exact_log(dyn_uniform_open01(x0)));
}
DYN_FN double dyn_box_muller_cos(dyn_word x1) { return dyn_exact_cos_2pi(dyn_uniform_open01(x1)); }

DYN_FN double dyn_standard_normal(dyn_u64 seed, dyn_u64 instance, dyn_u32 stream,
                                  dyn_u32 parameter, dyn_u32 element) {
    const dyn_philox_out w = dyn_normal_words(seed, instance, stream, parameter, element);
    const double radius = dyn_box_muller_radius(w.x0);  // first: fewer live registers on a GPU
    return radius * dyn_box_muller_cos(w.x1);
}
