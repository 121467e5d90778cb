"""Intervals by hand: Student's t, Wilson, and the two-way bootstrap against a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from runner.analysis.chip_statistics import paired_changes
from runner.analysis.intervals import t_half_width, two_way_bootstrap, wilson_interval


def test_t_interval_by_hand() -> None:
    values = np.array([1.0, 2.0, 4.0, 7.0])  # mean 3.5, sample sd sqrt(7)
    t_975_3 = 3.182446305284263  # Student's t, 3 degrees of freedom, 97.5 %
    assert t_half_width(values) == pytest.approx(t_975_3 * math.sqrt(7) / 2, rel=1e-12)
    assert math.isnan(t_half_width(np.array([1.0])))


def test_paired_changes_use_t_with_n_minus_1_degrees_of_freedom() -> None:
    here = pd.Series([0.5, 0.7, 0.2, 0.9, 0.4, 0.6, 0.3, 0.8], index=range(8))
    base = pd.Series([0.1] * 8, index=range(8))
    d = (here - base).to_numpy()
    t_975_7 = 2.364624251592785
    half = t_975_7 * d.std(ddof=1) / math.sqrt(8)
    changes = paired_changes(here, base)
    assert changes["delta_lo95"] == pytest.approx(d.mean() - half, rel=1e-12)
    assert changes["delta_hi95"] == pytest.approx(d.mean() + half, rel=1e-12)
    assert half > 1.959963984540054 * d.std(ddof=1) / math.sqrt(8)  # wider than the normal


@pytest.mark.parametrize(
    "successes,n,expected",
    [
        # centre (p + z²/2n) / (1 + z²/n), half z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
        (40, 46, (0.7433414222, 0.9388215964)),
        (0, 10, (0.0, 0.2775327998)),  # not empty at 0, unlike the normal interval
        (10, 10, (0.7224672002, 1.0)),
    ],
)
def test_wilson_interval_by_hand(successes: int, n: int, expected: tuple) -> None:
    z = 1.959963984540054
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = wilson_interval(successes, n)
    assert (low, high) == pytest.approx((max(0, centre - half), min(1, centre + half)), rel=1e-12)
    assert (low, high) == pytest.approx(expected, abs=1e-9)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_two_way_bootstrap_equals_explicit_resampling() -> None:
    """The weighted form w'Mv/(CS) is the mean over resampled chips x resampled samples."""
    rng = np.random.default_rng(3)
    correct = (rng.random((7, 11)) < 0.7).astype(float)
    low, high = two_way_bootstrap(correct, seed=5, resamples=400)
    draws = np.random.Generator(np.random.Philox(key=5))
    chip_counts = draws.multinomial(7, np.full(7, 1 / 7), 400)
    sample_counts = draws.multinomial(11, np.full(11, 1 / 11), 400)
    means = []
    for w, v in zip(chip_counts, sample_counts, strict=True):
        chips = np.repeat(np.arange(7), w)
        samples = np.repeat(np.arange(11), v)
        means.append(correct[np.ix_(chips, samples)].mean())
    assert (low, high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])), rel=1e-12)
    assert two_way_bootstrap(correct, seed=5, resamples=400) == (low, high)  # seeded


def test_resampling_samples_too_widens_the_interval_of_a_task() -> None:
    """Chips that agree on which samples are hard: chips alone see almost no spread."""
    rng = np.random.default_rng(0)
    hard = rng.random(46) < 0.2  # the same 20 % of samples is wrong on every chip
    correct = np.tile(~hard, (64, 1)).astype(float)
    correct[rng.random(correct.shape) < 0.02] = 0.0  # a little chip-to-chip noise
    per_chip = correct.mean(axis=1)
    chips_only = 2 * t_half_width(per_chip)
    low, high = two_way_bootstrap(correct, seed=0)
    assert high - low > 4 * chips_only
    assert low < correct.mean() < high
    assert all(math.isnan(v) for v in two_way_bootstrap(np.zeros((0, 5)), seed=0))


@pytest.mark.parametrize("duration", [1.0, 0.3, 0.7, 1.3])
def test_frac_within_at_the_boundary_is_decided_on_counts(duration: float) -> None:
    """25 -> 30 and 25 -> 20 spikes are both exactly 20 % off: both within, whatever the
    duration's rounding (rates 30/T and 25/T used to decide it one way only)."""
    from runner.analysis.instance_metrics import robustness_metrics

    counts = np.array([[30.0, 20.0, 31.0, 19.0]])
    nominal = np.full(4, 25.0)
    metrics = robustness_metrics(counts / duration, nominal / duration, 0.2, duration)
    assert metrics["frac_within"][0] == 0.5
    tenth = robustness_metrics(np.array([[11.0, 9.0]]) / duration,
                               np.full(2, 10.0) / duration, 0.1, duration)  # fmt: skip
    assert tenth["frac_within"][0] == 1.0  # in rates, 1.3 s put both outside
