"""`python -m runner.collect <multirun dir>`: merge the jobs of a (sharded) multirun.

Every job folder of a Hydra multirun holds its finished chunks (`chunks/*.parquet`). This
merges them, per experiment, into one `instances.parquet`, `chips.parquet`,
`nominal.parquet`, `neurons.parquet` (when the jobs wrote them), `summary.csv` and
`figures/`: at the multirun
folder's root when all jobs ran one experiment (e.g. the shards of one sweep), else in
`collect/<label>/` per experiment, labelled by the keys in which the experiments differ.
Jobs are grouped and labelled by the experiment identity stored with their chunks
(`chunks/experiment.json`), never by a file a later invocation could rewrite. It works on a
partial sweep (a missing, failed or running shard, or a bad chunk file, only leaves its
chunks out, and is named in the report), reads only what the jobs wrote, and gives the
same files however often it runs.

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

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from runner.report.finish import finish
from runner.study.footprint import available_memory, check_assembly_fits
from runner.study.identity import differences, flatten, identity_digest
from runner.study.plan import ExperimentError, Plan
from runner.study.prepare import prepare
from runner.study.run import assemble, plan_identity
from runner.study.run_folder import ChunkStore, ChunkTables
from runner.study.schema import load_config
from runner.study.sweep import Chunk, shard_chunks

__all__ = ["Job", "Experiment", "find_jobs", "group_experiments", "collect", "main"]

log = logging.getLogger(__name__)

MAX_LABEL_LENGTH = 100  # longer labels get a short folder name (the label goes in label.txt)


@dataclass(frozen=True)
class Job:
    """One job folder of the multirun.

    `config` and `identity` come from `chunks/experiment.json`, written only by a run that
    claimed the folder; a job without one (its start failed) has identity None and the
    config of its `.hydra/config.yaml`.
    """

    path: Path
    config: dict[str, Any]
    overrides: tuple[str, ...]
    identity: dict[str, Any] | None = None
    digest: str | None = None

    @property
    def shard(self) -> tuple[int, int]:
        return self.config["shard"]["index"], self.config["shard"]["count"]

    @property
    def name(self) -> str:
        return f"job {self.path.name} ({' '.join(self.overrides)})"


@dataclass
class Experiment:
    """The jobs that ran one experiment (they differ only in their shard)."""

    label: str
    identity: dict[str, Any]
    jobs: list[Job] = field(default_factory=list)

    @property
    def folder_name(self) -> str:
        """The label as a file name; a short stable one when the label is too long."""
        safe = "".join(c if c.isalnum() or c in "=,._-" else "_" for c in self.label)
        if len(safe.encode()) <= MAX_LABEL_LENGTH:
            return safe
        return f"experiment-{self.jobs[0].digest[:12]}"


def _read_yaml(path: Path) -> Any:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def find_jobs(root: Path) -> tuple[list[Job], list[str]]:
    """Job folders (those with `chunks/experiment.json` or Hydra's `.hydra/config.yaml`), in
    job-number order, and a line per folder skipped because a file of it is unreadable."""
    jobs, skipped = [], []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for folder in sorted(folders, key=_job_order):
        overrides: tuple[str, ...] = ()
        overrides_path = folder / ".hydra" / "overrides.yaml"
        try:
            if overrides_path.is_file():
                overrides = tuple(str(o) for o in _read_yaml(overrides_path))
            recorded = ChunkStore(folder).recorded()
            if recorded is not None:
                jobs.append(Job(folder, recorded["config"], overrides, recorded["identity"],
                                recorded["digest"]))  # fmt: skip
                continue
            config_path = folder / ".hydra" / "config.yaml"
            if not config_path.is_file():
                continue
            config = _read_yaml(config_path)
            if not isinstance(config, dict) or "shard" not in config:
                continue  # some other Hydra app's job
            jobs.append(Job(folder, config, overrides))
        except (OSError, ValueError, TypeError, YAMLError, OmegaConfBaseException) as error:
            skipped.append(f"job {folder.name}: skipped, {error}")
    return jobs, skipped


def _job_order(folder: Path) -> tuple[int, str]:
    return (int(folder.name), folder.name) if folder.name.isdigit() else (sys.maxsize, folder.name)


def group_experiments(jobs: list[Job]) -> list[Experiment]:
    """Jobs that claimed their folder, grouped by stored identity and labelled by the
    identity keys in which the experiments differ (`network.percent_mismatch=0.1`)."""
    groups: dict[str, Experiment] = {}
    for job in jobs:
        if job.digest is not None:
            groups.setdefault(job.digest, Experiment("", job.identity)).jobs.append(job)
    experiments = list(groups.values())
    leaves = [flatten(experiment.identity) for experiment in experiments]
    differing = sorted({key for leaf in leaves for key in differences(leaves[0], leaf)})
    for experiment, leaf in zip(experiments, leaves, strict=True):
        label = ",".join(f"{key}={leaf[key]}" for key in differing if key in leaf)
        experiment.label = label or "default"
    return experiments


def _shard_report(
    experiment: Experiment, chunks: list[Chunk], finished: dict[Chunk, list[Path]]
) -> list[str]:
    """A line per shard that is missing or unfinished, named by shard and job folder."""
    lines = []
    counts = sorted({job.shard[1] for job in experiment.jobs})
    for count in counts:
        present = {job.shard[0]: job for job in experiment.jobs if job.shard[1] == count}
        for index in range(count):
            mine = shard_chunks(chunks, index, count)
            job = present.get(index)
            if job is None:
                lines.append(f"shard {index}/{count}: missing (no job folder)")
                continue
            done = sum(job.path in finished[chunk] for chunk in mine)
            if done < len(mine):
                lines.append(
                    f"shard {index}/{count} ({job.name}): "
                    f"unfinished or failed, {done} of {len(mine)} chunks"
                )
    return lines


def _merge(
    stores: dict[Path, ChunkStore], finished: dict[Chunk, list[Path]], kind: str
) -> list[Path]:
    """Each chunk's `kind` file from the first job that finished it, in id order."""
    return [
        path
        for chunk, jobs in sorted(finished.items(), key=lambda item: item[0].first)
        if jobs
        for path in stores[jobs[0]].paths([chunk], kind)
    ]


def _nominal(stores: list[ChunkStore], plan: Plan, points: list[int]) -> list[Path]:
    """Each point's nominal table, from the first job that holds it whole."""
    paths = []
    for point in points:
        store = next((s for s in stores if s.has_nominal(point, plan.nominal_rows(point))), None)
        if store is not None:
            paths.append(store.nominal_path(point))
    return paths


def collect(
    experiment: Experiment,
    out: Path,
    figures: bool = True,
    figure_settings: dict[str, Any] | None = None,
) -> tuple[Plan, list[str]]:
    """Merge one experiment's jobs into `out`; returns its plan and the report's lines.

    The figures follow the jobs' `output.figure_*` keys, those in `figure_settings`
    (`figure_formats`, `figure_dpi`, `figure_width_in`) replaced.

    Raises ExperimentError when the stored config cannot run here, when its spec or
    stimulus files changed since the jobs ran, or when writing its tables would need more
    memory than the machine has (`check_assembly_fits`).
    """
    first = experiment.jobs[0].config
    output = {**first["output"], **(figure_settings or {})}
    plan = prepare({**first, "shard": {"index": 0, "count": 1}, "output": output})  # all chunks
    identity = plan_identity(plan)
    if identity_digest(identity) != experiment.jobs[0].digest:
        changed = differences(experiment.identity, identity)
        raise ExperimentError(
            f"its config or input files differ from those the jobs ran with ({', '.join(changed)})"
        )
    check_assembly_fits(plan, available_memory())
    stores = {job.path: ChunkStore(job.path) for job in experiment.jobs}
    finished = {
        chunk: [path for path, store in stores.items()
                if store.finished(chunk, plan.neurons_per_instance(chunk),
                                  plan.cores_per_instance(chunk))]  # fmt: skip
        for chunk in plan.chunks
    }  # fmt: skip
    report = _shard_report(experiment, plan.chunks, finished)
    report += [problem for store in stores.values() for problem in store.problems]
    instances = _merge(stores, finished, "instances")
    if not instances:
        return plan, [*report, "no finished chunk: nothing merged"]
    points = sorted({p for chunk, jobs in finished.items() if jobs for p in plan.points_of(chunk)})
    tables = ChunkTables(
        instances=instances,
        nominal=_nominal(list(stores.values()), plan, points),
        neurons=_merge(stores, finished, "neurons") if plan.config.output.neurons else None,
        cores=_merge(stores, finished, "cores"),
    )
    out.mkdir(parents=True, exist_ok=True)
    outcome = assemble(plan, out, tables)  # nothing simulated here
    merged = [chunk for chunk in plan.chunks if finished[chunk]]
    if len(merged) < len(plan.chunks):
        report.append(f"{len(plan.chunks) - len(merged)} of {len(plan.chunks)} chunks missing: "
                      "their instances are not in the tables")  # fmt: skip
    print(finish(replace(plan, chunks=merged), outcome, out, figures, list(stores.values())))
    return plan, report


def _never_started(job: Job) -> str:
    """Why a job without stored chunks ran nothing (its config, tried again here)."""
    try:
        prepare(job.config)
    except ExperimentError as error:
        return f"{job.name}: the config cannot run ({error}): nothing to merge"
    return f"{job.name}: the run failed before simulating (see its runner.log): nothing to merge"


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
    parser.add_argument("--figure-formats", help="comma-separated, e.g. png,pdf (default: the "
                        "jobs' output.figure_formats)")  # fmt: skip
    parser.add_argument("--figure-dpi", type=float,
                        help="resolution of png (default: the jobs' output.figure_dpi)")
    parser.add_argument("--figure-width-in", type=float, help="figure width in inches "
                        "(default: the jobs' output.figure_width_in)")  # fmt: skip
    args = parser.parse_args(argv)
    settings = {key: value for key, value in (
        ("figure_formats", None if args.figure_formats is None
                           else [name.strip() for name in args.figure_formats.split(",")]),
        ("figure_dpi", args.figure_dpi), ("figure_width_in", args.figure_width_in),
    ) if value is not None}  # fmt: skip
    try:
        load_config({"output": settings})  # refused here, once, before any merging
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    root: Path = args.multirun_dir
    if not root.is_dir():
        print(f"error: {root} is not a folder", file=sys.stderr)
        return 2
    jobs, skipped = find_jobs(root)
    if not jobs:
        print(f"error: {root} holds no job folder of `python -m runner -m ...`"
              + "".join(f"; {line}" for line in skipped), file=sys.stderr)  # fmt: skip
        return 2
    report = [*skipped, *(_never_started(job) for job in jobs if job.digest is None)]
    for line in report:
        print(line)
    experiments = group_experiments(jobs)
    incomplete = bool(report)
    for experiment in experiments:
        single = len(experiments) == 1
        out = root if single else root / "collect" / experiment.folder_name
        print(f"== {experiment.label}: {len(experiment.jobs)} job(s) -> {out}")
        try:
            _, lines = collect(experiment, out, not args.no_figures, settings)
        except ExperimentError as error:
            names = ", ".join(job.path.name for job in experiment.jobs)
            lines = [f"job(s) {names}: {error}: nothing merged"]
        if not single and out.is_dir() and out.name != experiment.label:
            (out / "label.txt").write_text(experiment.label + "\n")
        for line in lines:
            print(f"   {line}")
        incomplete |= bool(lines)
    if incomplete:
        print("the sweep is incomplete: rerun the missing shards (same overrides) and collect "
              "again", file=sys.stderr)  # fmt: skip
    return 1 if incomplete and args.require_complete else 0


if __name__ == "__main__":
    sys.exit(main())
