"""Input spike trains: Poisson, regular, or from a file; frozen or one trial per sample.

Trial k's input is a pure function of (stimulus seed, k): NumPy's Philox bit generator
keyed by both, so an instance sees the same input however the run is chunked or sharded.
Frozen stimuli give every instance (and the nominal reference) trial 0; otherwise mismatch
sample s sees trial s, at every sweep point, and the nominal reference sees trial 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .netconfig import find_file

__all__ = ["Stimulus"]


def _load_array(path: str) -> np.ndarray:
    found = find_file(path, "stimulus.file")
    if found.suffix == ".npy":
        return np.load(found, allow_pickle=False)
    if found.suffix == ".npz":
        with np.load(found, allow_pickle=False) as data:
            if "x" in data.files:
                return data["x"]
            if len(data.files) == 1:
                return data[data.files[0]]
            raise ValueError(
                f"stimulus.file {path}: expected an array 'x' or a single array, got {data.files}"
            )
    raise ValueError(f"stimulus.file must end in .npy or .npz, got {path}")


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
            rate = np.asarray(config["rate_hz"], dtype=np.float64)
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
        array = np.asarray(_load_array(config["file"]), dtype=np.float32)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[-1] != self.n_channels:
            raise ValueError(
                f"stimulus.file {config['file']} must hold (T, {self.n_channels}) or "
                f"(trials, T, {self.n_channels}) for this network's inputs, got {array.shape}"
            )
        if not self.frozen and array.shape[0] < n_samples:
            raise ValueError(
                f"stimulus.file {config['file']} holds {array.shape[0]} trials, but frozen=false "
                f"needs one per sample ({n_samples})"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"stimulus.file {config['file']} must be finite (no NaN/inf)")
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
