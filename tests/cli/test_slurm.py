"""A sharded sweep on a real Slurm (CI starts one: `.ci/slurm/start.sh`), merged by collect.

Checks what only a real scheduler shows: the project's `slurm` launcher config submits an
array that runs, `collect` of the array's shards equals an unsharded local run, and a job
whose run fails ends FAILED in Slurm's accounting (not COMPLETED) while the other array
tasks complete and keep their results; a shard with no chunk to run ends COMPLETED.
Skips where there is no Slurm.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import collect_in_process, main_in_process, ok
from tests.helpers.markers import requires_slurm, slow
from tests.helpers.slurm import SLURM_CI_OVERRIDES, slurm_env
from tests.helpers.studies import MULTIRUN_SMALL as SMALL
from tests.helpers.studies import assert_same_tables, chunk_instances

MULTIRUN_TIMEOUT_S = 300  # 3 tiny jobs take ~20 s on the 2-core CI node
ACCOUNTING_TIMEOUT_S = 60  # sacct lags the jobs by a few seconds


def slurm_runner(*overrides: str) -> subprocess.CompletedProcess:
    """`python -m runner -m` through the slurm launcher (`main()` in this process; the jobs
    are Slurm's), stopped with a TimeoutError (exit status 1) after MULTIRUN_TIMEOUT_S."""
    import submitit

    def expired(signum, frame):
        raise TimeoutError(f"the multirun did not end within {MULTIRUN_TIMEOUT_S} s")

    with pytest.MonkeyPatch.context() as patch:
        if "SLURM_CONF" in slurm_env():  # sbatch, squeue and sacct find the CI cluster
            patch.setenv("SLURM_CONF", slurm_env()["SLURM_CONF"])
        # A job that exits with an error status leaves no result file; submitit waits 15 s
        # for one (a slow shared file system) before it reports the job's error: 1 s here.
        patch.setattr(submitit.core.core.Job, "_results_timeout_s", 1)
        previous = signal.signal(signal.SIGALRM, expired)
        signal.alarm(MULTIRUN_TIMEOUT_S)
        try:
            return main_in_process("-m", *SLURM_CI_OVERRIDES, *overrides)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


def collect(sweep_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m runner.collect` in this process, without figures (not checked here)."""
    return collect_in_process(sweep_dir, "--no-figures", *args)


def array_id(sweep_dir: Path) -> str:
    """The Slurm array job id of a sweep, from submitit's `<id>_<task>` folders."""
    ids = {
        match[1]
        for path in (sweep_dir / ".submitit").iterdir()
        if (match := re.fullmatch(r"(\d+)_\d+", path.name))
    }
    assert len(ids) == 1, ids
    return ids.pop()


def _slurm(*command: str) -> str:
    return subprocess.run(list(command), env=slurm_env(), capture_output=True, text=True,
                          timeout=20, check=True).stdout  # fmt: skip


def wait_for_states(job: str, expected: dict[str, str]) -> dict[str, str]:
    """Poll until the array has left the queue and sacct shows `expected` (task -> state).

    The launcher returns at the first failed task while later ones may still run, and
    sacct lags; both are waited for, with a deadline. Returns task -> "STATE EXITCODE".
    """
    deadline = time.monotonic() + ACCOUNTING_TIMEOUT_S
    rows: dict[str, str] = {}
    while time.monotonic() < deadline:
        queued = _slurm("squeue", "--noheader", "--jobs", job, "--format=%i %T").strip()
        if not queued:
            out = _slurm("sacct", "--noheader", "--parsable2", "--allocations", "--jobs", job,
                         "--format=JobID,State,ExitCode")  # fmt: skip
            rows = {}
            for line in out.splitlines():
                job_id, state, code = line.split("|")
                rows[job_id.partition("_")[2]] = f"{state} {code}"
            if all(rows.get(task, "").split(" ")[0] == state for task, state in expected.items()):
                return rows
        time.sleep(1)
    pytest.fail(f"array {job}: wanted {expected} within {ACCOUNTING_TIMEOUT_S} s, sacct: {rows}")


@pytest.fixture
def unsharded(unsharded_multirun: Path) -> Path:
    """The same sweep as one plain local run."""
    return unsharded_multirun


@slow  # jobs through a real scheduler, and its accounting
@requires_slurm
def test_sharded_sweep_on_slurm_equals_the_unsharded_run(tmp_path: Path, unsharded: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    ok(slurm_runner(*SMALL, "shard.count=3", "shard.index=range(3)",
                    f"hydra.sweep.dir={sweep_dir}"))  # fmt: skip
    states = wait_for_states(array_id(sweep_dir), {str(t): "COMPLETED" for t in range(3)})
    assert len(states) == 3, states
    ok(collect(sweep_dir, "--require-complete"))
    assert_same_tables(sweep_dir, unsharded)


@slow  # jobs through a real scheduler, and its accounting
@requires_slurm
def test_shards_without_chunks_complete_on_slurm(tmp_path: Path, unsharded: Path) -> None:
    """3 shards of a sweep that packs into one chunk (all 24 rows): two jobs have nothing
    to do, and every job must still end COMPLETED, the multirun exit 0, and collect merge
    the sweep."""
    sweep_dir = tmp_path / "sweep"
    one_chunk = [o for o in SMALL if not o.startswith("chunk_size=")] + ["chunk_size=24"]
    ok(slurm_runner(*one_chunk, "shard.count=3", "shard.index=range(3)",
                    f"hydra.sweep.dir={sweep_dir}"))  # fmt: skip
    states = wait_for_states(array_id(sweep_dir), {str(t): "COMPLETED" for t in range(3)})
    assert len(states) == 3, states
    assert not chunk_instances(sweep_dir / "0") and not chunk_instances(sweep_dir / "1")
    ok(collect(sweep_dir, "--require-complete"))
    assert_same_tables(sweep_dir, unsharded)


@slow  # jobs through a real scheduler, and its accounting
@requires_slurm
def test_a_failing_job_is_failed_in_slurm_and_the_others_are_kept(
    tmp_path: Path, unsharded: Path
) -> None:
    """Task 1 asks for shard 7 of 3: exits 2 -> FAILED; tasks 0 and 2 run to the end."""
    sweep_dir = tmp_path / "sweep"
    result = slurm_runner(*SMALL, "shard.count=3", "shard.index=0,7,2",
                          f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert result.returncode != 0
    states = wait_for_states(
        array_id(sweep_dir), {"0": "COMPLETED", "1": "FAILED", "2": "COMPLETED"}
    )
    assert states["1"] == "FAILED 2:0", states  # the runner's own exit status reaches Slurm
    assert "shard.index must be in [0, shard.count=3), got 7" in result.stdout + result.stderr
    kept = chunk_instances(sweep_dir / "0") | chunk_instances(sweep_dir / "2")
    assert (sweep_dir / "2" / "instances.parquet").is_file()  # ran after the failure came back
    assert collect(sweep_dir).returncode == 0
    assert collect(sweep_dir, "--require-complete").returncode != 0
    merged = pd.read_parquet(sweep_dir / "instances.parquet")
    expected = pd.read_parquet(unsharded / "instances.parquet")
    expected = expected[expected["instance"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, expected)
