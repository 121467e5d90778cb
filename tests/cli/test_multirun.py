"""Multiruns through Hydra's launchers, then `python -m runner.collect`, end to end.

Sharded sweeps must merge to exactly the unsharded run's tables, whatever the launcher; a
partial or failed sweep must still merge what finished and name what did not; a rerun into
the same sweep folder (what a requeued job does) must resume from the finished chunks.
No Slurm needed: `tests/cli/test_slurm.py` repeats the essentials on a real cluster.

Most of these run `main()` and `collect`'s main in this process (Hydra's basic launcher
runs a multirun's jobs in the process that launches them; submitit's local launcher starts
a process per job); one multirun and one collect are processes of their own (end to end).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import collect_in_process, ok, output, run_cli, run_collect
from tests.helpers.cli import main_in_process as runner
from tests.helpers.markers import requires_submitit, slow
from tests.helpers.studies import MULTIRUN_BASE as BASE
from tests.helpers.studies import MULTIRUN_SMALL as SMALL
from tests.helpers.studies import MULTIRUN_TABLES as TABLES
from tests.helpers.studies import assert_same_tables, chunk_instances

LOCAL = ["hydra/launcher=local", "hydra.launcher.gpus_per_node=0"]  # submitit_local, no GPU


def collect(sweep_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m runner.collect SWEEP_DIR ARGS` in this process, without figures (what
    these tests check are the merged tables and what collect says; one test draws them)."""
    return collect_in_process(sweep_dir, "--no-figures", *args)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 shards through Hydra's basic launcher (jobs in-process, one after another)."""
    sweep_dir = tmp_path_factory.mktemp("sharded") / "sweep"
    ok(runner("-m", *SMALL, "shard.count=3", "shard.index=0,1,2", f"hydra.sweep.dir={sweep_dir}"))
    return sweep_dir


@pytest.fixture
def unsharded(unsharded_multirun: Path) -> Path:
    """The same sweep as one plain run: the reference every merge is compared with."""
    return unsharded_multirun


@pytest.fixture
def sweep_copy(sharded: Path, tmp_path: Path) -> Path:
    """A private copy of the sharded sweep, before any collect, for tests that damage it."""
    copy = tmp_path / "sweep"
    shutil.copytree(sharded, copy)
    return copy


def test_collect_of_shards_equals_the_unsharded_run(sweep_copy: Path, unsharded: Path) -> None:
    assert sorted(p.name for p in sweep_copy.iterdir() if p.is_dir()) == ["0", "1", "2"]
    ok(run_collect(sweep_copy))  # `python -m runner.cli.collect` in a process
    assert_same_tables(sweep_copy, unsharded)


@slow  # a process per job
@requires_submitit
def test_range_shortcut_with_submitit_local(tmp_path: Path, unsharded: Path) -> None:
    """`shard.index='range(3)'` fans out like 0,1,2; submitit_local runs the jobs."""
    sweep_dir = tmp_path / "sweep"
    ok(runner("-m", *SMALL, *LOCAL, "shard.count=3", "shard.index=range(3)",
              f"hydra.sweep.dir={sweep_dir}"))  # fmt: skip
    assert (sweep_dir / ".submitit").is_dir()  # really went through submitit
    ok(collect(sweep_dir, "--require-complete"))
    assert_same_tables(sweep_dir, unsharded)


def test_collect_is_idempotent(sweep_copy: Path) -> None:
    ok(collect(sweep_copy))
    names = [*TABLES, "summary.csv"]
    first = {name: (sweep_copy / name).read_bytes() for name in names}
    ok(collect(sweep_copy))  # the root now holds merged tables: they must not be re-merged
    assert {name: (sweep_copy / name).read_bytes() for name in names} == first


def test_collect_names_a_missing_shard_and_merges_the_rest(
    sweep_copy: Path, unsharded: Path
) -> None:
    lost = chunk_instances(sweep_copy / "1")
    shutil.rmtree(sweep_copy / "1")
    result = ok(collect(sweep_copy))
    assert "shard 1/3" in output(result), output(result)
    merged = pd.read_parquet(sweep_copy / "instances.parquet")
    expected = pd.read_parquet(unsharded / "instances.parquet")
    expected = expected[~expected["instance"].isin(lost)].reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, expected)

    strict = collect(sweep_copy, "--require-complete")
    assert strict.returncode != 0
    assert "shard 1/3" in output(strict)


def test_collect_reports_an_unfinished_shard(sweep_copy: Path) -> None:
    """A shard that stopped mid-way (its final tables never written) merges its chunks."""
    job = sweep_copy / "2"
    for name in (*TABLES, "summary.csv"):
        (job / name).unlink()
    chunks = sorted((job / "chunks").glob("*.instances.parquet"))
    assert len(chunks) == 2
    chunks[-1].unlink()
    kept = (
        chunk_instances(sweep_copy / "0") | chunk_instances(sweep_copy / "1") | chunk_instances(job)
    )
    result = ok(collect(sweep_copy))
    text = output(result)
    assert re.search(r"shard 2/3\b.*unfinished", text), text
    assert set(pd.read_parquet(sweep_copy / "instances.parquet")["instance"]) == kept
    assert collect(sweep_copy, "--require-complete").returncode != 0


def test_a_failing_job_exits_non_zero_and_the_others_results_are_kept(
    tmp_path: Path, unsharded: Path
) -> None:
    """Shard 7 of 2 cannot run: the multirun fails, shard 0's tables stay and merge.
    `python -m runner -m ...` in a process of its own: the exit status a launcher sees."""
    sweep_dir = tmp_path / "sweep"
    result = run_cli("-m", *SMALL, "shard.count=2", "shard.index=0,7",
                     f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert result.returncode != 0
    assert "shard.index must be in [0, shard.count=2), got 7" in result.stderr
    first_half = pd.read_parquet(unsharded / "instances.parquet").iloc[:12]
    pd.testing.assert_frame_equal(pd.read_parquet(sweep_dir / "0" / "instances.parquet"),
                                  first_half)  # fmt: skip
    assert not (sweep_dir / "1" / "chunks").exists()
    assert collect(sweep_dir).returncode == 0
    assert set(pd.read_parquet(sweep_dir / "instances.parquet")["instance"]) == set(range(12))


@slow  # a process per job
@requires_submitit
def test_a_failing_job_under_submitit_local(tmp_path: Path, monkeypatch) -> None:
    """The failing job comes first; submitit still runs the other one to the end."""
    import submitit

    # A job that exits with an error status leaves no result file; submitit waits 15 s for
    # one (a slow shared file system) before it reports the job's error: 1 s on this disk.
    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 1)
    sweep_dir = tmp_path / "sweep"
    result = runner("-m", *BASE, *LOCAL, "sweep.n_samples=4", "network.percent_mismatch=-1,0.1",
                    f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert result.returncode != 0
    assert "percent_mismatch must be >= 0" in output(result)
    assert not (sweep_dir / "0" / "chunks").exists()
    other = sweep_dir / "1" / "instances.parquet"  # written by a job still running, maybe
    deadline = time.monotonic() + 120
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(pd.read_parquet(other)) == 4 * 2


def test_multirun_over_networks_collects_per_experiment(tmp_path: Path) -> None:
    """2 networks x 2 shards: collect merges each experiment's shards separately."""
    whole = tmp_path / "whole"
    ok(runner("-m", *BASE, "sweep.n_samples=5", "network.percent_mismatch=0.1,0.2",
              f"hydra.sweep.dir={whole}"))  # fmt: skip
    sweep_dir = tmp_path / "sweep"
    ok(runner("-m", *BASE, "sweep.n_samples=5", "network.percent_mismatch=0.1,0.2",
              "shard.count=2", "shard.index=0,1", f"hydra.sweep.dir={sweep_dir}"))  # fmt: skip
    result = ok(collect_in_process(sweep_dir, "--require-complete"))  # figures drawn too
    merged = sorted(sweep_dir.glob("collect/*/instances.parquet"))
    assert len(merged) == 2, (output(result), sorted(sweep_dir.rglob("*.parquet")))
    references = [pd.read_parquet(whole / job / "instances.parquet") for job in ("0", "1")]
    for path in merged:
        table = pd.read_parquet(path)
        assert sum(table.equals(reference) for reference in references) == 1, path
    assert all((path.parent / "summary.csv").is_file() for path in merged)


def test_a_requeued_job_resumes_from_its_chunks(sweep_copy: Path, unsharded: Path) -> None:
    """Preemption after one of shard 1's two chunks: the resubmitted sweep redoes only the
    lost chunk, into the same job folders, and merges to the unsharded tables."""
    job = sweep_copy / "1"
    for name in (*TABLES, "summary.csv"):
        (job / name).unlink()
    lost = sorted((job / "chunks").glob("*.instances.parquet"))[-1].name.split(".")[0]
    for path in (job / "chunks").glob(f"{lost}.*"):
        path.unlink()
    ok(runner("-m", *SMALL, "shard.count=3", "shard.index=0,1,2",
              f"hydra.sweep.dir={sweep_copy}"))  # fmt: skip
    log = (job / "runner.log").read_text()
    assert "1 of 2 chunks to simulate" in log, log
    assert "0 of 2 chunks to simulate" in (sweep_copy / "0" / "runner.log").read_text()
    ok(collect(sweep_copy, "--require-complete"))
    assert_same_tables(sweep_copy, unsharded)


def test_a_refused_rerun_leaves_the_job_folder_and_its_label_intact(tmp_path: Path) -> None:
    """Rerunning job 0 with another seed is refused before it rewrites anything; collect
    labels each experiment from the identity stored with its chunks."""
    sweep_dir = tmp_path / "sweep"
    ok(runner("-m", *BASE, "sweep.n_samples=2", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"))
    job = sweep_dir / "0"
    kept = {
        name: (job / name).read_bytes()
        for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "chunks/experiment.json")
    }
    refused = runner(*BASE, "sweep.n_samples=2", "seed=7", f"hydra.run.dir={job}")
    assert refused.returncode == 2
    assert "differs in seed: 0 in the folder, 7 now" in refused.stderr
    assert {name: (job / name).read_bytes() for name in kept} == kept
    result = ok(collect(sweep_dir, "--require-complete"))
    for seed in (0, 1):
        table = pd.read_parquet(sweep_dir / "collect" / f"seed={seed}" / "instances.parquet")
        assert set(table["seed"]) == {seed}, output(result)
    assert "seed=7" not in output(result)
