"""Figures of a run (PNG, under figures/): rate distributions, robustness curve, rasters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .tables import ChunkStore  # noqa: E402

if TYPE_CHECKING:
    from .experiment import Outcome, Plan

__all__ = ["write_figures", "point_labels", "plot_rates", "plot_robustness", "plot_raster"]

MAX_PANELS = 12


def point_labels(summary: pd.DataFrame, sweep_columns: list[str]) -> list[str]:
    if not sweep_columns:
        return [f"point {p}" for p in summary["point"]]
    return [
        ", ".join(f"{c.split('.')[-1]}={row[c]}" for c in sweep_columns)
        for _, row in summary.iterrows()
    ]


def plot_rates(
    rates: pd.DataFrame, nominal: pd.DataFrame, labels: list[str], path: Path, per_neuron: bool
) -> None:
    """Per sweep point: distribution of rates over mismatched instances vs the nominal one.

    rates: columns point, rate_hz (per neuron and instance, or per instance means).
    """
    points = sorted(rates["point"].unique())[:MAX_PANELS]
    columns = min(len(points), 4)
    rows = -(-len(points) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    high = max(rates["rate_hz"].quantile(0.999), nominal["rate_hz"].max(), 1.0)
    bins = np.linspace(0, high, 41)
    for axis, point in zip(axes.flat, points, strict=False):
        axis.hist(rates.loc[rates["point"] == point, "rate_hz"], bins=bins, density=True,
                  alpha=0.6, label="mismatched")  # fmt: skip
        nominal_rates = nominal.loc[nominal["point"] == point, "rate_hz"]
        if per_neuron:
            axis.hist(
                nominal_rates, bins=bins, density=True, histtype="step", color="k", label="nominal"
            )
        else:
            axis.axvline(nominal_rates.mean(), color="k", label="nominal")
        axis.set_title(labels[point], fontsize=8)
        axis.set_xlabel("rate [Hz]" if per_neuron else "instance mean rate [Hz]")
    for axis in list(axes.flat)[len(points) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_robustness(
    summary: pd.DataFrame, sweep_columns: list[str], labels: list[str], path: Path
) -> None:
    """Median and 5-95 % band over samples of rate, relative error and within-tolerance."""
    numeric = len(sweep_columns) == 1 and pd.api.types.is_numeric_dtype(summary[sweep_columns[0]])
    x = summary[sweep_columns[0]].to_numpy(float) if numeric else summary["point"].to_numpy(float)
    panels = (("mean_rate_hz", "mean rate [Hz]"), ("rate_rel_error", "relative rate error"),
              ("frac_within", "fraction within tolerance"))  # fmt: skip
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for axis, (metric, title) in zip(axes, panels, strict=True):
        axis.fill_between(
            x, summary[f"{metric}.q05"], summary[f"{metric}.q95"], alpha=0.3, label="5-95 %"
        )
        axis.plot(x, summary[f"{metric}.q50"], "o-", label="median")
        if metric == "mean_rate_hz":
            axis.plot(x, summary["nominal_mean_rate_hz"], "k--", label="nominal")
        axis.set_title(title)
        if numeric:
            axis.set_xlabel(sweep_columns[0])
        else:
            axis.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_raster(
    nominal: np.ndarray, mismatched: np.ndarray, dt: float, titles: tuple[str, str], path: Path
) -> None:
    """Side by side spike rasters (T, N) of the nominal and one mismatched instance."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for axis, raster, title in zip(axes, (nominal, mismatched), titles, strict=True):
        steps, neurons = np.nonzero(raster)
        axis.scatter(steps * dt, neurons, s=1.5, marker=".", color="k", linewidths=0)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("time [s]")
    axes[0].set_ylabel("neuron")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _first_raster(stores: list[ChunkStore], label: str) -> np.ndarray | None:
    return next((r for r in (s.read_raster(label) for s in stores) if r is not None), None)


def write_figures(
    plan: Plan, outcome: Outcome, run_dir: Path, raster_stores: list[ChunkStore] | None = None
) -> list[Path]:
    """All figures of a run into run_dir/figures; returns the paths written.

    Rasters are read from `raster_stores` (default: the run's own chunks; collect passes
    the jobs' stores). Non-finite instances (and nominal ones) are left out of the plots.
    """
    folder = run_dir / "figures"
    folder.mkdir(exist_ok=True)
    labels = point_labels(outcome.summary, plan.sweep_columns)
    labels_by_point = dict(zip(outcome.summary["point"], labels, strict=True))
    labels = [labels_by_point.get(p.sweep.index, "") for p in plan.points]
    neurons_path = run_dir / "neurons.parquet"
    per_neuron = neurons_path.exists() and plan.config["output"]["neurons"]
    if per_neuron:
        rates = pd.read_parquet(neurons_path, columns=["point", "rate_hz", "nonfinite"])
    else:
        rates = outcome.instances[["point", "mean_rate_hz", "nonfinite"]].rename(
            columns={"mean_rate_hz": "rate_hz"}
        )
    rates = rates[~rates["nonfinite"]]
    finite_nominal = outcome.nominal[~outcome.nominal["nonfinite"]]
    written = [folder / "robustness.png"]
    plot_robustness(outcome.summary, plan.sweep_columns, labels, written[0])
    if not rates.empty:  # empty when every instance is non-finite
        written.append(folder / "rates.png")
        plot_rates(rates, finite_nominal, labels, written[-1], per_neuron)
    stores = raster_stores if raster_stores is not None else [ChunkStore(run_dir)]
    instance = plan.raster_instance
    point = plan.point_of(instance)
    mismatched = _first_raster(stores, f"i{instance:09d}")
    nominal = _first_raster(stores, f"nominal-p{point.sweep.index:05d}")
    if mismatched is not None and nominal is not None:
        written.append(folder / "raster.png")
        titles = (f"nominal, {labels[point.sweep.index]}", f"instance {instance} (mismatched)")
        plot_raster(nominal, mismatched, point.network.spec.dt, titles, written[-1])
    return written
