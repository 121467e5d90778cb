"""Readouts that used to merge a duplicate neuron or pick a class from NaN scores."""

from __future__ import annotations

import numpy as np
import pytest

from runner.analysis.readout import LinearReadout, VoteReadout


def test_a_neuron_named_twice_in_a_vote_group_is_refused() -> None:
    with pytest.raises(ValueError, match=r"groups\[0\] names neuron 1 more than once"):
        VoteReadout.from_groups([[0, 1, 1], [2]], n_neurons=4)


def test_overflowing_linear_scores_give_no_decision() -> None:
    readout = LinearReadout(np.array([[1e308, 0.0], [1e308, 1.0]]), np.zeros(2))
    features = np.array([[1.0, 1.0], [0.0, 0.5], [0.0, 0.0]])  # row 0: 2e308 -> inf
    with np.errstate(over="ignore", invalid="ignore"):
        predicted = readout.predict(features)
    np.testing.assert_array_equal(predicted, [-1, 0, 0])  # row 2: a tie, the lowest class
    nan_weights = LinearReadout(np.array([[np.inf, -np.inf]]), np.zeros(2))
    with np.errstate(invalid="ignore"):
        assert nan_weights.predict(np.array([[0.0]]))[0] == -1  # 0 * inf = NaN
