"""A run folder is exactly what its config says: identity, checked chunk files, one writer.

Damaged, foreign or partial chunk files are moved aside and simulated again, so the tables
always equal an uninterrupted run; a folder of another experiment, one in use by another
invocation or one that cannot be written is refused before anything in it changes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import runner
import runner.report.figures as plots
import runner.study.run as experiment_run
import runner.study.simulate as simulate
from runner.study.outcome import Outcome
from runner.study.prepare import prepare
from runner.study.run_folder import ExperimentMismatch, RunFolderError
from runner.util.atomic_files import write_atomic
from runner.util.paths import CONF_DIR
from tests.helpers import ROOT
from tests.helpers.cli import main_in_process
from tests.helpers.config import compose_config
from tests.helpers.fixtures import copy_run
from tests.helpers.studies import run_study as run
from tests.helpers.studies import study_config as config
from tests.helpers.studies import tables

CHUNK = "000000008-000000015"  # the middle of the three chunks of 8 rows (2 x 6 chips x 2)
FIRST = "000000000-000000007"


def assert_tables(run_dir: Path, expected: dict[str, pd.DataFrame]) -> None:
    for name, table in tables(run_dir).items():
        pd.testing.assert_frame_equal(table, expected[name], obj=name)


def experiment_record(run_dir: Path) -> bytes:
    return (run_dir / "chunks" / "experiment.json").read_bytes()


# --- identity -------------------------------------------------------------------------


def test_the_identity_holds_the_format_version(complete_study: Path) -> None:
    recorded = json.loads(experiment_record(complete_study))
    assert recorded["identity"]["format_version"] == runner.FORMAT_VERSION
    assert recorded["config"]["seed"] == 0


def test_a_difference_is_named_by_its_dotted_key(tmp_path: Path, complete_study: Path) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    before = experiment_record(run_dir)
    with pytest.raises(ExperimentMismatch) as refused:
        run(run_dir, "network.currents.Idc=3e-12", "sweep.axes.0.values=[0.1,0.2]")
    message = str(refused.value)
    assert "network.currents.Idc" in message
    assert "sweep.axes.0.values.1: 0.3 in the folder, 0.2 now" in message
    assert experiment_record(run_dir) == before  # the refused run changed nothing


def test_a_resume_with_neuron_tables_switched_on_is_refused(tmp_path: Path) -> None:
    run(tmp_path, "output.neurons=false")
    with pytest.raises(ExperimentMismatch, match=r"output\.neurons: False in the folder"):
        run(tmp_path, "output.neurons=true")


def test_figures_do_not_change_the_identity(tmp_path: Path, complete_study: Path) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run, figures on
    assert run(run_dir, "output.figures=false").simulated == 0
    outcome = run(run_dir, "output.figures=true")
    assert outcome.simulated == 0


def test_an_edited_spec_file_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "net.json"
    shutil.copy(CONF_DIR / "network" / "specs" / "example_2core.json", spec)

    def run_spec(run_dir: Path) -> Outcome:
        overrides = ["backend=reference", "network=from_file", f"network.file={spec}",
                     "stimulus.n_steps=200", "sweep.n_samples=4"]  # fmt: skip
        cfg = compose_config(overrides)
        return experiment_run.run(prepare(cfg), run_dir, progress=False)

    run_spec(tmp_path / "run")
    edited = json.loads(spec.read_text())
    edited["Idc"] = [value * 3 for value in edited["Idc"]]
    spec.write_text(json.dumps(edited))
    with pytest.raises(ExperimentMismatch, match=rf"files\.network\.file={spec}"):
        run_spec(tmp_path / "run")
    # a new folder gets the edited network (the file is read again, not served from a cache)
    fresh = run_spec(tmp_path / "fresh")
    old = pd.read_parquet(tmp_path / "run" / "instances.parquet")
    assert not fresh.instances["mean_rate_hz"].equals(old["mean_rate_hz"])


# --- chunk files ----------------------------------------------------------------------


def _empty(path: Path, other: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path, other: Path) -> None:
    path.write_bytes(b"PAR1 not a table")


def _foreign(path: Path, other: Path) -> None:
    """Another chunk's file under this chunk's name (ids do not match the name)."""
    shutil.copy(other, path)


def _symlink(path: Path, other: Path) -> None:
    path.unlink()
    path.symlink_to(other)


@pytest.mark.parametrize("damage", [_empty, _truncated, _garbage, _foreign, _symlink])
@pytest.mark.parametrize("kind", ["instances", "neurons", "cores"])
def test_a_bad_chunk_file_is_moved_aside_and_simulated_again(
    tmp_path: Path, complete, complete_study: Path, caplog, damage, kind: str
) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    chunks = run_dir / "chunks"
    damage(chunks / f"{CHUNK}.{kind}.parquet", chunks / f"{FIRST}.{kind}.parquet")
    with caplog.at_level(logging.WARNING, logger="runner.study.run_folder"):
        outcome = run(run_dir)
    assert outcome.simulated == 8
    assert any(CHUNK in r.getMessage() and "simulated again" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert sorted(p.name for p in (chunks / "rejected").rglob("*.parquet")) == sorted(
        f"{CHUNK}.{k}.parquet" for k in ("instances", "neurons", "cores")
    )
    assert_tables(run_dir, complete)


def test_a_missing_neurons_file_of_a_finished_chunk_is_simulated_again(
    tmp_path: Path, complete, complete_study: Path
) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    (run_dir / "chunks" / f"{CHUNK}.neurons.parquet").unlink()
    assert run(run_dir).simulated == 8
    assert_tables(run_dir, complete)


def test_a_truncated_nominal_file_is_simulated_again(
    tmp_path: Path, complete, complete_study: Path
) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    _truncated(run_dir / "chunks" / "nominal-p00001.neurons.parquet", Path())
    run(run_dir)
    assert (run_dir / "chunks" / "rejected").is_dir()
    assert_tables(run_dir, complete)


def test_atomic_writes_do_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    """The old temporary name (pid-based) was predictable and opened without O_EXCL."""
    target = tmp_path / "outside.txt"
    target.write_text("keep")
    folder = tmp_path / "chunks"
    folder.mkdir()
    (folder / f".tmp-{os.getpid()}-table.bin").symlink_to(target)
    write_atomic(folder / "table.bin", lambda stream: stream.write(b"new"))
    assert target.read_text() == "keep"
    assert (folder / "table.bin").read_bytes() == b"new"
    assert not (folder / "table.bin").is_symlink()
    umask = os.umask(0o022)
    os.umask(umask)
    assert (folder / "table.bin").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would


# --- one writer at a time, writable folders -------------------------------------------

_HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from runner.study.run_folder import ChunkStore
    store = ChunkStore(Path(sys.argv[1]))
    store.lock()
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def locked_folder(tmp_path: Path):
    """A run folder held by another process (the lock of a running invocation)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(tmp_path)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield tmp_path, holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_invocation_is_refused_at_once(locked_folder, complete, monkeypatch) -> None:
    folder, holder = locked_folder
    theirs = folder / "chunks" / f".tmp-{FIRST}.instances.parquet.x"
    theirs.write_bytes(b"being written")
    monkeypatch.setattr(simulate, "get_backend", lambda name: pytest.fail("simulated"))
    with pytest.raises(RunFolderError, match=rf"in use by another invocation \(pid {holder.pid}\)"):
        run(folder)
    assert theirs.exists()  # never deleted from under the running invocation
    holder.kill()
    holder.wait()
    monkeypatch.undo()
    run(folder)  # the dead holder's lock file does not block; its temporary file is cleared
    assert not theirs.exists()
    assert_tables(folder, complete)


def test_the_cli_refuses_a_folder_in_use_with_one_line(locked_folder) -> None:
    folder, holder = locked_folder
    result = main_in_process("backend=reference", f"hydra.run.dir={folder}")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run folder "), result.stderr
    assert str(folder) in lines[0] and "in use" in lines[0]
    assert not (folder / ".hydra").exists()  # a refused start writes no description


def test_a_read_only_folder_is_refused_before_simulating(tmp_path: Path, monkeypatch) -> None:
    """A read-only mount: creating a file fails whoever we are (root included)."""
    read_only(tmp_path, monkeypatch)
    monkeypatch.setattr(simulate, "get_backend", lambda name: pytest.fail("simulated"))
    with pytest.raises(RunFolderError, match=rf"run folder {tmp_path}.* is not writable"):
        run(tmp_path)
    assert not (tmp_path / "chunks" / "experiment.json").exists()


def read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`folder` as on a read-only mount: creating or writing a file in it fails, whoever we
    are (root included)."""
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)


@pytest.mark.parametrize("existing", [[], ["chunks"]])
def test_the_cli_refuses_a_read_only_folder_with_one_line(
    tmp_path: Path, existing, monkeypatch
) -> None:
    folder = tmp_path / "run"
    for name in ["", *existing]:
        (folder / name).mkdir(exist_ok=True)
    read_only(folder, monkeypatch)
    result = main_in_process("backend=reference", f"hydra.run.dir={folder}")
    monkeypatch.undo()
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: run folder {folder} is not writable (Read-only file system): "
        "use a writable hydra.run.dir"
    ]
    assert sorted(p.name for p in folder.iterdir()) == existing  # not even runner.log


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_a_folder_without_write_permission_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "chunks").mkdir(parents=True)
    (run_dir / "chunks").chmod(0o555)
    try:
        with pytest.raises(RunFolderError, match="is not writable"):
            run(run_dir)
    finally:
        (run_dir / "chunks").chmod(0o755)


# --- non-finite results and the summary -----------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_nominal_instance_is_flagged(tmp_path: Path, monkeypatch) -> None:
    """Point 1's DC current overflows the membrane: nominal and samples all blow up; the
    summary, the neurons table and the figures flag or leave out every such row."""
    plan = prepare(config("sweep.axes.0.path=network.currents.Idc",
                                     "sweep.axes.0.values=[5e-13,1e30]"))  # fmt: skip
    outcome = experiment_run.run(plan, tmp_path, progress=False)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["nominal_nonfinite"].tolist() == [False, True]
    assert np.isfinite(summary["nominal_mean_rate_hz"][0])
    assert np.isnan(summary["nominal_mean_rate_hz"][1])
    assert [json.loads(ids) for ids in summary["nonfinite_instances"]] == [[], list(range(12, 24))]
    assert [json.loads(ids) for ids in summary["nonfinite_chips"]] == [[], list(range(6))]
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    assert chips["n_nonfinite_trials"].tolist() == [0] * 6 + [2] * 6
    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    flagged = neurons.groupby("instance")["nonfinite"].agg(["all", "any"])
    expected = outcome.instances.set_index("instance")["nonfinite"]
    pd.testing.assert_series_equal(flagged["all"], expected, check_names=False)
    pd.testing.assert_series_equal(flagged["any"], expected, check_names=False)

    plotted = {}
    monkeypatch.setattr(
        plots,
        "plot_rates",
        lambda rates, nominal, *args: plotted.update(rates=rates, nominal=nominal)
        or Figure(),
    )
    plots.write_figures(plan, outcome, tmp_path)  # fmt: skip
    assert set(plotted["rates"]["point"]) == {0} and len(plotted["rates"]) == 12 * 16
    assert set(plotted["nominal"]["point"]) == {0}


def test_summary_reads_back_an_empty_list_of_non_finite_instances(complete_study: Path) -> None:
    summary = pd.read_csv(complete_study / "summary.csv")
    assert [json.loads(ids) for ids in summary["nonfinite_instances"]] == [[], []]
    assert [json.loads(ids) for ids in summary["nonfinite_chips"]] == [[], []]
