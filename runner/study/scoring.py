"""Task accuracy inside a run: each sweep point's readout, and the predictions of its rows.

A point with a labelled dataset gets a `PointTask`: its labels and split, the kernel bin
width its features need, and, for vote and linear, the readout built from the config at
planning (so a bad group or weight file stops the run before any simulation). A ridge
readout is fitted once per point on the nominal instance's responses to the train samples,
when the nominal instances are simulated; its weights are stored with the chunks, so a
resumed run scores with the same readout. Every row gets `label`, `split` and `predicted`
(the transferred readout's class) and, with `readout.per_chip`, `predicted_per_chip` (a
ridge readout refitted on that chip's own train rows, all within one chunk since chunks
hold whole chips). A prediction is missing (null) for a non-finite row, for every row of a
chip refitted with a non-finite row, and for every row of a point whose nominal instance
is non-finite on a train sample (no transferred ridge readout exists there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from runner.analysis.readout import (
    LinearReadout,
    Readout,
    ReadoutConfig,
    chance_level,
    configured_readout,
    features,
    fit_ridge,
    refit_predictions,
)
from runner.kernel.batch import BatchResult

if TYPE_CHECKING:
    from runner.study.stimulus import Stimulus

__all__ = [
    "PointTask",
    "kernel_bin_width",
    "point_task",
    "predictions",
    "refitted_predictions",
    "stored_readout",
]


def kernel_bin_width(n_steps: int, bin_steps: int, readout: ReadoutConfig | None) -> int:
    """Steps per kernel bin: whole bins of `metrics.bin_steps` for the population rate and,
    for a readout on `bins` > 1 time bins, whole readout bins of n_steps / bins steps too."""
    if readout is None or readout.bins == 1:
        return bin_steps
    return math.gcd(bin_steps, n_steps // readout.bins)


@dataclass
class PointTask:
    """What scores a sweep point's rows: the dataset's labels and split, and the readout."""

    config: ReadoutConfig
    labels: np.ndarray  # (S,) class of every sample (= trial id)
    train: np.ndarray  # (S,) True for the train samples
    n_classes: int
    n_steps: int
    bin_width: int  # the kernel's bin width (kernel_bin_width)
    configured: Readout | None  # vote or linear, from the config; None for ridge

    @property
    def chance(self) -> float:
        return chance_level(self.n_classes)

    def readout_shape(self, n_neurons: int) -> tuple[int, int]:
        """(features, classes) of this task's readout on a network of `n_neurons`."""
        return self.config.bins * n_neurons, self.n_classes

    def features(self, result: BatchResult) -> np.ndarray:
        """(B, N * bins) spike counts per readout bin of every row of `result`."""
        bins = self.config.bins
        counts = result.spike_count if bins == 1 else result.binned_counts
        return features(counts, self.n_steps, self.bin_width, bins)

    def nominal_readout(
        self, nominal_features: np.ndarray, trials: np.ndarray, nonfinite: np.ndarray
    ) -> Readout | None:
        """The ridge readout every chip is scored with (a task without a configured one),
        fitted on the nominal rows (trial ids `trials`) of the train samples; None when one of
        those is non-finite."""
        train = self.train[trials]
        if nonfinite[train].any():
            return None
        return fit_ridge(nominal_features[train], self.labels[trials][train], self.n_classes,
                         self.config.alpha)  # fmt: skip


def point_task(
    config: ReadoutConfig, stimulus: Stimulus, n_neurons: int, bin_steps: int
) -> PointTask:
    """The task of one sweep point, checked against its network and dataset."""
    dataset = stimulus.dataset
    if dataset is None:
        raise ValueError(
            f"readout needs labelled samples: stimulus.kind dataset (an .npz) or patterns, "
            f"got stimulus.kind={stimulus.kind}"
        )
    if dataset.n_steps % config.bins:
        raise ValueError(
            f"readout.bins={config.bins} must divide the dataset's T={dataset.n_steps} steps "
            "into equal whole bins"
        )
    configured = None
    if config.kind != "ridge":
        configured = configured_readout(config, n_neurons * config.bins, dataset.n_classes,
                                        n_neurons)  # fmt: skip
    width = kernel_bin_width(dataset.n_steps, bin_steps, config)
    return PointTask(config, dataset.labels, dataset.train, dataset.n_classes, dataset.n_steps,
                     width, configured)  # fmt: skip


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """int64 classes with missing entries (null) where `missing`."""
    return pd.arrays.IntegerArray(values.astype(np.int64), missing.astype(bool))


def predictions(
    task: PointTask,
    readout: Readout | None,
    row_features: np.ndarray,
    trials: np.ndarray,
    nonfinite: np.ndarray,
) -> dict[str, np.ndarray | pd.arrays.IntegerArray]:
    """Per-row columns label, split and predicted (the transferred readout's class, null
    where the row is non-finite or there is no readout) of rows on trial ids `trials`."""
    transferred = np.full(trials.size, -1, dtype=np.int64)
    if readout is not None:
        transferred = readout.predict(row_features)
    return {
        "label": task.labels[trials],
        "split": np.where(task.train[trials], "train", "test"),
        "predicted": _nullable(transferred, nonfinite | (readout is None)),
    }


def refitted_predictions(
    task: PointTask,
    row_features: np.ndarray,
    trials: np.ndarray,
    nonfinite: np.ndarray,
    n_trials: int,
) -> pd.arrays.IntegerArray:
    """Per-row classes by a ridge readout refitted on each chip's own train rows: the rows
    are whole chips of `n_trials` rows each, chip-major, every chip on the same trial ids;
    null for every row of a chip with a non-finite row."""
    chips = row_features.reshape(trials.size // n_trials, n_trials, -1)
    chip_trials = trials[:n_trials]
    bad = nonfinite.reshape(-1, n_trials).any(axis=1)
    own = np.full((chips.shape[0], n_trials), -1, dtype=np.int64)
    if (~bad).any():
        own[~bad] = refit_predictions(chips[~bad], task.labels[chip_trials],
                                      task.train[chip_trials], task.config.alpha)  # fmt: skip
    return _nullable(own.reshape(-1), np.repeat(bad, n_trials))


def stored_readout(weights: np.ndarray, bias: np.ndarray) -> LinearReadout | None:
    """A fitted readout read back from the chunks folder (NaN weights: none was fitted)."""
    if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
        return None
    return LinearReadout(weights, bias)
