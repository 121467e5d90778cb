"""Structured configs: the schema every YAML file under conf/ is merged into.

Registered in Hydra's ConfigStore as `base_config`, so a misspelt key or a value of the
wrong type is rejected with the key's name while Hydra composes the config, before any
simulation starts. Values are checked again where they meet the model (`NetworkSpec.build`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.analysis.readout import ReadoutConfig
from runner.data.patterns import PatternTask

__all__ = [
    "Backend",
    "BackendConfig",
    "StimulusKind",
    "Distribution",
    "Nonphysical",
    "AxisMode",
    "Pairing",
    "Currents",
    "Layout",
    "MismatchConfig",
    "GeneratorConfig",
    "NetworkConfig",
    "StimulusConfig",
    "SweepAxis",
    "SweepConfig",
    "ShardConfig",
    "MetricsConfig",
    "OutputConfig",
    "Direction",
    "ObjectiveConfig",
    "RunnerConfig",
    "register_configs",
    "check_schema",
]


class Backend(Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"
    reference = "reference"


class StimulusKind(Enum):
    poisson = "poisson"
    regular = "regular"
    file = "file"
    dataset = "dataset"  # labelled samples from `file` (.npz: inputs, labels [, train])
    patterns = "patterns"  # labelled samples from the `patterns` generator (runner.tasks)


class Distribution(Enum):
    gaussian = "gaussian"
    lognormal = "lognormal"


class Nonphysical(Enum):
    keep = "keep"
    clip = "clip"


class AxisMode(Enum):
    replace = "replace"  # the swept value replaces the field
    scale = "scale"  # the swept value multiplies the field (every core, or one with `.k`)


class Pairing(Enum):
    paired = "paired"  # chip c draws the same deviations at every sweep point
    independent = "independent"  # every (point, chip) draws its own: unrelated chips


@dataclass
class Currents:
    """Bias currents [A]: null = chip default, a number = every core, a list = one per core."""

    Idc: Any = None
    If_nmda: Any = None
    Igain_ahp: Any = None
    Igain_mem: Any = None
    Igain_syn: Any = None
    Ipulse_ahp: Any = None
    Ipulse: Any = None
    Iref: Any = None
    Ispkthr: Any = None
    Itau_ahp: Any = None
    Itau_mem: Any = None
    Itau_syn: Any = None
    Iw_ahp: Any = None


@dataclass
class Layout:
    """Layout constants (capacitances [F], Io [A], kappas, Ut, Vth [V]): null = default."""

    C_ahp: float | None = None
    C_syn: float | None = None
    C_pulse_ahp: float | None = None
    C_pulse: float | None = None
    C_ref: float | None = None
    C_mem: float | None = None
    Io: float | None = None
    kappa_n: float | None = None
    kappa_p: float | None = None
    Ut: float | None = None
    Vth: float | None = None


@dataclass
class MismatchConfig:
    """Beyond Rockpool's Gaussian: see runner.mismatch."""

    distribution: Distribution = Distribution.gaussian
    shared_fraction: float = 0.0
    parameters: list[str] | None = None  # null: all 24 parameters deviate
    nonphysical: Nonphysical = Nonphysical.keep


@dataclass
class GeneratorConfig:
    """Weights from a seeded generator in runner.generators: its name and keyword params."""

    name: str = "feedforward"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetworkConfig:
    """One network: weights from `generator`, or everything from a spec `file`."""

    name: str = "feedforward"
    n_cluster: int = 1
    neurons_per_core: int = 256
    generator: GeneratorConfig | None = field(default_factory=GeneratorConfig)
    file: str | None = None  # .npz/.json spec (runner.specfile); currents set here override it
    currents: Currents = field(default_factory=Currents)
    layout: Layout = field(default_factory=Layout)
    Iscale: float | None = None  # null: the file's value, else 1e-8 A
    dt: float | None = None  # null: the file's value, else 1e-3 s
    percent_mismatch: float | None = None  # null: the file's value, else 0 (3-sigma, 0.3 = 30 %)
    mismatch: MismatchConfig = field(default_factory=MismatchConfig)


@dataclass
class StimulusConfig:
    """Input spikes: Poisson or regular trains per channel, an array from a file, or the
    samples of a labelled dataset (a file or the `patterns` generator; needs `readout`)."""

    kind: StimulusKind = StimulusKind.poisson
    n_steps: int = 1000
    rate_hz: Any = 10.0  # a number or one per input channel
    file: str | None = None  # file: .npy/.npz (T, C) or (trials, T, C); dataset: .npz
    trials: int = 1  # every chip and the nominal instance run trials 0..trials-1
    seed: int = 0
    patterns: PatternTask | None = None  # kind=patterns: the generator's parameters


@dataclass
class SweepAxis:
    """One grid axis: a dotted path under `network.` or `stimulus.` and its values."""

    path: str = "network.percent_mismatch"
    values: list[Any] = field(default_factory=list)
    mode: AxisMode = AxisMode.replace


@dataclass
class SweepConfig:
    """The grid (product of axes, first axis slowest) x n_samples chips x stimulus.trials."""

    name: str = "none"
    n_samples: int = 32  # chips per sweep point
    axes: list[SweepAxis] = field(default_factory=list)
    pairing: Pairing = Pairing.paired
    baseline: int = 0  # the sweep point paired changes are measured against


@dataclass
class ShardConfig:
    """Run only shard `index` of `count` contiguous blocks of chunks."""

    index: int = 0
    count: int = 1


@dataclass
class MetricsConfig:
    within: float = 0.2  # tolerance of `frac_within` (relative to the nominal rate)
    saturated_rate_hz: float = 250.0  # a neuron at or above this rate counts as saturated
    bin_steps: int = 10  # time bin of the population rate, in steps


@dataclass
class OutputConfig:
    neurons: bool = True  # write neurons.parquet (one row per instance and neuron)
    figures: bool = True
    raster_instance: int | None = None  # a row id; null: chip 0, first trial, last point


class Direction(Enum):
    maximize = "maximize"
    minimize = "minimize"


@dataclass
class ObjectiveConfig:
    """What a calibration study optimizes: a statistic over the chips of one sweep point
    (runner.objective); `direction` must match the Optuna sweeper's, which decides.
    A node with `metric: null` rather than a null node, so `objective.KEY=...` always merges."""

    metric: str | None = None  # null: no objective
    statistic: str = "q05"  # mean, median, min, max, qNN, frac_at_least, frac_at_most
    threshold: float | None = None  # frac_at_least / frac_at_most only
    point: int = 0
    direction: Direction = Direction.maximize


@dataclass
class BackendConfig:
    name: Backend = Backend.auto


@dataclass
class RunnerConfig:
    network: NetworkConfig = field(default_factory=NetworkConfig)
    stimulus: StimulusConfig = field(default_factory=StimulusConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    seed: int = 0  # mismatch seed: chip c of any run draws the same parameters
    chunk_size: int = 1024  # rows (chip x trial) per backend call, whole chips, across points
    shard: ShardConfig = field(default_factory=ShardConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)  # the run returns it
    readout: ReadoutConfig | None = None  # task accuracy of a dataset stimulus; null: none


def register_configs() -> None:
    """Put the schema into Hydra's ConfigStore (config.yaml's first default)."""
    ConfigStore.instance().store(name="base_config", node=RunnerConfig)


def check_schema(config: dict[str, Any]) -> None:
    """Refuse keys the schema lacks even when added with Hydra's `+key=` (which allows it),
    and values the types allow but the metrics cannot use (NaN, negative tolerances)."""
    try:
        OmegaConf.merge(OmegaConf.structured(RunnerConfig), config)
    except OmegaConfBaseException as error:
        raise ValueError(str(error).splitlines()[0] + f" (at {error.full_key})") from None
    metrics = config["metrics"]
    if not math.isfinite(metrics["within"]) or metrics["within"] < 0:
        raise ValueError(
            f"metrics.within must be a finite number >= 0 (0.2 means within 20 % of the nominal "
            f"rate), got {metrics['within']}"
        )
    if not math.isfinite(metrics["saturated_rate_hz"]) or metrics["saturated_rate_hz"] <= 0:
        raise ValueError(
            f"metrics.saturated_rate_hz must be a finite rate > 0 (Hz), "
            f"got {metrics['saturated_rate_hz']}"
        )
