"""`python -m runner [overrides]`: Hydra composes and checks the config, plain functions run it.

Exit status: 0 on success, 2 for a config or spec that cannot run (one line `error: ...` on
stderr, no simulation started: a misspelt group, option or key, a value Hydra cannot merge,
a spec or file that cannot be used, a backend that is not usable here, a run folder that is
read-only or in use by another invocation), 130 after Ctrl-C (finished chunks are kept;
rerun into the same `hydra.run.dir` to resume), 1 for any other failure (traceback in the
log). A refused or failed start leaves an existing run folder's description (`.hydra/`) as
it was. The status is the process's own (a SystemExit passes Hydra's job wrapper), so a
failed job of a submitit multirun ends non-zero and Slurm marks it FAILED.

A single run prints the summary table; a multirun job prints one status line instead (the
table is in every job's runner.log either way). A shard that holds no chunk succeeds.
With an `objective` set, `task` also prints and returns that number: Hydra's Optuna sweeper
(`hydra/sweeper=calibrate`) reads it as the trial's value.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.analysis.objective import (
    ObjectiveConfig,
    ObjectiveValue,
    check_direction,
    objective_value,
)
from runner.cli.overrides import OverrideError, check_overrides, one_line
from runner.cli.study_settings import check_extras, check_study_settings
from runner.report.finish import finish
from runner.study.outcome import Outcome
from runner.study.plan import ExperimentError, Plan
from runner.study.prepare import prepare
from runner.study.run import run
from runner.study.run_folder import RunFolderError, RunFolderNotWritable, probe_writable
from runner.study.schema import register_configs
from runner.util.paths import CONF_DIR

log = logging.getLogger("runner")
register_configs()


def describe_run(run_dir: Path, cfg: DictConfig) -> None:
    """`.hydra/config.yaml` and `overrides.yaml`: written by us, not by Hydra (whose
    `output_subdir` is null), so that only a run that claimed the folder rewrites them."""
    folder = run_dir / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / "config.yaml", resolve=True)
    OmegaConf.save(list(HydraConfig.get().overrides.task), folder / "overrides.yaml")


def _to_log_files(text: str, level: int = logging.INFO) -> None:
    """Write `text` to the run's log file(s) (runner.log) only: the terminal got it printed."""
    record = log.makeRecord(log.name, level, __file__, 0, "%s", (text,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _job_label() -> str | None:
    """'job <n> (<overrides>)' in a multirun, None in a single run."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task) or 'no overrides'})"


def _status_line(plan: Plan, outcome: Outcome, run_dir: Path, job: str | None) -> str:
    """One line: which shard, how many instances, how many non-finite, where."""
    head = f"{job}: {plan.shard_label}" if job else plan.shard_label
    if not plan.chunks:
        return f"{head} holds none of the sweep's {len(plan.sweep_chunks)} chunk(s): nothing to do"
    n_instances = sum(chunk.size for chunk in plan.chunks)
    n_nonfinite = int(outcome.instances["nonfinite"].sum())
    return (
        f"{head}, {n_instances} instances ({outcome.simulated} simulated now on "
        f"{outcome.backend} in {outcome.seconds:.1f} s, {n_instances - outcome.simulated} "
        f"from earlier chunks), {n_nonfinite} non-finite -> {run_dir}"
    )


def _check_study(objective: ObjectiveConfig | None) -> None:
    """An objective must be optimized in its own direction (ExperimentError otherwise)."""
    if objective is None:
        return
    try:
        check_direction(objective, HydraConfig.get().sweeper)
    except ValueError as error:
        raise ExperimentError(str(error)) from error


# Chip metrics measured against the nominal instance's rates: undefined when it is silent.
_AGAINST_NOMINAL = ("rate_rel_error", "rate_corr", "frac_within")


def _why_unmeasured(result: ObjectiveValue, objective: ObjectiveConfig, outcome: Outcome) -> str:
    """Why chips were left out of the objective: non-finite, or a NaN metric and its cause
    where the tables show one (a silent nominal instance, a silent chip)."""
    reasons = []
    if result.n_nonfinite:
        reasons.append(f"{result.n_nonfinite} non-finite (listed in summary.csv)")
    n_nan = result.n_excluded - result.n_nonfinite
    if n_nan:
        at_point = outcome.summary[outcome.summary["point"] == objective.point]
        silent = not at_point.empty and at_point["nominal_mean_rate_hz"].iloc[0] == 0
        cause = (f"the nominal instance of point {objective.point} is silent (0 Hz), and "
                 f"{objective.metric} compares a chip's rates with it"
                 if silent and objective.metric in _AGAINST_NOMINAL
                 else "e.g. a silent chip has no ISI or first-spike time")  # fmt: skip
        reasons.append(f"{n_nan} with a NaN {objective.metric} ({cause})")
    return "; ".join(reasons)


def _evaluate(objective: ObjectiveConfig | None, outcome: Outcome) -> ObjectiveValue | None:
    """The objective over the run's chips (chips.parquet), or None if unset."""
    if objective is None:
        return None
    result = objective_value(outcome.chips, objective)
    if result.n_excluded:
        log.warning("objective: %d of %d chips cannot be measured: %s", result.n_excluded,
                    result.n_chips, _why_unmeasured(result, objective, outcome))  # fmt: skip
    if math.isnan(result.value):
        log.warning("objective: no chip of point %d has a finite %s: the value is NaN, the "
                    "run returns %s (the worst value when you %s)", objective.point,
                    objective.metric, result.trial_value(),
                    objective.direction.value)  # fmt: skip
    return result


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def task(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        probe_writable(run_dir)  # before anything is logged to its runner.log
        plan = prepare(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
        objective = plan.objective
        _check_study(objective)
        outcome = run(plan, run_dir, on_claim=lambda: describe_run(run_dir, cfg))
        job = _job_label()
        if not plan.chunks:
            summary = _status_line(plan, outcome, run_dir, job)
        else:
            summary = finish(plan, outcome, run_dir, plan.config.output.figures)
        result = _evaluate(objective, outcome)
        scored = f"\n{result.describe()}" if result else ""
        _to_log_files(summary + scored)
        print((_status_line(plan, outcome, run_dir, job) if job else summary) + scored)
        return result.trial_value() if result else None
    except (ExperimentError, RunFolderError, OmegaConfBaseException) as error:
        message = one_line(error) if isinstance(error, OmegaConfBaseException) else str(error)
        new_folder = not any((run_dir / name).exists() for name in (".hydra", "chunks"))
        if new_folder and isinstance(error, ExperimentError):
            describe_run(run_dir, cfg)  # says which config failed (collect names the job)
        if not isinstance(error, RunFolderNotWritable):
            _to_log_files(message, logging.ERROR)  # the terminal gets it once, on stderr
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        resume = f"python -m runner <same overrides> hydra.run.dir={run_dir}"
        print(f"\ninterrupted: finished chunks are kept in {run_dir / 'chunks'}; resume with "
              f"`{resume}`", file=sys.stderr)  # fmt: skip
        sys.exit(130)
    except Exception:
        log.exception("the run failed; finished chunks are kept in %s", run_dir / "chunks")
        sys.exit(1)


def main() -> None:
    """`python -m runner [overrides]`: check the overrides' names, let Hydra compose the
    config and run `task`. A user error ends with one line on stderr and exit status 2."""
    traceback_wanted = os.environ.get("HYDRA_FULL_ERROR") == "1"
    if not sys.stderr.isatty():
        os.environ.setdefault("NO_COLOR", "1")  # colorlog (Optuna's log lines) honours it
    os.environ["HYDRA_FULL_ERROR"] = "1"  # composition errors reach us instead of Hydra's report
    try:
        check_overrides(sys.argv[1:], CONF_DIR)
        arguments, _ = get_args_parser().parse_known_args(sys.argv[1:])
        if arguments.multirun and arguments.config_dir is None:
            check_study_settings(arguments.overrides, CONF_DIR)
        else:
            check_extras(arguments.overrides)
        task()
    except (OverrideError, HydraException, OmegaConfBaseException) as error:
        if traceback_wanted:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
