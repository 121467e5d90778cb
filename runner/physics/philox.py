"""Counter-based random numbers: Philox4x32-10 and a platform-exact Box-Muller normal.

Every mismatch draw is a pure function of (seed, instance, stream, parameter, element), so
the numbers do not depend on how a batch is chunked, sharded or which backend draws them.
The kernel (`kernels/philox.cuh`) implements the same algorithm; both must agree bit for
bit, which is why the normal transform uses only IEEE-exact operations (+, -, *, /, sqrt,
frexp, ldexp) in float64 instead of the platform's `log`/`cos`/`exp`, whose last bits
differ between glibc, NumPy's SIMD loops and CUDA's libdevice.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "philox4x32",
    "uniform_open01",
    "exact_log",
    "exact_exp",
    "exact_cos_2pi",
    "standard_normal",
    "STREAM_NEURON",
    "STREAM_CORE",
]

PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint32(0x9E3779B9)
PHILOX_W1 = np.uint32(0xBB67AE85)
PHILOX_ROUNDS = 10

# Stream tags (counter word 1 = parameter index + 32 * stream).
STREAM_NEURON = 0  # the per-neuron component of the mismatch
STREAM_CORE = 1  # the per-core component shared by all neurons of a core

_MASK32 = np.uint64(0xFFFFFFFF)

# Series coefficients, written as the exact decimal round-trips of 1/n! and 1/(2k+1);
# kernels/philox.cuh carries the same literals.
_LOG_COEFFS = (
    1.0, 0.3333333333333333, 0.2, 0.14285714285714285, 0.1111111111111111,
    0.09090909090909091, 0.07692307692307693, 0.06666666666666667,
    0.058823529411764705, 0.05263157894736842, 0.047619047619047616,
    0.043478260869565216,
)  # fmt: skip
_COS_COEFFS = (
    1.0, -0.5, 0.041666666666666664, -0.001388888888888889, 2.48015873015873e-05,
    -2.755731922398589e-07, 2.08767569878681e-09, -1.1470745597729725e-11,
    4.779477332387385e-14, -1.5619206968586225e-16, 4.110317623312165e-19,
)  # fmt: skip
_SIN_COEFFS = (
    1.0, -0.16666666666666666, 0.008333333333333333, -0.0001984126984126984,
    2.7557319223985893e-06, -2.505210838544172e-08, 1.6059043836821613e-10,
    -7.647163731819816e-13, 2.8114572543455206e-15, -8.22063524662433e-18,
    1.9572941063391263e-20,
)  # fmt: skip
_EXP_COEFFS = (
    1.0, 1.0, 0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333,
    0.001388888888888889, 0.0001984126984126984, 2.48015873015873e-05,
    2.7557319223985893e-06, 2.755731922398589e-07, 2.505210838544172e-08,
    2.08767569878681e-09, 1.6059043836821613e-10, 1.1470745597729725e-11,
    7.647163731819816e-13, 4.779477332387385e-14, 2.8114572543455206e-15,
)  # fmt: skip
_LN2 = 0.6931471805599453
_INV_LN2 = 1.4426950408889634
_TWO_PI = 6.283185307179586
_SQRT_HALF = 0.7071067811865476


def _mulhilo(multiplier: np.uint64, word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    product = word.astype(np.uint64) * multiplier
    return (product >> np.uint64(32)).astype(np.uint32), (product & _MASK32).astype(np.uint32)


def philox4x32(counter: tuple, key: tuple) -> tuple[np.ndarray, ...]:
    """Philox4x32-10 (Random123) over broadcast uint32 counter words; returns 4 words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint32) for c in counter)
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0 = np.uint32(key[0])
    k1 = np.uint32(key[1])
    with np.errstate(over="ignore"):
        for round_index in range(PHILOX_ROUNDS):
            if round_index:
                k0 = np.uint32(k0 + PHILOX_W0)
                k1 = np.uint32(k1 + PHILOX_W1)
            hi0, lo0 = _mulhilo(PHILOX_M0, c0)
            hi1, lo1 = _mulhilo(PHILOX_M1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def uniform_open01(word: np.ndarray) -> np.ndarray:
    """uint32 -> float64 in the open interval (0, 1), exactly: (w + 0.5) / 2**32."""
    return (word.astype(np.float64) + 0.5) * 2.0**-32


def _horner(coefficients: tuple, x: np.ndarray) -> np.ndarray:
    result = np.full_like(x, coefficients[-1])
    for coefficient in coefficients[-2::-1]:
        result = result * x + coefficient
    return result


def exact_log(u: np.ndarray) -> np.ndarray:
    """Natural log of u > 0 from frexp and an atanh series: same bits on every platform."""
    mantissa, exponent = np.frexp(u)
    small = mantissa < _SQRT_HALF
    mantissa = np.where(small, mantissa * 2.0, mantissa)
    exponent = np.where(small, exponent - 1, exponent).astype(np.float64)
    s = (mantissa - 1.0) / (mantissa + 1.0)
    return exponent * _LN2 + 2.0 * s * _horner(_LOG_COEFFS, s * s)


def exact_exp(y: np.ndarray) -> np.ndarray:
    """exp(y) for |y| < 700 by range reduction on ln 2 and a Taylor series."""
    k = np.floor(y * _INV_LN2 + 0.5)
    r = y - k * _LN2
    return np.ldexp(_horner(_EXP_COEFFS, r), k.astype(np.int64))


def exact_cos_2pi(t: np.ndarray) -> np.ndarray:
    """cos(2*pi*t) for t in [0, 1), reduced to one octant in exact turn arithmetic."""
    t = np.where(t > 0.5, 1.0 - t, t)
    sign = np.where(t > 0.25, -1.0, 1.0)
    t = np.where(t > 0.25, 0.5 - t, t)
    use_sine = t > 0.125
    x = np.where(use_sine, 0.25 - t, t) * _TWO_PI
    x2 = x * x
    return sign * np.where(use_sine, x * _horner(_SIN_COEFFS, x2), _horner(_COS_COEFFS, x2))


def standard_normal(
    seed: int, instance: np.ndarray, stream: int, parameter: int, element: np.ndarray
) -> np.ndarray:
    """One N(0, 1) float64 draw per (instance, element), keyed by (seed, stream, parameter).

    Counter = (element, parameter + 32*stream, instance low word, instance high word),
    key = (seed low word, seed high word); words 0 and 1 feed Box-Muller (cosine branch).
    """
    instance = np.asarray(instance, dtype=np.uint64)
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    x0, x1, _, _ = philox4x32(
        (
            np.asarray(element, dtype=np.uint32),
            np.uint32(parameter + 32 * stream),
            (instance & _MASK32).astype(np.uint32),
            (instance >> np.uint64(32)).astype(np.uint32),
        ),
        (seed & 0xFFFFFFFF, seed >> 32),
    )
    radius = np.sqrt(-2.0 * exact_log(uniform_open01(x0)))
    return radius * exact_cos_2pi(uniform_open01(x1))
