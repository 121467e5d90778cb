"""Synaptic mismatch draws (`sample_base_weights`): each neuron's base weights Iw_k,i from
the Philox stream of parameter word WEIGHT_PARAMETER + k, as the neuron parameters are
drawn, and leaving those bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from runner.physics.mismatch import (
    NONPHYSICAL_FLOOR,
    WEIGHT_PARAMETER,
    MismatchModel,
    sample_base_weights,
    sample_parameters,
)
from runner.physics.parameters import DEFAULT_CURRENTS, DEFAULT_LAYOUT, PARAMETER_NAMES
from runner.physics.philox import STREAM_CORE, STREAM_NEURON, standard_normal

CORE_MAP = np.repeat([0, 1], 6).astype(np.int32)
BASE = np.array([[1e-9, 2e-9, 4e-9, 0.0], [3e-9, 5e-9, 7e-9, 9e-9]])  # (n_cluster, n_bits)
NOMINAL = {name: np.full(CORE_MAP.size, {**DEFAULT_CURRENTS, **DEFAULT_LAYOUT}[name])
           for name in PARAMETER_NAMES}  # fmt: skip


def test_weight_parameter_words_follow_the_24_neuron_parameters() -> None:
    assert WEIGHT_PARAMETER == len(PARAMETER_NAMES) == 24


def test_gaussian_draws_follow_the_formula_of_the_neuron_parameters() -> None:
    model = MismatchModel(percent=0.3, weights=True)
    drawn, bad = sample_base_weights(BASE, CORE_MAP, model, 11, [0, 5])
    assert drawn.shape == (2, 4, CORE_MAP.size) and drawn.dtype == np.float32
    assert bad.tolist() == [0, 0]
    for k in range(4):
        z = standard_normal(11, np.array([0, 5], np.uint64)[:, None], STREAM_NEURON,
                            WEIGHT_PARAMETER + k, np.arange(CORE_MAP.size, dtype=np.uint32))
        x = BASE.astype(np.float32)[CORE_MAP, k]
        expected = x + (np.float32(0.1) * z.astype(np.float32)) * x  # fmt: skip
        np.testing.assert_array_equal(drawn[:, k], expected)
    assert (drawn[:, 3, :6] == 0).all()  # a zero base weight stays zero


def test_shared_fraction_mixes_in_the_core_component() -> None:
    model = MismatchModel(percent=0.3, shared_fraction=1.0, weights=True)
    drawn, _ = sample_base_weights(BASE, CORE_MAP, model, 2, [3])
    for k in range(3):
        for core in (0, 1):
            values = drawn[0, k, np.equal(CORE_MAP, core)]
            assert (values == values[0]).all()  # all of a core's variance is shared
    z = standard_normal(2, np.uint64(3), STREAM_CORE, WEIGHT_PARAMETER + 1, np.uint32(1))
    x = np.float32(BASE[1, 1])
    assert drawn[0, 1, -1] == x + (np.float32(0.1) * np.float32(z)) * x


def test_off_or_zero_percent_is_nominal() -> None:
    for model in (MismatchModel(percent=0.3), MismatchModel(percent=0.0, weights=True)):
        drawn, bad = sample_base_weights(BASE, CORE_MAP, model, 1, [0, 1])
        np.testing.assert_array_equal(drawn, np.broadcast_to(
            BASE.astype(np.float32)[CORE_MAP].T, drawn.shape))  # fmt: skip
        assert not bad.any()


@pytest.mark.parametrize("policy", ["keep", "clip"])
def test_nonphysical_samples_counted_and_policy_applied(policy: str) -> None:
    model = MismatchModel(percent=3.0, nonphysical=policy, weights=True)
    drawn, bad = sample_base_weights(BASE, CORE_MAP, model, 4, np.arange(20))
    x = BASE.astype(np.float32)[CORE_MAP].T
    negative = (x > 0) & (drawn <= 0)
    floored = (x > 0) & (drawn == x * np.float32(NONPHYSICAL_FLOOR))
    if policy == "keep":
        assert bad.sum() == negative.sum() > 0
    else:
        assert not negative.any() and bad.sum() == floored.sum() > 0


def test_lognormal_and_same_numbers_in_any_split() -> None:
    model = MismatchModel(percent=0.3, distribution="lognormal", weights=True)
    whole, _ = sample_base_weights(BASE, CORE_MAP, model, 9, np.arange(6))
    part, _ = sample_base_weights(BASE, CORE_MAP, model, 9, [4, 5])
    np.testing.assert_array_equal(whole[4:], part)
    assert (whole[:, :, 6:] > 0).all()


def test_switching_it_on_leaves_the_neuron_parameters_bit_identical() -> None:
    off, bad_off = sample_parameters(NOMINAL, CORE_MAP, MismatchModel(percent=0.3), 5, [0, 7])
    on, bad_on = sample_parameters(NOMINAL, CORE_MAP, MismatchModel(percent=0.3, weights=True),
                                   5, [0, 7])  # fmt: skip
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(on[name], off[name], err_msg=name)
    np.testing.assert_array_equal(bad_on, bad_off)
