"""Chip statistics (summary.csv) by hand: non-finite chips are listed and left out of the
spread, the paired changes and the accuracies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from runner.analysis.chip_statistics import (
    SUMMARY_METRICS,
    AccuracySettings,
    chip_table,
    summarize,
)


def test_non_finite_chips_are_left_out_of_statistics_and_changes() -> None:
    """Chip 1 blew up on one trial at point 1: listed, and out of the spread and the
    paired change (which then pairs chips 0 and 2 only)."""
    chips = pd.DataFrame({
        "point": [0, 0, 0, 1, 1, 1], "chip": [0, 1, 2, 0, 1, 2], "n_trials": 2,
        "nonfinite": [False, False, False, False, True, False],
        "nonphysical": [0.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        **{metric: [0.1, 0.2, 0.3, 0.5, 9.0, 0.4] for metric in SUMMARY_METRICS},
    })  # fmt: skip
    instances = pd.DataFrame({"point": np.repeat([0, 1], 6), "instance": np.arange(12),
                              "nonfinite": np.arange(12) == 8})  # fmt: skip
    summary = summarize(chips, instances, [], pd.DataFrame(), baseline=0, paired=True)
    assert summary["n_nonfinite"].tolist() == [0, 1]
    assert [json.loads(ids) for ids in summary["nonfinite_chips"]] == [[], [1]]
    assert [json.loads(ids) for ids in summary["nonfinite_instances"]] == [[], [8]]
    assert summary["nonphysical"].tolist() == [1, 1]
    assert summary["rate_rel_error.mean"][1] == pytest.approx(0.45)
    assert summary["n_paired"].tolist() == [3, 2]
    d = np.array([0.4, 0.1])
    assert summary["rate_rel_error.delta_mean"][1] == pytest.approx(0.25)
    half = 12.706204736174698 * d.std(ddof=1) / np.sqrt(2)  # Student's t, 1 degree of freedom
    assert summary["rate_rel_error.delta_hi95"][1] == pytest.approx(0.25 + half)
    assert summary["rate_rel_error.delta_q05"][1] == pytest.approx(np.quantile(d, 0.05))


def test_a_non_finite_chip_has_no_accuracy_and_is_listed() -> None:
    """Chip 1 is non-finite on a train row: its accuracy is NaN, it is out of the spread
    and of the share at target; a missing test prediction gives NaN too."""
    labels = np.tile([0, 1, 0, 1], 3)
    instances = pd.DataFrame({
        "instance": np.arange(12), "point": 0, "chip": np.repeat([0, 1, 2], 4),
        "trial": np.tile(np.arange(4), 3), "seed": 0, "nonfinite": np.arange(12) == 4,
        "nonfinite_step": -1, "nonphysical": 0, "label": labels,
        "split": np.tile(["train", "train", "test", "test"], 3),
        "predicted": pd.array([0, 1, 0, 1, None, 1, 1, 1, 0, 1, 0, 0], dtype="Int64"),
        **{metric: 1.0 for metric in ("mean_rate_hz", "rate_std_hz", "pop_rate_std_hz",
                                      "pop_rate_peak_hz", "mean_isi_cv", "mean_first_spike_s",
                                      "n_silent", "n_saturated", "rate_rel_error", "rate_corr",
                                      "frac_within")},
    })  # fmt: skip
    chips = chip_table(instances, [])
    np.testing.assert_array_equal(chips["accuracy"], [1.0, np.nan, 0.5])
    summary = summarize(chips, instances, [], pd.DataFrame(), 0, True,
                        AccuracySettings(0.75, {0: 0.5}))  # fmt: skip
    assert json.loads(summary["nonfinite_chips"][0]) == [1]
    assert summary["accuracy.mean"][0] == pytest.approx(0.75)
    assert summary["accuracy.frac_at_target"][0] == 0.5
    assert summary["chance_level"][0] == 0.5 and np.isnan(summary["nominal_accuracy"][0])
    missing = instances.assign(predicted=instances["predicted"].mask(instances["trial"] == 3))
    assert chip_table(missing, [])["accuracy"].isna().all()


