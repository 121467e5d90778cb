"""Synaptic mismatch in studies: `network.mismatch.weights=true` with
`network.quantize.n_bits` runs end to end (backend reference), draws each chip's base weights
as `net.parameters` does, resumes from its chunks, is part of the identity only when true,
and is refused in one line on float weights.

The network: a spec file of normal weights (2 cores of 8 neurons, 4 inputs), 2 chips, 60 steps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.study.run as experiment
from runner.study.identity import experiment_identity
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.run_folder import ExperimentMismatch
from runner.study.schema import register_configs
from tests.helpers.studies import float_spec_file, spec_file_config

register_configs()
SYNAPTIC = ("network.quantize.n_bits=4", "network.mismatch.weights=true")


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return float_spec_file(tmp_path_factory.mktemp("spec") / "net.npz", seed=5, per_core=8,
                           n_inputs=4, input_density=0.7, recurrent_density=0.3)  # fmt: skip


def config(spec_file: Path, *extra: str) -> dict:
    return spec_file_config(spec_file, 60, *extra)


@pytest.fixture(scope="module")
def synaptic_run(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("synaptic")
    experiment.run(prepare(config(spec_file, *SYNAPTIC)), run_dir, progress=False)
    return run_dir


def test_the_run_draws_each_chips_base_weights(spec_file: Path, synaptic_run: Path) -> None:
    plan = prepare(config(spec_file, *SYNAPTIC))
    net = plan.points[0].network
    assert net.spec.mismatch.weights and net.spec.quantization.n_bits == 4
    keys = plan.mismatch_keys(np.array([0]), np.array([1]))
    drawn = net.parameters(keys)
    assert {f"Iw_{k}" for k in range(4)} <= set(drawn)
    plain = prepare(config(spec_file, SYNAPTIC[0])).points[0].network.parameters(keys)
    for name, values in plain.items():  # the 24 neuron parameters of the chip are unchanged
        np.testing.assert_array_equal(drawn[name], values, err_msg=name)
    assert (synaptic_run / "summary.csv").exists()
    assert len(pd.read_parquet(synaptic_run / "chips.parquet")) == 2


def test_a_rerun_reuses_the_chunks_and_false_is_another_experiment(
    spec_file: Path, synaptic_run: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(synaptic_run, run_dir)
    outcome = experiment.run(prepare(config(spec_file, *SYNAPTIC)), run_dir, progress=False)
    assert outcome.simulated == 0
    with pytest.raises(ExperimentMismatch, match=r"network\.mismatch\.weights"):
        experiment.run(prepare(config(spec_file, SYNAPTIC[0])), run_dir, progress=False)


def test_the_key_counts_in_the_identity_only_when_true(spec_file: Path) -> None:
    def identity(*extra: str) -> dict:
        cfg = config(spec_file, *extra)
        return experiment_identity(cfg, prepare(cfg).points)

    assert "weights" not in identity()["network"]["mismatch"]
    assert identity(*SYNAPTIC)["network"]["mismatch"]["weights"] is True


def test_float_weights_are_refused_in_one_line(spec_file: Path) -> None:
    with pytest.raises(ExperimentError, match="mismatch_weights needs a quantized network"):
        prepare(config(spec_file, SYNAPTIC[1]))
