"""Backend calls of a run: the nominal instances, and one chunk of chip x trial rows.

A call packs the rows of consecutive sweep points that share neurons, weights and dt (each
row carries its point's biases, its chip's mismatch key and its trial's input stream: one
event stream per (point, trial), never a copy per row); the results become table rows here.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from runner.analysis.instance_metrics import core_metrics, instance_metrics
from runner.analysis.neuron_metrics import neuron_metrics, neuron_table
from runner.analysis.readout import LinearReadout, Readout
from runner.kernel.backends import get_backend
from runner.kernel.batch import BatchResult, InputEvents
from runner.network.dynapsim import DynapSimNetwork, packed_batch
from runner.physics.mismatch import MismatchModel
from runner.study.plan import Plan, Point
from runner.study.run_folder import ChunkStore, nominal_raster_label
from runner.study.scoring import predictions, refitted_predictions, stored_readout
from runner.study.sweep import Chunk

__all__ = ["simulate_nominals", "scoring_readout", "simulate_chunk"]


def _simulate_points(
    plan: Plan,
    networks: list[DynapSimNetwork],
    point_ids: np.ndarray,
    inputs: InputEvents,
    keys: np.ndarray,
    record: list[int],
    backend: str,
    bin_width: int,
) -> BatchResult:
    """One backend call for rows of several points (`point_ids` index `networks`; `keys`
    are the ids the rows' mismatch draws are keyed by), binned for `bin_width` steps."""
    batch = packed_batch(
        networks, point_ids, inputs, keys, plan.config.seed, bin_width, record,
    )  # fmt: skip
    return get_backend(backend)(batch)


def simulate_nominals(plan: Plan, points: list[Point], store: ChunkStore, backend: str) -> None:
    """The points' networks without mismatch (no draws at all), each on every trial of its
    `nominal_trials`, packed into one backend call per group of packable points; stored
    per point as one table of (trial, neuron) rows. With a readout, the rows also hold
    label, split and the prediction; the points that fit a ridge readout run first, so a
    readout shared by other points (`readout.fit_point`) is stored before they are scored."""
    fitting = [p for p in points if plan.fits_readout(p.sweep.index)]
    scored = [p for p in points if not plan.fits_readout(p.sweep.index)]
    for batch in (fitting, scored):
        for _, group in itertools.groupby(batch, key=lambda p: plan.group_of[p.sweep.index]):
            _simulate_nominal_group(plan, list(group), store, backend)


def _simulate_nominal_group(
    plan: Plan, group: list[Point], store: ChunkStore, backend: str
) -> None:
    """One backend call for the nominal instances of packable points, and their tables."""
    raster_point, _, raster_position = (int(v) for v in plan.locate(plan.raster_instance))
    networks = [
        DynapSimNetwork(replace(p.network.spec, mismatch=MismatchModel())) for p in group
    ]
    trials = [p.stimulus.nominal_trials for p in group]
    inputs = InputEvents.concatenate([
        InputEvents.from_dense(p.stimulus.for_trials(mine), len(mine))
        for p, mine in zip(group, trials, strict=True)
    ])  # fmt: skip
    starts = np.cumsum([0] + [len(mine) for mine in trials])
    point_ids = np.repeat(np.arange(len(group)), [len(mine) for mine in trials])
    rasters = {}  # position in the call -> raster label
    for index, point in enumerate(group):
        if point.sweep.index == raster_point:
            trial = int(point.stimulus.chip_trials[raster_position])
            position = starts[index] + point.stimulus.nominal_positions([trial])[0]
            rasters[int(position)] = nominal_raster_label(point.sweep.index, trial)
    result = _simulate_points(plan, networks, point_ids, inputs, np.arange(point_ids.size),
                              list(rasters), backend, plan.bin_width(group[0].sweep.index))
    for position, label in rasters.items():
        store.write_raster(label, result.raster[position])
    spec = group[0].network.spec
    metrics = neuron_metrics(result, group[0].stimulus.n_steps, spec.dt)
    features = None if group[0].task is None else group[0].task.features(result)
    for index, (point, mine) in enumerate(zip(group, trials, strict=True)):
        rows = slice(starts[index], starts[index + 1])
        nonfinite = result.nonfinite_step[rows] >= 0
        head = {"point": np.full(len(mine), point.sweep.index), "trial": mine}
        if features is not None:
            head.update(_nominal_predictions(plan, point, features[rows], mine, nonfinite,
                                             store))  # fmt: skip
        frame = neuron_table(
            head, spec.core_map, result.spike_count[rows],
            {name: values[rows] for name, values in metrics.items()}, nonfinite=nonfinite,
        )  # fmt: skip
        store.write_nominal(point.sweep.index, frame)


def _nominal_predictions(
    plan: Plan, point: Point, features: np.ndarray, trials: np.ndarray, nonfinite: np.ndarray,
    store: ChunkStore,
) -> dict[str, Any]:
    """A point's nominal rows' label, split and prediction. A point that fits a ridge
    readout fits it on them and stores it (NaN weights when a train row is non-finite: no
    readout to transfer); any other point is scored with the readout it shares."""
    task = point.task
    if not plan.fits_readout(point.sweep.index):
        readout = scoring_readout(plan, store, point.sweep.index)
        return predictions(task, readout, features, trials, nonfinite)
    readout = task.nominal_readout(features, trials, nonfinite)
    fitted = readout or LinearReadout(np.full((features.shape[1], task.n_classes), np.nan),
                                      np.full(task.n_classes, np.nan))  # fmt: skip
    store.write_readout(point.sweep.index, fitted.weights, fitted.bias)
    return predictions(task, readout, features, trials, nonfinite)


def scoring_readout(plan: Plan, store: ChunkStore, point: int) -> Readout | None:
    """The readout a point's rows are scored with: the configured one, or the ridge readout
    fitted on the nominal instance of `plan.readout_point(point)`, read back from the chunks
    folder (as a resumed run or another shard reads it); None when none could be fitted."""
    task = plan.points[point].task
    if task.configured is not None:
        return task.configured
    fitted = store.read_readout(plan.readout_point(point))
    return None if fitted is None else stored_readout(*fitted)


def simulate_chunk(
    plan: Plan,
    chunk: Chunk,
    nominal_rates: dict[int, np.ndarray],
    store: ChunkStore,
    backend: str,
    readouts: dict[int, Readout | None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One backend call for the chunk's rows -> instance rows (+ neuron rows).

    nominal_rates: point index -> that point's nominal per-neuron rates, one row per trial
    of its `nominal_trials` (Kn, N); row (point, chip, trial k) is compared with row k.
    readouts: point index -> the readout its chips are scored with (points with a task).
    """
    config = plan.config
    ids = np.arange(chunk.first, chunk.last + 1)
    point_of, chips, positions = plan.locate(ids)
    chunk_points = np.unique(point_of)
    points = [plan.points[p] for p in chunk_points]
    trials = np.empty_like(ids)
    nominal = np.empty((ids.size, points[0].network.spec.n_neurons))
    streams = []
    for p, point in zip(chunk_points, points, strict=True):
        mine = point_of == p
        stimulus = point.stimulus
        trials[mine] = stimulus.chip_trials[positions[mine]]
        nominal[mine] = nominal_rates[p][stimulus.nominal_positions(trials[mine])]
        streams.append(replace(stimulus.chip_events,
                               instance_stream=positions[mine].astype(np.int32)))
    record = (
        [int(plan.raster_instance - chunk.first)]
        if chunk.first <= plan.raster_instance <= chunk.last
        else []
    )
    local = np.searchsorted(chunk_points, point_of)
    bin_width = plan.bin_width(int(chunk_points[0]))
    result = _simulate_points(plan, [p.network for p in points], local,
                              InputEvents.concatenate(streams),
                              plan.mismatch_keys(point_of, chips), record, backend,
                              bin_width)  # fmt: skip
    for position in record:
        store.write_raster(f"i{chunk.first + position:09d}", result.raster[position])
    spec = points[0].network.spec
    n_steps = points[0].stimulus.n_steps
    neuron = neuron_metrics(result, n_steps, spec.dt)
    metrics = config.metrics
    per_instance = instance_metrics(
        result, neuron, nominal, spec.dt, metrics.bin_steps, bin_width, n_steps,
        metrics.within, metrics.saturated_rate_hz,
    )  # fmt: skip
    if points[0].task is not None:
        per_instance.update(_chunk_predictions(plan, chunk_points, point_of, trials, result,
                                               readouts or {}))  # fmt: skip
    rows = {"instance": ids, "point": point_of, "chip": chips, "trial": trials}
    head = {
        **rows,
        **{
            column: [_cell(plan.points[p].sweep.values[column]) for p in point_of]
            for column in plan.sweep_columns
        },
        "seed": config.seed,
    }
    instances = pd.DataFrame({**head, **per_instance})
    cores = _core_rows(rows, spec.core_map, result, neuron["rate_hz"], nominal,
                       metrics.within, n_steps * spec.dt)  # fmt: skip
    if not config.output.neurons:
        return instances, None, cores
    neurons = neuron_table(rows, spec.core_map, result.spike_count, neuron,
                           nonfinite=result.nonfinite_step >= 0, compact=True)  # fmt: skip
    return instances, neurons, cores


def _core_rows(
    rows: dict[str, np.ndarray],
    core_map: np.ndarray,
    result: BatchResult,
    rates: np.ndarray,
    nominal: np.ndarray,
    within: float,
    duration: float,
) -> pd.DataFrame:
    """One row per (row, core): the core's own CORE_METRICS (cores.parquet's source)."""
    per_core = core_metrics(rates, nominal, core_map, within, duration)
    cores = np.unique(core_map)
    return pd.DataFrame({
        **{name: np.repeat(values, cores.size) for name, values in rows.items()},
        "core": np.tile(cores.astype(np.int32), len(rows["instance"])),
        **{name: values.reshape(-1) for name, values in per_core.items()},
        "nonfinite": np.repeat(result.nonfinite_step >= 0, cores.size),
    })  # fmt: skip


def _chunk_predictions(
    plan: Plan,
    chunk_points: np.ndarray,
    point_of: np.ndarray,
    trials: np.ndarray,
    result: BatchResult,
    readouts: dict[int, Readout | None],
) -> dict[str, Any]:
    """Each row's label, split and predictions, point by point (whole chips each; the
    points of a chunk share the readout settings and the trial length, so the features)."""
    nonfinite = result.nonfinite_step >= 0
    features = plan.points[chunk_points[0]].task.features(result)
    parts = []
    for p in chunk_points:
        mine = point_of == p
        task = plan.points[p].task
        columns = predictions(task, readouts[int(p)], features[mine], trials[mine],
                              nonfinite[mine])  # fmt: skip
        if task.config.per_chip:
            columns["predicted_per_chip"] = refitted_predictions(
                task, features[mine], trials[mine], nonfinite[mine], plan.n_trials
            )
        parts.append(pd.DataFrame(columns))
    return {name: values.array for name, values in pd.concat(parts, ignore_index=True).items()}


def _cell(value: Any) -> Any:
    """Sweep values as table cells: numbers stay numbers, lists become text, null is a
    missing value (NaN), so that a column of numbers and null stays numeric."""
    if value is None:
        return np.nan
    return value if isinstance(value, int | float | str | bool) else str(value)
