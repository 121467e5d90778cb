"""An experiment's plan: every sweep point built and checked, and this shard's chunks.

`prepare` builds every sweep point's network and stimulus first, so that a bad spec fails
before any simulation. Chunks are arithmetic (`sweep.Chunks`): planning costs the same for
32 or 10^12 chips, and only the chunks this shard runs are ever made into objects. A row
(instance id) is one (point, chip, trial), see runner.sweep; `mismatch_keys` says which
chip's draws a row gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import BackendUnavailable, resolve_backend
from .batch import packable
from .config import check_schema
from .netconfig import build_network, resolve_network
from .network import DynapSimNetwork
from .objective import check_objective, objective_of
from .readout import ReadoutConfig
from .scoring import PointTask, point_task
from .statistics import AccuracySettings
from .stimulus import Stimulus
from .sweep import Chunk, SweepPoint, axis_column, expand_sweep, plan_chunks, shard_chunks

__all__ = ["ExperimentError", "Point", "Plan", "prepare"]


class ExperimentError(ValueError):
    """A config that cannot run, found before any simulation: the message says why."""


@dataclass
class Point:
    """A sweep point ready to simulate."""

    sweep: SweepPoint
    network: DynapSimNetwork
    stimulus: Stimulus
    task: PointTask | None = None  # with a readout: the labels, split and readout


@dataclass
class Plan:
    config: dict[str, Any]
    points: list[Point]
    sweep_columns: list[str]
    chunks: Sequence[Chunk]  # this shard's chunks (may be none)
    n_chips: int  # chips per point (sweep.n_samples)
    n_trials: int  # rows per chip: the length of every point's stimulus.chip_trials
    raster_instance: int | None  # a row id
    group_of: list[int]  # per point: consecutive points of a group share backend calls
    sweep_chunks: Sequence[Chunk]  # every chunk of the sweep, computed on demand

    @property
    def rows_per_point(self) -> int:
        return self.n_chips * self.n_trials

    @property
    def baseline(self) -> int:
        """The sweep point paired changes are measured against."""
        return self.config["sweep"]["baseline"]

    @property
    def paired(self) -> bool:
        return self.config["sweep"]["pairing"] == "paired"

    def point_of(self, row: int) -> Point:
        return self.points[row // self.rows_per_point]

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, chip, position in the point's chip_trials) of each row id."""
        chips, positions = np.divmod(rows, self.n_trials)
        points, chips = np.divmod(chips, self.n_chips)
        return points, chips, positions

    def mismatch_keys(self, points: np.ndarray, chips: np.ndarray) -> np.ndarray:
        """The id each row's draws are keyed by: the chip (paired: chip c is the same chip
        at every point), or point * n_chips + chip (independent: unrelated chips)."""
        return chips if self.paired else points * self.n_chips + chips

    def points_of(self, chunk: Chunk) -> range:
        """Indices of the sweep points a chunk holds rows of."""
        return range(chunk.first // self.rows_per_point, chunk.last // self.rows_per_point + 1)

    def touched_points(self) -> range:
        """Indices of the sweep points this shard's chunks hold rows of (a block)."""
        if not self.chunks:
            return range(0)
        return range(self.chunks[0].first // self.rows_per_point,
                      self.chunks[-1].last // self.rows_per_point + 1)  # fmt: skip

    def nominal_rows(self, point: int) -> int:
        """Rows of a point's nominal table: its nominal trials x its neurons."""
        stimulus, spec = self.points[point].stimulus, self.points[point].network.spec
        return len(stimulus.nominal_trials) * spec.n_neurons

    def neurons_per_instance(self, chunk: Chunk) -> int | None:
        """Rows per instance in the chunk's neurons file (None: output.neurons is off)."""
        if not self.config["output"]["neurons"]:
            return None
        return self.point_of(chunk.first).network.spec.n_neurons

    def fits_readout(self, point: int) -> bool:
        """Is the point's readout fitted on its nominal instance (ridge)?"""
        task = self.points[point].task
        return task is not None and task.configured is None

    def bin_width(self, point: int) -> int:
        """Steps per kernel bin of a point's backend calls (see scoring.kernel_bin_width)."""
        task = self.points[point].task
        return self.config["metrics"]["bin_steps"] if task is None else task.bin_width

    @property
    def accuracy(self) -> AccuracySettings | None:
        """What the summary needs to describe accuracies (None: no readout)."""
        if self.config.get("readout") is None:
            return None
        chance = {p.sweep.index: p.task.chance for p in self.points if p.task is not None}
        return AccuracySettings(self.config["readout"]["target"], chance)

    @property
    def shard_label(self) -> str:
        shard = self.config["shard"]
        return f"shard {shard['index']}/{shard['count']}"


def prepare(config: dict[str, Any]) -> Plan:
    """Resolve and validate the whole experiment; raise ExperimentError on any problem."""
    sweep = config["sweep"]
    n_chips = sweep["n_samples"]
    errors = (ValueError, TypeError, FileNotFoundError, BackendUnavailable)
    try:
        check_schema(config)
        resolve_backend(config["backend"]["name"])
        if n_chips < 1:
            raise ValueError(f"sweep.n_samples (chips per point) must be >= 1, got {n_chips}")
        if config["metrics"]["bin_steps"] < 1:
            raise ValueError(
                f"metrics.bin_steps must be >= 1, got {config['metrics']['bin_steps']}"
            )
        sweep_points = expand_sweep(
            resolve_network(config["network"]), config["stimulus"], sweep["axes"]
        )
        readout = None if config.get("readout") is None else ReadoutConfig(**config["readout"])
        if config["chunk_size"] < 1:
            raise ValueError(f"chunk_size must be >= 1, got {config['chunk_size']}")
    except errors as error:
        raise ExperimentError(str(error)) from error
    points = []
    for sweep_point in sweep_points:
        try:
            net = build_network(resolve_network(sweep_point.network), config["seed"])
            stimulus = Stimulus(sweep_point.stimulus, net.spec.n_inputs, net.spec.dt, readout)
            task = None if readout is None else point_task(
                readout, stimulus, net.spec.n_neurons, config["metrics"]["bin_steps"]
            )  # fmt: skip
        except errors as error:
            where = (
                f"sweep point {sweep_point.index} {sweep_point.values}: "
                if len(sweep_points) > 1
                else ""
            )
            raise ExperimentError(f"{where}{error}") from error
        points.append(Point(sweep_point, net, stimulus, task))
    n_trials = _trials_per_chip(points)
    if not 0 <= sweep["baseline"] < len(points):
        raise ExperimentError(
            f"sweep.baseline must be a sweep point index in [0, {len(points)}), "
            f"got {sweep['baseline']}"
        )
    objective = objective_of(config)
    if objective is not None:
        try:
            check_objective(objective, len(points), config["shard"]["count"],
                            config.get("readout"))  # fmt: skip
        except ValueError as error:
            raise ExperimentError(str(error)) from error
    group_of = _pack_groups(points)
    all_chunks = plan_chunks(group_of, n_chips, config["chunk_size"], n_trials)
    try:
        chunks = shard_chunks(all_chunks, config["shard"]["index"], config["shard"]["count"])
    except ValueError as error:
        raise ExperimentError(str(error)) from error
    n_rows = len(points) * n_chips * n_trials
    raster = config["output"]["raster_instance"]
    if raster is None:
        raster = n_rows - n_chips * n_trials
    elif not 0 <= raster < n_rows:
        raise ExperimentError(
            f"output.raster_instance must be a row id (instance) in [0, {n_rows}), got {raster}"
        )
    columns = [axis_column(a) for a in sweep["axes"]]
    return Plan(config, points, columns, chunks, n_chips, n_trials, raster, group_of, all_chunks)


def _trials_per_chip(points: list[Point]) -> int:
    """Trials every chip runs: the same number at every point, so row ids stay arithmetic."""
    counts = sorted({len(point.stimulus.chip_trials) for point in points})
    if len(counts) > 1:
        raise ExperimentError(
            f"stimulus.trials must be the same at every sweep point (with a dataset: the number "
            f"of samples every chip runs), got {counts}"
        )
    return counts[0]


def _pack_groups(points: list[Point]) -> list[int]:
    """Group id per point: consecutive points that one backend call can run together."""
    groups = [0]
    for previous, point in zip(points, points[1:], strict=False):
        same = packable(previous.network, point.network) and (
            previous.stimulus.n_steps == point.stimulus.n_steps
        )
        groups.append(groups[-1] + (0 if same else 1))
    return groups
