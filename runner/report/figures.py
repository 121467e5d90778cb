"""Figures of a run (under figures/, in every output.figure_formats): rate distributions,
robustness curves, chips' own response curves, task accuracy, rasters.

Each `plot_*` function returns its Figure (tests inspect it); `write_figures` saves them.
Figures are output.figure_width_in wide with text sized to that width (`font_size`); every
axis names its quantity and unit, legends sit below the panels and say over how many chips,
panels that compare one quantity share its scale, and histograms bin rates on the grid
they live on, k / (T·dt).
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
    from runner.study.schema import OutputConfig

__all__ = [
    "write_figures",
    "axis_label",
    "axis_values",
    "point_labels",
    "figure_columns",
    "rate_bins",
    "plot_rates",
    "plot_robustness",
    "plot_chip_curves",
    "plot_accuracy",
    "plot_raster",
    "population_rates",
    "font_size",
]

log = logging.getLogger(__name__)

MAX_PANELS = 12
CHIPS_SHOWN = 6  # chips drawn one by one over the population band
MAX_BINS = 40
DEFAULT_WIDTH_IN = 7.0  # a two-column paper's width (output.figure_width_in)
RASTER_MAX_NEURONS = 256  # above: raster.png draws each core's population rate instead
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


_SHORT_NAMES = {"network.mismatch.weights": "synaptic mismatch"}  # where the last key is vague
_JOINT = " & "  # between the columns of a joint axis in the name of its figure column


def _short_name(path: str) -> str:
    """`network.currents.Idc.2` -> `Idc (core 2)`; `network.percent_mismatch` -> itself."""
    if path in _SHORT_NAMES:
        return _SHORT_NAMES[path]
    parts = path.split(".")
    if parts[-1].isdigit():
        return f"{parts[-2]} (core {parts[-1]})"
    return parts[-1]


def figure_columns(frame: pd.DataFrame, axes: list[list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """The sweep columns as the figures draw them, one per axis (`Plan.axis_columns`): the
    columns of a joint axis become one column of their values' text (`4-bit weights,
    synaptic mismatch`), so a joint axis is one x axis, set of curves or panels."""
    frame = frame.copy()
    columns = []
    for axis in axes:
        if len(axis) > 1:
            frame[_JOINT.join(axis)] = [_values_text(axis, values)
                                        for values in frame[axis].itertuples(index=False)]
        columns.append(_JOINT.join(axis))
    return frame, columns


def axis_label(column: str) -> str:
    """Axis title of a sweep column: its field and unit, `× nominal` for scale factors."""
    if _JOINT in column:
        return ", ".join(axis_label(part) for part in column.split(_JOINT))
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
    """One sweep value for a legend or title: `Itau_mem ×0.5`, `Idc 5e-12 A`, `mismatch 10 %`,
    `float weights`, `4-bit weights`, `synaptic mismatch` (a joint axis's text as it is)."""
    path = column.removeprefix("scale:")
    number = _tick(value)
    if _JOINT in column:
        return str(value)
    if column.startswith("scale:"):
        return f"{_short_name(path)} ×{number}"
    if _is_percent(column):
        return f"mismatch {value * 100:g} %"
    if column == "network.quantize.n_bits":
        return "float weights" if number == "null" else f"{number}-bit weights"
    if column == "network.mismatch.weights":
        return ("" if value else "no ") + "synaptic mismatch"
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


def font_size(width_in: float) -> float:
    """Text size [pt] of a figure `width_in` inches wide: 7 pt at one paper column (3.5 in),
    9 pt at two (7 in), at most 10 pt."""
    return float(np.clip(5 + 4 * width_in / 7, 7, 10))


def _style(width_in: float) -> Any:
    """The rc context every figure is drawn (and saved) in: one text size for titles, labels,
    ticks and legends, scaled to the figure's width."""
    size = font_size(width_in)
    keys = ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
            "ytick.labelsize", "legend.fontsize", "legend.title_fontsize",
            "figure.titlesize")  # fmt: skip
    return plt.rc_context({**dict.fromkeys(keys, size), "hatch.linewidth": 0.6})


def _max_columns(width_in: float) -> int:
    """Panels side by side at this width: about 1.75 in each (4 at 7 in, 2 at 3.5 in)."""
    return max(1, int(width_in // 1.75))


def _grid(n_panels: int, max_columns: int) -> tuple[int, int]:
    """(rows, columns) for n panels: the fewest rows, then the fewest empty slots."""
    columns = min(n_panels, max_columns)
    rows = -(-n_panels // columns)
    columns = -(-n_panels // rows)  # as few columns as these rows need
    return rows, columns


def _panels(n_panels: int, width_in: float, panel_height_in: float, max_columns: int,
            **shared: Any) -> tuple[Figure, list]:  # fmt: skip
    """A figure of n panels on a grid, the slots left over removed (nothing blank remains);
    a shared x keeps its tick labels on the lowest panel of every column."""
    rows, columns = _grid(n_panels, max_columns)
    figure, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                figsize=(width_in, panel_height_in * rows + 0.7),
                                **shared)  # fmt: skip
    for axis in axes.flat[n_panels:]:
        figure.delaxes(axis)
    for index, axis in enumerate(axes.flat[:n_panels]):
        if index + columns >= n_panels:  # the lowest panel of its column
            axis.xaxis.set_tick_params(labelbottom=True)
    return figure, list(axes.flat[:n_panels])


def _lowest_in_column(index: int, n_panels: int, columns: int) -> bool:
    return index + columns >= n_panels


def _chips_text(summary: pd.DataFrame) -> str:
    """`256 chips`, or `250–256 chips` where points measured different numbers."""
    low, high = int(summary["n_chips"].min()), int(summary["n_chips"].max())
    return f"{high} chips" if low == high else f"{low}–{high} chips"


def _outside_legend(figure: Figure, handles: list, width_in: float) -> None:
    """The legend below the panels, in as many columns as its longest entry lets fit the
    width (an entry: its handle and about 0.55 em per character)."""
    longest = max(max(len(line) for line in h.get_label().splitlines()) for h in handles)
    entry_in = longest * 0.55 * plt.rcParams["legend.fontsize"] / 72 + 0.6
    columns = max(1, min(len(handles), _max_columns(width_in), int(width_in // entry_in)))
    figure.legend(handles=handles, loc="outside lower center", frameon=False, ncols=columns)


def plot_rates(
    rates: pd.DataFrame,
    nominal: pd.DataFrame,
    labels: list[str],
    resolution: dict[int, float],
    per_neuron: bool,
    n_chips: int,
    width_in: float = DEFAULT_WIDTH_IN,
) -> Figure:
    """Per sweep point: the rates of the mismatched instances against the nominal instance.

    rates: columns point, rate_hz (per neuron and instance, or per-instance means);
    resolution: point -> the spacing of possible rates, 1/(T·dt) (divided by N for means);
    n_chips: chips per point. Bars show the fraction of neurons (of chips, or of chip
    trials) per bin, on one x and one y scale in every panel.
    """
    all_points = sorted(rates["point"].unique())
    points = _shown_points(all_points)
    high = max(rates["rate_hz"].quantile(0.999), nominal["rate_hz"].max(), 1.0)
    trials = not per_neuron and (rates["point"] == points[0]).sum() > n_chips
    y_label = ("fraction of neurons" if per_neuron
               else "fraction of chip trials" if trials else "fraction of chips")  # fmt: skip
    max_columns = _max_columns(width_in)
    _, columns = _grid(len(points), max_columns)
    with _style(width_in):
        figure, axes = _panels(len(points), width_in, 0.6 * width_in / columns + 0.4,
                               max_columns, sharex=True, sharey=True)  # fmt: skip
        for index, (axis, point) in enumerate(zip(axes, points, strict=True)):
            bins = rate_bins(resolution[point], high)
            values = rates.loc[rates["point"] == point, "rate_hz"].to_numpy()
            axis.hist(values, bins=bins, weights=_fractions(values), alpha=0.6, color="C0")
            nominal_rates = nominal.loc[nominal["point"] == point, "rate_hz"].to_numpy()
            if per_neuron:
                axis.hist(nominal_rates, bins=bins, weights=_fractions(nominal_rates),
                          histtype="step", color="k")  # fmt: skip
            else:
                axis.axvline(nominal_rates.mean(), color="k")
            axis.set_title(_title(labels[point], width_in / columns))
            if index % columns == 0:
                axis.set_ylabel(y_label)
            if _lowest_in_column(index, len(points), columns):
                axis.set_xlabel("rate [Hz]" if per_neuron else "chip mean rate [Hz]")
        axes[0].set_xlim(rate_bins(min(resolution.values()), high)[[0, -1]])
        _outside_legend(figure, [
            Patch(color="C0", alpha=0.6, label=f"mismatched, {n_chips} chips per point"),
            Line2D([], [], color="k", label="nominal (no mismatch)"),
        ], width_in)  # fmt: skip
        if len(points) < len(all_points):
            figure.suptitle(f"{len(points)} of {len(all_points)} sweep points")
    return figure


def _line_groups(summary: pd.DataFrame, sweep_columns: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """One curve per value of every axis but the last (the x axis), in sweep order."""
    if len(sweep_columns) < 2:
        return [("", summary)]
    outer = sweep_columns[:-1]
    return [(_values_text(outer, key), rows)
            for key, rows in summary.groupby(outer, sort=False, dropna=False)]  # fmt: skip


def _robustness_labels(within: float) -> tuple[str, str, str]:
    return ("mean rate [Hz]", "relative rate error\nΣ|r−r₀|/Σr₀",
            f"fraction of neurons within\n±{within * 100:g} % of nominal")  # fmt: skip


_ROBUSTNESS_METRICS = ("mean_rate_hz", "rate_rel_error", "frac_within")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_HATCHES = ("////", "\\\\\\\\", "||||", "----", "xxxx", "....")


def _x_positions(rows: pd.DataFrame, x_column: str | None, numeric: bool) -> np.ndarray:
    if x_column is None:
        return np.zeros(len(rows))
    if numeric:
        return axis_values(x_column, rows[x_column]).to_numpy(float)
    return np.arange(len(rows), dtype=float)


def _draw_band(axis: Any, x: np.ndarray, rows: pd.DataFrame, metric: str, color: str,
               curve: int | None) -> None:  # fmt: skip
    """Median and 5-95 % band of `metric` (an error bar for a single point). `curve`: its
    index among several overlapping curves (each band faint and hatched its own way, each
    median its own marker), None for the only one."""
    median = rows[f"{metric}.q50"].to_numpy(float)
    low, high = rows[f"{metric}.q05"].to_numpy(float), rows[f"{metric}.q95"].to_numpy(float)
    marker = _MARKERS[(curve or 0) % len(_MARKERS)]
    if len(rows) == 1:
        axis.errorbar(x, median, yerr=[median - low, high - median], fmt=marker, color=color,
                      capsize=4, zorder=3)  # fmt: skip
        return
    if curve is None:
        axis.fill_between(x, low, high, color=color, alpha=0.25, linewidth=0, zorder=1)
    else:
        axis.fill_between(x, low, high, facecolor=color, alpha=0.12, linewidth=0, zorder=1)
        axis.fill_between(x, low, high, facecolor="none", edgecolor=color, alpha=0.45,
                          hatch=_HATCHES[curve % len(_HATCHES)], linewidth=0,
                          zorder=1)  # fmt: skip
    axis.plot(x, median, "-", marker=marker, color=color, markersize=4, zorder=3)


def _draw_curve(axes: list, x: np.ndarray, rows: pd.DataFrame, color: str,
                nominal_color: str, curve: int | None) -> None:  # fmt: skip
    """One curve in each panel, and the nominal mean rate in the first."""
    for axis, metric in zip(axes, _ROBUSTNESS_METRICS, strict=True):
        _draw_band(axis, x, rows, metric, color, curve)
    nominal = rows["nominal_mean_rate_hz"].to_numpy(float)
    style = {"marker": "_", "markersize": 14, "linestyle": "none"} if len(rows) == 1 else {
        "linestyle": "--", "linewidth": 1.0}  # fmt: skip
    axes[0].plot(x, nominal, color=nominal_color, alpha=0.8, zorder=2, **style)


def _style_handles(one_point_per_curve: bool, chips: str) -> list:
    if one_point_per_curve:
        return [
            Line2D([], [], color="0.3", marker="o",
                   label=f"median over {chips},\nbar: 5–95 % of chips"),
            Line2D([], [], color="k", marker="_", markersize=14, linestyle="none",
                   label="nominal (no mismatch)"),
        ]  # fmt: skip
    return [
        Line2D([], [], color="0.3", marker="o", label=f"median over {chips}"),
        Patch(color="0.3", alpha=0.25, label="5–95 % of chips"),
        Line2D([], [], color="k", linestyle="--", label="nominal (no mismatch)"),
    ]


def _text_in(text: str) -> float:
    """About how wide one line of `text` is drawn [in], at the figures' text size."""
    return len(text) * 0.55 * plt.rcParams["axes.labelsize"] / 72


def _fitted(label: str, panel_in: float) -> str:
    """`label` with its unit on a line of its own where one line is wider than about 70 %
    of a panel `panel_in` inches wide (a wider label would leave the figure)."""
    return label.replace(" [", "\n[", 1) if _text_in(label) > 0.7 * panel_in else label


def _title(text: str, panel_in: float) -> str:
    """A panel title broken after its commas into lines that fit a panel `panel_in` inches
    wide (a sweep point's values: `4-bit weights, synaptic mismatch, mismatch 10 %`)."""
    lines: list[str] = []
    for part in text.split(", "):
        if lines and _text_in(f"{lines[-1]}, {part}") <= 0.8 * panel_in:
            lines[-1] += f", {part}"
        else:
            lines.append(part)
    return ",\n".join(lines)


def _x_axis(axis: Any, x_column: str | None, numeric: bool, x_all: pd.Series,
            categories: pd.Series, label_in: float | None) -> None:  # fmt: skip
    """The sweep's last axis as x: a number line (log for a wide positive range), its values
    as categories, or one `single point` tick without a sweep. label_in: the panel's width
    in inches where it carries the axis label (None: no label)."""
    if x_column is None:
        axis.set_xticks([0.0], ["single point"])
        axis.set_xlim(-1, 1)
        return
    if label_in is not None:
        axis.set_xlabel(_fitted(axis_label(x_column), label_in))
    if numeric:
        values = axis_values(x_column, x_all).to_numpy(float)
        if (values > 0).all() and values.max() / values.min() >= 20:
            axis.set_xscale("log")
    else:
        axis.set_xticks(np.arange(len(categories)), [_tick(v) for v in categories],
                        rotation=30, ha="right")  # fmt: skip


def plot_robustness(summary: pd.DataFrame, sweep_columns: list[str], within: float,
                    width_in: float = DEFAULT_WIDTH_IN) -> Figure:  # fmt: skip
    """Median and 5-95 % band over the chips of mean rate, rate error and the fraction of
    neurons within ±`within` of their nominal rate, along the sweep (one panel each, the
    quantity and its unit on the y axis; side by side, stacked below 5.25 in).

    The last sweep axis is the x axis; every combination of the other axes is one curve,
    its band faint and hatched so that overlapping bands stay readable. A single point is
    drawn as a marker with its band as an error bar.
    """
    x_column = sweep_columns[-1] if sweep_columns else None
    numeric = x_column is not None and _numeric(summary[x_column])
    groups = _line_groups(summary, sweep_columns)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    columns = 3 if _max_columns(width_in) >= 3 else 1
    with _style(width_in):
        figure, axes = _panels(3, width_in, 0.34 * width_in if columns == 3 else 1.7,
                               columns, sharex=True)  # fmt: skip
        for curve, ((_, rows), color) in enumerate(zip(groups, colors, strict=True)):
            x = _x_positions(rows, x_column, numeric)
            several = len(groups) > 1
            _draw_curve(axes, x, rows, color, color if several else "k",
                        curve if several else None)  # fmt: skip
        for index, (axis, label) in enumerate(zip(axes, _robustness_labels(within),
                                                  strict=True)):  # fmt: skip
            axis.set_ylabel(label)
            _x_axis(axis, x_column, numeric, summary[x_column] if x_column else summary,
                    groups[0][1][x_column] if x_column else summary,
                    width_in / columns if _lowest_in_column(index, 3, columns)
                    else None)  # fmt: skip
        axes[2].set_ylim(-0.02, 1.02)
        handles = _style_handles(len(summary) == len(groups), _chips_text(summary))
        if len(groups) > 1:
            handles += [Line2D([], [], color=c, marker=_MARKERS[i % len(_MARKERS)], label=n)
                        for i, ((n, _), c) in enumerate(zip(groups, colors, strict=True))]
        _outside_legend(figure, handles, width_in)
    return figure


_CHIP_METRICS = (("mean_rate_hz", "chip mean rate [Hz]"),
                 ("rate_rel_error", "relative rate error\nΣ|r−r₀|/Σr₀"))  # fmt: skip


def plot_chip_curves(chips: pd.DataFrame, summary: pd.DataFrame, x_column: str,
                     width_in: float = DEFAULT_WIDTH_IN) -> Figure:  # fmt: skip
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
    colors = [f"C{i % 10}" for i in range(len(shown))]
    columns = 2 if _max_columns(width_in) >= 3 else 1
    with _style(width_in):
        figure, axes = _panels(2, width_in, 0.4 * width_in if columns == 2 else 1.8,
                               columns, sharex=True)  # fmt: skip
        for index, (axis, (metric, label)) in enumerate(zip(axes, _CHIP_METRICS, strict=True)):
            axis.fill_between(x, summary[f"{metric}.q05"], summary[f"{metric}.q95"],
                              color="0.6", alpha=0.3, linewidth=0)  # fmt: skip
            axis.plot(x, summary[f"{metric}.q50"], color="k", linewidth=2)
            for chip, color in zip(shown, colors, strict=True):
                rows = finite[finite["chip"] == chip].sort_values("point")
                axis.plot([x_of_point[p] for p in rows["point"]], rows[metric], "o-",
                          color=color, linewidth=0.9, markersize=3)  # fmt: skip
            axis.set_ylabel(label)
            _x_axis(axis, x_column, numeric, summary[x_column], summary[x_column],
                    width_in / columns if _lowest_in_column(index, 2, columns)
                    else None)  # fmt: skip
        axes[0].plot(x, summary["nominal_mean_rate_hz"], color="k", linestyle="--")
        handles = [
            Line2D([], [], color="k", linewidth=2,
                   label=f"median over {_chips_text(summary)}"),
            Patch(color="0.6", alpha=0.3, label="5–95 % of chips"),
            Line2D([], [], color="k", linestyle="--", label="nominal (no mismatch)"),
            *(Line2D([], [], color=c, marker="o", markersize=3, label=f"chip {chip}")
              for chip, c in zip(shown, colors, strict=True)),
        ]  # fmt: skip
        _outside_legend(figure, handles, width_in)
    return figure


# metric, legend name, color, marker, whether the marker is hollow
_ACCURACY_KINDS = (("accuracy", "transferred readout", "C0", "o", False),
                   ("accuracy_per_chip", "refitted per chip", "C1", "D", True))  # fmt: skip


def plot_accuracy(summary: pd.DataFrame, sweep_columns: list[str], target: float,
                  width_in: float = DEFAULT_WIDTH_IN) -> Figure:  # fmt: skip
    """Test accuracy along the sweep: median and 5-95 % band over chips of the transferred
    readout (and of the per-chip refit when there is one), the nominal chip's accuracy, the
    chance level and the target. The last sweep axis is the x axis; every combination of
    the other axes is one panel, all on one y scale. A single point is a marker with its
    band as an error bar. The nominal line is drawn thin and beneath the chips' medians, so
    a per-chip curve that follows it stays visible."""
    x_column = sweep_columns[-1] if sweep_columns else None
    numeric = x_column is not None and _numeric(summary[x_column])
    groups = _line_groups(summary, sweep_columns)[:MAX_PANELS]
    kinds = [kind for kind in _ACCURACY_KINDS if f"{kind[0]}.q50" in summary]
    max_columns = _max_columns(width_in)
    _, columns = _grid(len(groups), max(1, max_columns - 1))
    with _style(width_in):
        figure, axes = _panels(len(groups), width_in, min(0.75 * width_in / columns + 0.5, 2.4),
                               max(1, max_columns - 1), sharex=True, sharey=True)  # fmt: skip
        for index, (axis, (title, rows)) in enumerate(zip(axes, groups, strict=True)):
            x = _x_positions(rows, x_column, numeric)
            single = len(rows) == 1
            style = {"marker": "_", "markersize": 14, "linestyle": "none"} if single else {
                "linestyle": (0, (4, 2)), "linewidth": 1.0}  # fmt: skip
            axis.plot(x, rows["nominal_accuracy"].to_numpy(float), color="k", zorder=2,
                      **style)  # fmt: skip
            for metric, _, color, marker, hollow in kinds:
                median = rows[f"{metric}.q50"].to_numpy(float)
                low = rows[f"{metric}.q05"].to_numpy(float)
                high = rows[f"{metric}.q95"].to_numpy(float)
                face = {"markerfacecolor": "white"} if hollow else {}
                if single:
                    axis.errorbar(x, median, yerr=[median - low, high - median], fmt=marker,
                                  color=color, capsize=4, zorder=3, **face)  # fmt: skip
                else:
                    axis.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0,
                                      zorder=1)  # fmt: skip
                    axis.plot(x, median, "-", marker=marker, color=color, markersize=5,
                              zorder=3, **face)  # fmt: skip
            axis.axhline(rows["chance_level"].iloc[0], color="0.5", linestyle=":", zorder=1.5)
            axis.axhline(target, color="C3", linewidth=0.8, linestyle="-.", zorder=1.5)
            axis.set_title(_title(title, width_in / columns))
            if index % columns == 0:  # on two lines where rows of panels stack
                axis.set_ylabel("test accuracy" + ("\n" if len(groups) > columns else " ")
                                + "[fraction correct]")
            _x_axis(axis, x_column, numeric, summary[x_column] if x_column else summary,
                    rows[x_column] if x_column else summary,
                    width_in / columns if _lowest_in_column(index, len(groups), columns)
                    else None)  # fmt: skip
        axes[0].set_ylim(-0.02, 1.02)
        chips = _chips_text(summary)
        handles = [
            *(Line2D([], [], color=color, marker=marker, label=f"{name}, median over {chips}",
                     **({"markerfacecolor": "white"} if hollow else {}))
              for _, name, color, marker, hollow in kinds),
            Patch(color="0.4", alpha=0.2, label="5–95 % of chips"),
            Line2D([], [], color="k", linestyle=(0, (4, 2)), linewidth=1.0,
                   label="nominal (no mismatch)"),
            Line2D([], [], color="0.5", linestyle=":", label="chance"),
            Line2D([], [], color="C3", linestyle="-.", label=f"target {target:g}"),
        ]  # fmt: skip
        _outside_legend(figure, handles, width_in)
    return figure


def _chip_curves_skipped(plan: Plan, summary: pd.DataFrame) -> str | None:
    """Why chips.png is not drawn for this run, or None."""
    if len(plan.axis_columns) != 1:
        return f"{len(plan.axis_columns)} sweep axes (drawn for a 1-axis sweep only)"
    if len(summary) < 2:
        return "fewer than 2 sweep points with chips"
    if not plan.paired:
        return "sweep.pairing=independent (chip c is a different chip at every point)"
    return None


def _core_edges(core_map: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Neurons ordered by core: the order, the cores and where each core's rows start/end."""
    order = np.argsort(core_map, kind="stable")
    cores, starts = np.unique(core_map[order], return_index=True)
    return order, cores, [*starts, order.size]


def _draw_spikes(axis: Any, raster: np.ndarray, dt: float, core_map: np.ndarray) -> None:
    """One dot per spike, neurons grouped by core, the cores separated and labelled."""
    order, cores, edges = _core_edges(core_map)
    row_of = np.empty_like(order)
    row_of[order] = np.arange(order.size)
    steps, neurons = np.nonzero(raster)
    size = float(np.clip(2000 / order.size, 1.5, 12))  # dots as large as the rows allow
    axis.scatter(steps * dt, row_of[neurons], s=size, marker=".", color="k", linewidths=0)
    for edge in edges[1:-1]:
        axis.axhline(edge - 0.5, color="C3", linewidth=0.6)
    axis.set_ylim(-0.5, order.size - 0.5)
    if cores.size > 1:
        centres = [(low + high - 1) / 2 for low, high in itertools.pairwise(edges)]
        axis.set_yticks(centres, [f"core {core}" for core in cores])


def population_rates(raster: np.ndarray, dt: float, core_map: np.ndarray,
                     bin_steps: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:  # fmt: skip
    """Per core, the spikes of each time bin of `bin_steps` steps per neuron and second (Hz
    per neuron); returns the bins' start times and core -> rates (a last partial bin
    dropped)."""
    n_bins = max(1, raster.shape[0] // bin_steps)
    steps = n_bins * bin_steps
    binned = raster[:steps].reshape(n_bins, min(bin_steps, raster.shape[0]), -1).sum(axis=1)
    seconds = min(bin_steps, raster.shape[0]) * dt
    rates = {int(core): binned[:, core_map == core].mean(axis=1) / seconds
             for core in np.unique(core_map)}  # fmt: skip
    return np.arange(n_bins) * seconds, rates


def plot_raster(
    nominal: np.ndarray,
    mismatched: np.ndarray,
    dt: float,
    core_map: np.ndarray,
    titles: tuple[str, str],
    bin_steps: int = 10,
    width_in: float = DEFAULT_WIDTH_IN,
) -> Figure:
    """The nominal and one mismatched instance (rasters (T, N)) side by side, on one scale.

    Up to RASTER_MAX_NEURONS neurons: spike rasters, neurons ordered by core, the cores
    separated and labelled. Above (where dots merge into a texture): each core's population
    rate over time, in bins of `bin_steps` steps, one line per core.
    """
    dots = core_map.size <= RASTER_MAX_NEURONS
    columns = 2 if _max_columns(width_in) >= 3 else 1
    with _style(width_in):
        figure, axes = _panels(2, width_in, 0.4 * width_in if columns == 2 else 1.8, columns,
                               sharex=True, sharey=True)  # fmt: skip
        for axis, raster, title in zip(axes, (nominal, mismatched), titles, strict=True):
            if dots:
                _draw_spikes(axis, raster, dt, core_map)
            else:
                times, rates = population_rates(raster, dt, core_map, bin_steps)
                for core, rate in rates.items():
                    axis.step(times, rate, where="post", linewidth=0.9, color=f"C{core % 10}",
                              label=f"core {core}")  # fmt: skip
            axis.set_title(title)
            axis.set_xlim(0, raster.shape[0] * dt)
        for index, axis in enumerate(axes):
            if _lowest_in_column(index, 2, columns):
                axis.set_xlabel("time [s]")
            if index % columns == 0:
                axis.set_ylabel(("neurons, grouped by core" if np.unique(core_map).size > 1
                                 else "neuron") if dots
                                else f"population rate\n[Hz per neuron, {bin_steps * dt * 1e3:g}"
                                     " ms bins]")  # fmt: skip
        if not dots:
            axes[0].set_ylim(bottom=0)
            _outside_legend(figure, axes[0].get_legend_handles_labels()[0], width_in)
    return figure


def _first_raster(stores: list[ChunkStore], label: str) -> np.ndarray | None:
    return next((r for r in (s.read_raster(label) for s in stores) if r is not None), None)


def _save(figure: Figure, folder: Path, name: str, output: OutputConfig) -> list[Path]:
    """`figure` as folder/name.<format> in every output.figure_formats, then closed."""
    paths = [folder / f"{name}.{fmt.lower()}" for fmt in output.figure_formats]
    with _style(output.figure_width_in):
        for path in paths:
            figure.savefig(path, dpi=output.figure_dpi)
    plt.close(figure)
    return paths


def write_figures(
    plan: Plan, outcome: Outcome, run_dir: Path, raster_stores: list[ChunkStore] | None = None
) -> list[Path]:
    """All figures of a run into run_dir/figures, each in every output.figure_formats at
    output.figure_width_in and figure_dpi; returns the paths written.

    Rasters are read from `raster_stores` (default: the run's own chunks; collect passes
    the jobs' stores). Non-finite instances (and nominal ones) are left out of the plots.
    """
    output = plan.config.output
    width = output.figure_width_in
    folder = run_dir / "figures"
    folder.mkdir(exist_ok=True)
    summary, columns = figure_columns(outcome.summary, plan.axis_columns)
    labels = point_labels(summary, columns)
    labels_by_point = dict(zip(summary["point"], labels, strict=True))
    labels = [labels_by_point.get(p.sweep.index, "") for p in plan.points]
    neurons_path = run_dir / "neurons.parquet"
    per_neuron = neurons_path.exists() and output.neurons
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
    written = _save(plot_robustness(summary, columns, within, width), folder, "robustness",
                    output)  # fmt: skip
    skipped = _chip_curves_skipped(plan, summary)
    if skipped is None:
        figure = plot_chip_curves(outcome.chips, summary, columns[0], width)
        written += _save(figure, folder, "chips", output)
    else:
        log.info("figures/chips left out: %s", skipped)
    if "accuracy.q50" in summary:
        figure = plot_accuracy(summary, columns, plan.config.readout.target, width)
        written += _save(figure, folder, "accuracy", output)
    if not rates.empty:  # empty when every instance is non-finite
        figure = plot_rates(rates, finite_nominal, labels, resolution, per_neuron,
                            plan.config.sweep.n_samples, width)  # fmt: skip
        written += _save(figure, folder, "rates", output)
    stores = raster_stores if raster_stores is not None else [ChunkStore(run_dir)]
    instance = plan.raster_instance
    point = plan.point_of(instance)
    _, chip, position = (int(v) for v in plan.locate(instance))
    trial = int(point.stimulus.chip_trials[position])
    mismatched = _first_raster(stores, f"i{instance:09d}")
    nominal = _first_raster(stores, nominal_raster_label(point.sweep.index, trial))
    if mismatched is not None and nominal is not None:
        k = point.sweep.index
        titles = (f"nominal instance of point {k}, trial {trial}",
                  f"chip {chip}, trial {trial} (row {instance})")  # fmt: skip
        spec = point.network.spec
        figure = plot_raster(nominal, mismatched, spec.dt, spec.core_map, titles,
                             plan.config.metrics.bin_steps, width)  # fmt: skip
        with _style(width):
            figure.suptitle(f"point {k}: {labels[k]}")
        written += _save(figure, folder, "raster", output)
    return written
