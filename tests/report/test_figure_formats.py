"""Figures a paper can use: every figure in every output.figure_formats at the configured
width and dpi, legible text at one column, units on the axes, chips counted in the
legends, shared scales, no blank panels, and raster.png readable for a large network."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Text

import runner.report.figures as plots
import runner.study.run as experiment
from runner.cli.collect import main as collect_main
from runner.report.figures import (
    RASTER_MAX_NEURONS,
    figure_columns,
    font_size,
    plot_accuracy,
    plot_chip_curves,
    plot_raster,
    plot_rates,
    plot_robustness,
)
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.run import plan_identity
from runner.study.schema import register_configs
from tests.helpers.config import compose_config

register_configs()

LEVELS = [0.0, 0.1, 0.2, 0.3, 0.4]
N_CHIPS = 4
SMALL = [
    "backend=reference", "sweep=mismatch_robustness", f"sweep.n_samples={N_CHIPS}",
    f"sweep.axes.0.values=[{','.join(map(str, LEVELS))}]", "network.neurons_per_core=16",
    "network.generator.params.n_inputs=8", "stimulus.n_steps=100",
]  # fmt: skip
FORMATS = ("png", "pdf", "svg")
DPI, WIDTH_IN = 50, 3.5
METRICS = ("mean_rate_hz", "rate_rel_error", "frac_within")


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], dict]:
    """A small 5-point run drawn in png, pdf and svg at one column (3.5 in) and 50 dpi;
    returns its folder, the paths written and the Figure of every plot_* by name."""
    run_dir = tmp_path_factory.mktemp("figures")
    plan = prepare(compose_config([
        *SMALL, f"output.figure_formats=[{','.join(FORMATS)}]", f"output.figure_dpi={DPI}",
        f"output.figure_width_in={WIDTH_IN}",
    ]))  # fmt: skip
    outcome = experiment.run(plan, run_dir, progress=False)
    figures: dict[str, Figure] = {}

    def kept(name: str) -> Callable[..., Figure]:
        plot = getattr(plots, name)

        def keep(*args: Any, **kwargs: Any) -> Figure:
            figures[name] = plot(*args, **kwargs)
            return figures[name]

        return keep

    monkeypatch = pytest.MonkeyPatch()
    for name in ("plot_robustness", "plot_chip_curves", "plot_rates", "plot_raster"):
        monkeypatch.setattr(plots, name, kept(name))
    try:
        written = plots.write_figures(plan, outcome, run_dir)
    finally:
        monkeypatch.undo()
    return run_dir, written, figures


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def summary_of(values: dict[str, list], n_chips: int = 256) -> pd.DataFrame:
    """A summary over the grid of `values` (first axis slowest) with distinct numbers."""
    grid = pd.MultiIndex.from_product(list(values.values()), names=list(values)).to_frame(
        index=False)  # fmt: skip
    rows = []
    for point, row in grid.iterrows():
        row = {"point": point, "n_chips": n_chips, **row.to_dict(),
               "nominal_mean_rate_hz": 20.0 + point, "nominal_accuracy": 0.9,
               "chance_level": 0.125}  # fmt: skip
        for metric in (*METRICS, "accuracy", "accuracy_per_chip"):
            center = 0.5 + 0.01 * point
            row |= {f"{metric}.q05": center - 0.1, f"{metric}.q50": center,
                    f"{metric}.q95": center + 0.2}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def legend_texts(figure: Figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def visible_axes(figure: Figure) -> list:
    return [axis for axis in figure.axes if axis.get_visible() and axis.axison]


# formats, dpi, width ---------------------------------------------------------------------


def test_every_figure_lands_in_every_format_at_the_width_and_dpi(drawn) -> None:
    run_dir, written, _ = drawn
    names = {"robustness", "chips", "rates", "raster"}
    assert {p.relative_to(run_dir).as_posix() for p in written} == {
        f"figures/{name}.{fmt}" for name in names for fmt in FORMATS
    }
    for name in names:
        assert png_size(run_dir / "figures" / f"{name}.png")[0] == WIDTH_IN * DPI
        assert (run_dir / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in (run_dir / "figures" / f"{name}.svg").read_bytes()[:2000]


def test_text_is_legible_at_one_column(drawn) -> None:
    """At 3.5 in every title, label, tick and legend text is at least 7 pt."""
    _, _, figures = drawn
    assert font_size(WIDTH_IN) >= 7 and font_size(7.0) > font_size(WIDTH_IN)
    for figure in figures.values():
        figure.canvas.draw()
        texts = [t for t in figure.findobj(Text) if t.get_text() and t.get_visible()]
        assert texts and min(t.get_fontsize() for t in texts) >= 7
        assert figure.get_figwidth() == WIDTH_IN


@pytest.mark.parametrize("override,key", [
    ("output.figure_formats=[png,jpgx]", "output.figure_formats"),
    ("output.figure_formats=[]", "output.figure_formats"),
    ("output.figure_dpi=0", "output.figure_dpi"),
    ("output.figure_width_in=-3.5", "output.figure_width_in"),
])  # fmt: skip
def test_a_bad_figure_setting_is_refused_in_one_line_naming_its_key(override, key) -> None:
    with pytest.raises(ExperimentError) as refused:
        prepare(compose_config([*SMALL, override]))
    message = str(refused.value)
    assert key in message and "\n" not in message
    if "jpgx" in override:
        assert "'jpgx'" in message and "pdf" in message  # names the supported ones


def test_figure_settings_are_not_part_of_the_experiment_identity() -> None:
    plain = plan_identity(prepare(compose_config(SMALL)))
    drawn = plan_identity(prepare(compose_config([
        *SMALL, "output.figure_formats=[pdf,svg]", "output.figure_dpi=300",
        "output.figure_width_in=3.5",
    ])))  # fmt: skip
    assert plain == drawn


def test_collect_draws_in_the_jobs_formats_or_in_those_it_is_given(tmp_path: Path,
                                                                    capsys) -> None:  # fmt: skip
    for index in (0, 1):
        plan = prepare(compose_config([*SMALL, "shard.count=2", f"shard.index={index}",
                                       "output.figure_formats=[svg]"]))  # fmt: skip
        experiment.run(plan, tmp_path / str(index), progress=False)
    assert collect_main([str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").glob("robustness.*")) == [
        "robustness.svg"]
    assert collect_main([str(tmp_path), "--figure-formats", "png,pdf", "--figure-dpi", "40",
                         "--figure-width-in", "3.5"]) == 0  # fmt: skip
    assert (tmp_path / "figures" / "rates.pdf").is_file()
    assert png_size(tmp_path / "figures" / "robustness.png")[0] == 3.5 * 40
    capsys.readouterr()
    assert collect_main([str(tmp_path), "--figure-formats", "png,jpgx"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: output.figure_formats: 'jpgx'") and "\n" not in error


# what the figures say ---------------------------------------------------------------------


def test_the_run_figures_carry_units_chips_and_the_nominal_instance_title(drawn) -> None:
    _, _, figures = drawn
    robustness = figures["plot_robustness"]
    assert [axis.get_ylabel().split("\n")[0] for axis in robustness.axes] == [
        "mean rate [Hz]", "relative rate error", "fraction of neurons within"]
    assert all(axis.get_title() == "" for axis in robustness.axes)
    assert f"median over {N_CHIPS} chips" in legend_texts(robustness)
    assert f"median over {N_CHIPS} chips" in legend_texts(figures["plot_chip_curves"])
    assert figures["plot_chip_curves"].axes[0].get_ylabel() == "chip mean rate [Hz]"
    assert f"mismatched, {N_CHIPS} chips per point" in legend_texts(figures["plot_rates"])
    for figure in figures.values():
        assert not any("sample" in text for text in legend_texts(figure))
    raster = figures["plot_raster"]
    nominal_title, chip_title = (axis.get_title() for axis in raster.axes)
    last = len(LEVELS) - 1
    assert nominal_title == f"nominal instance of point {last}, trial 0"
    assert chip_title.startswith("chip 0, trial 0 (row ")
    assert "mismatch 40 %" in raster.get_suptitle()


def test_five_points_leave_no_empty_panel_and_share_the_rate_scale(drawn) -> None:
    _, _, figures = drawn
    rates = figures["plot_rates"]
    assert len(rates.axes) == len(LEVELS) and len(visible_axes(rates)) == len(LEVELS)
    assert len({axis.get_ylim() for axis in rates.axes}) == 1
    assert len({axis.get_xlim() for axis in rates.axes}) == 1
    assert all(axis.get_xlabel() == "rate [Hz]" for axis in rates.axes[-2:])
    for axis in rates.axes:  # every panel's x ticks are labelled where no panel is below
        if axis.get_xlabel():
            assert any(t.get_text() for t in axis.get_xticklabels())


@pytest.mark.parametrize("n_points,width_in", [(5, 7.0), (7, 7.0), (6, 7.0), (5, 3.5)])
def test_rates_never_leave_blank_slots(n_points: int, width_in: float) -> None:
    rates = pd.DataFrame({"point": np.repeat(np.arange(n_points), 8), "rate_hz": 1.0})
    figure = plot_rates(rates, rates, [f"p{i}" for i in range(n_points)],
                        dict.fromkeys(range(n_points), 1.0), per_neuron=True, n_chips=8,
                        width_in=width_in)  # fmt: skip
    assert len(figure.axes) == n_points == len(visible_axes(figure))
    assert figure.axes[0].get_ylabel() == "fraction of neurons"


def test_per_instance_rates_say_chips_or_chip_trials() -> None:
    rates = pd.DataFrame({"point": [0] * 4, "rate_hz": 1.0})
    chips = plot_rates(rates, rates, ["p0"], {0: 1.0}, per_neuron=False, n_chips=4)
    trials = plot_rates(rates, rates, ["p0"], {0: 1.0}, per_neuron=False, n_chips=2)
    assert chips.axes[0].get_ylabel() == "fraction of chips"
    assert trials.axes[0].get_ylabel() == "fraction of chip trials"
    assert chips.axes[0].get_xlabel() == "chip mean rate [Hz]"


def test_chips_legend_gives_a_range_when_points_measured_different_numbers() -> None:
    summary = summary_of({"network.percent_mismatch": [0.0, 0.1]})
    summary.loc[1, "n_chips"] = 250
    assert "median over 250–256 chips" in legend_texts(
        plot_robustness(summary, ["network.percent_mismatch"], 0.2))


def test_overlapping_bands_of_a_two_axis_grid_are_faint_and_hatched_apart() -> None:
    axes = {"scale:network.currents.Itau_mem": [0.5, 1.0, 2.0],
            "network.currents.Idc": [5e-13, 5e-12, 2e-11]}  # fmt: skip
    figure = plot_robustness(summary_of(axes), list(axes), within=0.2)
    panel = figure.axes[1]
    hatches = [band.get_hatch() for band in panel.collections if band.get_hatch()]
    assert len(hatches) == 3 and len(set(hatches)) == 3
    assert all(band.get_alpha() <= 0.5 for band in panel.collections)
    markers = {line.get_marker() for line in panel.get_lines()}
    assert len(markers) == 3
    assert "median over 256 chips" in legend_texts(figure)


def test_accuracy_draws_the_nominal_beneath_the_chip_curves_on_one_scale() -> None:
    values = {"network.quantize.n_bits": [2, 4], "network.percent_mismatch": [0.0, 0.1, 0.3]}
    figure = plot_accuracy(summary_of(values), list(values), target=0.8)
    assert len({axis.get_ylim() for axis in figure.axes}) == 1
    for axis in figure.axes:
        nominal, *medians = axis.get_lines()[:3]
        assert nominal.get_color() == "k"
        assert all(line.get_zorder() > nominal.get_zorder() for line in medians)
        assert all(line.get_marker() not in ("None", "") for line in medians)
        assert medians[0].get_marker() != medians[1].get_marker()
    assert figure.axes[0].get_ylabel() == "test accuracy [fraction correct]"
    texts = legend_texts(figure)
    assert "refitted per chip, median over 256 chips" in texts and "5–95 % of chips" in texts


def test_a_joint_axis_is_drawn_as_one_axis_of_its_values_text() -> None:
    """n_bits x synaptic mismatch as a joint axis, then the mismatch level (x): one panel
    per joint value, titled in words; as the last axis, one category per joint value."""
    joint = ["network.quantize.n_bits", "network.mismatch.weights"]
    pairs = [(np.nan, False), (4, False), (4, True)]
    summary = summary_of({"pair": [0, 1, 2], "network.percent_mismatch": [0.0, 0.1]})
    summary[joint[0]] = [pairs[int(i)][0] for i in summary["pair"]]
    summary[joint[1]] = [pairs[int(i)][1] for i in summary["pair"]]
    drawn, columns = figure_columns(summary, [joint, ["network.percent_mismatch"]])
    assert columns == [" & ".join(joint), "network.percent_mismatch"]
    figure = plot_accuracy(drawn, columns, target=0.8)
    assert [" ".join(axis.get_title().split()) for axis in visible_axes(figure)] == [
        "float weights, no synaptic mismatch", "4-bit weights, no synaptic mismatch",
        "4-bit weights, synaptic mismatch"]  # fmt: skip
    drawn, columns = figure_columns(summary, [["network.percent_mismatch"], joint])
    last = visible_axes(plot_robustness(drawn.sort_values(["network.percent_mismatch", "pair"]),
                                        columns, within=0.2))[-1]  # fmt: skip
    assert " ".join(last.get_xlabel().split()) == "n_bits, synaptic mismatch"
    assert [tick.get_text() for tick in last.get_xticklabels()] == [
        "float weights, no synaptic mismatch", "4-bit weights, no synaptic mismatch",
        "4-bit weights, synaptic mismatch"]  # fmt: skip


def test_chip_curves_label_their_axes_with_units() -> None:
    levels = [0.0, 0.1, 0.3]
    chips = pd.DataFrame([
        {"point": p, "chip": c, "nonfinite": False, "mean_rate_hz": 20.0 + c * level,
         "rate_rel_error": level}
        for p, level in enumerate(levels) for c in range(3)
    ])  # fmt: skip
    figure = plot_chip_curves(chips, summary_of({"network.percent_mismatch": levels}),
                              "network.percent_mismatch", width_in=3.5)  # fmt: skip
    assert figure.axes[0].get_ylabel() == "chip mean rate [Hz]"
    assert figure.axes[1].get_xlabel() == "percent_mismatch (3σ) [%]"
    assert figure.axes[0].get_xlabel() == ""  # stacked at one column: one x label, below


# raster.png --------------------------------------------------------------------------------


def test_a_large_network_draws_population_rates_per_core_on_one_scale() -> None:
    n_steps, dt, bin_steps = 100, 1e-3, 10
    core_map = np.repeat(np.arange(4), 128)  # 512 neurons
    nominal = np.zeros((n_steps, core_map.size), dtype=np.int32)
    nominal[:, core_map == 1] = 1  # core 1 spikes every step: 1000 Hz per neuron
    mismatched = nominal.copy()
    mismatched[::2, core_map == 2] = 1  # core 2 every other step: 500 Hz
    figure = plot_raster(nominal, mismatched, dt, core_map, ("nominal", "chip"), bin_steps)
    assert core_map.size > RASTER_MAX_NEURONS
    left, right = figure.axes
    assert left.get_ylim() == right.get_ylim()
    for axis in (left, right):
        assert not [c for c in axis.collections if isinstance(c, PathCollection)]
        assert [line.get_label() for line in axis.get_lines()] == [f"core {c}" for c in range(4)]
    assert "Hz per neuron" in left.get_ylabel() and "10 ms" in left.get_ylabel()
    assert right.get_xlabel() == "time [s]"
    rates = {line.get_label(): line.get_ydata() for line in right.get_lines()}
    np.testing.assert_allclose(rates["core 1"], 1000.0)
    np.testing.assert_allclose(rates["core 2"], 500.0)
    np.testing.assert_allclose(rates["core 0"], 0.0)
    assert len(rates["core 0"]) == n_steps // bin_steps
    assert [f"core {c}" for c in range(4)] == legend_texts(figure)


def test_a_small_network_keeps_its_spike_raster() -> None:
    core_map = np.zeros(RASTER_MAX_NEURONS, dtype=int)
    raster = np.zeros((50, core_map.size), dtype=np.int32)
    raster[3, 7] = 1
    figure = plot_raster(raster, raster, 1e-3, core_map, ("nominal", "chip"))
    for axis in figure.axes:
        (dots,) = [c for c in axis.collections if isinstance(c, PathCollection)]
        np.testing.assert_allclose(dots.get_offsets(), [[3e-3, 7]])
    assert figure.axes[0].get_ylabel() == "neuron"
