"""Stimuli: the counter-based trial contract, shapes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from runner.stimulus import Stimulus


def config(**changes: object) -> dict:
    base = {
        "kind": "poisson",
        "n_steps": 400,
        "rate_hz": 50.0,
        "file": None,
        "frozen": True,
        "seed": 3,
    }
    return {**base, **changes}


def test_poisson_trial_is_a_function_of_seed_and_trial_only() -> None:
    stimulus = Stimulus(config(frozen=False), n_channels=8, dt=1e-3, n_samples=4)
    expected = np.random.Generator(np.random.Philox(key=3 + (2 << 64))).poisson(0.05, (400, 8))
    np.testing.assert_array_equal(stimulus.trial(2), expected)
    stacked = stimulus.for_samples(np.array([2, 3]))
    assert stacked.shape == (2, 400, 8) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[0], stimulus.for_samples(np.array([1, 2]))[1])
    assert not np.array_equal(stacked[0], stacked[1])


def test_poisson_rate_per_channel() -> None:
    rates = [0.0, 100.0]
    stimulus = Stimulus(config(rate_hz=rates, n_steps=20000), n_channels=2, dt=1e-3, n_samples=1)
    counts = stimulus.for_samples(np.arange(3))
    assert counts.shape == (20000, 2)  # frozen: one (T, C) array for everyone
    assert counts[:, 0].sum() == 0
    assert abs(counts[:, 1].sum() / 20.0 - 100.0) < 10.0


def test_regular_trains_have_the_exact_rate() -> None:
    frozen = Stimulus(config(kind="regular", rate_hz=20.0, n_steps=1000), 5, 1e-3, 1)
    np.testing.assert_array_equal(frozen.trial(0).sum(axis=0), np.full(5, 20.0))
    trials = Stimulus(config(kind="regular", rate_hz=20.0, frozen=False), 5, 1e-3, 2)
    assert not np.array_equal(trials.trial(0), trials.trial(1))  # random phases per trial


def test_file_stimulus(tmp_path) -> None:
    x = np.random.default_rng(0).poisson(0.1, (3, 50, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    stimulus = Stimulus(config(kind="file", file=str(tmp_path / "x.npy"), frozen=False), 4, 1e-3, 3)
    assert stimulus.n_steps == 50
    np.testing.assert_array_equal(stimulus.for_samples(np.array([2, 0])), x[[2, 0]])
    with pytest.raises(ValueError, match="holds 3 trials"):
        Stimulus(config(kind="file", file=str(tmp_path / "x.npy"), frozen=False), 4, 1e-3, 5)
    with pytest.raises(ValueError, match=r"\(T, 6\)"):
        Stimulus(config(kind="file", file=str(tmp_path / "x.npy")), 6, 1e-3, 1)


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
        Stimulus(config(**changes), 3, 1e-3, 1)


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
    ("t0.npy", lambda p: _write_npy(p, np.zeros((0, 4))), r"T=0 steps; need at least one"),
    ("trials0.npy", lambda p: _write_npy(p, np.zeros((0, 5, 4))), r"0 trial\(s\)"),
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
        Stimulus(config(kind="file", file=str(path)), 4, 1e-3, 1)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("rate", ["fast", [1.0, "x"], 1 + 2j])
def test_non_numeric_rates_name_the_field(rate) -> None:
    with pytest.raises(ValueError, match=r"stimulus.rate_hz must be a number or a list"):
        Stimulus(config(rate_hz=rate), 2, 1e-3, 1)
