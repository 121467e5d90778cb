"""Figures, checked on their matplotlib objects: labels, units, bins, curves, legends."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import Rectangle

from runner.report.figures import (
    CHIPS_SHOWN,
    axis_label,
    plot_chip_curves,
    plot_raster,
    plot_rates,
    plot_robustness,
    rate_bins,
)

METRICS = ("mean_rate_hz", "rate_rel_error", "frac_within")


def summary_of(axes: dict[str, list]) -> pd.DataFrame:
    """A summary table over the grid of `axes` (first axis slowest) with distinct numbers."""
    grid = list(itertools.product(*axes.values())) or [()]
    rows = []
    for point, values in enumerate(grid):
        row = {"point": point, "n_chips": 16, **dict(zip(axes, values, strict=True))}
        row["nominal_mean_rate_hz"] = 20.0 + point
        for metric in METRICS:
            center = 0.5 + 0.01 * point
            row |= {f"{metric}.q05": center - 0.1, f"{metric}.q50": center,
                    f"{metric}.q95": center + 0.2}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def draw(figure) -> None:
    figure.canvas.draw()


def assert_legends_outside_axes(figure) -> None:
    draw(figure)
    assert figure.legends, "the figure has a legend"
    for axis in figure.axes:
        assert axis.get_legend() is None, "no legend inside an axis"
        if not axis.axison:
            continue
        box = axis.get_window_extent()
        for legend in figure.legends:
            assert not legend.get_window_extent().overlaps(box)


def legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


# rates.png ------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution,high", [(1.0, 59.0), (20.0, 400.0), (1 / 3, 100.0)])
def test_rate_bins_are_centred_on_the_rate_grid(resolution: float, high: float) -> None:
    edges = rate_bins(resolution, high)
    in_steps = edges / resolution + 0.5
    np.testing.assert_allclose(in_steps, np.round(in_steps), atol=1e-9)
    widths = np.diff(np.round(in_steps))
    assert (widths == widths[0]).all() and widths[0] >= 1
    assert edges[0] < 0 < edges[1] and edges[-1] >= high and len(edges) - 1 <= 40


def test_integer_spike_counts_do_not_alias_into_fake_bimodality() -> None:
    """Every count 0..59 equally often, at 1 Hz resolution: the histogram must be flat."""
    n_steps, dt = 1000, 1e-3
    counts = np.tile(np.arange(60), 50)
    rates = pd.DataFrame({"point": 0, "rate_hz": counts / (n_steps * dt)})
    nominal = pd.DataFrame({"point": 0, "rate_hz": np.arange(60) / (n_steps * dt)})
    figure = plot_rates(rates, nominal, ["point 0"], {0: 1 / (n_steps * dt)}, per_neuron=True,
                        n_chips=50)  # fmt: skip
    axis = figure.axes[0]
    bars = [p for p in axis.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    heights = np.array([bar.get_height() for bar in bars])
    np.testing.assert_allclose(heights, heights[0])
    assert heights.sum() == pytest.approx(1.0)  # fractions of neurons
    assert axis.get_ylabel() == "fraction of neurons"
    assert axis.get_xlabel() == "rate [Hz]"
    assert_legends_outside_axes(figure)


def test_rates_of_many_points_show_evenly_spread_panels_with_labels() -> None:
    rates = pd.DataFrame({"point": np.repeat(np.arange(20), 5), "rate_hz": 1.0})
    labels = [f"p{i}" for i in range(20)]
    figure = plot_rates(rates, rates, labels, dict.fromkeys(range(20), 1.0), per_neuron=False,
                        n_chips=5)  # fmt: skip
    titles = [axis.get_title() for axis in figure.axes if axis.axison]
    assert titles[0] == "p0" and titles[-1] == "p19" and len(titles) == 12
    assert "12 of 20 sweep points" in figure.get_suptitle()
    bottom = [axis for axis in figure.axes if axis.axison and axis.get_xlabel()]
    assert len(bottom) == 4  # the lowest panel of each column says what x is
    assert all(a.get_xlabel() == "chip mean rate [Hz]" for a in bottom)


# robustness.png -------------------------------------------------------------------------


def test_a_single_point_is_drawn_with_its_band_and_no_phantom_legend() -> None:
    summary = summary_of({})
    figure = plot_robustness(summary, [], within=0.2)
    for axis, metric in zip(figure.axes, METRICS, strict=True):
        (errorbar,) = [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
        data_line, _, (bars,) = errorbar.lines
        assert data_line.get_ydata()[0] == pytest.approx(summary[f"{metric}.q50"][0])
        (segment,) = bars.get_segments()
        low, high = sorted(segment[:, 1])
        assert (low, high) == pytest.approx((summary[f"{metric}.q05"][0],
                                             summary[f"{metric}.q95"][0]))  # fmt: skip
        assert not axis.collections[1:]  # no zero-width band
    texts = legend_texts(figure)
    assert "5–95 % of chips" not in texts
    assert any("bar: 5–95 %" in t for t in texts)
    assert_legends_outside_axes(figure)


def test_a_two_axis_grid_is_one_curve_per_value_of_the_first_axis() -> None:
    axes = {"scale:network.currents.Itau_mem": [0.5, 1.0, 2.0],
            "network.currents.Idc": [5e-13, 5e-12, 2e-11]}  # fmt: skip
    figure = plot_robustness(summary_of(axes), list(axes), within=0.2)
    error_panel = figure.axes[1]
    lines = error_panel.get_lines()
    assert len(lines) == 3
    for line in lines:
        np.testing.assert_allclose(line.get_xdata(), [5e-13, 5e-12, 2e-11])
    assert error_panel.get_xlabel() == "Idc [A]"
    assert error_panel.get_xscale() == "log"  # a factor 40 between the values
    assert {"Itau_mem ×0.5", "Itau_mem ×1", "Itau_mem ×2"} <= set(legend_texts(figure))
    assert_legends_outside_axes(figure)


@pytest.mark.parametrize("within", [0.2, 0.1])
def test_percent_mismatch_is_in_percent_and_the_tolerance_is_stated(within: float) -> None:
    axes = {"network.percent_mismatch": [0.0, 0.1, 0.3]}
    figure = plot_robustness(summary_of(axes), list(axes), within=within)
    for axis in figure.axes:
        assert "%" in axis.get_xlabel()
        np.testing.assert_allclose(axis.get_lines()[0].get_xdata(), [0, 10, 30])
    assert f"within\n±{within * 100:g} %" in figure.axes[2].get_ylabel()


def test_a_scale_axis_says_times_nominal() -> None:
    axes = {"scale:network.currents.Itau_mem": [0.5, 1.0, 2.0]}
    figure = plot_robustness(summary_of(axes), list(axes), within=0.2)
    assert figure.axes[0].get_xlabel() == "Itau_mem [× nominal]"
    assert figure.axes[0].get_xscale() == "linear"


@pytest.mark.parametrize(
    "column,label",
    [
        ("network.currents.Idc", "Idc [A]"),
        ("network.currents.Idc.2", "Idc (core 2) [A]"),
        ("scale:network.currents.Idc.2", "Idc (core 2) [× nominal]"),
        ("network.layout.C_mem", "C_mem [F]"),
        ("network.layout.Vth", "Vth [V]"),
        ("network.layout.kappa_n", "kappa_n"),
        ("network.Iscale", "Iscale [A]"),
        ("network.dt", "dt [s]"),
        ("stimulus.rate_hz", "rate_hz [Hz]"),
        ("network.percent_mismatch", "percent_mismatch (3σ) [%]"),
    ],
)
def test_sweep_axes_carry_units(column: str, label: str) -> None:
    assert axis_label(column) == label


# chips.png ------------------------------------------------------------------------------


def test_chip_curves_draw_each_chips_own_values_over_the_band() -> None:
    """10 chips x 3 levels; chip 1 is non-finite at one level, so it is not drawn and the
    first CHIPS_SHOWN chips finite everywhere are."""
    levels = [0.0, 0.1, 0.3]
    chips = pd.DataFrame([
        {"point": p, "chip": c, "network.percent_mismatch": level, "nonfinite": (c, p) == (1, 2),
         "mean_rate_hz": 20.0 + c * level, "rate_rel_error": level * (1 + 0.1 * c)}
        for p, level in enumerate(levels) for c in range(10)
    ])  # fmt: skip
    summary = summary_of({"network.percent_mismatch": levels})
    column = "network.percent_mismatch"
    figure = plot_chip_curves(chips, summary, column)
    shown = [c for c in range(10) if c != 1][:CHIPS_SHOWN]
    for axis, metric in zip(figure.axes, ("mean_rate_hz", "rate_rel_error"), strict=True):
        lines = axis.get_lines()
        median, chip_lines = lines[0], lines[1 : 1 + len(shown)]
        np.testing.assert_allclose(median.get_xdata(), [0, 10, 30])
        np.testing.assert_allclose(median.get_ydata(), summary[f"{metric}.q50"])
        for line, chip in zip(chip_lines, shown, strict=True):
            np.testing.assert_allclose(line.get_ydata(), chips.loc[chips["chip"] == chip, metric])
        (band,) = axis.collections
        top = band.get_paths()[0].vertices[:, 1].max()
        assert top == pytest.approx(summary[f"{metric}.q95"].max())
        assert "%" in axis.get_xlabel()
    assert [f"chip {c}" for c in shown] == legend_texts(figure)[3:]
    assert_legends_outside_axes(figure)


# raster.png -----------------------------------------------------------------------------


def test_the_raster_groups_neurons_by_core() -> None:
    core_map = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])  # cores interleaved in neuron order
    raster = np.eye(9, dtype=np.int32)  # neuron j spikes at step j
    figure = plot_raster(raster, raster, 1e-3, core_map, ("nominal", "mismatched"))
    axis = figure.axes[0]
    (dots,) = [c for c in axis.collections if isinstance(c, PathCollection)]
    times, rows = dots.get_offsets().T
    neuron = np.round(times / 1e-3).astype(int)
    for core in range(3):
        assert sorted(rows[core_map[neuron] == core]) == list(range(3 * core, 3 * core + 3))
    assert [t.get_text() for t in axis.get_yticklabels()] == ["core 0", "core 1", "core 2"]
    assert "core" in axis.get_ylabel()
    separators = [line.get_ydata()[0] for line in axis.get_lines()]
    assert separators == [2.5, 5.5]
