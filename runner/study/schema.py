"""Structured configs: the schema every YAML file under conf/ is merged into.

Registered in Hydra's ConfigStore as `base_config`, so a misspelt key or a value of the
wrong type is rejected with the key's name while Hydra composes the config, before any
simulation starts. The run reads the config as these dataclasses (`load_config`), never as
a dict. Values are checked again where they meet the model (`NetworkSpec.build`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from enum import Enum
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.analysis.objective import ObjectiveConfig
from runner.analysis.readout import ReadoutConfig
from runner.data.patterns import PatternTask
from runner.physics.parameters import CURRENT_NAMES, LAYOUT_NAMES

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
    "QuantizeConfig",
    "NetworkConfig",
    "StimulusConfig",
    "SweepAxis",
    "SweepConfig",
    "ShardConfig",
    "MetricsConfig",
    "OutputConfig",
    "RunnerConfig",
    "register_configs",
    "load_config",
    "typed",
    "plain",
]

Config = TypeVar("Config")


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
    patterns = "patterns"  # labelled samples from the `patterns` generator (runner.data.patterns)


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


Currents = make_dataclass("Currents", [
    (name, Any, field(default=None, metadata={"help": f"{name} [A] (null: the chip default)"}))
    for name in CURRENT_NAMES
])  # fmt: skip
Currents.__doc__ = """Bias currents [A] (the model's CURRENT_NAMES): null = chip default, a number
= every core, a list = one per core."""

Layout = make_dataclass("Layout", [
    (name, Any, field(default=None, metadata={"help": f"{name} (null: the default)"}))
    for name in LAYOUT_NAMES
])  # fmt: skip
Layout.__doc__ = """Layout constants (the model's LAYOUT_NAMES: capacitances [F], Io [A], kappas,
Ut, Vth [V]): null = default (or the spec file's), a number = every neuron."""


@dataclass
class MismatchConfig:
    """Beyond Rockpool's Gaussian: see runner.physics.mismatch."""

    distribution: Distribution = Distribution.gaussian  # of x'/x: Rockpool's, or log-normal
    shared_fraction: float = 0.0  # share of the variance common to a core (0: per neuron)
    parameters: list[str] | None = None  # null: all 24 parameters deviate
    nonphysical: Nonphysical = Nonphysical.keep  # negative draws: kept (and counted) or clipped
    # synaptic mismatch: each neuron's base weights Iw_k deviate too (network.quantize.n_bits)
    weights: bool = False


@dataclass
class GeneratorConfig:
    """Weights from a seeded generator in runner.data.weights: its name and keyword params."""

    name: str = "feedforward"  # a generator of runner.data.weights.GENERATORS
    params: dict[str, Any] = field(default_factory=dict)  # its keyword arguments


@dataclass
class QuantizeConfig:
    """Quantize the network's weights for the chip before any simulation
    (`DynapSimNetwork.quantized`): per core, n_bits base weights and an n_bits mask per
    connection; the run simulates the weights they restore."""

    # 1 to 8 (the DYNAP-SE2 has 4); null: the float weights as given. A sweep axis like any
    # key: values [null, 2, 4] compare float and quantized weights on the same chips
    n_bits: int | None = None


@dataclass
class NetworkConfig:
    """One network: weights from `generator`, or everything from a spec `file`."""

    name: str = "feedforward"  # a label for tables and the summary
    n_cluster: int = 1  # cores (clusters); a spec `file` decides its own
    neurons_per_core: int | None = 256  # null with a spec `file` (the file's core map)
    generator: GeneratorConfig | None = field(default_factory=GeneratorConfig)
    file: str | None = None  # .npz/.json spec file; currents set here override its own
    currents: Currents = field(default_factory=Currents)
    layout: Layout = field(default_factory=Layout)
    Iscale: float | None = None  # null: the file's value, else 1e-8 A
    dt: float | None = None  # null: the file's value, else 1e-3 s
    percent_mismatch: float | None = None  # null: the file's value, else 0 (3-sigma, 0.3 = 30 %)
    mismatch: MismatchConfig = field(default_factory=MismatchConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    # a chip profile (runner.physics.hardware.HARDWARE_PROFILES: `dynapse2`) the network that
    # runs (quantized, at every sweep point) must fit, else the run stops before any work;
    # null: no check
    hardware: str | None = None


@dataclass
class StimulusConfig:
    """Input spikes: Poisson or regular trains per channel, an array from a file, or the
    samples of a labelled dataset (a file or the `patterns` generator; needs `readout`)."""

    kind: StimulusKind = StimulusKind.poisson
    n_steps: int = 1000  # time steps of a trial (a file or dataset decides its own)
    rate_hz: Any = 10.0  # a number or one per input channel
    file: str | None = None  # file: .npy/.npz (T, C) or (trials, T, C); dataset: .npz
    trials: int = 1  # every chip and the nominal instance run trials 0..trials-1
    seed: int = 0  # the input spikes of trial k are a function of (seed, k)
    patterns: PatternTask | None = None  # kind=patterns: the generator's parameters

    def __post_init__(self) -> None:
        self.kind = StimulusKind(self.kind)  # also from its name


@dataclass
class SweepAxis:
    """One grid axis: a dotted path under `network.` or `stimulus.` and its values, or a
    joint axis: several `paths` that move together (fields that are only valid in some
    combinations, e.g. synaptic mismatch needs quantized weights)."""

    path: str | None = None  # integer segments index per-core lists
    # a joint axis instead of `path`: each value is a list of one entry per path
    paths: list[str] | None = None
    values: list[Any] = field(default_factory=list)  # one sweep point per value
    mode: AxisMode = AxisMode.replace  # scale: each entry multiplies its own path's field

    def __post_init__(self) -> None:
        self.mode = AxisMode(self.mode)  # also from its name


@dataclass
class SweepConfig:
    """The grid (product of axes, first axis slowest) x n_samples chips x stimulus.trials."""

    name: str = "none"  # a label
    n_samples: int = 32  # chips per sweep point
    axes: list[SweepAxis] = field(default_factory=list)
    pairing: Pairing = Pairing.paired
    baseline: int = 0  # the sweep point paired changes are measured against


@dataclass
class ShardConfig:
    """Run only shard `index` of `count` contiguous blocks of chunks."""

    index: int = 0  # which block this run simulates, 0 .. count-1
    count: int = 1  # blocks the sweep's chunks are split into (e.g. one per Slurm job)


@dataclass
class MetricsConfig:
    within: float = 0.2  # tolerance of `frac_within` (relative to the nominal rate)
    saturated_rate_hz: float = 250.0  # a neuron at or above this rate counts as saturated
    bin_steps: int = 10  # time bin of the population rate, in steps


@dataclass
class OutputConfig:
    neurons: bool = True  # write neurons.parquet (one row per instance and neuron)
    figures: bool = True  # draw figures/ from the tables
    raster_instance: int | None = None  # a row id; null: chip 0, first trial, last point
    # every figure is written once per format: figures/robustness.png, .pdf, ... (any format
    # matplotlib saves: png, pdf, svg, eps, ...)
    figure_formats: list[str] = field(default_factory=lambda: ["png"])
    figure_dpi: float = 150.0  # resolution of raster formats (png), dots per inch; > 0
    # figure width in inches: 7 fits a two-column paper's full width, 3.5 one column; the
    # text scales with it (7 pt at 3.5 in, 9 pt at 7 in)
    figure_width_in: float = 7.0


@dataclass
class BackendConfig:
    name: Backend = Backend.auto  # auto: cuda if a GPU is usable, else cpu, else reference


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


def load_config(config: RunnerConfig | Mapping[str, Any] | DictConfig) -> RunnerConfig:
    """A composed config (or a stored one) as `RunnerConfig`, checked: keys the schema lacks
    are refused even when added with Hydra's `+key=` (which allows it), and so are values the
    types allow but the metrics cannot use (NaN, negative tolerances). ValueError says where."""
    if isinstance(config, RunnerConfig):
        return config
    loaded = typed(RunnerConfig, config)
    metrics = loaded.metrics
    if not math.isfinite(metrics.within) or metrics.within < 0:
        raise ValueError(
            f"metrics.within must be a finite number >= 0 (0.2 means within 20 % of the nominal "
            f"rate), got {metrics.within}"
        )
    if not math.isfinite(metrics.saturated_rate_hz) or metrics.saturated_rate_hz <= 0:
        raise ValueError(
            f"metrics.saturated_rate_hz must be a finite rate > 0 (Hz), "
            f"got {metrics.saturated_rate_hz}"
        )
    _check_output(loaded.output)
    return loaded


def _check_output(output: OutputConfig) -> None:
    """The figure keys: formats matplotlib can write, a positive dpi and width."""
    # imported here: matplotlib costs a third of a second at start-up (schema is read by
    # every command, figures are drawn by few)
    from matplotlib.backend_bases import FigureCanvasBase

    supported = sorted(FigureCanvasBase.get_supported_filetypes())
    unknown = [name for name in output.figure_formats if name.lower() not in supported]
    if unknown or not output.figure_formats:
        raise ValueError(
            f"output.figure_formats: {', '.join(map(repr, unknown)) or 'an empty list'} "
            f"is not a figure format (supported: {', '.join(supported)})"
        )
    for key, value in (("figure_dpi", output.figure_dpi),
                       ("figure_width_in", output.figure_width_in)):  # fmt: skip
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"output.{key} must be a finite number > 0, got {value}")


def typed(schema: type[Config], tree: Mapping[str, Any] | DictConfig) -> Config:
    """`tree` (plain values, e.g. a sweep point's network) as an instance of the dataclass
    `schema`, validated by OmegaConf (ValueError naming the key)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), tree))
    except OmegaConfBaseException as error:
        raise ValueError(str(error).splitlines()[0] + f" (at {error.full_key})") from None


def plain(config: Any) -> Any:
    """A config dataclass as plain values (dicts, lists, enum names): what the run folder
    stores and the identity hashes, the same as the YAML Hydra composed."""
    return OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True)
