"""Calibration through the command line: objectives checked before any work, a real 3-trial
study through Hydra's Optuna sweeper whose best value is recomputed from the best trial's
own tables, and every shipped search space at its corners. The statistics of the objective
itself are tests/analysis/test_objective.py's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.util.paths import CONF_DIR
from tests.helpers.cli import main_in_process
from tests.helpers.config import compose_config
from tests.helpers.markers import requires_optuna_sweeper


def test_objectives_are_checked_by_prepare_before_any_work() -> None:
    config = compose_config(["objective=rate_error_q95", "objective.point=1", "sweep.n_samples=2"])
    with pytest.raises(ExperimentError, match="objective.point must be a sweep point index"):
        prepare(config)
    assert compose_config([])["objective"]["metric"] is None  # no objective by default


# The study: a tiny network (16 neurons, 8 inputs), 6 chips, 0.1 s, the NumPy reference.
TINY = [
    "backend=reference", "network.neurons_per_core=16", "network.generator.params.n_inputs=8",
    "stimulus.n_steps=100", "sweep.n_samples=6", "output.figures=false",
]  # fmt: skip


def _job_params(job: Path) -> dict[str, str]:
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    return dict(override.split("=", 1) for override in overrides)


def _recomputed(job: Path) -> float:
    """The default objective (q95 over chips of rate_rel_error) from a job's own table."""
    chips = pd.read_parquet(job / "chips.parquet")
    errors = chips.loc[~chips["nonfinite"], "rate_rel_error"].to_numpy()
    errors = errors[np.isfinite(errors)]
    return float(np.quantile(errors, 0.95)) if errors.size else math.inf


@requires_optuna_sweeper
def test_a_three_trial_study_through_the_optuna_sweeper(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "study"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = main_in_process(
        "-m",
        "hydra/sweeper=calibrate",
        "hydra.sweeper.n_trials=3",
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage={storage}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    assert [job.name for job in jobs] == ["0", "1", "2"]
    values = [_recomputed(job) for job in jobs]
    assert len(set(values)) == 3  # three different biases measured

    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert math.isfinite(best["best_value"])
    assert best["best_value"] == pytest.approx(min(values), rel=1e-12)  # direction: minimize
    best_job = jobs[values.index(min(values))]
    params = _job_params(best_job)
    assert set(best["best_params"]) == {
        "network.currents.Iref", "network.currents.Itau_mem",
        "network.currents.Igain_syn", "network.currents.Itau_syn",
    }  # fmt: skip
    for key, value in best["best_params"].items():
        assert float(params[key]) == pytest.approx(value, rel=1e-12), key
    assert params["objective"] == "rate_error_q95"

    # The stored study (the sqlite storage the extra's pins keep working): each trial's
    # value is its own job's objective.
    import optuna

    study = optuna.load_study(study_name="calibrate", storage=storage)
    assert [trial.number for trial in study.trials] == [0, 1, 2]
    assert [trial.value for trial in study.trials] == pytest.approx(values, rel=1e-12)


@requires_optuna_sweeper
def test_a_study_in_the_wrong_direction_is_refused_before_any_work(tmp_path: Path) -> None:
    result = main_in_process(
        "-m",
        "hydra/sweeper=calibrate",
        "hydra.sweeper.n_trials=3",
        "objective=frac_within_q05",
        *TINY,
        "hydra.sweep.dir=study",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: objective.direction is maximize but hydra.sweeper.direction is minimize: set "
        "hydra.sweeper.direction=maximize (or choose another objective)"
    )
    assert not (tmp_path / "study" / "0" / "chunks").exists()


SPACES = sorted(path.stem for path in (CONF_DIR / "hydra" / "sweeper" / "space").glob("*.yaml"))


@requires_optuna_sweeper
@pytest.mark.parametrize("space", SPACES)
def test_every_search_space_prepares_at_its_corners(space: str) -> None:
    """Each shipped search space addresses fields that exist: its fixed overrides and its
    dimensions at their lower and upper bounds give a config that composes and prepares."""
    study = ["hydra/sweeper=calibrate", f"hydra/sweeper/space={space}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=study, return_hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    parsed = OverridesParser.create().parse_overrides(params)
    dimensions = [o for o in parsed if o.is_sweep_override()]
    assert dimensions and all("log" in o.value().tags for o in dimensions)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    for corner in ("start", "end"):
        at_corner = [f"{o.key_or_group}={getattr(o.value(), corner)}" for o in dimensions]
        plan = prepare(compose_config([*fixed, *at_corner, "sweep.n_samples=1"]))
        assert plan.config.objective.metric is not None
