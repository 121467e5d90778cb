"""Every malformed spec fails before any work, naming the field and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runner import dynapsim_net_from_spec
from runner.physics.parameters import CURRENT_NAMES, DEFAULT_CURRENTS, DEFAULT_LAYOUT, LAYOUT_NAMES


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


FLOAT32_AND_COMPLEX = [
    (dict(dt=1e-50), ValueError, r"dt=1e-50 is 0 or inf in float32"),
    (dict(Iscale=1e-60), ValueError, r"Iscale=1e-60 is 0 or inf in float32"),
    (dict(dt=1e39), ValueError, r"dt=1e\+39 is 0 or inf in float32"),
    (dict(Itau_mem=[1e-50, 1e-12]), ValueError, r"Itau_mem must be > 0 in float32"),
    (dict(C_mem=1e-50), ValueError, r"C_mem must be > 0 in float32"),
    (dict(Idc=[1e40, 0.0]), ValueError, r"Idc must fit in float32"),
    (dict(weights_in=np.full((3, 5), 1e39)), ValueError, r"weights_in must fit in float32"),
    (dict(weights_in=np.ones((3, 5)) * 1j), TypeError, r"weights_in must be numeric.*complex"),
    (dict(weights_rec=np.zeros((5, 5), complex)), TypeError, r"weights_rec must be .*complex"),
    (dict(Idc=[1e-12 + 0j, 0.0]), TypeError, r"Idc\[0\] must be numeric.*complex"),
    (dict(dt=1e-3 + 0j), TypeError, "dt must be a real number"),
    (dict(seed=2**64), ValueError, r"seed must be an int in \[0, 2\*\*64\)"),
    (dict(seed=1.0), ValueError, r"seed must be an int in \[0, 2\*\*64\)"),
]


@pytest.mark.parametrize("changes,error,message", FLOAT32_AND_COMPLEX, ids=lambda v: str(v)[:40])
def test_values_the_float32_model_cannot_hold_are_refused(
    changes: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        dynapsim_net_from_spec(**spec(**changes))


def test_unknown_keyword_suggests_and_lists_every_valid_name() -> None:
    with pytest.raises(TypeError) as error:
        dynapsim_net_from_spec(**spec(Itau_men=[1e-12, 1e-12]))
    message = str(error.value)
    assert "['Itau_men'] (did you mean 'Itau_mem'?)" in message
    others = ("n_cluster", "weights_rec", "dt", "seed", "mismatch_distribution", "nonphysical")
    for name in CURRENT_NAMES + LAYOUT_NAMES + others:
        assert name in message, name


X = np.ones((10, 3))
BAD_RUN_ARGUMENTS = [
    (dict(seed=2**70), r"seed must be an int in \[0, 2\*\*64\), got 1180591620717411303424"),
    (dict(seed=-1), r"seed must be an int in \[0, 2\*\*64\)"),
    (dict(seed=3.0), r"seed must be an int"),
    (dict(first_instance=-1), r"first_instance must be an int in \[0, "),
    (dict(first_instance=2**64 - 1), r"first_instance must be an int in \[0, 1\d{19}\)"),
    (dict(first_instance=1.5), "first_instance must be an int"),
    (dict(bin_width=-1), "bin_width must be an int >= 0"),
    (dict(bin_width=2.5), "bin_width must be an int >= 0"),
    (dict(record=[0, 2]), r"record must be an int in \[0, 2\), got 2"),
    (dict(record=[-1]), r"record must be an int in \[0, 2\)"),
    (dict(record="all"), "record must be True, False or a list of positions"),
    (dict(dtype=np.float16), "dtype must be np.float32 .* or np.float64 .*, got .*float16"),
    (dict(dtype="int32"), "dtype must be np.float32"),
    (dict(x=-X), r"x holds spike counts \(.*weights_in\), which must be >= 0, got -1"),
    (dict(x=X * 1j), "x must be real spike counts"),
]  # fmt: skip


@pytest.mark.parametrize("changes,message", BAD_RUN_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_simulate_validates_its_arguments_like_the_constructor(changes: dict, message: str) -> None:
    net = dynapsim_net_from_spec(**spec())
    arguments = {"x": X, "n_instances": 2, "backend": "reference"} | changes
    with pytest.raises((ValueError, TypeError), match=message):
        net.simulate(**arguments)


def test_negative_input_is_an_analog_current_without_weights_in() -> None:
    """Without weights_in, x is the weighted input itself: negative values are allowed."""
    net = dynapsim_net_from_spec(n_cluster=1, core_map=[0, 0, 0], weights_in=None,
                                 weights_rec=None, Idc=[1e-9])  # fmt: skip
    result = net.simulate(-X, n_instances=1, backend="reference")
    assert result.spike_counts.shape == (1, 3)


@pytest.mark.parametrize(
    "instances,seed,message",
    [
        ([0, -1], None, r"instances must be an int in \[0, 2\*\*64\), got -1"),
        ([0.5], None, r"instances must be an int"),
        ([2**64], None, r"instances must be an int"),
        ([[0, 1]], None, r"instances must be a non-empty 1-D list"),
        ([0], 2**70, r"seed must be an int in \[0, 2\*\*64\)"),
        ([0], -3, r"seed must be an int in \[0, 2\*\*64\)"),
    ],
)
def test_parameters_validates_instances_and_seed(instances, seed, message: str) -> None:
    net = dynapsim_net_from_spec(**spec(percent_mismatch=0.2))
    with pytest.raises(ValueError, match=message):
        net.parameters(instances, seed=seed)


def test_a_seed_is_not_aliased_modulo_2_64() -> None:
    """The bug: seed=2**70 ran as seed 0 while the result reported 2**70."""
    net = dynapsim_net_from_spec(**spec(percent_mismatch=0.2))
    top = net.simulate(X, 2, seed=2**64 - 1, backend="reference")
    assert top.seed == 2**64 - 1
    drawn = net.parameters([0, 1], seed=2**64 - 1)["Itau_mem"]
    assert not np.array_equal(drawn, net.parameters([0, 1], seed=0)["Itau_mem"])


def test_evolve_refuses_float16() -> None:
    net = dynapsim_net_from_spec(**spec())
    with pytest.raises(ValueError, match="dtype must be np.float32"):
        net.evolve(X, dtype=np.float16)
