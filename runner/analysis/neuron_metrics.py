"""Per-neuron metrics from a run's reductions: rate, CV of ISI, first-spike latency.

Definitions (also in docs/metrics.md): rate = spikes / (T * dt); intervals are between
consecutive steps with >= 1 spike, in seconds; CV = std / mean of those intervals, NaN
with fewer than 2 intervals; latency = first spiking step * dt, NaN if silent.
`neuron_table` is the one place the per-neuron table (one row per instance and neuron) is
built: the run's chunk and nominal tables and `SimulationResult.to_frame` all use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from runner.kernel.batch import BatchResult

__all__ = ["neuron_metrics", "neuron_table"]


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


def _repeat(values: Any, times: int) -> Any:
    """Each entry `times` times; pandas arrays (nullable classes) keep their type."""
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values.repeat(times)
    return np.repeat(np.asarray(values), times)


def neuron_table(
    head: dict[str, np.ndarray],
    core_map: np.ndarray,
    spike_count: np.ndarray,
    metrics: dict[str, np.ndarray],
    nonfinite: np.ndarray | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    """One row per (instance, neuron), instance-major.

    head: per-instance columns (B,) repeated over the neurons; then neuron, core,
    spike_count (B, N), the (B, N) `metrics`, and `nonfinite` (B,) when given. compact
    stores neuron ids and counts as int32 and metrics as float32 (the run's chunk files).
    """
    n_instances, n_neurons = spike_count.shape
    neuron_ids = np.arange(n_neurons, dtype=np.int32 if compact else np.int64)
    columns = {
        **{name: _repeat(values, n_neurons) for name, values in head.items()},
        "neuron": np.tile(neuron_ids, n_instances),
        "core": np.tile(core_map, n_instances),
        "spike_count": spike_count.reshape(-1).astype(np.int32 if compact else spike_count.dtype),
        **{
            name: values.reshape(-1).astype(np.float32 if compact else values.dtype)
            for name, values in metrics.items()
        },
    }
    if nonfinite is not None:
        columns["nonfinite"] = np.repeat(np.asarray(nonfinite, dtype=bool), n_neurons)
    return pd.DataFrame(columns)
