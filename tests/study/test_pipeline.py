"""Planning at any scale, empty shards, the chunk memory check, and what a run reports.

A huge sweep plans only the shard's own chunks and its numbers equal a direct simulation;
a shard without chunks succeeds and collect merges around it; a chunk too big for the
machine is refused with the estimate (checked against the real arrays) and the fix;
progress never writes terminal frames into logs; the summary reaches runner.log; a
multirun prints one line per job.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner.cli.main as cli_main
import runner.study.run as experiment_run
from runner.kernel.backends import get_backend
from runner.kernel.batch import REDUCTION_FIELDS, InputEvents
from runner.network.dynapsim import packed_batch
from runner.study.footprint import ChunkFootprint, check_chunks_fit, chunk_footprint
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.run_folder import ChunkStore
from runner.study.simulate import simulate_chunk
from runner.study.sweep import Chunk
from tests.helpers.cli import collect_in_process as collect
from tests.helpers.cli import main_in_process as runner
from tests.helpers.cli import ok, output
from tests.helpers.studies import MULTIRUN_SMALL as SMALL
from tests.helpers.studies import assert_same_tables
from tests.helpers.studies import study_config as config


def test_a_huge_sweep_plans_and_runs_only_its_shard(tmp_path: Path, made_chunks) -> None:
    """2 points x 10^12 chips x 2 trials, the last of 10^11 shards: row ids near 4*10^12,
    simulated exactly as `simulate` simulates those chips (keys = chip ids) on each trial,
    and no chunk object for the others."""
    made = made_chunks
    count = 10**11
    plan = prepare(
        config("sweep.n_samples=1000000000000", f"shard.count={count}",
               f"shard.index={count - 1}", "output.raster_instance=0")  # fmt: skip
    )
    assert made == []  # planning built no chunk
    n_chunks = -(-2 * 10**12 // 4)  # 4 chips (8 rows) per chunk
    assert len(plan.sweep_chunks) == n_chunks
    assert len(plan.chunks) == n_chunks - (count - 1) * n_chunks // count
    outcome = experiment_run.run(plan, tmp_path, progress=False)
    shard_start = plan.chunks[0].first
    assert made and all(chunk.first >= shard_start for chunk in made)  # only its own chunks
    ids = np.arange(plan.chunks[0].first, 4 * 10**12)
    instances = pd.read_parquet(tmp_path / "instances.parquet")
    np.testing.assert_array_equal(instances["instance"], ids)
    assert outcome.simulated == ids.size and list(outcome.nominal["point"].unique()) == [1]
    np.testing.assert_array_equal(instances["chip"], ids // 2 - 10**12)
    np.testing.assert_array_equal(instances["trial"], ids % 2)

    point = plan.points[1]  # every id of this shard belongs to the last point
    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    counts = neurons["spike_count"].to_numpy().reshape(ids.size, -1)
    for trial in (0, 1):
        chips = ids[ids % 2 == trial] // 2 - 10**12
        direct = point.network.simulate(point.stimulus.trial(trial), n_instances=chips.size,
                                        seed=0, backend="reference",
                                        first_instance=int(chips[0]), bin_width=10)  # fmt: skip
        np.testing.assert_array_equal(counts[ids % 2 == trial], direct.spike_counts)


def test_an_empty_shard_succeeds_and_writes_no_table(tmp_path: Path) -> None:
    plan = prepare(config("chunk_size=24", "shard.count=2", "shard.index=0"))
    assert len(plan.sweep_chunks) == 1 and len(plan.chunks) == 0
    assert plan.touched_points() == range(0)
    outcome = experiment_run.run(plan, tmp_path, progress=False)
    assert outcome.simulated == 0 and outcome.instances.empty
    assert (tmp_path / "chunks" / "experiment.json").is_file()  # the folder says what it ran
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob("chunks/*.parquet"))


@pytest.fixture(scope="module")
def mostly_empty_sweep(tmp_path_factory: pytest.TempPathFactory):
    """3 shards of a sweep that packs into one chunk: shards 0 and 1 hold none."""
    sweep_dir = tmp_path_factory.mktemp("empty_shards") / "sweep"
    one_chunk = [o for o in SMALL if not o.startswith("chunk_size=")] + ["chunk_size=1000"]
    result = ok(runner("-m", *one_chunk, "shard.count=3", "shard.index=0,1,2",
                       f"hydra.sweep.dir={sweep_dir}"))  # fmt: skip
    return sweep_dir, result


def test_empty_shards_complete_and_collect_merges_the_sweep(
    mostly_empty_sweep, unsharded_multirun: Path
) -> None:
    sweep_dir, _ = mostly_empty_sweep
    ok(collect(sweep_dir, "--require-complete", "--no-figures"))
    assert_same_tables(sweep_dir, unsharded_multirun)


def test_a_multirun_prints_one_status_line_per_job(mostly_empty_sweep) -> None:
    sweep_dir, result = mostly_empty_sweep
    lines = [line for line in result.stdout.splitlines() if line.startswith("job ")]
    assert [line.split(" (")[0] for line in lines] == ["job 0", "job 1", "job 2"], result.stdout
    assert "shard 0/3 holds none of the sweep's 1 chunk(s)" in lines[0]
    assert "shard.index=1" in lines[1] and "holds none" in lines[1]
    assert "shard 2/3, 24 instances (24 simulated now on reference" in lines[2]
    assert "0 non-finite" in lines[2] and str(sweep_dir / "2") in lines[2]
    assert "rel. error" not in result.stdout  # the tables go to the logs, not the terminal
    assert "rel. error" in (sweep_dir / "2" / "runner.log").read_text()
    assert "holds none" in (sweep_dir / "0" / "runner.log").read_text()


def test_without_a_terminal_progress_is_log_lines_and_the_summary_is_logged(
    unsharded_multirun_run,
) -> None:
    run_dir, result = unsharded_multirun_run  # stderr was no terminal (not a tty)
    log = (run_dir / "runner.log").read_text()
    assert "\r" not in result.stderr + result.stdout + log
    assert "chunk 6/6 done (instances 20-23): 24 of 24 instances" in log
    table = result.stdout[result.stdout.index("network feedforward:") :].strip()
    assert table and table in log  # the printed summary, whole, in runner.log
    assert "rel. error median" in table


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_the_progress_bar_draws_only_on_a_terminal(tty: bool, monkeypatch, caplog) -> None:
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(experiment_run, "_PROGRESS_LOG_INTERVAL_S", float("inf"))
    chunks = [Chunk(0, 3), Chunk(4, 7)]
    with caplog.at_level(logging.INFO, logger="runner.study.run"):
        bar = experiment_run._Progress(total=8, done=0, n_chunks=2, enabled=True)
        for number, chunk in enumerate(chunks, start=1):
            bar.chunk_done(number, chunk, range(0, 1))
        bar.close()
    if tty:
        assert "\r" in stream.getvalue() and "8/8" in stream.getvalue()
        assert not caplog.records
    else:
        assert stream.getvalue() == ""
        messages = [record.getMessage() for record in caplog.records]
        assert len(messages) == 1  # the last chunk's line; others only every 30 s
        assert messages[0].startswith("chunk 2/2 done (instances 4-7): 8 of 8 instances")


def test_the_footprint_counts_the_real_arrays(tmp_path: Path) -> None:
    """Kernel outputs, the neurons table and the inputs as estimated = their real bytes (x2
    for the copies that coexist), from one real chunk of 3 chips x 2 trials; the inputs are
    one stream per trial, whatever the number of chips."""
    plan = prepare(config("chunk_size=6", "sweep.n_samples=6"))
    chunk = plan.chunks[0]
    footprint = chunk_footprint(plan, chunk)
    point = plan.point_of(chunk.first)
    assert (footprint.n_instances, footprint.n_neurons, footprint.n_steps, footprint.n_bins,
            footprint.n_inputs, footprint.n_streams) == (6, 16, 100, 10, 8, 2)  # fmt: skip
    assert footprint.neurons_table
    ids = np.arange(chunk.first, chunk.last + 1)
    inputs = InputEvents.from_dense(point.stimulus.for_trials(ids % 2), ids.size)
    batch = packed_batch([point.network], np.zeros(ids.size, np.int32), inputs, ids // 2, 0, 10)
    result = get_backend("reference")(batch)
    assert footprint.parts()["kernel outputs"] == 2 * sum(
        getattr(result, name).nbytes for name in REDUCTION_FIELDS
    )
    nominal = {0: np.zeros((2, 16))}
    _, neurons, _ = simulate_chunk(plan, chunk, nominal, ChunkStore(tmp_path), "reference")
    assert footprint.parts()["neurons table"] == 2 * neurons.memory_usage(index=False).sum()
    assert footprint.parts()["inputs"] == 2 * point.stimulus.for_trials(np.arange(2)).nbytes


def test_a_chunk_that_does_not_fit_is_refused_with_the_estimate_and_the_fix() -> None:
    plan = prepare(config("chunk_size=6", "sweep.n_samples=6"))
    total = chunk_footprint(plan, plan.chunks[0]).total
    check_chunks_fit(plan, total)  # fits exactly
    check_chunks_fit(plan, -1)  # memory unknown: no check
    with pytest.raises(ExperimentError) as refused:
        check_chunks_fit(plan, total - 1)
    message = str(refused.value)
    assert message.startswith("a chunk of 6 instances x 16 neurons (instances 0-5) needs about")
    assert "use a smaller chunk_size (at most about 5 fit) or output.neurons=false" in message
    lean = prepare(config("chunk_size=6", "sweep.n_samples=6", "output.neurons=false"))
    lean_total = chunk_footprint(lean, lean.chunks[0]).total
    assert lean_total < total
    with pytest.raises(ExperimentError) as refused:
        check_chunks_fit(lean, lean_total - 1)
    assert "output.neurons" not in str(refused.value)  # already off: only chunk_size helps


def test_the_largest_fitting_chunk_fits() -> None:
    """The inputs (4 streams: 2 MB) do not grow with the rows; below them nothing fits."""
    footprint = ChunkFootprint(1000, 256, 1000, 100, 64, 4, True)
    for available in (10**6, 10**7, 10**8, 10**9):
        fits = footprint.largest_fitting(available)
        sized = ChunkFootprint(fits, 256, 1000, 100, 64, 4, True)
        bigger = ChunkFootprint(fits + 1, 256, 1000, 100, 64, 4, True)
        assert (fits == 0 or sized.total <= available) and available < bigger.total
    assert footprint.largest_fitting(10**6) == 0 < footprint.largest_fitting(10**7)


def test_the_cli_refuses_a_chunk_too_big_before_simulating(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner("backend=reference", "sweep.n_samples=100000000", "chunk_size=100000000",
                    f"hydra.run.dir={run_dir}")  # fmt: skip
    assert result.returncode == 2, output(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert errors[0].startswith("error: a chunk of 100000000 instances x 256 neurons")
    assert "smaller chunk_size" in errors[0] and "output.neurons=false" in errors[0]
    assert not list(run_dir.glob("chunks/*.parquet"))  # not even the nominal instance ran


@pytest.mark.parametrize("where", ["prepare", "run"])
def test_ctrl_c_while_planning_or_simulating_exits_130(
    where: str, tmp_path: Path, monkeypatch
) -> None:
    """Ctrl-C (KeyboardInterrupt) in planning or simulating: exit 130 and how to resume."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, where, interrupted)
    result = runner("backend=reference", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 130, output(result)
    assert f"resume with `python -m runner <same overrides> hydra.run.dir={tmp_path}`" in (
        result.stderr
    )
