"""Every malformed spec fails before any work, naming the field and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runner import dynapsim_net_from_spec
from runner.model import DEFAULT_CURRENTS, DEFAULT_LAYOUT


def spec(**changes: Any) -> dict[str, Any]:
    base = dict(n_cluster=2, core_map=[0, 0, 0, 1, 1], weights_in=np.ones((3, 5)),
                weights_rec=np.zeros((5, 5)))  # fmt: skip
    base.update(changes)
    return base


def test_valid_spec_expands_per_cluster_lists() -> None:
    net = dynapsim_net_from_spec(
        **spec(Idc=[1e-9, [2e-9, 3e-9]], Itau_mem=[np.array([1e-12, 2e-12, 3e-12]), 4e-12])
    )
    np.testing.assert_array_equal(net.spec.nominal["Idc"], [1e-9, 1e-9, 1e-9, 2e-9, 3e-9])
    np.testing.assert_array_equal(net.spec.nominal["Itau_mem"], [1e-12, 2e-12, 3e-12, 4e-12, 4e-12])
    assert net.spec.nominal["Ispkthr"][0] == DEFAULT_CURRENTS["Ispkthr"]
    assert net.spec.nominal["C_mem"][0] == DEFAULT_LAYOUT["C_mem"]


def test_iw_ahp_and_layout_overrides_are_honoured() -> None:
    net = dynapsim_net_from_spec(
        **spec(Iw_ahp=[1e-10, 2e-10], C_mem=np.arange(1, 6) * 1e-12, Vth=0.6)
    )
    np.testing.assert_array_equal(net.spec.nominal["Iw_ahp"], [1e-10] * 3 + [2e-10] * 2)
    np.testing.assert_array_equal(net.spec.nominal["C_mem"], np.arange(1, 6) * 1e-12)
    assert (net.spec.nominal["Vth"] == 0.6).all()


BAD_SPECS = [
    (dict(core_map=[0, 0, 0, 1]), ValueError, r"weights_in must have shape \(Nin, 4\)"),
    (dict(core_map=[0, 0, 0, 1, 2]), ValueError, r"core_map ids must be in \[0, n_cluster=2\)"),
    (dict(core_map=[0, 0, -1, 1, 1]), ValueError, r"core_map ids must be in"),
    (dict(core_map=[[0, 1]]), ValueError, "core_map must be a non-empty 1-D"),
    (dict(core_map=[0.5, 0, 0, 1, 1]), TypeError, "core_map must hold integer"),
    (dict(n_cluster=0), ValueError, "n_cluster must be >= 1"),
    (dict(n_cluster=2.0), TypeError, "n_cluster must be an int"),
    (dict(Idc=[1e-9]), ValueError, r"Idc must have n_cluster=2 entries, got 1"),
    (dict(Idc=1e-9), TypeError, "Idc must be a list with one entry per cluster"),
    (
        dict(Itau_mem=[[1e-12, 1e-12], 1e-12]),
        ValueError,
        r"Itau_mem\[0\] must be a scalar or an array of the 3 neurons",
    ),
    (dict(Idc=[float("nan"), 1e-9]), ValueError, "Idc must be finite"),
    (dict(Ispkthr=[1e-7, float("inf")]), ValueError, "Ispkthr must be finite"),
    (dict(Itau_syn=[0.0, 1e-11]), ValueError, r"Itau_syn must be > 0"),
    (dict(Idc=[-1e-9, 0.0]), ValueError, r"Idc must be >= 0"),
    (dict(C_mem=-3e-12), ValueError, r"C_mem must be > 0"),
    (
        dict(C_ref=np.ones(4) * 1e-12),
        ValueError,
        r"C_ref must be a scalar or an array of the 5 neurons",
    ),
    (dict(weights_in=np.ones((3, 4))), ValueError, r"weights_in must have shape \(Nin, 5\)"),
    (dict(weights_in=np.ones(5)), ValueError, r"weights_in must have shape"),
    (dict(weights_rec=np.ones((5, 4))), ValueError, r"weights_rec must have shape \(5, 5\)"),
    (dict(weights_rec=np.full((5, 5), np.nan)), ValueError, "weights_rec must be finite"),
    (dict(weights_in=np.full((3, 5), np.inf)), ValueError, "weights_in must be finite"),
    (dict(dt=0.0), ValueError, r"dt must be > 0"),
    (dict(dt=-1e-3), ValueError, r"dt must be > 0"),
    (dict(dt=float("nan")), ValueError, "dt must be finite"),
    (dict(Iscale=0.0), ValueError, r"Iscale must be > 0"),
    (dict(percent_mismatch=-0.1), ValueError, r"percent_mismatch must be >= 0"),
    (dict(percent_mismatch="ten"), TypeError, "percent_mismatch must be a real number"),
    (dict(seed=-1), ValueError, "seed must be an int"),
    (dict(Ibogus=1.0), TypeError, r"unknown argument\(s\) \['Ibogus'\]"),
    (dict(mismatch_distribution="cauchy"), ValueError, "distribution must be one of"),
]


@pytest.mark.parametrize("changes,error,message", BAD_SPECS, ids=lambda v: str(v)[:40])
def test_bad_spec_is_rejected_with_its_field(changes: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        dynapsim_net_from_spec(**spec(**changes))


@pytest.mark.parametrize(
    "x,message",
    [
        (np.zeros((10, 4)), r"x must have shape \(T, Nin=3\)"),
        (np.zeros(10), r"x must have shape"),
        (np.zeros((2, 3, 10, 3)), r"x must have shape"),
        (np.zeros((0, 3)), r"x must have shape"),
        (np.full((10, 3), np.nan), "x must be finite"),
    ],
)
def test_bad_inputs_are_rejected(x: np.ndarray, message: str) -> None:
    net = dynapsim_net_from_spec(**spec())
    with pytest.raises(ValueError, match=message):
        net.evolve(x)
    with pytest.raises(ValueError, match=message):
        net.simulate(x, 2, backend="reference")


def test_per_instance_input_must_match_n_instances() -> None:
    net = dynapsim_net_from_spec(**spec())
    with pytest.raises(ValueError, match=r"\(n_instances=3, T, 3\)"):
        net.simulate(np.zeros((2, 10, 3)), 3, backend="reference")
    with pytest.raises(ValueError, match="n_instances must be an int >= 1"):
        net.simulate(np.zeros((10, 3)), 0, backend="reference")


def test_input_without_weights_in_is_per_neuron() -> None:
    net = dynapsim_net_from_spec(**spec(weights_in=None))
    with pytest.raises(ValueError, match=r"N \(no weights_in\)=5"):
        net.evolve(np.zeros((10, 3)))


def test_unknown_backend_is_rejected() -> None:
    net = dynapsim_net_from_spec(**spec())
    with pytest.raises(ValueError, match="backend must be one of"):
        net.simulate(np.zeros((10, 3)), 2, backend="fpga")
