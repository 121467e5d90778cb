"""What an experiment *is*: everything that decides the numbers in its chunk files.

A run folder's chunks are reused only by an invocation with the same identity, and
`collect` labels and groups results by the identity stored with the chunks. It holds the
config sections that change the tables (`readout` only when there is one,
`network.quantize` only when it quantizes, `network.mismatch.weights` only when true, a sweep
axis's `paths` only on a joint axis and `readout.fit_point` only when set, so the identity of
a run without a task, with float weights, without synaptic mismatch, joint axes or a shared
readout is what it always was; never `network.hardware`, a check that changes no
number), the contents (SHA-256) of every spec, stimulus, dataset or readout file the sweep
points read, and the format version of the chunk files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.util.files import find_file

if TYPE_CHECKING:
    from runner.study.plan import Point

__all__ = [
    "FORMAT_VERSION",
    "IDENTITY_SECTIONS",
    "experiment_identity",
    "identity_digest",
    "flatten",
    "differences",
]

# Bump when the meaning or layout of chunk files changes: older folders are then refused.
# 3: rows are (point, chip, trial), mismatch keyed by chip (sweep.pairing), nominal per trial.
FORMAT_VERSION = 3

# Config sections that decide the chunk files (backend and shard do not; output.figures and
# the figure_* keys only draw from the tables, sweep.baseline and readout.target only change
# summary.csv).
IDENTITY_SECTIONS = ("network", "stimulus", "sweep", "seed", "chunk_size", "metrics", "output",
                     "readout")  # fmt: skip
_NOT_IDENTITY = {"output": ("figures", "figure_formats", "figure_dpi", "figure_width_in"),
                 "sweep": ("baseline",), "readout": ("target",),
                 "network": ("hardware",)}  # fmt: skip
_FLOAT_WEIGHTS = {"n_bits": None}  # network.quantize of a run that does not quantize
# network.mismatch.weights counts only when true (synaptic mismatch), like network.quantize


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _input_files(points: Iterable[Point]) -> dict[str, str]:
    """`key=path as given` -> SHA-256 of the file, for every file a sweep point reads."""
    files = {}
    for point in points:
        used = [("network.file", point.network_config.file)]
        if point.stimulus_config.kind.value in ("file", "dataset"):
            used.append(("stimulus.file", point.stimulus_config.file))
        if point.task is not None and point.task.config.kind == "linear":
            used.append(("readout.file", point.task.config.file))
        for key, given in used:
            if given and f"{key}={given}" not in files:
                files[f"{key}={given}"] = _file_digest(find_file(given, key))
    return files


def _unset_dropped(section: dict[str, Any], key: str) -> dict[str, Any]:
    """`section` without `key` when that is null: a key added later with a null default that
    keeps the numbers as they were leaves the identity of every earlier run as it was."""
    return {k: v for k, v in section.items() if not (k == key and v is None)}


def experiment_identity(config: Mapping[str, Any], points: Iterable[Point]) -> dict[str, Any]:
    """The identity of a config (as the plain values Hydra composed, which is what is stored
    and hashed) run over its built sweep `points` (JSON-ready)."""
    sections = {}
    for key in IDENTITY_SECTIONS:
        value = config.get(key)
        if key == "readout" and value is None:
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _NOT_IDENTITY.get(key, ())}
            if key == "network" and value.get("quantize") == _FLOAT_WEIGHTS:
                del value["quantize"]
            mismatch = value.get("mismatch") if key == "network" else None
            if isinstance(mismatch, dict) and not mismatch.get("weights", True):
                value["mismatch"] = {k: v for k, v in mismatch.items() if k != "weights"}
            if key == "sweep":
                value["axes"] = [_unset_dropped(axis, "paths") for axis in value.get("axes", [])]
            if key == "readout":
                value = _unset_dropped(value, "fit_point")
        sections[key] = value
    files = _input_files(points)
    return {"format_version": FORMAT_VERSION, **sections, "files": files}


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts and lists by dotted key (`sweep.axes.0.values`)."""
    if isinstance(tree, dict):
        items = [(str(key), value) for key, value in tree.items()]
    elif isinstance(tree, list):
        items = [(str(index), value) for index, value in enumerate(tree)]
    else:
        return {prefix: tree}
    leaves: dict[str, Any] = {}
    if not items:
        leaves[prefix] = tree
    for key, value in items:
        leaves.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return leaves


def differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ (or exist in one identity only), sorted."""
    a, b = flatten(first), flatten(second)
    missing = object()
    return sorted(key for key in a.keys() | b.keys() if a.get(key, missing) != b.get(key, missing))
