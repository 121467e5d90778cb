"""Checks of a multirun's own settings before its first job: the extras a launcher or
sweeper needs, and a calibration study's search space, trial count and direction.

Hydra's Optuna sweeper validates nothing before it starts: a log interval with a bound
<= 0, a reversed interval, an unknown direction or `n_trials=0` end in an Optuna traceback,
and a space that can propose a negative current aborts the whole study at its first trial.
Here each stops the command with one line naming the setting, before any trial runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

from runner.cli.overrides import OverrideError
from runner.study.schema import register_configs

__all__ = ["EXTRAS", "check_extras", "check_study_settings"]

# The Hydra plugin each group option needs, and the extra that installs it.
EXTRAS = {
    ("hydra/sweeper", "calibrate"): ("hydra_plugins.hydra_optuna_sweeper", "calibrate"),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "calibrate"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}
_DIRECTIONS = ("minimize", "maximize")
_OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_extras(overrides: list[str]) -> None:
    """A group option whose Hydra plugin is not installed is named with its install
    command (Hydra alone says only "Could not load 'hydra/sweeper/optuna'")."""
    for line in overrides:
        group, _, option = line.partition("=")
        needed = EXTRAS.get((group.lstrip("+~"), option))
        if needed is not None and not _installed(needed[0]):
            raise OverrideError(
                f"{line} needs the {needed[1]} extra: pip install \"dynapsim-runner[{needed[1]}]\" "
                f"(in a checkout: pip install -e \".[{needed[1]}]\")"
            )


def _check_dimension(key: str, value: Any) -> None:
    """One search-space dimension: a sane interval, range or choice; currents >= 0."""
    key = key.removeprefix("hydra.sweeper.params.")
    where = f"hydra.sweeper.params.{key}"
    current = key.startswith("network.currents.")
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if not low < high:
            raise OverrideError(f"{where}: interval({low}, {high}) must have start < end")
        if "log" in value.tags and low <= 0:
            raise OverrideError(f"{where}: a log interval needs a start > 0, got {low}")
        if current and low < 0:
            raise OverrideError(f"{where}: a current [A] cannot be negative, got start {low}")
    elif isinstance(value, RangeSweep):
        if not (value.stop - value.start) * (value.step or 1) > 0:
            raise OverrideError(f"{where}: range({value.start}, {value.stop}) proposes nothing")
        if current and min(value.start, value.stop) < 0:
            raise OverrideError(f"{where}: a current [A] cannot be negative")
    elif isinstance(value, ChoiceSweep):
        if not value.list:
            raise OverrideError(f"{where}: choice() proposes nothing")
        if current and any(isinstance(v, int | float) and v < 0 for v in value.list):
            raise OverrideError(f"{where}: a current [A] cannot be negative, got {value.list}")


def _check_optuna(sweeper: Mapping[str, Any]) -> None:
    n_trials = sweeper.get("n_trials")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise OverrideError(f"hydra.sweeper.n_trials must be an int >= 1, got {n_trials!r}")
    direction = sweeper.get("direction")
    directions = direction if isinstance(direction, list) else [direction]
    for name in directions:
        if str(getattr(name, "name", name)) not in _DIRECTIONS:
            raise OverrideError(
                f"hydra.sweeper.direction must be one of {', '.join(_DIRECTIONS)}, got {name!r}"
            )
    parser = OverridesParser.create()
    for key, text in (sweeper.get("params") or {}).items():
        (override,) = parser.parse_overrides([f"{key}={text}"])
        _check_dimension(key, override.value())


def check_study_settings(overrides: list[str], conf_dir: Path) -> None:
    """The extras the overrides' launcher or sweeper needs, then, when they choose the
    Optuna sweeper, its settings: the composed `hydra.sweeper` and the dimensions given on
    the command line (sweep overrides). An OverrideError names the first bad one."""
    check_extras(overrides)
    sweepers = [line.partition("=")[2] for line in overrides
                if line.partition("=")[0].lstrip("+") == "hydra/sweeper"]  # fmt: skip
    if not set(sweepers) & {"calibrate", "optuna"}:
        return
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    register_configs()  # the schema composition starts from
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=fixed, return_hydra_config=True)
    _check_optuna(cfg.hydra.sweeper)
    for override in parsed:
        if override.is_sweep_override():
            _check_dimension(override.key_or_group, override.value())
