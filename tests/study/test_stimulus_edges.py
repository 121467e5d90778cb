"""Stimulus rates that passed the checks and crashed the generator after the folder was
claimed."""

from __future__ import annotations

import pytest

from runner.study.schema import StimulusConfig
from runner.study.stimulus import Stimulus


@pytest.mark.parametrize("kind", ["poisson", "regular"])
def test_a_rate_beyond_float32_counts_is_refused_before_any_work(kind: str) -> None:
    config = StimulusConfig(kind=kind, n_steps=10, rate_hz=1e300)
    with pytest.raises(ValueError, match=r"rate_hz x dt must be at most 1e\+06 .* got 1e\+297"):
        Stimulus(config, n_channels=2, dt=1e-3)
    assert Stimulus(StimulusConfig(kind=kind, n_steps=10, rate_hz=1e9), 2, 1e-3).trial(0).max() > 0
