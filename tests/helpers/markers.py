"""One skip marker per optional extra or device: a test that needs one skips without it.

    from tests.helpers.markers import requires_gpu

    @requires_gpu                       # a test
    pytestmark = requires_rockpool      # a whole module
    pytest.param("cuda", marks=requires_gpu)

Each `requires_*` is a list of marks: the skip, and where there is one the category marker
that selects such tests (`-m gpu`, `-m conformance`, `-m slurm`). `pip install -e ".[dev]"`
alone must collect and pass the suite: every test that needs an extra skips without it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import pytest

from runner.kernel.backends import cpu, cuda
from tests.helpers.slurm import slurm_available

__all__ = [
    "NVRTC_MISSING",
    "module_available",
    "requires_compiler",
    "requires_gpu",
    "requires_no_gpu",
    "requires_nvrtc",
    "requires_optuna_sweeper",
    "requires_rockpool",
    "requires_slurm",
    "requires_submitit",
    "slow",
]


class Requirement(list):
    """Marks that apply together: as a decorator, as `pytest.param(marks=...)`, or as a
    module's `pytestmark`."""

    def __call__(self, test: Callable[..., Any]) -> Callable[..., Any]:
        for mark in reversed(self):
            test = mark(test)
        return test


def module_available(name: str) -> bool:
    """`name` (dotted) can be imported; False, not an error, when a parent package is missing."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # find_spec imports the parents of a dotted name
        return False


def _nvrtc_missing() -> str | None:
    """Why NVRTC (CuPy's bindings and the nvidia-cuda-nvrtc wheel: the `gpu` extra) cannot
    compile here, or None. No GPU is needed."""
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as error:  # cupy, or the pip wheel nvidia-cuda-nvrtc, is not installed
        return str(error)
    return None


def _skip(reason: str | None) -> pytest.MarkDecorator:
    return pytest.mark.skipif(reason is not None, reason=str(reason))


NVRTC_MISSING = _nvrtc_missing()  # why NVRTC cannot compile here, or None
_NO_NVRTC = None if NVRTC_MISSING is None else f"NVRTC: {NVRTC_MISSING}"
_SUBMITIT = 'needs hydra-submitit-launcher: pip install -e ".[slurm]"'

# The host C++ compiler the cpu backend builds the kernel with (no extra: a toolchain).
requires_compiler = Requirement([_skip(cpu.unavailable())])

# CuPy and a CUDA device (the `gpu` extra and a GPU): the `gpu` category.
requires_gpu = Requirement([pytest.mark.gpu, _skip(cuda.unavailable())])

# The opposite: what a machine without a usable GPU is told.
requires_no_gpu = Requirement(
    [pytest.mark.skipif(cuda.unavailable() is None, reason="a GPU is usable here")]
)

# NVRTC from the `gpu` extra, without a GPU (CI compiles the kernel for sm_80/sm_90).
requires_nvrtc = Requirement([_skip(_NO_NVRTC)])

# Rockpool 3.1 and JAX (the `conformance` extra): the `conformance` category.
requires_rockpool = Requirement([
    pytest.mark.conformance,
    pytest.mark.skipif(
        not (module_available("rockpool") and module_available("jax")),
        reason='needs Rockpool 3.1 and JAX: pip install -e ".[conformance]"',
    ),
])  # fmt: skip

# hydra-submitit-launcher (the `slurm` extra): hydra/launcher=local and =slurm.
requires_submitit = Requirement([
    pytest.mark.skipif(not module_available("hydra_plugins.hydra_submitit_launcher"),
                       reason=_SUBMITIT),
])  # fmt: skip

# hydra-optuna-sweeper (the `calibrate` extra): hydra/sweeper=calibrate.
requires_optuna_sweeper = Requirement([
    pytest.mark.skipif(not module_available("hydra_plugins.hydra_optuna_sweeper"),
                       reason='needs hydra-optuna-sweeper: pip install -e ".[calibrate]"'),
])  # fmt: skip

# A running Slurm (CI starts one: .ci/slurm/start.sh) and the submitit launcher that
# submits to it: the `slurm` category.
requires_slurm = Requirement([
    pytest.mark.slurm,
    *requires_submitit,
    pytest.mark.skipif(not slurm_available(),
                       reason="needs a running Slurm (start one: .ci/slurm/start.sh)"),
])  # fmt: skip

# A long case: still run by `python -m pytest` (and CI); `-m "not slow"` leaves it out.
slow = pytest.mark.slow
