"""Figures of a run (PNG, under figures/): rate distributions, robustness curves, chips'
own response curves, task accuracy, rasters.

Each `plot_*` function returns its Figure (tests inspect it); `write_figures` saves them.
Legends sit outside the axes, sweep axes carry units (or "×" for scale factors, % for the
mismatch level), and histograms bin rates on the grid they live on, k / (T·dt).
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from runner.study.run_folder import ChunkStore, nominal_raster_label  # noqa: E402

if TYPE_CHECKING:
    from runner.study.outcome import Outcome
    from runner.study.plan import Plan

__all__ = [
    "write_figures",
    "axis_label",
    "axis_values",
    "point_labels",
    "rate_bins",
    "plot_rates",
    "plot_robustness",
    "plot_chip_curves",
    "plot_accuracy",
    "plot_raster",
]

log = logging.getLogger(__name__)

MAX_PANELS = 12
CHIPS_SHOWN = 6  # chips drawn one by one over the population band
MAX_BINS = 40
_LAYOUT_UNITS = {"C_": "F", "Io": "A", "Ut": "V", "Vth": "V"}
_SCALAR_UNITS = {"Iscale": "A", "dt": "s", "rate_hz": "Hz", "n_steps": "steps"}


def _is_percent(column: str) -> bool:
    return column == "network.percent_mismatch"


def _unit(path: str) -> str | None:
    """The unit of the field at a sweep path (None: dimensionless)."""
    parts = [part for part in path.split(".") if not part.isdigit()]
    name = parts[-1]
    if "currents" in parts:
        return "A"
    if "layout" in parts:
        return next((unit for prefix, unit in _LAYOUT_UNITS.items() if name.startswith(prefix)),
                    None)  # fmt: skip
    return _SCALAR_UNITS.get(name)


def _short_name(path: str) -> str:
    """`network.currents.Idc.2` -> `Idc (core 2)`; `network.percent_mismatch` -> itself."""
    parts = path.split(".")
    if parts[-1].isdigit():
        return f"{parts[-2]} (core {parts[-1]})"
    return parts[-1]


def axis_label(column: str) -> str:
    """Axis title of a sweep column: its field and unit, `× nominal` for scale factors."""
    path = column.removeprefix("scale:")
    if column.startswith("scale:"):
        return f"{_short_name(path)} [× nominal]"
    if _is_percent(column):
        return "percent_mismatch (3σ) [%]"
    unit = _unit(path)
    return _short_name(path) + (f" [{unit}]" if unit else "")


def axis_values(column: str, values: pd.Series) -> pd.Series:
    """Sweep values as plotted: the mismatch level in % (0.1 -> 10)."""
    return values * 100 if _is_percent(column) else values


def _numeric(values: pd.Series) -> bool:
    """Are these sweep values drawn on a number line? Numbers without a missing one: a null
    value (float weights among `network.quantize.n_bits`) has no place there, so such an
    axis is drawn as categories."""
    return pd.api.types.is_numeric_dtype(values) and bool(values.notna().all())


def _tick(value: Any) -> str:
    """A sweep value as a category label: `null` for a missing one, numbers short."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _value_text(column: str, value: Any) -> str:
    """One sweep value for a legend or title: `Itau_mem ×0.5`, `Idc 5e-12 A`, `mismatch 10 %`."""
    path = column.removeprefix("scale:")
    number = _tick(value)
    if column.startswith("scale:"):
        return f"{_short_name(path)} ×{number}"
    if _is_percent(column):
        return f"mismatch {value * 100:g} %"
    unit = _unit(path)
    return f"{_short_name(path)} {number}" + (f" {unit}" if unit else "")


def point_labels(summary: pd.DataFrame, sweep_columns: list[str]) -> list[str]:
    if not sweep_columns:
        return [f"point {p}" for p in summary["point"]]
    return [_values_text(sweep_columns, row[sweep_columns]) for _, row in summary.iterrows()]


def _values_text(columns: list[str], values: Any) -> str:
    return ", ".join(_value_text(c, v) for c, v in zip(columns, values, strict=True))


def rate_bins(resolution: float, high: float) -> np.ndarray:
    """Histogram edges for rates that are multiples of `resolution` (1/(T·dt) per neuron).

    Each bin is centred on whole multiples and holds the same number of them, so integer
    spike counts never alias into alternately full and empty bins.
    """
    n_values = math.floor(high / resolution + 0.5) + 1
    per_bin = max(1, math.ceil(n_values / MAX_BINS))
    n_bins = math.ceil(n_values / per_bin)
    return (np.arange(n_bins + 1) * per_bin - 0.5) * resolution


def _shown_points(points: list[int]) -> list[int]:
    """At most MAX_PANELS points, evenly spread over the sweep, first and last included."""
    if len(points) <= MAX_PANELS:
        return points
    picks = np.unique(np.linspace(0, len(points) - 1, MAX_PANELS).round().astype(int))
    return [points[i] for i in picks]


def _fractions(values: np.ndarray) -> np.ndarray:
    """Histogram weights that make the bars the fraction of `values` in each bin."""
    return np.full(values.size, 1 / max(values.size, 1))


def _outside_legend(figure: Figure, handles: list, title: str | None = None) -> None:
    figure.legend(handles=handles, loc="outside right upper", fontsize=8, title=title,
                  title_fontsize=8, frameon=False)  # fmt: skip


def plot_rates(
    rates: pd.DataFrame,
    nominal: pd.DataFrame,
    labels: list[str],
    resolution: dict[int, float],
    per_neuron: bool,
) -> Figure:
    """Per sweep point: the rates of the mismatched instances against the nominal instance.

    rates: columns point, rate_hz (per neuron and instance, or per-instance means);
    resolution: point -> the spacing of possible rates, 1/(T·dt) (divided by N for means).
    Bars show the fraction of neurons (of instances) per bin.
    """
    all_points = sorted(rates["point"].unique())
    points = _shown_points(all_points)
    columns = min(len(points), 4)
    rows = -(-len(points) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns + 1.6, 2.6 * rows + 0.4),
                                squeeze=False, layout="constrained")  # fmt: skip
    high = max(rates["rate_hz"].quantile(0.999), nominal["rate_hz"].max(), 1.0)
    for axis, point in zip(axes.flat, points, strict=False):
        bins = rate_bins(resolution[point], high)
        values = rates.loc[rates["point"] == point, "rate_hz"].to_numpy()
        axis.hist(values, bins=bins, weights=_fractions(values), alpha=0.6, color="C0")
        nominal_rates = nominal.loc[nominal["point"] == point, "rate_hz"].to_numpy()
        if per_neuron:
            axis.hist(nominal_rates, bins=bins, weights=_fractions(nominal_rates),
                      histtype="step", color="k")  # fmt: skip
        else:
            axis.axvline(nominal_rates.mean(), color="k")
        axis.set_title(labels[point], fontsize=8)
    for index, axis in enumerate(axes.flat):
        if index >= len(points):
            axis.axis("off")
            continue
        axis.set_xlim(rate_bins(min(resolution.values()), high)[[0, -1]])
        if index % columns == 0:
            axis.set_ylabel("fraction of neurons" if per_neuron else "fraction of instances")
        if index + columns >= len(points):  # the lowest panel of its column
            axis.set_xlabel("rate [Hz]" if per_neuron else "instance mean rate [Hz]")
    _outside_legend(figure, [
        Patch(color="C0", alpha=0.6, label="mismatched"),
        Line2D([], [], color="k", label="nominal (no mismatch)"),
    ])  # fmt: skip
    if len(points) < len(all_points):
        figure.suptitle(f"{len(points)} of {len(all_points)} sweep points", fontsize=9)
    return figure


def _line_groups(summary: pd.DataFrame, sweep_columns: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """One curve per value of every axis but the last (the x axis), in sweep order."""
    if len(sweep_columns) < 2:
        return [("", summary)]
    outer = sweep_columns[:-1]
    return [(_values_text(outer, key), rows)
            for key, rows in summary.groupby(outer, sort=False, dropna=False)]  # fmt: skip


_ROBUSTNESS_METRICS = ("mean_rate_hz", "rate_rel_error", "frac_within")


def _x_positions(rows: pd.DataFrame, x_column: str | None, numeric: bool) -> np.ndarray:
    if x_column is None:
        return np.zeros(len(rows))
    if numeric:
        return axis_values(x_column, rows[x_column]).to_numpy(float)
    return np.arange(len(rows), dtype=float)


def _draw_curve(axes: np.ndarray, x: np.ndarray, rows: pd.DataFrame, color: str,
                nominal_color: str) -> None:  # fmt: skip
    """One curve in each panel: median and 5-95 % band (an error bar for a single point)."""
    for axis, metric in zip(axes, _ROBUSTNESS_METRICS, strict=True):
        median = rows[f"{metric}.q50"].to_numpy(float)
        low, high = rows[f"{metric}.q05"].to_numpy(float), rows[f"{metric}.q95"].to_numpy(float)
        if len(rows) == 1:
            axis.errorbar(x, median, yerr=[median - low, high - median], fmt="o", color=color,
                          capsize=4)  # fmt: skip
        else:
            axis.fill_between(x, low, high, color=color, alpha=0.25, linewidth=0)
            axis.plot(x, median, "o-", color=color)
    nominal = rows["nominal_mean_rate_hz"].to_numpy(float)
    style = {"marker": "_", "markersize": 14, "linestyle": "none"} if len(rows) == 1 else {
        "linestyle": "--"}  # fmt: skip
    axes[0].plot(x, nominal, color=nominal_color, alpha=0.8, **style)


def _style_handles(one_point_per_curve: bool) -> list:
    if one_point_per_curve:
        return [
            Line2D([], [], color="0.3", marker="o", label="median over samples,\nbar: 5–95 %"),
            Line2D([], [], color="k", marker="_", markersize=14, linestyle="none",
                   label="nominal (no mismatch)"),
        ]  # fmt: skip
    return [
        Line2D([], [], color="0.3", marker="o", label="median over samples"),
        Patch(color="0.3", alpha=0.25, label="5–95 % of samples"),
        Line2D([], [], color="k", linestyle="--", label="nominal (no mismatch)"),
    ]


def plot_robustness(summary: pd.DataFrame, sweep_columns: list[str], within: float) -> Figure:
    """Median and 5-95 % band over the samples of mean rate, rate error and the fraction of
    neurons within ±`within` of their nominal rate, along the sweep.

    The last sweep axis is the x axis; every combination of the other axes is one curve.
    A single point is drawn as a marker with its band as an error bar.
    """
    x_column = sweep_columns[-1] if sweep_columns else None
    numeric = x_column is not None and _numeric(summary[x_column])
    titles = ("mean rate [Hz]", "relative rate error Σ|r−r₀|/Σr₀",
              f"fraction of neurons within ±{within * 100:g} %\nof their nominal rate")  # fmt: skip
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    groups = _line_groups(summary, sweep_columns)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    for (_, rows), color in zip(groups, colors, strict=True):
        x = _x_positions(rows, x_column, numeric)
        _draw_curve(axes, x, rows, color, "k" if len(groups) == 1 else color)
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title, fontsize=9)
        if x_column is None:
            axis.set_xticks([0.0], ["single point"])
            axis.set_xlim(-1, 1)
            continue
        axis.set_xlabel(axis_label(x_column))
        if numeric:
            x_all = axis_values(x_column, summary[x_column]).to_numpy(float)
            if (x_all > 0).all() and x_all.max() / x_all.min() >= 20:
                axis.set_xscale("log")
        else:
            first = groups[0][1]
            axis.set_xticks(np.arange(len(first)), [_tick(v) for v in first[x_column]],
                            rotation=30, ha="right", fontsize=7)  # fmt: skip
    axes[2].set_ylim(-0.02, 1.02)
    handles = _style_handles(len(summary) == len(groups))
    if len(groups) > 1:
        names = [name for name, _ in groups]
        handles += [Line2D([], [], color=c, label=n) for n, c in zip(names, colors, strict=True)]
    _outside_legend(figure, handles)
    return figure


_CHIP_METRICS = (("mean_rate_hz", "chip mean rate [Hz]"),
                 ("rate_rel_error", "relative rate error Σ|r−r₀|/Σr₀"))  # fmt: skip


def plot_chip_curves(chips: pd.DataFrame, summary: pd.DataFrame, x_column: str) -> Figure:
    """A few chips' own curves (their trial-averaged mean rate and rate error) along a
    1-axis sweep, over the population's median and 5-95 % band across chips.

    With paired chips, chip c is the same chip at every point, so its curve shows how one
    chip responds; the chips drawn are the first CHIPS_SHOWN that are finite everywhere.
    """
    numeric = _numeric(summary[x_column])
    x_of_point = dict(zip(summary["point"], _x_positions(summary, x_column, numeric),
                          strict=True))  # fmt: skip
    x = np.array([x_of_point[p] for p in summary["point"]])
    finite = chips[~chips["nonfinite"]]
    everywhere = finite.groupby("chip")["point"].nunique() == len(summary)
    shown = everywhere[everywhere].index[:CHIPS_SHOWN]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    colors = [f"C{i % 10}" for i in range(len(shown))]
    for axis, (metric, title) in zip(axes, _CHIP_METRICS, strict=True):
        axis.fill_between(x, summary[f"{metric}.q05"], summary[f"{metric}.q95"], color="0.6",
                          alpha=0.3, linewidth=0)  # fmt: skip
        axis.plot(x, summary[f"{metric}.q50"], color="k", linewidth=2)
        for chip, color in zip(shown, colors, strict=True):
            rows = finite[finite["chip"] == chip].sort_values("point")
            axis.plot([x_of_point[p] for p in rows["point"]], rows[metric], "o-", color=color,
                      linewidth=0.9, markersize=3)  # fmt: skip
        axis.set_title(title, fontsize=9)
        axis.set_xlabel(axis_label(x_column))
        if not numeric:
            axis.set_xticks(x, [_tick(v) for v in summary[x_column]], rotation=30, ha="right",
                            fontsize=7)  # fmt: skip
    axes[0].plot(x, summary["nominal_mean_rate_hz"], color="k", linestyle="--")
    handles = [
        Line2D([], [], color="k", linewidth=2, label="median over chips"),
        Patch(color="0.6", alpha=0.3, label="5–95 % of chips"),
        Line2D([], [], color="k", linestyle="--", label="nominal (no mismatch)"),
        *(Line2D([], [], color=c, marker="o", markersize=3, label=f"chip {chip}")
          for chip, c in zip(shown, colors, strict=True)),
    ]  # fmt: skip
    _outside_legend(figure, handles)
    return figure


_ACCURACY_KINDS = (("accuracy", "transferred readout", "C0"),
                   ("accuracy_per_chip", "refitted per chip", "C1"))  # fmt: skip


def plot_accuracy(summary: pd.DataFrame, sweep_columns: list[str], target: float) -> Figure:
    """Test accuracy along the sweep: median and 5-95 % band over chips of the transferred
    readout (and of the per-chip refit when there is one), the nominal chip's accuracy, the
    chance level and the target. The last sweep axis is the x axis; every combination of
    the other axes is one panel. A single point is a marker with its band as an error bar."""
    x_column = sweep_columns[-1] if sweep_columns else None
    numeric = x_column is not None and _numeric(summary[x_column])
    groups = _line_groups(summary, sweep_columns)[:MAX_PANELS]
    kinds = [kind for kind in _ACCURACY_KINDS if f"{kind[0]}.q50" in summary]
    figure, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups) + 2.0, 3.6),
                                squeeze=False, sharey=True, layout="constrained")  # fmt: skip
    for axis, (title, rows) in zip(axes.flat, groups, strict=True):
        x = _x_positions(rows, x_column, numeric)
        for metric, _, color in kinds:
            median = rows[f"{metric}.q50"].to_numpy(float)
            low, high = rows[f"{metric}.q05"].to_numpy(float), rows[f"{metric}.q95"].to_numpy(float)
            if len(rows) == 1:
                axis.errorbar(x, median, yerr=[median - low, high - median], fmt="o",
                              color=color, capsize=4)  # fmt: skip
            else:
                axis.fill_between(x, low, high, color=color, alpha=0.25, linewidth=0)
                axis.plot(x, median, "o-", color=color)
        style = {"marker": "_", "markersize": 14, "linestyle": "none"} if len(rows) == 1 else {
            "linestyle": "--"}  # fmt: skip
        axis.plot(x, rows["nominal_accuracy"].to_numpy(float), color="k", **style)
        axis.axhline(rows["chance_level"].iloc[0], color="0.5", linestyle=":")
        axis.axhline(target, color="C3", linewidth=0.8, linestyle="-.")
        axis.set_title(title, fontsize=9)
        if x_column is None:
            axis.set_xticks([0.0], ["single point"])
            axis.set_xlim(-1, 1)
        else:
            axis.set_xlabel(axis_label(x_column))
            if not numeric:
                axis.set_xticks(x, [_tick(v) for v in rows[x_column]], rotation=30, ha="right",
                                fontsize=7)  # fmt: skip
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, 0].set_ylim(-0.02, 1.02)
    handles = [
        *(Line2D([], [], color=color, marker="o", label=f"{name}\n(median, 5–95 % band)")
          for _, name, color in kinds),
        Line2D([], [], color="k", linestyle="--", label="nominal (no mismatch)"),
        Line2D([], [], color="0.5", linestyle=":", label="chance"),
        Line2D([], [], color="C3", linestyle="-.", label=f"target {target:g}"),
    ]  # fmt: skip
    _outside_legend(figure, handles)
    return figure


def _chip_curves_skipped(plan: Plan, summary: pd.DataFrame) -> str | None:
    """Why chips.png is not drawn for this run, or None."""
    if len(plan.sweep_columns) != 1:
        return f"{len(plan.sweep_columns)} sweep axes (drawn for a 1-axis sweep only)"
    if len(summary) < 2:
        return "fewer than 2 sweep points with chips"
    if not plan.paired:
        return "sweep.pairing=independent (chip c is a different chip at every point)"
    return None


def plot_raster(
    nominal: np.ndarray,
    mismatched: np.ndarray,
    dt: float,
    core_map: np.ndarray,
    titles: tuple[str, str],
) -> Figure:
    """Side by side spike rasters (T, N) of the nominal and one mismatched instance.

    Neurons are ordered by core, with the cores separated and labelled, so a large
    multi-core network reads as one band per core.
    """
    order = np.argsort(core_map, kind="stable")
    row_of = np.empty_like(order)
    row_of[order] = np.arange(order.size)
    cores, starts = np.unique(core_map[order], return_index=True)
    edges = [*starts, order.size]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
    for axis, raster, title in zip(axes, (nominal, mismatched), titles, strict=True):
        steps, neurons = np.nonzero(raster)
        axis.scatter(steps * dt, row_of[neurons], s=1.5, marker=".", color="k", linewidths=0)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("time [s]")
        axis.set_xlim(0, raster.shape[0] * dt)
        for edge in edges[1:-1]:
            axis.axhline(edge - 0.5, color="C3", linewidth=0.6)
    axes[0].set_ylim(-0.5, order.size - 0.5)
    if cores.size > 1:
        centres = [(low + high - 1) / 2 for low, high in itertools.pairwise(edges)]
        axes[0].set_yticks(centres, [f"core {core}" for core in cores])
        axes[0].set_ylabel("neurons, grouped by core")
    else:
        axes[0].set_ylabel("neuron")
    return figure


def _first_raster(stores: list[ChunkStore], label: str) -> np.ndarray | None:
    return next((r for r in (s.read_raster(label) for s in stores) if r is not None), None)


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


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
    per_neuron = neurons_path.exists() and plan.config.output.neurons
    if per_neuron:
        rates = pd.read_parquet(neurons_path, columns=["point", "rate_hz", "nonfinite"])
    else:
        rates = outcome.instances[["point", "mean_rate_hz", "nonfinite"]].rename(
            columns={"mean_rate_hz": "rate_hz"}
        )
    rates = rates[~rates["nonfinite"]]
    finite_nominal = outcome.nominal[~outcome.nominal["nonfinite"]]
    resolution = {
        p.sweep.index: 1 / (p.stimulus.n_steps * p.network.spec.dt
                            * (1 if per_neuron else p.network.spec.n_neurons))
        for p in plan.points
    }  # fmt: skip
    within = plan.config.metrics.within
    written = [_save(plot_robustness(outcome.summary, plan.sweep_columns, within),
                     folder / "robustness.png")]  # fmt: skip
    skipped = _chip_curves_skipped(plan, outcome.summary)
    if skipped is None:
        figure = plot_chip_curves(outcome.chips, outcome.summary, plan.sweep_columns[0])
        written.append(_save(figure, folder / "chips.png"))
    else:
        log.info("figures/chips.png left out: %s", skipped)
    if "accuracy.q50" in outcome.summary:
        figure = plot_accuracy(outcome.summary, plan.sweep_columns,
                               plan.config.readout.target)  # fmt: skip
        written.append(_save(figure, folder / "accuracy.png"))
    if not rates.empty:  # empty when every instance is non-finite
        written.append(_save(plot_rates(rates, finite_nominal, labels, resolution, per_neuron),
                             folder / "rates.png"))  # fmt: skip
    stores = raster_stores if raster_stores is not None else [ChunkStore(run_dir)]
    instance = plan.raster_instance
    point = plan.point_of(instance)
    _, chip, position = (int(v) for v in plan.locate(instance))
    trial = int(point.stimulus.chip_trials[position])
    mismatched = _first_raster(stores, f"i{instance:09d}")
    nominal = _first_raster(stores, nominal_raster_label(point.sweep.index, trial))
    if mismatched is not None and nominal is not None:
        titles = (f"nominal, {labels[point.sweep.index]}, trial {trial}",
                  f"chip {chip}, trial {trial} (row {instance}, mismatched)")  # fmt: skip
        spec = point.network.spec
        figure = plot_raster(nominal, mismatched, spec.dt, spec.core_map, titles)
        written.append(_save(figure, folder / "raster.png"))
    return written
