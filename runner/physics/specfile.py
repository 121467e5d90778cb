"""Network specs on disk: `.npz` or `.json` files holding `dynapsim_net_from_spec`'s fields.

Fields: n_cluster, core_map, weights_in, weights_rec (absent or null: none), any of the 13
bias currents (one entry per core: a number or that core's per-neuron list), any layout
constant, Iscale, dt, percent_mismatch. Use `save_spec_file` to write one from arrays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from runner.physics.parameters import CURRENT_NAMES, LAYOUT_NAMES
from runner.util.files import unreadable_as_error
from runner.util.names import did_you_mean

__all__ = ["SPEC_FIELDS", "load_spec_file", "save_spec_file"]

SPEC_FIELDS: tuple[str, ...] = (
    ("n_cluster", "core_map", "weights_in", "weights_rec", "Iscale", "dt", "percent_mismatch")
    + CURRENT_NAMES
    + LAYOUT_NAMES
)


def _plain(value: Any) -> Any:
    """numpy -> JSON-able Python values (lists, floats, ints); per-cluster lists may be ragged."""
    if isinstance(value, list | tuple):
        return [_plain(entry) for entry in value]
    return np.asarray(value).tolist()


def save_spec_file(path: str | Path, **fields: Any) -> Path:
    """Write a spec file (.npz or .json) from `dynapsim_net_from_spec` keyword fields."""
    path = Path(path)
    unknown = sorted(set(fields) - set(SPEC_FIELDS))
    if unknown:
        raise TypeError(f"unknown spec field(s) {unknown}; expected some of {list(SPEC_FIELDS)}")
    fields = {key: value for key, value in fields.items() if value is not None}
    if path.suffix == ".npz":
        np.savez_compressed(path, **{key: np.asarray(value) for key, value in fields.items()})
    elif path.suffix == ".json":
        path.write_text(json.dumps({key: _plain(v) for key, v in fields.items()}))
    else:
        raise ValueError(f"spec file must end in .npz or .json, got {path}")
    return path


def _read(path: Path) -> dict[str, Any]:
    """The file's fields, or a ValueError naming the file when it cannot be read."""
    if path.suffix not in (".npz", ".json"):
        raise ValueError(f"network.file must end in .npz or .json, got {path}")
    with unreadable_as_error(path, "network.file"):
        if path.suffix == ".npz":
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive of fields")
            with data:
                arrays = {key: data[key] for key in data.files}
            fields = {key: v.item() if v.ndim == 0 else v for key, v in arrays.items()}
        else:
            fields = json.loads(path.read_text())
    if not isinstance(fields, dict):
        raise ValueError(
            f"network.file {path}: expected a JSON object of spec fields, "
            f"got a {type(fields).__name__}"
        )
    return {key: value for key, value in fields.items() if value is not None}  # null: absent


def _field_error(path: Path, name: str, expected: str, value: Any) -> ValueError:
    if isinstance(value, np.ndarray):
        shown = f"an array of shape {value.shape} and dtype {value.dtype}"
    elif isinstance(value, list):
        shown = f"a list of {len(value)} entries"
    else:
        shown = f"{value!r} ({type(value).__name__})"
    return ValueError(f"network.file {path}: field {name} must be {expected}, got {shown}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


def _numeric_array(value: Any) -> np.ndarray | None:
    """The value as a real array, or None when it is not one (text, complex, ragged)."""
    try:
        array = np.asarray(value)
    except ValueError:
        return None
    if array.dtype.kind not in "iuf":
        return None
    return array


def _check_fields(path: Path, fields: dict[str, Any]) -> None:
    """Types of every field (shapes against each other are NetworkSpec's to check)."""
    n_cluster = fields["n_cluster"]
    if not (_is_number(n_cluster) and float(n_cluster).is_integer() and n_cluster >= 1):
        raise _field_error(path, "n_cluster", "an integer >= 1 (the number of cores)", n_cluster)
    fields["n_cluster"] = n_cluster = int(n_cluster)
    core_map = _numeric_array(fields["core_map"])
    if core_map is None or core_map.ndim != 1:
        raise _field_error(path, "core_map", "a list of integer core ids, one per neuron",
                           fields["core_map"])  # fmt: skip
    for name in ("weights_in", "weights_rec"):
        value = fields.get(name)
        if value is not None and ((array := _numeric_array(value)) is None or array.ndim != 2):
            raise _field_error(path, name, "a 2-D array of numbers (or absent)", value)
    for name in ("Iscale", "dt", "percent_mismatch"):
        if name in fields and not _is_number(fields[name]):
            raise _field_error(path, name, "a number", fields[name])
    for name in LAYOUT_NAMES:
        if name in fields and ((array := _numeric_array(fields[name])) is None or array.ndim > 1):
            raise _field_error(path, name, "a number or a list with one per neuron", fields[name])
    for name in CURRENT_NAMES:
        if name not in fields:
            continue
        value = fields[name]
        if not (isinstance(value, list) or (isinstance(value, np.ndarray) and value.ndim >= 1)):
            raise _field_error(path, name, f"a list with one entry per core (n_cluster="
                               f"{n_cluster}), each a number or that core's per-neuron list",
                               value)  # fmt: skip
        for core, entry in enumerate(value):
            if (array := _numeric_array(entry)) is None or array.ndim > 1:
                raise _field_error(path, f"{name}[{core}]", "a number or a list of that core's "
                                   "per-neuron values", entry)  # fmt: skip
        fields[name] = [_plain(np.asarray(entry)) for entry in value]


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a spec file into keyword fields (per-cluster currents as lists); a file that
    cannot be read or holds a field of the wrong type raises ValueError naming both."""
    path = Path(path)
    fields = _read(path)
    unknown = sorted(set(fields) - set(SPEC_FIELDS))
    if unknown:
        hints = "".join(did_you_mean(name, SPEC_FIELDS) for name in unknown)
        raise ValueError(
            f"network.file {path}: unknown spec field(s) {unknown}{hints}; expected some of "
            f"{list(SPEC_FIELDS)}"
        )
    for required in ("n_cluster", "core_map"):
        if required not in fields:
            raise ValueError(f"network.file {path}: the spec file has no {required!r}")
    _check_fields(path, fields)
    return fields
