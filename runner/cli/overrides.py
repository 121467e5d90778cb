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

import yaml
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
        if override.value() is None:
            raise OverrideError(
                f"{line}: a config group takes one of its options ({', '.join(groups[key])}); "
                f"to leave it out, use ~{key} (or do not name it)"
            )
        for option in _option_names(override):
            if option not in groups[key]:
                raise OverrideError(
                    f"{line}: no option {option!r} in config group {key}"
                    f"{did_you_mean(option, groups[key])}; options: {', '.join(groups[key])}; "
                    f"an option of your own: DIR/{key}/{option}.yaml with --config-dir DIR "
                    f"(or hydra.searchpath=[file://DIR])"
                )
        return
    if key in REMOVED_KEYS:
        raise OverrideError(f"{line}: {REMOVED_KEYS[key]}")
    reason = _unknown_key(key)
    if reason is not None:
        raise OverrideError(f"{line}: {reason}")


def _optional_blocks() -> list[str]:
    """Top-level keys whose block is null unless a group option sets it (`readout`)."""
    return [
        field.name for field in dataclasses.fields(RunnerConfig)
        if field.default is None and dataclasses.is_dataclass(
            _unwrap_optional(typing.get_type_hints(RunnerConfig)[field.name]))
    ]  # fmt: skip


def _sets_block(conf_dir: Path, group: str, option: str, block: str) -> bool:
    """Does option `option` of `group` set the top-level `block` (directly or by selecting
    its group in its defaults list)?"""
    path = conf_dir / group / f"{option}.yaml"
    if group == block or not path.is_file():
        return group == block
    node = yaml.safe_load(path.read_text()) or {}
    defaults = [next(iter(d)) if isinstance(d, dict) else str(d) for d in node.get("defaults", [])]
    return block in node or any(d.split()[-1].strip("/") == block for d in defaults)


def _check_blocks(overrides: list[Override], conf_dir: Path, groups: dict[str, list[str]]) -> None:
    """A key under a block that is null by default (`readout.kind=vote`) needs an override
    that sets the block: OmegaConf cannot merge a key into a null node."""
    chosen = [(o.key_or_group, option) for o in overrides if o.key_or_group in groups
              and not o.is_delete() for option in _option_names(o)]  # fmt: skip
    for block in _optional_blocks():
        for override in overrides:
            key = override.key_or_group
            if not key.startswith(f"{block}.") or override.is_hydra_override():
                continue
            if not any(_sets_block(conf_dir, g, option, block) for g, option in chosen):
                raise OverrideError(
                    f"{override.input_line or key}: there is no {block} block to change; choose "
                    f"one first ({block}={'|'.join(groups.get(block, []))}, or a task that "
                    f"sets it, e.g. task=patterns)"
                )


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
    if check_options:
        _check_blocks(overrides, conf_dir, groups)


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
    # Hydra re-raises differently under a debugger or tracer (coverage): the key may sit on
    # either exception, and both may carry the same message
    key = next((k for k in (getattr(e, "full_key", None) for e in (cause, error)) if k), None)
    return "; ".join(dict.fromkeys(lines)) + (f" (at {key})" if key else "")
