"""An experiment's plan: every sweep point built and checked, and this shard's chunks.

A `Plan` is made by `runner.study.prepare` and read by everything after it. Chunks are
arithmetic (`sweep.Chunks`): planning costs the same for 32 or 10^12 chips, and only the
chunks this shard runs are ever made into objects. A row (instance id) is one
(point, chip, trial), see runner.study.sweep; `mismatch_keys` says which chip's draws a
row gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from runner.analysis.chip_statistics import AccuracySettings
from runner.study.sweep import Chunk, SweepPoint, axis_columns

if TYPE_CHECKING:
    from runner.analysis.objective import ObjectiveConfig
    from runner.network.dynapsim import DynapSimNetwork
    from runner.study.schema import NetworkConfig, RunnerConfig, StimulusConfig
    from runner.study.scoring import PointTask
    from runner.study.stimulus import Stimulus

__all__ = ["ExperimentError", "Point", "Plan"]


class ExperimentError(ValueError):
    """A config that cannot run, found before any simulation: the message says why."""


@dataclass
class Point:
    """A sweep point ready to simulate."""

    sweep: SweepPoint
    network: DynapSimNetwork
    stimulus: Stimulus
    task: PointTask | None  # with a readout: the labels, split and readout
    network_config: NetworkConfig  # what the network was built from (resolved, swept)
    stimulus_config: StimulusConfig
    # per core, squared weight units (runner.physics.quantization.core_losses): the network's
    # weights were quantized (network.quantize.n_bits); None: they run as given
    quantization_loss: np.ndarray | None = None


@dataclass
class Plan:
    config: RunnerConfig
    points: list[Point]
    sweep_columns: list[str]
    chunks: Sequence[Chunk]  # this shard's chunks (may be none)
    n_chips: int  # chips per point (sweep.n_samples)
    n_trials: int  # rows per chip: the length of every point's stimulus.chip_trials
    raster_instance: int | None  # a row id
    group_of: list[int]  # per point: consecutive points of a group share backend calls
    sweep_chunks: Sequence[Chunk]  # every chunk of the sweep, computed on demand

    @property
    def axis_columns(self) -> list[list[str]]:
        """The sweep columns of each axis: one, or one per path of a joint axis."""
        return [axis_columns(axis) for axis in self.config.sweep.axes]

    @property
    def rows_per_point(self) -> int:
        return self.n_chips * self.n_trials

    @property
    def baseline(self) -> int:
        """The sweep point paired changes are measured against."""
        return self.config.sweep.baseline

    @property
    def paired(self) -> bool:
        return self.config.sweep.pairing.value == "paired"

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
        if not self.config.output.neurons:
            return None
        return self.point_of(chunk.first).network.spec.n_neurons

    def cores_per_instance(self, chunk: Chunk) -> int:
        """Rows per instance in the chunk's cores file: the cores its neurons sit in."""
        return int(np.unique(self.point_of(chunk.first).network.spec.core_map).size)

    def readout_point(self, point: int) -> int:
        """The point whose nominal instance fits the ridge readout `point` is scored with:
        `readout.fit_point`, or the point itself."""
        readout = self.config.readout
        return point if readout is None or readout.fit_point is None else readout.fit_point

    def fits_readout(self, point: int) -> bool:
        """Is a ridge readout fitted on the point's nominal instance (its own, or the one
        every point is scored with)?"""
        task = self.points[point].task
        return task is not None and task.configured is None and self.readout_point(point) == point

    def nominal_points(self) -> list[int]:
        """The points whose nominal instances this shard needs: those its chunks hold, and
        the point that fits their readout (`readout.fit_point`), held or not, so every shard
        scores with the same readout."""
        touched = self.touched_points()
        return sorted({*touched, *(self.readout_point(p) for p in touched)})

    def readout_shape(self, point: int) -> tuple[int, int] | None:
        """(features, classes) of the readout fitted on the point's nominal instance, or
        None when none is fitted (no task, or a configured readout)."""
        if not self.fits_readout(point):
            return None
        return self.points[point].task.readout_shape(self.points[point].network.spec.n_neurons)

    def bin_width(self, point: int) -> int:
        """Steps per kernel bin of a point's backend calls (see scoring.kernel_bin_width)."""
        task = self.points[point].task
        return self.config.metrics.bin_steps if task is None else task.bin_width

    @property
    def accuracy(self) -> AccuracySettings | None:
        """What the summary needs to describe accuracies (None: no readout)."""
        if self.config.readout is None:
            return None
        chance = {p.sweep.index: p.task.chance for p in self.points if p.task is not None}
        return AccuracySettings(self.config.readout.target, chance)

    @property
    def quantization_loss(self) -> dict[int, float]:
        """Point -> the mean over cores of its quantization loss, for the quantized points."""
        return {p.sweep.index: float(np.mean(p.quantization_loss))
                for p in self.points if p.quantization_loss is not None}  # fmt: skip

    @property
    def shard_label(self) -> str:
        return f"shard {self.config.shard.index}/{self.config.shard.count}"

    @property
    def objective(self) -> ObjectiveConfig | None:
        """What the run returns to a calibration study (None: no metric named)."""
        return None if self.config.objective.metric is None else self.config.objective
