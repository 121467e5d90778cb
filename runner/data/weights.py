"""Seeded weight generators, referenced from network YAML by name (`generator.name`).

A 1024 x 1024 weight matrix does not belong in a YAML file; a generator name, its
parameters and a seed describe it exactly and reproducibly. Weights are small integers
(DYNAP-SE2 synapses are quantized) or, with `ei_network`'s `weight_cv`, floats as a trained
network has; fan-in is bounded like the chip's 64 CAM entries.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["GENERATORS", "generate_weights", "feedforward", "ei_network"]

MAX_FAN_IN = 64  # CAM entries per DYNAP-SE2 neuron


def _fixed_fan_in(
    rng: np.random.Generator, n_sources: int, targets: int, k: int, pool: np.ndarray | None = None
) -> np.ndarray:
    """(targets, k) source indices, each row without repeats, from `pool` (default all)."""
    pool = np.arange(n_sources) if pool is None else pool
    if k > pool.size:
        raise ValueError(f"fan-in {k} exceeds the {pool.size} available sources")
    keys = rng.random((targets, pool.size))
    return pool[np.argsort(keys, axis=1)[:, :k]]


def feedforward(
    core_map: np.ndarray, n_inputs: int = 64, fan_in: int = 6, weight: int = 1, seed: int = 0
) -> dict[str, np.ndarray | None]:
    """A feed-forward layer: each neuron listens to `fan_in` random input channels."""
    n_neurons = core_map.size
    if not 0 <= fan_in <= min(n_inputs, MAX_FAN_IN):
        raise ValueError(f"fan_in must be in [0, min(n_inputs, {MAX_FAN_IN})], got {fan_in}")
    rng = np.random.default_rng(seed)
    weights_in = np.zeros((n_inputs, n_neurons))
    sources = _fixed_fan_in(rng, n_inputs, n_neurons, fan_in)
    weights_in[sources, np.arange(n_neurons)[:, None]] = weight
    return {"weights_in": weights_in, "weights_rec": None}


def ei_network(
    core_map: np.ndarray,
    n_inputs: int = 256,
    input_fan_in: int = 8,
    input_weight: int = 1,
    exc_fraction: float = 0.8,
    exc_fan_in: int = 16,
    inh_fan_in: int = 8,
    local_fraction: float = 0.75,
    exc_weight: int = 1,
    inh_weight: int = -2,
    seed: int = 0,
    weight_cv: float = 0.0,
) -> dict[str, np.ndarray | None]:
    """A recurrent E/I network; the first `exc_fraction` of each core is excitatory.

    Every neuron gets `input_fan_in` input channels, `exc_fan_in` excitatory and
    `inh_fan_in` inhibitory recurrent sources, a `local_fraction` of them from its own core.
    Negative weights only cancel same-step excitation in this model version (docs/model.md).
    `weight_cv` > 0 gives float weights, as a trained network has: each connection's weight
    is multiplied by its own log-normal factor of mean 1 and that coefficient of variation,
    drawn after the connections (so the same connections and signs; 0: integer weights).
    """
    total = input_fan_in + exc_fan_in + inh_fan_in
    if total > MAX_FAN_IN:
        raise ValueError(f"fan-in {total} per neuron exceeds the chip's {MAX_FAN_IN} CAM entries")
    if not 0.0 < exc_fraction < 1.0 or not 0.0 <= local_fraction <= 1.0:
        raise ValueError("exc_fraction must be in (0, 1) and local_fraction in [0, 1]")
    if not np.isfinite(weight_cv) or weight_cv < 0:
        raise ValueError(f"weight_cv must be a finite number >= 0, got {weight_cv}")
    rng = np.random.default_rng(seed)
    n_neurons = core_map.size
    rank = np.zeros(n_neurons, dtype=np.int64)  # position of a neuron inside its core
    for core in np.unique(core_map):
        members = np.flatnonzero(core_map == core)
        rank[members] = np.arange(members.size)
    core_size = np.bincount(core_map)[core_map]
    excitatory = rank < np.floor(exc_fraction * core_size)

    weights_in = np.zeros((n_inputs, n_neurons))
    sources = _fixed_fan_in(rng, n_inputs, n_neurons, input_fan_in)
    weights_in[sources, np.arange(n_neurons)[:, None]] = input_weight

    weights_rec = np.zeros((n_neurons, n_neurons))
    for post in range(n_neurons):
        local = core_map == core_map[post]
        for is_exc, k, weight in ((True, exc_fan_in, exc_weight), (False, inh_fan_in, inh_weight)):
            n_local = int(round(local_fraction * k))
            for pool_mask, count in ((local, n_local), (~local, k - n_local)):
                pool = np.flatnonzero(
                    pool_mask & (excitatory == is_exc) & (np.arange(n_neurons) != post)
                )
                if count and pool.size == 0:
                    pool = np.flatnonzero((excitatory == is_exc) & (np.arange(n_neurons) != post))
                pre = rng.choice(pool, size=count, replace=False)
                weights_rec[pre, post] = weight
    if weight_cv > 0:
        for weights in (weights_in, weights_rec):
            weights *= _lognormal_factors(rng, weights.shape, weight_cv)
    return {"weights_in": weights_in, "weights_rec": weights_rec}


def _lognormal_factors(rng: np.random.Generator, shape: tuple[int, ...], cv: float) -> np.ndarray:
    """Log-normal factors of mean 1 and coefficient of variation `cv`."""
    sigma2 = np.log1p(cv**2)
    return rng.lognormal(-sigma2 / 2, np.sqrt(sigma2), shape)


GENERATORS: dict[str, Callable[..., dict[str, np.ndarray | None]]] = {
    "feedforward": feedforward,
    "ei_network": ei_network,
}


def generate_weights(name: str, core_map: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    """Call generator `name`; unknown names or parameters fail with what was expected."""
    if name not in GENERATORS:
        raise ValueError(
            f"network.generator.name must be one of {sorted(GENERATORS)}, got {name!r}"
        )
    generator = GENERATORS[name]
    accepted = set(inspect.signature(generator).parameters) - {"core_map"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise TypeError(
            f"network.generator.params: unknown parameter(s) {unknown} for generator {name!r}; "
            f"expected some of {sorted(accepted)}"
        )
    return generator(core_map, **params)
