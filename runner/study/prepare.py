"""`prepare`: a config -> a checked `Plan`, before any simulation.

Every sweep point's network and stimulus is built first, so that a bad spec fails before
any simulation; then the chunks of the sweep and of this shard are laid out.
"""

from __future__ import annotations

from typing import Any

from runner.analysis.objective import check_objective, objective_of
from runner.analysis.readout import ReadoutConfig
from runner.kernel.backends import BackendUnavailable, resolve_backend
from runner.network.dynapsim import packable
from runner.study.network_config import build_network, resolve_network
from runner.study.plan import ExperimentError, Plan, Point
from runner.study.schema import check_schema
from runner.study.scoring import point_task
from runner.study.stimulus import Stimulus
from runner.study.sweep import axis_column, expand_sweep, plan_chunks, shard_chunks

__all__ = ["prepare"]


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
