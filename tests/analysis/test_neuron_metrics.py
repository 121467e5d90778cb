"""Per-neuron metrics by hand: rate, mean and CV of the inter-spike intervals, first-spike
latency, from a raster whose spike times are written out here.

Definitions (runner/analysis/neuron_metrics.py, README "Metrics"): rate = spikes / (T dt);
intervals are between consecutive steps with >= 1 spike; CV = std / mean of the intervals
(NaN below 2 intervals); latency = first spiking step * dt (NaN if silent). A step with
several spikes counts them all in the rate but is one spiking step for the intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.analysis.neuron_metrics import neuron_metrics, neuron_table
from runner.kernel.batch import BatchResult
from runner.kernel.reductions import reduce_raster

NAN = math.nan
T = 20  # steps

# neuron -> {step: spikes in that step}
SPIKES = {
    0: {},  # silent
    1: {4: 1},  # one spike
    2: {2: 1, 7: 1},  # two spikes: one interval
    3: {1: 1, 3: 1, 9: 1},  # intervals 2 and 6
    4: {0: 1, 5: 1, 10: 1, 15: 1},  # regular from step 0: intervals 5, 5, 5
    5: {3: 2, 8: 3, 10: 1},  # multi-spike steps: 6 spikes on 3 spiking steps
    6: {19: 4},  # 4 spikes in the last step: one spiking step, no interval
}
N = len(SPIKES)


def raster() -> np.ndarray:
    """(2, T, N): instance 0 spikes as SPIKES says, instance 1 is silent."""
    spikes = np.zeros((2, T, N), np.int32)
    for neuron, steps in SPIKES.items():
        for step, count in steps.items():
            spikes[0, step, neuron] = count
    return spikes


def result_of(spikes: np.ndarray, bin_width: int = 0) -> BatchResult:
    reductions = reduce_raster(spikes, bin_width)
    n_instances = spikes.shape[0]
    return BatchResult(**reductions, nonfinite_step=np.full(n_instances, -1, np.int32),
                       nonphysical=np.zeros(n_instances, np.int64))  # fmt: skip


def test_the_reductions_of_the_raster_by_hand() -> None:
    """What the kernel accumulates (and reduce_raster derives) for these spike times."""
    result = result_of(raster())
    np.testing.assert_array_equal(result.spike_count[0], [0, 1, 2, 3, 4, 6, 4])
    np.testing.assert_array_equal(result.spiking_steps[0], [0, 1, 2, 3, 4, 3, 1])
    np.testing.assert_array_equal(result.first_spike_step[0], [-1, 4, 2, 1, 0, 3, 19])
    np.testing.assert_array_equal(result.last_spike_step[0], [-1, 4, 7, 9, 15, 10, 19])
    # sums of squared intervals: -, -, 5^2, 2^2 + 6^2, 3 x 5^2, 5^2 + 2^2, -
    np.testing.assert_array_equal(result.isi_sumsq[0], [0, 0, 25, 40, 75, 29, 0])
    for name in ("spike_count", "spiking_steps", "isi_sumsq"):
        assert not getattr(result, name)[1].any(), name
    np.testing.assert_array_equal(result.first_spike_step[1], -1)


@pytest.mark.parametrize("dt", [1e-3, 1e-4])
def test_rates_intervals_and_latencies_by_hand(dt: float) -> None:
    metrics = neuron_metrics(result_of(raster()), T, dt)
    assert set(metrics) == {"rate_hz", "isi_mean_s", "isi_cv", "first_spike_s"}
    assert all(values.shape == (2, N) and values.dtype == np.float64
               for values in metrics.values())  # fmt: skip
    duration = T * dt
    # rate: every spike counts, a multi-spike step fully (neurons 5 and 6)
    rates = [0 / duration, 1 / duration, 2 / duration, 3 / duration, 4 / duration,
             (2 + 3 + 1) / duration, 4 / duration]  # fmt: skip
    np.testing.assert_allclose(metrics["rate_hz"][0], rates, rtol=1e-12)
    # mean interval, in steps then seconds: none below 2 spiking steps
    means = [NAN, NAN, (7 - 2) * dt, (2 + 6) / 2 * dt, (5 + 5 + 5) / 3 * dt,
             (5 + 2) / 2 * dt, NAN]  # fmt: skip
    np.testing.assert_allclose(metrics["isi_mean_s"][0], means, rtol=1e-12)
    # CV = population std / mean of the intervals: none below 2 intervals
    cv_3 = math.sqrt(((2 - 4) ** 2 + (6 - 4) ** 2) / 2) / 4  # intervals 2, 6: 2 / 4
    cv_5 = math.sqrt(((5 - 3.5) ** 2 + (2 - 3.5) ** 2) / 2) / 3.5  # intervals 5, 2: 1.5 / 3.5
    cvs = [NAN, NAN, NAN, cv_3, 0.0, cv_5, NAN]
    assert (cv_3, cv_5) == (pytest.approx(0.5), pytest.approx(3 / 7))
    np.testing.assert_allclose(metrics["isi_cv"][0], cvs, rtol=1e-12, atol=1e-12)
    # latency: a spike at step 0 is latency 0, not "never"
    firsts = [NAN, 4 * dt, 2 * dt, 1 * dt, 0.0, 3 * dt, 19 * dt]
    np.testing.assert_allclose(metrics["first_spike_s"][0], firsts, rtol=1e-12)
    # the silent instance: rate 0, and no interval or latency to speak of
    np.testing.assert_array_equal(metrics["rate_hz"][1], 0.0)
    for name in ("isi_mean_s", "isi_cv", "first_spike_s"):
        assert np.isnan(metrics[name][1]).all(), name


def test_the_kernel_reductions_written_by_hand_give_the_same_metrics() -> None:
    """Neuron 3 of the raster, its reductions typed in (not derived): steps 1, 3, 9."""
    result = BatchResult(
        spike_count=np.array([[3]]), first_spike_step=np.array([[1]], np.int32),
        last_spike_step=np.array([[9]], np.int32), spiking_steps=np.array([[3]], np.int32),
        isi_sumsq=np.array([[2.0**2 + 6.0**2]]), binned_counts=np.array([[[3]]], np.int32),
        nonfinite_step=np.array([-1], np.int32), nonphysical=np.array([0]),
    )  # fmt: skip
    metrics = neuron_metrics(result, 20, 1e-3)
    assert metrics["rate_hz"][0, 0] == pytest.approx(3 / 0.02)
    assert metrics["isi_mean_s"][0, 0] == pytest.approx((9 - 1) / 2 * 1e-3)
    assert metrics["isi_cv"][0, 0] == pytest.approx(0.5)
    assert metrics["first_spike_s"][0, 0] == pytest.approx(1e-3)


def test_the_neuron_table_holds_the_metrics_row_by_row() -> None:
    result = result_of(raster())
    metrics = neuron_metrics(result, T, 1e-3)
    flags = np.array([False, True])
    table = neuron_table({"instance": np.array([10, 11])}, np.zeros(N, np.int32),
                         result.spike_count, metrics, nonfinite=flags)  # fmt: skip
    assert len(table) == 2 * N
    assert table["instance"].tolist() == [10] * N + [11] * N
    assert table["neuron"].tolist() == list(range(N)) * 2
    row = table[(table["instance"] == 10) & (table["neuron"] == 5)].iloc[0]
    assert row["spike_count"] == 6 and row["rate_hz"] == pytest.approx(300.0)
    assert row["isi_mean_s"] == pytest.approx(3.5e-3) and row["isi_cv"] == pytest.approx(3 / 7)
    assert row["first_spike_s"] == pytest.approx(3e-3) and not row["nonfinite"]
    assert table.loc[table["instance"] == 11, "nonfinite"].all()
    compact = neuron_table({}, np.zeros(N, np.int32), result.spike_count, metrics, compact=True)
    assert compact["isi_cv"].dtype == np.float32 and compact["spike_count"].dtype == np.int32
    np.testing.assert_allclose(compact["isi_cv"], table["isi_cv"], rtol=1e-6)
