"""Backend calls of a run: the nominal instances, and one chunk of mismatch instances.

A call packs the instances of consecutive sweep points that share neurons, weights and dt
(each instance carries its point's biases); the results become table rows here.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .backends import get_backend
from .batch import BatchResult, InputEvents, packed_batch
from .metrics import neuron_metrics, neuron_table
from .mismatch import MismatchModel
from .network import DynapSimNetwork
from .plan import Plan, Point
from .robustness import instance_metrics
from .sweep import Chunk
from .tables import ChunkStore

__all__ = ["simulate_nominals", "simulate_chunk"]


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


def simulate_nominals(plan: Plan, points: list[Point], store: ChunkStore, backend: str) -> None:
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
            frame = neuron_table(
                {"point": np.array([point.sweep.index])}, spec.core_map,
                result.spike_count[position : position + 1],
                {name: values[position : position + 1] for name, values in metrics.items()},
                nonfinite=result.nonfinite_step[position : position + 1] >= 0,
            )  # fmt: skip
            store.write_nominal(point.sweep.index, frame)


def simulate_chunk(
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
    neurons = neuron_table(
        {"instance": ids, "point": point_of, "sample": samples}, spec.core_map,
        result.spike_count, neuron, nonfinite=result.nonfinite_step >= 0, compact=True,
    )  # fmt: skip
    return instances, neurons


def _cell(value: Any) -> Any:
    """Sweep values as table cells: numbers stay numbers, lists become text."""
    return value if isinstance(value, int | float | str | bool) else str(value)
