"""`python -m runner.collect <multirun dir>`: merge the jobs of a (sharded) multirun.

Every job folder of a Hydra multirun holds its finished chunks (`chunks/*.parquet`). This
merges them, per experiment, into one `instances.parquet`, `nominal.parquet`,
`neurons.parquet` (when the jobs wrote them), `summary.csv` and `figures/`: at the multirun
folder's root when all jobs ran one experiment (e.g. the shards of one sweep), else in
`collect/<label>/` per experiment. It works on a partial sweep (a missing, failed or
running shard only leaves its chunks out, and is named in the report), reads only what the
jobs wrote, and gives the same files however often it runs.

Exit status: 0 (also for a partial sweep), 1 with --require-complete when something is
missing, 2 when the folder holds no job of this runner.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from .experiment import ExperimentError, Outcome, Plan, experiment_identity, prepare
from .plots import write_figures
from .summary import render_summary
from .sweep import Chunk, shard_chunks
from .tables import ChunkStore, summarize, write_atomic

__all__ = ["Job", "Experiment", "find_jobs", "group_experiments", "collect", "main"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One job folder of the multirun."""

    path: Path
    config: dict[str, Any]
    overrides: tuple[str, ...]

    @property
    def shard(self) -> tuple[int, int]:
        return self.config["shard"]["index"], self.config["shard"]["count"]


@dataclass
class Experiment:
    """The jobs that ran one experiment (they differ only in their shard)."""

    label: str
    jobs: list[Job] = field(default_factory=list)


def find_jobs(root: Path) -> list[Job]:
    """Job folders: those with Hydra's `.hydra/config.yaml`, in job-number order."""
    jobs = []
    for config_path in sorted(root.glob("*/.hydra/config.yaml"), key=_job_order):
        folder = config_path.parent.parent
        config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
        if not isinstance(config, dict) or "shard" not in config:
            continue  # some other Hydra app's job
        overrides_path = folder / ".hydra" / "overrides.yaml"
        overrides = OmegaConf.load(overrides_path) if overrides_path.exists() else []
        jobs.append(Job(folder, config, tuple(str(o) for o in overrides)))
    return jobs


def _job_order(path: Path) -> tuple[int, str]:
    name = path.parent.parent.name
    return (int(name), name) if name.isdigit() else (sys.maxsize, name)


def group_experiments(jobs: list[Job]) -> list[Experiment]:
    """Jobs grouped by what decides their numbers (shard, backend and output aside)."""
    groups: dict[str, Experiment] = {}
    for job in jobs:
        key = repr(sorted(experiment_identity(job.config).items()))
        if key not in groups:
            label = ",".join(o for o in job.overrides if not o.startswith("shard.")) or "default"
            groups[key] = Experiment(_safe(label))
        groups[key].jobs.append(job)
    return list(groups.values())


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "=,._-" else "_" for c in label)


def _shard_report(experiment: Experiment, chunks: list[Chunk]) -> list[str]:
    """A line per shard that is missing or unfinished, named by shard and job folder."""
    lines = [
        f"job {job.path.name} ({' '.join(job.overrides)}): shard.index={job.shard[0]} is outside "
        f"[0, shard.count={job.shard[1]}): the job failed and ran nothing"
        for job in experiment.jobs
        if not 0 <= job.shard[0] < job.shard[1]
    ]
    counts = sorted({job.shard[1] for job in experiment.jobs})
    for count in counts:
        present = {job.shard[0]: job for job in experiment.jobs if job.shard[1] == count}
        for index in range(count):
            mine = shard_chunks(chunks, index, count)
            job = present.get(index)
            if job is None:
                lines.append(f"shard {index}/{count}: missing (no job folder)")
                continue
            store = ChunkStore(job.path, write=False)  # the job may still be running
            done = sum(store.done(chunk) for chunk in mine)
            if done < len(mine):
                lines.append(
                    f"shard {index}/{count} (job {job.path.name}, {' '.join(job.overrides)}): "
                    f"unfinished or failed, {done} of {len(mine)} chunks"
                )
    return lines


def _merge(stores: list[ChunkStore], chunks: list[Chunk], kind: str) -> pd.DataFrame:
    """Each chunk's table from the first job that finished it, in id order."""
    frames = []
    for chunk in chunks:
        store = next((s for s in stores if s.done(chunk)), None)
        if store is not None:
            frame = store.read([chunk], kind)
            if not frame.empty:
                frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _nominal(stores: list[ChunkStore], points: list[int]) -> pd.DataFrame:
    frames = []
    for point in points:
        store = next((s for s in stores if s.has_nominal(point)), None)
        if store is not None:
            frames.append(store.read_nominal(point))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect(experiment: Experiment, out: Path, figures: bool = True) -> tuple[Plan, list[str]]:
    """Merge one experiment's jobs into `out`; returns its plan and the report's lines."""
    first = experiment.jobs[0].config
    plan = prepare({**first, "shard": {"index": 0, "count": 1}})  # every chunk of the sweep
    stores = [ChunkStore.existing(job.path) for job in experiment.jobs]
    stores = [store for store in stores if store is not None]
    report = _shard_report(experiment, plan.chunks)
    instances = _merge(stores, plan.chunks, "instances")
    if instances.empty:
        return plan, [*report, "no finished chunk: nothing merged"]
    done = set(instances["point"])
    nominal = _nominal(stores, sorted(done))
    summary = summarize(instances, plan.sweep_columns, nominal.groupby("point")["rate_hz"].mean())
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "instances.parquet", lambda p: instances.to_parquet(p, index=False))
    write_atomic(out / "nominal.parquet", lambda p: nominal.to_parquet(p, index=False))
    write_atomic(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    neurons = _merge(stores, plan.chunks, "neurons")
    if not neurons.empty:
        write_atomic(out / "neurons.parquet", lambda p: neurons.to_parquet(p, index=False))
    outcome = Outcome(instances, nominal, summary, backend="-", simulated=0, seconds=0.0,
                      neuron_steps=0)  # fmt: skip
    if figures:
        write_figures(plan, outcome, out, raster_stores=stores)
    merged = [chunk for chunk in plan.chunks if any(store.done(chunk) for store in stores)]
    if len(merged) < len(plan.chunks):
        report.append(f"{len(plan.chunks) - len(merged)} of {len(plan.chunks)} chunks missing: "
                      "their instances are not in the tables")  # fmt: skip
    print(render_summary(replace(plan, chunks=merged), outcome, out))
    return plan, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.collect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("multirun_dir", type=Path, help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--require-complete", action="store_true",
                        help="exit 1 when a shard or chunk is missing")  # fmt: skip
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    root: Path = args.multirun_dir
    jobs = find_jobs(root)
    if not jobs:
        print(f"error: {root} holds no job folder of `python -m runner -m ...`", file=sys.stderr)
        return 2
    experiments = group_experiments(jobs)
    incomplete = False
    for experiment in experiments:
        out = root if len(experiments) == 1 else root / "collect" / experiment.label
        print(f"== {experiment.label}: {len(experiment.jobs)} job(s) -> {out}")
        try:
            _, report = collect(experiment, out, figures=not args.no_figures)
        except ExperimentError as error:  # e.g. a job given an invalid value
            names = ", ".join(job.path.name for job in experiment.jobs)
            report = [f"job(s) {names}: the config cannot run ({error}): nothing to merge"]
        for line in report:
            print(f"   {line}")
        incomplete |= bool(report)
    if incomplete:
        print("the sweep is incomplete: rerun the missing shards (same overrides) and collect "
              "again", file=sys.stderr)  # fmt: skip
    return 1 if incomplete and args.require_complete else 0


if __name__ == "__main__":
    sys.exit(main())
