"""Calibration: the objective a run returns (statistics over chips, by hand), its checks, and
a real 3-trial study through Hydra's Optuna sweeper whose best value is recomputed from the
best trial's own tables."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from runner.analysis.chip_statistics import SUMMARY_METRICS, summarize
from runner.analysis.objective import (
    ObjectiveConfig,
    check_direction,
    check_objective,
    objective_value,
)
from runner.analysis.readout import ReadoutConfig
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.util.paths import CONF_DIR
from tests.helpers import compose_config, requires_optuna_sweeper, run_cli

ROOT = Path(__file__).resolve().parent.parent


def objective(statistic: str, metric: str = "frac_within", threshold: float | None = None,
              point: int = 0, direction: str = "maximize") -> ObjectiveConfig:  # fmt: skip
    return ObjectiveConfig(metric=metric, statistic=statistic, threshold=threshold, point=point,
                           direction=direction)  # fmt: skip


# Point 0: five chips, one non-finite (its 0.1 must not count) and one with a NaN metric;
# the three measured ones hold 0.5, 0.9, 0.95. Point 1 holds values that must never count.
CHIPS = pd.DataFrame({
    "point": [0, 0, 0, 0, 0, 1, 1],
    "nonfinite": [False, True, False, False, False, False, False],
    "frac_within": [0.9, 0.1, 0.5, np.nan, 0.95, 0.0, 0.0],
})  # fmt: skip


@pytest.mark.parametrize(
    "statistic,threshold,expected",
    [
        ("mean", None, (0.9 + 0.5 + 0.95) / 3),
        ("median", None, 0.9),
        ("min", None, 0.5),
        ("max", None, 0.95),
        ("q50", None, 0.9),
        ("q25", None, 0.5 + 0.5 * (0.9 - 0.5)),  # linear: position 0.5 between 0.5 and 0.9
        ("q00", None, 0.5),
        ("frac_at_least", 0.9, 2 / 5),  # the two unmeasured chips count as missing it
        ("frac_at_most", 0.9, 2 / 5),
        ("frac_at_most", 0.4, 0 / 5),
    ],
)
def test_statistics_over_the_measured_chips_of_the_point(
    statistic: str, threshold: float | None, expected: float
) -> None:
    result = objective_value(CHIPS, objective(statistic, threshold=threshold))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert (result.n_chips, result.n_excluded) == (5, 2)
    assert result.trial_value() == result.value


def test_no_measurable_chip_gives_nan_and_the_worst_trial_value() -> None:
    chips = CHIPS.assign(nonfinite=True)
    maximized = objective_value(chips, objective("q05"))
    assert math.isnan(maximized.value) and maximized.trial_value() == -math.inf
    minimized = objective_value(chips, objective("mean", direction="minimize"))
    assert minimized.trial_value() == math.inf
    assert objective_value(chips, objective("frac_at_least", threshold=0.5)).value == 0.0


def test_quantiles_are_those_of_the_summary_table() -> None:
    """qNN over chips is summary.csv's `<metric>.qNN` (both leave non-finite chips out)."""
    rng = np.random.default_rng(3)
    chips = pd.DataFrame({"instance": np.arange(40), "point": np.repeat([0, 1], 20),
                          "chip": np.tile(np.arange(20), 2), "n_trials": 1,
                          "nonfinite": rng.random(40) < 0.2, "nonphysical": 0})  # fmt: skip
    for metric in SUMMARY_METRICS:
        chips[metric] = rng.normal(size=40)
    summary = summarize(chips, chips, [], pd.DataFrame(), 0, True).set_index("point")
    for point in (0, 1):
        for metric, q in (("frac_within", "q05"), ("rate_rel_error", "q95"), ("rate_corr", "q50")):
            result = objective_value(chips, objective(q, metric=metric, point=point))
            assert result.value == pytest.approx(summary.loc[point, f"{metric}.{q}"], rel=1e-12)


@pytest.mark.parametrize(
    "changes,message",
    [
        (
            {"metric": "accuracy_typo"},
            "objective.metric: unknown per-chip metric 'accuracy_typo'; one of mean_rate_hz",
        ),
        ({"metric": "accuracy"}, r"objective.metric: accuracy needs a readout \(e.g. task="),
        ({"statistic": "q5"}, "objective.statistic: unknown statistic 'q5'; one of mean, median"),
        ({"statistic": "q100"}, "unknown statistic 'q100'"),
        ({"statistic": "qNN"}, "unknown statistic 'qNN'"),
        ({"statistic": "frac_at_least"}, "objective.threshold: frac_at_least needs a finite"),
        ({"statistic": "frac_at_most", "threshold": float("nan")}, "needs a finite threshold"),
        ({"threshold": 0.5}, "objective.threshold: only frac_at_least and frac_at_most"),
        ({"point": 2}, r"objective.point must be a sweep point index in \[0, 2\), got 2"),
        ({"point": -1}, "got -1"),
    ],
)
def test_bad_objectives_name_the_field_and_the_valid_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_objective(dataclasses.replace(objective("q05"), **changes), n_points=2,
                        shard_count=1, readout=None)  # fmt: skip


def test_an_accuracy_objective_needs_the_readout_that_gives_it() -> None:
    """accuracy needs a readout, accuracy_per_chip a per-chip refit; then both are valid."""
    accuracy = objective("q05", metric="accuracy")
    per_chip = objective("q05", metric="accuracy_per_chip")
    check_objective(accuracy, n_points=1, shard_count=1, readout=ReadoutConfig(per_chip=False))
    check_objective(per_chip, n_points=1, shard_count=1, readout=ReadoutConfig(per_chip=True))
    with pytest.raises(ValueError, match="accuracy_per_chip needs readout.per_chip=true"):
        check_objective(per_chip, n_points=1, shard_count=1, readout=ReadoutConfig())


def test_an_objective_needs_every_chip_in_one_run() -> None:
    with pytest.raises(ValueError, match="shard.count=1"):
        check_objective(objective("q05"), n_points=1, shard_count=2, readout=None)


def test_objectives_are_checked_by_prepare_before_any_work() -> None:
    config = compose_config(["objective=rate_error_q95", "objective.point=1", "sweep.n_samples=2"])
    with pytest.raises(ExperimentError, match="objective.point must be a sweep point index"):
        prepare(config)
    assert compose_config([])["objective"]["metric"] is None  # no objective by default


def test_the_sweeper_direction_must_be_the_objectives() -> None:
    check_direction(objective("q05"), {"direction": "maximize"})
    check_direction(objective("q05"), {})  # Hydra's basic sweeper has none
    with pytest.raises(ValueError, match="set hydra.sweeper.direction=maximize"):
        check_direction(objective("q05"), {"direction": "minimize"})

    class Direction:  # the Optuna sweeper's default is an Enum member
        name = "minimize"

    with pytest.raises(ValueError, match="hydra.sweeper.direction is minimize"):
        check_direction(objective("q05"), {"direction": Direction()})


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
    result = run_cli(
        tmp_path,
        "-m",
        "hydra/sweeper=calibrate",
        "hydra.sweeper.n_trials=3",
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage={storage}",
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
    result = run_cli(
        tmp_path,
        "-m",
        "hydra/sweeper=calibrate",
        "hydra.sweeper.n_trials=3",
        "objective=frac_within_q05",
        *TINY,
        "hydra.sweep.dir=study",
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
