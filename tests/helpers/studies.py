"""The small studies the study and cli tests run, and how their tables are compared.

`STUDY`: 2 points (mismatch 0.1 and 0.3) x 6 chips x 2 trials = 24 rows of a 16-neuron
network over 100 steps, on the NumPy reference, in chunks of 8 rows (4 whole chips), run
through the API (`run_study`). `MULTIRUN_SMALL`: the same sweep in chunks of 4 rows (6
chunks: 2 for each of 3 shards), figures off, run through the command line.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from runner.study.outcome import Outcome
from runner.study.prepare import prepare
from runner.study.run import run
from tests.helpers.config import compose_config

__all__ = [
    "STUDY",
    "study_config",
    "run_study",
    "tables",
    "task_tables",
    "MULTIRUN_BASE",
    "MULTIRUN_SMALL",
    "MULTIRUN_TABLES",
    "assert_same_tables",
    "chunk_instances",
    "interrupt_after",
]

STUDY = [
    "backend=reference", "sweep=mismatch_robustness", "sweep.n_samples=6",
    "sweep.axes.0.values=[0.1,0.3]", "network.neurons_per_core=16",
    "network.generator.params.n_inputs=8", "stimulus.n_steps=100", "chunk_size=8",
    "stimulus=poisson_trials", "stimulus.trials=2",
]  # fmt: skip


def study_config(*extra: str) -> dict:
    """The small study's config with `extra` overrides."""
    return compose_config([*STUDY, *extra])


def run_study(run_dir: Path, *extra: str) -> Outcome:
    """The small study (with `extra` overrides) run into `run_dir`, without progress."""
    return run(prepare(study_config(*extra)), run_dir, progress=False)


def tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    """A run folder's instances and neurons tables."""
    return {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in ("instances", "neurons")}


def task_tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    """A task run folder's instances, chips and nominal tables and its summary."""
    found = {name: pd.read_parquet(run_dir / f"{name}.parquet")
             for name in ("instances", "chips", "nominal")}  # fmt: skip
    found["summary"] = pd.read_csv(run_dir / "summary.csv")
    return found


# A tiny two-point sweep: 2 points x 6 chips x 2 trials = 24 rows in chunks of 4 (2 chips:
# 6 chunks, so each of 3 shards holds 2 chunks). Figures off: collect's figures are not what
# is checked.
MULTIRUN_BASE = [
    "backend=reference", "network.neurons_per_core=16", "network.generator.params.n_inputs=8",
    "stimulus.n_steps=100", "stimulus=poisson_trials", "stimulus.trials=2", "chunk_size=4",
    "output.figures=false",
]  # fmt: skip
MULTIRUN_SWEEP = ["sweep=mismatch_robustness", "sweep.n_samples=6", "sweep.axes.0.values=[0.1,0.3]"]
MULTIRUN_SMALL = [*MULTIRUN_BASE, *MULTIRUN_SWEEP]
MULTIRUN_TABLES = ("instances.parquet", "chips.parquet", "neurons.parquet", "nominal.parquet")


def assert_same_tables(merged_dir: Path, reference_dir: Path, summary: bool = True) -> None:
    """The merged tables of a sweep equal those of one unsharded run."""
    for name in MULTIRUN_TABLES:
        pd.testing.assert_frame_equal(
            pd.read_parquet(merged_dir / name), pd.read_parquet(reference_dir / name), obj=name
        )
    if summary:
        pd.testing.assert_frame_equal(
            pd.read_csv(merged_dir / "summary.csv"), pd.read_csv(reference_dir / "summary.csv")
        )


def chunk_instances(job_dir: Path) -> set[int]:
    """Instance ids in a job folder's finished chunk files."""
    return {
        int(i)
        for path in (job_dir / "chunks").glob("*.instances.parquet")
        for i in pd.read_parquet(path)["instance"]
    }


def interrupt_after(monkeypatch: pytest.MonkeyPatch, run_module: ModuleType, chunks: int) -> None:
    """Ctrl-C in the run: `run_module.simulate_chunk` raises KeyboardInterrupt once `chunks`
    chunks are simulated (the finished ones are written, the rest are not)."""
    real, calls = run_module.simulate_chunk, []

    def interrupted(*args, **kwargs):
        if len(calls) == chunks:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "simulate_chunk", interrupted)
