"""An experiment's plan: every sweep point built and checked, and this shard's chunks.

`prepare` builds every sweep point's network and stimulus first, so that a bad spec fails
before any simulation. Chunks are arithmetic (`sweep.Chunks`): planning costs the same for
32 or 10^12 samples, and only the chunks this shard runs are ever made into objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .backends import BackendUnavailable, resolve_backend
from .batch import packable
from .config import check_schema
from .netconfig import build_network, resolve_network
from .network import DynapSimNetwork
from .objective import check_objective, objective_of
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


@dataclass
class Plan:
    config: dict[str, Any]
    points: list[Point]
    sweep_columns: list[str]
    chunks: Sequence[Chunk]  # this shard's chunks (may be none)
    n_samples: int
    raster_instance: int | None
    group_of: list[int]  # per point: consecutive points of a group share backend calls
    sweep_chunks: Sequence[Chunk]  # every chunk of the sweep, computed on demand

    def point_of(self, instance: int) -> Point:
        return self.points[instance // self.n_samples]

    def points_of(self, chunk: Chunk) -> range:
        """Indices of the sweep points a chunk holds instances of."""
        return range(chunk.first // self.n_samples, chunk.last // self.n_samples + 1)

    def touched_points(self) -> range:
        """Indices of the sweep points this shard's chunks hold instances of (a block)."""
        if not self.chunks:
            return range(0)
        return range(self.chunks[0].first // self.n_samples,
                      self.chunks[-1].last // self.n_samples + 1)  # fmt: skip

    def neurons_per_instance(self, chunk: Chunk) -> int | None:
        """Rows per instance in the chunk's neurons file (None: output.neurons is off)."""
        if not self.config["output"]["neurons"]:
            return None
        return self.point_of(chunk.first).network.spec.n_neurons

    @property
    def shard_label(self) -> str:
        shard = self.config["shard"]
        return f"shard {shard['index']}/{shard['count']}"


def prepare(config: dict[str, Any]) -> Plan:
    """Resolve and validate the whole experiment; raise ExperimentError on any problem."""
    sweep = config["sweep"]
    n_samples = sweep["n_samples"]
    errors = (ValueError, TypeError, FileNotFoundError, BackendUnavailable)
    try:
        check_schema(config)
        resolve_backend(config["backend"]["name"])
        if n_samples < 1:
            raise ValueError(f"sweep.n_samples must be >= 1, got {n_samples}")
        if config["metrics"]["bin_steps"] < 1:
            raise ValueError(
                f"metrics.bin_steps must be >= 1, got {config['metrics']['bin_steps']}"
            )
        sweep_points = expand_sweep(
            resolve_network(config["network"]), config["stimulus"], sweep["axes"]
        )
        if config["chunk_size"] < 1:
            raise ValueError(f"chunk_size must be >= 1, got {config['chunk_size']}")
    except errors as error:
        raise ExperimentError(str(error)) from error
    points = []
    for sweep_point in sweep_points:
        try:
            net = build_network(resolve_network(sweep_point.network), config["seed"])
            stimulus = Stimulus(sweep_point.stimulus, net.spec.n_inputs, net.spec.dt, n_samples)
        except errors as error:
            where = (
                f"sweep point {sweep_point.index} {sweep_point.values}: "
                if len(sweep_points) > 1
                else ""
            )
            raise ExperimentError(f"{where}{error}") from error
        points.append(Point(sweep_point, net, stimulus))
    objective = objective_of(config)
    if objective is not None:
        try:
            check_objective(objective, len(points), config["shard"]["count"])
        except ValueError as error:
            raise ExperimentError(str(error)) from error
    group_of = _pack_groups(points)
    all_chunks = plan_chunks(group_of, n_samples, config["chunk_size"])
    try:
        chunks = shard_chunks(all_chunks, config["shard"]["index"], config["shard"]["count"])
    except ValueError as error:
        raise ExperimentError(str(error)) from error
    raster = config["output"]["raster_instance"]
    if raster is None:
        raster = (len(points) - 1) * n_samples
    elif not 0 <= raster < len(points) * n_samples:
        raise ExperimentError(
            f"output.raster_instance must be an instance id in [0, {len(points) * n_samples}), "
            f"got {raster}"
        )
    columns = [axis_column(a) for a in sweep["axes"]]
    return Plan(config, points, columns, chunks, n_samples, raster, group_of, all_chunks)


def _pack_groups(points: list[Point]) -> list[int]:
    """Group id per point: consecutive points that one backend call can run together."""
    groups = [0]
    for previous, point in zip(points, points[1:], strict=False):
        same = packable(previous.network, point.network) and (
            previous.stimulus.n_steps == point.stimulus.n_steps
        )
        groups.append(groups[-1] + (0 if same else 1))
    return groups
