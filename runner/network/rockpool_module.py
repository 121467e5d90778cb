"""One chip of a network as a Rockpool module, so that any result can be cross-checked there.

Rockpool is an optional dependency (`pip install -e ".[conformance]"`); it is imported only
when a module is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runner.physics.spec import NetworkSpec

__all__ = ["rockpool_classes", "rockpool_module"]


def rockpool_classes() -> tuple[type, type, Any]:
    """(DynapSim, LinearJax, Sequential), or an ImportError that says how to install them."""
    try:
        from rockpool.devices.dynapse import DynapSim
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules import LinearJax
    except ImportError as error:
        raise ImportError(
            f"Rockpool 3.1 with jax is needed to exchange networks with Rockpool "
            f'(pip install -e ".[conformance]"): {error}'
        ) from None
    return DynapSim, LinearJax, Sequential


def rockpool_module(spec: NetworkSpec, chip_parameters: dict[str, np.ndarray]) -> Any:
    """A Rockpool module of `spec` holding one chip's (N,) parameters.

    `Sequential(LinearJax, DynapSim)` if the network has input weights, else a `DynapSim`;
    weights, Iscale, dt and Iw_ahp included, no further mismatch. Its initial currents are
    the nominal Io, as in this package's runs (and in a Rockpool layer built with mismatch).
    """
    DynapSim, LinearJax, Sequential = rockpool_classes()
    import jax

    n_neurons = spec.n_neurons
    layer = DynapSim(
        shape=(n_neurons, n_neurons),
        **{**chip_parameters, "Io": spec.nominal["Io"].astype(np.float32)},
        Iscale=spec.Iscale,
        w_rec=None if spec.weights_rec is None else spec.weights_rec.astype(np.float32),
        has_rec=spec.weights_rec is not None,
        dt=spec.dt,
        percent_mismatch=None,
        rng_key=jax.random.PRNGKey(0),
    )
    layer.Io = chip_parameters["Io"]  # after the state took the nominal Io as its start
    if spec.weights_in is None:
        return layer
    weights_in = spec.weights_in.astype(np.float32)
    return Sequential(LinearJax(weights_in.shape, weights_in, has_bias=False), layer)
