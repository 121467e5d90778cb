"""Quantized networks: `net.quantized()`, quantized specs given to `dynapsim_net_from_spec`,
and, against Rockpool 3.1, spike-for-spike runs and the quality of the quantization.

Rockpool 3.1 simulates a quantized spec only through a samna configuration
(`config_from_specification` -> `dynapsim_net_from_config`); its own
`dynapsim_net_from_spec` takes float weights. Its reference here is therefore the code that
`dynapsim_net_from_config` restores the weights with (`ParameterHandler`, masks + dendrites
+ each neuron's Iw_0..Iw_3), fed to its `dynapsim_net_from_spec`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from runner import DynapSimNetwork, dynapsim_net_from_spec, quantize_weights
from runner.kernel.backends import cpu
from runner.physics.parameters import CURRENT_NAMES, DEFAULT_CURRENTS, PARAMETER_NAMES

conformance = pytest.mark.conformance
BACKENDS = [
    "reference",
    pytest.param(
        "cpu", marks=pytest.mark.skipif(cpu.unavailable() is not None, reason="no compiler")
    ),
]
CORE_MAP = np.repeat([0, 1], 8)


def float_network(seed: int = 7, **extra: Any) -> DynapSimNetwork:
    """Two cores of 8 neurons, normal weights (mostly excitatory inputs), DC drive: spikes."""
    rng = np.random.default_rng(seed)
    n, n_in = 16, 6
    return dynapsim_net_from_spec(
        2, CORE_MAP,
        weights_in=rng.normal(1.0, 1.0, (n_in, n)) * (rng.random((n_in, n)) < 0.8),
        weights_rec=rng.normal(0.0, 1.0, (n, n)) * (rng.random((n, n)) < 0.3),
        Idc=[2e-10, 1e-10], **extra,
    )  # fmt: skip


def poisson(seed: int, n_steps: int = 600, n_inputs: int = 6) -> np.ndarray:
    return (np.random.default_rng(seed).random((n_steps, n_inputs)) < 0.15).astype(np.float32)


def chip_form(result: dict[str, Any]) -> dict[str, Any]:
    """A quantize_weights result as a spec's keys (the restored weights are not part of it)."""
    return {key: value for key, value in result.items() if not key.startswith("restored")}


def test_quantized_network_keeps_the_network_and_restores_its_weights() -> None:
    net = float_network(percent_mismatch=0.2, seed=5)
    quantized = net.quantized(n_bits=3)
    spec, q = quantized.spec, quantized.spec.quantization
    expected = quantize_weights(net.spec.weights_in, net.spec.weights_rec, CORE_MAP, n_bits=3)

    assert net.spec.quantization is None and q is not None and q.n_bits == 3
    np.testing.assert_array_equal(spec.weights_in, expected["restored_in"])
    np.testing.assert_array_equal(spec.weights_rec, expected["restored_rec"])
    np.testing.assert_array_equal(q.mask_rec, sum(expected["weights_rec"]))
    np.testing.assert_array_equal(q.sign_in, sum(expected["sign_in"]))
    np.testing.assert_array_equal(q.base_weights[:, 2], expected["Iw_2"])
    assert (spec.mismatch, spec.seed, spec.dt, spec.Iscale) == (
        net.spec.mismatch, net.spec.seed, net.spec.dt, net.spec.Iscale)  # fmt: skip
    chips, quantized_chips = net.parameters([0, 3]), quantized.parameters([0, 3])
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(quantized_chips[name], chips[name], err_msg=name)
    assert "n_bits=3" in repr(quantized)
    with pytest.raises(ValueError, match=r"n_bits must be an int in \[1, 9\), got 0"):
        net.quantized(0)


def test_a_quantized_spec_builds_the_quantized_network() -> None:
    """Rockpool's per-core lists and one matrix per key give the same network."""
    net = float_network()
    quantized = net.quantized()
    result = quantize_weights(net.spec.weights_in, net.spec.weights_rec, CORE_MAP)
    per_core = dynapsim_net_from_spec(2, CORE_MAP, Idc=[2e-10, 1e-10], **chip_form(result))
    combined = {key: sum(value) if key.startswith(("weights", "sign")) else value
                for key, value in chip_form(result).items()}  # fmt: skip
    one_matrix = dynapsim_net_from_spec(2, CORE_MAP, Idc=[2e-10, 1e-10], **combined)

    for built in (per_core, one_matrix):
        np.testing.assert_array_equal(built.spec.weights_in, quantized.spec.weights_in)
        np.testing.assert_array_equal(built.spec.weights_rec, quantized.spec.weights_rec)
        np.testing.assert_array_equal(built.spec.quantization.mask_in, sum(result["weights_in"]))
        np.testing.assert_array_equal(
            built.spec.quantization.base_weights, quantized.spec.quantization.base_weights
        )
    x = poisson(1)
    np.testing.assert_array_equal(per_core.evolve(x)[0], quantized.evolve(x)[0])


def quantized_spec(**change: Any) -> dict[str, Any]:
    """A small quantized spec (2 cores of 2 neurons, 4 bits), with `change` applied."""
    spec = {
        "n_cluster": 2, "core_map": [0, 0, 1, 1],
        "weights_rec": [np.array([[0, 3, 0, 0]] * 4), np.array([[0, 0, 15, 0]] * 4)],
        "sign_rec": [np.array([[0, 1, 0, 0]] * 4), np.array([[0, 0, -1, 0]] * 4)],
        **{f"Iw_{k}": [1e-9 * 2**k, 2e-9 * 2**k] for k in range(4)},
    }  # fmt: skip
    return {**spec, **change}


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"weights_rec": [np.array([[0, 3, 1, 0]] * 4), np.array([[0, 0, 15, 0]] * 4)]},
         ValueError, r"weights_rec\[0\] is non-zero at \[0, 2\], a column of core 1"),
        ({"sign_rec": None}, ValueError, "weights_rec masks and sign_rec come together"),
        ({"Iw_3": ["a", 1e-9]}, TypeError, "Iw_3 must hold numbers"),
        ({"Iw_3": None}, ValueError, r"weights_rec masks must be ints in \[0, 7\] \(n_bits=3\)"),
        ({"Iw_1": [1e-9]}, ValueError, r"Iw_1 must have one current per core \(n_cluster=2\)"),
        ({"Iw_0": [1e-9, -1e-9]}, ValueError, "Iw_0..Iw_3 must be >= 0"),
        ({"Iw_0": [1e-9, np.nan]}, ValueError, "Iw_0..Iw_3 must be finite"),
        ({"Iw_4": [0.0, 0.0], "Iw_6": [0.0, 0.0]}, ValueError,
         "needs its base weights Iw_0..Iw_{n_bits-1}.*got Iw_0, Iw_1, Iw_2, Iw_3, Iw_4, Iw_6"),
        ({"weights_rec": [np.array([[0, 16, 0, 0]] * 4), np.array([[0, 0, 15, 0]] * 4)]},
         ValueError, r"weights_rec masks must be ints in \[0, 15\] \(n_bits=4\), got 16"),
        ({"sign_rec": [np.array([[0, 1, 0, 0]] * 4), np.zeros((4, 4))]},
         ValueError, r"sign_rec must be \+1 or -1 where weights_rec has a mask.*\[0, 2\]"),
        ({"sign_rec": [np.array([[0, 2, 0, 0]] * 4), np.zeros((4, 4))]},
         ValueError, "sign_rec must be -1, 0 or 1, got 2"),
        ({"weights_rec": [np.zeros((4, 4)), None]}, ValueError, "got None for some cores only"),
        ({"weights_rec": [np.zeros((4, 4))] * 3}, ValueError,
         r"n_cluster=2 such matrices, got shape \(3, 4, 4\)"),
        ({"weights_in": np.zeros((2, 3))}, ValueError, r"one \(rows, N=4\) matrix"),
        ({"n_neuron": 5}, ValueError, "n_neuron=5 does not match core_map, which has 4 neurons"),
        ({"Iw_8": [0.0, 0.0]}, TypeError, r"unknown argument\(s\) \['Iw_8'\]"),
    ],
)  # fmt: skip
def test_a_bad_quantized_spec_is_named(change: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        dynapsim_net_from_spec(**quantized_spec(**change))


def test_quantized_spec_without_its_base_weights_says_so() -> None:
    spec = quantized_spec()
    for k in range(4):
        del spec[f"Iw_{k}"]
    with pytest.raises(ValueError, match="needs its base weights Iw_0.*got none"):
        dynapsim_net_from_spec(**spec)
    del spec["sign_rec"]
    with pytest.raises(ValueError, match="per-core masks are a quantized spec: give its Iw_0"):
        dynapsim_net_from_spec(**spec)


def test_rockpools_other_spec_keys_are_accepted() -> None:
    net = dynapsim_net_from_spec(
        **quantized_spec(quantization_loss=[0.1, 0.2], mapped_graph=object(), n_neuron=4,
                         unclustered={"Idc": np.zeros(4)}),
    )  # fmt: skip
    np.testing.assert_allclose(net.spec.weights_rec[:, 1], 3e-9 / 1e-8)
    np.testing.assert_allclose(net.spec.weights_rec[:, 2], -30e-9 / 1e-8)


@pytest.fixture(scope="module")
def rockpool() -> Any:
    return pytest.importorskip("rockpool.devices.dynapse")


@conformance
@pytest.mark.parametrize("backend", BACKENDS)
def test_quantized_network_spikes_as_its_rockpool_module(rockpool: Any, backend: str) -> None:
    """Rockpool's module of the quantized network holds the restored float weights."""
    quantized = float_network().quantized()
    x = poisson(2)
    module = quantized.to_rockpool(0)
    spikes, _, _ = quantized.evolve(x, backend=backend)
    their_spikes = np.asarray(module(x)[0])[0]

    np.testing.assert_array_equal(
        np.asarray(module[0].weight), quantized.spec.weights_in.astype(np.float32)
    )
    np.testing.assert_array_equal(
        np.asarray(module[1].w_rec), quantized.spec.weights_rec.astype(np.float32)
    )
    assert spikes.sum() > 0 and not np.array_equal(spikes, float_network().evolve(x)[0])
    np.testing.assert_array_equal(spikes, their_spikes)


def rockpool_restored(spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rockpool's restoration of a quantized spec: dynapsim_net_from_config's code
    (ParameterHandler), given the masks, the dendrites of the signs and each neuron's Iw."""
    from rockpool.devices.dynapse.dynapsim_net.from_config.parameter import ParameterHandler
    from rockpool.devices.dynapse.hardware.config.allocator import WeightAllocator

    dendrites = np.vectorize(WeightAllocator.get_dendrite)
    handler = ParameterHandler(
        sum(spec["weights_in"]), dendrites(sum(spec["sign_in"])),
        sum(spec["weights_rec"]), dendrites(sum(spec["sign_rec"])),
        [(0, int(core)) for core in spec["core_map"]],
    )  # fmt: skip
    trace = [[np.array([spec[f"Iw_{k}"][int(core)] for k in range(4)], dtype=np.float64)]
             for core in spec["core_map"]]  # fmt: skip
    return (
        handler.get_scaled_weights_in(trace, spec["Iscale"]),
        handler.get_scaled_weights_rec(trace, spec["Iscale"]),
    )


@pytest.fixture(scope="module")
def rockpool_quantized(rockpool: Any) -> dict[str, Any]:
    """Rockpool's pipeline on `float_network()`: its network -> mapper ->
    autoencoder_quantization (300 epochs), and its network of the restored weights."""
    net = float_network()
    currents = {name: [DEFAULT_CURRENTS[name]] * 2 for name in CURRENT_NAMES}
    currents["Idc"] = [2e-10, 1e-10]
    module = rockpool.dynapsim_net_from_spec(
        2, CORE_MAP, net.spec.weights_in, net.spec.weights_rec, **currents
    )
    spec = rockpool.mapper(module.as_graph(), n_cluster=2)
    np.random.seed(2026)  # Rockpool's autoencoder starts from NumPy's global RNG
    spec.update(rockpool.autoencoder_quantization(**spec, fixed_epoch=True, num_epoch=300))
    weights_in, weights_rec = rockpool_restored(spec)
    restored = rockpool.dynapsim_net_from_spec(
        spec["n_cluster"], spec["core_map"], weights_in, weights_rec,
        **{name: spec[name] for name in CURRENT_NAMES}, Iscale=spec["Iscale"],
    )  # fmt: skip
    return {"spec": spec, "weights_in": weights_in, "weights_rec": weights_rec,
            "module": restored}  # fmt: skip


@conformance
@pytest.mark.parametrize("backend", BACKENDS)
def test_rockpool_quantized_spec_spikes_as_rockpool(
    rockpool_quantized: dict[str, Any], backend: str
) -> None:
    """Rockpool's quantized spec, taken as it is by `dynapsim_net_from_spec`: the weights
    are Rockpool's restored ones to the last bit, the spikes those of its network of them."""
    ours = dynapsim_net_from_spec(**rockpool_quantized["spec"])
    x = poisson(3)
    spikes, _, _ = ours.evolve(x, backend=backend)

    np.testing.assert_array_equal(ours.spec.weights_in, rockpool_quantized["weights_in"])
    np.testing.assert_array_equal(ours.spec.weights_rec, rockpool_quantized["weights_rec"])
    assert ours.spec.quantization.n_bits == 4
    assert spikes.sum() > 0
    np.testing.assert_array_equal(spikes, np.asarray(rockpool_quantized["module"](x)[0])[0])


def per_core_errors(weights: np.ndarray, restored: np.ndarray, core_map: np.ndarray) -> np.ndarray:
    """Relative Frobenius error of each core's columns (input and recurrent rows stacked)."""
    return np.array([
        np.linalg.norm(weights[:, core_map == c] - restored[:, core_map == c])
        / np.linalg.norm(weights[:, core_map == c])
        for c in range(int(core_map.max()) + 1)
    ])  # fmt: skip


@conformance
@pytest.mark.parametrize("seed", [11, 12])
def test_quantization_is_at_least_as_good_as_rockpools(rockpool: Any, seed: int) -> None:
    """Normal weights, two cores; Rockpool bounded to 3000 epochs (~10 s), ours to its fixed
    point. Per core, our relative Frobenius error is at most Rockpool's."""
    rng = np.random.default_rng(seed)
    core_map = np.repeat([0, 1], [24, 40])
    w_in = rng.standard_normal((16, 64)) * (rng.random((16, 64)) < 0.5)
    w_rec = rng.standard_normal((64, 64)) * (rng.random((64, 64)) < 0.25)
    weights = np.vstack([w_in, w_rec])
    ours = quantize_weights(w_in, w_rec, core_map)
    started = time.perf_counter()
    np.random.seed(seed)  # Rockpool's autoencoder starts from NumPy's global RNG
    theirs = rockpool.autoencoder_quantization(
        2, core_map, w_in, w_rec, Iscale=1e-8, fixed_epoch=True, num_epoch=3000
    )
    assert time.perf_counter() - started < 120, "Rockpool's run is meant to be bounded"
    spec = chip_form(theirs)
    restored = dynapsim_net_from_spec(2, core_map, **spec).spec

    our_errors = per_core_errors(
        weights, np.vstack([ours["restored_in"], ours["restored_rec"]]), core_map
    )
    their_errors = per_core_errors(
        weights, np.vstack([restored.weights_in, restored.weights_rec]), core_map
    )
    assert (our_errors <= their_errors).all(), (our_errors, their_errors)
