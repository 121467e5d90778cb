"""One experiment run: validate everything, simulate the pending chunks, assemble the tables.

`prepare` builds every sweep point's network and stimulus first, so that a bad spec fails
before any simulation. `run` then simulates this shard's chunks that are not in the run
folder yet (one backend call per chunk; a chunk packs the instances of consecutive sweep
points that share neurons, weights and dt), writing each as it finishes, and finally
rebuilds instances.parquet, neurons.parquet, nominal.parquet and summary.csv from the
chunk files.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from .backends import BackendUnavailable, get_backend, resolve_backend
from .batch import BatchResult, InputEvents
from .config import check_schema
from .identity import experiment_identity
from .metrics import neuron_metrics
from .mismatch import MismatchModel
from .network import DynapSimNetwork, packable, packed_batch
from .networks import build_network, resolve_network
from .robustness import instance_metrics
from .stimulus import Stimulus
from .sweep import Chunk, SweepPoint, axis_column, expand_sweep, plan_chunks, shard_chunks
from .tables import ChunkStore, write_tables

__all__ = ["ExperimentError", "Point", "Plan", "Outcome", "prepare", "plan_identity", "run"]

log = logging.getLogger(__name__)


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
    chunks: list[Chunk]  # this shard's chunks
    n_samples: int
    raster_instance: int | None
    group_of: list[int]  # per point: consecutive points of a group share backend calls

    def point_of(self, instance: int) -> Point:
        return self.points[instance // self.n_samples]

    def points_of(self, chunk: Chunk) -> range:
        """Indices of the sweep points a chunk holds instances of."""
        return range(chunk.first // self.n_samples, chunk.last // self.n_samples + 1)

    def neurons_per_instance(self, chunk: Chunk) -> int | None:
        """Rows per instance in the chunk's neurons file (None: output.neurons is off)."""
        if not self.config["output"]["neurons"]:
            return None
        return self.point_of(chunk.first).network.spec.n_neurons


@dataclass
class Outcome:
    instances: pd.DataFrame
    nominal: pd.DataFrame  # per-neuron table of each point's nominal instance
    summary: pd.DataFrame
    backend: str
    simulated: int  # instances simulated by this invocation (not resumed)
    seconds: float  # wall time of those simulations
    neuron_steps: int


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
    return Plan(config, points, columns, chunks, n_samples, raster, group_of)


def _pack_groups(points: list[Point]) -> list[int]:
    """Group id per point: consecutive points that one backend call can run together."""
    groups = [0]
    for previous, point in zip(points, points[1:], strict=False):
        same = packable(previous.network, point.network) and (
            previous.stimulus.n_steps == point.stimulus.n_steps
        )
        groups.append(groups[-1] + (0 if same else 1))
    return groups


def _simulate_points(
    plan: Plan,
    networks: list[DynapSimNetwork],
    point_ids: np.ndarray,
    inputs: InputEvents,
    instances: np.ndarray,
    record: list[int],
    backend: str,
) -> BatchResult:
    """One backend call for instances of several points (`point_ids` index `networks`)."""
    batch = packed_batch(
        networks, point_ids, inputs, instances, plan.config["seed"],
        plan.config["metrics"]["bin_steps"], record,
    )  # fmt: skip
    return get_backend(backend)(batch)


def _simulate_nominals(plan: Plan, points: list[Point], store: ChunkStore, backend: str) -> None:
    """The points' networks without mismatch (no draws at all) on trial 0's input, packed
    into one backend call per group of packable points; stored per point."""
    for _, group in itertools.groupby(points, key=lambda p: plan.group_of[p.sweep.index]):
        group = list(group)
        networks = [
            DynapSimNetwork(replace(p.network.spec, mismatch=MismatchModel())) for p in group
        ]
        inputs = InputEvents.concatenate(
            [InputEvents.from_dense(p.stimulus.trial(0), 1) for p in group]
        )
        positions = np.arange(len(group))
        result = _simulate_points(plan, networks, positions, inputs, positions,
                                  list(positions), backend)  # fmt: skip
        spec = group[0].network.spec
        metrics = neuron_metrics(result, group[0].stimulus.n_steps, spec.dt)
        for position, point in enumerate(group):
            store.write_raster(f"nominal-p{point.sweep.index:05d}", result.raster[position])
            frame = pd.DataFrame(
                {
                    "point": point.sweep.index,
                    "neuron": np.arange(spec.n_neurons),
                    "core": spec.core_map,
                    "spike_count": result.spike_count[position],
                    **{name: values[position] for name, values in metrics.items()},
                    "nonfinite": bool(result.nonfinite_step[position] >= 0),
                }
            )
            store.write_nominal(point.sweep.index, frame)


def _simulate_chunk(
    plan: Plan,
    chunk: Chunk,
    nominal_rates: dict[int, np.ndarray],
    store: ChunkStore,
    backend: str,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One backend call for the chunk's instances -> instance rows (+ neuron rows).

    nominal_rates: point index -> that point's nominal per-neuron rates (N,).
    """
    config = plan.config
    ids = np.arange(chunk.first, chunk.last + 1)
    point_of, samples = np.divmod(ids, plan.n_samples)
    chunk_points = np.unique(point_of)
    points = [plan.points[p] for p in chunk_points]
    local = np.searchsorted(chunk_points, point_of)
    inputs = InputEvents.concatenate(
        [
            InputEvents.from_dense(point.stimulus.for_samples(samples[point_of == p]),
                                   int((point_of == p).sum()))
            for p, point in zip(chunk_points, points, strict=True)
        ]
    )  # fmt: skip
    record = (
        [int(plan.raster_instance - chunk.first)]
        if chunk.first <= plan.raster_instance <= chunk.last
        else []
    )
    result = _simulate_points(plan, [p.network for p in points], local, inputs, ids, record,
                              backend)  # fmt: skip
    for position in record:
        store.write_raster(f"i{chunk.first + position:09d}", result.raster[position])
    spec = points[0].network.spec
    n_steps = points[0].stimulus.n_steps
    neuron = neuron_metrics(result, n_steps, spec.dt)
    metrics = config["metrics"]
    per_instance = instance_metrics(
        result, neuron, np.stack([nominal_rates[p] for p in point_of]), spec.dt,
        metrics["bin_steps"],
        n_steps, metrics["within"], metrics["saturated_rate_hz"],
    )  # fmt: skip
    frozen = np.array([plan.points[p].stimulus.frozen for p in point_of])
    head = {
        "instance": ids,
        "point": point_of,
        "sample": samples,
        **{
            column: [_cell(plan.points[p].sweep.values[column]) for p in point_of]
            for column in plan.sweep_columns
        },
        "seed": config["seed"],
        "trial": np.where(frozen, 0, samples),
    }
    instances = pd.DataFrame({**head, **per_instance})
    if not config["output"]["neurons"]:
        return instances, None
    n_neurons = spec.n_neurons
    neurons = pd.DataFrame(
        {
            "instance": np.repeat(ids, n_neurons),
            "point": np.repeat(point_of, n_neurons),
            "sample": np.repeat(samples, n_neurons),
            "neuron": np.tile(np.arange(n_neurons, dtype=np.int32), chunk.size),
            "core": np.tile(spec.core_map, chunk.size),
            "spike_count": result.spike_count.reshape(-1).astype(np.int32),
            **{name: values.reshape(-1).astype(np.float32) for name, values in neuron.items()},
            "nonfinite": np.repeat(result.nonfinite_step >= 0, n_neurons),
        }
    )
    return instances, neurons


def _cell(value: Any) -> Any:
    """Sweep values as table cells: numbers stay numbers, lists become text."""
    return value if isinstance(value, int | float | str | bool) else str(value)


def plan_identity(plan: Plan) -> dict[str, Any]:
    """What must match for chunk files to be reused (see runner.identity)."""
    return experiment_identity(plan.config, [point.sweep for point in plan.points])


def run(
    plan: Plan,
    run_dir: Path,
    progress: bool = True,
    on_claim: Callable[[], None] | None = None,
) -> Outcome:
    """Lock and claim the run folder (RunFolderError if it cannot take this run; then
    `on_claim`), simulate the pending chunks of this shard, write the tables."""
    store = ChunkStore.open(run_dir, plan_identity(plan), plan.config)
    try:
        if on_claim is not None:
            on_claim()
        return _run_claimed(plan, store, progress)
    finally:
        store.release()


def _run_claimed(plan: Plan, store: ChunkStore, progress: bool) -> Outcome:
    config = plan.config
    backend = resolve_backend(config["backend"]["name"])
    pending = [c for c in plan.chunks if not store.finished(c, plan.neurons_per_instance(c))]
    total = sum(chunk.size for chunk in plan.chunks)
    log.info("backend %s: %d of %d chunks to simulate (%d instances), %d done before",
             backend, len(pending), len(plan.chunks), sum(c.size for c in pending),
             len(plan.chunks) - len(pending))  # fmt: skip
    touched = sorted({index for chunk in plan.chunks for index in plan.points_of(chunk)})
    missing = [
        plan.points[index] for index in touched
        if not store.has_nominal(index, plan.points[index].network.spec.n_neurons)
    ]  # fmt: skip
    if missing:
        _simulate_nominals(plan, missing, store, backend)
    nominal_table = pd.concat([store.read_nominal(index) for index in touched], ignore_index=True)
    nominal_rates = {  # a non-finite nominal instance has no rates to compare with
        index: np.where(frame["nonfinite"].to_numpy(), np.nan, frame["rate_hz"].to_numpy())
        for index, frame in nominal_table.groupby("point")
    }

    simulated, seconds, neuron_steps = 0, 0.0, 0
    bar = tqdm(total=total, initial=total - sum(c.size for c in pending), unit="inst",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    with bar:
        for number, chunk in enumerate(pending, start=1):
            point = plan.point_of(chunk.first)
            held = plan.points_of(chunk)
            bar.set_postfix_str(f"chunk {number}/{len(pending)} points {held[0]}-{held[-1]}")
            start = time.perf_counter()
            instances, neurons = _simulate_chunk(plan, chunk, nominal_rates, store, backend)
            seconds += time.perf_counter() - start
            store.write(chunk, instances, neurons)
            simulated += chunk.size
            neuron_steps += chunk.size * point.network.spec.n_neurons * point.stimulus.n_steps
            bar.update(chunk.size)

    instances = store.read(plan.chunks, "instances")
    neurons = store.read(plan.chunks, "neurons") if config["output"]["neurons"] else None
    summary = write_tables(store.run_dir, instances, nominal_table, neurons, plan.sweep_columns)
    return Outcome(instances, nominal_table, summary, backend, simulated, seconds, neuron_steps)
