"""Networks to and from Rockpool: import a (trained) DynapSim module, export one chip.

`from_rockpool` reads what Rockpool's `dynapsim_net_from_spec` returns (a `Sequential` of
`LinearJax` and `DynapSim`, or a lone `DynapSim`), possibly after training, as a network
whose nominal parameters are exactly the module's (the way back is
`DynapSimNetwork.to_rockpool`, built by `runner.network.rockpool_module`).
`save_network_spec` writes a network as a spec file for the CLI.

Rockpool is an optional dependency (`pip install -e ".[conformance]"`); it is imported only
when these functions are called.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from runner.network.dynapsim import DynapSimNetwork, dynapsim_net_from_spec
from runner.network.rockpool_module import rockpool_classes
from runner.physics.parameters import CURRENT_NAMES, LAYOUT_NAMES, PARAMETER_NAMES
from runner.physics.specfile import save_spec_file

__all__ = ["from_rockpool", "save_network_spec"]

_EXPECTED = (
    "a Rockpool DynapSim, or a Sequential of (LinearJax, DynapSim) as returned by "
    "rockpool.devices.dynapse.dynapsim_net_from_spec"
)


def _layers(module: Any) -> tuple[Any | None, Any]:
    """The (LinearJax or None, DynapSim) layers of a Rockpool DynapSim network."""
    DynapSim, LinearJax, _ = rockpool_classes()
    from rockpool.nn.combinators.sequential import SequentialMixin

    if isinstance(module, DynapSim):
        return None, module
    if not isinstance(module, SequentialMixin):
        raise TypeError(f"from_rockpool expects {_EXPECTED}, got {type(module).__name__}")
    layers = list(module.modules().values())
    kinds = [type(layer).__name__ for layer in layers]
    if len(layers) == 1 and isinstance(layers[0], DynapSim):
        return None, layers[0]
    if len(layers) == 2 and isinstance(layers[0], LinearJax) and isinstance(layers[1], DynapSim):
        return layers[0], layers[1]
    raise TypeError(f"from_rockpool expects {_EXPECTED}, got a Sequential of {kinds}")


def _float32_scalar(value: Any) -> float:
    """Rockpool's float32 Iscale/dt as the shortest decimal that is the same float32 (1e-3,
    not 0.0010000000474974513): the simulation sees the same number, the metrics a round one."""
    return float(str(np.float32(np.asarray(value).item())))


def _input_weights(linear: Any) -> np.ndarray:
    """LinearJax.weight (Nin, N); a bias has no counterpart on the chip, so it is refused."""
    if np.any(np.asarray(linear.bias) != 0):
        raise ValueError(
            "LinearJax has a non-zero bias, which DynapSim input weights cannot express "
            "(build the layer with has_bias=False)"
        )
    return np.asarray(linear.weight, dtype=np.float32).astype(np.float64)


def _recurrent_weights(layer: Any) -> np.ndarray | None:
    """w_rec (N, N) [pre, post], or None for a layer built without recurrence."""
    weights = np.asarray(layer.w_rec, dtype=np.float32)
    if "w_rec" not in layer.parameters() and not weights.any():
        return None
    return weights.astype(np.float64)


def _warn_if_started_elsewhere(layer: Any, io: np.ndarray) -> None:
    """Runs here start the currents at the Io parameter; a layer built with Rockpool's
    mismatch starts them at the Io it was built with, so its first steps differ slightly."""
    initial = layer.reset_state()
    start = np.stack([np.asarray(getattr(initial, name)) for name in ("iampa", "iahp", "imem")])
    if not (start == io.astype(np.float32)).all():
        warnings.warn(
            "from_rockpool: this DynapSim's initial currents are not its Io parameter (Rockpool "
            "sets them before it applies mismatch); runs here start them at the Io parameter, so "
            "early traces differ slightly and a spike can move by a step. For an exact copy, "
            "build the module without percent_mismatch and let from_rockpool draw the chips.",
            stacklevel=3,
        )


def _core_map(core_map: Any, n_neurons: int) -> np.ndarray:
    """The given neuron -> core map (default: every neuron on core 0), one id per neuron."""
    if core_map is None:
        return np.zeros(n_neurons, dtype=np.int64)
    array = np.asarray(core_map)
    if array.shape != (n_neurons,):
        raise ValueError(
            f"core_map must have one core id per neuron of the DynapSim layer "
            f"(shape ({n_neurons},)), got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise ValueError(f"core_map must hold core ids, ints >= 0, got {array[:8]}")
    return array


def from_rockpool(
    module: Any,
    core_map: Any = None,
    percent_mismatch: float = 0.0,
    seed: int = 0,
    **mismatch_options: Any,
) -> DynapSimNetwork:
    """The network equivalent to a Rockpool DynapSim module (trained or not).

    The module's per-neuron parameters, weights, Iscale and dt become the nominal network:
    with percent_mismatch 0 every chip is exactly the module; otherwise chips are drawn
    around it (mismatch keywords as `dynapsim_net_from_spec`). Rockpool does not store a
    core map: pass one (one core id per neuron), default all neurons on core 0.
    The module's state is not imported: runs here start from the initial state, with the
    currents at Io (a warning says when the module would start elsewhere).
    """
    linear, layer = _layers(module)
    # Rockpool holds each parameter as (N,) float32: imported exactly, as float64
    parameters = {
        name: np.asarray(getattr(layer, name), dtype=np.float32).astype(np.float64)
        for name in PARAMETER_NAMES
    }
    _warn_if_started_elsewhere(layer, parameters["Io"])
    cores = _core_map(core_map, layer.size_out)
    n_cluster = int(cores.max()) + 1
    currents = {
        name: [parameters[name][cores == cluster] for cluster in range(n_cluster)]
        for name in CURRENT_NAMES
    }
    layout = {name: parameters[name] for name in LAYOUT_NAMES}
    return dynapsim_net_from_spec(
        n_cluster, cores,
        weights_in=None if linear is None else _input_weights(linear),
        weights_rec=_recurrent_weights(layer),
        **currents, **layout,
        Iscale=_float32_scalar(layer.Iscale),
        percent_mismatch=percent_mismatch,
        dt=_float32_scalar(layer.dt),
        seed=seed, **mismatch_options,
    )  # fmt: skip


def _per_core_values(values: np.ndarray, clusters: list[np.ndarray]) -> list[Any]:
    """A current per core: numbers when each core's neurons share one value, else every
    core's per-neuron array (so that equal cores stack into an .npz array)."""
    per_core = [values[members] for members in clusters]
    if all(part.size and (part == part[0]).all() for part in per_core):
        return [float(part[0]) for part in per_core]
    return per_core


def save_network_spec(net: DynapSimNetwork, path: str | Path) -> Path:
    """Write a network's nominal spec as a spec file (`.json`, or `.npz` for equal cores)
    that `python -m runner network=from_file network.file=PATH` runs.

    Per-neuron values are written per core; the mismatch level is the network's, the
    mismatch model options (distribution, ...) are the config's.
    """
    spec = net.spec
    clusters = [spec.core_map == cluster for cluster in range(spec.n_cluster)]
    if Path(path).suffix == ".npz" and len({int(members.sum()) for members in clusters}) > 1:
        raise ValueError(
            f"{path}: cores of unequal size need a .json spec file (.npz holds equal cores only)"
        )
    currents = {name: _per_core_values(spec.nominal[name], clusters) for name in CURRENT_NAMES}
    return save_spec_file(
        path, n_cluster=spec.n_cluster, core_map=spec.core_map,
        weights_in=spec.weights_in, weights_rec=spec.weights_rec,
        **currents, **{name: spec.nominal[name] for name in LAYOUT_NAMES},
        Iscale=spec.Iscale, dt=spec.dt, percent_mismatch=spec.mismatch.percent,
    )  # fmt: skip
