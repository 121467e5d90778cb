"""What a user sees: an error printed once (stderr; the log file keeps it too), and no ANSI
colour codes when the output is not a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_process

ROOT = Path(__file__).resolve().parents[2]
TINY = ["backend=reference", "network.neurons_per_core=16", "network.generator.params.n_inputs=8",
        "stimulus.n_steps=50", "sweep.n_samples=2"]  # fmt: skip


def runner(cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("HYDRA_FULL_ERROR", "NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "runner", *arguments], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_a_user_error_is_printed_once(tmp_path: Path) -> None:
    result = runner(tmp_path, "network.neurons_per_core=0", "hydra.run.dir=run")
    assert result.returncode == 2
    both = result.stdout + result.stderr
    assert both.count("network.neurons_per_core must be an int >= 1, got 0") == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: network.neurons_per_core")
    assert "must be an int >= 1" in (tmp_path / "run" / "runner.log").read_text()


def test_no_colour_codes_when_the_output_is_not_a_terminal(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    result = runner(tmp_path, "-m", "hydra/sweeper=calibrate", "hydra.sweeper.n_trials=1", *TINY,
                    "hydra.sweep.dir=study")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "A new study created" in result.stdout + result.stderr  # Optuna's own log line
    assert "\x1b[" not in result.stdout + result.stderr


def test_the_command_starts_without_scipy_stats_or_matplotlib(tmp_path: Path) -> None:
    """scipy.stats (~1 s to import) is imported when the summary's intervals are computed,
    matplotlib (~0.4 s) when figures are drawn, not by every `python -m runner` (a mistyped
    argument, a Slurm job with figures off) at start-up."""
    probe = ("import sys, runner.cli.main, runner.cli.collect; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib'}), "
             "'scipy.stats' in sys.modules)")  # fmt: skip
    result = run_process([sys.executable, "-c", probe], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "matplotlib" not in result.stdout and result.stdout.strip().endswith("False")
