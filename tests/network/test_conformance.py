"""Conformance with Rockpool 3.1: same per-neuron parameters, same spikes, close traces.

Rockpool runs `net.to_rockpool(0)`: its own module holding the parameters of our mismatch
instance 0 (Rockpool drops Iw_ahp and draws mismatch from an unseeded global RNG, so the
module is given both explicitly; tests/network/test_rockpool.py checks that this module is
the one Rockpool's `dynapsim_net_from_spec` builds). Spike rasters must be identical step
by step; analog traces agree to ~1e-2 relative (exp/log differ by an ulp between libraries).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from runner import DynapSimNetwork, dynapsim_net_from_spec
from runner.physics.parameters import CURRENT_NAMES, DEFAULT_CURRENTS, DEFAULT_LAYOUT
from tests.helpers.cases import CASES, Case, case_by_name
from tests.helpers.markers import requires_compiler, requires_rockpool

pytestmark = requires_rockpool

# Below these magnitudes a relative error means nothing (A for currents, V for vmem).
TRACE_FLOOR = {"isyn": 1e-14, "iahp": 1e-14, "imem": 1e-14, "vmem": 1e-3}
TRACE_RTOL = 1e-2


def rockpool_evolve(net: DynapSimNetwork, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Run Rockpool's own module of our mismatch instance 0."""
    spikes, _, record = net.to_rockpool(0)(x, record=True)
    record = record if net.spec.weights_in is None else record["1_DynapSim"]
    return np.asarray(spikes)[0], {k: np.asarray(v)[0] for k, v in record.items()}


@functools.cache
def rockpool_run(name: str) -> tuple[np.ndarray, dict]:
    """`rockpool_evolve` of a case's network, run once for every backend compared with it."""
    case = case_by_name(name)
    return rockpool_evolve(dynapsim_net_from_spec(**case.spec), case.x)


def relative_error(ours: np.ndarray, theirs: np.ndarray, floor: float) -> float:
    scale = np.maximum(np.maximum(np.abs(ours), np.abs(theirs)), floor)
    return float(np.max(np.abs(ours - theirs) / scale))


BACKENDS = ["reference", pytest.param("cpu", marks=requires_compiler)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_backend_matches_rockpool(case: Case, backend: str) -> None:
    net = dynapsim_net_from_spec(**case.spec)
    spikes, _, record = net.evolve(case.x, backend=backend)
    their_spikes, their_record = rockpool_run(case.name)

    assert spikes.sum() > 0, "a case that never spikes tests nothing"
    np.testing.assert_array_equal(spikes, their_spikes)
    if case.multi_spike:
        assert spikes.max() > 1
    for name, floor in TRACE_FLOOR.items():
        assert relative_error(record[name], their_record[name], floor) < TRACE_RTOL, name


def test_default_currents_match_rockpool() -> None:
    from rockpool.devices.dynapse import lookup

    theirs = dict(lookup.default_currents)
    theirs["Igain_syn"], theirs["Itau_syn"] = theirs["Igain_ampa"], theirs["Itau_ampa"]
    for name in CURRENT_NAMES:
        assert DEFAULT_CURRENTS[name] == theirs[name], name
    layout = dict(lookup.default_layout, C_syn=lookup.default_layout["C_ampa"])
    for name, value in DEFAULT_LAYOUT.items():
        assert value == layout[name], name
