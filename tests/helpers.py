"""Is an optional part here? One place decides, so a missing extra skips instead of failing.

`pip install -e ".[dev]"` alone must collect and pass the whole suite: the tests that need
the `slurm` extra (hydra-submitit-launcher) or the `calibrate` extra (hydra-optuna-sweeper)
skip without it.
"""

from __future__ import annotations

import importlib.util

import pytest

__all__ = ["module_available", "requires_submitit", "requires_optuna_sweeper"]


def module_available(name: str) -> bool:
    """`name` (dotted) can be imported; False, not an error, when a parent package is missing."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # find_spec imports the parents of a dotted name
        return False


requires_submitit = pytest.mark.skipif(
    not module_available("hydra_plugins.hydra_submitit_launcher"),
    reason='needs hydra-submitit-launcher: pip install -e ".[slurm]"',
)

requires_optuna_sweeper = pytest.mark.skipif(
    not module_available("hydra_plugins.hydra_optuna_sweeper"),
    reason='needs hydra-optuna-sweeper: pip install -e ".[calibrate]"',
)
