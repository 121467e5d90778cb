"""Host memory of one chunk, estimated before simulating, against what the machine has.

A chunk's instances are simulated and tabulated in one piece, so a chunk that does not fit
would die in a MemoryError (or swap) after the run started; `check_chunks_fit` refuses it
up front with the estimate and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from runner.kernel.kernel_calls import layout_bytes, output_layout
from runner.study.plan import ExperimentError, Plan
from runner.study.sweep import Chunk, Chunks

__all__ = [
    "ChunkFootprint",
    "available_memory",
    "format_bytes",
    "chunk_footprint",
    "check_chunks_fit",
]

# The per-neuron metrics (4 float64) and their temporaries, and the robustness metrics'
# (B, N) float64 work arrays (nominal rates per instance, errors, centred rates).
_METRIC_BYTES = 4 * 8 + 5 * 8 + 5 * 8
# A readout feature (float64), its per-point copy and the per-chip refit's standardised copy.
_FEATURE_BYTES = 3 * 8
# A neurons-table row (instance, point, chip, trial int64; neuron, core, spike_count int32;
# 4 float32 metrics; the nonfinite flag), counted twice: the DataFrame and its Arrow copy
# while written.
_NEURON_ROW_BYTES = 2 * (4 * 8 + 3 * 4 + 4 * 4 + 1)


@dataclass(frozen=True)
class ChunkFootprint:
    """What one chunk holds in host memory at once."""

    n_instances: int
    n_neurons: int
    n_steps: int
    n_bins: int
    n_inputs: int
    n_streams: int  # input streams: one per (point, trial) the chunk uses, not per row
    neurons_table: bool  # output.neurons
    readout_bins: int = 0  # features per neuron of a readout (0: no readout)

    @property
    def _input_bytes(self) -> int:
        """Dense float32 trials, stacked from their list (twice)."""
        return 2 * self.n_streams * self.n_steps * self.n_inputs * 4

    def parts(self) -> dict[str, int]:
        """Bytes by what holds them."""
        cells = self.n_instances * self.n_neurons
        parts = {
            # counted twice: the backend's parts and their concatenation coexist a moment
            "kernel outputs": 2 * layout_bytes(
                output_layout(self.n_instances, self.n_neurons, self.n_bins, self.n_steps, 0)
            ),
            "metrics": cells * _METRIC_BYTES,
            "inputs": self._input_bytes,
        }
        if self.readout_bins:
            parts["readout features"] = cells * self.readout_bins * _FEATURE_BYTES
        if self.neurons_table:
            parts["neurons table"] = cells * _NEURON_ROW_BYTES
        return parts

    @property
    def total(self) -> int:
        return sum(self.parts().values())

    def largest_fitting(self, available: int) -> int:
        """The most rows per chunk that fit in `available` bytes (0 if none), with the
        same input streams (they do not grow with the rows)."""
        fixed = self._input_bytes
        per_row = replace(self, n_instances=1).total - fixed
        return max(0, (available - fixed) // max(per_row, 1))


def available_memory() -> int:
    """Bytes the machine can still give (MemAvailable, else free pages), or -1 if unknown."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return -1


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"


def chunk_footprint(plan: Plan, chunk: Chunk) -> ChunkFootprint:
    """The footprint of one chunk of `plan` (its points share neurons, steps and inputs)."""
    point = plan.point_of(chunk.first)
    spec, stimulus = point.network.spec, point.stimulus
    return ChunkFootprint(
        n_instances=chunk.size,
        n_neurons=spec.n_neurons,
        n_steps=stimulus.n_steps,
        n_bins=-(-stimulus.n_steps // plan.bin_width(point.sweep.index)),
        n_inputs=spec.n_inputs,
        n_streams=sum(len(plan.points[p].stimulus.chip_trials) for p in plan.points_of(chunk)),
        neurons_table=plan.config.output.neurons,
        readout_bins=0 if point.task is None else point.task.config.bins,
    )


def check_chunks_fit(plan: Plan, available: int) -> None:
    """Raise ExperimentError when this shard's largest chunk needs more than `available`
    bytes of host memory (-1: unknown, no check), naming the estimate and the fix."""
    if available < 0:
        return
    chunks = plan.chunks
    for chunk in chunks.largest_per_group() if isinstance(chunks, Chunks) else chunks:
        footprint = chunk_footprint(plan, chunk)
        if footprint.total <= available:
            continue
        parts = ", ".join(f"{name} {format_bytes(n)}" for name, n in footprint.parts().items())
        fits = footprint.largest_fitting(available)
        fixes = [f"a smaller chunk_size (at most about {fits} fit)" if fits else
                 "a smaller network or shorter stimulus"]  # fmt: skip
        if footprint.neurons_table:
            lean = replace(footprint, neurons_table=False)
            fixes.append(f"output.neurons=false (then {format_bytes(lean.total)} per chunk)")
        raise ExperimentError(
            f"a chunk of {chunk.size} instances x {footprint.n_neurons} neurons "
            f"(instances {chunk.first}-{chunk.last}) needs about {format_bytes(footprint.total)} "
            f"of host memory ({parts}), but {format_bytes(available)} is available; "
            f"use {' or '.join(fixes)}"
        )
