"""Quantization in studies: `network.quantize.n_bits` quantizes every sweep point's weights
before any simulation, keeps them as `chunks/quantized-p<point>.npz` (checked, never
trusted, on every rerun), is part of the experiment's identity, sweeps like any key (float
and quantized weights on the same chips) and reports `quantization_loss` in summary.csv.

The network: a spec file of normal weights (2 cores of 16 neurons, 8 inputs), so that
every bit width has a loss; backend reference, 2 chips per point, 100 steps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment
from runner import quantize_weights
from runner.cli.collect import main as collect_main
from runner.physics.spec import Quantization
from runner.report.summary import render_summary
from runner.study.outcome import Outcome
from runner.study.plan import ExperimentError, Plan
from runner.study.prepare import prepare
from runner.study.run_folder import ExperimentMismatch
from runner.study.schema import register_configs
from tests.helpers.studies import float_spec_file, interrupt_after, spec_file_config

register_configs()
AXIS = "network.quantize.n_bits"
N_BITS_AXIS = f"sweep.axes=[{{path: {AXIS}, values: [null, 2, 4]}}]"


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Normal weights: excitatory inputs, mixed recurrent ones, 60 % / 20 % connected."""
    return float_spec_file(tmp_path_factory.mktemp("spec") / "net.npz", seed=3, per_core=16,
                           n_inputs=8, input_density=0.6, recurrent_density=0.2)  # fmt: skip


def config(spec_file: Path, *extra: str) -> dict:
    """The shipped config on the small spec-file network, as the plain dict `prepare` takes."""
    return spec_file_config(spec_file, 100, *extra)


def run(run_dir: Path, spec_file: Path, *extra: str) -> tuple[Plan, Outcome]:
    plan = prepare(config(spec_file, *extra))
    return plan, experiment.run(plan, run_dir, progress=False)


def stored(run_dir: Path, point: int) -> dict[str, np.ndarray]:
    with np.load(run_dir / "chunks" / f"quantized-p{point:05d}.npz") as data:
        return {key: data[key] for key in data.files}


def as_quantization(arrays: dict[str, np.ndarray]) -> Quantization:
    return Quantization(int(arrays["n_bits"]), arrays["base_weights"], arrays["mask_in"],
                        arrays["sign_in"], arrays["mask_rec"], arrays["sign_rec"])  # fmt: skip


def assert_same_quantization(a: Quantization, b: Quantization) -> None:
    assert a.n_bits == b.n_bits
    for name in ("base_weights", "mask_in", "sign_in", "mask_rec", "sign_rec"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.fixture(scope="module")
def float_plan(spec_file: Path) -> Plan:
    return prepare(config(spec_file))


@pytest.fixture(scope="module")
def three_bits(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run with n_bits=3."""
    run_dir = tmp_path_factory.mktemp("three_bits")
    run(run_dir, spec_file, f"{AXIS}=3")
    return run_dir


@pytest.fixture(scope="module")
def n_bits_sweep(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the axis [null, 2, 4]: 3 points x 2 chips, a chunk per point."""
    run_dir = tmp_path_factory.mktemp("n_bits_sweep")
    run(run_dir, spec_file, N_BITS_AXIS)
    return run_dir


def test_the_run_simulates_and_stores_the_quantized_network(
    spec_file: Path, three_bits: Path, float_plan: Plan
) -> None:
    plan = prepare(config(spec_file, f"{AXIS}=3"))
    expected = float_plan.points[0].network.quantized(3)
    network = plan.points[0].network
    assert_same_quantization(network.spec.quantization, expected.spec.quantization)
    np.testing.assert_array_equal(network.spec.weights_in, expected.spec.weights_in)
    np.testing.assert_array_equal(network.spec.weights_rec, expected.spec.weights_rec)

    arrays = stored(three_bits, 0)
    assert_same_quantization(as_quantization(arrays), expected.spec.quantization)
    np.testing.assert_array_equal(arrays["restored_in"], expected.spec.weights_in)
    np.testing.assert_array_equal(arrays["restored_rec"], expected.spec.weights_rec)
    np.testing.assert_array_equal(arrays["core_map"], expected.spec.core_map)
    assert float(arrays["Iscale"]) == expected.spec.Iscale
    assert not list((three_bits / "chunks").glob(".tmp-*"))

    spec = float_plan.points[0].network.spec
    reference = quantize_weights(spec.weights_in, spec.weights_rec, spec.core_map, spec.Iscale,
                                 n_bits=3)["quantization_loss"]  # fmt: skip
    np.testing.assert_allclose(arrays["quantization_loss"], reference, rtol=1e-9)
    assert (arrays["quantization_loss"] > 0).all()
    summary = pd.read_csv(three_bits / "summary.csv")
    assert summary["quantization_loss"].tolist() == pytest.approx([np.mean(reference)])


def test_float_weights_have_no_quantization_file_or_loss(float_plan: Plan, tmp_path: Path) -> None:
    outcome = experiment.run(float_plan, tmp_path, progress=False)
    assert not list((tmp_path / "chunks").glob("quantized-*"))
    assert float_plan.points[0].network.spec.quantization is None
    assert pd.read_csv(tmp_path / "summary.csv")["quantization_loss"].isna().all()
    assert "quant. loss" not in render_summary(float_plan, outcome, tmp_path)


def test_the_n_bits_axis_compares_float_and_quantized_weights_on_the_same_chips(
    spec_file: Path, n_bits_sweep: Path, float_plan: Plan
) -> None:
    plan = prepare(config(spec_file, N_BITS_AXIS))
    assert [p.sweep.values[AXIS] for p in plan.points] == [None, 2, 4]
    assert plan.group_of == [0, 1, 2]  # different weights: never in one backend call
    assert not (n_bits_sweep / "chunks" / "quantized-p00000.npz").exists()
    for point, n_bits in ((1, 2), (2, 4)):
        expected = float_plan.points[0].network.quantized(n_bits).spec.quantization
        assert_same_quantization(as_quantization(stored(n_bits_sweep, point)), expected)

    # paired: chip c draws the same 24 parameters at every point, whatever its weights
    for chip in range(plan.n_chips):
        drawn = [
            p.network.parameters(plan.mismatch_keys(np.array([i]), np.array([chip])))
            for i, p in enumerate(plan.points)
        ]
        assert len(drawn[0]) == 24
        for other in drawn[1:]:
            for name, values in drawn[0].items():
                np.testing.assert_array_equal(other[name], values, err_msg=name)

    summary = pd.read_csv(n_bits_sweep / "summary.csv")
    loss = summary["quantization_loss"].to_numpy()
    assert np.isnan(loss[0]) and 0 < loss[2] < loss[1]
    assert summary[AXIS].isna().tolist() == [True, False, False]
    assert summary[AXIS].iloc[1:].tolist() == [2, 4]
    chips = pd.read_parquet(n_bits_sweep / "chips.parquet")
    assert chips.groupby("point")["chip"].apply(list).tolist() == [[0, 1]] * 3
    nominal = pd.read_parquet(n_bits_sweep / "nominal.parquet")
    rates = nominal.groupby("point")["rate_hz"].apply(np.asarray)
    assert not np.array_equal(rates[0], rates[1])  # 2 bits change the network's rates


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of a module's finished run, for a test that writes into it."""
    shutil.copytree(run_dir, tmp_path / "run")
    return tmp_path / "run"


def test_the_printed_summary_shows_the_loss_when_a_point_is_quantized(
    spec_file: Path, n_bits_sweep: Path, tmp_path: Path
) -> None:
    run_dir = copy_of(n_bits_sweep, tmp_path)
    plan, outcome = run(run_dir, spec_file, N_BITS_AXIS)  # all from the folder
    assert outcome.simulated == 0
    text = render_summary(plan, outcome, run_dir)
    header, first = text.splitlines()[3:5]
    assert "quant. loss" in header and "float" in first


def test_a_changed_n_bits_is_another_experiment(
    spec_file: Path, three_bits: Path, tmp_path: Path
) -> None:
    run_dir = copy_of(three_bits, tmp_path)
    with pytest.raises(ExperimentMismatch, match=r"network\.quantize\.n_bits: 3 in the folder, 4"):
        run(run_dir, spec_file, f"{AXIS}=4")
    with pytest.raises(ExperimentMismatch, match=r"network\.quantize\.n_bits: 3 in the folder"):
        run(run_dir, spec_file)  # float weights
    # a hardware check changes no number: the chunks are reused
    _, outcome = run(run_dir, spec_file, f"{AXIS}=3", "network.hardware=dynapse2")
    assert outcome.simulated == 0


def test_an_interrupted_run_resumes_with_its_chunks_and_quantization(
    spec_file: Path, n_bits_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_after(monkeypatch, experiment, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, spec_file, N_BITS_AXIS)
    chunks = tmp_path / "chunks"
    assert len(list(chunks.glob("*.instances.parquet"))) == 2
    files = {path.name: path.stat() for path in chunks.glob("quantized-*.npz")}
    assert sorted(files) == ["quantized-p00001.npz", "quantized-p00002.npz"]  # before simulating

    monkeypatch.undo()  # the real simulate_chunk again
    _, outcome = run(tmp_path, spec_file, N_BITS_AXIS)
    assert outcome.simulated == 2  # the third point's chunk only
    for name, before in files.items():  # reused, not written again
        after = (chunks / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (chunks / "rejected").exists()
    for table in ("instances", "chips"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / f"{table}.parquet"),
            pd.read_parquet(n_bits_sweep / f"{table}.parquet"),
        )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"),
                                  pd.read_csv(n_bits_sweep / "summary.csv"))  # fmt: skip


@pytest.mark.parametrize("damage", ["missing", "truncated", "edited", "not a file"])
def test_a_bad_quantization_file_is_rejected_and_written_again(
    spec_file: Path, three_bits: Path, tmp_path: Path, damage: str
) -> None:
    run_dir = copy_of(three_bits, tmp_path)
    path = run_dir / "chunks" / "quantized-p00000.npz"
    good = stored(run_dir, 0)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "edited":
        np.savez(path, **{**good, "base_weights": good["base_weights"] * 1.01})
    else:
        path.unlink()
        path.mkdir()
    _, outcome = run(run_dir, spec_file, f"{AXIS}=3")
    assert outcome.simulated == 0  # the chunks are kept: only the file is written again
    again = stored(run_dir, 0)
    assert again.keys() == good.keys()
    for key, value in good.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    rejected = list((run_dir / "chunks").glob("rejected/*/quantized-p00000.npz"))
    assert len(rejected) == (0 if damage == "missing" else 1)


def test_shards_store_their_points_and_collect_merges_the_loss(
    spec_file: Path, n_bits_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for index in (0, 1):
        run(tmp_path / str(index), spec_file, N_BITS_AXIS, "shard.count=2",
            f"shard.index={index}")  # fmt: skip
    assert not list((tmp_path / "0" / "chunks").glob("quantized-*"))  # point 0: float weights
    assert sorted(p.name for p in (tmp_path / "1" / "chunks").glob("quantized-*")) == [
        "quantized-p00001.npz", "quantized-p00002.npz"
    ]  # fmt: skip
    status = collect_main([str(tmp_path), "--no-figures", "--require-complete"])
    assert status == 0, capsys.readouterr()
    assert "quant. loss" in capsys.readouterr().out
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "instances.parquet"),
        pd.read_parquet(n_bits_sweep / "instances.parquet"),
    )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"),
                                  pd.read_csv(n_bits_sweep / "summary.csv"))  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([f"{AXIS}=0"], "network.quantize.n_bits must be an int from 1 to 8"),
        ([f"{AXIS}=9"], r"network.quantize.n_bits must be .* or null \(float weights\), got 9"),
        (
            [f"sweep.axes=[{{path: {AXIS}, values: [2, 12]}}]"],
            r"^sweep point 1 \{'network.quantize.n_bits': 12\}: network.quantize.n_bits must",
        ),
        (
            [f"sweep.axes=[{{path: {AXIS}, values: [2, two]}}]"],
            r"^sweep point 1 .*'two' of type 'str' could not be converted to Integer",
        ),
        (
            ["network.hardware=dynapse"],
            r"^network.hardware: unknown hardware profile 'dynapse' \(did you mean 'dynapse2'\?\)"
            r"; known: dynapse2$",
        ),
    ],
)
def test_bad_quantize_and_hardware_settings_fail_in_prepare(
    spec_file: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(ExperimentError, match=message):
        prepare(config(spec_file, *overrides))


def test_hardware_checks_the_network_that_runs(spec_file: Path) -> None:
    assert prepare(config(spec_file, "network.hardware=dynapse2", f"{AXIS}=4")).points
    with pytest.raises(ExperimentError, match=(
        r"^the network does not fit network.hardware=dynapse2: the weights select among 5 base "
        r"weights per core \(Iw_0..Iw_4\); the chip has 4 \(1 base weight too many"
        r"(, \d+ connections over)?\)$"
    )):  # fmt: skip
        prepare(config(spec_file, "network.hardware=dynapse2", f"{AXIS}=5"))
