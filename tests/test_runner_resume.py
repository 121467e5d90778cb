"""Interrupted runs resume to identical tables; chunking and sharding do not change numbers.

The sweep: 2 points x 6 chips x 2 trials = 24 rows, in chunks of 8 rows (4 whole chips).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment_run
import runner.study.simulate as simulate
from runner.study.outcome import Outcome
from runner.study.prepare import prepare
from runner.study.run_folder import ExperimentMismatch
from runner.study.schema import register_configs
from tests.helpers import compose_config

register_configs()
SMALL = [
    "backend=reference", "sweep=mismatch_robustness", "sweep.n_samples=6",
    "sweep.axes.0.values=[0.1,0.3]", "network.neurons_per_core=16",
    "network.generator.params.n_inputs=8", "stimulus.n_steps=100", "chunk_size=8",
    "stimulus=poisson_trials", "stimulus.trials=2",
]  # fmt: skip


def config(*extra: str) -> dict:
    return compose_config([*SMALL, *extra])


def run(run_dir: Path, *extra: str) -> Outcome:
    return experiment_run.run(prepare(config(*extra)), run_dir, progress=False)


def tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in ("instances", "neurons")}


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    run_dir = tmp_path_factory.mktemp("complete")
    run(run_dir)
    return tables(run_dir)


def test_interrupted_run_resumes_to_identical_tables(tmp_path: Path, complete, monkeypatch) -> None:
    real = experiment_run.simulate_chunk
    calls = []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment_run, "simulate_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    assert len(list((tmp_path / "chunks").glob("*.instances.parquet"))) == 2
    assert not (tmp_path / "instances.parquet").exists()
    monkeypatch.setattr(experiment_run, "simulate_chunk", real)
    outcome = run(tmp_path)
    assert outcome.simulated == 8  # chunks of 8 | 8 | 8 rows: the first two were done
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, complete[name])


def test_lost_chunks_are_recomputed(tmp_path: Path, complete) -> None:
    run(tmp_path)
    for path in sorted((tmp_path / "chunks").glob("*.parquet"))[:3]:
        path.unlink()
    (tmp_path / "instances.parquet").unlink()
    run(tmp_path)
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, complete[name])


@pytest.mark.parametrize("chunk_size", [1, 5, 1000])
def test_chunk_size_does_not_change_the_numbers(tmp_path: Path, complete, chunk_size) -> None:
    """1: one chip (both its trials) per chunk; 5: 2 chips; 1000: the whole sweep."""
    run(tmp_path, f"chunk_size={chunk_size}")
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, complete[name])


def test_shards_together_equal_the_unsharded_run(tmp_path: Path, complete) -> None:
    parts = []
    for index in range(3):
        run(tmp_path / str(index), "shard.count=3", f"shard.index={index}")
        parts.append(tables(tmp_path / str(index))["instances"])
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), complete["instances"])


def test_a_folder_of_another_experiment_is_refused(tmp_path: Path) -> None:
    run(tmp_path)
    with pytest.raises(ExperimentMismatch, match=r"differs in seed: 0 in the folder, 1 now\)"):
        run(tmp_path, "seed=1")


def test_a_sweep_packs_into_one_backend_call_per_chunk(
    tmp_path: Path, complete, monkeypatch
) -> None:
    """24 rows in one chunk: one call for both nominals (2 trials each), one for the chunk,
    whose input is one stream per (point, trial), not one per row."""
    batches = []
    real = simulate.get_backend

    def counting(name: str):
        run_batch = real(name)

        def wrapped(batch):
            batches.append(batch)
            return run_batch(batch)

        return wrapped

    monkeypatch.setattr(simulate, "get_backend", counting)
    run(tmp_path, "chunk_size=24")
    assert [len(b.variants) for b in batches] == [2, 2]
    assert [b.n_instances for b in batches] == [4, 24]
    assert [b.inputs.step_ptr.shape[0] for b in batches] == [4, 4]
    # row (point, chip, trial) reads stream (point, trial) and is keyed by its chip
    rows = np.arange(24)
    np.testing.assert_array_equal(batches[1].inputs.instance_stream, rows // 12 * 2 + rows % 2)
    np.testing.assert_array_equal(batches[1].instances, rows // 2 % 6)
    # packing changes nothing in the numbers
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, complete[name])
