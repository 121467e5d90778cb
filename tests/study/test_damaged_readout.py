"""A damaged fitted readout in the chunks folder (truncated, wrong shape, overwritten with
NaN) is rejected like a chunk file and fitted again: it used to crash every later resume,
or be used silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment
from runner.study.prepare import prepare
from runner.study.schema import register_configs
from tests.helpers.config import compose_config

register_configs()
TASK = [
    "task=patterns", "backend=reference", "sweep.n_samples=2", "chunk_size=80",
    "network.neurons_per_core=32", "network.generator.params.n_inputs=32",
    "stimulus.patterns.n_channels=32", "stimulus.patterns.n_classes=4",
    "stimulus.patterns.n_samples=40", "stimulus.patterns.n_steps=60",
    "stimulus.patterns.active_channels=8", "stimulus.patterns.rate_hz=60.0",
    "stimulus.patterns.jitter_steps=5", "readout.alpha=100.0", "output.figures=false",
    "readout.per_chip=false",
]  # fmt: skip


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def wrong_shape(path: Path) -> None:
    np.savez(path, weights=np.zeros(5), bias=np.zeros(4))


def overwritten_with_nan(path: Path) -> None:
    with np.load(path) as data:
        weights, bias = data["weights"], data["bias"]
    np.savez(path, weights=np.full_like(weights, np.nan), bias=np.full_like(bias, np.nan))


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("complete")
    experiment.run(prepare(compose_config(TASK)), folder, progress=False)
    return folder, pd.read_parquet(folder / "chips.parquet")


@pytest.mark.parametrize("damage", [truncate, wrong_shape, overwritten_with_nan])
def test_a_damaged_readout_is_rejected_and_fitted_again(complete, tmp_path: Path, damage) -> None:
    source, chips = complete
    folder = tmp_path / "run"
    (folder / "chunks").mkdir(parents=True)
    for path in (source / "chunks").iterdir():
        if path.is_file():
            (folder / "chunks" / path.name).write_bytes(path.read_bytes())
    readout = folder / "chunks" / "nominal-p00000.readout.npz"
    damage(readout)
    outcome = experiment.run(prepare(compose_config(TASK)), folder, progress=False)
    rejected = sorted(p.name for p in (folder / "chunks" / "rejected").iterdir())
    assert any(name.startswith("nominal-p00000.readout.npz") for name in rejected)
    assert np.isfinite(np.load(readout)["weights"]).all()  # fitted again
    pd.testing.assert_frame_equal(outcome.chips, chips)
