"""Synaptic mismatch of a quantized network (`mismatch_weights=True`): each neuron's base
weights Iw_k,i deviate, the drive is sum_k (Iw_k,i / Iscale) * S_k,i. Checked against the
float network of one chip's deviated weights, refused for float weights."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from runner import DynapSimNetwork, dynapsim_net_from_spec
from runner.physics.mismatch import MismatchModel, sample_base_weights
from runner.physics.parameters import PARAMETER_NAMES

CORE_MAP = np.repeat([0, 1], 8)
REFUSAL = "mismatch_weights needs a quantized network"


def network(**extra: Any) -> DynapSimNetwork:
    """Two cores of 8 neurons, normal weights (mostly excitatory inputs)."""
    rng = np.random.default_rng(7)
    n, n_in = 16, 6
    return dynapsim_net_from_spec(
        2, CORE_MAP,
        weights_in=rng.normal(1.0, 1.0, (n_in, n)) * (rng.random((n_in, n)) < 0.8),
        weights_rec=rng.normal(0.0, 1.0, (n, n)) * (rng.random((n, n)) < 0.3),
        Idc=[2e-10, 2e-10], percent_mismatch=0.3, seed=3, **extra,
    )  # fmt: skip


def spikes_in(n_steps: int = 300) -> np.ndarray:
    return (np.random.default_rng(1).random((n_steps, 6)) < 0.15).astype(np.float32)


def chip_weights(net: DynapSimNetwork, chip: int) -> tuple[np.ndarray, np.ndarray]:
    """Chip `chip`'s float weights: W[j, i] = sign * sum_k bit_k * Iw_k,i / Iscale."""
    q, s = net.spec.quantization, net.spec
    drawn = net.parameters([chip])
    iw = np.stack([drawn[f"Iw_{k}"][0].astype(np.float64) for k in range(q.n_bits)])

    def restore(mask: np.ndarray, sign: np.ndarray) -> np.ndarray:
        bits = np.stack([(mask >> k) & 1 for k in range(q.n_bits)])  # (n_bits, rows, N)
        return sign * np.einsum("krn,kn->rn", bits, iw) / s.Iscale

    return restore(q.mask_in, q.sign_in), restore(q.mask_rec, q.sign_rec)


def test_parameters_report_each_neurons_base_weights() -> None:
    net = network(mismatch_weights=True).quantized(4)
    drawn = net.parameters([2, 5])
    assert set(drawn) == set(PARAMETER_NAMES) | {f"Iw_{k}" for k in range(4)}
    expected, _ = sample_base_weights(net.spec.quantization.base_weights, CORE_MAP,
                                      net.spec.mismatch, 3, [2, 5])  # fmt: skip
    for k in range(4):
        assert drawn[f"Iw_{k}"].shape == (2, 16)
        np.testing.assert_array_equal(drawn[f"Iw_{k}"], expected[:, k])
    assert not np.array_equal(drawn["Iw_3"][0, :8], drawn["Iw_3"][0, :1].repeat(8))
    plain = network().quantized(4).parameters([2, 5])
    assert set(plain) == set(PARAMETER_NAMES)
    for name in PARAMETER_NAMES:  # switching it on leaves the neuron parameters as they were
        np.testing.assert_array_equal(drawn[name], plain[name], err_msg=name)


def test_float_weights_are_refused_in_one_line() -> None:
    net = network(mismatch_weights=True)
    for call in (lambda: net.parameters([0]),
                 lambda: net.simulate(spikes_in(), 2, backend="reference")):  # fmt: skip
        with pytest.raises(ValueError, match=REFUSAL) as error:
            call()
        assert "\n" not in str(error.value) and "net.quantized(n_bits)" in str(error.value)


def test_reference_spikes_are_those_of_each_chips_deviated_float_weights() -> None:
    net = network(mismatch_weights=True).quantized(4)
    x = spikes_in()
    result = net.simulate(x, 3, backend="reference")
    assert result.spike_counts.sum() > 0
    plain = network().quantized(4).simulate(x, 3, backend="reference")
    assert not np.array_equal(result.spike_counts, plain.spike_counts)  # the weights deviate
    for chip in range(3):
        w_in, w_rec = chip_weights(net, chip)
        s = net.spec
        same_chip = dynapsim_net_from_spec(
            s.n_cluster, s.core_map, w_in, w_rec, Idc=[2e-10, 2e-10], percent_mismatch=0.3,
            seed=3,
        )  # fmt: skip
        expected = same_chip.simulate(x, 1, backend="reference", first_instance=chip)
        np.testing.assert_array_equal(result.spike_counts[chip], expected.spike_counts[0])


def test_zero_percent_is_the_quantized_network() -> None:
    x = spikes_in()
    on = network(mismatch_weights=True).quantized(4)
    off = network().quantized(4)
    a = DynapSimNetwork(replace(on.spec, mismatch=MismatchModel(percent=0.0, weights=True)))
    b = DynapSimNetwork(replace(off.spec, mismatch=MismatchModel()))
    a_counts = a.simulate(x, 2, backend="reference").spike_counts
    np.testing.assert_array_equal(a_counts, b.simulate(x, 2, backend="reference").spike_counts)


