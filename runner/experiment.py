"""One experiment run: validate everything, simulate the pending chunks, assemble the tables.

`prepare` builds every sweep point's network and stimulus first, so that a bad spec fails
before any simulation. `run` then simulates this shard's chunks that are not in the run
folder yet (one backend call per chunk), writing each as it finishes, and finally rebuilds
instances.parquet, neurons.parquet, nominal.parquet and summary.csv from the chunk files.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from .backends import resolve_backend
from .config import check_schema
from .metrics import neuron_metrics
from .network import DynapSimNetwork
from .networks import build_network, resolve_network
from .robustness import instance_metrics
from .stimulus import Stimulus
from .sweep import Chunk, SweepPoint, axis_column, expand_sweep, plan_chunks, shard_chunks
from .tables import ChunkStore, summarize, write_atomic

__all__ = ["ExperimentError", "Point", "Plan", "Outcome", "prepare", "run"]

log = logging.getLogger(__name__)

# Config sections that decide the numbers in chunk files (backend, shard, output do not).
_EXPERIMENT_KEYS = ("network", "stimulus", "sweep", "seed", "chunk_size", "metrics")


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

    def point_of(self, instance: int) -> Point:
        return self.points[instance // self.n_samples]


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
    errors = (ValueError, TypeError, FileNotFoundError)
    try:
        check_schema(config)
        if n_samples < 1:
            raise ValueError(f"sweep.n_samples must be >= 1, got {n_samples}")
        if config["metrics"]["bin_steps"] < 1:
            raise ValueError(
                f"metrics.bin_steps must be >= 1, got {config['metrics']['bin_steps']}"
            )
        sweep_points = expand_sweep(
            resolve_network(config["network"]), config["stimulus"], sweep["axes"]
        )
        all_chunks = plan_chunks(len(sweep_points), n_samples, config["chunk_size"])
        chunks = shard_chunks(all_chunks, config["shard"]["index"], config["shard"]["count"])
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
    raster = config["output"]["raster_instance"]
    if raster is None:
        raster = (len(points) - 1) * n_samples
    elif not 0 <= raster < len(points) * n_samples:
        raise ExperimentError(
            f"output.raster_instance must be an instance id in [0, {len(points) * n_samples}), "
            f"got {raster}"
        )
    return Plan(config, points, [axis_column(a) for a in sweep["axes"]], chunks, n_samples, raster)


def _simulate_nominal(plan: Plan, point: Point, store: ChunkStore, backend: str) -> pd.DataFrame:
    """The point's network without mismatch (no draws at all), on trial 0's input."""
    spec = point.network.spec
    nominal = DynapSimNetwork(
        dataclasses.replace(spec, mismatch=dataclasses.replace(spec.mismatch, percent=0.0))
    )
    result = nominal.simulate(point.stimulus.trial(0), 1, backend=backend, record=[0],
                              bin_width=plan.config["metrics"]["bin_steps"])  # fmt: skip
    store.write_raster(f"nominal-p{point.sweep.index:05d}", result.reductions.raster[0])
    metrics = neuron_metrics(result.reductions, result.n_steps, spec.dt)
    return pd.DataFrame(
        {
            "point": point.sweep.index,
            "neuron": np.arange(spec.n_neurons),
            "core": spec.core_map,
            "spike_count": result.spike_counts[0],
            **{name: values[0] for name, values in metrics.items()},
            "nonfinite": bool(result.reductions.nonfinite_step[0] >= 0),
        }
    )


def _simulate_chunk(
    plan: Plan, chunk: Chunk, nominal: pd.DataFrame, store: ChunkStore, backend: str
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One backend call for the chunk's instances -> instance rows (+ neuron rows)."""
    point = plan.point_of(chunk.first)
    spec = point.network.spec
    config = plan.config
    ids = np.arange(chunk.first, chunk.last + 1)
    samples = ids - point.sweep.index * plan.n_samples
    record = (
        [int(plan.raster_instance - chunk.first)]
        if chunk.first <= plan.raster_instance <= chunk.last
        else []
    )
    result = point.network.simulate(
        point.stimulus.for_samples(samples), chunk.size, backend=backend, record=record,
        first_instance=chunk.first, bin_width=config["metrics"]["bin_steps"],
    )  # fmt: skip
    for position in record:
        store.write_raster(f"i{chunk.first + position:09d}", result.reductions.raster[position])
    neuron = neuron_metrics(result.reductions, result.n_steps, spec.dt)
    metrics = config["metrics"]
    per_instance = instance_metrics(
        result.reductions, neuron, nominal["rate_hz"].to_numpy(), spec.dt, metrics["bin_steps"],
        result.n_steps, metrics["within"], metrics["saturated_rate_hz"],
    )  # fmt: skip
    head = {
        "instance": ids,
        "point": point.sweep.index,
        "sample": samples,
        **{column: [_cell(value)] * chunk.size for column, value in point.sweep.values.items()},
        "seed": config["seed"],
        "trial": 0 if point.stimulus.frozen else samples,
    }
    instances = pd.DataFrame({**head, **per_instance})
    if not config["output"]["neurons"]:
        return instances, None
    n_neurons = spec.n_neurons
    neurons = pd.DataFrame(
        {
            "instance": np.repeat(ids, n_neurons),
            "point": point.sweep.index,
            "sample": np.repeat(samples, n_neurons),
            "neuron": np.tile(np.arange(n_neurons, dtype=np.int32), chunk.size),
            "core": np.tile(spec.core_map, chunk.size),
            "spike_count": result.spike_counts.reshape(-1).astype(np.int32),
            **{name: values.reshape(-1).astype(np.float32) for name, values in neuron.items()},
        }
    )
    return instances, neurons


def _cell(value: Any) -> Any:
    """Sweep values as table cells: numbers stay numbers, lists become text."""
    return value if isinstance(value, int | float | str | bool) else str(value)


def experiment_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What must match for chunk files to be reused."""
    return {key: config[key] for key in _EXPERIMENT_KEYS}


def run(plan: Plan, run_dir: Path, progress: bool = True) -> Outcome:
    """Simulate the pending chunks of this shard, then assemble and write the tables."""
    config = plan.config
    store = ChunkStore(run_dir)
    store.claim(experiment_identity(config))
    backend = resolve_backend(config["backend"]["name"])
    pending = [chunk for chunk in plan.chunks if not store.done(chunk)]
    total = sum(chunk.size for chunk in plan.chunks)
    log.info("backend %s: %d of %d chunks to simulate (%d instances), %d done before",
             backend, len(pending), len(plan.chunks), sum(c.size for c in pending),
             len(plan.chunks) - len(pending))  # fmt: skip
    nominals: dict[int, pd.DataFrame] = {}

    def nominal(point: Point) -> pd.DataFrame:
        index = point.sweep.index
        if index not in nominals:
            nominals[index] = store.nominal(
                index, lambda: _simulate_nominal(plan, point, store, backend)
            )
        return nominals[index]

    simulated, seconds, neuron_steps = 0, 0.0, 0
    bar = tqdm(total=total, initial=total - sum(c.size for c in pending), unit="inst",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    with bar:
        for number, chunk in enumerate(pending, start=1):
            point = plan.point_of(chunk.first)
            reference = nominal(point)
            bar.set_postfix_str(f"chunk {number}/{len(pending)} point {point.sweep.index}")
            start = time.perf_counter()
            instances, neurons = _simulate_chunk(plan, chunk, reference, store, backend)
            seconds += time.perf_counter() - start
            store.write(chunk, instances, neurons)
            simulated += chunk.size
            neuron_steps += chunk.size * point.network.spec.n_neurons * point.stimulus.n_steps
            bar.update(chunk.size)

    touched = sorted({plan.point_of(chunk.first).sweep.index for chunk in plan.chunks})
    nominal_table = pd.concat([nominal(plan.points[index]) for index in touched], ignore_index=True)
    instances = store.read(plan.chunks, "instances")
    summary = summarize(
        instances, plan.sweep_columns, nominal_table.groupby("point")["rate_hz"].mean()
    )
    write_atomic(run_dir / "instances.parquet", lambda p: instances.to_parquet(p, index=False))
    write_atomic(run_dir / "nominal.parquet", lambda p: nominal_table.to_parquet(p, index=False))
    write_atomic(run_dir / "summary.csv", lambda p: summary.to_csv(p, index=False))
    if config["output"]["neurons"]:
        neurons = store.read(plan.chunks, "neurons")
        write_atomic(run_dir / "neurons.parquet", lambda p: neurons.to_parquet(p, index=False))
    return Outcome(instances, nominal_table, summary, backend, simulated, seconds, neuron_steps)
