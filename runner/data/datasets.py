"""A labelled dataset of input spike trains: samples, labels and a train/test split.

A dataset stimulus is an `.npz` holding `inputs` (S, T, C) spike counts and `labels` (S,)
class indices, and optionally `train` (S,) booleans. Without `train`, the split is drawn
from a seed, stratified by class: train and test hold every class in the same proportion
(up to rounding), so an accuracy is never moved by a lucky split and no class is missing
from the training set. Every check runs when the dataset is built, before any simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.util.checks import UINT64_STOP, check_int
from runner.util.files import find_file, unreadable_as_error

__all__ = [
    "MAX_COUNT",
    "LabelledDataset",
    "check_spike_counts",
    "check_split_settings",
    "stratified_split",
    "load_dataset",
]


MAX_COUNT = 2**24  # the largest spike count a float32 input still holds exactly


def check_spike_counts(where: str, array: Any, first_axis: str = "sample") -> np.ndarray:
    """`array` as float32 (S, T, C) spike counts (finite integers >= 0), or why it is not;
    `first_axis` names S in the messages (a dataset's samples, a stimulus file's trials)."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{where} must hold real spike counts, got dtype {array.dtype}")
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(
            f"{where} must have shape ({first_axis}s S >= 1, steps T >= 1, channels C >= 1), "
            f"got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{where} must be finite (no NaN/inf)")
    if array.size and array.max() > MAX_COUNT:
        raise ValueError(
            f"{where}: spike counts must be at most {MAX_COUNT} (2**24, exact in float32, as "
            f"the kernel reads them), got {array.max():g}"
        )
    not_counts = (array < 0) | (array != np.round(array))
    if not_counts.any():
        raise ValueError(
            f"{where} must hold spike counts (integers >= 0), got {array[not_counts][0]} at "
            f"({first_axis}, step, channel) {tuple(int(i) for i in np.argwhere(not_counts)[0])}"
        )
    return array.astype(np.float32)


def _check_labels(where: str, labels: Any, n_samples: int) -> np.ndarray:
    """Labels as int64 classes 0..K-1, 2 <= K <= S, checked in their own dtype (an unsigned
    label >= 2**63 would wrap to a negative one) before any set of classes is built."""
    labels = np.asarray(labels)
    if labels.shape != (n_samples,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{where} must be ({n_samples},) integers (one class per sample of inputs), "
            f"got shape {labels.shape} dtype {labels.dtype}"
        )
    if labels.dtype.kind == "i" and labels.min() < 0:
        raise ValueError(f"{where} must be class indices >= 0, got {labels.min()}")
    if labels.max() >= n_samples:
        raise ValueError(
            f"{where} must be classes 0..K-1 with K at most the {n_samples} samples, "
            f"got label {labels.max()}"
        )
    labels = labels.astype(np.int64)
    if labels.max() < 1:
        raise ValueError(f"{where}: a task needs at least 2 classes, got only class 0")
    return labels


def check_split_settings(train_fraction: float, seed: int) -> None:
    """A split needs train and test samples, and a seed Philox can take."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"readout.train_fraction must be in (0, 1), got {train_fraction}")
    check_int("the split seed", seed, stop=UINT64_STOP)


def stratified_split(labels: np.ndarray, train_fraction: float, seed: int) -> np.ndarray:
    """(S,) train mask: round(train_fraction * n) of each class's n samples (at least one).

    The samples of each class, in class order, are shuffled by one Philox stream keyed by
    `seed`: the same labels, fraction and seed always give the same split.
    """
    check_split_settings(train_fraction, seed)
    rng = np.random.Generator(np.random.Philox(key=int(seed)))
    train = np.zeros(labels.size, dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_train = min(max(int(round(train_fraction * members.size)), 1), members.size)
        train[rng.permutation(members)[:n_train]] = True
    return train


@dataclass(frozen=True)
class LabelledDataset:
    """Samples (S, T, C) float32 spike counts, their labels, and the train/test split."""

    inputs: np.ndarray  # (S, T, C) float32 spike counts
    labels: np.ndarray  # (S,) int64 in [0, n_classes)
    train: np.ndarray  # (S,) bool: True = train split, False = test split
    n_classes: int

    @property
    def n_samples(self) -> int:
        return int(self.labels.size)

    @property
    def n_steps(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def n_channels(self) -> int:
        return int(self.inputs.shape[2])

    @classmethod
    def build(
        cls,
        inputs: Any,
        labels: Any,
        train: Any = None,
        *,
        train_fraction: float = 0.7,
        seed: int = 0,
        n_channels: int | None = None,
        source: str = "dataset",
    ) -> LabelledDataset:
        """Validate the arrays (errors name `source`); draw the split when `train` is None."""
        inputs = check_spike_counts(f"{source}: inputs", inputs)
        n_samples = inputs.shape[0]
        if n_channels is not None and inputs.shape[2] != n_channels:
            raise ValueError(
                f"{source}: inputs must have shape (S, T, C={n_channels}) for this network's "
                f"{n_channels} input channels, got {inputs.shape}"
            )
        labels = _check_labels(f"{source}: labels", labels, n_samples)
        if train is None:
            train = stratified_split(labels, train_fraction, seed)
        else:
            train = np.asarray(train)
            if train.shape != (n_samples,) or train.dtype != np.bool_:
                raise ValueError(
                    f"{source}: train must be ({n_samples},) booleans (True = train sample), "
                    f"got shape {train.shape} dtype {train.dtype}"
                )
        if train.all():
            raise ValueError(f"{source}: no test sample (train is True for all {n_samples})")
        n_classes = int(labels.max()) + 1
        absent = np.flatnonzero(np.bincount(labels[train], minlength=n_classes) == 0)
        if absent.size:
            shown = ", ".join(str(k) for k in absent[:5])
            more = f", ...] ({absent.size} in all)" if absent.size > 5 else "]"
            raise ValueError(
                f"{source}: class(es) [{shown}{more} have no train sample; labels must be "
                f"0..K-1 with every class in the train split (K = {n_classes})"
            )
        return cls(inputs, labels, train.copy(), n_classes)


def load_dataset(
    path: str, n_channels: int, train_fraction: float = 0.7, seed: int = 0
) -> LabelledDataset:
    """The dataset in the `.npz` at `path` (looked up in the working directory, then conf/)."""
    found = find_file(path, "dataset")
    if found.suffix != ".npz":
        raise ValueError(f"dataset {path} must be an .npz with arrays inputs, labels [, train]")
    with unreadable_as_error(found, "dataset"), np.load(found, allow_pickle=False) as data:
        arrays = {name: data[name] for name in ("inputs", "labels", "train") if name in data}
        names = sorted(data.files)
    missing = sorted({"inputs", "labels"} - set(arrays))
    if missing:
        raise ValueError(
            f"dataset {path}: missing array(s) {missing}; expected inputs (S, T, C), "
            f"labels (S,) and optionally train (S,), got {names}"
        )
    return LabelledDataset.build(
        arrays["inputs"], arrays["labels"], arrays.get("train"), train_fraction=train_fraction,
        seed=seed, n_channels=n_channels, source=f"dataset {path}",
    )  # fmt: skip
