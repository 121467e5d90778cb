"""Per-neuron metrics from a run's reductions: rate, CV of ISI, first-spike latency.

Definitions (also in the README): rate = spikes / (T * dt); intervals are between
consecutive steps with >= 1 spike, in seconds; CV = std / mean of those intervals, NaN
with fewer than 2 intervals; latency = first spiking step * dt, NaN if silent.
"""

from __future__ import annotations

import numpy as np

from .batch import BatchResult

__all__ = ["neuron_metrics"]


def neuron_metrics(result: BatchResult, n_steps: int, dt: float) -> dict[str, np.ndarray]:
    """(B, N) float64 arrays: rate_hz, isi_mean_s, isi_cv, first_spike_s."""
    n_intervals = result.spiking_steps.astype(np.float64) - 1.0
    isi_sum = (result.last_spike_step - result.first_spike_step).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n_intervals >= 1, isi_sum / n_intervals, np.nan)
        variance = np.where(n_intervals >= 2, result.isi_sumsq / n_intervals - mean * mean, np.nan)
        cv = np.sqrt(np.maximum(variance, 0.0)) / mean
    first = result.first_spike_step
    return {
        "rate_hz": result.spike_count / (n_steps * dt),
        "isi_mean_s": mean * dt,
        "isi_cv": np.where(n_intervals >= 2, cv, np.nan),
        "first_spike_s": np.where(first >= 0, first * dt, np.nan),
    }
