"""Fixtures shared by several test modules; the expensive ones are built once per session.

Session fixtures hand out folders that tests must not change: a test that damages or
extends a run copies it first (`copy_run`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from concurrent.futures import Future
from pathlib import Path

import pandas as pd
import pytest

from runner.study import sweep
from tests.helpers.cli import main_in_process, ok
from tests.helpers.studies import MULTIRUN_SMALL, run_study, tables

__all__ = ["made_chunks", "complete_study", "complete", "unsharded_multirun_run",
           "unsharded_multirun", "copy_run", "CACHED_N", "cpu_build_cache",
           "copy_cpu_build_cache", "nvrtc_compiled_at_200", "NVRTC_SYN_BITS"]  # fmt: skip


@pytest.fixture
def made_chunks(monkeypatch: pytest.MonkeyPatch) -> list[sweep.Chunk]:
    """Every `sweep.Chunk` object built while the test runs (planning must build few)."""
    made: list[sweep.Chunk] = []

    class CountedChunk(sweep.Chunk):
        def __init__(self, first: int, last: int) -> None:
            super().__init__(first, last)
            made.append(self)

    monkeypatch.setattr(sweep, "Chunk", CountedChunk)
    return made


def copy_run(run_dir: Path, to: Path) -> Path:
    """A private copy of a finished run folder (`to` must not exist yet)."""
    shutil.copytree(run_dir, to)
    return to


@pytest.fixture(scope="session")
def complete_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small study (tests.helpers.studies.STUDY) run to the end once: its folder."""
    run_dir = tmp_path_factory.mktemp("complete_study")
    run_study(run_dir)
    return run_dir


@pytest.fixture(scope="session")
def complete(complete_study: Path) -> dict[str, pd.DataFrame]:
    """The small study's instances and neurons tables, uninterrupted and unsharded."""
    return tables(complete_study)


@pytest.fixture(scope="session")
def unsharded_multirun_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    """MULTIRUN_SMALL as one plain `python -m runner` run (`main()` in this process): its
    folder and what it printed."""
    run_dir = tmp_path_factory.mktemp("unsharded") / "run"
    return run_dir, ok(main_in_process(*MULTIRUN_SMALL, f"hydra.run.dir={run_dir}"))


@pytest.fixture(scope="session")
def unsharded_multirun(unsharded_multirun_run: tuple[Path, subprocess.CompletedProcess]) -> Path:
    """The folder of MULTIRUN_SMALL run as one plain run: every merged sweep is compared
    with it."""
    return unsharded_multirun_run[0]


# The network size of the cached cpu build the cache tests share: the one backend=auto
# compiles to probe the compiler (`backends._unusable`), so that it is in a warm cache too.
CACHED_N = 1


@pytest.fixture(scope="session")
def cpu_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh private cache folder in which the cpu build for N=CACHED_N was compiled
    (once per session): tests copy it (`copy_cpu_build_cache`) instead of compiling again.
    Nothing may change it: a test of how the build is cached reads it as the build left it."""
    from runner.kernel.backends import cpu

    folder = tmp_path_factory.mktemp("cpu_build") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DYNAPSIM_RUNNER_CACHE", str(folder))
        cpu.build.cache_clear()
        try:
            cpu.build(CACHED_N)
        finally:
            cpu.build.cache_clear()
    return folder


def copy_cpu_build_cache(cpu_build_cache: Path, to: Path) -> Path:
    """A copy of the session's cache folder (modes kept: 0700 folder, 0700 library)."""
    shutil.copytree(cpu_build_cache, to)
    return to


# --- NVRTC compiles of the kernel, in the background ------------------------------------

_NVRTC_FIXTURE = "nvrtc_compiled_at_200"
# The builds compiled: the plain kernel (0) and the synaptic-mismatch ones (DYN_SYN_BITS)
NVRTC_SYN_BITS = (0, 1, 4, 8)
_nvrtc_compiles: dict[tuple[str, int], Future] = {}


def _start_nvrtc_compiles(threads: int) -> dict[tuple[str, int], Future]:
    """Compile the kernel for N=200 (7 warps, 4 neurons per thread, padding) for every
    architecture and NVRTC_SYN_BITS on `threads` daemon threads, the plain builds first
    (in the first test worker); NVRTC lets go of the GIL meanwhile."""
    from runner.kernel import nvrtc_check
    from runner.kernel.backends import cuda

    if _nvrtc_compiles:
        return _nvrtc_compiles
    warps_of_threads, _ = cuda.candidate_shapes(200)[0]
    shape = cuda.Shape(warps_of_threads, 4)
    jobs = [((arch, bits), Future()) for bits in NVRTC_SYN_BITS
            for arch in nvrtc_check.ARCHITECTURES]  # fmt: skip
    _nvrtc_compiles.update(jobs)
    # pytest-xdist workers compile the same reports (kept in the user's cache, one compile
    # of each at a time): each starts at its own share, then reads what the others compiled
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    start = worker * len(jobs) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    jobs = jobs[start:] + jobs[:start]

    def compile_all(mine: list[tuple[tuple[str, int], Future]]) -> None:
        for (arch, bits), future in mine:
            future.set_running_or_notify_cancel()
            try:
                future.set_result(nvrtc_check.compile_for(arch, 200, shape, bits))
            except BaseException as error:  # re-raised in the test that reads it
                future.set_exception(error)

    for worker in range(threads):
        mine = jobs[worker::threads]
        threading.Thread(target=compile_all, args=(mine,), daemon=True).start()
    return _nvrtc_compiles


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the NVRTC compiles at once when a selected test reads them: they take a core
    for minutes, and the tests before them (mostly one thread) leave one idle. With many
    tests before the first reader, one thread compiles while those run; else one thread
    per architecture."""
    readers = [index for index, item in enumerate(session.items)
               if _NVRTC_FIXTURE in getattr(item, "fixturenames", ())]  # fmt: skip
    if readers and not session.config.option.collectonly:
        from runner.kernel import nvrtc_check
        from tests.helpers.markers import NVRTC_MISSING

        if NVRTC_MISSING is None:
            _start_nvrtc_compiles(1 if readers[0] >= 100 else len(nvrtc_check.ARCHITECTURES))


@pytest.fixture(scope="session")
def nvrtc_compiled_at_200() -> dict[tuple[str, int], Future]:
    """(architecture, synaptic bits) -> the future `nvrtc_check.compile_for(arch, 200, shape,
    bits)` of the launch shape of 7 warps with 4 neurons per thread (padding slots
    included): started when the session's tests were collected, else now, one thread per
    architecture."""
    from runner.kernel import nvrtc_check

    return _start_nvrtc_compiles(threads=len(nvrtc_check.ARCHITECTURES))
