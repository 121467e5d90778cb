"""Chip-level values and the per-point summary: what a study reports.

A chip is one (point, chip) of the sweep; it ran `n_trials` rows (one per trial). Its
value of a metric is the mean over its trials (NaN trial values skipped, as everywhere in
the summary); it is non-finite when any trial is. `summary.csv` describes, per point, the
distribution over finite chips (`<metric>.n` chips with a finite value: a finite chip can
still have a NaN metric, e.g. the correlation of a silent instance; quantiles interpolate
linearly, as pandas and NumPy do by default), and the paired change against a baseline
point: for every chip finite at both points, d = value(point) - value(baseline); the 95 %
interval of the mean of d is Student's t with n - 1 degrees of freedom
(`runner.analysis.intervals`): it covers the sampling of chips. Under
`pairing=independent` chip c at two points are unrelated chips, so there is no pairing to
measure and the change columns are NaN. A point whose weights were quantized
(`network.quantize.n_bits`) has its `quantization_loss`: the mean over cores of each core's
mean squared weight error over its connections, in squared weight units (Iscale**2); NaN
for float weights.

With a readout, a chip's `accuracy` (transferred readout) and `accuracy_per_chip` (refitted
on the chip) are the fractions of its test rows predicted right (NaN when a prediction is
missing, and for a non-finite chip); they are summarised like the other metrics, with the
nominal instance's accuracy and its Wilson interval over the test samples, the chance
level and the share of chips at `readout.target`. Every chip is scored on the same test
samples, so an interval over chips alone says nothing about another draw of samples: the
mean and paired change of an accuracy get 95 % intervals from a seeded two-way bootstrap
over chips and test samples (`.mean_lo95`, `.mean_hi95`, `.delta_lo95`, `.delta_hi95`);
the chip-only t interval of the change is kept as `.delta_lo95_chips`, `.delta_hi95_chips`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runner.analysis.intervals import t_half_width, two_way_bootstrap, wilson_interval

__all__ = [
    "SUMMARY_METRICS",
    "ACCURACY_METRICS",
    "QUANTILES",
    "AccuracySettings",
    "held_out_accuracy",
    "chip_table",
    "core_table",
    "paired_changes",
    "summarize",
]

SUMMARY_METRICS: tuple[str, ...] = (
    "mean_rate_hz", "rate_std_hz", "pop_rate_std_hz", "pop_rate_peak_hz", "mean_isi_cv",
    "mean_first_spike_s", "n_silent", "n_saturated", "rate_rel_error", "rate_corr", "frac_within",
)  # fmt: skip
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

# chip-level accuracy -> the row column of predicted classes it is counted from
ACCURACY_METRICS: dict[str, str] = {
    "accuracy": "predicted", "accuracy_per_chip": "predicted_per_chip",
}  # fmt: skip

_KEYS = ["point", "chip"]
_NOT_AVERAGED = {"instance", "point", "chip", "trial", "seed", "nonfinite", "nonfinite_step",
                 "label", *ACCURACY_METRICS.values()}  # fmt: skip


@dataclass(frozen=True)
class AccuracySettings:
    """What the summary needs to describe accuracies: the target and each point's chance."""

    target: float  # readout.target
    chance: dict[int, float]  # point -> 1 / number of classes


def held_out_accuracy(rows: pd.DataFrame, predicted: str, keys: list[str]) -> pd.Series:
    """Per group of `keys`: the fraction of test rows whose `predicted` class is their
    `label`; NaN for a group with a missing (null) test prediction."""
    test = rows[rows["split"] == "test"]
    missing = test[predicted].isna().to_numpy()
    guess = test[predicted].to_numpy(dtype=np.float64, na_value=np.nan)
    correct = pd.Series((guess == test["label"].to_numpy()).astype(np.float64), index=test.index)
    groups = [test[key] for key in keys]
    accuracy = correct.groupby(groups).mean()
    accuracy[pd.Series(missing, index=test.index).groupby(groups).any()] = np.nan
    return accuracy


def chip_table(instances: pd.DataFrame, sweep_columns: list[str]) -> pd.DataFrame:
    """One row per (point, chip): its sweep values and seed, `n_trials`, every numeric
    metric column averaged over its trials, `nonfinite` (any trial) and
    `n_nonfinite_trials`. Metric columns added to the instance table later (a task's
    per-trial correctness, say) are averaged the same way."""
    groups = instances.groupby(_KEYS, sort=True)
    averaged = [
        column for column in instances.columns
        if column not in _NOT_AVERAGED and column not in sweep_columns
        and pd.api.types.is_numeric_dtype(instances[column])
    ]  # fmt: skip
    first = groups[[*sweep_columns, "seed"]].first()
    table = pd.concat(
        [
            first,
            groups.size().rename("n_trials"),
            groups[averaged].mean(),
            groups["nonfinite"].any(),
            groups["nonfinite"].sum().astype(np.int64).rename("n_nonfinite_trials"),
        ],
        axis=1,
    )
    for metric, predicted in ACCURACY_METRICS.items():
        if predicted in instances:
            table[metric] = held_out_accuracy(instances, predicted, _KEYS)
            table.loc[table["nonfinite"], metric] = np.nan
    return table.reset_index()


def core_table(cores: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, chip, core): each core's metrics averaged over the chip's trials
    (NaN trial values skipped), `nonfinite` when any trial is."""
    if cores.empty:
        return cores
    groups = cores.groupby(["point", "chip", "core"], sort=True)
    metrics = [c for c in cores.columns
               if c not in {"instance", "point", "chip", "trial", "core", "nonfinite"}]  # fmt: skip
    table = pd.concat([groups[metrics].mean(), groups["nonfinite"].any()], axis=1)
    return table.reset_index()


def paired_changes(here: pd.Series, baseline: pd.Series) -> dict[str, float]:
    """Change statistics of one metric between two points, each given per chip (index:
    chip id, finite chips only): mean and 95 % Student's t interval of the mean of the
    per-chip differences, and their 5 % / 95 % quantiles."""
    differences = (here - baseline.reindex(here.index)).dropna().to_numpy(np.float64)
    n = differences.size
    mean = differences.mean() if n else np.nan
    half = t_half_width(differences)
    return {
        "delta_mean": mean,
        "delta_lo95": mean - half,
        "delta_hi95": mean + half,
        "delta_q05": np.quantile(differences, 0.05) if n else np.nan,
        "delta_q95": np.quantile(differences, 0.95) if n else np.nan,
    }


def _nominal_columns(point_nominal: pd.DataFrame | None) -> dict[str, Any]:
    bad = point_nominal is not None and bool(point_nominal["nonfinite"].any())
    return {
        "nominal_nonfinite": bad,
        "nominal_mean_rate_hz": (
            np.nan if point_nominal is None or bad else point_nominal["rate_hz"].mean()
        ),
    }


def _nominal_accuracy(point_nominal: pd.DataFrame | None) -> dict[str, float]:
    """Test accuracy of a point's nominal instance, from its (trial, neuron) rows, with the
    Wilson 95 % interval over its test samples."""
    if point_nominal is None or "predicted" not in point_nominal:
        return {"nominal_accuracy": np.nan, "nominal_accuracy_lo95": np.nan,
                "nominal_accuracy_hi95": np.nan}  # fmt: skip
    per_trial = point_nominal.drop_duplicates("trial")
    value = float(held_out_accuracy(per_trial, "predicted", ["point"]).iloc[0])
    n_test = int((per_trial["split"] == "test").sum())
    low, high = (np.nan, np.nan) if np.isnan(value) else wilson_interval(
        round(value * n_test), n_test
    )  # fmt: skip
    return {"nominal_accuracy": value, "nominal_accuracy_lo95": low,
            "nominal_accuracy_hi95": high}  # fmt: skip


def _correctness(instances: pd.DataFrame, predicted: str) -> dict[int, pd.DataFrame]:
    """Per point: (chip x test trial) 1/0 of each test row's prediction (NaN: missing)."""
    test = instances[instances["split"] == "test"]
    guess = test[predicted].to_numpy(dtype=np.float64, na_value=np.nan)
    correct = np.where(np.isnan(guess), np.nan, guess == test["label"].to_numpy())
    frame = pd.DataFrame({"point": test["point"].to_numpy(), "chip": test["chip"].to_numpy(),
                          "trial": test["trial"].to_numpy(), "correct": correct})  # fmt: skip
    return {
        int(point): rows.pivot(index="chip", columns="trial", values="correct")
        for point, rows in frame.groupby("point")
    }


def _accuracy_intervals(
    correct: dict[int, pd.DataFrame], point: int, here: pd.Series, base: pd.Series | None,
    baseline: int,
) -> dict[str, float]:
    """Two-way bootstrap intervals (chips and test samples) of the mean accuracy of the
    chips with a finite one, and of its paired change over the chips finite at both points
    (`base`: the baseline's chip accuracies; None: not paired). Keyed by the point."""
    matrix = correct.get(point)
    chips = here.dropna().index
    if matrix is None:
        mean = (np.nan, np.nan)
    else:
        mean = two_way_bootstrap(matrix.loc[chips].to_numpy(), seed=point)
    change = (np.nan, np.nan)
    if base is not None and matrix is not None and baseline in correct:
        reference = correct[baseline]
        common = chips.intersection(base.dropna().index)
        if list(reference.columns) == list(matrix.columns):
            paired = matrix.loc[common].to_numpy() - reference.loc[common].to_numpy()
            change = two_way_bootstrap(paired, seed=point)
    return {"mean_lo95": mean[0], "mean_hi95": mean[1],
            "delta_lo95": change[0], "delta_hi95": change[1]}  # fmt: skip


def _at_target(values: pd.Series, target: float) -> float:
    """Share of the chips with an accuracy at or above `target` (NaN: none has one)."""
    values = values.dropna()
    return float((values >= target).mean()) if len(values) else np.nan


def _spread(values: pd.Series) -> dict[str, float]:
    """Mean, std, quantiles (linear interpolation) and `n`, over the finite values."""
    values = values.astype(np.float64).dropna()
    row = {"n": len(values), "mean": values.mean(),
           "std": values.std(ddof=1) if len(values) > 1 else np.nan}  # fmt: skip
    for q in QUANTILES:
        row[f"q{round(q * 100):02d}"] = values.quantile(q) if len(values) else np.nan
    return row


def summarize(
    chips: pd.DataFrame,
    instances: pd.DataFrame,
    sweep_columns: list[str],
    nominal: pd.DataFrame,
    baseline: int,
    paired: bool,
    accuracy: AccuracySettings | None = None,
    quantization_loss: Mapping[int, float] | None = None,
) -> pd.DataFrame:
    """Per sweep point: counts, non-finite chips and rows, the nominal rate, the
    `quantization_loss` given for the point (NaN where none is: float weights), then the
    mean/std/quantiles over finite chips of each chip-level metric and its paired change
    against point `baseline` (NaN when not `paired` or the baseline has no chips here).
    With `accuracy`: the nominal accuracy, the chance level, and per accuracy the share of
    finite chips at or above the target (`<accuracy>.frac_at_target`).

    Non-finite chips are excluded from the statistics and listed instead (JSON lists, so
    that none reads back as `[]`, not as a missing value); a non-finite nominal instance
    (any trial) is flagged (`nominal_nonfinite`) and gives no nominal rate.
    `nominal`: the per-neuron nominal table (columns point, rate_hz, nonfinite).
    """
    nominal_by_point = dict(list(nominal.groupby("point"))) if not nominal.empty else {}
    metrics = SUMMARY_METRICS
    correct: dict[str, dict[int, pd.DataFrame]] = {}
    if accuracy is not None:
        metrics += tuple(metric for metric in ACCURACY_METRICS if metric in chips)
        correct = {metric: _correctness(instances, ACCURACY_METRICS[metric])
                   for metric in ACCURACY_METRICS if metric in chips}  # fmt: skip
    bad_rows = instances.loc[instances["nonfinite"], ["point", "instance"]]
    finite = chips[~chips["nonfinite"]].set_index("chip")
    base = finite[finite["point"] == baseline] if paired else finite.iloc[:0]
    rows = []
    for point, group in chips.groupby("point", sort=True):
        row: dict[str, Any] = {"point": point}
        row.update({column: group[column].iloc[0] for column in sweep_columns})
        row["n_chips"] = len(group)
        row["n_trials"] = int(group["n_trials"].max())
        row["n_instances"] = int(group["n_trials"].sum())
        row["n_nonfinite"] = int(group["nonfinite"].sum())
        row["nonfinite_chips"] = json.dumps([int(c) for c in group.loc[group["nonfinite"], "chip"]])
        row["nonfinite_instances"] = json.dumps(
            [int(i) for i in bad_rows.loc[bad_rows["point"] == point, "instance"]]
        )
        row["nonphysical"] = int(round(group["nonphysical"].sum()))
        row.update(_nominal_columns(nominal_by_point.get(point)))
        row["quantization_loss"] = (quantization_loss or {}).get(point, np.nan)
        if accuracy is not None:
            row.update(_nominal_accuracy(nominal_by_point.get(point)))
            row["chance_level"] = accuracy.chance.get(point, np.nan)
        mine = finite[finite["point"] == point]
        for metric in metrics:
            row.update({f"{metric}.{k}": v for k, v in _spread(mine[metric]).items()})
            if metric in ACCURACY_METRICS:
                row[f"{metric}.frac_at_target"] = _at_target(mine[metric], accuracy.target)
        row["n_paired"] = int(mine.index.isin(base.index).sum())
        for metric in metrics:
            changes = paired_changes(mine[metric], base[metric])
            if metric in correct:
                changes["delta_lo95_chips"] = changes.pop("delta_lo95")
                changes["delta_hi95_chips"] = changes.pop("delta_hi95")
                changes.update(_accuracy_intervals(
                    correct[metric], point, mine[metric],
                    base[metric] if paired else None, baseline,
                ))  # fmt: skip
            row.update({f"{metric}.{k}": v for k, v in changes.items()})
        rows.append(row)
    return pd.DataFrame(rows)
