"""95 % intervals that say what they cover.

- `t_half_width`: the half-width of a Student's t interval for a mean of n values, n - 1
  degrees of freedom (at 8 chips the normal ±1.96 sd/sqrt(n) covers 91 %, not 95 %). It
  covers the sampling of chips only.
- `wilson_interval`: a binomial proportion measured on n trials (the nominal instance's
  test accuracy over the test samples): it covers the sampling of test samples.
- `two_way_bootstrap`: the mean accuracy over chips and test samples, and its paired change
  between two sweep points, resampling chips *and* test samples (every chip is scored on
  the same test samples, so chips alone understate the spread of a statement about the
  task). Percentile intervals of a seeded bootstrap: the same seed gives the same bounds.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

__all__ = ["t_half_width", "wilson_interval", "two_way_bootstrap", "BOOTSTRAP_RESAMPLES"]

BOOTSTRAP_RESAMPLES = 2000
_LEVEL = 0.95


def _scipy_stats() -> ModuleType:
    """scipy.stats, imported on first use: it takes about a second, which every command
    (`python -m runner` with a bad argument too) would otherwise pay at start-up."""
    from scipy import stats

    return stats


def t_half_width(values: np.ndarray) -> float:
    """Half-width of the 95 % Student's t interval of the mean of `values` (NaN below 2)."""
    n = values.size
    if n < 2:
        return math.nan
    stats = _scipy_stats()
    return float(stats.t.ppf(0.5 + _LEVEL / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion of `successes` in `n` trials (NaN, NaN
    for n = 0). Unlike the normal interval it stays in [0, 1] and is not empty at 0 or n."""
    if n == 0:
        return math.nan, math.nan
    z = float(_scipy_stats().norm.ppf(0.5 + _LEVEL / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_way_bootstrap(
    values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95 % percentile interval of the mean of `values` (chips x test samples: 0/1
    correctness, or its paired difference between two points), resampling chips and samples
    with replacement. Draws come from NumPy's Philox keyed by `seed` and depend only on the
    matrix's shape: a paired change drawn with the seed of its point's mean uses the same
    resamples. (NaN, NaN) without data."""
    n_chips, n_samples = values.shape
    if n_chips == 0 or n_samples == 0:
        return math.nan, math.nan
    rng = np.random.Generator(np.random.Philox(key=seed))
    # a resample's mean is w' M v / (C S), w and v the multinomial counts of chips and samples
    chip_counts = rng.multinomial(n_chips, np.full(n_chips, 1 / n_chips), resamples)
    sample_counts = rng.multinomial(n_samples, np.full(n_samples, 1 / n_samples), resamples)
    means = np.einsum("bc,cs,bs->b", chip_counts, values.astype(np.float64), sample_counts)
    low, high = np.quantile(means / (n_chips * n_samples), [(1 - _LEVEL) / 2, (1 + _LEVEL) / 2])
    return float(low), float(high)
