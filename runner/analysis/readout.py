"""Task accuracy: features from spike counts, readouts (vote, linear, ridge), accuracies.

Features are per-neuron spike counts over the trial, or over `bins` equal time bins,
feature `bin * N + neuron`. A readout maps features (B, F) to a class per trial (B,).
`ridge` is fitted in closed form and is then a `LinearReadout` like one read from a file:
fitted on the nominal chip's train responses and applied to every chip's test responses, it
answers whether a readout transfers between chips; refitted on each chip's own train
responses (`per_chip`), it gives the accuracy a per-chip calibration could reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from runner.data.datasets import check_split_settings
from runner.util.checks import check_int
from runner.util.files import find_file, unreadable_as_error

__all__ = [
    "READOUT_KINDS",
    "ReadoutConfig",
    "Readout",
    "VoteReadout",
    "LinearReadout",
    "features",
    "fit_ridge",
    "configured_readout",
    "refit_predictions",
    "chance_level",
]

READOUT_KINDS = ("vote", "linear", "ridge")
_RIDGE_FORMS = ("auto", "primal", "dual")
_BLOCK_ENTRIES = 1 << 24  # float64 feature entries per block of chips in a batched refit


@dataclass
class ReadoutConfig:
    """The `readout:` block, checked on construction (errors name the key and the range)."""

    kind: str = "ridge"  # vote, linear (weights from `file`) or ridge (fitted on the nominal)
    bins: int = 1  # equal time bins per trial; features (B, N * bins)
    alpha: float = 1000.0  # ridge regulariser, on standardised features (as readout=ridge)
    per_chip: bool = False  # ridge: also refit on every chip's own train responses
    train_fraction: float = 0.7  # share of each class in the train split (no `train` array)
    split_seed: int = 0  # seed of that split
    target: float = 0.8  # a chip "works" at or above this test accuracy
    # ridge: the sweep point whose nominal instance trains the readout every point is scored
    # with (e.g. 0, the float network: deployed as trained); null: each point its own nominal
    fit_point: int | None = None
    groups: list[list[int]] | None = None  # vote: the neuron ids of each class
    class_of_neuron: list[int] | None = None  # vote: each neuron's class, -1 for none
    file: str | None = None  # linear: .npz with weights (F, K) and bias (K,)

    def __post_init__(self) -> None:
        if self.kind not in READOUT_KINDS:
            raise ValueError(
                f"readout.kind must be one of {list(READOUT_KINDS)}, got {self.kind!r}"
            )
        check_int("readout.bins", self.bins, minimum=1)
        if not np.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"readout.alpha must be a finite number > 0, got {self.alpha}")
        check_split_settings(self.train_fraction, self.split_seed)
        if not 0.0 <= self.target <= 1.0:
            raise ValueError(f"readout.target must be an accuracy in [0, 1], got {self.target}")
        if self.fit_point is not None:
            check_int("readout.fit_point (a sweep point index)", self.fit_point, minimum=0)
            if self.kind != "ridge":
                raise ValueError(
                    f"readout.fit_point chooses where a ridge readout is fitted; kind is "
                    f"{self.kind!r}"
                )
        if self.per_chip and self.kind != "ridge":
            raise ValueError(f"readout.per_chip refits a ridge readout; kind is {self.kind!r}")
        if self.kind == "vote" and (self.groups is None) == (self.class_of_neuron is None):
            raise ValueError(
                "readout.kind=vote needs exactly one of readout.groups (a list of neuron-id "
                "lists, one per class) or readout.class_of_neuron (a class per neuron, -1: none)"
            )
        if self.kind == "linear" and not self.file:
            raise ValueError(
                "readout.kind=linear needs readout.file (.npz with weights (F, K), bias (K,))"
            )


def features(counts: np.ndarray, n_steps: int, bin_width: int, bins: int) -> np.ndarray:
    """(B, bins * N) float64 spike counts per readout bin, from the kernel's counts.

    `counts` is `BatchResult.binned_counts` (B, n_bins, N), kernel bins of `bin_width`
    steps (0: one bin of the whole run), or `spike_count` (B, N) for bins=1. The rule: the
    `bins` readout bins are equal and whole, so `n_steps` must be a multiple of `bins`, and
    each readout bin a whole number of kernel bins: `bin_width` must divide n_steps / bins.
    """
    counts = np.asarray(counts)
    check_int("readout.bins", bins, minimum=1)
    if counts.ndim == 2:
        if bins != 1:
            raise ValueError(
                f"readout.bins={bins} needs binned counts (B, n_bins, N); "
                "total spike counts (B, N) give bins=1 only"
            )
        return counts.astype(np.float64)
    width = bin_width or n_steps
    if n_steps % bins:
        raise ValueError(
            f"readout.bins={bins} must divide the trial's {n_steps} steps into equal whole bins"
        )
    span = n_steps // bins
    if span % width:
        raise ValueError(
            f"readout bins of {span} steps ({n_steps} steps / {bins} bins) are not whole "
            f"kernel bins of {width} steps: the kernel bin width must divide {span}"
        )
    if counts.ndim != 3 or counts.shape[1] != n_steps // width:
        raise ValueError(
            f"binned counts must have shape (B, {n_steps // width} bins of {width} steps, N), "
            f"got {counts.shape}"
        )
    grouped = counts.reshape(counts.shape[0], bins, span // width, counts.shape[2])
    return grouped.sum(axis=2, dtype=np.float64).reshape(counts.shape[0], -1)


class Readout(Protocol):
    n_classes: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(B, F) features -> (B,) int64 predicted classes."""
        ...


@dataclass(frozen=True)
class VoteReadout:
    """Class k is a group of output neurons; a trial goes to the group with most spikes.

    Spikes are summed over every bin and every neuron of a group (totals, not means: a
    larger group weighs more). Ties go to the lowest class index among the tied groups; a
    trial in which no group neuron spiked predicts -1 (no decision), which is never correct.
    """

    class_of_neuron: np.ndarray  # (N,) int64, -1 for neurons in no group
    n_classes: int

    @classmethod
    def from_groups(cls, groups: list[list[int]], n_neurons: int) -> VoteReadout:
        class_of_neuron = np.full(n_neurons, -1, dtype=np.int64)
        for label, group in enumerate(groups):
            ids = np.asarray(group)
            if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
                raise ValueError(
                    f"readout.groups[{label}] must be a non-empty list of neuron ids, got {group!r}"
                )
            if ids.min() < 0 or ids.max() >= n_neurons:
                raise ValueError(
                    f"readout.groups[{label}] holds neuron ids outside [0, {n_neurons}): {group!r}"
                )
            repeated = np.unique(ids, return_counts=True)
            if (repeated[1] > 1).any():
                raise ValueError(
                    f"readout.groups[{label}] names neuron {int(repeated[0][repeated[1] > 1][0])} "
                    "more than once; a neuron votes once"
                )
            taken = ids[class_of_neuron[ids] >= 0]
            if taken.size:
                raise ValueError(
                    f"readout.groups: neuron {int(taken[0])} is in group "
                    f"{int(class_of_neuron[taken[0]])} and group {label}; groups must not overlap"
                )
            class_of_neuron[ids] = label
        return cls.from_class_of_neuron(class_of_neuron, n_neurons)

    @classmethod
    def from_class_of_neuron(cls, class_of_neuron: Any, n_neurons: int) -> VoteReadout:
        array = np.asarray(class_of_neuron)
        if array.shape != (n_neurons,) or array.dtype.kind not in "iu":
            raise ValueError(
                f"readout.class_of_neuron must be ({n_neurons},) ints (a class per neuron, "
                f"-1: none), got shape {array.shape} dtype {array.dtype}"
            )
        if array.min() < -1 or array.max() < 0:
            raise ValueError("readout.class_of_neuron must be classes >= 0 or -1, with one class")
        n_classes = int(array.max()) + 1
        empty = sorted(set(range(n_classes)) - set(array.tolist()))
        if empty:
            raise ValueError(f"readout vote: class(es) {empty} have no neuron")
        return cls(array.astype(np.int64), n_classes)

    def predict(self, features: np.ndarray) -> np.ndarray:
        n_neurons = self.class_of_neuron.size
        if features.ndim != 2 or features.shape[1] % n_neurons:
            raise ValueError(
                f"vote readout: features must be (B, bins * N) with N = {n_neurons}, "
                f"got {features.shape}"
            )
        per_neuron = features.reshape(features.shape[0], -1, n_neurons).sum(axis=1)
        members = self.class_of_neuron[:, None] == np.arange(self.n_classes)  # (N, K)
        votes = per_neuron @ members
        predicted = np.argmax(votes, axis=1)  # first maximum: the lowest tied class
        predicted[votes.max(axis=1) <= 0] = -1
        return predicted


@dataclass(frozen=True)
class LinearReadout:
    """scores = features @ weights + bias; the class with the highest score (lowest on ties),
    -1 where the scores are not finite."""

    weights: np.ndarray  # (F, K) float64
    bias: np.ndarray  # (K,) float64

    @property
    def n_classes(self) -> int:
        return int(self.bias.size)

    @classmethod
    def from_file(cls, path: str) -> LinearReadout:
        """`weights` (F, K) and optional `bias` (K,) (absent: zero) from an .npz."""
        found = find_file(path, "readout.file")
        with unreadable_as_error(found, "readout.file"), np.load(found, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("weights", "bias") if name in data}
            names = sorted(data.files)
        weights = arrays.get("weights")
        if weights is None or weights.ndim != 2 or weights.dtype.kind not in "iuf":
            shape = None if weights is None else weights.shape
            raise ValueError(
                f"readout.file {path}: needs weights, real (F, K) (F features, K classes); "
                f"arrays {names}, weights shape {shape}"
            )
        bias = arrays.get("bias", np.zeros(weights.shape[1]))
        if bias.shape != (weights.shape[1],) or bias.dtype.kind not in "iuf":
            raise ValueError(
                f"readout.file {path}: bias must be real ({weights.shape[1]},) (one per class "
                f"of weights), got shape {bias.shape}"
            )
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            raise ValueError(f"readout.file {path}: weights and bias must be finite")
        return cls(weights.astype(np.float64), bias.astype(np.float64))

    def check(self, n_features: int, n_classes: int, where: str = "readout") -> None:
        """Refuse a readout whose shapes do not match the features and the dataset."""
        if self.weights.shape != (n_features, n_classes):
            raise ValueError(
                f"{where}: weights must be (F={n_features} features (N * bins), "
                f"K={n_classes} classes), got {self.weights.shape}"
            )

    def scores(self, features: np.ndarray) -> np.ndarray:
        if features.shape[-1] != self.weights.shape[0]:
            raise ValueError(
                f"linear readout: features must have {self.weights.shape[0]} columns, "
                f"got {features.shape}"
            )
        return features @ self.weights + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The class with the highest score; -1 (no decision, never correct) for a row whose
        scores are not all finite (weights that overflow on large counts): no class is
        picked from a NaN."""
        scores = self.scores(features)
        return np.where(np.isfinite(scores).all(axis=-1), np.argmax(scores, axis=-1), -1)


def _standardise(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature train mean and std (std 1 where a feature is constant)."""
    mean = train.mean(axis=-2, keepdims=True)
    std = train.std(axis=-2, keepdims=True)
    return mean, np.where(std > 0, std, 1.0)


def _ridge_weights(z: np.ndarray, targets: np.ndarray, alpha: float, form: str) -> np.ndarray:
    """(C, F, K) minimisers of |z W - targets|^2 + alpha |W|^2 for centred z (C, n, F).

    The primal form solves an F x F system, the dual (kernel) form an n x n one; both give
    the same W, the cheaper is the one with the smaller side.
    """
    n, n_features = z.shape[-2:]
    if form == "auto":
        form = "dual" if n < n_features else "primal"
    zt = np.swapaxes(z, -1, -2)
    if form == "primal":
        gram = zt @ z + alpha * np.eye(n_features)
        return np.linalg.solve(gram, zt @ targets)
    gram = z @ zt + alpha * np.eye(n)
    return zt @ np.linalg.solve(gram, np.broadcast_to(targets, (*z.shape[:-2], *targets.shape)))


def _fit_ridge_batch(
    train_features: np.ndarray, labels: np.ndarray, n_classes: int, alpha: float, form: str
) -> tuple[np.ndarray, np.ndarray]:
    """Raw-feature weights (C, F, K) and biases (C, K) of C independent ridge fits."""
    one_hot = (labels[:, None] == np.arange(n_classes)).astype(np.float64)
    target_mean = one_hot.mean(axis=0)
    mean, std = _standardise(train_features)
    w = _ridge_weights((train_features - mean) / std, one_hot - target_mean, alpha, form)
    weights = w / np.swapaxes(std, -1, -2)
    bias = target_mean - (mean @ weights)[..., 0, :]
    return weights, bias


def fit_ridge(
    features: np.ndarray, labels: np.ndarray, n_classes: int, alpha: float, form: str = "auto"
) -> LinearReadout:
    """Closed-form ridge regression of one-hot targets on standardised features.

    Features are standardised with the train mean and std, so that one `alpha` weighs every
    neuron alike whatever its rate (a 200 Hz neuron would otherwise dominate a 5 Hz one)
    and `alpha` reads relative to the number of train samples; the intercept is not
    penalised. The result works on raw features. form: "primal", "dual" or "auto".
    """
    if form not in _RIDGE_FORMS:
        raise ValueError(f"ridge form must be one of {list(_RIDGE_FORMS)}, got {form!r}")
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"ridge: features (n, F) and labels (n,) must match, got {features.shape} and "
            f"{labels.shape}"
        )
    weights, bias = _fit_ridge_batch(
        np.asarray(features, np.float64), labels, n_classes, alpha, form
    )
    return LinearReadout(weights, bias)


def configured_readout(
    config: ReadoutConfig, n_features: int, n_classes: int, n_neurons: int
) -> Readout:
    """A vote or linear readout as configured, checked against the features (F columns)
    and the dataset's classes; ridge has none until it is fitted."""
    if config.kind == "vote":
        readout: Readout = (
            VoteReadout.from_groups(config.groups, n_neurons)
            if config.groups is not None
            else VoteReadout.from_class_of_neuron(config.class_of_neuron, n_neurons)
        )
        if readout.n_classes != n_classes:
            raise ValueError(
                f"readout vote: {readout.n_classes} groups for a dataset of {n_classes} classes"
            )
        return readout
    if config.kind == "linear":
        linear = LinearReadout.from_file(config.file)
        linear.check(n_features, n_classes, f"readout.file {config.file}")
        return linear
    raise ValueError("readout.kind=ridge is fitted on responses, not configured")


def chance_level(n_classes: int) -> float:
    return 1.0 / n_classes


def refit_predictions(
    chip_features: np.ndarray, labels: np.ndarray, train: np.ndarray, alpha: float
) -> np.ndarray:
    """(C, S) classes of every sample of C chips (C, S, F), each by a ridge readout fitted
    on that chip's own train samples. Chips are fitted in blocks, each block in one batched
    solve (dual form while train samples < features)."""
    n_chips, n_samples, n_features = chip_features.shape
    n_classes = int(labels.max()) + 1
    predicted = np.empty((n_chips, n_samples), dtype=np.int64)
    block = max(1, _BLOCK_ENTRIES // (n_samples * n_features))
    for start in range(0, n_chips, block):
        chips = chip_features[start : start + block]
        weights, bias = _fit_ridge_batch(chips[:, train], labels[train], n_classes, alpha,
                                         "auto")  # fmt: skip
        predicted[start : start + block] = np.argmax(chips @ weights + bias[:, None, :], axis=-1)
    return predicted
