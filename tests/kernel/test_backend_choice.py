"""backend=auto: the fastest usable backend, and one visible warning when it falls back to
the (much slower) reference, naming why the CPU build could not be used."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from runner.kernel import backends
from runner.kernel.backends import cpu, cuda, resolve_backend
from tests.helpers.cli import main_in_process
from tests.helpers.fixtures import CACHED_N, copy_cpu_build_cache
from tests.helpers.markers import requires_compiler

TINY = ["stimulus.n_steps=50", "sweep.n_samples=2"]


@pytest.fixture
def fresh_auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No GPU, an empty build cache, and auto's once-per-process decision forgotten."""
    monkeypatch.setattr(cuda, "unavailable", lambda: "no CUDA device")
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    backends._resolve_auto.cache_clear()
    cpu.build.cache_clear()
    yield
    backends._resolve_auto.cache_clear()
    cpu.build.cache_clear()


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_no_compiler_falls_back_with_one_warning(fresh_auto, monkeypatch, caplog) -> None:
    monkeypatch.setattr(cpu, "unavailable", lambda: "no C++ compiler found")
    with caplog.at_level(logging.INFO, logger="runner.kernel.backends"):
        assert resolve_backend("auto") == "reference"
        assert resolve_backend("auto") == "reference"
    (warning,) = fallback_warnings(caplog)
    assert "'reference'" in warning and "65x slower" in warning
    assert "cpu: no C++ compiler found" in warning and "cuda: no CUDA device" in warning


@requires_compiler
def test_a_failing_cpu_build_falls_back_and_says_why(fresh_auto, monkeypatch, caplog) -> None:
    monkeypatch.setenv("CXX", "false")  # found on PATH, fails every compile
    with caplog.at_level(logging.INFO, logger="runner.kernel.backends"):
        assert resolve_backend("auto") == "reference"
    (warning,) = fallback_warnings(caplog)
    assert "cpu: the CPU build failed: compiling" in warning


@requires_compiler
@pytest.mark.parametrize("target,said", [
    ("x86-64-v9", ["DYNAPSIM_CPU_TARGET=x86-64-v9: the compiler (", "does not know this target"]),
    ("-O0 x", ["DYNAPSIM_CPU_TARGET must be a -march value such as native, x86-64-v3"]),
])  # fmt: skip
@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_a_cpu_target_that_cannot_build_is_an_error_not_a_fallback(
    fresh_auto, monkeypatch, caplog, name: str, target: str, said: list[str]
) -> None:
    monkeypatch.setenv(cpu.CPU_TARGET_VARIABLE, target)
    with pytest.raises(backends.BackendUnavailable) as raised:
        resolve_backend(name)
    message = str(raised.value)
    assert message.startswith(f"backend=cpu: {said[0]}") and all(s in message for s in said)
    assert "\n" not in message and not fallback_warnings(caplog)


@requires_compiler
def test_a_working_cpu_build_is_chosen_without_warning(
    fresh_auto, monkeypatch, tmp_path: Path, cpu_build_cache: Path, caplog
) -> None:
    # the cache holds auto's probe build (N=1) already: the choice is under test, not the build
    assert CACHED_N == 1
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE",
                       str(copy_cpu_build_cache(cpu_build_cache, tmp_path / "cache")))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="runner.kernel.backends"):
        assert resolve_backend("auto") == "cpu"
    assert not fallback_warnings(caplog)


def test_the_cli_warns_once_and_finishes_on_the_reference(
    fresh_auto, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXX", "false")  # found on PATH, fails every compile
    done = main_in_process(*TINY, "backend=auto", "output.figures=false", "hydra.run.dir=run",
                           cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    assert shown.count("falls back to 'reference'") == 1, shown
    assert "the CPU build failed" in shown
    assert len(pd.read_parquet(tmp_path / "run" / "instances.parquet")) == 2
