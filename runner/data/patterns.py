"""Generated classification tasks: labelled datasets made from a seed and a few parameters.

`patterns`: K classes of spatio-temporal spike patterns. The trial is cut into `n_windows`
equal windows; class k's template gives each window its own random set of
`active_channels` input channels, which fire at `rate_hz` during that window while every
channel fires at `background_hz` throughout. Each sample shifts each window of its class's
template by its own random jitter and draws its spikes anew (Poisson), so no two samples
are alike. Templates are a function of the seed alone and sample s of (seed, s) alone, so
a larger dataset begins with the samples of a smaller one; sample s has class s mod K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runner.data.datasets import LabelledDataset
from runner.util.checks import check_int

__all__ = ["PatternTask", "pattern_templates", "patterns"]


@dataclass
class PatternTask:
    """Parameters of the `patterns` task (the `stimulus.patterns` block of the config)."""

    n_classes: int = 8  # classes; sample s has class s mod n_classes
    n_samples: int = 150  # train and test together
    n_steps: int = 150  # time steps of a sample
    n_channels: int = 256  # input channels (the network's inputs)
    n_windows: int = 3  # template windows of n_steps / n_windows steps
    active_channels: int = 32  # channels raised in each window of a template
    rate_hz: float = 25.0  # rate of a raised channel inside its window
    background_hz: float = 5.0  # rate of every channel at every step
    jitter_steps: int = 10  # each window of a sample shifts by up to +-jitter_steps
    dt: float = 1e-3  # the step the rates are drawn for (the network's dt)
    seed: int = 0  # templates from the seed, sample s from (seed, s)

    def __post_init__(self) -> None:
        counts = {"n_classes": 2, "n_samples": 2, "n_steps": 1, "n_channels": 1, "n_windows": 1}
        for name, minimum in counts.items():
            check_int(f"stimulus.patterns.{name}", getattr(self, name), minimum)
        if self.n_steps % self.n_windows:
            raise ValueError(
                f"stimulus.patterns.n_windows={self.n_windows} must divide n_steps={self.n_steps}"
            )
        if not 1 <= self.active_channels <= self.n_channels:
            raise ValueError(
                f"stimulus.patterns.active_channels must be in [1, n_channels={self.n_channels}], "
                f"got {self.active_channels}"
            )
        if not 0 <= self.jitter_steps < self.n_steps // self.n_windows:
            raise ValueError(
                f"stimulus.patterns.jitter_steps must be in [0, window length "
                f"{self.n_steps // self.n_windows}), got {self.jitter_steps}"
            )
        for name in ("rate_hz", "background_hz"):
            rate = getattr(self, name)
            if not np.isfinite(rate) or rate < 0:
                raise ValueError(
                    f"stimulus.patterns.{name} must be a finite rate >= 0 Hz, got {rate}"
                )
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"stimulus.patterns.seed must be in [0, 2**64), got {self.seed}")


def _stream(seed: int, index: int) -> np.random.Generator:
    """Stream 0 draws the templates, stream s + 1 draws sample s."""
    return np.random.Generator(np.random.Philox(key=seed + (index << 64)))


def pattern_templates(task: PatternTask) -> np.ndarray:
    """(K, n_windows, C) bool: the channels each class raises in each window."""
    rng = _stream(task.seed, 0)
    keys = rng.random((task.n_classes, task.n_windows, task.n_channels))
    ranks = np.argsort(np.argsort(keys, axis=-1), axis=-1)
    return ranks < task.active_channels


def _sample(task: PatternTask, template: np.ndarray, index: int) -> np.ndarray:
    """(T, C) spike counts of sample `index` drawn around its class's template."""
    rng = _stream(task.seed, index + 1)
    span = task.n_steps // task.n_windows
    shifts = rng.integers(-task.jitter_steps, task.jitter_steps + 1, task.n_windows)
    rate = np.full((task.n_steps, task.n_channels), task.background_hz)
    for window, shift in enumerate(shifts):
        start = max(window * span + shift, 0)
        stop = min((window + 1) * span + shift, task.n_steps)
        rate[start:stop, template[window]] += task.rate_hz
    return rng.poisson(rate * task.dt).astype(np.float32)


def patterns(
    task: PatternTask, train_fraction: float = 0.7, split_seed: int = 0
) -> LabelledDataset:
    """The `patterns` dataset, split by class with `train_fraction` (see `stratified_split`)."""
    templates = pattern_templates(task)
    labels = np.arange(task.n_samples) % task.n_classes
    inputs = np.stack(
        [_sample(task, templates[label], index) for index, label in enumerate(labels)]
    )
    return LabelledDataset.build(
        inputs, labels, train_fraction=train_fraction, seed=split_seed, source="stimulus.patterns"
    )
