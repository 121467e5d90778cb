"""`dynapsim_net_from_spec` and the network object it returns.

The network holds a validated `NetworkSpec` and runs it on any backend: `evolve` for one
mismatch instance (Rockpool-like), `simulate` for many, `parameters` to inspect (or
program a chip with) the sampled parameters of any instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from runner.analysis.neuron_metrics import neuron_metrics, neuron_table
from runner.kernel.backends import get_backend, resolve_backend
from runner.kernel.batch import Batch, BatchResult, InputEvents, Variant
from runner.network.rockpool_module import rockpool_module
from runner.physics.mismatch import sample_base_weights, sample_parameters
from runner.physics.parameters import (
    CURRENT_NAMES,
    DEFAULT_DT,
    DEFAULT_ISCALE,
    LAYOUT_NAMES,
    RECORD_NAMES,
)
from runner.physics.quantization import quantization_from_spec, quantize
from runner.physics.spec import MAX_WEIGHT_BITS, NetworkSpec, Quantization
from runner.util.checks import UINT64_STOP, check_int
from runner.util.names import did_you_mean

__all__ = [
    "dynapsim_net_from_spec",
    "DynapSimNetwork",
    "SimulationResult",
    "packable",
    "packed_batch",
]

_MISMATCH_OPTIONS = {
    "mismatch_distribution": "distribution",
    "mismatch_shared_fraction": "shared_fraction",
    "mismatch_parameters": "parameters",
    "nonphysical": "nonphysical",
    "mismatch_weights": "weights",
}
_SPEC_ARGUMENTS = ("n_cluster", "core_map", "weights_in", "weights_rec", "Iscale",
                   "percent_mismatch", "dt", "seed")  # fmt: skip
# A quantized spec (autoencoder_quantization's keys; weights_in/rec are then per-core masks)
_QUANTIZED = ("sign_in", "sign_rec", *(f"Iw_{k}" for k in range(MAX_WEIGHT_BITS)))
# What else Rockpool's mapper and quantization put in a spec, which the network does not use
_NOT_USED = ("quantization_loss", "mapped_graph", "unclustered")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(dtype: Any) -> type:
    """float32 (every backend) or float64 (the reference only): what the model runs in."""
    try:
        valid = np.dtype(dtype) in _DTYPES
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"dtype must be np.float32 (every backend) or np.float64 (backend='reference'), "
            f"got {dtype!r}"
        )
    return np.dtype(dtype).type


def _instance_ids(instances: Any) -> np.ndarray:
    """Instance ids as uint64, refusing what a cast would wrap or truncate (-1, 2.5, 2**64)."""
    array = np.asarray(instances)
    if array.ndim > 1 or array.size == 0:
        raise ValueError(f"instances must be a non-empty 1-D list of ids, got shape {array.shape}")
    if array.dtype.kind == "u" or (array.dtype.kind == "i" and array.min() >= 0):
        return array.astype(np.uint64).reshape(-1)
    for value in array.reshape(-1).tolist():  # negative, fractional, or beyond int64
        check_int("instances", value, stop=UINT64_STOP)
    return array.astype(np.uint64).reshape(-1)


def _record_positions(record: Any, n_instances: int) -> range | tuple[int, ...]:
    """record=True: every instance; False: none; a list: those positions in the batch."""
    if record is True or record is False:
        return range(n_instances if record else 0)
    if isinstance(record, str) or not isinstance(record, Sequence | np.ndarray):
        raise TypeError(
            f"record must be True, False or a list of positions in [0, {n_instances}), "
            f"got {type(record).__name__}"
        )
    return tuple(check_int("record", position, stop=n_instances) for position in record)


@dataclass
class SimulationResult:
    """Reductions of `n_instances` mismatch instances (and records of chosen ones)."""

    instances: np.ndarray  # (B,) global instance ids
    core_map: np.ndarray  # (N,)
    n_steps: int
    dt: float
    seed: int
    reductions: BatchResult
    backend: str  # the backend that ran it ("auto" resolved: cuda, cpu or reference)

    @property
    def spike_counts(self) -> np.ndarray:
        """(B, N) total spikes per neuron over the run."""
        return self.reductions.spike_count

    @property
    def nonfinite_instances(self) -> np.ndarray:
        """Instance ids whose state became NaN/inf: listed, never averaged in."""
        return self.instances[self.reductions.nonfinite_step >= 0]

    def to_frame(self) -> pd.DataFrame:
        """One row per (instance, neuron): counts and metrics, plus the instance's flags."""
        return neuron_table(
            {"instance": self.instances.astype(np.int64)}, self.core_map, self.spike_counts,
            neuron_metrics(self.reductions, self.n_steps, self.dt),
            nonfinite=self.reductions.nonfinite_step >= 0,
        )  # fmt: skip


class DynapSimNetwork:
    """A DynapSim network (input layer + recurrent DynapSim layer) from a spec."""

    def __init__(self, spec: NetworkSpec) -> None:
        self.spec = spec

    def __repr__(self) -> str:
        s = self.spec
        bits = "" if s.quantization is None else f", n_bits={s.quantization.n_bits}"
        return (
            f"DynapSimNetwork(N={s.n_neurons}, n_cluster={s.n_cluster}, Nin={s.n_inputs}, "
            f"recurrent={s.weights_rec is not None}{bits}, "
            f"percent_mismatch={s.mismatch.percent}, dt={s.dt}, seed={s.seed})"
        )

    def quantized(self, n_bits: int = 4) -> DynapSimNetwork:
        """This network with its weights quantized for the chip (`runner.quantize_weights`):
        the weights become the restored ones, the spec holds masks, signs and base weights.
        Parameters, mismatch and seed are kept; `to_rockpool` gets the restored weights."""
        s = self.spec
        quantization, _ = quantize(
            s.weights_in, s.weights_rec, s.core_map, s.n_cluster, s.Iscale,
            check_int("n_bits", n_bits, 1, MAX_WEIGHT_BITS + 1),
        )  # fmt: skip
        weights_in, weights_rec = quantization.restored(s.core_map, s.Iscale)
        return DynapSimNetwork(
            replace(s, weights_in=weights_in, weights_rec=weights_rec, quantization=quantization)
        )

    def parameters(
        self, instances: Sequence[int] | np.ndarray, seed: int | None = None
    ) -> dict[str, np.ndarray]:
        """The 24 per-neuron parameters of these mismatch instances: name -> (B, N) float32;
        with synaptic mismatch also each neuron's base weights Iw_0..Iw_{n_bits-1} [A]."""
        s = self.spec
        seed = s.seed if seed is None else check_int("seed", seed, stop=UINT64_STOP)
        ids = _instance_ids(instances)
        sampled, _ = sample_parameters(s.nominal, s.core_map, s.mismatch, seed, ids)
        base = self.synaptic_base_weights()
        if base is not None:
            drawn, _ = sample_base_weights(base, s.core_map, s.mismatch, seed, ids)
            sampled.update({f"Iw_{k}": drawn[:, k] for k in range(drawn.shape[1])})
        return sampled

    def synaptic_base_weights(self) -> np.ndarray | None:
        """The base weights (n_cluster, n_bits) each neuron deviates (synaptic mismatch on),
        else None; refuses synaptic mismatch of a network with float weights."""
        s = self.spec
        if not s.mismatch.weights:
            return None
        if s.quantization is None:
            raise ValueError(
                "mismatch_weights needs a quantized network (net.quantized(n_bits), or "
                "network.quantize.n_bits): a float weight has no base currents to deviate"
            )
        return s.quantization.base_weights

    def _inputs(self, x: Any, n_instances: int | None) -> np.ndarray:
        """Check x's shape: (T, Nin) or (B, T, Nin) (Nin = N without weights_in).

        Boolean and integer arrays are kept as they are (spike counts, no float32 copy);
        finiteness is checked on the events (`batch`), the only entries that matter.
        """
        if np.iscomplexobj(x):
            raise TypeError("x must be real spike counts, got complex values")
        array = np.asarray(x)
        if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)):
            with np.errstate(over="ignore"):  # overflow gives inf: reported as not finite
                array = array.astype(np.float32, copy=False)
        n_in = self.spec.n_inputs
        what = "Nin" if self.spec.weights_in is not None else "N (no weights_in)"
        if array.ndim not in (2, 3) or array.shape[-1] != n_in or array.shape[-2] < 1:
            raise ValueError(
                f"x must have shape (T, {what}={n_in}) or (B, T, {n_in}), got {array.shape}"
            )
        if n_instances is not None and array.ndim == 3 and array.shape[0] != n_instances:
            raise ValueError(
                f"x given per instance must have shape (n_instances={n_instances}, T, {n_in}), "
                f"got {array.shape}"
            )
        return array

    def to_rockpool(self, chip: int = 0) -> Any:
        """A Rockpool module holding chip `chip`'s parameters (`self.parameters([chip])`), so
        that any result can be cross-checked in Rockpool (see `rockpool_module`)."""
        if isinstance(chip, bool) or not isinstance(chip, int | np.integer) or not (
            0 <= chip < 2**64
        ):
            raise ValueError(f"chip must be a mismatch instance id, an int >= 0, got {chip!r}")
        parameters = {name: values[0] for name, values in self.parameters([chip]).items()}
        return rockpool_module(self.spec, parameters)

    def variant(self) -> Variant:
        """This network as one variant of a (possibly mixed) batch."""
        s = self.spec
        nominal = {name: value.astype(np.float32) for name, value in s.nominal.items()}
        return Variant(nominal=nominal, Iscale=s.Iscale, mismatch=s.mismatch,
                       base_weights=self.synaptic_base_weights())  # fmt: skip

    def batch(
        self,
        x: np.ndarray,
        instances: np.ndarray,
        seed: int,
        bin_width: int = 0,
        record_instances: Sequence[int] = (),
        dtype: type = np.float32,
    ) -> Batch:
        """The backend-ready form of a run (x's shape already checked)."""
        events = InputEvents.from_dense(x, len(instances))
        if not np.isfinite(events.value).all():  # NaN and inf are non-zero: all are events
            raise ValueError("x must be finite (no NaN/inf)")
        if self.spec.weights_in is not None and (events.value < 0).any():
            raise ValueError(
                f"x holds spike counts (the network has weights_in), which must be >= 0, "
                f"got {events.value.min()}"
            )
        return packed_batch(
            [self], np.zeros(len(instances), np.int32), events,
            instances, seed, bin_width, record_instances, dtype,
        )  # fmt: skip

    def evolve(
        self, x: Any, record: bool = True, backend: str = "reference", dtype: type = np.float32
    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Rockpool-style run of mismatch instance 0 from the initial state.

        x: (T, Nin) or (B, T, Nin) (B trials of the same instance). Returns spike counts
        (..., T, N) float32, the final state {isyn, iahp, imem, vmem, spikes}, and the
        record {isyn, iahp, imem, vmem, spikes} each (..., T, N) (empty if record=False).
        """
        dtype = _check_dtype(dtype)
        array = self._inputs(x, None)
        trials = array[None] if array.ndim == 2 else array
        n_trials = trials.shape[0]
        batch = self.batch(trials, np.zeros(n_trials), self.spec.seed,
                           record_instances=range(n_trials), dtype=dtype)  # fmt: skip
        result = get_backend(backend)(batch)
        record_dict = {name: np.stack([result.traces[k][name] for k in range(n_trials)])
                       for name in RECORD_NAMES}  # fmt: skip
        record_dict["spikes"] = np.stack([result.raster[k] for k in range(n_trials)]).astype(
            np.float32
        )
        if array.ndim == 2:
            record_dict = {name: value[0] for name, value in record_dict.items()}
        state = {name: value[..., -1, :] for name, value in record_dict.items()}
        return record_dict["spikes"], state, (record_dict if record else {})

    def simulate(
        self,
        x: Any,
        n_instances: int,
        seed: int | None = None,
        backend: str = "auto",
        record: bool | Sequence[int] = False,
        *,
        first_instance: int = 0,
        bin_width: int = 0,
        dtype: type = np.float32,
    ) -> SimulationResult:
        """Run instances first_instance .. first_instance + n_instances - 1 of the mismatch.

        x: (T, Nin) shared by all instances or (n_instances, T, Nin). record: True records
        raster and traces of every instance, a list of positions records only those.
        """
        n_instances = check_int("n_instances", n_instances, 1)
        last_start = UINT64_STOP - n_instances  # ids first_instance .. +n_instances-1 fit
        first_instance = check_int("first_instance", first_instance, stop=last_start + 1)
        bin_width = check_int("bin_width", bin_width, 0)
        record_instances = _record_positions(record, n_instances)
        seed = self.spec.seed if seed is None else check_int("seed", seed, stop=UINT64_STOP)
        dtype = _check_dtype(dtype)
        array = self._inputs(x, n_instances)
        instances = np.arange(first_instance, first_instance + n_instances, dtype=np.uint64)
        batch = self.batch(array, instances, seed, bin_width, record_instances, dtype)
        backend = resolve_backend(backend)
        return SimulationResult(
            instances=instances,
            core_map=self.spec.core_map,
            n_steps=batch.n_steps,
            dt=self.spec.dt,
            seed=seed,
            reductions=get_backend(backend)(batch),
            backend=backend,
        )


def dynapsim_net_from_spec(
    n_cluster: int,
    core_map: Sequence[int] | np.ndarray,
    weights_in: Any = None,
    weights_rec: Any = None,
    Idc: Sequence[Any] | None = None,
    If_nmda: Sequence[Any] | None = None,
    Igain_ahp: Sequence[Any] | None = None,
    Igain_mem: Sequence[Any] | None = None,
    Igain_syn: Sequence[Any] | None = None,
    Ipulse_ahp: Sequence[Any] | None = None,
    Ipulse: Sequence[Any] | None = None,
    Iref: Sequence[Any] | None = None,
    Ispkthr: Sequence[Any] | None = None,
    Itau_ahp: Sequence[Any] | None = None,
    Itau_mem: Sequence[Any] | None = None,
    Itau_syn: Sequence[Any] | None = None,
    Iw_ahp: Sequence[Any] | None = None,
    Iscale: float = DEFAULT_ISCALE,
    percent_mismatch: float | None = None,
    dt: float = DEFAULT_DT,
    *,
    seed: int = 0,
    **kwargs: Any,
) -> DynapSimNetwork:
    """Rockpool's `dynapsim_net_from_spec`, with the seed honoured and `Iw_ahp` applied.

    Per-cluster lists hold a scalar or an array of that cluster's neurons (None: the chip
    default for every core). Keyword extras: layout constants (C_ahp C_syn C_pulse_ahp
    C_pulse C_ref C_mem Io kappa_n kappa_p Ut Vth; scalar or (N,)), and the mismatch
    model: mismatch_distribution ("gaussian" | "lognormal"), mismatch_shared_fraction,
    mismatch_parameters (names that deviate), nonphysical ("keep" | "clip"),
    mismatch_weights (synaptic mismatch: each neuron's base weights Iw_k deviate too; a
    quantized network only).

    A quantized spec (Rockpool's mapper spec updated with `autoencoder_quantization`, or
    `runner.quantize_weights`) is taken as it is: weights_in/weights_rec are then masks (per
    core, or one matrix), with sign_in/sign_rec and the base weights Iw_0..Iw_{n_bits-1}
    (one current per core; n_bits is how many are given). The network simulates the weights
    they restore, sign * sum_k bit_k(mask) * Iw_k(core of the target) / Iscale, and keeps
    them as its quantization. Rockpool's other keys are accepted and not used
    (quantization_loss, mapped_graph, unclustered; n_neuron must be len(core_map)).
    """
    local = locals()
    currents = {name: local[name] for name in CURRENT_NAMES}
    layout = {name: kwargs.pop(name) for name in LAYOUT_NAMES if name in kwargs}
    options = {
        _MISMATCH_OPTIONS[key]: kwargs.pop(key) for key in list(kwargs) if key in _MISMATCH_OPTIONS
    }
    quantized = {key: kwargs.pop(key) for key in _QUANTIZED if key in kwargs}
    quantized = {key: value for key, value in quantized.items() if value is not None}
    n_neuron = kwargs.pop("n_neuron", None)
    for key in _NOT_USED:
        kwargs.pop(key, None)
    if kwargs:
        valid = (*_SPEC_ARGUMENTS, *CURRENT_NAMES, *LAYOUT_NAMES, *_MISMATCH_OPTIONS,
                 *_QUANTIZED, *_NOT_USED, "n_neuron")  # fmt: skip
        hints = "".join(did_you_mean(name, valid) for name in sorted(kwargs))
        raise TypeError(
            f"dynapsim_net_from_spec got unknown argument(s) {sorted(kwargs)}{hints}; valid: "
            f"{', '.join(_SPEC_ARGUMENTS)}; the 13 currents {', '.join(CURRENT_NAMES)}; the "
            f"layout constants {', '.join(LAYOUT_NAMES)}; the mismatch keywords "
            f"{', '.join(_MISMATCH_OPTIONS)}; a quantized spec's sign_in, sign_rec, "
            f"Iw_0..Iw_{MAX_WEIGHT_BITS - 1} (and Rockpool's {', '.join(_NOT_USED)}, n_neuron)"
        )
    if n_neuron is not None and n_neuron != np.size(core_map):
        raise ValueError(
            f"n_neuron={n_neuron} does not match core_map, which has {np.size(core_map)} neurons"
        )
    quantization = None
    if quantized:
        base_weights = {int(key[3:]): quantized.pop(key) for key in list(quantized)
                        if key.startswith("Iw_")}  # fmt: skip
        quantization = quantization_from_spec(
            n_cluster, core_map, weights_in, weights_rec,
            quantized.get("sign_in"), quantized.get("sign_rec"), base_weights,
        )  # fmt: skip
        weights_in = weights_rec = None
    spec = NetworkSpec.build(
        n_cluster, core_map, weights_in, weights_rec, currents, layout,
        Iscale=Iscale, percent_mismatch=percent_mismatch, dt=dt, seed=seed,
        mismatch_options=options, quantization=quantization,
    )  # fmt: skip
    return DynapSimNetwork(spec)


def packable(a: DynapSimNetwork, b: DynapSimNetwork) -> bool:
    """Can instances of both share a batch? Same neurons, core map, weights and dt (and,
    with synaptic mismatch, the same masks and signs)."""
    sa, sb = a.spec, b.spec

    def same(x: np.ndarray | None, y: np.ndarray | None) -> bool:
        return x is y or (x is not None and y is not None and np.array_equal(x, y))

    def masks(q: Quantization | None) -> tuple[np.ndarray | None, ...]:
        return (None,) * 4 if q is None else (q.mask_in, q.sign_in, q.mask_rec, q.sign_rec)

    synaptic = sa.mismatch.weights or sb.mismatch.weights
    return (
        np.array_equal(sa.core_map, sb.core_map)
        and same(sa.weights_in, sb.weights_in)
        and same(sa.weights_rec, sb.weights_rec)
        and sa.dt == sb.dt
        and (not synaptic or all(map(same, masks(sa.quantization), masks(sb.quantization))))
    )


def packed_batch(
    networks: Sequence[DynapSimNetwork],
    instance_network: np.ndarray,
    inputs: InputEvents,
    instances: Sequence[int] | np.ndarray,
    seed: int,
    bin_width: int = 0,
    record_instances: Sequence[int] = (),
    dtype: type = np.float32,
) -> Batch:
    """One batch of instances of several networks (sweep points) that are `packable`:
    instance b is a mismatch instance of networks[instance_network[b]]."""
    first = networks[0]
    for index, other in enumerate(networks[1:], start=1):
        if not packable(first, other):
            raise ValueError(f"network {index} differs from network 0 in neurons, weights or dt")
    s = first.spec
    variants = tuple(net.variant() for net in networks)
    return Batch(
        variants=variants,
        core_map=s.core_map,
        weights_in=None if s.weights_in is None else s.weights_in.astype(np.float32),
        weights_rec=None if s.weights_rec is None else s.weights_rec.astype(np.float32),
        dt=s.dt,
        seed=seed,
        instances=np.asarray(instances, dtype=np.uint64),
        instance_variant=np.asarray(instance_network, dtype=np.int32),
        inputs=inputs,
        bin_width=bin_width,
        record_instances=tuple(record_instances),
        dtype=dtype,
        quantization=(
            s.quantization if any(v.base_weights is not None for v in variants) else None
        ),
    )
