"""The small studies the study and cli tests run, and how their tables are compared.

`STUDY`: 2 points (mismatch 0.1 and 0.3) x 6 chips x 2 trials = 24 rows of a 16-neuron
network over 100 steps, on the NumPy reference, in chunks of 8 rows (4 whole chips), run
through the API (`run_study`). `MULTIRUN_SMALL`: the same sweep in chunks of 4 rows (6
chunks: 2 for each of 3 shards), figures off, run through the command line.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
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
    "float_spec_file",
    "spec_file_config",
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


def float_spec_file(path: Path, seed: int, per_core: int, n_inputs: int, input_density: float,
                    recurrent_density: float) -> Path:  # fmt: skip
    """A two-core spec file with normal (float) weights: excitatory inputs around 1.5, mixed
    recurrent ones around 0, each connection present with the given density."""
    from runner.physics.specfile import save_spec_file

    rng = np.random.default_rng(seed)
    n = 2 * per_core
    shape_in = (n_inputs, n)
    return save_spec_file(
        path, n_cluster=2, core_map=np.repeat([0, 1], per_core),
        weights_in=rng.normal(1.5, 0.7, shape_in) * (rng.random(shape_in) < input_density),
        weights_rec=rng.normal(0.0, 0.5, (n, n)) * (rng.random((n, n)) < recurrent_density),
        percent_mismatch=0.2,
    )  # fmt: skip


def spec_file_config(spec_file: Path, n_steps: int, *extra: str) -> dict:
    """The shipped config on a spec-file network: reference backend, 2 chips, chunks of 2."""
    return compose_config(["backend=reference", "network=from_file", f"network.file={spec_file}",
                           f"stimulus.n_steps={n_steps}", "sweep.n_samples=2", "chunk_size=2",
                           "output.figures=false", *extra])  # fmt: skip


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
