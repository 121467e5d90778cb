"""Host memory of one chunk, estimated before simulating, against what the machine has.

A chunk's instances are simulated and tabulated in one piece, and so are the nominal
instances of a group of packed points (one row per nominal trial: every sample of a
dataset), so either could die in a MemoryError (or swap) after the run started;
`check_chunks_fit` refuses them up front with the estimate and a fix that can work (a
chunk holds whole chips: a chunk_size below one chip's rows cannot shrink it).

The final tables are then written from the chunk files a row group at a time, never
concatenated (`run_folder.write_tables`); what that assembly holds grows only with the
instance rows (one per (point, chip, trial), read back for chips.parquet and summary.csv)
and the per-core table, besides the largest chunk file being read: `assembly_footprint`,
checked by `check_assembly_fits` before a run simulates and before collect merges.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path

from runner.kernel.kernel_calls import layout_bytes, output_layout
from runner.study.plan import ExperimentError, Plan, Point
from runner.study.sweep import Chunk, Chunks

__all__ = [
    "ChunkFootprint",
    "available_memory",
    "format_bytes",
    "chunk_footprint",
    "nominal_footprints",
    "check_nominals_fit",
    "check_chunks_fit",
    "assembly_footprint",
    "check_assembly_fits",
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
# An instance row while the chips and summary are computed: up to 32 8-byte columns (ids,
# sweep values, metrics, a readout's accuracies), counted three times (the Arrow table read
# back, its DataFrame, the chip table's and summary's groupings).
_INSTANCE_ROW_BYTES = 3 * 32 * 8
# A core row (ids, 4 metrics, the nonfinite flag), counted twice (Arrow and DataFrame).
_CORE_ROW_BYTES = 2 * 10 * 8


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


def nominal_footprints(plan: Plan, points: list[Point]) -> dict[range, ChunkFootprint]:
    """Per group of packed `points` (as `simulate_nominals` groups them): the backend call
    of their nominal instances, one row per nominal trial of each point (a (trial, neuron)
    table each)."""
    footprints = {}
    for _, group in itertools.groupby(points, key=lambda p: plan.group_of[p.sweep.index]):
        group = list(group)
        point = group[0]
        rows = sum(len(p.stimulus.nominal_trials) for p in group)
        footprints[range(group[0].sweep.index, group[-1].sweep.index + 1)] = ChunkFootprint(
            n_instances=rows,
            n_neurons=point.network.spec.n_neurons,
            n_steps=point.stimulus.n_steps,
            n_bins=-(-point.stimulus.n_steps // plan.bin_width(point.sweep.index)),
            n_inputs=point.network.spec.n_inputs,
            n_streams=rows,
            neurons_table=True,  # nominal.parquet: a row per trial and neuron
            readout_bins=0 if point.task is None else point.task.config.bins,
        )
    return footprints


def _parts(footprint: ChunkFootprint) -> str:
    return ", ".join(f"{name} {format_bytes(n)}" for name, n in footprint.parts().items())


def check_nominals_fit(plan: Plan, points: list[Point], available: int) -> None:
    """Raise ExperimentError when the nominal instances of these points (to be simulated,
    one call per group of packed points) need more than `available` bytes (-1: unknown)."""
    if available < 0:
        return
    for group, footprint in nominal_footprints(plan, points).items():
        if footprint.total > available:
            raise ExperimentError(
                f"the nominal instances of sweep points {group[0]}-{group[-1]} run "
                f"{footprint.n_instances} trials (samples) x {footprint.n_neurons} neurons in "
                f"one call and need about {format_bytes(footprint.total)} of host memory "
                f"({_parts(footprint)}), but {format_bytes(available)} is available; use "
                f"fewer samples (trials), a shorter stimulus or a smaller network"
            )


def check_chunks_fit(plan: Plan, available: int) -> None:
    """Raise ExperimentError when this shard's largest chunk needs more than `available`
    bytes of host memory (-1: unknown, no check), naming the estimate and a fix that can
    work."""
    if available < 0:
        return
    chip_rows = plan.n_trials  # a chunk holds whole chips
    chunks = plan.chunks
    for chunk in chunks.largest_per_group() if isinstance(chunks, Chunks) else chunks:
        footprint = chunk_footprint(plan, chunk)
        if footprint.total <= available:
            continue
        fits = footprint.largest_fitting(available)
        if fits >= chip_rows:
            fixes = [f"a smaller chunk_size (at most about {fits} fit)"]
        else:  # a chunk holds whole chips: no chunk_size makes one smaller than a chip
            one_chip = replace(footprint, n_instances=chip_rows)
            fixes = ["a smaller network or shorter stimulus" + (
                f" (one chip's {chip_rows} rows alone need {format_bytes(one_chip.total)}: "
                f"a chunk holds whole chips)" if chip_rows > 1 else ""
            )]  # fmt: skip
        if footprint.neurons_table:
            lean = replace(footprint, neurons_table=False)
            fixes.append(f"output.neurons=false (then {format_bytes(lean.total)} per chunk)")
        raise ExperimentError(
            f"a chunk of {chunk.size} instances x {footprint.n_neurons} neurons "
            f"(instances {chunk.first}-{chunk.last}) needs about {format_bytes(footprint.total)} "
            f"of host memory ({_parts(footprint)}), but {format_bytes(available)} is available; "
            f"use {' or '.join(fixes)}"
        )


def assembly_footprint(plan: Plan) -> dict[str, int]:
    """Bytes, by what holds them, of writing the final tables from the chunk files of
    `plan.chunks`: every instance row, the per-core table (at most a row per instance and
    core) and the largest chunk's files, read one at a time."""
    chunks = plan.chunks
    rows = chunks[-1].last - chunks[0].first + 1  # a contiguous block of chunks
    candidates = chunks.largest_per_group() if isinstance(chunks, Chunks) else chunks
    largest = max(candidates, key=lambda chunk: chunk.size * plan.point_of(chunk.first)
                  .network.spec.n_neurons)  # fmt: skip
    cores = plan.cores_per_instance(largest)
    parts = {
        "instance rows": rows * _INSTANCE_ROW_BYTES,
        "per-core table": rows * cores * _CORE_ROW_BYTES,
        "a chunk's core rows": largest.size * cores * _CORE_ROW_BYTES,
    }
    if plan.config.output.neurons:
        n_neurons = plan.point_of(largest.first).network.spec.n_neurons
        parts["a chunk's neuron rows"] = largest.size * n_neurons * _NEURON_ROW_BYTES
    return parts


def check_assembly_fits(plan: Plan, available: int) -> None:
    """Raise ExperimentError when writing the final tables from this plan's chunks
    (`assembly_footprint`) needs more than `available` bytes (-1: unknown, no check)."""
    if available < 0 or not plan.chunks:
        return
    parts = assembly_footprint(plan)
    total = sum(parts.values())
    if total > available:
        listed = ", ".join(f"{name} {format_bytes(n)}" for name, n in parts.items())
        raise ExperimentError(
            f"writing the final tables of {plan.chunks[-1].last - plan.chunks[0].first + 1} "
            f"instances needs "
            f"about {format_bytes(total)} of host memory ({listed}), but "
            f"{format_bytes(available)} is available; split the sweep into several "
            f"experiments (fewer points or chips each) or use a machine with more memory"
        )
