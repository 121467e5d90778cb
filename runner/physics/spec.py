"""The network specification: `dynapsim_net_from_spec`'s arguments, validated once.

`NetworkSpec.build(...)` checks every field and names the field and what was expected,
so that bad input fails before any work starts. Per-cluster bias lists are expanded to
per-neuron arrays the way Rockpool does (`np.place` over the core map). A quantized network
also holds its chip form (`Quantization`: masks, signs, base weights), from which its float
weights are restored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runner.physics.mismatch import MismatchModel
from runner.physics.parameters import (
    CURRENT_NAMES,
    DEFAULT_CURRENTS,
    DEFAULT_DT,
    DEFAULT_ISCALE,
    DEFAULT_LAYOUT,
    LAYOUT_NAMES,
    POSITIVE_PARAMETERS,
)
from runner.util.checks import UINT64_STOP, check_int

__all__ = ["MAX_WEIGHT_BITS", "NetworkSpec", "Quantization"]

_FLOAT32 = np.finfo(np.float32)
MAX_WEIGHT_BITS = 8  # masks of up to 8 bits (256 levels); the DYNAP-SE2 has 4


def _finite_scalar(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not np.isscalar(value)
        or np.iscomplexobj(value)
        or not np.isreal(value)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _positive_float32(name: str, value: Any, unit: str) -> float:
    """A scale the float32 model divides or multiplies by: > 0 also after rounding."""
    value = _finite_scalar(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0 ({unit}), got {value}")
    if value > float(_FLOAT32.max) or np.float32(value) == 0:
        raise ValueError(
            f"{name}={value} is 0 or inf in float32, the model's precision ({unit}; "
            f"float32 holds {_FLOAT32.smallest_subnormal:.3g} to {_FLOAT32.max:.3g})"
        )
    return value


def _check_float32(name: str, values: np.ndarray) -> None:
    """Finite, also once cast to float32 (the precision the model runs in)."""
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} must be finite (no NaN/inf), got {values[~np.isfinite(values)][:3]}"
        )
    if (np.abs(values) > _FLOAT32.max).any():
        raise ValueError(
            f"{name} must fit in float32 (|value| <= {_FLOAT32.max:.3g}, the model's precision), "
            f"got {values.flat[np.argmax(np.abs(values))]}"
        )


def _check_range(name: str, values: np.ndarray) -> None:
    _check_float32(name, values)
    if name in POSITIVE_PARAMETERS and (values.astype(np.float32) <= 0).any():
        raise ValueError(
            f"{name} must be > 0 in float32 (it divides or sets a scale; the smallest float32 "
            f"is {_FLOAT32.smallest_subnormal:.3g}), got {values.min()}"
        )
    if (values < 0).any():
        raise ValueError(f"{name} must be >= 0 (a current), got {values.min()}")


def _as_float_array(name: str, value: Any) -> np.ndarray:
    try:
        if np.iscomplexobj(value):
            raise TypeError("complex values (the model's parameters and weights are real)")
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numeric, got {type(value).__name__}: {error}") from None
    return array


def _expand_per_cluster(name: str, values: Any, core_map: np.ndarray, n_cluster: int) -> np.ndarray:
    """A per-cluster list (scalars or per-neuron arrays of that cluster) -> (N,) array."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(
            f"{name} must be a list with one entry per cluster ({n_cluster}), "
            f"got {type(values).__name__}"
        )
    if len(values) != n_cluster:
        raise ValueError(f"{name} must have n_cluster={n_cluster} entries, got {len(values)}")
    out = np.zeros(core_map.size, dtype=np.float64)
    for cluster, entry in enumerate(values):
        members = core_map == cluster
        array = _as_float_array(f"{name}[{cluster}]", entry)
        if array.ndim > 1 or (array.ndim == 1 and array.size != members.sum()):
            raise ValueError(
                f"{name}[{cluster}] must be a scalar or an array of the {members.sum()} neurons "
                f"of cluster {cluster}, got shape {array.shape}"
            )
        np.place(out, members, array)
    _check_range(name, out)
    return out


def _expand_layout(name: str, value: Any, n_neurons: int) -> np.ndarray:
    array = _as_float_array(name, value)
    if array.ndim > 1 or (array.ndim == 1 and array.size != n_neurons):
        raise ValueError(
            f"{name} must be a scalar or an array of the {n_neurons} neurons, "
            f"got shape {array.shape}"
        )
    array = np.broadcast_to(array, (n_neurons,)).copy()
    _check_range(name, array)
    return array


def _weights(name: str, value: Any, shape: tuple[int | None, int]) -> np.ndarray | None:
    if value is None:
        return None
    array = _as_float_array(name, value)
    rows, cols = shape
    expected = f"({'Nin' if rows is None else rows}, {cols})"
    if array.ndim != 2 or array.shape[1] != cols or (rows is not None and array.shape[0] != rows):
        hint = ""
        if array.ndim == 3:
            hint = " (per-core masks are a quantized spec: give its Iw_0.. and signs too)"
        raise ValueError(
            f"{name} must have shape {expected} for {cols} neurons, got {array.shape}{hint}"
        )
    _check_float32(name, array)
    return array


def _n_cluster(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"n_cluster must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"n_cluster must be >= 1, got {value}")
    return int(value)


def _core_map(value: Any, n_cluster: int | None) -> np.ndarray:
    """Core ids as int32, each in [0, n_cluster) (n_cluster None: any id >= 0)."""
    array = np.asarray(value)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"core_map must be a non-empty 1-D list of core ids, got shape {array.shape}"
        )
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and (array == np.round(array)).all()
    )
    if not integral:
        raise TypeError(f"core_map must hold integer core ids, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if n_cluster is None and array.min() < 0:
        raise ValueError(f"core_map ids must be >= 0, got {array.min()}")
    if n_cluster is not None and (array.min() < 0 or array.max() >= n_cluster):
        raise ValueError(
            f"core_map ids must be in [0, n_cluster={n_cluster}), "
            f"got [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int32)


def _mask_and_sign(
    which: str, mask: Any, sign: Any, n_bits: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Masks as int32 in [0, 2**n_bits), signs as int8 in {-1, 0, 1}, non-zero under a mask."""
    if mask is None and sign is None:
        return None, None
    if mask is None or sign is None:
        raise ValueError(f"weights_{which} masks and sign_{which} come together: one is None")
    mask, sign = np.asarray(mask), np.asarray(sign)
    if mask.ndim != 2 or sign.shape != mask.shape:
        raise ValueError(
            f"weights_{which} masks and sign_{which} must be 2-D of one shape, "
            f"got {mask.shape} and {sign.shape}"
        )
    top = 2**n_bits - 1
    for name, array, valid in (
        (f"weights_{which} masks", mask, f"ints in [0, {top}] (n_bits={n_bits})"),
        (f"sign_{which}", sign, "-1, 0 or 1"),
    ):
        if not (np.issubdtype(array.dtype, np.number) and np.isfinite(array).all()):
            raise ValueError(f"{name} must be {valid}, got dtype {array.dtype} or NaN/inf")
    bad = (mask != np.round(mask)) | (mask < 0) | (mask > top)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"weights_{which} masks must be ints in [0, {top}] (n_bits={n_bits}), "
            f"got {mask[where]} at {list(where)}"
        )
    if not np.isin(sign, (-1, 0, 1)).all():
        where = tuple(int(i) for i in np.argwhere(~np.isin(sign, (-1, 0, 1)))[0])
        raise ValueError(f"sign_{which} must be -1, 0 or 1, got {sign[where]} at {list(where)}")
    unsigned = (mask > 0) & (sign == 0)
    if unsigned.any():
        where = [int(i) for i in np.argwhere(unsigned)[0]]
        raise ValueError(
            f"sign_{which} must be +1 or -1 where weights_{which} has a mask (a CAM entry needs "
            f"a synapse type), got 0 at {where}"
        )
    return mask.astype(np.int32), sign.astype(np.int8)


@dataclass(frozen=True)
class Quantization:
    """A network's weights as the chip holds them: per connection an n_bits mask and a sign,
    per core n_bits base weight currents Iw_0..Iw_{n_bits-1}. For W[pre, post] the chip
    realises (Rockpool's `WeightHandler.restore_weight_matrix`, column by column)

        W = sign * sum_k bit_k(mask) * Iw_k(core of post) / Iscale.

    A mask of 0 is no connection (no CAM entry); its sign does not matter. Checked when built,
    so that a spec never holds masks that its weights do not come from."""

    n_bits: int
    base_weights: np.ndarray  # (n_cluster, n_bits) float64, A: Iw_k of each core
    mask_in: np.ndarray | None = None  # (Nin, N) int32 in [0, 2**n_bits)
    sign_in: np.ndarray | None = None  # (Nin, N) int8 in {-1, 0, 1}
    mask_rec: np.ndarray | None = None  # (N, N) [pre, post]
    sign_rec: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_bits = check_int("n_bits", self.n_bits, 1, MAX_WEIGHT_BITS + 1)
        base = _as_float_array("Iw", self.base_weights)
        if base.ndim != 2 or base.shape[1] != n_bits:
            raise ValueError(
                f"base weights must be (n_cluster, n_bits={n_bits}): Iw_0..Iw_{n_bits - 1} of "
                f"each core, got shape {base.shape}"
            )
        _check_float32("Iw", base)
        if (base < 0).any():
            raise ValueError(f"Iw_0..Iw_{n_bits - 1} must be >= 0 (currents), got {base.min()}")
        mask_in, sign_in = _mask_and_sign("in", self.mask_in, self.sign_in, n_bits)
        mask_rec, sign_rec = _mask_and_sign("rec", self.mask_rec, self.sign_rec, n_bits)
        if mask_rec is not None and mask_rec.shape[0] != mask_rec.shape[1]:
            raise ValueError(f"weights_rec masks must be square (N, N), got {mask_rec.shape}")
        checked = dict(n_bits=n_bits, base_weights=base, mask_in=mask_in, sign_in=sign_in,
                       mask_rec=mask_rec, sign_rec=sign_rec)  # fmt: skip
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def n_cluster(self) -> int:
        return int(self.base_weights.shape[0])

    def levels(self) -> np.ndarray:
        """(n_cluster, 2**n_bits) A: the current of every mask in every core, summed bit by bit
        in bit order (Rockpool's order, so that restored weights are its own to the last bit)."""
        masks = np.arange(2**self.n_bits)
        levels = np.zeros((self.n_cluster, masks.size))
        for k in range(self.n_bits):
            levels += ((masks >> k) & 1)[None, :] * self.base_weights[:, k : k + 1]
        return levels

    def signed_bits(self, mask: np.ndarray | None, sign: np.ndarray | None) -> np.ndarray | None:
        """(n_bits, rows, N) int8: sign * bit_k(mask) of each connection (None: no matrix),
        the integer weights of base weight k (synaptic mismatch)."""
        if mask is None or sign is None:
            return None
        return np.stack([((mask >> k) & 1).astype(np.int8) * sign for k in range(self.n_bits)])

    def restored(
        self, core_map: np.ndarray, Iscale: float
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(weights_in, weights_rec) that the chip realises, in units of Iscale (float64)."""
        levels = self.levels()

        def restore(mask: np.ndarray | None, sign: np.ndarray | None) -> np.ndarray | None:
            if mask is None or sign is None:
                return None
            return levels[core_map[None, :], mask] * sign / Iscale

        return restore(self.mask_in, self.sign_in), restore(self.mask_rec, self.sign_rec)


@dataclass(frozen=True)
class NetworkSpec:
    """A validated DynapSim network: per-neuron nominal parameters, weights, mismatch."""

    n_cluster: int
    core_map: np.ndarray  # (N,) int32
    weights_in: np.ndarray | None  # (Nin, N), quantized input weights
    weights_rec: np.ndarray | None  # (N, N) [pre, post], quantized recurrent weights
    nominal: dict[str, np.ndarray]  # the 24 parameters, (N,) float64 each
    Iscale: float = DEFAULT_ISCALE
    dt: float = DEFAULT_DT
    mismatch: MismatchModel = field(default_factory=MismatchModel)
    seed: int = 0
    quantization: Quantization | None = None  # the chip form the weights are restored from

    @property
    def n_neurons(self) -> int:
        return int(self.core_map.size)

    @property
    def n_inputs(self) -> int:
        """Input channels: rows of weights_in, or one per neuron without it."""
        return self.n_neurons if self.weights_in is None else int(self.weights_in.shape[0])

    @classmethod
    def build(
        cls,
        n_cluster: int,
        core_map: Sequence[int] | np.ndarray,
        weights_in: Any,
        weights_rec: Any,
        currents: Mapping[str, Any],
        layout: Mapping[str, Any],
        Iscale: float = DEFAULT_ISCALE,
        percent_mismatch: float | None = None,
        dt: float = DEFAULT_DT,
        seed: int = 0,
        mismatch_options: Mapping[str, Any] | None = None,
        quantization: Quantization | None = None,
    ) -> NetworkSpec:
        """Validate everything; `currents[name]` is a per-cluster list or None (default).
        With `quantization` the weights are restored from it (weights_in/rec must be None)."""
        n_cluster = _n_cluster(n_cluster)
        core_map = _core_map(core_map, n_cluster)
        n_neurons = core_map.size
        unknown = sorted(set(currents) - set(CURRENT_NAMES)) + sorted(
            set(layout) - set(LAYOUT_NAMES)
        )
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {unknown}; the currents are {list(CURRENT_NAMES)}, "
                f"the layout constants {list(LAYOUT_NAMES)}"
            )
        nominal = {}
        for name in CURRENT_NAMES:
            values = currents.get(name)
            if values is None:
                values = [DEFAULT_CURRENTS[name]] * n_cluster
            nominal[name] = _expand_per_cluster(name, values, core_map, n_cluster)
        for name in LAYOUT_NAMES:
            nominal[name] = _expand_layout(name, layout.get(name, DEFAULT_LAYOUT[name]), n_neurons)

        Iscale = _positive_float32("Iscale", Iscale, "A per weight unit")
        if quantization is not None:
            weights_in, weights_rec = _quantized_weights(
                quantization, weights_in, weights_rec, core_map, n_cluster, Iscale
            )
        dt = _positive_float32("dt", dt, "seconds")
        percent = (
            0.0
            if percent_mismatch is None
            else _finite_scalar("percent_mismatch", percent_mismatch)
        )
        if percent < 0:
            raise ValueError(f"percent_mismatch must be >= 0 (0.3 means 30 %), got {percent}")
        seed = check_int("seed", seed, stop=UINT64_STOP)
        options = dict(mismatch_options or {})
        if "parameters" in options and options["parameters"] is not None:
            options["parameters"] = tuple(options["parameters"])
        else:
            options.pop("parameters", None)
        return cls(
            n_cluster=n_cluster,
            core_map=core_map,
            weights_in=_weights("weights_in", weights_in, (None, n_neurons)),
            weights_rec=_weights("weights_rec", weights_rec, (n_neurons, n_neurons)),
            nominal=nominal,
            Iscale=Iscale,
            dt=dt,
            mismatch=MismatchModel(percent=percent, **options),
            seed=seed,
            quantization=quantization,
        )


def _quantized_weights(
    quantization: Quantization,
    weights_in: Any,
    weights_rec: Any,
    core_map: np.ndarray,
    n_cluster: int,
    Iscale: float,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The weights a quantization restores, once it is checked against the network."""
    if weights_in is not None or weights_rec is not None:
        raise ValueError(
            "give the weights or their quantization, not both: a quantized network's weights "
            "are restored from its masks, signs and base weights"
        )
    if quantization.n_cluster != n_cluster:
        raise ValueError(
            f"the quantization has base weights for {quantization.n_cluster} cores, "
            f"the network n_cluster={n_cluster}"
        )
    n_neurons = core_map.size
    for name, mask in (("weights_in", quantization.mask_in),
                       ("weights_rec", quantization.mask_rec)):  # fmt: skip
        if mask is not None and mask.shape[1] != n_neurons:
            raise ValueError(
                f"{name} masks must have one column per neuron ({n_neurons}), got {mask.shape}"
            )
    return quantization.restored(core_map, Iscale)
