"""The deployment study: `task=deployment` (float weights, quantized, with and without
synaptic mismatch on a joint axis, x mismatch levels), and `readout.fit_point`: the readout
fitted once, on one point's nominal instance, scores every point, also across resume and
shards; the identity of joint axes and of a shared readout.

The small study: `task=deployment` shrunk to 4 cores of 32 neurons, 32 inputs, 4 classes,
40 samples of 60 steps (12 test samples), points float / 4 bits / 4 bits with synaptic
mismatch x levels 0 % and 30 %, 3 chips each, on the NumPy reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment_run
from runner.analysis.readout import fit_ridge
from runner.cli.collect import main as collect_main
from runner.physics.hardware import check_hardware
from runner.study.identity import differences, experiment_identity
from runner.study.network_config import build_network, resolve_network
from runner.study.outcome import Outcome
from runner.study.plan import ExperimentError, Plan
from runner.study.prepare import prepare
from runner.study.schema import NetworkConfig, typed
from tests.helpers.cli import main_in_process, ok
from tests.helpers.config import compose_config
from tests.helpers.studies import interrupt_after
from tests.helpers.studies import task_tables as frames

N_CHIPS, ALPHA = 3, 100.0
COLUMNS = ["network.quantize.n_bits", "network.mismatch.weights", "network.percent_mismatch"]
SMALL = [
    "task=deployment", "backend=reference", f"sweep.n_samples={N_CHIPS}",
    "sweep.axes.0.values=[[null,false],[4,false],[4,true]]", "sweep.axes.1.values=[0.0,0.3]",
    "chunk_size=24", "network.neurons_per_core=32", "network.generator.params.n_inputs=32",
    "stimulus.patterns.n_channels=32", "stimulus.patterns.n_classes=4",
    "stimulus.patterns.n_samples=40", "stimulus.patterns.n_steps=60",
    "stimulus.patterns.active_channels=8", "stimulus.patterns.rate_hz=60.0",
    "stimulus.patterns.jitter_steps=5", f"readout.alpha={ALPHA}", "output.neurons=true",
]  # fmt: skip


def config(*extra: str) -> dict:
    return compose_config([*SMALL, "output.figures=false", *extra])


def run(run_dir: Path, *extra: str) -> Outcome:
    return experiment_run.run(prepare(config(*extra)), run_dir, progress=False)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The small study through `python -m runner` (figures on): its folder and output."""
    run_dir = tmp_path_factory.mktemp("deployment")
    done = ok(main_in_process(*SMALL, f"hydra.run.dir={run_dir}", cwd=run_dir))
    return run_dir, done.stdout


def nominal_counts(nominal: pd.DataFrame, point: int) -> tuple[np.ndarray, np.ndarray]:
    """(trial ids, (trials, N) spike counts) of a point's nominal instance."""
    rows = nominal[nominal["point"] == point]
    trials = rows.drop_duplicates("trial")["trial"].to_numpy()
    return trials, rows["spike_count"].to_numpy(float).reshape(trials.size, -1)


def hand_readout(plan: Plan, nominal: pd.DataFrame, point: int):
    """Ridge fitted here on `point`'s nominal responses to the train samples."""
    dataset = plan.points[point].stimulus.dataset
    trials, counts = nominal_counts(nominal, point)
    train = dataset.train[trials]
    return fit_ridge(counts[train], dataset.labels[trials][train], dataset.n_classes, ALPHA)


def test_task_deployment_composes_the_whole_study_and_its_network_fits_the_chip() -> None:
    shipped = compose_config(["task=deployment"])
    network = shipped["network"]
    assert network["name"] == "ei_4core_float" and network["hardware"] == "dynapse2"
    assert network["generator"]["params"]["weight_cv"] == 0.5
    assert shipped["readout"]["fit_point"] == 0 and not shipped["readout"]["per_chip"]
    joint, levels = shipped["sweep"]["axes"]
    assert joint["paths"] == COLUMNS[:2] and joint["path"] is None
    assert joint["values"] == [[None, False], [4, False], [4, True], [3, False], [3, True],
                               [2, False], [2, True]]  # fmt: skip
    assert levels["path"] == "network.percent_mismatch"
    assert levels["values"] == [0.0, 0.1, 0.2, 0.3]
    assert shipped["sweep"]["n_samples"] == 64 and shipped["stimulus"]["kind"] == "patterns"
    net = build_network(typed(NetworkConfig, resolve_network(network)), 0)
    assert net.spec.n_neurons == 1024 and check_hardware(net) == []  # fan-in 32 of 64
    rec = net.spec.weights_rec
    assert np.unique(np.abs(rec[rec != 0])).size > 1000  # float weights


def test_every_point_is_scored_with_the_readout_of_the_float_networks_nominal(cli_run) -> None:
    """readout.fit_point=0: chips and nominal instances of every point are predicted by a
    ridge readout fitted by hand on point 0's nominal responses; only that one is stored."""
    run_dir, _ = cli_run
    tables = frames(run_dir)
    plan = prepare(config())
    readout = hand_readout(plan, tables["nominal"], 0)
    neurons = pd.read_parquet(run_dir / "neurons.parquet")
    counts = neurons["spike_count"].to_numpy(float).reshape(len(tables["instances"]), -1)
    assert not tables["instances"]["nonfinite"].any()
    np.testing.assert_array_equal(tables["instances"]["predicted"], readout.predict(counts))
    for point in range(6):
        trials, nominal = nominal_counts(tables["nominal"], point)
        rows = tables["nominal"][tables["nominal"]["point"] == point].drop_duplicates("trial")
        np.testing.assert_array_equal(rows["predicted"], readout.predict(nominal))
    stored = sorted(p.name for p in (run_dir / "chunks").glob("*.readout.npz"))
    assert stored == ["nominal-p00000.readout.npz"]
    summary = tables["summary"]
    assert summary["nominal_accuracy"][0] > summary["chance_level"][0]
    assert (tables["chips"].loc[tables["chips"]["point"] == 0, "accuracy"]
            == summary["nominal_accuracy"][0]).all()  # fmt: skip


def test_without_fit_point_each_point_fits_its_own_nominal(tmp_path: Path) -> None:
    outcome = run(tmp_path, "readout.fit_point=null", "sweep.axes.1.values=[0.3]")
    plan = prepare(config("readout.fit_point=null", "sweep.axes.1.values=[0.3]"))
    stored = sorted(p.name for p in (tmp_path / "chunks").glob("*.readout.npz"))
    assert stored == [f"nominal-p{p:05d}.readout.npz" for p in range(3)]
    for point in range(3):
        readout = hand_readout(plan, outcome.nominal, point)
        _, nominal = nominal_counts(outcome.nominal, point)
        rows = outcome.nominal[outcome.nominal["point"] == point].drop_duplicates("trial")
        np.testing.assert_array_equal(rows["predicted"], readout.predict(nominal))


def test_per_chip_refits_stay_per_chip_with_a_fit_point(tmp_path: Path) -> None:
    """readout.per_chip refits each chip on its own train rows whichever nominal fits the
    transferred readout: the same per-chip predictions with and without fit_point."""
    overrides = ("readout.per_chip=true", "sweep.axes.1.values=[0.3]",
                 "sweep.axes.0.values=[[null,false],[2,true]]")  # fmt: skip
    shared = run(tmp_path / "shared", *overrides)
    own = run(tmp_path / "own", *overrides, "readout.fit_point=null")
    np.testing.assert_array_equal(shared.instances["predicted_per_chip"],
                                  own.instances["predicted_per_chip"])  # fmt: skip
    assert shared.instances["predicted_per_chip"].notna().all()


def test_the_joint_axis_keeps_a_column_per_path_and_prints_null_for_float(cli_run) -> None:
    run_dir, output = cli_run
    summary = frames(run_dir)["summary"]
    assert list(summary.columns[1:4]) == COLUMNS
    assert summary[COLUMNS[0]].isna().tolist() == [True, True, False, False, False, False]
    assert summary[COLUMNS[1]].tolist() == [False, False, False, False, True, True]
    assert summary[COLUMNS[2]].tolist() == [0.0, 0.3] * 3
    accuracy = output[output.index("test accuracy over chips") :].splitlines()
    assert accuracy[1].split()[:4] == ["point", *COLUMNS]
    assert accuracy[2].split()[:4] == ["0", "null", "False", "0.0"]
    assert accuracy[4].split()[:4] == ["2", "4", "False", "0.0"]
    assert (run_dir / "figures" / "accuracy.png").is_file()


def test_resumed_and_sharded_runs_score_with_the_same_readout(
    tmp_path: Path, cli_run, monkeypatch, capsys
) -> None:
    """An interrupted run resumes with the stored readout; of two shards, the second holds
    no row of point 0, runs its nominal instance itself for the readout, and the merged
    tables equal the single run's."""
    complete = frames(cli_run[0])
    interrupt_after(monkeypatch, experiment_run, 1)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.undo()
    assert run(tmp_path / "resumed").simulated > 0
    for index in (0, 1):
        run(tmp_path / "sweep" / str(index), "shard.count=2", f"shard.index={index}")
    second = prepare(config("shard.count=2", "shard.index=1"))
    assert 0 not in second.touched_points() and second.nominal_points()[0] == 0
    assert (tmp_path / "sweep" / "1" / "chunks" / "nominal-p00000.readout.npz").is_file()
    assert collect_main([str(tmp_path / "sweep"), "--no-figures", "--require-complete"]) == 0
    capsys.readouterr()
    for folder in (tmp_path / "resumed", tmp_path / "sweep"):
        tables = frames(folder)
        for name in ("instances", "chips", "nominal"):
            pd.testing.assert_frame_equal(tables[name], complete[name], check_exact=True)
        pd.testing.assert_frame_equal(tables["summary"], complete["summary"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["readout.fit_point=6"],
         r"readout.fit_point must be a sweep point index in \[0, 6\) .* got 6"),
        (["readout.fit_point=-1"],
         r"readout.fit_point \(a sweep point index\) must be an int >= 0"),
        (["readout=vote", "readout.groups=[[0],[1],[2],[3]]", "readout.fit_point=0"],
         r"readout.fit_point chooses where a ridge readout is fitted; kind is 'vote'"),
    ],
)  # fmt: skip
def test_a_bad_fit_point_is_refused_before_any_work(overrides, message) -> None:
    with pytest.raises(ExperimentError, match=message):
        prepare(config(*overrides))


def test_a_fit_point_whose_readout_does_not_fit_another_point_is_refused() -> None:
    classes = ["sweep.axes=[{path: stimulus.patterns.n_classes, values: [4, 2]}]"]
    with pytest.raises(ExperimentError,
                       match=r"readout.fit_point=0: its readout takes 128 features and 4 "
                             r"classes, but sweep point 1 .* has 128 and 2"):  # fmt: skip
        prepare(config(*classes))


def test_the_identity_changes_with_a_joint_axis_and_a_fit_point() -> None:
    base = experiment_identity(config(), [])
    other = experiment_identity(config("sweep.axes.0.values=[[null,false],[4,false],[3,true]]"),
                                [])  # fmt: skip
    assert differences(base, other) == ["sweep.axes.0.values.2.0"]
    assert base["readout"]["fit_point"] == 0
    unset = experiment_identity(config("readout.fit_point=null"), [])
    assert "fit_point" not in unset["readout"] and differences(base, unset) == [
        "readout.fit_point"]  # fmt: skip
    plain_axis = experiment_identity(compose_config(["sweep=mismatch_robustness"]), [])
    assert "paths" not in plain_axis["sweep"]["axes"][0]  # as before joint axes existed
