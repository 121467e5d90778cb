"""What a backend is given (`Batch`) and what it returns (`BatchResult`).

One `Batch` is a set of mismatch instances driven by input events. Instances may belong to
different nominal networks (`Variant`s: e.g. the points of a bias or mismatch sweep) that
share neurons, core map, weights and dt, so a whole sweep packs into one kernel launch.
Every backend (reference, cpu, cuda) takes the same `Batch` and returns the same
`BatchResult`, so tests and the runner never care which one ran.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from runner.physics.mismatch import MismatchModel, sample_base_weights, sample_parameters
from runner.physics.parameters import PARAMETER_NAMES

if TYPE_CHECKING:
    from runner.physics.spec import Quantization

__all__ = ["InputEvents", "Variant", "Batch", "BatchResult", "REDUCTION_FIELDS"]

_DENSE_BLOCK = 1 << 22  # dense input entries converted to events at a time (one thread)


@dataclass(frozen=True)
class InputEvents:
    """Input spikes as sparse events, one event list per step per input stream.

    The events of stream s at step t are `channel[step_ptr[s, t]:step_ptr[s, t + 1]]` with
    weights `value[...]`; instance b reads stream `instance_stream[b]` (all 0 when the
    input is shared). A channel indexes a row of W_in, or a neuron when there is no W_in.
    """

    step_ptr: np.ndarray  # (S, T + 1) int64, offsets into channel/value
    channel: np.ndarray  # (E,) int32
    value: np.ndarray  # (E,) float32, spike counts (or input currents without W_in)
    instance_stream: np.ndarray  # (B,) int32
    n_channels: int

    @property
    def n_steps(self) -> int:
        return self.step_ptr.shape[1] - 1

    @classmethod
    def from_dense(cls, x: np.ndarray, n_instances: int) -> InputEvents:
        """x: (T, C) shared by all instances, or (B, T, C), one stream per instance.

        Events are the entries that are non-zero in float32, in (stream, step, channel)
        order. Boolean and integer spike arrays are read as they are (no float32 copy).
        Streams are converted in blocks of about `_DENSE_BLOCK` entries, each through a
        boolean mask and one flat index, the blocks on parallel threads: the temporary memory
        stays bounded and a user's (K, T, Nin) array costs little next to the simulation.
        """
        x = np.asarray(x)
        if not (x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer)):
            x = x.astype(np.float32, copy=False)  # float64 values that round to 0 are no event
        streams = x[None] if x.ndim == 2 else x
        n_streams, n_steps, n_channels = streams.shape
        per_block = max(1, _DENSE_BLOCK // max(1, n_steps * n_channels))
        blocks = [streams[first : first + per_block] for first in range(0, n_streams, per_block)]

        def convert(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            flat = np.flatnonzero(block != 0)
            step_of_event = flat // n_channels  # block-local stream * T + step
            return (
                np.bincount(step_of_event, minlength=len(block) * n_steps),
                (flat - step_of_event * n_channels).astype(np.int32),
                block.reshape(-1)[flat].astype(np.float32),
            )

        if len(blocks) == 1:
            parts = [convert(blocks[0])]
        else:  # NumPy releases the GIL in the comparison and the index search
            with ThreadPoolExecutor(min(len(blocks), os.cpu_count() or 1)) as pool:
                parts = list(pool.map(convert, blocks))
        counts, channels, values = zip(*parts, strict=True)
        step_ptr = np.zeros((n_streams, n_steps + 1), dtype=np.int64)
        step_ptr[:, 1:] = np.cumsum(np.concatenate(counts)).reshape(n_streams, n_steps)
        # each stream's offsets are global, so rows chain: row s starts where s-1 ended
        step_ptr[1:, 0] = step_ptr[:-1, -1]
        instance_stream = (
            np.zeros(n_instances, np.int32)
            if x.ndim == 2
            else np.arange(n_instances, dtype=np.int32)
        )
        return cls(
            step_ptr=step_ptr,
            channel=np.concatenate(channels),
            value=np.concatenate(values),
            instance_stream=instance_stream,
            n_channels=n_channels,
        )

    @classmethod
    def concatenate(cls, parts: list[InputEvents]) -> InputEvents:
        """Inputs of consecutive groups of instances (e.g. sweep points) as one."""
        event_offsets = np.cumsum([0] + [part.channel.size for part in parts])[:-1]
        stream_offsets = np.cumsum([0] + [part.step_ptr.shape[0] for part in parts])[:-1]
        n_channels = {part.n_channels for part in parts}
        if len(n_channels) != 1:
            raise ValueError(f"inputs to concatenate have different channel counts {n_channels}")
        n_steps = {part.n_steps for part in parts}
        if len(n_steps) != 1:
            raise ValueError(f"inputs to concatenate have different step counts {n_steps}")
        return cls(
            step_ptr=np.concatenate(
                [part.step_ptr + offset for part, offset in zip(parts, event_offsets, strict=True)]
            ),
            channel=np.concatenate([part.channel for part in parts]),
            value=np.concatenate([part.value for part in parts]),
            instance_stream=np.concatenate(
                [part.instance_stream + offset
                 for part, offset in zip(parts, stream_offsets, strict=True)]
            ).astype(np.int32),  # fmt: skip
            n_channels=n_channels.pop(),
        )

    def dense(self, stream: int) -> np.ndarray:
        """(T, C) float32 array of one stream (for the reference backend and tests)."""
        out = np.zeros((self.n_steps, self.n_channels), dtype=np.float32)
        for t in range(self.n_steps):
            lo, hi = self.step_ptr[stream, t], self.step_ptr[stream, t + 1]
            np.add.at(out[t], self.channel[lo:hi], self.value[lo:hi])
        return out


@dataclass(frozen=True)
class Variant:
    """One nominal network of a batch: what a sweep point may change."""

    nominal: dict[str, np.ndarray]  # name -> (N,) float32, before mismatch
    Iscale: float
    mismatch: MismatchModel
    # (n_cluster, n_bits) base weights [A] each neuron deviates (synaptic mismatch), or None
    base_weights: np.ndarray | None = None


@dataclass(frozen=True)
class Batch:
    """Instances `instances` (of variants `instance_variant`), ready for a backend."""

    variants: tuple[Variant, ...]
    core_map: np.ndarray  # (N,) int32
    weights_in: np.ndarray | None  # (C, N) float32, or None: channels are neurons
    weights_rec: np.ndarray | None  # (N, N) float32 [pre, post]
    dt: float
    seed: int
    instances: np.ndarray  # (B,) uint64 global instance ids
    instance_variant: np.ndarray  # (B,) int32, index into `variants`
    inputs: InputEvents
    bin_width: int = 0  # steps per bin of `binned_counts`; 0: one bin = the whole run
    record_instances: tuple[int, ...] = ()  # positions in `instances` to record fully
    dtype: type = np.float32  # the reference backend also runs float64
    # the masks and signs of synaptic mismatch (a variant with base_weights), else None
    quantization: Quantization | None = None

    @property
    def n_neurons(self) -> int:
        return int(self.core_map.size)

    @property
    def n_instances(self) -> int:
        return int(self.instances.size)

    @property
    def n_steps(self) -> int:
        return self.inputs.n_steps

    @property
    def n_bins(self) -> int:
        width = self.bin_width or self.n_steps
        return -(-self.n_steps // width)

    def nominal_tensor(self) -> np.ndarray:
        """(P, 24, N) float32: each variant's parameters in PARAMETER_NAMES order (the kernel's)."""
        return np.stack(
            [
                np.stack([np.asarray(v.nominal[name], np.float32) for name in PARAMETER_NAMES])
                for v in self.variants
            ]
        )

    def sample_parameters(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every instance's parameters, name -> (B, N) float32, and non-physical counts (B,)."""
        sampled = {name: np.empty((self.n_instances, self.n_neurons), np.float32)
                   for name in PARAMETER_NAMES}  # fmt: skip
        nonphysical = np.zeros(self.n_instances, np.int64)
        for index, variant in enumerate(self.variants):
            rows = np.flatnonzero(self.instance_variant == index)
            if rows.size:
                drawn, bad = sample_parameters(variant.nominal, self.core_map, variant.mismatch,
                                               self.seed, self.instances[rows])  # fmt: skip
                for name in PARAMETER_NAMES:
                    sampled[name][rows] = drawn[name]
                nonphysical[rows] = bad
        return sampled, nonphysical

    def synaptic_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Synaptic mismatch: every instance's w_k,i = Iw_k,i / Iscale (B, n_bits, N) float32
        (float32 division of the drawn current), and non-physical counts (B,)."""
        assert self.quantization is not None
        n_bits = self.quantization.n_bits
        out = np.empty((self.n_instances, n_bits, self.n_neurons), np.float32)
        nonphysical = np.zeros(self.n_instances, np.int64)
        for index, variant in enumerate(self.variants):
            rows = np.flatnonzero(self.instance_variant == index)
            if rows.size:
                base = (self.quantization.base_weights if variant.base_weights is None
                        else variant.base_weights)  # fmt: skip
                drawn, bad = sample_base_weights(base, self.core_map, variant.mismatch,
                                                 self.seed, self.instances[rows])  # fmt: skip
                out[rows] = drawn / np.float32(variant.Iscale)
                nonphysical[rows] = bad
        return out, nonphysical

    def per_instance(self, values: list) -> np.ndarray:
        """A per-variant list of values -> (B, ...) array along the instances."""
        return np.asarray(values)[self.instance_variant]


@dataclass
class BatchResult:
    """Per-instance, per-neuron reductions over the run, plus optional full records.

    Intervals are counted between consecutive steps with at least one spike (in steps);
    `isi_sum` is last - first, `isi_sumsq` the sum of squared intervals. The reduction fields
    (all but the records) are listed once, here, in the kernel's output-argument order.
    """

    spike_count: np.ndarray  # (B, N) int64, total spikes (multi-spike steps count fully)
    first_spike_step: np.ndarray  # (B, N) int32, -1 if silent
    last_spike_step: np.ndarray  # (B, N) int32, -1 if silent
    spiking_steps: np.ndarray  # (B, N) int32, steps with >= 1 spike
    isi_sumsq: np.ndarray  # (B, N) float64
    binned_counts: np.ndarray  # (B, n_bins, N) int32
    nonfinite_step: np.ndarray  # (B,) int32, first step with a non-finite state, -1 if none
    nonphysical: np.ndarray  # (B,) int64, non-physical mismatch samples
    raster: dict[int, np.ndarray] = field(default_factory=dict)  # position -> (T, N) counts
    traces: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # -> name -> (T, N)

    @classmethod
    def concatenate(cls, parts: list[BatchResult], offsets: list[int]) -> BatchResult:
        """Join chunk results; `offsets[i]` is where chunk i starts in the joined batch."""
        arrays = {
            name: np.concatenate([getattr(part, name) for part in parts])
            for name in REDUCTION_FIELDS
        }
        placed = list(zip(parts, offsets, strict=True))
        raster = {o + k: v for part, o in placed for k, v in part.raster.items()}
        traces = {o + k: v for part, o in placed for k, v in part.traces.items()}
        return cls(**arrays, raster=raster, traces=traces)


REDUCTION_FIELDS = tuple(f.name for f in fields(BatchResult) if f.name not in ("raster", "traces"))
