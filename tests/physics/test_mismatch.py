"""Mismatch sampling: statistics, models, reproducibility and the non-physical policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.physics.mismatch import NONPHYSICAL_FLOOR, MismatchModel, sample_parameters
from runner.physics.parameters import DEFAULT_CURRENTS, DEFAULT_LAYOUT, PARAMETER_NAMES

N_NEURONS = 64
CORE_MAP = np.repeat(np.arange(4), N_NEURONS // 4)
NOMINAL = {
    name: np.full(N_NEURONS, value)
    for name, value in {**DEFAULT_CURRENTS, **DEFAULT_LAYOUT}.items()
}


def relative_deviation(model: MismatchModel, n_instances: int = 500, seed: int = 0) -> dict:
    sampled, _ = sample_parameters(NOMINAL, CORE_MAP, model, seed, np.arange(n_instances))
    return {name: sampled[name] / np.float32(NOMINAL[name]) - 1.0 for name in PARAMETER_NAMES}


@pytest.mark.parametrize("distribution", ["gaussian", "lognormal"])
@pytest.mark.parametrize("percent", [0.05, 0.3])
def test_mean_and_std_match_percent_over_three(distribution: str, percent: float) -> None:
    deviations = relative_deviation(MismatchModel(percent, distribution))
    sigma = percent / 3
    n = deviations["Idc"].size
    for name, deviation in deviations.items():
        assert abs(deviation.mean()) < 5 * sigma / math.sqrt(n), name
        expected_std = sigma if distribution == "gaussian" else math.sqrt(math.exp(sigma**2) - 1)
        assert abs(deviation.std() / expected_std - 1.0) < 5 / math.sqrt(2 * n), name


def test_parameters_deviate_independently() -> None:
    deviations = relative_deviation(MismatchModel(0.3), n_instances=200)
    correlation = np.corrcoef(deviations["Itau_mem"].ravel(), deviations["Igain_mem"].ravel())[0, 1]
    assert abs(correlation) < 0.05
    across_neurons = np.corrcoef(deviations["Idc"][:, 0], deviations["Idc"][:, 1])[0, 1]
    assert abs(across_neurons) < 0.25


def test_shared_fraction_correlates_neurons_of_a_core_only() -> None:
    deviations = relative_deviation(MismatchModel(0.3, shared_fraction=0.6), n_instances=2000)
    idc = deviations["Idc"]
    same_core = np.corrcoef(idc[:, 0], idc[:, 1])[0, 1]
    other_core = np.corrcoef(idc[:, 0], idc[:, N_NEURONS // 4])[0, 1]
    assert abs(same_core - 0.6) < 0.1
    assert abs(other_core) < 0.1
    assert abs(idc.std() / 0.1 - 1.0) < 0.05  # the total variance is kept


def test_only_chosen_parameters_deviate() -> None:
    chosen = ("Itau_mem", "C_mem", "Vth")
    sampled, _ = sample_parameters(
        NOMINAL, CORE_MAP, MismatchModel(0.2, parameters=chosen), 1, range(8)
    )
    for name in PARAMETER_NAMES:
        unchanged = np.array_equal(
            sampled[name], np.broadcast_to(np.float32(NOMINAL[name]), (8, N_NEURONS))
        )
        assert unchanged == (name not in chosen), name


def test_zero_percent_is_the_nominal_network() -> None:
    sampled, nonphysical = sample_parameters(NOMINAL, CORE_MAP, MismatchModel(0.0), 5, range(3))
    for name in PARAMETER_NAMES:
        assert (sampled[name] == np.float32(NOMINAL[name][0])).all()
    assert not nonphysical.any()


def test_gaussian_follows_rockpool_formula() -> None:
    """x' = x + (sigma * z) * x in float32, z from the documented Philox stream."""
    from runner.physics.philox import STREAM_NEURON, standard_normal

    model = MismatchModel(0.3)
    sampled, _ = sample_parameters(NOMINAL, CORE_MAP, model, 42, [7])
    index = PARAMETER_NAMES.index("Itau_syn")
    z = standard_normal(42, np.array([7]), STREAM_NEURON, index, np.arange(N_NEURONS)).astype(
        np.float32
    )
    x = np.float32(DEFAULT_CURRENTS["Itau_syn"])
    np.testing.assert_array_equal(sampled["Itau_syn"][0], x + (np.float32(0.1) * z) * x)


def test_same_seed_same_numbers_any_split_other_seed_differs() -> None:
    model = MismatchModel(0.2, shared_fraction=0.3)
    whole, _ = sample_parameters(NOMINAL, CORE_MAP, model, 3, range(40))
    part, _ = sample_parameters(NOMINAL, CORE_MAP, model, 3, range(25, 40))
    other, _ = sample_parameters(NOMINAL, CORE_MAP, model, 4, range(40))
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(whole[name][25:], part[name])
        assert not np.array_equal(whole[name], other[name])


@pytest.mark.parametrize("policy", ["keep", "clip"])
def test_nonphysical_samples_counted_and_policy_applied(policy: str) -> None:
    model = MismatchModel(6.0, nonphysical=policy)  # sigma = 2: P(x' <= 0) = P(z <= -0.5) ~ 31 %
    sampled, nonphysical = sample_parameters(NOMINAL, CORE_MAP, model, 0, range(50))
    bad_total = sum((sampled[name] <= 0).sum(axis=1) for name in PARAMETER_NAMES)
    expected_fraction = 0.3085
    observed = nonphysical.sum() / (50 * N_NEURONS * len(PARAMETER_NAMES))
    assert abs(observed - expected_fraction) < 0.01
    if policy == "keep":
        np.testing.assert_array_equal(bad_total, nonphysical)
    else:
        assert not bad_total.any()
        floor = np.float32(NOMINAL["Itau_mem"][0]) * np.float32(NONPHYSICAL_FLOOR)
        assert np.isclose(sampled["Itau_mem"].min(), floor)


def test_lognormal_is_never_nonphysical() -> None:
    _, nonphysical = sample_parameters(
        NOMINAL, CORE_MAP, MismatchModel(6.0, "lognormal"), 0, range(50)
    )
    assert not nonphysical.any()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(percent=-0.1), "percent_mismatch"),
        (dict(percent=float("nan")), "percent_mismatch"),
        (dict(distribution="uniform"), "distribution"),
        (dict(shared_fraction=1.5), "shared_fraction"),
        (dict(parameters=("Itau_mem", "Ibogus")), "Ibogus"),
        (dict(nonphysical="drop"), "nonphysical"),
    ],
)
def test_bad_mismatch_models_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MismatchModel(**kwargs)
