"""Per-instance metrics by hand: the population rate over bins, activity aggregates and the
robustness against the nominal instance, from spike times written out here.

Definitions (runner/analysis/instance_metrics.py, README "Metrics"): the population rate of
a bin is its spikes / (N * bin width * dt), bins of `bin_steps` (the last one may be
shorter), summed from the kernel's bins of `bin_width` steps; its std (over bins, ddof 0)
and peak; rate_rel_error = sum|r - r0| / sum r0; rate_corr = Pearson over neurons;
frac_within = share of neurons with |r - r0| <= within * r0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.analysis.instance_metrics import instance_metrics, robustness_metrics
from runner.analysis.neuron_metrics import neuron_metrics
from runner.kernel.batch import BatchResult
from runner.kernel.reductions import reduce_raster

T, DT, BIN_STEPS = 25, 1e-3, 10  # bins [0, 10), [10, 20), [20, 25): the last one 5 wide

# neuron -> {step: spikes in that step}
SPIKES = {
    0: {0: 1, 5: 1, 10: 1, 15: 1, 20: 1},  # regular: intervals 5, 5, 5, 5
    1: {3: 2, 12: 1},  # 2 spikes in one step, then one: a single interval
    2: {},  # silent
    3: {18: 1, 20: 1, 24: 1},  # intervals 2, 4
}
N = len(SPIKES)


def result_of(bin_width: int, nonphysical: int = 0) -> BatchResult:
    """Instance 0 spikes as SPIKES says; instance 1 is silent."""
    spikes = np.zeros((2, T, N), np.int32)
    for neuron, steps in SPIKES.items():
        for step, count in steps.items():
            spikes[0, step, neuron] = count
    return BatchResult(**reduce_raster(spikes, bin_width), nonfinite_step=np.array([-1, -1]),
                       nonphysical=np.array([nonphysical, 0]))  # fmt: skip


def metrics_of(bin_width: int, nominal: np.ndarray, within: float = 0.2,
               saturated_rate_hz: float = 120.0) -> dict[str, np.ndarray]:  # fmt: skip
    result = result_of(bin_width, nonphysical=2)
    neuron = neuron_metrics(result, T, DT)
    return instance_metrics(result, neuron, nominal, DT, BIN_STEPS, bin_width, T, within,
                            saturated_rate_hz)  # fmt: skip


NOMINAL = np.array([200.0, 100.0, 0.0, 120.0])  # the nominal instance's rates, Hz


# kernel bins of 1, 5 or 10 steps: summed to bins of 10 steps, the same population rate
@pytest.mark.parametrize("bin_width", [1, 5, 10])
def test_the_population_rate_by_hand(bin_width: int) -> None:
    metrics = metrics_of(bin_width, NOMINAL)
    # spikes per bin, all neurons: [0, 10): steps 0, 5 (n0) + 2 at step 3 (n1) = 4;
    # [10, 20): 10, 15 (n0) + 12 (n1) + 18 (n3) = 4; [20, 25): 20 (n0) + 20, 24 (n3) = 3
    population = [4 / (N * 10 * DT), 4 / (N * 10 * DT), 3 / (N * 5 * DT)]  # 100, 100, 150 Hz
    mean = sum(population) / 3
    std = math.sqrt(sum((rate - mean) ** 2 for rate in population) / 3)
    assert metrics["pop_rate_peak_hz"][0] == pytest.approx(150.0)
    assert metrics["pop_rate_std_hz"][0] == pytest.approx(std, rel=1e-12)
    assert std == pytest.approx(23.570226, rel=1e-6)
    # the silent instance: a flat population rate of 0
    assert metrics["pop_rate_peak_hz"][1] == 0 and metrics["pop_rate_std_hz"][1] == 0


def test_activity_aggregates_by_hand() -> None:
    metrics = metrics_of(5, NOMINAL)
    # rates: 5, 3, 0, 3 spikes in T dt = 25 ms: 200, 120, 0, 120 Hz
    rates = [5 / (T * DT), 3 / (T * DT), 0.0, 3 / (T * DT)]
    mean = sum(rates) / N  # 110 Hz
    assert metrics["mean_rate_hz"][0] == pytest.approx(mean) == pytest.approx(110.0)
    std = math.sqrt(sum((rate - mean) ** 2 for rate in rates) / N)  # sqrt(5100)
    assert metrics["rate_std_hz"][0] == pytest.approx(std, rel=1e-12)
    assert metrics["n_silent"].tolist() == [1, N]
    # saturated: rate >= 120 Hz, the threshold itself included (n0, n1, n3)
    assert metrics["n_saturated"].tolist() == [3, 0]
    # CVs: 0 (n0), none (n1: one interval), none (n2), std/mean of 2, 4 = 1/3 (n3)
    assert metrics["mean_isi_cv"][0] == pytest.approx((0.0 + 1 / 3) / 2)
    # latencies 0, 3, -, 18 steps: the mean over neurons that spiked
    assert metrics["mean_first_spike_s"][0] == pytest.approx((0 + 3 + 18) / 3 * DT)
    assert math.isnan(metrics["mean_isi_cv"][1]) and math.isnan(metrics["mean_first_spike_s"][1])
    assert metrics["mean_rate_hz"][1] == 0 and metrics["rate_std_hz"][1] == 0
    assert metrics["nonfinite"].tolist() == [False, False]
    assert metrics["nonfinite_step"].tolist() == [-1, -1]
    assert metrics["nonphysical"].tolist() == [2, 0]


def test_robustness_against_the_nominal_rates_by_hand() -> None:
    metrics = metrics_of(5, NOMINAL, within=0.2)
    # |r - r0| = |200-200|, |120-100|, |0-0|, |120-120| = 0, 20, 0, 0 over sum r0 = 420
    assert metrics["rate_rel_error"][0] == pytest.approx(20 / 420)
    # within 20 %: 0 <= 40, 20 <= 20 (the bound included), 0 <= 0 (silent stays silent), 0 <= 24
    assert metrics["frac_within"][0] == 1.0
    # Pearson over neurons: centred rates 90, 10, -110, 10 and 95, -5, -105, 15
    dot = 90 * 95 + 10 * -5 + -110 * -105 + 10 * 15
    norm = math.sqrt((90**2 + 10**2 + 110**2 + 10**2) * (95**2 + 5**2 + 105**2 + 15**2))
    assert metrics["rate_corr"][0] == pytest.approx(dot / norm, rel=1e-12)
    # the silent instance: all of the nominal rate is error; only the silent neuron is within;
    # constant rates have no correlation
    assert metrics["rate_rel_error"][1] == 1.0
    assert metrics["frac_within"][1] == 1 / 4
    assert math.isnan(metrics["rate_corr"][1])
    stricter = metrics_of(5, NOMINAL, within=0.1)  # 20 > 10: neuron 1 is out
    assert stricter["frac_within"][0] == 3 / 4


def test_robustness_metrics() -> None:
    nominal = np.array([10.0, 20.0, 0.0, 30.0])
    rates = np.array([[10.0, 20.0, 0.0, 30.0], [11.0, 30.0, 1.0, 30.0]])
    metrics = robustness_metrics(rates, nominal, within=0.2)
    np.testing.assert_allclose(metrics["rate_rel_error"], [0.0, 12.0 / 60.0])
    np.testing.assert_allclose(metrics["frac_within"], [1.0, 0.5])
    assert metrics["rate_corr"][0] == pytest.approx(1.0)
    flat = robustness_metrics(np.full((1, 4), 5.0), nominal, 0.2)
    assert np.isnan(flat["rate_corr"][0])


def test_robustness_against_a_non_finite_nominal_is_undefined() -> None:
    rates = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    nominal = np.array([[1.0, 2.0, 4.0], [np.nan, np.nan, np.nan]])
    metrics = robustness_metrics(rates, nominal, within=0.2)
    assert metrics["frac_within"][0] == pytest.approx(2 / 3)
    assert metrics["rate_rel_error"][0] == pytest.approx(1 / 7)
    for values in metrics.values():
        assert np.isnan(values[1])
