"""The objective a calibration run returns: statistics over the chips of a point (by hand),
and the checks that name a bad objective's field."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from runner.analysis.chip_statistics import SUMMARY_METRICS, summarize
from runner.analysis.objective import (
    ObjectiveConfig,
    check_direction,
    check_objective,
    objective_value,
)
from runner.analysis.readout import ReadoutConfig


def objective(statistic: str, metric: str = "frac_within", threshold: float | None = None,
              point: int = 0, direction: str = "maximize") -> ObjectiveConfig:  # fmt: skip
    return ObjectiveConfig(metric=metric, statistic=statistic, threshold=threshold, point=point,
                           direction=direction)  # fmt: skip


# Point 0: five chips, one non-finite (its 0.1 must not count) and one with a NaN metric;
# the three measured ones hold 0.5, 0.9, 0.95. Point 1 holds values that must never count.
CHIPS = pd.DataFrame({
    "point": [0, 0, 0, 0, 0, 1, 1],
    "nonfinite": [False, True, False, False, False, False, False],
    "frac_within": [0.9, 0.1, 0.5, np.nan, 0.95, 0.0, 0.0],
})  # fmt: skip


@pytest.mark.parametrize(
    "statistic,threshold,expected",
    [
        ("mean", None, (0.9 + 0.5 + 0.95) / 3),
        ("median", None, 0.9),
        ("min", None, 0.5),
        ("max", None, 0.95),
        ("q50", None, 0.9),
        ("q25", None, 0.5 + 0.5 * (0.9 - 0.5)),  # linear: position 0.5 between 0.5 and 0.9
        ("q00", None, 0.5),
        ("frac_at_least", 0.9, 2 / 5),  # the two unmeasured chips count as missing it
        ("frac_at_most", 0.9, 2 / 5),
        ("frac_at_most", 0.4, 0 / 5),
    ],
)
def test_statistics_over_the_measured_chips_of_the_point(
    statistic: str, threshold: float | None, expected: float
) -> None:
    result = objective_value(CHIPS, objective(statistic, threshold=threshold))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert (result.n_chips, result.n_excluded) == (5, 2)
    assert result.trial_value() == result.value


def test_no_measurable_chip_gives_nan_and_the_worst_trial_value() -> None:
    chips = CHIPS.assign(nonfinite=True)
    maximized = objective_value(chips, objective("q05"))
    assert math.isnan(maximized.value) and maximized.trial_value() == -math.inf
    minimized = objective_value(chips, objective("mean", direction="minimize"))
    assert minimized.trial_value() == math.inf
    assert objective_value(chips, objective("frac_at_least", threshold=0.5)).value == 0.0


def test_quantiles_are_those_of_the_summary_table() -> None:
    """qNN over chips is summary.csv's `<metric>.qNN` (both leave non-finite chips out)."""
    rng = np.random.default_rng(3)
    chips = pd.DataFrame({"instance": np.arange(40), "point": np.repeat([0, 1], 20),
                          "chip": np.tile(np.arange(20), 2), "n_trials": 1,
                          "nonfinite": rng.random(40) < 0.2, "nonphysical": 0})  # fmt: skip
    for metric in SUMMARY_METRICS:
        chips[metric] = rng.normal(size=40)
    summary = summarize(chips, chips, [], pd.DataFrame(), 0, True).set_index("point")
    for point in (0, 1):
        for metric, q in (("frac_within", "q05"), ("rate_rel_error", "q95"), ("rate_corr", "q50")):
            result = objective_value(chips, objective(q, metric=metric, point=point))
            assert result.value == pytest.approx(summary.loc[point, f"{metric}.{q}"], rel=1e-12)


@pytest.mark.parametrize(
    "changes,message",
    [
        (
            {"metric": "accuracy_typo"},
            "objective.metric: unknown per-chip metric 'accuracy_typo'; one of mean_rate_hz",
        ),
        ({"metric": "accuracy"}, r"objective.metric: accuracy needs a readout \(e.g. task="),
        ({"statistic": "q5"}, "objective.statistic: unknown statistic 'q5'; one of mean, median"),
        ({"statistic": "q100"}, "unknown statistic 'q100'"),
        ({"statistic": "qNN"}, "unknown statistic 'qNN'"),
        ({"statistic": "frac_at_least"}, "objective.threshold: frac_at_least needs a finite"),
        ({"statistic": "frac_at_most", "threshold": float("nan")}, "needs a finite threshold"),
        ({"threshold": 0.5}, "objective.threshold: only frac_at_least and frac_at_most"),
        ({"point": 2}, r"objective.point must be a sweep point index in \[0, 2\), got 2"),
        ({"point": -1}, "got -1"),
    ],
)
def test_bad_objectives_name_the_field_and_the_valid_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_objective(dataclasses.replace(objective("q05"), **changes), n_points=2,
                        shard_count=1, readout=None)  # fmt: skip


def test_an_accuracy_objective_needs_the_readout_that_gives_it() -> None:
    """accuracy needs a readout, accuracy_per_chip a per-chip refit; then both are valid."""
    accuracy = objective("q05", metric="accuracy")
    per_chip = objective("q05", metric="accuracy_per_chip")
    check_objective(accuracy, n_points=1, shard_count=1, readout=ReadoutConfig(per_chip=False))
    check_objective(per_chip, n_points=1, shard_count=1, readout=ReadoutConfig(per_chip=True))
    with pytest.raises(ValueError, match="accuracy_per_chip needs readout.per_chip=true"):
        check_objective(per_chip, n_points=1, shard_count=1, readout=ReadoutConfig())


def test_an_objective_needs_every_chip_in_one_run() -> None:
    with pytest.raises(ValueError, match="shard.count=1"):
        check_objective(objective("q05"), n_points=1, shard_count=2, readout=None)


def test_the_sweeper_direction_must_be_the_objectives() -> None:
    check_direction(objective("q05"), {"direction": "maximize"})
    check_direction(objective("q05"), {})  # Hydra's basic sweeper has none
    with pytest.raises(ValueError, match="set hydra.sweeper.direction=maximize"):
        check_direction(objective("q05"), {"direction": "minimize"})

    class Direction:  # the Optuna sweeper's default is an Enum member
        name = "minimize"

    with pytest.raises(ValueError, match="hydra.sweeper.direction is minimize"):
        check_direction(objective("q05"), {"direction": Direction()})
