"""Command-line overrides checked against conf/ and the schema before Hydra composes them.

Hydra answers a misspelt group (`netwrok=ei_4core`) with advice to append it
(`+netwrok=ei_4core`), and a misspelt option with its config search path. Here either
stops the run with one line that names the override, suggests the closest valid name and
lists the valid ones. Hydra's own overrides (`hydra.*`, `hydra/launcher=...`) and package
overrides (`group@pkg=...`) are left to Hydra; so are values (Hydra and the schema check
their types), whose errors `one_line` turns into one line naming the override or key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import io
import types
import typing
from pathlib import Path
from typing import Any

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.errors import OverrideParseException
from omegaconf.errors import OmegaConfBaseException

from runner.study.schema import RunnerConfig
from runner.util.names import did_you_mean

__all__ = ["OverrideError", "REMOVED_KEYS", "check_overrides", "group_options", "one_line"]

# Keys that existed once, and what replaced them: named in the error instead of "no key".
REMOVED_KEYS = {
    "stimulus.frozen": "stimulus.frozen was removed: use stimulus.trials=K (every chip and the "
    "nominal instance run trials 0..K-1; K=1 is the old frozen=true)",
}


class OverrideError(ValueError):
    """A command-line override names a group, option or key that does not exist."""


def group_options(conf_dir: Path) -> dict[str, list[str]]:
    """Config group -> its options: conf/ folders holding .yaml files (Hydra's own excluded)."""
    return {
        folder.name: sorted(path.stem for path in folder.glob("*.yaml"))
        for folder in sorted(conf_dir.iterdir())
        if folder.is_dir() and folder.name != "hydra" and any(folder.glob("*.yaml"))
    }


def _unwrap_optional(node: Any) -> Any:
    """`X | None` -> X; anything else unchanged."""
    arguments = [a for a in typing.get_args(node) if a is not type(None)]
    is_union = typing.get_origin(node) in (typing.Union, types.UnionType)
    return arguments[0] if is_union and len(arguments) == 1 else node


def _unknown_key(path: str) -> str | None:
    """Why a dotted key is not in the schema, or None. Free-form nodes (generator params,
    `Any` values) end the walk: what lies below them is checked where it is used."""
    node: Any = RunnerConfig
    parts = path.split(".")
    for depth, part in enumerate(parts):
        node = _unwrap_optional(node)
        where = ".".join(parts[:depth]) or "the config"
        if dataclasses.is_dataclass(node):
            fields = typing.get_type_hints(node)
            if part not in fields:
                return (
                    f"no key {part!r} in {where}{did_you_mean(part, fields)}; "
                    f"its keys: {', '.join(fields)}"
                )
            node = fields[part]
        elif typing.get_origin(node) is list:
            if not part.isdigit():
                return f"{where} is a list: expected an index, got {part!r}"
            node = typing.get_args(node)[0]
        elif node in (int, float, str, bool) or (
            isinstance(node, type) and issubclass(node, enum.Enum)
        ):
            return f"{where} is a value, not a group of keys"
        else:
            return None
    return None


def _option_names(override: Override) -> list[str]:
    """The options a group override selects (one, or each of a sweep); [] for globs."""
    if override.is_choice_sweep() and override.value_type != ValueType.GLOB_CHOICE_SWEEP:
        return list(override.sweep_string_iterator())
    value = override.value()
    if isinstance(value, list):
        return [str(item) for item in value]
    return [] if value is None or override.is_sweep_override() else [str(value)]


def _check(override: Override, groups: dict[str, list[str]], check_options: bool) -> None:
    key = override.key_or_group
    line = override.input_line or key
    head = key.replace("/", ".").split(".")[0]
    top_level = list(typing.get_type_hints(RunnerConfig))
    if head not in groups and head not in top_level:
        names = sorted(set(groups) | set(top_level))
        raise OverrideError(
            f"{line}: no config group or key {head!r}{did_you_mean(head, names)}; groups: "
            f"{', '.join(groups)}; keys: {', '.join(top_level)}"
        )
    if key in groups:
        if override.is_delete() or not check_options:
            return
        for option in _option_names(override):
            if option not in groups[key]:
                raise OverrideError(
                    f"{line}: no option {option!r} in config group {key}"
                    f"{did_you_mean(option, groups[key])}; options: {', '.join(groups[key])}"
                )
        return
    if key in REMOVED_KEYS:
        raise OverrideError(f"{line}: {REMOVED_KEYS[key]}")
    reason = _unknown_key(key)
    if reason is not None:
        raise OverrideError(f"{line}: {reason}")


def check_overrides(argv: list[str], conf_dir: Path) -> None:
    """Raise OverrideError for the first override of `argv` (the command line after
    `python -m runner`) whose group, option or key does not exist. Overrides Hydra cannot
    parse are left to Hydra, which reports them itself."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            arguments, _ = get_args_parser().parse_known_args(argv)
        overrides = OverridesParser.create().parse_overrides(arguments.overrides)
    except (SystemExit, Exception):  # Hydra reports its own usage and syntax errors next
        return
    groups = group_options(conf_dir)
    # Another config dir or search path may hold further options: only check names then.
    check_options = arguments.config_dir is None and not any(
        o.key_or_group == "hydra.searchpath" for o in overrides
    )
    for override in overrides:
        if not override.is_hydra_override() and override.package is None:
            _check(override, groups, check_options)


def one_line(error: Exception) -> str:
    """Hydra's or OmegaConf's error as one line that names the override or key."""
    if isinstance(error, OverrideError):
        return str(error)
    lines = [str(error).splitlines()[0]] if str(error) else [type(error).__name__]
    if isinstance(error, OverrideParseException):
        lines.insert(0, f"cannot parse the override {error.override!r}")
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException):
        lines.append(str(cause).splitlines()[0])
    key = getattr(cause if cause is not None else error, "full_key", None)
    return "; ".join(lines) + (f" (at {key})" if key else "")
