"""Chip-level values and the per-point summary: what a study reports.

A chip is one (point, chip) of the sweep; it ran `n_trials` rows (one per trial). Its
value of a metric is the mean over its trials (NaN trial values skipped, as everywhere in
the summary); it is non-finite when any trial is. `summary.csv` describes, per point, the
distribution over finite chips, and the paired change against a baseline point: for every
chip finite at both points, d = value(point) - value(baseline); the 95 % interval of the
mean of d is the normal approximation mean ± 1.96 sd / sqrt(n) (no SciPy). Under
`pairing=independent` chip c at two points are unrelated chips, so there is no pairing to
measure and the change columns are NaN.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "SUMMARY_METRICS",
    "QUANTILES",
    "chip_table",
    "paired_changes",
    "summarize",
]

SUMMARY_METRICS: tuple[str, ...] = (
    "mean_rate_hz", "rate_std_hz", "pop_rate_std_hz", "pop_rate_peak_hz", "mean_isi_cv",
    "mean_first_spike_s", "n_silent", "n_saturated", "rate_rel_error", "rate_corr", "frac_within",
)  # fmt: skip
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_Z95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal

_KEYS = ["point", "chip"]
_NOT_AVERAGED = {"instance", "point", "chip", "trial", "seed", "nonfinite", "nonfinite_step"}


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
    return table.reset_index()


def paired_changes(here: pd.Series, baseline: pd.Series) -> dict[str, float]:
    """Change statistics of one metric between two points, each given per chip (index:
    chip id, finite chips only): mean and 95 % interval of the mean of the per-chip
    differences, and their 5 % / 95 % quantiles."""
    differences = (here - baseline.reindex(here.index)).dropna().to_numpy(np.float64)
    n = differences.size
    mean = differences.mean() if n else np.nan
    half = _Z95 * differences.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
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


def _spread(values: pd.Series) -> dict[str, float]:
    values = values.astype(np.float64)
    row = {"mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else np.nan}
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
) -> pd.DataFrame:
    """Per sweep point: counts, non-finite chips and rows, the nominal rate, then the
    mean/std/quantiles over finite chips of each chip-level metric and its paired change
    against point `baseline` (NaN when not `paired` or the baseline has no chips here).

    Non-finite chips are excluded from the statistics and listed instead (JSON lists, so
    that none reads back as `[]`, not as a missing value); a non-finite nominal instance
    (any trial) is flagged (`nominal_nonfinite`) and gives no nominal rate.
    `nominal`: the per-neuron nominal table (columns point, rate_hz, nonfinite).
    """
    nominal_by_point = dict(list(nominal.groupby("point"))) if not nominal.empty else {}
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
        mine = finite[finite["point"] == point]
        for metric in SUMMARY_METRICS:
            row.update({f"{metric}.{k}": v for k, v in _spread(mine[metric]).items()})
        row["n_paired"] = int(mine.index.isin(base.index).sum())
        for metric in SUMMARY_METRICS:
            changes = paired_changes(mine[metric], base[metric])
            row.update({f"{metric}.{k}": v for k, v in changes.items()})
        rows.append(row)
    return pd.DataFrame(rows)
