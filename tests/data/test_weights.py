"""The `ei_network` generator's float weights (`weight_cv`): 0 is the integer network as it
always was, > 0 keeps every connection and sign and spreads the magnitudes, deterministically."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from runner.data.weights import ei_network, generate_weights

CORE_MAP = np.repeat(np.arange(2), 32)
PARAMS = {"n_inputs": 16, "exc_fan_in": 8, "inh_fan_in": 4, "seed": 3}
# SHA-256 of the matrices of ei_network(CORE_MAP, **PARAMS) before `weight_cv` existed
BEFORE = {
    "weights_in": "248cabce40de7fac58618028112bc8245acb7c1992376711b84c747c17625122",
    "weights_rec": "922e349e2f63a78f258d6a2b0bc46b6cdc5d6a4b9885db27bf97818096f7e9b8",
}


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_zero_spread_is_the_integer_network_as_it_was() -> None:
    for weights in (ei_network(CORE_MAP, **PARAMS), ei_network(CORE_MAP, **PARAMS, weight_cv=0.0)):
        assert {name: digest(matrix) for name, matrix in weights.items()} == BEFORE
        assert set(np.unique(weights["weights_rec"])) == {-2.0, 0.0, 1.0}


def test_a_spread_keeps_connections_and_signs_and_is_deterministic() -> None:
    integer = ei_network(CORE_MAP, **PARAMS)
    spread = generate_weights("ei_network", CORE_MAP, {**PARAMS, "weight_cv": 0.5})
    again = ei_network(CORE_MAP, **PARAMS, weight_cv=0.5)
    other_seed = ei_network(CORE_MAP, **{**PARAMS, "seed": 4}, weight_cv=0.5)
    factors = []
    for name, matrix in integer.items():
        np.testing.assert_array_equal(np.sign(spread[name]), np.sign(matrix), err_msg=name)
        np.testing.assert_array_equal(spread[name], again[name], err_msg=name)
        assert not np.array_equal(spread[name], other_seed[name])
        factors.append(spread[name][matrix != 0] / matrix[matrix != 0])
    factors = np.concatenate(factors)
    assert (factors > 0).all() and np.unique(factors).size == factors.size  # all floats, distinct
    assert factors.mean() == pytest.approx(1.0, abs=0.06)  # log-normal of mean 1, cv 0.5
    assert factors.std() / factors.mean() == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("cv", [-0.1, float("nan"), float("inf")])
def test_a_bad_spread_is_refused(cv: float) -> None:
    with pytest.raises(ValueError, match=r"weight_cv must be a finite number >= 0"):
        ei_network(CORE_MAP, **PARAMS, weight_cv=cv)
