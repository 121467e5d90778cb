"""Input spike trains: Poisson, regular, or from a file; frozen or one trial per sample.

Trial k's input is a pure function of (stimulus seed, k): NumPy's Philox bit generator
keyed by both, so an instance sees the same input however the run is chunked or sharded.
Frozen stimuli give every instance (and the nominal reference) trial 0; otherwise mismatch
sample s sees trial s, at every sweep point, and the nominal reference sees trial 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .files import unreadable_as_error
from .netconfig import find_file

__all__ = ["Stimulus"]


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
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"stimulus.file {path} must hold real spike counts, got dtype {array.dtype}"
        )
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[-1] != n_channels:
        raise ValueError(
            f"stimulus.file {path} must hold (T, {n_channels}) or (trials, T, {n_channels}) "
            f"for this network's inputs, got {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"stimulus.file {path} holds {array.shape[0]} trial(s) of T={array.shape[1]} steps; "
            "need at least one trial of T >= 1"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"stimulus.file {path} must be finite (no NaN/inf)")
    not_counts = (array < 0) | (array != np.round(array))
    if not_counts.any():
        raise ValueError(
            f"stimulus.file {path} must hold spike counts (integers >= 0), "
            f"got {array[not_counts][0]} at (trial, step, channel) "
            f"{tuple(int(i) for i in np.argwhere(not_counts)[0])}"
        )
    return array.astype(np.float32)


def _rates(value: Any) -> np.ndarray:
    try:
        if np.iscomplexobj(value):
            raise TypeError("complex")
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"stimulus.rate_hz must be a number or a list of numbers (Hz), got {value!r}"
        ) from None


class Stimulus:
    """The input of every trial of one sweep point."""

    def __init__(self, config: dict[str, Any], n_channels: int, dt: float, n_samples: int) -> None:
        self.kind = config["kind"]
        self.frozen = bool(config["frozen"])
        self.seed = int(config["seed"])
        self.n_channels = n_channels
        self.dt = dt
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"stimulus.seed must be in [0, 2**64), got {self.seed}")
        if self.kind == "file":
            self._from_file(config, n_samples)
        else:
            self.n_steps = int(config["n_steps"])
            if self.n_steps < 1:
                raise ValueError(f"stimulus.n_steps must be >= 1, got {self.n_steps}")
            rate = _rates(config["rate_hz"])
            if rate.ndim > 1 or (rate.ndim == 1 and rate.size != n_channels):
                raise ValueError(
                    f"stimulus.rate_hz must be a number or a list of the network's {n_channels} "
                    f"input channels, got shape {rate.shape}"
                )
            if not np.isfinite(rate).all() or (rate < 0).any():
                raise ValueError(
                    f"stimulus.rate_hz must be finite and >= 0, got {config['rate_hz']}"
                )
            self.rate_hz = np.broadcast_to(rate, (n_channels,))

    def _from_file(self, config: dict[str, Any], n_samples: int) -> None:
        if not config.get("file"):
            raise ValueError("stimulus.kind=file needs stimulus.file (a .npy/.npz array)")
        path = config["file"]
        array = _spike_counts(path, _load_array(path), self.n_channels)
        if not self.frozen and array.shape[0] < n_samples:
            raise ValueError(
                f"stimulus.file {path} holds {array.shape[0]} trials, but frozen=false "
                f"needs one per sample ({n_samples})"
            )
        self.trials = array
        self.n_steps = array.shape[1]

    def _generator(self, trial: int) -> np.random.Generator:
        return np.random.Generator(np.random.Philox(key=self.seed + (trial << 64)))

    def trial(self, trial: int) -> np.ndarray:
        """(T, C) float32 spike counts of one trial."""
        if self.kind == "file":
            return self.trials[trial]
        if self.kind == "poisson":
            counts = self._generator(trial).poisson(
                self.rate_hz * self.dt, (self.n_steps, self.n_channels)
            )
            return counts.astype(np.float32)
        # regular: evenly spread phases when frozen, random phases per trial otherwise
        if self.frozen:
            phase = (np.arange(self.n_channels) + 0.5) / self.n_channels
        else:
            phase = self._generator(trial).random(self.n_channels)
        cycles = np.floor(np.arange(self.n_steps + 1)[:, None] * (self.rate_hz * self.dt) + phase)
        return np.diff(cycles, axis=0).astype(np.float32)

    def for_samples(self, samples: np.ndarray) -> np.ndarray:
        """Input of these mismatch samples: (T, C) when frozen, else (B, T, C)."""
        if self.frozen:
            return self.trial(0)
        return np.stack([self.trial(int(sample)) for sample in samples])
