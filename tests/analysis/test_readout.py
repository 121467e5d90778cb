"""Readout features and readouts: hand-computed values, NumPy's least squares, a simulation."""

from __future__ import annotations

import numpy as np
import pytest

from runner import dynapsim_net_from_spec
from runner.analysis import readout
from runner.analysis.readout import (
    LinearReadout,
    ReadoutConfig,
    VoteReadout,
    chance_level,
    configured_readout,
    features,
    fit_ridge,
    refit_predictions,
)


def random_problem(n: int, n_features: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    centres = rng.normal(0, 1, (n_classes, n_features))
    x = rng.poisson(5, (n, n_features)) + 3 * centres[labels]
    return x.astype(np.float64), labels


# ---- features ---------------------------------------------------------------------------


def test_features_sum_whole_kernel_bins_by_hand() -> None:
    binned = np.arange(1 * 6 * 2).reshape(1, 6, 2)  # T=12 in 6 kernel bins of 2 steps, N=2
    # readout bins of 4 steps = kernel bins (0,1), (2,3), (4,5); feature = bin * N + neuron
    expected = [[0 + 2, 1 + 3, 4 + 6, 5 + 7, 8 + 10, 9 + 11]]
    np.testing.assert_array_equal(features(binned, n_steps=12, bin_width=2, bins=3), expected)
    np.testing.assert_array_equal(features(binned, 12, 2, 1), [[30, 36]])
    totals = np.array([[3, 4]])
    np.testing.assert_array_equal(features(totals, 12, 0, 1), totals)
    np.testing.assert_array_equal(features(totals[:, None], 12, 0, 1), totals)  # bin_width 0


@pytest.mark.parametrize(
    ("shape", "n_steps", "bin_width", "bins", "message"),
    [
        ((1, 6, 2), 12, 2, 5, r"bins=5 must divide the trial's 12 steps"),
        ((1, 6, 2), 12, 2, 4, r"3 steps .* not whole kernel bins of 2 steps"),
        ((1, 1, 2), 12, 0, 2, r"6 steps .* not whole kernel bins of 12 steps"),
        ((1, 5, 2), 12, 2, 2, r"must have shape \(B, 6 bins of 2 steps, N\)"),
        ((1, 2), 12, 2, 2, r"bins=2 needs binned counts"),
        ((1, 6, 2), 12, 2, 0, r"readout.bins must be an int >= 1"),
    ],
)
def test_features_refuse_bins_that_are_not_whole(shape, n_steps, bin_width, bins, message):
    with pytest.raises(ValueError, match=message):
        features(np.zeros(shape), n_steps, bin_width, bins)


def test_features_of_a_simulation_equal_its_raster_summed_by_hand() -> None:
    rng = np.random.default_rng(1)
    net = dynapsim_net_from_spec(
        n_cluster=1, core_map=[0] * 8, weights_in=rng.integers(0, 3, (4, 8)),
        percent_mismatch=0.1, seed=2,
    )  # fmt: skip
    x = rng.poisson(0.3, (2, 40, 4))
    result = net.simulate(x, n_instances=2, backend="reference", record=True, bin_width=5)
    raster = np.stack([result.reductions.raster[k] for k in range(2)])  # (2, 40, 8)
    assert raster.sum() > 0
    expected = raster.reshape(2, 4, 10, 8).sum(axis=2).reshape(2, 32)
    np.testing.assert_array_equal(features(result.reductions.binned_counts, 40, 5, 4), expected)
    np.testing.assert_array_equal(features(result.spike_counts, 40, 5, 1), raster.sum(axis=1))


# ---- ridge ------------------------------------------------------------------------------


def test_ridge_matches_a_system_solved_by_hand() -> None:
    # x = 0, 1, 2, 3 (mean 1.5, variance 1.25), labels 0, 0, 1, 1, alpha = 4: standardised
    # z.z = 4, z.(y1 - 0.5) = 2 / std, so the raw weight of class 1 is 2 / (1.25 * (4 + 4))
    # = 0.2 and its bias 0.5 - 1.5 * 0.2 = 0.2; class 0 mirrors it.
    fitted = fit_ridge(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]), 2, 4.0)
    np.testing.assert_allclose(fitted.weights, [[-0.2, 0.2]])
    np.testing.assert_allclose(fitted.bias, [0.8, 0.2])
    np.testing.assert_array_equal(fitted.predict(np.array([[0.0], [1.4], [1.6], [3.0]])),
                                  [0, 0, 1, 1])  # fmt: skip


@pytest.mark.parametrize(("n", "n_features"), [(30, 8), (12, 40)])
def test_ridge_equals_least_squares_of_the_augmented_system(n, n_features) -> None:
    x, labels = random_problem(n, n_features, 3)
    x[:, 0] = 7.0  # a constant feature gets weight 0
    alpha = 2.5
    fitted = fit_ridge(x, labels, 3, alpha)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    one_hot = np.eye(3)[labels]
    targets = one_hot - one_hot.mean(axis=0)
    stacked = np.vstack([z, np.sqrt(alpha) * np.eye(n_features)])
    solution = np.linalg.lstsq(stacked, np.vstack([targets, np.zeros((n_features, 3))]))[0]
    np.testing.assert_allclose(fitted.weights, solution / std[:, None], atol=1e-10)
    np.testing.assert_allclose(fitted.bias, one_hot.mean(axis=0) - mean @ (solution / std[:, None]))
    assert np.all(fitted.weights[0] == 0)


@pytest.mark.parametrize(("n", "n_features"), [(30, 8), (12, 40)])
def test_ridge_primal_and_dual_forms_agree(n, n_features) -> None:
    x, labels = random_problem(n, n_features, 4, seed=3)
    primal = fit_ridge(x, labels, 4, 0.7, form="primal")
    dual = fit_ridge(x, labels, 4, 0.7, form="dual")
    np.testing.assert_allclose(primal.weights, dual.weights, atol=1e-10)
    np.testing.assert_allclose(primal.bias, dual.bias, atol=1e-10)


def test_ridge_refuses_mismatched_labels() -> None:
    with pytest.raises(ValueError, match=r"features \(n, F\) and labels \(n,\) must match"):
        fit_ridge(np.zeros((4, 2)), np.zeros(3, int), 2, 1.0)
    with pytest.raises(ValueError, match=r"form must be one of \['auto', 'primal', 'dual'\]"):
        fit_ridge(np.zeros((4, 2)), np.zeros(4, int), 2, 1.0, form="kernel")


# ---- vote and linear --------------------------------------------------------------------


def test_vote_by_hand_with_ties_and_silence() -> None:
    vote = VoteReadout.from_groups([[0, 1], [2, 3]], n_neurons=5)  # neuron 4 in no group
    np.testing.assert_array_equal(vote.class_of_neuron, [0, 0, 1, 1, -1])
    counts = np.array([
        [1, 0, 0, 1, 5],  # tie 1 : 1 -> the lowest class, 0
        [0, 0, 2, 0, 0],  # class 1
        [0, 0, 0, 0, 7],  # no group neuron spiked -> -1, never correct
        [0, 3, 1, 1, 0],  # 3 : 2 -> class 0
    ])  # fmt: skip
    np.testing.assert_array_equal(vote.predict(counts), [0, 1, -1, 0])
    split = np.concatenate([counts - counts // 2, counts // 2], axis=1)  # two bins, same sums
    np.testing.assert_array_equal(vote.predict(split), [0, 1, -1, 0])
    same = VoteReadout.from_class_of_neuron([0, 0, 1, 1, -1], 5)
    np.testing.assert_array_equal(same.predict(counts), vote.predict(counts))
    labels = np.array([0, 1, 0, 0])
    assert np.mean(vote.predict(counts) == labels) == 0.75


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([[0, 1], [1, 2]], r"neuron 1 is in group 0 and group 1"),
        ([[0], [5]], r"groups\[1\] holds neuron ids outside \[0, 5\)"),
        ([[0], []], r"groups\[1\] must be a non-empty list"),
    ],
)
def test_vote_groups_are_checked(groups, message) -> None:
    with pytest.raises(ValueError, match=message):
        VoteReadout.from_groups(groups, n_neurons=5)


def test_vote_refuses_a_class_without_neurons_and_bad_widths() -> None:
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no neuron"):
        VoteReadout.from_class_of_neuron([0, 2, -1], 3)
    with pytest.raises(ValueError, match=r"features must be \(B, bins \* N\) with N = 3"):
        VoteReadout.from_class_of_neuron([0, 1, -1], 3).predict(np.zeros((2, 4)))


def test_linear_readout_from_file(tmp_path) -> None:
    path = tmp_path / "readout.npz"
    np.savez(path, weights=[[1.0, 0.0], [0.0, 2.0]], bias=[0.0, -1.5])
    linear = LinearReadout.from_file(str(path))
    # scores: [1, -1.5] -> 0; [0, 0.5] -> 1; [0, -1.5] -> 0; the tie [1, 1] -> the lower, 0
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.25]])
    np.testing.assert_array_equal(linear.predict(x), [0, 1, 0, 0])
    linear.check(2, 2)
    with pytest.raises(ValueError, match=r"weights must be \(F=6 features \(N \* bins\), K=2"):
        linear.check(6, 2)
    with pytest.raises(ValueError, match=r"features must have 2 columns"):
        linear.predict(np.zeros((1, 3)))
    np.savez(path, weights=np.eye(3))
    np.testing.assert_array_equal(LinearReadout.from_file(str(path)).bias, np.zeros(3))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"w": np.eye(2)}, r"needs weights, real \(F, K\)"),
        ({"weights": np.ones(3)}, r"weights shape \(3,\)"),
        ({"weights": np.eye(2), "bias": np.ones(3)}, r"bias must be real \(2,\)"),
        ({"weights": np.full((2, 2), np.nan)}, r"must be finite"),
    ],
)
def test_linear_readout_file_errors_name_the_array(tmp_path, arrays, message) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        LinearReadout.from_file(str(path))


# ---- config and build -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "svm"}, r"readout.kind must be one of \['vote', 'linear', 'ridge'\]"),
        ({"bins": 0}, r"readout.bins must be an int >= 1"),
        ({"alpha": 0.0}, r"readout.alpha must be a finite number > 0"),
        ({"train_fraction": 1.0}, r"readout.train_fraction must be in \(0, 1\)"),
        ({"split_seed": -1}, r"split seed must be an int in \[0, 2\*\*64\)"),
        ({"target": 1.5}, r"readout.target must be an accuracy in \[0, 1\]"),
        ({"kind": "vote", "per_chip": True, "groups": [[0]]}, r"per_chip refits a ridge"),
        ({"kind": "vote"}, r"needs exactly one of readout.groups"),
        ({"kind": "linear"}, r"needs readout.file"),
    ],
)
def test_readout_config_is_checked(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        ReadoutConfig(**changes)


def test_configured_readouts_of_each_kind(tmp_path) -> None:
    vote = configured_readout(ReadoutConfig(kind="vote", groups=[[0, 1], [2]]), 6, 2, 6)
    assert isinstance(vote, VoteReadout)
    with pytest.raises(ValueError, match=r"2 groups for a dataset of 3 classes"):
        configured_readout(ReadoutConfig(kind="vote", groups=[[0], [1]]), 6, 3, 6)
    np.savez(tmp_path / "w.npz", weights=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"weights must be \(F=6 features"):
        configured_readout(ReadoutConfig(kind="linear", file=str(tmp_path / "w.npz")), 6, 2, 6)
    with pytest.raises(ValueError, match="ridge is fitted on responses, not configured"):
        configured_readout(ReadoutConfig(alpha=0.5), 6, 2, 6)


# ---- accuracies over chips --------------------------------------------------------------


def test_refit_predictions_equal_one_fit_per_chip(monkeypatch) -> None:
    monkeypatch.setattr(readout, "_BLOCK_ENTRIES", 2 * 40 * 30)  # blocks of 2 chips
    x, labels = random_problem(40, 30, 3, seed=5)
    train = np.arange(40) < 28
    rng = np.random.default_rng(6)
    chips = x * rng.lognormal(0, 0.4, (5, 1, 30)) + rng.normal(0, 1, (5, 40, 30))
    predicted = refit_predictions(chips, labels, train, alpha=1.0)
    for chip in range(5):
        own = fit_ridge(chips[chip, train], labels[train], 3, 1.0)
        np.testing.assert_array_equal(predicted[chip], own.predict(chips[chip]))


def test_the_nominal_chip_itself_scores_the_same_both_ways() -> None:
    x, labels = random_problem(30, 12, 3, seed=2)
    train = np.arange(30) < 21
    transferred = fit_ridge(x[train], labels[train], 3, 1.0)
    refitted = refit_predictions(x[None], labels, train, alpha=1.0)[0]
    np.testing.assert_array_equal(refitted, transferred.predict(x))
    assert np.mean(refitted[~train] == labels[~train]) > chance_level(3)


