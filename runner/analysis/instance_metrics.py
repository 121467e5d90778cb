"""Per-instance metrics: activity aggregates and robustness against the nominal instance.

The nominal instance is the same sweep point without mismatch (percent 0: no draws at all).
Definitions (docs/metrics.md), with r the per-neuron rates of an instance and r0 those of
the nominal instance:
- rate_rel_error = sum|r - r0| / sum r0 (population-weighted relative error; NaN if r0 == 0)
- rate_corr = Pearson correlation of r and r0 over neurons (NaN if either is constant)
- frac_within = fraction of neurons with |r - r0| <= within * r0 (silent stays silent),
  decided exactly on the spike counts c = r * T dt and c0 (the same duration):
  q |c - c0| <= p c0 in integers, with within = p / q the decimal as written (0.2 = 1/5).
  In floating point the boundary (25 -> 30 and 25 -> 20 spikes at 20 %) would fall one
  way or the other by an ulp of the rates; recompute it from the spike_count columns.
All three are NaN against a non-finite nominal instance (r0 NaN): there is nothing to compare.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

from runner.kernel.batch import BatchResult

__all__ = ["robustness_metrics", "instance_metrics", "core_metrics", "CORE_METRICS"]

# Per (instance, core): the core's neurons alone (cores with other biases differ).
CORE_METRICS = ("mean_rate_hz", "rate_std_hz", "rate_rel_error", "rate_corr", "frac_within")


def _within_counts(counts: np.ndarray, nominal: np.ndarray, within: float) -> np.ndarray:
    """|c - c0| <= within * c0, exactly: integers, `within` as the decimal it was written."""
    ratio = Fraction(repr(float(within))).limit_denominator(10**9)
    difference = np.abs(counts - nominal)
    return difference * ratio.denominator <= nominal * ratio.numerator


def robustness_metrics(
    rates: np.ndarray, nominal: np.ndarray, within: float, duration: float = 1.0
) -> dict[str, np.ndarray]:
    """rates: (B, N), nominal: (N,) or (B, N) (each instance's own point) -> (B,) arrays.
    Rates of spike counts over `duration` (T dt) seconds, as a run's are: frac_within is
    decided exactly on those counts (rate x duration); rates that are not whole counts
    over `duration` are compared in floating point."""
    nominal = np.broadcast_to(np.asarray(nominal, dtype=np.float64), rates.shape)
    error = np.abs(rates - nominal)
    total = nominal.sum(axis=1)
    centred = rates - rates.mean(axis=1, keepdims=True)
    centred_nominal = nominal - nominal.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=1) * (centred_nominal**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(norm > 0, (centred * centred_nominal).sum(axis=1) / norm, np.nan)
        rel_error = np.where(total > 0, error.sum(axis=1) / total, np.nan)
    counts = rates * duration
    nominal_counts = np.where(np.isfinite(nominal), nominal, 0.0) * duration
    integral = (np.abs(counts - np.rint(counts)) < 1e-6) & (
        np.abs(nominal_counts - np.rint(nominal_counts)) < 1e-6
    )  # rates of spike counts over `duration`, as every run's: decided exactly
    exact = _within_counts(np.rint(counts).astype(np.int64),
                           np.rint(nominal_counts).astype(np.int64), within)  # fmt: skip
    close = np.abs(counts - nominal_counts) <= within * nominal_counts
    within_fraction = np.where(integral, exact, close).mean(axis=1)
    return {
        "rate_rel_error": rel_error,
        "rate_corr": corr,
        "frac_within": np.where(np.isnan(nominal).any(axis=1), np.nan, within_fraction),
    }


def instance_metrics(
    result: BatchResult,
    neuron: dict[str, np.ndarray],
    nominal_rate: np.ndarray,
    dt: float,
    bin_steps: int,
    bin_width: int,
    n_steps: int,
    within: float,
    saturated_rate_hz: float,
) -> dict[str, np.ndarray]:
    """(B,) arrays from the reductions, the per-neuron metrics and the nominal rates.

    The kernel bins `result.binned_counts` are `bin_width` steps wide, a divisor of
    `bin_steps` (a readout may need finer bins): they are summed into bins of `bin_steps`.
    """
    rates = neuron["rate_hz"]
    kernel_bins = result.binned_counts.sum(axis=2, dtype=np.int64)  # (B, kernel bins)
    counts = np.add.reduceat(kernel_bins, np.arange(0, kernel_bins.shape[1],
                                                    bin_steps // bin_width), axis=1)  # fmt: skip
    n_bins = counts.shape[1]
    widths = np.full(n_bins, bin_steps, dtype=np.float64)
    widths[-1] = n_steps - (n_bins - 1) * bin_steps
    population = counts / (rates.shape[1] * widths * dt)  # (B, bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as intended
        mean_cv = np.nanmean(neuron["isi_cv"], axis=1)
        mean_latency = np.nanmean(neuron["first_spike_s"], axis=1)
    return {
        "mean_rate_hz": rates.mean(axis=1),
        "rate_std_hz": rates.std(axis=1),
        "pop_rate_std_hz": population.std(axis=1),
        "pop_rate_peak_hz": population.max(axis=1),
        "mean_isi_cv": mean_cv,
        "mean_first_spike_s": mean_latency,
        "n_silent": (result.spike_count == 0).sum(axis=1),
        "n_saturated": (rates >= saturated_rate_hz).sum(axis=1),
        **robustness_metrics(rates, nominal_rate, within, n_steps * dt),
        "nonfinite": result.nonfinite_step >= 0,
        "nonfinite_step": result.nonfinite_step,
        "nonphysical": result.nonphysical,
    }


def core_metrics(
    rates: np.ndarray, nominal: np.ndarray, core_map: np.ndarray, within: float, duration: float
) -> dict[str, np.ndarray]:
    """(B, C) arrays of CORE_METRICS, each over the neurons of one core (rates and nominal
    as for `robustness_metrics`)."""
    nominal = np.broadcast_to(np.asarray(nominal, dtype=np.float64), rates.shape)
    cores = np.unique(core_map)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in CORE_METRICS}
    for core in cores:
        mine = core_map == core
        values = {
            "mean_rate_hz": rates[:, mine].mean(axis=1),
            "rate_std_hz": rates[:, mine].std(axis=1),
            **robustness_metrics(rates[:, mine], nominal[:, mine], within, duration),
        }
        for name in CORE_METRICS:
            columns[name].append(values[name])
    return {name: np.stack(parts, axis=1) for name, parts in columns.items()}
