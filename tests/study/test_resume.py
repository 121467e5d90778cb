"""Interrupted runs resume to identical tables; chunking and sharding do not change numbers.

The sweep (tests.helpers.studies.STUDY): 2 points x 6 chips x 2 trials = 24 rows, in chunks
of 8 rows (4 whole chips); `complete` holds its tables, run once for the session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment_run
import runner.study.simulate as simulate
from runner.study.run_folder import ExperimentMismatch
from tests.helpers.fixtures import copy_run
from tests.helpers.studies import interrupt_after, tables
from tests.helpers.studies import run_study as run


def test_interrupted_run_resumes_to_identical_tables(tmp_path: Path, complete, monkeypatch) -> None:
    interrupt_after(monkeypatch, experiment_run, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    assert len(list((tmp_path / "chunks").glob("*.instances.parquet"))) == 2
    assert not (tmp_path / "instances.parquet").exists()
    monkeypatch.undo()  # the real simulate_chunk again
    outcome = run(tmp_path)
    assert outcome.simulated == 8  # chunks of 8 | 8 | 8 rows: the first two were done
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, complete[name])


def test_lost_chunks_are_recomputed(tmp_path: Path, complete, complete_study: Path) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    for path in sorted((run_dir / "chunks").glob("*.parquet"))[:3]:
        path.unlink()
    (run_dir / "instances.parquet").unlink()
    run(run_dir)
    for name, table in tables(run_dir).items():
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


def test_a_folder_of_another_experiment_is_refused(tmp_path: Path, complete_study: Path) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    with pytest.raises(ExperimentMismatch, match=r"differs in seed: 0 in the folder, 1 now\)"):
        run(run_dir, "seed=1")


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
