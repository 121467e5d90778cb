"""The chip's limits as data, and the check of a network against them.

A `HardwareProfile` says what one chip holds; `HARDWARE_PROFILES` names them (`dynapse2`:
DYNAP-SE2, 4 cores of 256 neurons, 64 CAM entries per neuron, 4-bit weights selecting 4 base
weights per core). `check_hardware` lists every way a network does not fit, each naming
what, where and the count against the limit; `hardware_refusal` is the one line a run stops
with. A connection is a non-zero weight (a non-zero mask for a quantized network): it takes
one CAM entry of its target neuron, whether its source is an input or a neuron.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from runner.physics.spec import NetworkSpec
from runner.util.checks import check_int
from runner.util.names import did_you_mean

__all__ = [
    "DYNAPSE2",
    "HARDWARE_PROFILES",
    "HardwareProfile",
    "check_hardware",
    "hardware_profile",
    "hardware_refusal",
]


@dataclass(frozen=True)
class HardwareProfile:
    """What one chip holds. Each limit is a count >= 1."""

    name: str
    neurons_per_core: int
    cores_per_chip: int
    cam_entries: int  # incoming connections per neuron, input and recurrent sources together
    weight_bits: int  # bits of a connection's mask
    base_weights: int  # base weight currents per core (Iw_0, Iw_1, ...) the masks select from

    def __post_init__(self) -> None:
        for item in fields(self)[1:]:
            check_int(f"{self.name}.{item.name}", getattr(self, item.name), 1)


DYNAPSE2 = HardwareProfile(
    "dynapse2", neurons_per_core=256, cores_per_chip=4, cam_entries=64, weight_bits=4,
    base_weights=4,
)  # fmt: skip
HARDWARE_PROFILES: Mapping[str, HardwareProfile] = MappingProxyType({DYNAPSE2.name: DYNAPSE2})


def hardware_profile(profile: str | HardwareProfile) -> HardwareProfile:
    """A profile by name (see HARDWARE_PROFILES), or the profile given."""
    if isinstance(profile, HardwareProfile):
        return profile
    if profile not in HARDWARE_PROFILES:
        raise ValueError(
            f"unknown hardware profile {profile!r}{did_you_mean(str(profile), HARDWARE_PROFILES)}"
            f"; known: {', '.join(HARDWARE_PROFILES)}"
        )
    return HARDWARE_PROFILES[profile]


@dataclass(frozen=True)
class _Violation:
    message: str
    excess: int  # how many units are over the limit
    unit: str  # what they are, singular and plural: "neuron over|neurons over"

    def counted(self, excess: int) -> str:
        singular, plural = self.unit.split("|")
        return f"{excess} {singular if excess == 1 else plural}"


def _spec(net_or_spec: Any) -> NetworkSpec:
    spec = getattr(net_or_spec, "spec", net_or_spec)
    if not isinstance(spec, NetworkSpec):
        raise TypeError(
            f"expected a DynapSimNetwork or a NetworkSpec, got {type(net_or_spec).__name__}"
        )
    return spec


def _connections(spec: NetworkSpec) -> list[np.ndarray]:
    """The (rows, N) matrices whose non-zero entries are CAM entries."""
    q = spec.quantization
    matrices = [spec.weights_in, spec.weights_rec] if q is None else [q.mask_in, q.mask_rec]
    return [matrix for matrix in matrices if matrix is not None]


def _violations(spec: NetworkSpec, profile: HardwareProfile) -> list[_Violation]:
    found = []
    if spec.n_cluster > profile.cores_per_chip:
        found.append(_Violation(
            f"the network uses {spec.n_cluster} cores; the chip has {profile.cores_per_chip}",
            spec.n_cluster - profile.cores_per_chip, "core too many|cores too many",
        ))  # fmt: skip
    sizes = np.bincount(spec.core_map, minlength=spec.n_cluster)
    for core in np.flatnonzero(sizes > profile.neurons_per_core):
        found.append(_Violation(
            f"core {core} has {sizes[core]} neurons; the chip allows "
            f"{profile.neurons_per_core} per core", 1, "core over|cores over",
        ))  # fmt: skip
    incoming = sum(np.count_nonzero(matrix, axis=0) for matrix in _connections(spec))
    for neuron in np.flatnonzero(np.asarray(incoming) > profile.cam_entries):
        found.append(_Violation(
            f"neuron {neuron} (core {spec.core_map[neuron]}) has {incoming[neuron]} incoming "
            f"connections; the chip allows {profile.cam_entries}", 1, "neuron over|neurons over",
        ))  # fmt: skip
    q = spec.quantization
    if q is not None and q.n_bits > profile.base_weights:
        found.append(_Violation(
            f"the weights select among {q.n_bits} base weights per core "
            f"(Iw_0..Iw_{q.n_bits - 1}); the chip has {profile.base_weights}",
            q.n_bits - profile.base_weights, "base weight too many|base weights too many",
        ))  # fmt: skip
    if q is not None and q.n_bits > profile.weight_bits:
        top = 2**profile.weight_bits - 1
        wide = sum(np.count_nonzero(mask > top, axis=0) for mask in _connections(spec))
        for core in range(spec.n_cluster):
            count = int(np.sum(wide[spec.core_map == core]))
            if count:
                found.append(_Violation(
                    f"core {core} has {count} connections with masks above {top}; the chip's "
                    f"weights are {profile.weight_bits}-bit", count,
                    "connection over|connections over",
                ))  # fmt: skip
    return found


def check_hardware(net_or_spec: Any, profile: str | HardwareProfile = "dynapse2") -> list[str]:
    """Every way the network (a DynapSimNetwork or NetworkSpec) does not fit the chip: cores,
    neurons per core, incoming connections per neuron and, quantized, the weights' bits and
    base weights. Empty when it fits."""
    return [v.message for v in _violations(_spec(net_or_spec), hardware_profile(profile))]


def hardware_refusal(net_or_spec: Any, profile: str | HardwareProfile = "dynapse2") -> str | None:
    """The line a run refuses the network with: the first violation and how much is over
    ("...; the chip allows 64 (3 neurons over)"), or None when the network fits."""
    found = _violations(_spec(net_or_spec), hardware_profile(profile))
    if not found:
        return None
    totals: dict[str, tuple[_Violation, int]] = {}
    for violation in found:
        first, excess = totals.get(violation.unit, (violation, 0))
        totals[violation.unit] = (first, excess + violation.excess)
    counts = ", ".join(first.counted(excess) for first, excess in totals.values())
    return f"{found[0].message} ({counts})"
