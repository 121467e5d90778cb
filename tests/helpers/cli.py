"""The command line, run two ways: in this process (fast: what a user sees, without paying
for a Python start, Hydra and the imports each time) or as `python -m runner ...` in a
process of its own (the end-to-end proof, and what a multirun launcher or Slurm needs).

Both return a `subprocess.CompletedProcess` (args, returncode, stdout, stderr), so a test
asserts the same things on either: the exit status, the one `error: ...` line on stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from tests.helpers import ROOT

__all__ = ["main_in_process", "collect_in_process", "run_process", "run_cli", "run_collect",
           "output", "ok"]  # fmt: skip


def run_process(
    command: list[str],
    cwd: Path,
    pythonpath: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """`command` in a process of its own from `cwd`, its output captured: the runner it
    imports is the one under `pythonpath` (this checkout, or an installed wheel), errors as
    users see them (no HYDRA_FULL_ERROR unless `env` sets it). `env`: variables set on top."""
    full_env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    full_env.pop("HYDRA_FULL_ERROR", None)
    full_env.update(env or {})
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    module: str = "runner",
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` from `cwd`, with this checkout's runner (see `run_process`)."""
    return run_process([sys.executable, "-m", module, *args], cwd, env=env, timeout=timeout)


def run_collect(sweep_dir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python -m runner.cli.collect SWEEP_DIR ARGS` in a process (see `run_cli`)."""
    return run_cli(str(sweep_dir), *args, module="runner.cli.collect", **kwargs)


def main_in_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m runner ARGS` as `runner.cli.main.main()` in this process, from `cwd`.

    The exit status is the SystemExit's (0 if main returns, 1 with the traceback on stderr
    if it raises); stdout and stderr are what it printed (Hydra's console log included, as
    in a process). For the call only: the working folder, sys.argv, HYDRA_FULL_ERROR off
    (main sets it), PYTHONPATH this checkout (for the processes a launcher starts) and
    Hydra's global state cleared; the root logger's handlers (Hydra replaces them with its
    console and runner.log handlers) are put back after it, so later tests log as before.
    """
    from runner.cli.main import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        if cwd is not None:
            patch.chdir(cwd)
        patch.setenv("HYDRA_FULL_ERROR", "0")  # so that main's "1" is undone after the call
        patch.setenv("PYTHONPATH", str(ROOT))  # for the processes a launcher starts
        patch.setattr(sys, "argv", ["runner", *args])
        GlobalHydra.instance().clear()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
            status = 0
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except Exception:  # what the interpreter does with it: the traceback, status 1
            traceback.print_exc(file=err)
            status = 1
        finally:
            GlobalHydra.instance().clear()
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
    return subprocess.CompletedProcess(["runner", *args], status, out.getvalue(),
                                       err.getvalue())  # fmt: skip


def collect_in_process(sweep_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m runner.collect SWEEP_DIR ARGS` as `runner.cli.collect.main` in this process:
    its exit status and what it printed."""
    from runner.cli.collect import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(sweep_dir), *args])
    return subprocess.CompletedProcess(["runner.collect", str(sweep_dir), *args], status,
                                       out.getvalue(), err.getvalue())  # fmt: skip


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, output(result)[-4000:]
    return result
