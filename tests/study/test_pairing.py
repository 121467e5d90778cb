"""Paired chips and trials: chip c is the same chip at every sweep point, every chip and the
nominal instance run every trial, and chip c on trial k is compared with the nominal
instance on trial k; chips.parquet and the paired changes in summary.csv, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import runner.study.run as experiment_run
from runner.analysis.chip_statistics import SUMMARY_METRICS
from runner.analysis.instance_metrics import robustness_metrics
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.run_folder import ChunkStore, nominal_raster_label
from tests.helpers.fixtures import copy_run
from tests.helpers.studies import run_study as run
from tests.helpers.studies import study_config as config

N_CHIPS, N_TRIALS = 6, 2  # the small study (tests.helpers.studies.STUDY): levels 0.1 and 0.3


def relative_deviations(network, chips: np.ndarray) -> dict[str, np.ndarray]:
    """(x' - x) / x of every parameter with a non-zero nominal value, per chip and neuron."""
    drawn = network.parameters(chips, seed=0)
    deviations = {}
    for name, values in drawn.items():
        nominal = np.asarray(network.spec.nominal[name], dtype=np.float32)
        if (nominal != 0).all():
            deviations[name] = (values.astype(np.float64) - nominal) / nominal
    return deviations


def test_a_chip_keeps_its_deviations_scaled_by_the_mismatch_level() -> None:
    """x' = x + sigma * z * x with z keyed by (seed, chip, parameter, neuron): at 20 % the
    relative deviations of chip c are those at 10 %, doubled."""
    plan = prepare(config("sweep.axes.0.values=[0.1,0.2]"))
    chips = np.arange(N_CHIPS)
    low, high = (relative_deviations(point.network, chips) for point in plan.points)
    assert len(low) > 20
    for name in low:
        assert np.abs(low[name]).max() > 0.01, name
        np.testing.assert_allclose(high[name], 2 * low[name], rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("pairing", ["paired", "independent"])
def test_chips_at_a_bias_sweep_are_the_same_chips_only_when_paired(
    tmp_path: Path, pairing: str
) -> None:
    """A bias sweep: chip c meets a new Itau_mem with the same deviations (paired), and the
    run's numbers are those of mismatch instance c (paired) or point * n_chips + c
    (independent) on each trial."""
    plan = prepare(config(
        f"sweep.pairing={pairing}", "network.percent_mismatch=0.2",
        "sweep.axes.0.path=network.currents.Itau_mem", "sweep.axes.0.mode=scale",
        "sweep.axes.0.values=[1.0,1.5]",
    ))  # fmt: skip
    experiment_run.run(plan, tmp_path, progress=False)
    chips = np.arange(N_CHIPS)
    first, second = (relative_deviations(p.network, chips) for p in plan.points)
    for name in first:
        np.testing.assert_allclose(first[name], second[name], rtol=0, atol=1e-6, err_msg=name)

    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    for point in plan.points:
        first_key = 0 if pairing == "paired" else point.sweep.index * N_CHIPS
        for trial in range(N_TRIALS):
            x = point.stimulus.trial(trial)
            direct = point.network.simulate(x, N_CHIPS, seed=0, backend="reference",
                                            first_instance=first_key)  # fmt: skip
            mine = neurons[(neurons["point"] == point.sweep.index) & (neurons["trial"] == trial)]
            counts = mine.sort_values(["chip", "neuron"])["spike_count"].to_numpy()
            np.testing.assert_array_equal(counts.reshape(N_CHIPS, -1), direct.spike_counts)


def test_every_trial_at_zero_mismatch_has_zero_error(tmp_path: Path) -> None:
    """4 trials at 0 %: each row equals the nominal instance on its own trial, although the
    trials differ (a nominal on trial 0 only would give errors on trials 1-3)."""
    run(tmp_path, "sweep.axes.0.values=[0.0]", "stimulus.trials=4")
    instances = pd.read_parquet(tmp_path / "instances.parquet")
    assert len(instances) == N_CHIPS * 4 and sorted(set(instances["trial"])) == [0, 1, 2, 3]
    assert instances.groupby("trial")["mean_rate_hz"].first().nunique() == 4
    assert (instances["rate_rel_error"] == 0).all()
    assert (instances["frac_within"] == 1).all()
    corr = instances["rate_corr"].to_numpy()
    assert (np.isclose(corr, 1.0, rtol=0, atol=1e-12) | np.isnan(corr)).all()
    nominal = pd.read_parquet(tmp_path / "nominal.parquet")
    assert sorted(set(nominal["trial"])) == [0, 1, 2, 3] and len(nominal) == 4 * 16


def test_each_row_is_compared_with_the_nominal_instance_on_its_trial(complete_study: Path) -> None:
    instances = pd.read_parquet(complete_study / "instances.parquet")
    neurons = pd.read_parquet(complete_study / "neurons.parquet")
    nominal = pd.read_parquet(complete_study / "nominal.parquet")
    rates = neurons["rate_hz"].to_numpy(np.float64).reshape(len(instances), -1)
    nominal_rates = {
        key: frame["rate_hz"].to_numpy(np.float64)
        for key, frame in nominal.groupby(["point", "trial"])
    }
    own = np.stack([nominal_rates[(p, t)] for p, t in zip(instances["point"], instances["trial"],
                                                           strict=True)])  # fmt: skip
    expected = robustness_metrics(rates, own, within=0.2, duration=100 * 1e-3)  # T dt
    np.testing.assert_allclose(instances["rate_rel_error"], expected["rate_rel_error"], rtol=1e-6)
    np.testing.assert_allclose(instances["frac_within"], expected["frac_within"])
    trial_zero = np.stack([nominal_rates[(p, 0)] for p in instances["point"]])
    wrong = robustness_metrics(rates, trial_zero, within=0.2)["rate_rel_error"]
    later = instances["trial"].to_numpy() > 0
    assert not np.allclose(wrong[later], instances["rate_rel_error"][later], rtol=1e-3)


def test_chips_parquet_averages_each_chips_trials(complete_study: Path) -> None:
    instances = pd.read_parquet(complete_study / "instances.parquet")
    chips = pd.read_parquet(complete_study / "chips.parquet")
    assert len(chips) == 2 * N_CHIPS
    assert list(chips[["point", "chip"]].itertuples(index=False, name=None)) == [
        (p, c) for p in range(2) for c in range(N_CHIPS)
    ]
    assert "sample" not in chips.columns and "trial" not in chips.columns
    for row in chips.to_dict("records"):
        mine = (instances["point"] == row["point"]) & (instances["chip"] == row["chip"])
        trials = instances[mine]
        assert row["n_trials"] == N_TRIALS and len(trials) == N_TRIALS
        for metric in ("mean_rate_hz", "rate_rel_error", "rate_corr", "n_silent", "nonphysical"):
            assert row[metric] == pytest.approx(trials[metric].mean(), rel=1e-12)
        level = trials["network.percent_mismatch"].iloc[0]
        assert row["seed"] == 0 and row["network.percent_mismatch"] == level
        assert not row["nonfinite"] and row["n_nonfinite_trials"] == 0


def expected_change(chips: pd.DataFrame, metric: str, point: int, baseline: int) -> dict:
    """The paired change of `metric`, computed here from chips.parquet."""
    here = chips[chips["point"] == point].set_index("chip")[metric]
    base = chips[chips["point"] == baseline].set_index("chip")[metric]
    d = (here - base).to_numpy()
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)  # Student's t
    return {"delta_mean": d.mean(), "delta_lo95": d.mean() - half, "delta_hi95": d.mean() + half,
            "delta_q05": np.quantile(d, 0.05), "delta_q95": np.quantile(d, 0.95)}  # fmt: skip


def test_paired_changes_against_the_baseline_by_hand(tmp_path: Path, complete_study: Path) -> None:
    run_dir = copy_run(complete_study, tmp_path / "run")  # a finished run
    chips = pd.read_parquet(run_dir / "chips.parquet")
    for baseline in (0, 1):
        if baseline:  # the baseline only changes summary.csv: the chunks are reused
            assert run(run_dir, f"sweep.baseline={baseline}").simulated == 0
        summary = pd.read_csv(run_dir / "summary.csv")
        assert summary["n_chips"].tolist() == [N_CHIPS, N_CHIPS]
        assert summary["n_paired"].tolist() == [N_CHIPS, N_CHIPS]
        for point in (0, 1):
            for metric in ("rate_rel_error", "mean_rate_hz", "frac_within"):
                for key, value in expected_change(chips, metric, point, baseline).items():
                    assert summary[f"{metric}.{key}"][point] == pytest.approx(value, abs=1e-4)
            values = chips.loc[chips["point"] == point, "rate_rel_error"]
            assert summary["rate_rel_error.mean"][point] == pytest.approx(values.mean())
            assert summary["rate_rel_error.q95"][point] == pytest.approx(values.quantile(0.95))
        assert (summary.loc[baseline, [c for c in summary if ".delta_" in c]] == 0).all()
    assert summary["rate_rel_error.delta_mean"][0] < 0  # less error at 10 % than at 30 %


def test_independent_chips_have_no_paired_change(tmp_path: Path) -> None:
    outcome = run(tmp_path, "sweep.pairing=independent")
    summary = outcome.summary
    assert (summary["n_paired"] == 0).all()
    deltas = [column for column in summary if ".delta_" in column]
    assert len(deltas) == 5 * len(SUMMARY_METRICS) and summary[deltas].isna().all().all()


def test_the_raster_row_and_its_nominal_trial_are_recorded(tmp_path: Path) -> None:
    """output.raster_instance is a row id: (point 1, chip 3, trial 1) is row 19; the
    nominal raster is the same point's on the same trial."""
    row = (1 * N_CHIPS + 3) * N_TRIALS + 1
    run(tmp_path, f"output.raster_instance={row}")
    store = ChunkStore(tmp_path)
    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    nominal = pd.read_parquet(tmp_path / "nominal.parquet")
    raster = store.read_raster(f"i{row:09d}")
    counts = neurons.loc[neurons["instance"] == row, "spike_count"]
    np.testing.assert_array_equal(raster.sum(axis=0), counts)
    nominal_raster = store.read_raster(nominal_raster_label(1, 1))
    mine = nominal[(nominal["point"] == 1) & (nominal["trial"] == 1)]
    np.testing.assert_array_equal(nominal_raster.sum(axis=0), mine["spike_count"])
    assert store.read_raster(nominal_raster_label(1, 0)) is None


@pytest.mark.parametrize(
    "override,message",
    [
        ("sweep.baseline=2", r"sweep.baseline must be a sweep point index in \[0, 2\), got 2"),
        ("sweep.baseline=-1", r"sweep.baseline must be a sweep point index in \[0, 2\), got -1"),
        ("output.raster_instance=24", r"output.raster_instance must be a row id .* \[0, 24\)"),
        ("stimulus.trials=0", r"stimulus.trials must be an int >= 1, got 0"),
    ],
)
def test_bad_pairing_settings_are_refused_before_simulating(override: str, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        prepare(config(override))


def test_a_trial_count_swept_across_points_is_refused() -> None:
    with pytest.raises(ExperimentError, match=r"stimulus.trials must be the same at "
                       r"every sweep point .*, got \[1, 2\]"):  # fmt: skip
        prepare(config("sweep.axes.0.path=stimulus.trials", "sweep.axes.0.values=[1,2]"))
