"""The calibration objective: one number from the per-chip table, for Hydra's Optuna sweeper.

`objective: {metric, statistic, threshold, point, direction}` (`ObjectiveConfig`) asks
for a statistic over the chips of one sweep point, e.g. the 5 % quantile over chips of
`frac_within` (what the worst chips still do). The per-chip table (chips.parquet) has one
row per (point, chip): `point`, `nonfinite` and the metric columns of
`chip_statistics.SUMMARY_METRICS`.

Chips that cannot be measured (flagged `nonfinite`, or a NaN metric such as `rate_rel_error`
against a silent nominal instance) are left out of mean/median/min/max/qNN and counted; for
frac_at_least/frac_at_most they stay in the denominator and count as missing the threshold,
so a bias that breaks chips is never rewarded. With no measurable chip the value is NaN,
and the trial returns the worst value for its direction instead (-inf when maximizing):
a complete trial that is never the best, where a NaN would abort the whole study
(hydra-optuna-sweeper 1.3 hands the NaN to Optuna twice, and the second time raises).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runner.analysis.chip_statistics import ACCURACY_METRICS, SUMMARY_METRICS

if TYPE_CHECKING:
    from runner.analysis.readout import ReadoutConfig

__all__ = [
    "Direction",
    "ObjectiveConfig",
    "OBJECTIVE_METRICS",
    "STATISTICS",
    "ObjectiveValue",
    "check_objective",
    "check_direction",
    "objective_value",
]

OBJECTIVE_METRICS: tuple[str, ...] = SUMMARY_METRICS + tuple(ACCURACY_METRICS)
STATISTICS: tuple[str, ...] = (
    "mean", "median", "min", "max", "qNN", "frac_at_least", "frac_at_most",
)  # fmt: skip
_THRESHOLDED = ("frac_at_least", "frac_at_most")
_QUANTILE = re.compile(r"q(\d\d)")
_DESCRIBE_STATISTICS = (
    "mean, median, min, max, qNN (the NN % quantile over chips, e.g. q05), "
    "frac_at_least, frac_at_most (fraction of chips with metric >= / <= objective.threshold)"
)


class Direction(Enum):
    maximize = "maximize"
    minimize = "minimize"


@dataclass
class ObjectiveConfig:
    """What a calibration study optimizes: a statistic over the chips of one sweep point;
    `direction` must match the Optuna sweeper's, which decides. The config holds a node with
    `metric: null` rather than a null node, so `objective.KEY=...` always merges."""

    metric: str | None = None  # null: no objective
    statistic: str = "q05"  # mean, median, min, max, qNN, frac_at_least, frac_at_most
    threshold: float | None = None  # frac_at_least / frac_at_most only
    point: int = 0
    direction: Direction = Direction.maximize

    def __post_init__(self) -> None:
        self.direction = Direction(self.direction)  # also from its name


@dataclass(frozen=True)
class ObjectiveValue:
    """A run's objective, with how many chips it could and could not measure."""

    name: str  # e.g. 'q05(frac_within) at point 0'
    value: float  # NaN when no chip could be measured
    n_chips: int
    n_excluded: int  # non-finite chips or chips with a NaN metric
    direction: str  # maximize or minimize
    n_nonfinite: int = 0  # of the excluded: chips flagged non-finite (the rest: a NaN metric)

    def describe(self) -> str:
        """'objective q05(frac_within) at point 0 = 0.8711 over 32 chips (0 ...)'."""
        return (
            f"objective {self.name} = {self.value:.6g} over {self.n_chips} chips "
            f"({self.n_excluded} non-finite or unmeasurable)"
        )

    def trial_value(self) -> float:
        """What a study's trial returns: the value, or the worst one for the direction when
        no chip could be measured (NaN)."""
        if math.isnan(self.value):
            return -math.inf if self.direction == "maximize" else math.inf
        return self.value


def check_objective(
    objective: ObjectiveConfig, n_points: int, shard_count: int, readout: ReadoutConfig | None
) -> None:
    """Raise ValueError naming the field and what it accepts, before any simulation.
    `readout`: the run's readout config (None: no readout, so no accuracy to optimize)."""
    metric, statistic = objective.metric, objective.statistic
    if metric not in OBJECTIVE_METRICS:
        raise ValueError(
            f"objective.metric: unknown per-chip metric {metric!r}; one of "
            f"{', '.join(OBJECTIVE_METRICS)}"
        )
    if metric in ACCURACY_METRICS and (
        readout is None or (metric == "accuracy_per_chip" and not readout.per_chip)
    ):
        need = "readout.per_chip=true" if readout is not None else "a readout (e.g. task=patterns)"
        raise ValueError(f"objective.metric: {metric} needs {need}; this run has none")
    named = statistic in STATISTICS and statistic != "qNN"
    if not named and _QUANTILE.fullmatch(statistic) is None:
        raise ValueError(
            f"objective.statistic: unknown statistic {statistic!r}; one of {_DESCRIBE_STATISTICS}"
        )
    threshold = objective.threshold
    if statistic in _THRESHOLDED:
        if threshold is None or not np.isfinite(threshold):
            raise ValueError(
                f"objective.threshold: {statistic} needs a finite threshold on "
                f"{metric}, got {threshold}"
            )
    elif threshold is not None:
        raise ValueError(
            f"objective.threshold: only frac_at_least and frac_at_most use a threshold; "
            f"set it to null for statistic {statistic!r}"
        )
    if not 0 <= objective.point < n_points:
        raise ValueError(
            f"objective.point must be a sweep point index in [0, {n_points}), "
            f"got {objective.point}"
        )
    if shard_count != 1:
        raise ValueError(
            f"objective: needs every chip of the point in one run (shard.count=1), "
            f"got shard.count={shard_count}"
        )


def check_direction(objective: ObjectiveConfig, sweeper: Mapping[str, Any]) -> None:
    """Refuse a study that would optimize the objective the wrong way: the sweeper's
    `direction` (if it has one, as the Optuna sweeper does) must be the objective's."""
    direction = sweeper.get("direction")
    direction = getattr(direction, "name", direction)  # the sweeper's default is an Enum
    wanted = objective.direction.value
    if isinstance(direction, str) and direction != wanted:
        raise ValueError(
            f"objective.direction is {wanted} but hydra.sweeper.direction is "
            f"{direction}: set hydra.sweeper.direction={wanted} (or choose another objective)"
        )


def objective_value(chips: pd.DataFrame, objective: ObjectiveConfig) -> ObjectiveValue:
    """The objective over the chips of `objective.point` in a per-chip table."""
    metric, point = objective.metric, objective.point
    statistic, threshold = objective.statistic, objective.threshold
    if metric not in chips.columns:
        raise ValueError(
            f"objective.metric: the per-chip table has no column {metric!r} "
            f"(columns: {', '.join(chips.columns)})"
        )
    at_point = chips[chips["point"] == point]
    if at_point.empty:
        raise ValueError(f"objective.point: the per-chip table holds no chip of point {point}")
    values = at_point[metric].to_numpy(dtype=np.float64)
    measured = ~at_point["nonfinite"].to_numpy(dtype=bool) & np.isfinite(values)
    value = _statistic(values[measured], len(values), statistic, threshold)
    arguments = metric if threshold is None else f"{metric}, {threshold:g}"
    name = f"{statistic}({arguments}) at point {point}"
    excluded = int((~measured).sum())
    nonfinite = int(at_point["nonfinite"].to_numpy(dtype=bool).sum())
    return ObjectiveValue(name, value, len(values), excluded, objective.direction.value,
                          nonfinite)  # fmt: skip


def _statistic(values: np.ndarray, n_chips: int, statistic: str, threshold: float | None) -> float:
    """`values`: the measured chips' metric; `n_chips`: every chip, measured or not."""
    if statistic == "frac_at_least":
        return float(np.count_nonzero(values >= threshold) / n_chips)
    if statistic == "frac_at_most":
        return float(np.count_nonzero(values <= threshold) / n_chips)
    if values.size == 0:
        return float("nan")
    if statistic == "mean":
        return float(values.mean())
    if statistic == "median":
        return float(np.median(values))
    if statistic == "min":
        return float(values.min())
    if statistic == "max":
        return float(values.max())
    quantile = _QUANTILE.fullmatch(statistic)
    assert quantile is not None, statistic  # check_objective let it through
    # Linear interpolation, as pandas' quantile: q05 here is summary.csv's `<metric>.q05`.
    return float(np.quantile(values, int(quantile.group(1)) / 100))
