"""Task accuracy through the runner: a dataset stimulus, readouts fitted or configured per
sweep point, per-row predictions, chip accuracies and their summary, checked against an
independent simulation scored with runner.readout, and across resume and shards.

The small task: `task=patterns` shrunk to ei_4core with 4 cores of 32 neurons and 32
inputs, 4 classes, 40 samples of 60 steps; levels 0 % and 30 %, 3 chips each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment_run
from runner.analysis.chip_statistics import AccuracySettings
from runner.analysis.objective import ObjectiveConfig, objective_value
from runner.analysis.readout import (
    ReadoutConfig,
    VoteReadout,
    features,
    fit_ridge,
    refit_predictions,
)
from runner.cli.collect import main as collect_main
from runner.kernel.backends import get_backend
from runner.kernel.batch import InputEvents
from runner.network.dynapsim import DynapSimNetwork, packed_batch
from runner.physics.mismatch import MismatchModel
from runner.study.footprint import chunk_footprint
from runner.study.outcome import Outcome
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.schema import register_configs
from runner.study.scoring import PointTask, predictions, refitted_predictions
from tests.helpers.cli import main_in_process
from tests.helpers.config import compose_config
from tests.helpers.studies import task_tables as frames

register_configs()
N_CHIPS, N_SAMPLES = 3, 40
SMALL_TASK = [
    "task=patterns", "backend=reference", "sweep=mismatch_robustness",
    f"sweep.n_samples={N_CHIPS}", "sweep.axes.0.values=[0.0,0.3]", "chunk_size=80",
    "network.neurons_per_core=32", "network.generator.params.n_inputs=32",
    "stimulus.patterns.n_channels=32", "stimulus.patterns.n_classes=4",
    f"stimulus.patterns.n_samples={N_SAMPLES}", "stimulus.patterns.n_steps=60",
    "stimulus.patterns.active_channels=8", "stimulus.patterns.rate_hz=60.0",
    "stimulus.patterns.jitter_steps=5", "readout.alpha=100.0", "output.figures=false",
]  # fmt: skip


def config(*extra: str, base: list[str] = SMALL_TASK) -> dict:
    return compose_config([*base, *extra])


def run(run_dir: Path, *extra: str) -> Outcome:
    return experiment_run.run(prepare(config(*extra)), run_dir, progress=False)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The small task through `python -m runner` (`main()`, figures on): its folder and
    output."""
    run_dir = tmp_path_factory.mktemp("cli")
    overrides = [o for o in SMALL_TASK if o != "output.figures=false"]
    done = main_in_process(*overrides, f"hydra.run.dir={run_dir}", cwd=run_dir)
    assert done.returncode == 0, done.stderr
    return run_dir, done.stdout


def chip_features(net: DynapSimNetwork, inputs: np.ndarray, chips: np.ndarray) -> np.ndarray:
    """(C, S, N) spike counts of every chip (mismatch instance keyed by its id) on every
    sample, simulated here in one batch, outside the runner's plan and chunks."""
    events = InputEvents.from_dense(inputs, len(inputs))
    streams = np.tile(np.arange(len(inputs), dtype=np.int32), chips.size)
    events = dataclasses.replace(events, instance_stream=streams)
    instances = np.repeat(chips, len(inputs))
    batch = packed_batch([net], np.zeros(instances.size, np.int32), events, instances, 0)
    result = get_backend("reference")(batch)
    assert (result.nonfinite_step < 0).all()
    counts = features(result.spike_count, inputs.shape[1], 0, 1)
    return counts.reshape(chips.size, len(inputs), -1)


def test_task_patterns_composes_and_the_command_line_wins() -> None:
    shipped = config(base=["task=patterns", "sweep=mismatch_robustness"])
    assert shipped["network"]["name"] == "ei_4core"
    assert shipped["stimulus"]["kind"] == "patterns"
    assert shipped["readout"]["kind"] == "ridge" and shipped["readout"]["per_chip"]
    assert shipped["sweep"]["n_samples"] == 64 and not shipped["output"]["neurons"]
    assert len(shipped["sweep"]["axes"][0]["values"]) == 5
    plan = prepare(shipped)
    stimulus = plan.points[0].stimulus
    assert (plan.n_trials, stimulus.n_steps, plan.points[0].network.spec.n_inputs) == (150, 150,
                                                                                        256)
    np.testing.assert_array_equal(stimulus.chip_trials, np.arange(150))  # ridge per chip
    np.testing.assert_array_equal(stimulus.nominal_trials, np.arange(150))
    assert plan.accuracy == AccuracySettings(0.8, {p: 0.125 for p in range(5)})
    smaller = config("sweep.n_samples=4", "readout.per_chip=false",
                     base=["task=patterns", "sweep=mismatch_robustness"])  # fmt: skip
    assert smaller["sweep"]["n_samples"] == 4
    test_only = prepare(smaller).points[0].stimulus
    np.testing.assert_array_equal(test_only.chip_trials, np.flatnonzero(~test_only.dataset.train))
    assert test_only.nominal_trials.size == 150  # the nominal runs the train samples too


def test_accuracies_equal_an_independent_simulation_scored_by_the_readout(cli_run) -> None:
    """Chip c at each level is mismatch instance c of that level's network on every
    sample: simulated here, ridge fitted on the nominal network's train responses, every
    chip scored with it and refitted on its own train samples (runner.readout)."""
    run_dir, _ = cli_run
    tables = frames(run_dir)
    plan = prepare(config())
    dataset = plan.points[0].stimulus.dataset
    labels, train = dataset.labels, dataset.train
    for point in plan.points:
        nominal_net = DynapSimNetwork(dataclasses.replace(point.network.spec,
                                                          mismatch=MismatchModel()))  # fmt: skip
        nominal = chip_features(nominal_net, dataset.inputs, np.zeros(1, np.uint64))[0]
        readout = fit_ridge(nominal[train], labels[train], 4, alpha=100.0)
        responses = chip_features(point.network, dataset.inputs,
                                  np.arange(N_CHIPS, dtype=np.uint64))  # fmt: skip
        test = ~train
        transferred = np.array([np.mean(readout.predict(r[test]) == labels[test])
                                for r in responses])  # fmt: skip
        own = refit_predictions(responses, labels, train, alpha=100.0)
        per_chip = (own[:, test] == labels[test]).mean(axis=1)
        chips = tables["chips"][tables["chips"]["point"] == point.sweep.index]
        np.testing.assert_allclose(chips["accuracy"], transferred, rtol=0, atol=1e-12)
        np.testing.assert_allclose(chips["accuracy_per_chip"], per_chip, rtol=0,
                                   atol=1e-12)  # fmt: skip
        row = tables["summary"].iloc[point.sweep.index]
        nominal_accuracy = (readout.predict(nominal[~train]) == labels[~train]).mean()
        assert row["nominal_accuracy"] == pytest.approx(nominal_accuracy, abs=1e-12)
        assert row["accuracy.mean"] == pytest.approx(transferred.mean(), abs=1e-12)
        assert row["accuracy.frac_at_target"] == pytest.approx((transferred >= 0.8).mean())
        assert row["chance_level"] == 0.25
    levels = tables["chips"].groupby("point")["accuracy"].mean()
    assert levels[1] < levels[0]  # 30 % mismatch costs the transferred readout accuracy


def test_chip_accuracy_is_the_share_of_test_rows_predicted_right(cli_run) -> None:
    run_dir, output = cli_run
    tables = frames(run_dir)
    instances = tables["instances"]
    assert len(instances) == 2 * N_CHIPS * N_SAMPLES  # per chip refit: every sample runs
    assert set(instances["split"]) == {"train", "test"}
    test = instances[instances["split"] == "test"]
    for column, predicted in (("accuracy", "predicted"), ("accuracy_per_chip",
                                                          "predicted_per_chip")):  # fmt: skip
        by_hand = (test[predicted] == test["label"]).groupby([test["point"], test["chip"]]).mean()
        np.testing.assert_allclose(tables["chips"][column], by_hand.to_numpy(dtype=float))
    nominal = tables["nominal"].drop_duplicates(["point", "trial"])
    assert len(nominal) == 2 * N_SAMPLES  # ridge: the nominal instance runs every sample
    first = instances[(instances["point"] == 0) & (instances["chip"] == 0)]
    np.testing.assert_array_equal(first["label"], nominal.loc[nominal["point"] == 0, "label"])
    assert "test accuracy over chips (chance 0.250" in output
    assert (run_dir / "figures" / "accuracy.png").is_file()


def test_at_zero_mismatch_every_chip_scores_the_nominal_accuracy(cli_run) -> None:
    """At 0 % every chip is the nominal chip: the readout fitted on it transfers exactly,
    and a refit on the chip's own responses is the same fit."""
    run_dir, _ = cli_run
    tables = frames(run_dir)
    zero = tables["chips"][tables["chips"]["point"] == 0]
    nominal_accuracy = tables["summary"]["nominal_accuracy"][0]
    assert nominal_accuracy >= 0.8  # the task is learnable: mismatch has something to destroy
    assert (zero["accuracy"] == nominal_accuracy).all()
    assert (zero["accuracy_per_chip"] == nominal_accuracy).all()
    assert (tables["summary"]["nominal_accuracy"] == nominal_accuracy).all()


def test_resumed_and_sharded_runs_give_the_same_accuracies(
    tmp_path: Path, cli_run, monkeypatch, capsys
) -> None:
    """3 chunks of 2 chips; an interrupted run resumes with the stored readout, and two
    shards (separate folders, each fitting its own nominal readout) merged by collect give
    the unsharded tables."""
    complete = frames(cli_run[0])
    real, calls = experiment_run.simulate_chunk, []

    def interrupted(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment_run, "simulate_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(experiment_run, "simulate_chunk", real)
    assert sorted(p.name for p in (tmp_path / "resumed" / "chunks").glob("*.readout.npz")) == [
        "nominal-p00000.readout.npz", "nominal-p00001.readout.npz"]  # fmt: skip
    assert run(tmp_path / "resumed").simulated == 2 * 2 * N_SAMPLES
    for index in (0, 1):
        run(tmp_path / "sweep" / str(index), "shard.count=2", f"shard.index={index}")
    assert collect_main([str(tmp_path / "sweep"), "--no-figures", "--require-complete"]) == 0
    capsys.readouterr()
    for folder in (tmp_path / "resumed", tmp_path / "sweep"):
        tables = frames(folder)
        for name in ("instances", "chips", "nominal"):
            pd.testing.assert_frame_equal(tables[name], complete[name], check_exact=True)
        pd.testing.assert_frame_equal(tables["summary"], complete["summary"])


def test_a_dataset_file_with_a_vote_readout(tmp_path: Path) -> None:
    """kind=dataset from an .npz with its own split; a vote readout built from the config:
    chips and the nominal instance run the test samples only, and each prediction is the
    vote of the row's spike counts in neurons.parquet."""
    plan = prepare(config())
    dataset = plan.points[0].stimulus.dataset
    train = np.arange(N_SAMPLES) % 3 != 0
    path = tmp_path / "data.npz"
    np.savez(path, inputs=dataset.inputs.astype(np.int16), labels=dataset.labels, train=train)
    groups = [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    outcome = run(tmp_path / "run", "stimulus.kind=dataset", f"stimulus.file={path}",
                  "readout=vote", "readout.per_chip=false", f"readout.groups={groups}",
                  "output.neurons=true")  # fmt: skip
    instances = outcome.instances
    test_ids = np.flatnonzero(~train)
    assert (instances["split"] == "test").all()
    assert sorted(set(instances["trial"])) == test_ids.tolist()
    assert sorted(set(outcome.nominal["trial"])) == test_ids.tolist()
    neurons = pd.read_parquet(tmp_path / "run" / "neurons.parquet")
    counts = neurons["spike_count"].to_numpy().reshape(len(instances), -1)
    vote = VoteReadout.from_groups(groups, counts.shape[1])
    np.testing.assert_array_equal(instances["predicted"], vote.predict(counts.astype(float)))
    assert "accuracy_per_chip" not in outcome.chips
    np.testing.assert_array_equal(instances["label"], dataset.labels[instances["trial"]])


def test_finer_kernel_bins_for_the_readout_leave_the_metrics_unchanged(tmp_path: Path) -> None:
    """readout.bins=4 needs bins of 15 steps, metrics.bin_steps 10: the kernel bins 5
    steps and the population rate is summed back to bins of 10."""
    plan = prepare(config("readout.bins=4"))
    assert plan.bin_width(0) == 5
    assert chunk_footprint(plan, plan.chunks[0]).n_bins == 12
    coarse = run(tmp_path / "one", "sweep.axes.0.values=[0.3]", "readout.per_chip=false")
    fine = run(tmp_path / "four", "sweep.axes.0.values=[0.3]", "readout.per_chip=false",
               "readout.bins=4")  # fmt: skip
    for column in ("pop_rate_std_hz", "pop_rate_peak_hz", "mean_rate_hz"):
        np.testing.assert_array_equal(fine.instances[column], coarse.instances[column])
    assert not fine.instances["predicted"].equals(coarse.instances["predicted"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["readout=vote", "readout.per_chip=false", "readout.groups=[[0],[1],[2],[999]]"],
         r"readout.groups\[3\] holds neuron ids outside \[0, 128\)"),
        (["readout=vote", "readout.per_chip=false", "readout.groups=[[0],[1]]"],
         r"readout vote: 2 groups for a dataset of 4 classes"),
        (["readout.bins=7"], r"readout.bins=7 must divide the dataset's T=60 steps"),
        (["stimulus.patterns.n_channels=16"],
         r"stimulus.patterns.n_channels=16 must equal the network's 32 input channels"),
        (["stimulus.trials=2"], r"stimulus.trials=2 does not apply to stimulus.kind=patterns"),
        (["stimulus.kind=poisson"], r"readout needs labelled samples: stimulus.kind dataset"),
        (["readout=linear", "readout.per_chip=false"], r"readout.kind=linear needs readout.file"),
        (["readout=vote", "readout.per_chip=false"],
         r"readout.kind=vote needs exactly one of readout.groups"),
        (["readout=vote", "readout.groups=[[0],[1],[2],[3]]"],
         r"readout.per_chip refits a ridge readout; kind is 'vote'"),
    ],
)  # fmt: skip
def test_inconsistent_task_settings_are_refused_before_simulating(overrides, message) -> None:
    with pytest.raises(ExperimentError, match=message):
        prepare(config(*overrides))


def test_a_dataset_needs_a_readout() -> None:
    with pytest.raises(ExperimentError,
                       match=r"stimulus.kind=patterns gives labelled samples .* needs a readout "
                             r"block"):  # fmt: skip
        prepare(config("stimulus.kind=patterns", base=["network=ei_4core"]))


def test_bad_dataset_and_weight_files_are_refused(tmp_path: Path) -> None:
    inputs = np.zeros((8, 60, 5), np.int8)
    np.savez(tmp_path / "five.npz", inputs=inputs, labels=np.arange(8) % 2)
    with pytest.raises(ExperimentError, match=r"inputs must have shape \(S, T, C=32\)"):
        prepare(config("stimulus.kind=dataset", f"stimulus.file={tmp_path}/five.npz"))
    np.savez(tmp_path / "weights.npz", weights=np.zeros((100, 4)), bias=np.zeros(4))
    with pytest.raises(ExperimentError,
                       match=r"weights must be \(F=128 features \(N \* bins\), K=4 classes\), "
                             r"got \(100, 4\)"):  # fmt: skip
        prepare(config("readout=linear", "readout.per_chip=false",
                                  f"readout.file={tmp_path}/weights.npz"))


def test_the_cli_names_a_bad_readout_in_one_line(tmp_path: Path) -> None:
    done = main_in_process(*SMALL_TASK, "readout.bins=7", f"hydra.run.dir={tmp_path}",
                           cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: sweep point 0 {'network.percent_mismatch': 0.0}: readout.bins=7 must divide "
        "the dataset's T=60 steps into equal whole bins"
    ]
    assert not (tmp_path / "chunks").exists()


def test_no_readout_is_transferred_from_a_nominal_instance_non_finite_on_a_train_sample() -> None:
    """Its predictions are empty (so every chip's accuracy is NaN), and a chip refitted with
    a non-finite row gets no predictions while the other chips keep theirs."""
    labels = np.tile([0, 1], 6)
    train = np.arange(12) < 8
    task = PointTask(ReadoutConfig(alpha=1.0), labels, train, 2, 10, 10, None)
    rng = np.random.default_rng(0)
    row_features = rng.poisson(5.0, (24, 6)).astype(float) + labels[np.tile(np.arange(12), 2),
                                                                    None] * 4  # fmt: skip
    trials = np.tile(np.arange(12), 2)
    assert task.nominal_readout(row_features[:12], trials[:12], np.arange(12) == 1) is None
    readout = task.nominal_readout(row_features[:12], trials[:12], np.zeros(12, bool))
    assert readout is not None
    columns = predictions(task, None, row_features, trials, np.zeros(24, bool))
    assert columns["predicted"].isna().all()
    assert list(columns["split"][:12]) == ["train"] * 8 + ["test"] * 4
    nonfinite = np.arange(24) == 20  # chip 1's test row
    own = refitted_predictions(task, row_features, trials, nonfinite, 12)
    assert own[12:].isna().all() and not own[:12].isna().any()
    expected = refit_predictions(row_features[None, :12], labels, train, 1.0)[0]
    np.testing.assert_array_equal(own[:12].to_numpy(), expected)


def test_a_calibration_can_maximize_the_worst_chips_accuracy(tmp_path: Path) -> None:
    """objective=accuracy_q05: the run's objective is the 5 % quantile over the point's
    chips of chips.parquet's transferred accuracy; without a readout it is refused."""
    cfg = config("objective=accuracy_q05", "objective.point=1")
    outcome = experiment_run.run(prepare(cfg), tmp_path, progress=False)
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    accuracies = chips.loc[chips["point"] == 1, "accuracy"].to_numpy()
    assert accuracies.size == N_CHIPS and np.isfinite(accuracies).all()
    value = objective_value(outcome.chips, ObjectiveConfig(**cfg["objective"])).value
    assert value == pytest.approx(np.quantile(accuracies, 0.05), rel=1e-12)
    with pytest.raises(ExperimentError, match="accuracy needs a readout"):
        prepare(config("objective=accuracy_q05", base=["sweep.n_samples=2"]))
