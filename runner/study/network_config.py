"""A `network:` config (as a plain dict) -> a validated `DynapSimNetwork`.

`resolve_network` fills in what the config leaves open (per-core current lists, the spec
file's values, defaults) so that a sweep can address and scale any field by its path;
`build_network` turns the resolved dict into a network, validated by `NetworkSpec.build`.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runner.data.weights import generate_weights
from runner.network.dynapsim import DynapSimNetwork, dynapsim_net_from_spec
from runner.physics.parameters import (
    CURRENT_NAMES,
    DEFAULT_CURRENTS,
    DEFAULT_DT,
    DEFAULT_ISCALE,
    LAYOUT_NAMES,
)
from runner.physics.specfile import load_spec_file
from runner.util.checks import check_int
from runner.util.files import find_file

if TYPE_CHECKING:
    from runner.study.schema import NetworkConfig

__all__ = ["resolve_network", "build_network"]

_SCALAR_DEFAULTS = {"Iscale": DEFAULT_ISCALE, "dt": DEFAULT_DT, "percent_mismatch": 0.0}


def _spec_file(path: str) -> dict[str, Any]:
    found = find_file(path, "network.file")
    status = found.stat()
    return _load_spec_version(found, status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=8)
def _load_spec_version(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    """Cached per version of the file: an edited spec file is read again."""
    return load_spec_file(path)


def resolve_network(network: dict[str, Any]) -> dict[str, Any]:
    """A `network:` tree (plain values) with explicit per-core current lists and scalars,
    file values under the config's: the tree a sweep axis addresses by path."""
    net = copy.deepcopy(network)
    if (net.get("file") is None) == (net.get("generator") is None):
        raise ValueError("network: set exactly one of `generator` (weights from code) or `file`")
    from_file = _spec_file(net["file"]) if net.get("file") else {}
    if from_file:
        net["n_cluster"] = from_file["n_cluster"]
        net["neurons_per_core"] = None
    n_cluster = net["n_cluster"]
    check_int("network.n_cluster", n_cluster, minimum=1)
    for name in CURRENT_NAMES:
        value = net["currents"].get(name)
        if value is None:
            value = from_file.get(name, DEFAULT_CURRENTS[name])
        if not isinstance(value, list):
            value = [value] * n_cluster
        net["currents"][name] = value
    for name in LAYOUT_NAMES:
        if net["layout"].get(name) is None and name in from_file:
            net["layout"][name] = np.asarray(from_file[name]).tolist()
    for name, default in _SCALAR_DEFAULTS.items():
        if net.get(name) is None:
            net[name] = from_file.get(name, default)
    return net


def build_network(net: NetworkConfig, seed: int) -> DynapSimNetwork:
    """A resolved network config -> the network (mismatch seed `seed`)."""
    if net.file:
        spec = _spec_file(net.file)
        core_map = np.asarray(spec["core_map"])
        weights = {"weights_in": spec.get("weights_in"), "weights_rec": spec.get("weights_rec")}
    else:
        per_core = check_int("network.neurons_per_core", net.neurons_per_core, minimum=1)
        core_map = np.repeat(np.arange(net.n_cluster), per_core)
        generator = net.generator
        weights = generate_weights(generator.name, core_map, generator.params)
    mismatch = net.mismatch
    currents = {name: getattr(net.currents, name) for name in CURRENT_NAMES}
    layout = {name: getattr(net.layout, name) for name in LAYOUT_NAMES}
    return dynapsim_net_from_spec(
        net.n_cluster, core_map, **weights, **currents,
        **{name: value for name, value in layout.items() if value is not None},
        Iscale=net.Iscale, percent_mismatch=net.percent_mismatch, dt=net.dt, seed=seed,
        mismatch_distribution=mismatch.distribution.value,
        mismatch_shared_fraction=mismatch.shared_fraction,
        mismatch_parameters=mismatch.parameters,
        nonphysical=mismatch.nonphysical.value,
        mismatch_weights=mismatch.weights,
    )  # fmt: skip
