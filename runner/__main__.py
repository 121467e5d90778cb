"""`python -m runner [overrides]`: Hydra composes and checks the config, plain functions run it.

Exit status: 0 on success, 2 for a config or spec that cannot run (message on stderr, no
simulation started), 130 after Ctrl-C (finished chunks are kept; rerun into the same
`hydra.run.dir` to resume), 1 for any other failure (traceback in the log). The status is
the process's own (a SystemExit passes Hydra's job wrapper), so a failed job of a submitit
multirun ends non-zero and Slurm marks it FAILED.

A single run prints the summary table; a multirun job prints one status line instead (the
table is in every job's runner.log either way). A shard that holds no chunk succeeds.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .config import register_configs
from .experiment import ExperimentError, Outcome, Plan, prepare, run
from .plots import write_figures
from .summary import render_summary
from .tables import ExperimentMismatch

log = logging.getLogger("runner")
register_configs()


def _to_log_files(text: str) -> None:
    """Write `text` to the run's log file(s) (runner.log) only: the terminal got it printed."""
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, "%s", (text,), None)
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    try:
        plan = prepare(config)
        outcome = run(plan, run_dir)
        job = _job_label()
        if not plan.chunks:
            summary = _status_line(plan, outcome, run_dir, job)
        else:
            if config["output"]["figures"]:
                write_figures(plan, outcome, run_dir)
            summary = render_summary(plan, outcome, run_dir)
        _to_log_files(summary)
        print(_status_line(plan, outcome, run_dir, job) if job else summary)
    except (ExperimentError, ExperimentMismatch) as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        resume = f"python -m runner <same overrides> hydra.run.dir={run_dir}"
        print(f"\ninterrupted: finished chunks are kept in {run_dir / 'chunks'}; resume with "
              f"`{resume}`", file=sys.stderr)  # fmt: skip
        sys.exit(130)
    except Exception:
        log.exception("the run failed; finished chunks are kept in %s", run_dir / "chunks")
        sys.exit(1)


if __name__ == "__main__":
    main()
