"""Weight quantization for DYNAP-SE2: float weights to masks, signs and base weights.

The chip stores a connection `W[pre, post]` as a sign (its synapse type, excitatory or
inhibitory) and an n-bit mask `m` that selects some of the n base weight currents
`Iw_0 .. Iw_{n-1}` of the core of the *target* neuron `post`:

    W[pre, post] = sign * sum_k bit_k(m) * Iw_k(core(post)) / Iscale

so a core realises `2**n` magnitudes, the subset sums of its base weights (the model of
Rockpool's `autoencoder_quantization`, whose keys `quantize_weights` returns). A zero weight
is no connection: mask 0, sign 0, no CAM entry.

**Method** (per core, deterministic). Let `a_i = |w_i|` be the magnitudes of the non-zero
weights in the columns of the core's neurons (input and recurrent sources alike),
`b_k = Iw_k / Iscale` the base weights in weight units, `B` the `(2**n, n)` matrix of the
bits of every mask and `s = B b` the levels. The loss is the squared error over the
connections (the squared Frobenius error of the core's restored weights: zeros stay exact):

    L(b, m) = sum_i (a_i - s[m_i])**2

It is minimised by alternating its two exact partial minimisations (a Lloyd iteration):

1. *masks given b*: each connection takes the nearest level, `m_i = argmin_m |a_i - s[m]|`.
   A value halfway between two levels takes the larger; of equal levels the smallest mask
   is taken, so a base weight of 0 is never selected. Level 0 (mask 0) is a candidate like
   the others: a weight closer to 0 than to the smallest level is dropped, and its
   connection uses no CAM entry. That is the least-squares choice, and it never adds a
   connection: a network within the chip's CAM entries stays within them.
2. *b given masks*: non-negative least squares, `min_{b >= 0} ||a - B_m b||**2`, solved from
   the normal equations `G b = h` (`G = B_m^T B_m`, `h = B_m^T a`, n x n; Lawson-Hanson's
   active set when the plain solution has a negative entry). A bit that no connection
   uses keeps its value: the loss does not depend on it.

Neither step increases `L` and there are finitely many mask assignments, so the iteration
stops at a fixed point (when an assignment repeats). The masks only depend on where the
midpoints between levels fall among the sorted magnitudes, so with prefix sums an iteration
costs `O(2**n log M)` for M connections, not `O(M)`. It runs from several deterministic
starts and keeps the lowest loss (the first on a tie): uniform grids
`b_k = t 2**k / (2**n - 1)` whose top level `t` is `max(a)` or a quantile of `a` (0.999,
0.99, 0.97, 0.94, 0.9, 0.85, 0.8), and geometric ones, `b_k` proportional to `r**k`
(`r` = 1.5, 1.75) with top level `max(a)`. The best base weights are then put in increasing
order (`Iw_0 <= Iw_1 <= ...`: any order realises the same weights, this one makes the masks
unique) and the masks assigned once more.

`n_bits` is both the mask width and the number of base weights per core
(`Iw_0 .. Iw_{n_bits-1}`), as on the chip, where both are 4; 1 to 8 bits are accepted.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from runner.physics.parameters import DEFAULT_ISCALE
from runner.physics.spec import (
    MAX_WEIGHT_BITS,
    NetworkSpec,
    Quantization,
    _core_map,
    _n_cluster,
    _positive_float32,
    _weights,
)
from runner.util.checks import check_int

__all__ = [
    "quantize",
    "quantize_weights",
    "core_losses",
    "quantization_from_spec",
    "per_core_spec",
]

_UNIFORM_TOPS = (1.0, 0.999, 0.99, 0.97, 0.94, 0.9, 0.85, 0.8)  # quantiles of a (1.0: max)
_GEOMETRIC_RATIOS = (1.5, 1.75)
_MAX_ITERATIONS = 1000  # a safety net: fixed points come in tens of iterations
# The fits of recent cores, by their magnitudes: the points of a sweep (other biases, levels,
# Iscale) share their weights, so each core is fitted once per study, not once per point
_RECENT_FITS: OrderedDict[bytes, tuple[np.ndarray, float]] = OrderedDict()
_RECENT_FITS_KEPT = 64


def _bits(n_bits: int) -> np.ndarray:
    """(2**n_bits, n_bits) 0/1: row m holds the bits of mask m."""
    masks = np.arange(2**n_bits)
    return ((masks[:, None] >> np.arange(n_bits)[None, :]) & 1).astype(np.float64)


def _levels(bits: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct levels in increasing order and, for each, its smallest mask. Summed bit
    by bit in bit order: no BLAS, the same sums on every machine."""
    sums = np.zeros(bits.shape[0])
    for k in range(bits.shape[1]):
        sums += bits[:, k] * base[k]
    order = np.lexsort((np.arange(sums.size), sums))
    sorted_sums = sums[order]
    first = np.ones(sorted_sums.size, dtype=bool)
    first[1:] = sorted_sums[1:] != sorted_sums[:-1]
    return sorted_sums[first], order[first]


def _solve(gram: np.ndarray, target: np.ndarray) -> np.ndarray:
    """G x = h, or its least-norm least-squares solution where G is singular."""
    try:
        return np.linalg.solve(gram, target)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, target, rcond=None)[0]


def _nnls(gram: np.ndarray, target: np.ndarray) -> np.ndarray:
    """argmin_{x >= 0} x^T G x - 2 h^T x: the unconstrained solution when it is >= 0 (the
    usual case), else Lawson-Hanson's active set on the normal equations."""
    x = _solve(gram, target)
    if (x >= 0).all():
        return x
    n = target.size
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tolerance = 1e-12 * max(float(np.abs(target).max()), 1e-300)
    for _ in range(3 * n):
        gradient = target - gram @ x
        free = ~passive & (gradient > tolerance)
        if not free.any():
            break
        passive[np.argmax(np.where(free, gradient, -np.inf))] = True
        while True:
            z = np.zeros(n)
            index = np.flatnonzero(passive)
            z[index] = _solve(gram[np.ix_(index, index)], target[index])
            if (z[index] > 0).all():
                x = z
                break
            blocked = passive & (z <= 0)
            step = np.min(x[blocked] / (x[blocked] - z[blocked]))
            x = x + step * (z - x)
            passive &= x > tolerance
            x[~passive] = 0.0
    return x


class _Core:
    """The sorted magnitudes of one core's connections and their prefix sums."""

    def __init__(self, magnitudes: np.ndarray, bits: np.ndarray) -> None:
        self.a = np.sort(magnitudes)
        self.sum1 = np.concatenate([[0.0], np.cumsum(self.a)])
        self.bits = bits

    def assign(self, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(levels, their masks, edges): the connections a[edges[j]:edges[j+1]] take level j."""
        levels, masks = _levels(self.bits, base)
        midpoints = (levels[:-1] + levels[1:]) / 2
        edges = np.empty(levels.size + 1, dtype=np.int64)
        edges[0], edges[-1] = 0, self.a.size
        edges[1:-1] = np.searchsorted(self.a, midpoints, side="left")
        return levels, masks, edges

    def loss(self, levels: np.ndarray, edges: np.ndarray) -> float:
        """sum_i (a_i - level_i)**2, summed directly (no cancellation when it is ~0)."""
        restored = np.repeat(levels, np.diff(edges))
        return float(np.sum((self.a - restored) ** 2))

    def fit(self, base: np.ndarray) -> tuple[np.ndarray, float]:
        """Alternate masks and base weights from `base` to a fixed point: (base, loss)."""
        seen: set[bytes] = set()
        for _ in range(_MAX_ITERATIONS):
            _, masks, edges = self.assign(base)
            key = masks.tobytes() + edges.tobytes()
            if key in seen:
                break
            seen.add(key)
            counts = np.diff(edges).astype(np.float64)
            sums = self.sum1[edges[1:]] - self.sum1[edges[:-1]]
            selected = self.bits[masks]  # (levels, n_bits)
            gram = (selected.T * counts) @ selected
            target = selected.T @ sums
            active = np.diag(gram) > 0
            base = base.copy()
            if active.all():
                base = _nnls(gram, target)
            else:
                base[active] = _nnls(gram[np.ix_(active, active)], target[active])
        levels, _, edges = self.assign(base)
        return base, self.loss(levels, edges)

    def starts(self, n_bits: int) -> list[np.ndarray]:
        powers = 2.0 ** np.arange(n_bits)
        tops = np.quantile(self.a, _UNIFORM_TOPS, method="inverted_cdf")
        starts = [top * powers / (2**n_bits - 1) for top in tops]
        for ratio in _GEOMETRIC_RATIOS:
            geometric = ratio ** np.arange(n_bits)
            starts.append(self.a[-1] * geometric / geometric.sum())
        return starts


def _fit_core(magnitudes: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, float]:
    """The best base weights of one core (increasing) and their loss; zeros if no connection.
    A deterministic function of the magnitudes: a repeated core is looked up."""
    n_bits = bits.shape[1]
    if magnitudes.size == 0:
        return np.zeros(n_bits), 0.0
    magnitudes = np.ascontiguousarray(magnitudes, dtype=np.float64)
    key = hashlib.blake2b(magnitudes.tobytes(), digest_size=32, salt=bytes([n_bits])).digest()
    if key in _RECENT_FITS:
        _RECENT_FITS.move_to_end(key)
    else:
        core = _Core(magnitudes, bits)
        fits = [core.fit(start) for start in core.starts(n_bits)]
        base, loss = min(fits, key=lambda fit: fit[1])  # the first of the best
        _RECENT_FITS[key] = (np.sort(base), loss)
        if len(_RECENT_FITS) > _RECENT_FITS_KEPT:
            _RECENT_FITS.popitem(last=False)
    base, loss = _RECENT_FITS[key]
    return base.copy(), loss


def _check_n_bits(n_bits: Any) -> int:
    return check_int("n_bits", n_bits, 1, MAX_WEIGHT_BITS + 1)


def quantize(
    weights_in: np.ndarray | None,
    weights_rec: np.ndarray | None,
    core_map: np.ndarray,
    n_cluster: int,
    Iscale: float,
    n_bits: int,
) -> tuple[Quantization, list[float]]:
    """The quantization of checked weights, and each core's loss (mean squared error over its
    connections, in weight units). The method is the module docstring's."""
    bits = _bits(n_bits)
    columns = [core_map == core for core in range(n_cluster)]
    matrices = [w for w in (weights_in, weights_rec) if w is not None]
    base = np.zeros((n_cluster, n_bits))
    losses = []
    for core, members in enumerate(columns):
        parts = [w[:, members] for w in matrices]
        magnitudes = np.concatenate([np.abs(part[part != 0]) for part in parts] or [np.zeros(0)])
        base[core], loss = _fit_core(magnitudes, bits)
        losses.append(loss / magnitudes.size if magnitudes.size else 0.0)

    # masks from the final, sorted base weights (ties and equal levels as in the fit)
    edges_and_masks = []
    for core in range(n_cluster):
        levels, masks = _levels(bits, base[core])
        edges_and_masks.append(((levels[:-1] + levels[1:]) / 2, masks))

    def masks_and_signs(w: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        if w is None:
            return None, None
        mask = np.zeros(w.shape, dtype=np.int32)
        for core, members in enumerate(columns):
            midpoints, masks = edges_and_masks[core]
            mask[:, members] = masks[np.searchsorted(midpoints, np.abs(w[:, members]), "right")]
        sign = (np.sign(w) * (mask > 0)).astype(np.int8)
        return mask, sign

    mask_in, sign_in = masks_and_signs(weights_in)
    mask_rec, sign_rec = masks_and_signs(weights_rec)
    quantization = Quantization(
        n_bits=n_bits, base_weights=base * Iscale,
        mask_in=mask_in, sign_in=sign_in, mask_rec=mask_rec, sign_rec=sign_rec,
    )  # fmt: skip
    return quantization, losses


def per_core_spec(quantization: Quantization, core_map: np.ndarray) -> dict[str, list[Any]]:
    """A quantization as Rockpool's `autoencoder_quantization` returns it: per core, the
    masks and signs of that core's columns (zeros elsewhere) and the base weights Iw_k."""
    spec: dict[str, list[Any]] = {}
    for which in ("in", "rec"):
        mask = getattr(quantization, f"mask_{which}")
        sign = getattr(quantization, f"sign_{which}")
        spec[f"weights_{which}"], spec[f"sign_{which}"] = [], []
        for core in range(quantization.n_cluster):
            members = core_map == core
            for key, array in ((f"weights_{which}", mask), (f"sign_{which}", sign)):
                spec[key].append(None if array is None else np.where(members, array, 0))
    for k in range(quantization.n_bits):
        spec[f"Iw_{k}"] = [float(value) for value in quantization.base_weights[:, k]]
    return spec


def quantize_weights(
    weights_in: Any,
    weights_rec: Any,
    core_map: Sequence[int] | np.ndarray,
    Iscale: float = DEFAULT_ISCALE,
    n_bits: int = 4,
    *,
    n_cluster: int | None = None,
) -> dict[str, Any]:
    """Quantize float weights (units of Iscale) for the chip, deterministically.

    weights_in (Nin, N) or None, weights_rec (N, N) [pre, post] or None, core_map (N,) the
    core of each neuron; n_cluster defaults to max(core_map) + 1. Returns the keys of
    Rockpool's `autoencoder_quantization`, lists over cores: `weights_in`, `weights_rec`
    (int32 masks in [0, 2**n_bits), the inputs' shapes, zero outside the core's columns),
    `sign_in`, `sign_rec` (int8: +1, -1, 0 where there is no connection), `Iw_0` ..
    `Iw_{n_bits-1}` (A), `quantization_loss` (mean squared error over the core's connections,
    in weight units); and `restored_in`, `restored_rec`: the float weights the quantized chip
    realises, sign * sum_k bit_k(mask) * Iw_k(core of the target neuron) / Iscale.
    The method is in this module's docstring.
    """
    n_bits = _check_n_bits(n_bits)
    Iscale = _positive_float32("Iscale", Iscale, "A per weight unit")
    if n_cluster is None:
        cores = _core_map(core_map, None)
        n_cluster = int(cores.max()) + 1
    else:
        n_cluster = _n_cluster(n_cluster)
        cores = _core_map(core_map, n_cluster)
    n_neurons = cores.size
    weights_in = _weights("weights_in", weights_in, (None, n_neurons))
    weights_rec = _weights("weights_rec", weights_rec, (n_neurons, n_neurons))
    quantization, losses = quantize(weights_in, weights_rec, cores, n_cluster, Iscale, n_bits)
    restored_in, restored_rec = quantization.restored(cores, Iscale)
    return {
        **per_core_spec(quantization, cores),
        "quantization_loss": losses,
        "restored_in": restored_in,
        "restored_rec": restored_rec,
    }


def core_losses(original: NetworkSpec, quantized: NetworkSpec) -> np.ndarray:
    """(n_cluster,) per core: the mean squared error of `quantized`'s weights against
    `original`'s over the core's connections (the non-zero original weights in its neurons'
    columns; 0 for a core without any), in squared weight units (Iscale**2): the
    `quantization_loss` of `quantize_weights`, measured on the weights the quantized network
    simulates (`DynapSimNetwork.quantized` keeps no loss)."""
    squared = np.zeros(original.n_cluster)
    counts = np.zeros(original.n_cluster)
    pairs = ((original.weights_in, quantized.weights_in),
             (original.weights_rec, quantized.weights_rec))  # fmt: skip
    for before, after in pairs:
        if before is None:
            continue
        connected = before != 0
        errors = np.where(connected, (before - after) ** 2, 0.0).sum(axis=0)  # per target
        squared += np.bincount(original.core_map, errors, original.n_cluster)
        counts += np.bincount(original.core_map, connected.sum(axis=0), original.n_cluster)
    return np.divide(squared, counts, out=np.zeros_like(squared), where=counts > 0)


def _per_core_masks(
    name: str, value: Any, core_map: np.ndarray, n_cluster: int
) -> np.ndarray | None:
    """Rockpool's per-core list (core c's masks in its own columns) as one matrix; a single
    matrix is taken as it is. A non-zero entry in another core's columns is refused."""
    if value is None:
        return None
    expected = f"one (rows, N={core_map.size}) matrix or n_cluster={n_cluster} such matrices"
    if isinstance(value, Sequence) and any(entry is None for entry in value):
        if all(entry is None for entry in value):  # Rockpool's value for "no such weights"
            return None
        raise ValueError(f"{name} must be {expected}, got None for some cores only")
    try:
        array = np.asarray(value)
    except ValueError:  # matrices of different shapes
        raise ValueError(f"{name} must be {expected}, got matrices of different shapes") from None
    if array.ndim == 2 and array.shape[1] == core_map.size:
        return array
    if array.ndim != 3 or array.shape[0] != n_cluster or array.shape[2] != core_map.size:
        raise ValueError(f"{name} must be {expected}, got shape {array.shape}")
    owner = core_map[None, None, :] == np.arange(n_cluster)[:, None, None]
    stray = (array != 0) & ~owner
    if stray.any():
        core, row, column = (int(i) for i in np.argwhere(stray)[0])
        raise ValueError(
            f"{name}[{core}] is non-zero at [{row}, {column}], a column of core "
            f"{core_map[column]}: each core's entry holds its own neurons' columns only"
        )
    return array.sum(axis=0)


def quantization_from_spec(
    n_cluster: int,
    core_map: Sequence[int] | np.ndarray,
    weights_in: Any,
    weights_rec: Any,
    sign_in: Any,
    sign_rec: Any,
    base_weights: dict[int, Any],
) -> Quantization:
    """A quantized spec (`autoencoder_quantization`'s keys: per-core masks and signs,
    base_weights[k] = Iw_k, a list over cores) as a checked `Quantization`."""
    n_cluster = _n_cluster(n_cluster)
    cores = _core_map(core_map, n_cluster)
    n_bits = len(base_weights)
    if not base_weights or sorted(base_weights) != list(range(n_bits)):
        given = ", ".join(f"Iw_{k}" for k in sorted(base_weights)) or "none"
        raise ValueError(
            f"a quantized spec needs its base weights Iw_0..Iw_{{n_bits-1}} (as many as the "
            f"masks have bits), got {given}"
        )
    table = np.zeros((n_cluster, n_bits))
    for k in range(n_bits):
        values = np.asarray(base_weights[k], dtype=object)
        if values.shape != (n_cluster,):
            raise ValueError(
                f"Iw_{k} must have one current per core (n_cluster={n_cluster}), "
                f"got shape {values.shape}"
            )
        try:
            table[:, k] = values.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"Iw_{k} must hold numbers (A), got {list(values)}") from None
    if not np.isfinite(table).all():
        raise ValueError(f"Iw_0..Iw_{n_bits - 1} must be finite, got {table}")
    masks = {
        name: _per_core_masks(name, value, cores, n_cluster)
        for name, value in (("weights_in", weights_in), ("sign_in", sign_in),
                            ("weights_rec", weights_rec), ("sign_rec", sign_rec))
    }  # fmt: skip
    return Quantization(
        n_bits=n_bits, base_weights=table,
        mask_in=masks["weights_in"], sign_in=masks["sign_in"],
        mask_rec=masks["weights_rec"], sign_rec=masks["sign_rec"],
    )  # fmt: skip
