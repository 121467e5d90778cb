"""Varied network specs shared by the conformance and backend tests.

Each case is the keyword arguments of `dynapsim_net_from_spec` plus an input array; the
set covers 1/2/4 clusters, recurrent E/I, multi-spike steps, Idc-only drive, strong
adaptation, dt = 1e-4 and networks without `weights_in`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.physics.parameters import DEFAULT_CURRENTS

__all__ = ["Case", "CASES", "case_by_name"]


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]
    x: np.ndarray

    @property
    def multi_spike(self) -> bool:
        return self.name == "multi_spike"


def _poisson(rng: np.random.Generator, n_steps: int, n_channels: int, p: float) -> np.ndarray:
    return (rng.random((n_steps, n_channels)) < p).astype(np.float32)


def _signed_sparse(
    rng: np.random.Generator, n: int, density: float, low: int, high: int
) -> np.ndarray:
    mask = rng.random((n, n)) < density
    return (mask * rng.integers(low, high + 1, (n, n))).astype(np.float64)


def _cases() -> list[Case]:
    rng = np.random.default_rng(20261125)
    cases = []
    n = 24
    cases.append(Case("one_core_feedforward", dict(
        n_cluster=1, core_map=[0] * n, weights_in=rng.integers(0, 4, (8, n)), weights_rec=None,
        percent_mismatch=0.1, seed=11,
    ), _poisson(rng, 600, 8, 0.15)))  # fmt: skip

    n = 32
    core_map = [0] * 16 + [1] * 16
    w_rec = np.abs(_signed_sparse(rng, n, 0.2, 0, 3))
    w_rec[16:] *= -1  # rows are presynaptic: core 1 holds the inhibitory neurons
    cases.append(Case("two_core_recurrent_ei", dict(
        n_cluster=2, core_map=core_map, weights_in=rng.integers(0, 3, (6, n)), weights_rec=w_rec,
        Idc=[2e-10, 5e-13],
        Itau_mem=[DEFAULT_CURRENTS["Itau_mem"], 2 * DEFAULT_CURRENTS["Itau_mem"]],
        Igain_syn=[DEFAULT_CURRENTS["Igain_syn"], 0.5 * DEFAULT_CURRENTS["Igain_syn"]],
        percent_mismatch=0.2, seed=12,
    ), _poisson(rng, 800, 6, 0.1)))  # fmt: skip

    n = 48
    core_map = np.repeat(np.arange(4), 12)
    cases.append(Case("four_core_per_neuron_currents", dict(
        n_cluster=4, core_map=core_map, weights_in=rng.integers(0, 3, (10, n)),
        weights_rec=_signed_sparse(rng, n, 0.1, -2, 2),
        Idc=[np.linspace(1e-10, 6e-10, 12), 1e-10, 5e-13, 3e-10],
        Itau_syn=[DEFAULT_CURRENTS["Itau_syn"] * f for f in (1.0, 0.5, 2.0, 1.5)],
        Ispkthr=[1e-7, 5e-8, 2e-7, np.linspace(8e-8, 1.2e-7, 12)],
        percent_mismatch=0.15, seed=13,
    ), _poisson(rng, 600, 10, 0.1)))  # fmt: skip

    n = 16
    cases.append(Case("multi_spike", dict(
        n_cluster=1, core_map=[0] * n, weights_in=rng.integers(20, 60, (4, n)), weights_rec=None,
        Ispkthr=[2e-9], Idc=[5e-9], Iref=[DEFAULT_CURRENTS["Iref"] * 20],
        percent_mismatch=0.05, seed=14,
    ), _poisson(rng, 400, 4, 0.5)))  # fmt: skip

    n = 20
    cases.append(Case("idc_only", dict(
        n_cluster=1, core_map=[0] * n, weights_in=None, weights_rec=None,
        Idc=[np.linspace(5e-11, 5e-9, n)], percent_mismatch=0.1, seed=15,
    ), np.zeros((800, n), np.float32)))  # fmt: skip

    n = 20
    cases.append(Case("strong_adaptation", dict(
        n_cluster=1, core_map=[0] * n, weights_in=rng.integers(0, 4, (5, n)), weights_rec=None,
        Idc=[1e-9], Iw_ahp=[2e-9], Igain_ahp=[DEFAULT_CURRENTS["Igain_ahp"] * 20],
        percent_mismatch=0.1, seed=16,
    ), _poisson(rng, 1000, 5, 0.2)))  # fmt: skip

    n = 16
    cases.append(Case("dt_1e-4", dict(
        n_cluster=2, core_map=[0] * 8 + [1] * 8, weights_in=rng.integers(0, 5, (4, n)),
        weights_rec=_signed_sparse(rng, n, 0.2, -1, 2), Idc=[5e-10, 1e-9],
        dt=1e-4, percent_mismatch=0.1, seed=17,
    ), _poisson(rng, 3000, 4, 0.02)))  # fmt: skip

    n = 12
    analog = rng.uniform(0.0, 3.0, (700, n)).astype(np.float32)
    analog[rng.random(analog.shape) < 0.7] = 0.0
    cases.append(Case("no_weights_in_analog_input", dict(
        n_cluster=1, core_map=[0] * n, weights_in=None,
        weights_rec=_signed_sparse(rng, n, 0.3, -1, 1), percent_mismatch=0.3, seed=18,
    ), analog))  # fmt: skip
    return cases


CASES: list[Case] = _cases()


def case_by_name(name: str) -> Case:
    return next(case for case in CASES if case.name == name)
