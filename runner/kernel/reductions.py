"""Reductions of a full spike record: what the kernel accumulates on the fly, from a raster.

The reference backend uses this; tests use it to check the kernel's reductions against
what its own raster (or the reference's record) implies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["reduce_raster", "first_nonfinite_step"]


def reduce_raster(spikes: np.ndarray, bin_width: int) -> dict[str, np.ndarray]:
    """spikes: (B, T, N) spike counts -> the BatchResult reduction fields."""
    counts = np.nan_to_num(np.asarray(spikes, dtype=np.float64), nan=0.0).astype(np.int64)
    n_instances, n_steps, n_neurons = counts.shape
    fired = counts > 0
    steps = np.arange(n_steps)[None, :, None]
    any_spike = fired.any(axis=1)
    first = np.where(any_spike, np.argmax(fired, axis=1), -1).astype(np.int32)
    last = np.where(any_spike, n_steps - 1 - np.argmax(fired[:, ::-1], axis=1), -1).astype(np.int32)

    # intervals between consecutive spiking steps: previous spiking step carried forward
    previous = np.where(fired, steps, -1)
    previous = np.maximum.accumulate(previous, axis=1)
    previous = np.concatenate([np.full((n_instances, 1, n_neurons), -1), previous[:, :-1]], axis=1)
    interval = np.where(fired & (previous >= 0), steps - previous, 0).astype(np.float64)

    width = bin_width or n_steps
    n_bins = -(-n_steps // width)
    padded = np.zeros((n_instances, n_bins * width, n_neurons), dtype=np.int64)
    padded[:, :n_steps] = counts
    binned = padded.reshape(n_instances, n_bins, width, n_neurons).sum(axis=2)
    return {
        "spike_count": counts.sum(axis=1),
        "first_spike_step": first,
        "last_spike_step": last,
        "spiking_steps": fired.sum(axis=1).astype(np.int32),
        "isi_sumsq": (interval * interval).sum(axis=1),
        "binned_counts": binned.astype(np.int32),
    }


def first_nonfinite_step(traces: dict[str, np.ndarray]) -> np.ndarray:
    """traces: name -> (B, T, N) -> (B,) first step where any state is NaN/inf, or -1."""
    bad = np.zeros(next(iter(traces.values())).shape[:2], dtype=bool)
    for trace in traces.values():
        bad |= ~np.isfinite(trace).all(axis=2)
    return np.where(bad.any(axis=1), np.argmax(bad, axis=1), -1).astype(np.int32)
