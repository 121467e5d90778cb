"""The `patterns` task: reproducible, shaped as specified, and separable through a network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from omegaconf import OmegaConf

from runner import dynapsim_net_from_spec
from runner.analysis.readout import ReadoutConfig, chance_level, features, fit_ridge
from runner.data.patterns import PatternTask, pattern_templates, patterns
from runner.data.weights import ei_network
from runner.util.paths import CONF_DIR

SMALL = PatternTask(n_classes=4, n_samples=80, n_steps=60, n_channels=64, active_channels=12,
                    rate_hz=60.0, jitter_steps=5, seed=3)  # fmt: skip


def test_same_seed_same_dataset_and_samples_do_not_depend_on_the_size() -> None:
    first, again = patterns(SMALL), patterns(SMALL)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    np.testing.assert_array_equal(first.train, again.train)
    larger = patterns(dataclasses.replace(SMALL, n_samples=120))
    np.testing.assert_array_equal(larger.inputs[:80], first.inputs)
    np.testing.assert_array_equal(larger.labels[:80], first.labels)
    other = patterns(dataclasses.replace(SMALL, seed=4))
    assert not np.array_equal(other.inputs, first.inputs)
    assert (first.inputs.shape, first.n_classes) == ((80, 60, 64), 4)
    np.testing.assert_array_equal(np.bincount(first.labels), [20, 20, 20, 20])
    np.testing.assert_array_equal(np.bincount(first.labels[first.train]), [14, 14, 14, 14])


def test_templates_raise_the_given_channels_at_the_given_rate() -> None:
    templates = pattern_templates(SMALL)
    assert templates.shape == (4, 3, 64)
    np.testing.assert_array_equal(templates.sum(axis=2), np.full((4, 3), 12))
    assert not np.array_equal(templates[0], templates[1])
    no_jitter = dataclasses.replace(SMALL, jitter_steps=0, n_samples=400)
    dataset = patterns(no_jitter)
    window = dataset.inputs[dataset.labels == 0][:, :20]  # class 0, first window: 100 samples
    raised = window[:, :, templates[0, 0]].mean() * 1e3  # Hz: expect 60 + 5
    background = window[:, :, ~templates[0, 0]].mean() * 1e3  # expect 5
    assert abs(raised - 65.0) < 2.5 and abs(background - 5.0) < 0.5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_windows": 7}, r"n_windows=7 must divide n_steps=60"),
        ({"active_channels": 65}, r"active_channels must be in \[1, n_channels=64\]"),
        ({"jitter_steps": 20}, r"jitter_steps must be in \[0, window length 20\)"),
        ({"rate_hz": -1.0}, r"rate_hz must be a finite rate >= 0 Hz"),
        ({"n_classes": 1}, r"n_classes must be an int >= 2"),
        ({"seed": -1}, r"seed must be in \[0, 2\*\*64\)"),
    ],
)
def test_task_parameters_are_checked(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **changes)


def test_a_small_network_separates_the_classes() -> None:
    """Two E/I cores of 128 neurons, 64 inputs, no mismatch: ridge on spike counts."""
    core_map = np.repeat([0, 1], 128)
    net = dynapsim_net_from_spec(
        2, core_map, **ei_network(core_map, n_inputs=64, seed=0),
        Itau_mem=[7.09e-12, 5.32e-12], Igain_mem=[2.84e-11, 2.13e-11], percent_mismatch=0.0,
    )  # fmt: skip
    dataset = patterns(SMALL)
    result = net.simulate(dataset.inputs, dataset.n_samples, backend="reference")
    counts = features(result.spike_counts, SMALL.n_steps, 0, bins=1)
    train, labels = dataset.train, dataset.labels
    readout = fit_ridge(counts[train], labels[train], SMALL.n_classes, alpha=1000.0)
    assert np.mean(readout.predict(counts[~train]) == labels[~train]) >= 0.8
    shuffled = np.random.default_rng(0).permutation(labels[train])  # labels carry the signal
    control = fit_ridge(counts[train], shuffled, SMALL.n_classes, alpha=1000.0)
    assert np.mean(control.predict(counts[~train]) == labels[~train]) < 0.5
    assert chance_level(SMALL.n_classes) == 0.25


def test_the_shipped_task_config_builds() -> None:
    """conf/task/patterns.yaml's generator block (its composition: tests/test_task_run.py)."""
    config = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "task" / "patterns.yaml"))
    task = PatternTask(**config["stimulus"]["patterns"])
    assert task.n_channels == 256  # ei_4core's inputs
    readout = ReadoutConfig(**config["readout"])
    assert readout.per_chip
    assert task.n_steps % readout.bins == 0
