"""`prepare`: a config -> a checked `Plan`, before any simulation.

Every sweep point's network and stimulus is built first, so that a bad spec fails before
any simulation: the network as it will run, its weights quantized (`network.quantize`) and
checked against the chip (`network.hardware`). Then the chunks of the sweep and of this
shard are laid out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runner.analysis.objective import check_objective
from runner.kernel.backends import BackendUnavailable, resolve_backend
from runner.network.dynapsim import DynapSimNetwork, packable
from runner.physics.hardware import hardware_profile, hardware_refusal
from runner.physics.quantization import core_losses
from runner.physics.spec import MAX_WEIGHT_BITS
from runner.study.network_config import build_network, resolve_network
from runner.study.plan import ExperimentError, Plan, Point
from runner.study.schema import (
    NetworkConfig,
    RunnerConfig,
    StimulusConfig,
    load_config,
    plain,
    typed,
)
from runner.study.scoring import point_task
from runner.study.stimulus import Stimulus
from runner.study.sweep import SweepPoint, axis_columns, expand_sweep, plan_chunks, shard_chunks
from runner.util.checks import check_int

__all__ = ["prepare"]


def prepare(config: RunnerConfig | Mapping[str, Any]) -> Plan:
    """Resolve and validate the whole experiment (a composed config, as `RunnerConfig` or as
    the plain dict Hydra composed); raise ExperimentError on any problem."""
    errors = (ValueError, TypeError, FileNotFoundError, BackendUnavailable)
    try:
        config = load_config(config)
        resolve_backend(config.backend.name.value)
        n_chips = check_int("sweep.n_samples (chips per point)", config.sweep.n_samples, 1)
        check_int("metrics.bin_steps", config.metrics.bin_steps, 1)
        sweep_points = expand_sweep(
            resolve_network(plain(config.network)), plain(config.stimulus), config.sweep.axes
        )
        check_int("chunk_size", config.chunk_size, 1)
        _check_fit_point(config, len(sweep_points))
    except errors as error:
        raise ExperimentError(str(error)) from error
    points = [_point(config, sweep_point, len(sweep_points) > 1) for sweep_point in sweep_points]
    _check_shared_readout(config, points)
    n_trials = _trials_per_chip(points)
    if not 0 <= config.sweep.baseline < len(points):
        raise ExperimentError(
            f"sweep.baseline must be a sweep point index in [0, {len(points)}), "
            f"got {config.sweep.baseline}"
        )
    if config.objective.metric is not None:
        try:
            check_objective(config.objective, len(points), config.shard.count, config.readout)
        except ValueError as error:
            raise ExperimentError(str(error)) from error
    group_of = _pack_groups(points)
    all_chunks = plan_chunks(group_of, n_chips, config.chunk_size, n_trials)
    try:
        chunks = shard_chunks(all_chunks, config.shard.index, config.shard.count)
    except ValueError as error:
        raise ExperimentError(str(error)) from error
    n_rows = len(points) * n_chips * n_trials
    raster = config.output.raster_instance
    if raster is None:
        raster = n_rows - n_chips * n_trials
    elif not 0 <= raster < n_rows:
        raise ExperimentError(
            f"output.raster_instance must be a row id (instance) in [0, {n_rows}), got {raster}"
        )
    columns = [column for axis in config.sweep.axes for column in axis_columns(axis)]
    return Plan(config, points, columns, chunks, n_chips, n_trials, raster, group_of, all_chunks)


def _point(config: RunnerConfig, sweep_point: SweepPoint, name_it: bool) -> Point:
    """A sweep point's network, stimulus and task, built and checked (ExperimentError naming
    the point when the sweep has several)."""
    try:
        network = typed(NetworkConfig, resolve_network(sweep_point.network))
        stimulus_config = typed(StimulusConfig, sweep_point.stimulus)
        net, loss = _network(network, config.seed)
        stimulus = Stimulus(stimulus_config, net.spec.n_inputs, net.spec.dt, config.readout)
        task = None if config.readout is None else point_task(
            config.readout, stimulus, net.spec.n_neurons, config.metrics.bin_steps
        )  # fmt: skip
    except (ValueError, TypeError, FileNotFoundError) as error:
        where = f"sweep point {sweep_point.index} {sweep_point.values}: " if name_it else ""
        raise ExperimentError(f"{where}{error}") from error
    return Point(sweep_point, net, stimulus, task, network, stimulus_config, loss)


def _network(network: NetworkConfig, seed: int) -> tuple[DynapSimNetwork, np.ndarray | None]:
    """The network a point runs, and its per-core quantization loss (None: float weights).
    Settings are checked before the network is built; ValueError says what is wrong."""
    n_bits = network.quantize.n_bits  # an int or None: the schema says so
    if n_bits is not None and not 1 <= n_bits <= MAX_WEIGHT_BITS:
        raise ValueError(
            f"network.quantize.n_bits must be an int from 1 to {MAX_WEIGHT_BITS} (bits of a "
            f"weight's mask; the DYNAP-SE2 has 4) or null (float weights), got {n_bits!r}"
        )
    try:
        profile = None if network.hardware is None else hardware_profile(network.hardware)
    except ValueError as error:
        raise ValueError(f"network.hardware: {error}") from None
    net = build_network(network, seed)
    loss = None
    if n_bits is not None:
        original, net = net, net.quantized(n_bits)
        loss = core_losses(original.spec, net.spec)
    net.synaptic_base_weights()  # refuses network.mismatch.weights on float weights
    refusal = None if profile is None else hardware_refusal(net, profile)
    if refusal is not None:
        raise ValueError(f"the network does not fit network.hardware={profile.name}: {refusal}")
    return net, loss


def _check_fit_point(config: RunnerConfig, n_points: int) -> None:
    """`readout.fit_point` names a sweep point (checked before any point is built)."""
    fit_point = None if config.readout is None else config.readout.fit_point
    if fit_point is not None and not 0 <= fit_point < n_points:
        raise ValueError(
            f"readout.fit_point must be a sweep point index in [0, {n_points}) (the point whose "
            f"nominal instance trains the readout) or null, got {fit_point}"
        )


def _check_shared_readout(config: RunnerConfig, points: list[Point]) -> None:
    """A readout fitted at `readout.fit_point` must fit every point's features and classes."""
    fit_point = None if config.readout is None else config.readout.fit_point
    if fit_point is None:
        return
    shapes = [p.task.readout_shape(p.network.spec.n_neurons) for p in points]
    for point, shape in zip(points, shapes, strict=True):
        if shape != shapes[fit_point]:
            raise ExperimentError(
                f"readout.fit_point={fit_point}: its readout takes {shapes[fit_point][0]} "
                f"features and {shapes[fit_point][1]} classes, but sweep point "
                f"{point.sweep.index} {point.sweep.values} has {shape[0]} and {shape[1]}"
            )


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
