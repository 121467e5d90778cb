"""Interrupted runs resume to identical tables; chunking and sharding do not change numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import runner.experiment as experiment
import runner.simulate as simulate
from runner.config import register_configs
from runner.netconfig import CONF_DIR
from runner.tables import ExperimentMismatch

register_configs()
SMALL = [
    "backend=reference", "sweep=mismatch_robustness", "sweep.n_samples=6",
    "sweep.axes.0.values=[0.1,0.3]", "network.neurons_per_core=16",
    "network.generator.params.n_inputs=8", "stimulus.n_steps=100", "chunk_size=4",
    "stimulus=poisson_trials",
]  # fmt: skip


def config(*extra: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*SMALL, *extra])
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def run(run_dir: Path, *extra: str) -> experiment.Outcome:
    return experiment.run(experiment.prepare(config(*extra)), run_dir, progress=False)


def tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in ("instances", "neurons")}


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    run_dir = tmp_path_factory.mktemp("complete")
    run(run_dir)
    return tables(run_dir)


def test_interrupted_run_resumes_to_identical_tables(tmp_path: Path, complete, monkeypatch) -> None:
    real = experiment.simulate_chunk
    calls = []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "simulate_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    assert len(list((tmp_path / "chunks").glob("*.instances.parquet"))) == 2
    assert not (tmp_path / "instances.parquet").exists()
    monkeypatch.setattr(experiment, "simulate_chunk", real)
    outcome = run(tmp_path)
    assert outcome.simulated == 4  # chunks of 4 | 4 | 4 instances: the first two were done
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


def test_chunk_size_does_not_change_the_numbers(tmp_path: Path, complete) -> None:
    run(tmp_path, "chunk_size=5")
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
    """2 points x 6 samples in chunks of 12: one call for all nominals, one for the chunk."""
    batches = []
    real = simulate.get_backend

    def counting(name: str):
        run_batch = real(name)

        def wrapped(batch):
            batches.append(batch)
            return run_batch(batch)

        return wrapped

    monkeypatch.setattr(simulate, "get_backend", counting)
    run(tmp_path, "chunk_size=12")
    assert [len(b.variants) for b in batches] == [2, 2]
    assert [b.n_instances for b in batches] == [2, 12]
    # packing changes nothing in the numbers
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, complete[name])
