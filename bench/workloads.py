"""The benchmark workloads: networks and stimuli as a user builds them (public API).

Each workload is a network from `dynapsim_net_from_spec` with quantized integer weights and
a Poisson stimulus, shared by all instances (T, Nin) or one per instance (K, T, Nin), the
way `net.simulate(x, K)` is called. Shared by bench_backends.py and gpu_check.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.data.weights import ei_network  # noqa: E402
from runner.kernel.batch import Batch  # noqa: E402
from runner.network.dynapsim import DynapSimNetwork, dynapsim_net_from_spec  # noqa: E402
from runner.physics.parameters import DEFAULT_CURRENTS  # noqa: E402

__all__ = ["Workload", "SUITE", "workload_by_name", "one_core"]


@dataclass(frozen=True)
class Workload:
    """A network, a stimulus and how instances receive it."""

    name: str
    description: str
    n_cores: int
    neurons_per_core: int
    n_inputs: int
    input_rate_hz: float
    n_steps: int = 1000
    per_instance_inputs: bool = False
    ei: bool = False  # 80/20 E/I cores (ei_network); else random signed recurrence
    recurrent_density: float = 0.05
    input_value: float = 1.0  # an input event's value (1: spike counts)
    currents: dict[str, list[Any]] = field(default_factory=dict)  # per-core overrides
    dt: float = 1e-3
    seed: int = 2026

    @property
    def n_neurons(self) -> int:
        return self.n_cores * self.neurons_per_core

    def with_steps(self, n_steps: int) -> Workload:
        return Workload(**{**self.__dict__, "n_steps": n_steps})

    def network(self) -> DynapSimNetwork:
        rng = np.random.default_rng(self.seed)
        n = self.n_neurons
        core_map = np.repeat(np.arange(self.n_cores), self.neurons_per_core)
        if self.ei:
            weights = ei_network(core_map, n_inputs=self.n_inputs, seed=self.seed)
        else:
            shape_in, shape_rec = (self.n_inputs, n), (n, n)
            w_in = (rng.random(shape_in) < 0.25) * rng.integers(1, 4, shape_in)
            w_rec = (rng.random(shape_rec) < self.recurrent_density) * rng.choice(
                [-2, -1, 1, 2], shape_rec
            )
            weights = {"weights_in": w_in, "weights_rec": w_rec}
        return dynapsim_net_from_spec(
            self.n_cores, core_map, **weights, **self.currents, percent_mismatch=0.1,
            dt=self.dt, seed=self.seed,
        )  # fmt: skip

    def inputs(self, n_instances: int) -> np.ndarray:
        """Poisson spike counts: (T, Nin), or (K, T, Nin) with per-instance inputs."""
        rng = np.random.default_rng(self.seed + 1)
        shape = (self.n_steps, self.n_inputs)
        if self.per_instance_inputs:
            shape = (n_instances, *shape)
        events = rng.random(shape) < self.input_rate_hz * self.dt
        return events.astype(np.float32) * np.float32(self.input_value)

    def batch(self, network: DynapSimNetwork, x: np.ndarray, n_instances: int) -> Batch:
        """What `network.simulate(x, n_instances)` hands its backend."""
        return network.batch(x, np.arange(n_instances, dtype=np.uint64), self.seed)


def _per_core(n_cores: int, **factors: float) -> dict[str, list[float]]:
    return {name: [DEFAULT_CURRENTS[name] * f] * n_cores for name, f in factors.items()}


def one_core(n_neurons: int, **options: Any) -> Workload:
    """The base network: one core, 64 inputs at 20 Hz, shared stimulus."""
    fields = dict(name=f"n{n_neurons}", description=f"N={n_neurons}, 1 core, 64 inputs at 20 Hz",
                  n_cores=1, neurons_per_core=n_neurons, n_inputs=64, input_rate_hz=20.0)
    return Workload(**{**fields, **options})  # fmt: skip


SUITE = (
    one_core(256, name="n256_one_core"),
    one_core(256, name="n256_per_instance_inputs", per_instance_inputs=True,
             description="N=256, 1 core, 64 inputs at 20 Hz, one stimulus per instance"),
    Workload("n1024_ei_4core", "N=1024, 4 cores 80/20 E/I, 256 inputs at 10 Hz per instance",
             n_cores=4, neurons_per_core=256, n_inputs=256, input_rate_hz=10.0, ei=True,
             per_instance_inputs=True),
    one_core(256, name="low_rate", input_rate_hz=5.0, recurrent_density=0.01,
             currents=_per_core(1, Igain_syn=0.03),
             description="N=256, 1 core, 64 inputs at 5 Hz, weak synapses: ~7 Hz firing"),
    one_core(256, name="high_rate_multi_spike", input_rate_hz=50.0,
             currents={"Ispkthr": [2e-9], "Idc": [5e-9], "Iref": [DEFAULT_CURRENTS["Iref"] * 20]},
             description="N=256, 1 core, 64 inputs at 50 Hz, low threshold: multi-spike steps"),
    one_core(256, name="analog_inputs", input_value=0.75,
             description="N=256, 1 core, 64 inputs at 20 Hz of value 0.75: not integer counts"),
    one_core(256, name="strong_adaptation",
             currents={"Idc": [1e-9], "Iw_ahp": [2e-9],
                       "Igain_ahp": [DEFAULT_CURRENTS["Igain_ahp"] * 20]},
             description="N=256, 1 core, 64 inputs at 20 Hz, DC drive, strong AHP adaptation"),
)  # fmt: skip


def workload_by_name(name: str) -> Workload:
    return next(w for w in SUITE if w.name == name)
