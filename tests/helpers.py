"""What many test files share: composing the shipped config, running the CLI, and whether
an optional part is here (one place decides, so a missing extra skips instead of failing).

`pip install -e ".[dev]"` alone must collect and pass the whole suite: the tests that need
the `slurm` extra (hydra-submitit-launcher) or the `calibrate` extra (hydra-optuna-sweeper)
skip without it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runner.util.paths import CONF_DIR

__all__ = ["ROOT", "compose_config", "run_cli", "module_available", "requires_submitit",
           "requires_optuna_sweeper"]  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent


def compose_config(overrides: list[str]) -> dict:
    """The shipped config with these overrides, as the plain dict `prepare` takes."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def run_cli(cwd: Path, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m runner OVERRIDES` from `cwd`, this checkout's runner, errors as users see
    them (no HYDRA_FULL_ERROR)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "runner", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


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
