"""Reproducible device mismatch: which parameters deviate, how, and what counts as unphysical.

Each draw is keyed by (seed, instance, stream, parameter, neuron or core) through
`runner.physics.philox`, so an instance's parameters are the same whichever batch, chunk, shard or
backend produces them. The kernel draws the same numbers itself (`kernels/philox.cuh`).

Models (x is a nominal float32 value, z a standard normal, sigma = percent / 3):
- "gaussian" (Rockpool's frozen mismatch, the default): x' = x + (sigma * z) * x
- "lognormal": x' = x * exp(sigma * z - sigma**2 / 2) -- mean x, never <= 0
With `shared_fraction` f, z = sqrt(1 - f) * z_neuron + sqrt(f) * z_core: a fraction f of
the variance is common to all neurons of a core (same bias generator), the total is kept.

Synaptic mismatch (`weights`, quantized networks only): each neuron i draws its own copy of
its core's base weights, Iw_k,i = Iw_k deviated as above, with Philox parameter word
WEIGHT_PARAMETER + k (after the 24 neuron parameters, whose draws it leaves unchanged).

Non-physical samples (x > 0 but x' <= 0, possible only with the Gaussian model at large
`percent`) are counted per instance. Policy "keep" simulates them as Rockpool would;
"clip" floors the sample at NONPHYSICAL_FLOOR * x.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from runner.physics.parameters import PARAMETER_INDEX, PARAMETER_NAMES
from runner.physics.philox import STREAM_CORE, STREAM_NEURON, exact_exp, standard_normal

__all__ = [
    "DISTRIBUTIONS",
    "NONPHYSICAL_POLICIES",
    "NONPHYSICAL_FLOOR",
    "WEIGHT_PARAMETER",
    "MismatchModel",
    "sample_base_weights",
    "sample_parameters",
]

DISTRIBUTIONS = ("gaussian", "lognormal")
NONPHYSICAL_POLICIES = ("keep", "clip")
NONPHYSICAL_FLOOR = 0.01
WEIGHT_PARAMETER = len(PARAMETER_NAMES)  # Philox parameter word of Iw_0 (Iw_k: + k)


@dataclass(frozen=True)
class MismatchModel:
    """How a nominal network deviates on a real chip."""

    percent: float = 0.0  # 3-sigma relative deviation, Rockpool's `percent_mismatch`
    distribution: str = "gaussian"
    shared_fraction: float = 0.0  # variance fraction shared by a core's neurons
    parameters: tuple[str, ...] = field(default=PARAMETER_NAMES)  # which ones deviate
    nonphysical: str = "keep"
    weights: bool = False  # each neuron's base weights Iw_k deviate too (quantized networks)

    def __post_init__(self) -> None:
        if not np.isfinite(self.percent) or self.percent < 0:
            raise ValueError(f"percent_mismatch must be a finite number >= 0, got {self.percent!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"mismatch distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if not 0.0 <= self.shared_fraction <= 1.0:
            raise ValueError(
                f"mismatch shared_fraction must be in [0, 1], got {self.shared_fraction!r}"
            )
        unknown = sorted(set(self.parameters) - set(PARAMETER_NAMES))
        if unknown:
            raise ValueError(
                f"mismatch parameters {unknown} are not DynapSim parameters; "
                f"expected a subset of {list(PARAMETER_NAMES)}"
            )
        if self.nonphysical not in NONPHYSICAL_POLICIES:
            raise ValueError(
                f"nonphysical policy must be one of {NONPHYSICAL_POLICIES}, "
                f"got {self.nonphysical!r}"
            )

    @property
    def sigma(self) -> float:
        return self.percent / 3.0

    @property
    def parameter_mask(self) -> int:
        """Bit i set: parameter PARAMETER_NAMES[i] deviates (the kernel's view)."""
        return sum(1 << PARAMETER_INDEX[name] for name in self.parameters)

    @property
    def active(self) -> bool:
        return self.percent > 0 and len(self.parameters) > 0

    @property
    def weights_active(self) -> bool:
        """The base weights deviate (synaptic mismatch with a non-zero percent)."""
        return self.weights and self.percent > 0


def _standard_normals(
    seed: int, instances: np.ndarray, parameter: int, core_map: np.ndarray, shared: float
) -> np.ndarray:
    """(B, N) float64 normals with the per-core component mixed in."""
    neurons = np.arange(core_map.size, dtype=np.uint32)
    z = standard_normal(seed, instances[:, None], STREAM_NEURON, parameter, neurons[None, :])
    if shared > 0.0:
        z_core = standard_normal(
            seed, instances[:, None], STREAM_CORE, parameter, core_map[None, :]
        )
        z = np.sqrt(1.0 - shared) * z + np.sqrt(shared) * z_core
    return z


def sample_parameters(
    nominal: dict[str, np.ndarray],
    core_map: np.ndarray,
    model: MismatchModel,
    seed: int,
    instances: Sequence[int] | np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-neuron parameters of the given instances.

    nominal: name -> (N,) values (cast to float32, as on the chip model);
    returns name -> (B, N) float32, and the count of non-physical samples per instance (B,).
    """
    instances = np.asarray(instances, dtype=np.uint64).reshape(-1)
    core_map = np.asarray(core_map, dtype=np.uint32)
    n_instances = instances.size
    deviated = set(model.parameters) if model.active else set()
    sampled: dict[str, np.ndarray] = {}
    nonphysical = np.zeros(n_instances, dtype=np.int64)
    for index, name in enumerate(PARAMETER_NAMES):
        x = np.broadcast_to(
            np.asarray(nominal[name], dtype=np.float32), (n_instances, core_map.size)
        )
        if name not in deviated:
            sampled[name] = x.copy()
            continue
        sampled[name], bad = _deviate(x, index, core_map, model, seed, instances)
        nonphysical += bad
    return sampled, nonphysical


def _deviate(
    x: np.ndarray,
    parameter: int,
    core_map: np.ndarray,
    model: MismatchModel,
    seed: int,
    instances: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """x (B, N) float32 deviated by the draws of Philox parameter word `parameter`, and the
    count of non-physical samples per instance (B,)."""
    sigma = model.sigma
    z = _standard_normals(int(seed), instances, parameter, core_map, model.shared_fraction)
    if model.distribution == "gaussian":
        value = x + (np.float32(sigma) * z.astype(np.float32)) * x
    else:
        value = x * exact_exp(sigma * z - 0.5 * sigma * sigma).astype(np.float32)
    bad = (x > 0) & (value <= 0)
    if model.nonphysical == "clip":
        value = np.where(bad, x * np.float32(NONPHYSICAL_FLOOR), value)
    return value, bad.sum(axis=1)


def sample_base_weights(
    base_weights: np.ndarray,
    core_map: np.ndarray,
    model: MismatchModel,
    seed: int,
    instances: Sequence[int] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each neuron's base weights of the given instances (synaptic mismatch).

    base_weights: (n_cluster, n_bits), Iw_k of each core (cast to float32); returns
    (B, n_bits, N) float32 (nominal where `model.weights_active` is off) and the count of
    non-physical samples per instance (B,).
    """
    instances = np.asarray(instances, dtype=np.uint64).reshape(-1)
    core_map = np.asarray(core_map, dtype=np.uint32)
    per_neuron = np.asarray(base_weights, dtype=np.float32)[core_map].T  # (n_bits, N)
    n_bits = per_neuron.shape[0]
    out = np.empty((instances.size, n_bits, core_map.size), np.float32)
    nonphysical = np.zeros(instances.size, dtype=np.int64)
    for k in range(n_bits):
        x = np.broadcast_to(per_neuron[k], (instances.size, core_map.size))
        if not model.weights_active:
            out[:, k] = x
            continue
        out[:, k], bad = _deviate(x, WEIGHT_PARAMETER + k, core_map, model, seed, instances)
        nonphysical += bad
    return out, nonphysical
