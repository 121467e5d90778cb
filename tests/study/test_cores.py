"""cores.parquet: each chip's metrics over each core's neurons, recomputed here from
neurons.parquet and nominal.parquet; chunks written before core rows existed run again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment
from runner.analysis.instance_metrics import robustness_metrics
from runner.study.prepare import prepare
from runner.study.schema import register_configs
from tests.helpers.config import compose_config

register_configs()
TWO_CORES = ["backend=reference", "network.n_cluster=2", "network.neurons_per_core=8",
             "network.generator.params.n_inputs=8", "stimulus.n_steps=200", "stimulus.trials=2",
             "sweep.n_samples=3", "network.percent_mismatch=0.3",
             "network.currents.Itau_mem=[2e-12,4e-12]", "output.figures=false"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cores")
    experiment.run(prepare(compose_config(TWO_CORES)), folder, progress=False)
    return folder


def test_each_cores_metrics_by_hand(run_dir: Path) -> None:
    cores = pd.read_parquet(run_dir / "cores.parquet")
    neurons = pd.read_parquet(run_dir / "neurons.parquet")
    nominal = pd.read_parquet(run_dir / "nominal.parquet")
    assert len(cores) == 3 * 2 and set(cores["core"]) == {0, 1}
    for (chip, core), rows in neurons.groupby(["chip", "core"]):
        per_trial = []
        for trial, mine in rows.groupby("trial"):
            rates = mine["rate_hz"].to_numpy(np.float64)[None]
            reference = nominal[(nominal["trial"] == trial) & (nominal["core"] == core)]
            metrics = robustness_metrics(rates, reference["rate_hz"].to_numpy(np.float64), 0.2,
                                         duration=0.2)  # fmt: skip
            per_trial.append({"mean_rate_hz": rates.mean(), "rate_std_hz": rates.std(),
                              **{k: v[0] for k, v in metrics.items()}})  # fmt: skip
        expected = pd.DataFrame(per_trial).mean()
        row = cores[(cores["chip"] == chip) & (cores["core"] == core)].iloc[0]
        for metric, value in expected.items():
            assert row[metric] == pytest.approx(value, rel=1e-5, nan_ok=True), metric
    # the two cores' biases differ: so do their rates
    by_core = cores.groupby("core")["mean_rate_hz"].mean()
    assert by_core[0] != pytest.approx(by_core[1], rel=1e-3)


def test_a_chunk_without_its_core_rows_runs_again(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    (folder / "chunks").mkdir(parents=True)
    for path in (run_dir / "chunks").iterdir():
        if path.is_file() and not path.name.endswith(".cores.parquet"):
            (folder / "chunks" / path.name).write_bytes(path.read_bytes())
    outcome = experiment.run(prepare(compose_config(TWO_CORES)), folder, progress=False)
    assert outcome.simulated == 3 * 2  # every row again: its core rows were missing
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "cores.parquet"),
                                  pd.read_parquet(run_dir / "cores.parquet"))  # fmt: skip
