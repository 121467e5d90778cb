"""Backends: the same `Batch` in, the same `BatchResult` out.

- "reference": plain NumPy (`reference.py`), float32 or float64, the ground truth.
- "cpu": the CUDA kernel source compiled for the host with OpenMP (`cpu.py`).
- "cuda": the kernel through CuPy/NVRTC on a GPU (`cuda.py`).
- "auto": cuda if a GPU is usable, else cpu if a compiler is, else reference.

Each backend module offers `run(batch) -> BatchResult` and `unavailable() -> str | None`
(None when usable, otherwise why not).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from types import ModuleType

from ..batch import Batch, BatchResult

__all__ = ["BACKENDS", "BackendUnavailable", "resolve_backend", "get_backend"]

BACKENDS = ("reference", "cpu", "cuda")
_AUTO_ORDER = ("cuda", "cpu", "reference")
log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (no CuPy, no GPU, no compiler): the message says why."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


@functools.cache
def _auto_choice() -> str:
    """The first usable backend, chosen (and logged) once per process."""
    reasons = []
    for candidate in _AUTO_ORDER:
        reason = _module(candidate).unavailable()
        if reason is None:
            log.info("backend=auto chose %r%s", candidate,
                     "" if not reasons else f" ({'; '.join(reasons)})")  # fmt: skip
            return candidate
        reasons.append(f"{candidate}: {reason}")
    raise BackendUnavailable("no backend is usable: " + "; ".join(reasons))


def resolve_backend(name: str) -> str:
    """'auto' -> the first usable backend; a named one is checked to be usable."""
    if name == "auto":
        return _auto_choice()
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")
    reason = _module(name).unavailable()
    if reason is not None:
        raise BackendUnavailable(f"backend={name} is not usable here: {reason}")
    return name


def get_backend(name: str) -> Callable[[Batch], BatchResult]:
    """The `run` function of a backend, after resolving 'auto'."""
    return _module(resolve_backend(name)).run
