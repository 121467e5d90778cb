"""Stimuli: the counter-based trial contract, shapes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from runner.study.schema import StimulusConfig
from runner.study.stimulus import Stimulus


def config(**changes: object) -> StimulusConfig:
    base = {
        "kind": "poisson",
        "n_steps": 400,
        "rate_hz": 50.0,
        "file": None,
        "trials": 1,
        "seed": 3,
    }
    return StimulusConfig(**{**base, **changes})


def test_poisson_trial_is_a_function_of_seed_and_trial_only() -> None:
    stimulus = Stimulus(config(trials=4), n_channels=8, dt=1e-3)
    expected = np.random.Generator(np.random.Philox(key=3 + (2 << 64))).poisson(0.05, (400, 8))
    np.testing.assert_array_equal(stimulus.trial(2), expected)
    stacked = stimulus.for_trials(np.array([2, 3]))
    assert stacked.shape == (2, 400, 8) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[0], stimulus.for_trials(np.array([1, 2]))[1])
    assert not np.array_equal(stacked[0], stacked[1])
    # trial 2 does not depend on how many trials the stimulus holds
    np.testing.assert_array_equal(Stimulus(config(trials=9), 8, 1e-3).trial(2), expected)


def test_every_chip_and_the_nominal_run_trials_0_to_k() -> None:
    stimulus = Stimulus(config(trials=4), n_channels=8, dt=1e-3)
    np.testing.assert_array_equal(stimulus.chip_trials, np.arange(4))
    np.testing.assert_array_equal(stimulus.nominal_trials, np.arange(4))
    np.testing.assert_array_equal(stimulus.nominal_positions(np.array([3, 0, 3])), [3, 0, 3])


@pytest.mark.parametrize("trials", [0, -1, True, 2.5])
def test_trials_must_be_a_positive_integer(trials) -> None:
    with pytest.raises(ValueError, match=r"stimulus.trials must be an int >= 1"):
        Stimulus(config(trials=trials), 8, 1e-3)


def test_poisson_rate_per_channel() -> None:
    rates = [0.0, 100.0]
    stimulus = Stimulus(config(rate_hz=rates, n_steps=20000), n_channels=2, dt=1e-3)
    counts = stimulus.trial(0)
    assert counts.shape == (20000, 2)
    assert counts[:, 0].sum() == 0
    assert abs(counts[:, 1].sum() / 20.0 - 100.0) < 10.0


def test_regular_trains_have_the_exact_rate() -> None:
    stimulus = Stimulus(config(kind="regular", rate_hz=20.0, n_steps=1000, trials=3), 5, 1e-3)
    for trial in range(3):
        np.testing.assert_array_equal(stimulus.trial(trial).sum(axis=0), np.full(5, 20.0))
    first = np.argmax(stimulus.trial(0), axis=0)  # evenly spread phases: 50 steps per cycle
    np.testing.assert_array_equal(first, 49 - np.floor((np.arange(5) + 0.5) / 5 * 50))
    assert not np.array_equal(stimulus.trial(1), stimulus.trial(2))  # random phases per trial


def test_file_stimulus(tmp_path) -> None:
    x = np.random.default_rng(0).poisson(0.1, (3, 50, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    stimulus = Stimulus(config(kind="file", file=str(tmp_path / "x.npy"), trials=3), 4, 1e-3)
    assert stimulus.n_steps == 50
    np.testing.assert_array_equal(stimulus.for_trials(np.array([2, 0])), x[[2, 0]])
    with pytest.raises(ValueError, match=r"holds 3 trial\(s\), but stimulus.trials=5 needs 5"):
        Stimulus(config(kind="file", file=str(tmp_path / "x.npy"), trials=5), 4, 1e-3)
    with pytest.raises(ValueError, match=r"\(T, 6\)"):
        Stimulus(config(kind="file", file=str(tmp_path / "x.npy")), 6, 1e-3)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"rate_hz": [1.0, 2.0]}, "rate_hz must be a number or a list of the network's 3"),
        ({"rate_hz": -1.0}, "finite and >= 0"),
        ({"n_steps": 0}, "n_steps must be >= 1"),
        ({"kind": "file"}, "needs stimulus.file"),
        ({"kind": "file", "file": "nope.npy"}, "no file 'nope.npy'"),
    ],
)
def test_bad_stimulus(changes: dict, message: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        Stimulus(config(**changes), 3, 1e-3)


def _write_npy(path, array) -> None:
    np.save(path, array)


def _write_bytes(path, content: bytes) -> None:
    path.write_bytes(content)


def _truncated_npz(path) -> None:
    np.savez(path.with_suffix(".full.npz"), x=np.ones((50, 4)))
    path.write_bytes(path.with_suffix(".full.npz").read_bytes()[:60])


BAD_FILES = [
    ("empty.npy", lambda p: _write_bytes(p, b""), r"cannot read it as a \.npy file"),
    ("noise.npy", lambda p: _write_bytes(p, b"not an array"), r"cannot read it as a \.npy file"),
    ("cut.npz", _truncated_npz, r"cannot read it as a \.npz file"),
    ("t0.npy", lambda p: _write_npy(p, np.zeros((0, 4))), r"steps T >= 1, .*got \(1, 0, 4\)"),
    ("trials0.npy", lambda p: _write_npy(p, np.zeros((0, 5, 4))), r"trials S >= 1, .*\(0, 5, 4\)"),
    ("negative.npy", lambda p: _write_npy(p, -np.ones((5, 4))), r"integers >= 0\), got -1"),
    ("half.npy", lambda p: _write_npy(p, np.full((5, 4), 0.5)), r"integers >= 0\), got 0\.5"),
    ("complex.npy", lambda p: _write_npy(p, np.ones((5, 4), complex)), "dtype complex128"),
    ("text.npy", lambda p: _write_npy(p, np.full((5, 4), "1")), "dtype <U1"),
    ("nan.npy", lambda p: _write_npy(p, np.full((5, 4), np.nan)), "must be finite"),
]


@pytest.mark.parametrize("name,write,message", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_unusable_stimulus_files_are_named(tmp_path, name, write, message) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError, match=message) as error:
        Stimulus(config(kind="file", file=str(path)), 4, 1e-3)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("rate", ["fast", [1.0, "x"], 1 + 2j])
def test_non_numeric_rates_name_the_field(rate) -> None:
    with pytest.raises(ValueError, match=r"stimulus.rate_hz must be a number or a list"):
        Stimulus(config(rate_hz=rate), 2, 1e-3)
