"""Every user error of `python -m runner` ends with one line `error: ...` on stderr that
names the override, field or file, exit status 2, no traceback, nothing simulated.
One case per way an error arises (override check, Hydra, the spec, files, the backend);
the full list of refused values is tested on `prepare` and the API.

The cases run `main()` in this process (`main_in_process`); a process of its own is started
only to show that the command prints the same (`test_a_process_prints_the_same_error`) and
for what only a process shows (HYDRA_FULL_ERROR's traceback)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from runner.kernel.backends import cuda
from tests.helpers.cli import main_in_process, run_cli
from tests.helpers.markers import requires_no_gpu, requires_submitit


def _corrupt_npz(folder: Path) -> list[str]:
    (folder / "net.npz").write_bytes(b"PK\x03\x04 cut short")
    return ["network=from_file", f"network.file={folder / 'net.npz'}"]


def _wrong_type_json(folder: Path) -> list[str]:
    (folder / "net.json").write_text(json.dumps({"n_cluster": "two", "core_map": [0, 0]}))
    return ["network=from_file", f"network.file={folder / 'net.json'}"]


def _scalar_for_a_list(folder: Path) -> list[str]:
    spec = {"n_cluster": 1, "core_map": [0, 0], "Itau_mem": 3e-12}
    (folder / "net.json").write_text(json.dumps(spec))
    return ["network=from_file", f"network.file={folder / 'net.json'}"]


def _empty_stimulus(folder: Path) -> list[str]:
    np.save(folder / "x.npy", np.zeros((0, 16)))  # the example network has 16 inputs
    return ["network=from_file", "stimulus=file", f"stimulus.file={folder / 'x.npy'}"]


CASES = [
    (lambda _: ["netwrok=ei_4core"], "did you mean 'network'?"),
    (lambda _: ["network=ei4core"],
     "did you mean 'ei_4core'?); options: ei_4core, ei_4core_float, feedforward"),
    (lambda _: ["network.dtt=1e-3"], "no key 'dtt' in network (did you mean 'dt'?)"),
    (lambda _: ["sweep.n_samples=lots"], "could not be converted to Integer (at sweep.n_samples)"),
    (lambda _: ["network=[a"], "cannot parse the override 'network=[a'"),
    (lambda _: ["seed=${nope}"], "Interpolation key 'nope' not found (at seed)"),
    (lambda _: ["metrics.within=nan"], "metrics.within must be a finite number >= 0"),
    (lambda _: ["stimulus.frozen=false"], "stimulus.frozen was removed: use stimulus.trials=K"),
    (lambda _: ["sweep=mismatch_robustness", "sweep.baseline=5"],
     "sweep.baseline must be a sweep point index in [0, 5), got 5"),
    (lambda _: ["sweep.pairing=same"], "sweep.pairing"),
    (lambda _: ["objective=rate_error_q95", "objective.statistic=q5"],
     "objective.statistic: unknown statistic 'q5'; one of mean, median"),
    (_corrupt_npz, "net.npz: cannot read it as a .npz file"),
    (_wrong_type_json, "net.json: field n_cluster must be an integer >= 1"),
    (_scalar_for_a_list, "net.json: field Itau_mem must be a list with one entry per core"),
    (_empty_stimulus, "x.npy must have shape (trials S >= 1, steps T >= 1, channels C >= 1), "
                      "got (1, 0, 16)"),
]


def assert_one_error_line(result, message: str, run_dir: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (run_dir / "chunks").exists()


@pytest.mark.parametrize("make,message", CASES, ids=[m for _, m in CASES])
def test_user_errors_end_with_one_line_and_status_2(tmp_path: Path, make, message: str) -> None:
    result = main_in_process("backend=reference", *make(tmp_path), "hydra.run.dir=run",
                             cwd=tmp_path)  # fmt: skip
    assert_one_error_line(result, message, tmp_path / "run")


def test_the_same_line_under_a_tracer(tmp_path: Path) -> None:
    """Hydra re-raises a composition error differently when the process is traced (a
    debugger, coverage): the line is the same, its key named once."""
    case = next(case for case in CASES if case[1].startswith("Interpolation key"))
    saved = sys.gettrace()
    sys.settrace(saved or (lambda frame, event, argument: None))
    try:
        result = main_in_process("backend=reference", *case[0](tmp_path), "hydra.run.dir=run",
                                 cwd=tmp_path)  # fmt: skip
    finally:
        sys.settrace(saved)
    assert_one_error_line(result, case[1], tmp_path / "run")
    assert result.stderr.count("not found") == 1


# an override refused before Hydra composes, and a spec file refused by `prepare` in the run
IN_A_PROCESS = [CASES[0], next(case for case in CASES if case[0] is _wrong_type_json)]


@pytest.mark.parametrize("make,message", IN_A_PROCESS, ids=["override", "spec file"])
def test_a_process_prints_the_same_error(tmp_path: Path, make, message: str) -> None:
    overrides = ["backend=reference", *make(tmp_path), "hydra.run.dir=run"]
    result = run_cli(*overrides, cwd=tmp_path)
    assert_one_error_line(result, message, tmp_path / "run")
    in_process = main_in_process(*overrides, cwd=tmp_path)
    assert (in_process.returncode, in_process.stderr) == (result.returncode, result.stderr)


@requires_no_gpu
def test_cuda_without_a_gpu_names_the_reason(tmp_path: Path) -> None:
    result = main_in_process("backend=cuda", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: backend=cuda is not usable here: {cuda.unavailable()}"
    assert not (tmp_path / "run" / "chunks").exists()


@requires_submitit  # hydra/launcher=local is submitit's local launcher
def test_hydra_flags_still_work(tmp_path: Path) -> None:
    result = main_in_process("--cfg", "job", "network=ei_4core", "hydra/launcher=local",
                             cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "name: ei_4core" in result.stdout


def test_hydra_full_error_keeps_the_traceback(tmp_path: Path) -> None:
    result = run_cli("sweep.n_samples=lots", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "sweep.n_samples" in result.stderr
