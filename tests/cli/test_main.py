"""`python -m runner` end to end in a temporary folder, checked against `net.simulate`: one
run in a process of its own; a rerun and refused configs through `main()` in this one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runner import dynapsim_net_from_spec
from runner.data.weights import feedforward
from tests.helpers.cli import main_in_process, run_cli

N_SAMPLES, N_STEPS, N_NEURONS, N_INPUTS, LEVELS = 5, 200, 32, 16, (0.0, 0.3)
SMALL = [
    "backend=reference", "sweep=mismatch_robustness", f"sweep.n_samples={N_SAMPLES}",
    f"sweep.axes.0.values=[{LEVELS[0]},{LEVELS[1]}]", f"network.neurons_per_core={N_NEURONS}",
    f"network.generator.params.n_inputs={N_INPUTS}", f"stimulus.n_steps={N_STEPS}", "chunk_size=3",
]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("cli")
    result = run_cli(*SMALL, "hydra.run.dir=run", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "run", result


def test_run_folder_layout(finished_run) -> None:
    run_dir, result = finished_run
    for name in ("instances.parquet", "neurons.parquet", "nominal.parquet", "summary.csv",
                 ".hydra/config.yaml", "figures/rates.png", "figures/robustness.png",
                 "figures/raster.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert "network.percent_mismatch" in result.stdout and "rel. error" in result.stdout


def test_tables_match_a_direct_simulation(finished_run) -> None:
    run_dir, _ = finished_run
    instances = pd.read_parquet(run_dir / "instances.parquet")
    neurons = pd.read_parquet(run_dir / "neurons.parquet")
    nominal = pd.read_parquet(run_dir / "nominal.parquet")
    assert list(instances["instance"]) == list(range(len(LEVELS) * N_SAMPLES))
    assert "sample" not in instances.columns
    assert {"point", "chip", "trial", "seed", "network.percent_mismatch", "mean_rate_hz",
            "rate_rel_error", "rate_corr", "frac_within", "n_silent", "n_saturated", "nonfinite",
            "nonphysical"} <= set(instances.columns)  # fmt: skip
    core_map = np.zeros(N_NEURONS, dtype=int)
    weights = feedforward(core_map, n_inputs=N_INPUTS, fan_in=6, weight=1, seed=0)["weights_in"]
    x = np.random.Generator(np.random.Philox(key=0)).poisson(10.0 * 1e-3, (N_STEPS, N_INPUTS))
    for point, level in enumerate(LEVELS):
        net = dynapsim_net_from_spec(
            1, core_map, weights_in=weights, percent_mismatch=level, seed=0
        )
        # paired chips (the default): chip c is mismatch instance c at every point
        direct = net.simulate(x, N_SAMPLES, backend="reference", first_instance=0)
        rows = neurons[neurons["point"] == point].sort_values(["instance", "neuron"])
        np.testing.assert_array_equal(rows["spike_count"].to_numpy().reshape(N_SAMPLES, N_NEURONS),
                                      direct.spike_counts)  # fmt: skip
        mine = instances[instances["point"] == point]
        np.testing.assert_allclose(
            mine["mean_rate_hz"], direct.spike_counts.mean(axis=1) / (N_STEPS * 1e-3)
        )
        assert (mine["network.percent_mismatch"] == level).all()
        nominal_counts = nominal.loc[nominal["point"] == point, "spike_count"].to_numpy()
        zero = dynapsim_net_from_spec(1, core_map, weights_in=weights, percent_mismatch=0.0)
        np.testing.assert_array_equal(
            nominal_counts, zero.simulate(x, 1, backend="reference").spike_counts[0]
        )
    at_zero = instances[instances["network.percent_mismatch"] == 0.0]
    assert (at_zero["rate_rel_error"] == 0).all() and (at_zero["frac_within"] == 1).all()


def test_summary_has_statistics_per_point(finished_run) -> None:
    summary = pd.read_csv(finished_run[0] / "summary.csv")
    assert len(summary) == len(LEVELS)
    expected = {"n_instances", "n_nonfinite", "mean_rate_hz.mean", "mean_rate_hz.std",
                "rate_rel_error.q05", "rate_rel_error.q95", "nominal_mean_rate_hz"}  # fmt: skip
    assert expected <= set(summary.columns)
    assert (summary["n_chips"] == N_SAMPLES).all() and (summary["n_trials"] == 1).all()
    assert summary["rate_rel_error.mean"].iloc[1] > summary["rate_rel_error.mean"].iloc[0] == 0


def test_rerun_into_the_same_folder_resumes(finished_run) -> None:
    run_dir, _ = finished_run
    before = pd.read_parquet(run_dir / "instances.parquet")
    result = main_in_process(*SMALL, "hydra.run.dir=run", cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr
    assert "all from chunks already in the folder" in result.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "instances.parquet"), before)


@pytest.mark.parametrize(
    "override,code,message",
    [
        ("network.n_neuron=3", 2, "network.n_neuron"),
        ("sweep.n_samples=lots", 2, "n_samples"),
        ("network.currents.Itau_mem=[1e-12,2e-12]", 2, "Itau_mem must have n_cluster=1"),
        ("seed=-1", 2, "seed must be an int in [0, 2**64)"),
    ],
)
def test_bad_configs_exit_non_zero_with_the_reason(
    tmp_path: Path, override: str, code: int, message: str
) -> None:
    result = main_in_process("backend=reference", override, "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    assert not (tmp_path / "run" / "chunks").exists()  # nothing started
