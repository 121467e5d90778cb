"""Philox4x32-10 known answers, the exact Box-Muller transform, and chunk independence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.physics.philox import (
    exact_cos_2pi,
    exact_exp,
    exact_log,
    philox4x32,
    standard_normal,
    uniform_open01,
)

# Random123's known-answer vectors (Salmon et al., SC'11; the library's kat_vectors).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox_known_answers(counter: tuple, key: tuple, expected: tuple) -> None:
    assert tuple(int(word) for word in philox4x32(counter, key)) == expected


def test_philox_vectorised_equals_scalar() -> None:
    counters = np.arange(5, dtype=np.uint32)
    words = philox4x32((counters, 7, 8, 9), (1, 2))
    for i in range(5):
        scalar = philox4x32((i, 7, 8, 9), (1, 2))
        assert all(int(w[i]) == int(s) for w, s in zip(words, scalar, strict=True))


def test_uniform_is_open_interval() -> None:
    extremes = uniform_open01(np.array([0, 0xFFFFFFFF], dtype=np.uint32))
    assert 0.0 < extremes[0] < 1e-9 and 1.0 - 1e-9 < extremes[1] < 1.0


def test_exact_functions_agree_with_libm() -> None:
    u = np.concatenate([np.linspace(1e-10, 1.0, 20001)[1:], [2.0**-33, 0.5, 0.75]])
    assert np.max(np.abs(exact_log(u) - np.log(u)) / np.abs(np.log(u) + 1e-300)) < 1e-14
    t = np.linspace(0.0, 1.0, 40001)[:-1]
    assert np.max(np.abs(exact_cos_2pi(t) - np.cos(2 * np.pi * t))) < 1e-15
    y = np.linspace(-40.0, 40.0, 8001)
    assert np.max(np.abs(exact_exp(y) / np.exp(y) - 1.0)) < 1e-14
    assert exact_cos_2pi(np.array([0.25]))[0] == 0.0 and exact_log(np.array([1.0]))[0] == 0.0


def test_box_muller_moments() -> None:
    n = 400_000
    z = standard_normal(seed=123, instance=np.arange(n) // 256, stream=0, parameter=5,
                        element=np.arange(n) % 256)  # fmt: skip
    standard_error = 1.0 / math.sqrt(n)
    assert abs(z.mean()) < 5 * standard_error
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2.0) * standard_error
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15.0) * standard_error
    assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96.0) * standard_error
    assert abs(np.mean(z < -1.0) - 0.158655) < 0.005


def test_draws_do_not_depend_on_chunking() -> None:
    instances = np.arange(1000, dtype=np.uint64)
    neurons = np.arange(64, dtype=np.uint32)
    whole = standard_normal(9, instances[:, None], 0, 3, neurons[None, :])
    chunks = [standard_normal(9, part[:, None], 0, 3, neurons[None, :])
              for part in np.array_split(instances[::-1], 7)]  # fmt: skip
    np.testing.assert_array_equal(np.concatenate(chunks)[::-1], whole)


def test_streams_are_distinct() -> None:
    element = np.arange(1000)
    base = standard_normal(1, 0, 0, 0, element)
    for other in (standard_normal(2, 0, 0, 0, element), standard_normal(1, 1, 0, 0, element),
                  standard_normal(1, 0, 1, 0, element), standard_normal(1, 0, 0, 1, element),
                  standard_normal(1, 2**32, 0, 0, element)):  # fmt: skip
        assert abs(np.corrcoef(base, other)[0, 1]) < 0.15
        assert not np.array_equal(base, other)
