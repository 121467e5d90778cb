"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from runner.analysis.chip_statistics import SUMMARY_METRICS

if TYPE_CHECKING:
    from runner.study.outcome import Outcome
    from runner.study.plan import Plan

__all__ = ["render_summary"]


FEW_CHIPS = 20  # below this many chips, q05 and q95 are the extremes or nearly: not shown


def _spread(summary: pd.DataFrame, metric: str, digits: int) -> pd.Series:
    """'median [q05, q95]' per sweep point ('median [few chips]' below FEW_CHIPS)."""

    def text(row: pd.Series) -> str:
        median = f"{row[f'{metric}.q50']:.{digits}f}"
        if row[f"{metric}.n"] < FEW_CHIPS:
            return f"{median} [few chips]"
        return f"{median} [{row[f'{metric}.q05']:.{digits}f}, {row[f'{metric}.q95']:.{digits}f}]"

    return summary.apply(text, axis=1)


def _interval(summary: pd.DataFrame, value: str, low: str, high: str) -> pd.Series:
    """'value [low, high]' per sweep point, 3 digits."""
    return summary.apply(lambda row: f"{row[value]:.3f} [{row[low]:.3f}, {row[high]:.3f}]",
                         axis=1)  # fmt: skip


def _sweep_values(values: pd.Series) -> pd.Series:
    """A sweep column as printed: a column with a null value (float weights among
    `network.quantize.n_bits`) shows `null` and its numbers as given (4, not 4.0)."""
    if not values.isna().any():
        return values
    return values.map(lambda v: "null" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else v)


def _unmeasured(summary: pd.DataFrame) -> list[str]:
    """A line per point where finite chips have a NaN metric (left out of its statistics)."""
    lines = []
    for _, row in summary.iterrows():
        finite = row["n_chips"] - row["n_nonfinite"]
        short = [f"{metric} ({finite - row[f'{metric}.n']})" for metric in SUMMARY_METRICS
                 if row[f"{metric}.n"] < finite]  # fmt: skip
        if short:
            lines.append(f"point {row['point']}: of {finite} finite chips, some have no value of "
                         f"{', '.join(short)}: left out of those statistics")  # fmt: skip
    return lines


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
    rate error against the baseline point when the sweep has several points, and the
    quantization loss when some point's weights were quantized (`float`: those that were
    not)."""
    summary = outcome.summary
    spec = plan.points[0].network.spec
    rate = outcome.neuron_steps / max(outcome.seconds, 1e-9)
    trials = "sample(s)" if plan.points[0].stimulus.dataset is not None else "trial(s)"
    grid = (f"{len(plan.points)} sweep point(s) x {plan.n_chips} chips "
            f"({plan.config.sweep.pairing.value}) x {plan.n_trials} {trials}")  # fmt: skip
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
        table[column] = _sweep_values(summary[column])
    if summary["quantization_loss"].notna().any():
        table["quant. loss"] = summary["quantization_loss"].map(
            lambda loss: "float" if math.isnan(loss) else f"{loss:.3g}"
        )
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
    lines += _unmeasured(summary)
    lines += _core_table(plan, outcome.cores, summary)
    if "accuracy.q50" in summary:
        lines += _accuracy_table(plan, summary, several and plan.paired)
    lines.append(f"tables: {run_dir}/{{instances.parquet, chips.parquet, summary.csv, ...}}")
    return "\n".join(lines)


def _core_table(plan: Plan, cores: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """Per point and core, over the finite chips (cores.parquet): mismatch hits cores with
    other biases differently. Nothing for a one-core network."""
    if cores.empty or cores["core"].nunique() < 2:
        return []
    finite = cores[~cores["nonfinite"]]
    groups = finite.groupby(["point", "core"], sort=True)
    table = groups["rate_rel_error"].median().rename("rel. error median").reset_index()
    table["mean rate Hz"] = groups["mean_rate_hz"].mean().to_numpy()
    table[f"within ±{plan.config.metrics.within:.0%}"] = groups["frac_within"].mean().to_numpy()
    values = summary.set_index("point")
    for column in reversed(plan.sweep_columns):
        table.insert(1, column, table["point"].map(_sweep_values(values[column])))
    formats = {"rel. error median": "{:.3f}", "mean rate Hz": "{:.2f}"}
    for column, text in formats.items():
        table[column] = table[column].map(text.format)
    within = table.columns[-1]
    table[within] = table[within].map("{:.3f}".format)
    return ["per core (over the finite chips; cores.parquet):", table.to_string(index=False), ""]


def _accuracy_table(plan: Plan, summary: pd.DataFrame, changes: bool) -> list[str]:
    """Test accuracy per sweep point: nominal, over chips (transferred readout, and
    refitted per chip when asked), the share at the target, the paired change."""
    target = plan.config.readout.target
    table = pd.DataFrame({"point": summary["point"]})
    for column in plan.sweep_columns:
        table[column] = _sweep_values(summary[column])
    table["nominal [95%]"] = _interval(summary, "nominal_accuracy", "nominal_accuracy_lo95",
                                       "nominal_accuracy_hi95")  # fmt: skip
    kinds = [("accuracy", "transferred")]
    if "accuracy_per_chip.q50" in summary:
        kinds.append(("accuracy_per_chip", "per chip"))
    for metric, name in kinds:
        table[f"{name} mean [95%]"] = _interval(summary, f"{metric}.mean",
                                                f"{metric}.mean_lo95", f"{metric}.mean_hi95")
        table[f"{name} median [5%, 95%]"] = _spread(summary, metric, 3)
        table[f"{name} ≥{target:g}"] = summary[f"{metric}.frac_at_target"].map("{:.2f}".format)
        if changes:
            table[f"Δ {name} vs point {plan.baseline} [95%]"] = _change(summary, metric, 3)
    chance = ", ".join(sorted({f"{c:.3f}" for c in summary["chance_level"]}))
    return [f"test accuracy over chips (chance {chance}; ≥{target:g}: share of chips at "
            "readout.target; [95%]: over chips and test samples, nominal over test samples):",
            table.to_string(index=False), ""]  # fmt: skip
