"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from runner.study.outcome import Outcome
    from runner.study.plan import Plan

__all__ = ["render_summary"]


def _spread(summary: pd.DataFrame, metric: str, digits: int) -> pd.Series:
    """'median [q05, q95]' per sweep point."""
    return summary.apply(
        lambda row: (
            f"{row[f'{metric}.q50']:.{digits}f} [{row[f'{metric}.q05']:.{digits}f}, "
            f"{row[f'{metric}.q95']:.{digits}f}]"
        ),
        axis=1,
    )


def _change(summary: pd.DataFrame, metric: str, digits: int) -> pd.Series:
    """'mean change [95 % interval]' per sweep point."""
    mean, low, high = (f"{metric}.delta_{k}" for k in ("mean", "lo95", "hi95"))
    return summary.apply(
        lambda row: f"{row[mean]:+.{digits}f} [{row[low]:+.{digits}f}, {row[high]:+.{digits}f}]",
        axis=1,
    )


def render_summary(plan: Plan, outcome: Outcome, run_dir: Path) -> str:
    """Header (what ran, where, how fast) and one line per sweep point (statistics over
    chips, each chip's metrics averaged over its trials), with the paired change of the
    rate error against the baseline point when the sweep has several points."""
    summary = outcome.summary
    spec = plan.points[0].network.spec
    rate = outcome.neuron_steps / max(outcome.seconds, 1e-9)
    grid = (f"{len(plan.points)} sweep point(s) x {plan.n_chips} chips "
            f"({plan.config.sweep.pairing.value}) x {plan.n_trials} trial(s)")  # fmt: skip
    n_rows = sum(c.size for c in plan.chunks)
    name = plan.config.network.name
    lines = [
        f"network {name}: {spec.n_neurons} neurons in {spec.n_cluster} core(s), "
        f"{spec.n_inputs} inputs, {plan.points[0].stimulus.n_steps} steps of {spec.dt:g} s",
        f"{grid}; this shard {n_rows} rows, {outcome.simulated} simulated now on "
        f"backend {outcome.backend} in {outcome.seconds:.1f} s ({rate:.3g} neuron-steps/s)"
        if outcome.simulated
        else f"{grid}; {n_rows} rows, all from chunks already in the folder",
    ]
    table = pd.DataFrame({"point": summary["point"]})
    for column in plan.sweep_columns:
        table[column] = summary[column]
    table["chips"] = summary["n_chips"]
    table["nonfinite"] = summary["n_nonfinite"]
    table["nominal Hz"] = [
        "non-finite" if bad else f"{rate:.2f}"
        for bad, rate in zip(summary["nominal_nonfinite"], summary["nominal_mean_rate_hz"],
                             strict=True)
    ]  # fmt: skip
    table["mean rate Hz (std)"] = summary.apply(
        lambda row: f"{row['mean_rate_hz.mean']:.2f} ({row['mean_rate_hz.std']:.2f})", axis=1
    )
    table["rate std over neurons"] = summary["rate_std_hz.mean"].map("{:.2f}".format)
    table["rel. error median [5%, 95%]"] = _spread(summary, "rate_rel_error", 3)
    table["corr"] = summary["rate_corr.q50"].map("{:.3f}".format)
    within = plan.config.metrics.within
    table[f"within ±{within:.0%}"] = summary["frac_within.mean"].map("{:.3f}".format)
    table["silent"] = summary["n_silent.mean"].map("{:.1f}".format)
    table["saturated"] = summary["n_saturated.mean"].map("{:.1f}".format)
    several = len(summary) > 1
    if several and plan.paired:
        change = _change(summary, "rate_rel_error", 3)
        table[f"Δ rel. error vs point {plan.baseline} [95%]"] = change
    lines += ["", table.to_string(index=False), ""]
    if several and not plan.paired:
        lines.append("pairing=independent: chip c is a different chip at every point, so no "
                     "paired change is computed")  # fmt: skip
    for _, row in summary.iterrows():
        if row["nominal_nonfinite"]:
            lines.append(f"point {row['point']}: the nominal instance is non-finite (no nominal "
                         "rate, robustness metrics against it are NaN)")  # fmt: skip
        if row["n_nonfinite"] > 0:
            lines.append(
                f"point {row['point']}: non-finite chips (excluded): "
                f"{row['nonfinite_chips']}, rows {row['nonfinite_instances']}"
            )
    if "accuracy.q50" in summary:
        lines += _accuracy_table(plan, summary, several and plan.paired)
    lines.append(f"tables: {run_dir}/{{instances.parquet, chips.parquet, summary.csv, ...}}")
    return "\n".join(lines)


def _accuracy_table(plan: Plan, summary: pd.DataFrame, changes: bool) -> list[str]:
    """Test accuracy per sweep point: nominal, over chips (transferred readout, and
    refitted per chip when asked), the share at the target, the paired change."""
    target = plan.config.readout.target
    table = pd.DataFrame({"point": summary["point"]})
    for column in plan.sweep_columns:
        table[column] = summary[column]
    table["nominal"] = summary["nominal_accuracy"].map("{:.3f}".format)
    kinds = [("accuracy", "transferred")]
    if "accuracy_per_chip.q50" in summary:
        kinds.append(("accuracy_per_chip", "per chip"))
    for metric, name in kinds:
        table[f"{name} mean"] = summary[f"{metric}.mean"].map("{:.3f}".format)
        table[f"{name} median [5%, 95%]"] = _spread(summary, metric, 3)
        table[f"{name} ≥{target:g}"] = summary[f"{metric}.frac_at_target"].map("{:.2f}".format)
        if changes:
            table[f"Δ {name} vs point {plan.baseline} [95%]"] = _change(summary, metric, 3)
    chance = ", ".join(sorted({f"{c:.3f}" for c in summary["chance_level"]}))
    return [f"test accuracy over chips (chance {chance}; ≥{target:g}: share of chips at "
            "readout.target):", table.to_string(index=False), ""]
