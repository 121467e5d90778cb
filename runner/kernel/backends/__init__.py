"""Backends: the same `Batch` in, the same `BatchResult` out.

- "reference": plain NumPy (`reference.py`), float32 or float64, the ground truth.
- "cpu": the CUDA kernel source compiled for the host with OpenMP (`cpu.py`).
- "cuda": the kernel through CuPy/NVRTC on a GPU (`cuda.py`).
- "auto": cuda if a GPU is usable, else cpu if the kernel compiles here, else reference
  (with one warning saying why: the reference is about 65x slower than cpu).

Each backend module is a `Backend`: `run(batch) -> BatchResult` and
`unavailable() -> str | None` (None when usable, otherwise why not).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Protocol, cast

from runner.kernel.batch import Batch, BatchResult

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "resolve_backend", "get_backend"]

BACKENDS = ("reference", "cpu", "cuda")
_AUTO_ORDER = ("cuda", "cpu", "reference")
log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (no CuPy, no GPU, no compiler): the message says why."""


class Backend(Protocol):
    """What every backend module offers (the modules themselves implement it)."""

    def run(self, batch: Batch) -> BatchResult:
        """Integrate every instance of `batch`; the same result on every backend."""
        ...

    def unavailable(self) -> str | None:
        """None when the backend can run here, otherwise why not."""
        ...


def _module(name: str) -> Backend:
    """The backend module `name`, imported when first asked for (cuda needs CuPy)."""
    return cast(Backend, importlib.import_module(f"{__name__}.{name}"))


def _unusable(name: str) -> str | None:
    """Why backend `name` cannot run here, or None. For cpu this includes compiling a probe
    build (cached on disk): a compiler that is present can still fail on the kernel."""
    reason = _module(name).unavailable()
    if reason is None and name == "cpu":
        try:
            importlib.import_module(f"{__name__}.cpu").build(1)
        except Exception as error:  # any build failure means: fall back, and say why
            reason = f"the CPU build failed: {str(error).strip()}"
    return reason


@functools.cache
def _resolve_auto() -> str:
    """The first usable backend of _AUTO_ORDER; decided (and warned about) once per process."""
    reasons = []
    for candidate in _AUTO_ORDER:
        reason = _unusable(candidate)
        if reason is None:
            break
        reasons.append(f"{candidate}: {reason}")
    else:
        raise BackendUnavailable("no backend is usable: " + "; ".join(reasons))
    if candidate == "reference":
        log.warning("backend=auto falls back to 'reference', about 65x slower than 'cpu' (%s)",
                    "; ".join(reasons))  # fmt: skip
    else:
        log.info("backend=auto chose %r%s", candidate,
                 "" if not reasons else f" ({'; '.join(reasons)})")  # fmt: skip
    return candidate


def _check_cpu_target() -> None:
    """A chosen $DYNAPSIM_CPU_TARGET that cannot work is an error, for auto too: never a
    silent fall back to the much slower reference."""
    try:
        importlib.import_module(f"{__name__}.cpu").check_target()
    except ValueError as error:
        raise BackendUnavailable(f"backend=cpu: {error}") from None


def resolve_backend(name: str) -> str:
    """'auto' -> the first usable backend; a named one is checked to be usable."""
    if name in ("auto", "cpu"):
        _check_cpu_target()
    if name == "auto":
        return _resolve_auto()
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")
    reason = _module(name).unavailable()
    if reason is not None:
        raise BackendUnavailable(f"backend={name} is not usable here: {reason}")
    return name


def get_backend(name: str) -> Callable[[Batch], BatchResult]:
    """The `run` function of a backend, after resolving 'auto'."""
    return _module(resolve_backend(name)).run
