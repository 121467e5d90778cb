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

from .model import CURRENT_NAMES, LAYOUT_NAMES

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


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a spec file into keyword fields (per-cluster currents as lists)."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            fields = {key: data[key] for key in data.files}
        fields = {key: value.item() if value.ndim == 0 else value for key, value in fields.items()}
    elif path.suffix == ".json":
        fields = json.loads(path.read_text())
    else:
        raise ValueError(f"network.file must end in .npz or .json, got {path}")
    unknown = sorted(set(fields) - set(SPEC_FIELDS))
    if unknown:
        raise ValueError(
            f"{path}: unknown spec field(s) {unknown}; expected some of {list(SPEC_FIELDS)}"
        )
    for required in ("n_cluster", "core_map"):
        if required not in fields:
            raise ValueError(f"{path}: the spec file has no {required!r}")
    fields["n_cluster"] = int(fields["n_cluster"])
    for name in CURRENT_NAMES:
        if name in fields:
            fields[name] = [_plain(np.asarray(entry)) for entry in fields[name]]
    return fields
