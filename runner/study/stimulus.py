"""Input spike trains: Poisson, regular, from a file, or a labelled dataset, as numbered trials.

Trial k's input is a pure function of (stimulus seed, k): NumPy's Philox bit generator
keyed by both (a file: its k-th trial; a dataset: its sample k), so a row sees the same
input however the run is chunked or sharded. Which trials run is a list of trial ids:
`chip_trials` every chip runs, `nominal_trials` (a superset) the nominal instance runs, so
that chip c on trial k is always compared with the nominal instance on trial k. With
`stimulus.trials: K` both are 0..K-1. With a dataset (`kind: dataset` from an .npz, or
`kind: patterns` from the generator) the trial id is the sample index, and the readout
decides: chips run the test samples, or every sample when a ridge readout is refitted per
chip; the nominal instance runs every sample for ridge (it is fitted on the train ones),
else the test samples.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from runner.data.datasets import LabelledDataset, check_spike_counts, load_dataset
from runner.data.patterns import PatternTask, patterns
from runner.kernel.batch import InputEvents
from runner.util.checks import UINT64_STOP, check_int
from runner.util.files import find_file, unreadable_as_error

if TYPE_CHECKING:
    from runner.analysis.readout import ReadoutConfig
    from runner.study.schema import StimulusConfig

__all__ = ["LABELLED_KINDS", "Stimulus"]

LABELLED_KINDS = ("dataset", "patterns")  # stimulus kinds whose trials are labelled samples
_MAX_MEAN_COUNT = 1e6  # Poisson/regular counts near it stay far below MAX_COUNT (2**24)


def _load_array(path: str) -> np.ndarray:
    found = find_file(path, "stimulus.file")
    if found.suffix not in (".npy", ".npz"):
        raise ValueError(f"stimulus.file must end in .npy or .npz, got {path}")
    with unreadable_as_error(found, "stimulus.file"):
        data = np.load(found, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            return data
        with data:
            if "x" in data.files:
                return data["x"]
            if len(data.files) == 1:
                return data[data.files[0]]
    raise ValueError(
        f"stimulus.file {path}: expected an array 'x' or a single array, got {data.files}"
    )


def _spike_counts(path: str, array: np.ndarray, n_channels: int) -> np.ndarray:
    """The file's array as (trials, T, C) float32 counts, or why it cannot drive the network."""
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[-1] != n_channels:
        raise ValueError(
            f"stimulus.file {path} must hold (T, {n_channels}) or (trials, T, {n_channels}) "
            f"for this network's inputs, got {array.shape}"
        )
    return check_spike_counts(f"stimulus.file {path}", array, first_axis="trial")


def _rates(value: Any) -> np.ndarray:
    try:
        if np.iscomplexobj(value):
            raise TypeError("complex")
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"stimulus.rate_hz must be a number or a list of numbers (Hz), got {value!r}"
        ) from None


def _labelled_dataset(
    config: StimulusConfig, n_channels: int, dt: float, readout: ReadoutConfig | None
) -> LabelledDataset:
    """The dataset of a `dataset` or `patterns` stimulus, split as `readout` says."""
    kind = config.kind.value
    if readout is None:
        raise ValueError(
            f"stimulus.kind={kind} gives labelled samples for a task and needs a readout "
            "block (readout.kind: vote, linear or ridge), e.g. task=patterns"
        )
    if config.trials != 1:
        raise ValueError(
            f"stimulus.trials={config.trials} does not apply to stimulus.kind={kind}: the "
            "trials are the dataset's samples (trial id = sample index); leave it at 1"
        )
    if kind == "dataset":
        if not config.file:
            raise ValueError(
                "stimulus.kind=dataset needs stimulus.file (an .npz with inputs (S, T, C), "
                "labels (S,) and optionally train (S,))"
            )
        return load_dataset(config.file, n_channels, readout.train_fraction,
                            readout.split_seed)  # fmt: skip
    task = config.patterns or PatternTask()
    if task.n_channels != n_channels:
        raise ValueError(
            f"stimulus.patterns.n_channels={task.n_channels} must equal the network's "
            f"{n_channels} input channels"
        )
    if task.dt != dt:
        raise ValueError(
            f"stimulus.patterns.dt={task.dt:g} must equal the network's dt={dt:g} s (the step "
            "its rates are drawn for)"
        )
    return patterns(task, readout.train_fraction, readout.split_seed)


class Stimulus:
    """The input of every trial of one sweep point (and, for a dataset, labels and split)."""

    def __init__(
        self,
        config: StimulusConfig,
        n_channels: int,
        dt: float,
        readout: ReadoutConfig | None = None,
    ) -> None:
        self.kind = config.kind.value
        self.seed = check_int("stimulus.seed", config.seed, stop=UINT64_STOP)
        self.n_channels = n_channels
        self.dt = dt
        n_trials = check_int("stimulus.trials", config.trials, minimum=1)
        self.chip_trials = np.arange(n_trials)  # what every chip runs
        self.nominal_trials = np.arange(n_trials)  # what the nominal instance runs (a superset)
        self.dataset: LabelledDataset | None = None
        if self.kind in LABELLED_KINDS:
            self._from_dataset(_labelled_dataset(config, n_channels, dt, readout), readout)
        elif self.kind == "file":
            self._from_file(config)
        else:
            self.n_steps = int(config.n_steps)
            if self.n_steps < 1:
                raise ValueError(f"stimulus.n_steps must be >= 1, got {self.n_steps}")
            rate = _rates(config.rate_hz)
            if rate.ndim > 1 or (rate.ndim == 1 and rate.size != n_channels):
                raise ValueError(
                    f"stimulus.rate_hz must be a number or a list of the network's {n_channels} "
                    f"input channels, got shape {rate.shape}"
                )
            if not np.isfinite(rate).all() or (rate < 0).any():
                raise ValueError(
                    f"stimulus.rate_hz must be finite and >= 0, got {config.rate_hz}"
                )
            if (rate * dt > _MAX_MEAN_COUNT).any():
                raise ValueError(
                    f"stimulus.rate_hz x dt must be at most {_MAX_MEAN_COUNT:g} spikes per step "
                    f"and channel (counts stay exact in float32), got {rate.max() * dt:g}"
                )
            self.rate_hz = np.broadcast_to(rate, (n_channels,))

    def _from_file(self, config: StimulusConfig) -> None:
        if not config.file:
            raise ValueError("stimulus.kind=file needs stimulus.file (a .npy/.npz array)")
        path = config.file
        array = _spike_counts(path, _load_array(path), self.n_channels)
        needed = int(self.nominal_trials.max()) + 1
        if array.shape[0] < needed:
            raise ValueError(
                f"stimulus.file {path} holds {array.shape[0]} trial(s), but stimulus.trials="
                f"{needed} needs {needed} (trial k is the file's k-th)"
            )
        self._file_trials = array
        self.n_steps = array.shape[1]

    def _from_dataset(self, dataset: LabelledDataset, readout: ReadoutConfig) -> None:
        every, test = np.arange(dataset.n_samples), np.flatnonzero(~dataset.train)
        self.chip_trials = every if readout.per_chip else test
        self.nominal_trials = every if readout.kind == "ridge" else test
        self.dataset = dataset
        self.n_steps = dataset.n_steps

    def _generator(self, trial: int) -> np.random.Generator:
        return np.random.Generator(np.random.Philox(key=self.seed + (trial << 64)))

    def trial(self, trial: int) -> np.ndarray:
        """(T, C) float32 spike counts of one trial."""
        if self.dataset is not None:
            return self.dataset.inputs[trial]
        if self.kind == "file":
            return self._file_trials[trial]
        if self.kind == "poisson":
            counts = self._generator(trial).poisson(
                self.rate_hz * self.dt, (self.n_steps, self.n_channels)
            )
            return counts.astype(np.float32)
        # regular: trial 0 spreads the phases evenly, trial k >= 1 draws them from (seed, k)
        if trial == 0:
            phase = (np.arange(self.n_channels) + 0.5) / self.n_channels
        else:
            phase = self._generator(trial).random(self.n_channels)
        cycles = np.floor(np.arange(self.n_steps + 1)[:, None] * (self.rate_hz * self.dt) + phase)
        return np.diff(cycles, axis=0).astype(np.float32)

    def for_trials(self, trials: np.ndarray) -> np.ndarray:
        """(len(trials), T, C) float32: one input stream per trial id."""
        return np.stack([self.trial(int(trial)) for trial in trials])

    @cached_property
    def chip_events(self) -> InputEvents:
        """Every chip trial as one event stream (stream i = chip_trials[i]), built once per
        point: each chunk's rows read these streams instead of regenerating the trials."""
        return InputEvents.from_dense(self.for_trials(self.chip_trials), len(self.chip_trials))

    def nominal_positions(self, trials: np.ndarray) -> np.ndarray:
        """Where each of these trial ids sits in `nominal_trials` (its nominal reference)."""
        position = {int(trial): index for index, trial in enumerate(self.nominal_trials)}
        return np.array([position[int(trial)] for trial in trials], dtype=np.int64)
