"""The chip's limits: the dynapse2 profile, and every limit at and one over its bound."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runner import (
    HARDWARE_PROFILES,
    DynapSimNetwork,
    HardwareProfile,
    Quantization,
    check_hardware,
    dynapsim_net_from_spec,
    hardware_refusal,
)


def network(core_sizes: list[int], **weights: Any) -> DynapSimNetwork:
    core_map = np.repeat(np.arange(len(core_sizes)), core_sizes)
    return dynapsim_net_from_spec(len(core_sizes), core_map, **weights)


def fan_in(n_neurons: int, n_inputs: int, incoming: dict[int, tuple[int, int]]) -> dict:
    """Weights where neuron j gets incoming[j] = (from inputs, from neurons) connections."""
    w_in = np.zeros((n_inputs, n_neurons))
    w_rec = np.zeros((n_neurons, n_neurons))
    for neuron, (from_inputs, from_neurons) in incoming.items():
        w_in[:from_inputs, neuron] = 1.5
        w_rec[:from_neurons, neuron] = -0.5
    return {"weights_in": w_in, "weights_rec": w_rec}


def test_dynapse2_is_the_chip() -> None:
    chip = HARDWARE_PROFILES["dynapse2"]
    assert (chip.neurons_per_core, chip.cores_per_chip, chip.cam_entries) == (256, 4, 64)
    assert (chip.weight_bits, chip.base_weights) == (4, 4)


def test_64_incoming_connections_fit_and_65_do_not() -> None:
    """Input and recurrent sources share the 64 CAM entries; zero weights take none."""
    weights = fan_in(64, 40, {1: (40, 24), 5: (40, 25), 6: (10, 54)})
    net = network([64], **weights)
    assert check_hardware(net) == [
        "neuron 5 (core 0) has 65 incoming connections; the chip allows 64"
    ]
    weights["weights_rec"][24, 5] = 0.0  # a zero weight is no connection
    assert check_hardware(network([64], **weights)) == []


def test_refusal_line_is_the_first_violation_and_how_many_are_over() -> None:
    weights = fan_in(40, 64, {3: (64, 3), 17: (64, 7), 30: (60, 8)})
    net = network([40], **weights)

    assert check_hardware(net) == [
        "neuron 3 (core 0) has 67 incoming connections; the chip allows 64",
        "neuron 17 (core 0) has 71 incoming connections; the chip allows 64",
        "neuron 30 (core 0) has 68 incoming connections; the chip allows 64",
    ]
    assert hardware_refusal(net) == (
        "neuron 3 (core 0) has 67 incoming connections; the chip allows 64 (3 neurons over)"
    )
    assert hardware_refusal(network([40])) is None


def test_256_neurons_per_core_fit_and_257_do_not() -> None:
    assert check_hardware(network([256, 256, 256, 256])) == []
    net = network([256, 257, 10])
    assert check_hardware(net) == ["core 1 has 257 neurons; the chip allows 256 per core"]
    assert hardware_refusal(net.spec).endswith("(1 core over)")


def test_4_cores_fit_and_5_do_not() -> None:
    assert check_hardware(network([3, 3, 3, 3])) == []
    net = network([3, 3, 3, 3, 3])
    assert check_hardware(net) == ["the network uses 5 cores; the chip has 4"]
    assert hardware_refusal(net) == "the network uses 5 cores; the chip has 4 (1 core too many)"


def test_every_kind_of_violation_is_listed_and_counted() -> None:
    weights = fan_in(300, 70, {0: (70, 0), 299: (64, 1)})
    net = dynapsim_net_from_spec(6, [5] * 280 + [0] * 20, **weights)

    assert check_hardware(net) == [
        "the network uses 6 cores; the chip has 4",
        "core 5 has 280 neurons; the chip allows 256 per core",
        "neuron 0 (core 5) has 70 incoming connections; the chip allows 64",
        "neuron 299 (core 0) has 65 incoming connections; the chip allows 64",
    ]
    assert hardware_refusal(net) == (
        "the network uses 6 cores; the chip has 4 (2 cores too many, 1 core over, 2 neurons over)"
    )


def quantized_network(n_bits: int, masks: np.ndarray) -> DynapSimNetwork:
    n = masks.shape[1]
    quantization = Quantization(
        n_bits=n_bits, base_weights=np.full((2, n_bits), 1e-9),
        mask_rec=masks, sign_rec=np.where(masks > 0, 1, 0),
    )  # fmt: skip
    return dynapsim_net_from_spec(
        2, [0] * (n // 2) + [1] * (n - n // 2), weights_rec=quantization.mask_rec,
        sign_rec=quantization.sign_rec,
        **{f"Iw_{k}": list(quantization.base_weights[:, k]) for k in range(n_bits)},
    )  # fmt: skip


def test_masks_beyond_the_chips_bits_are_violations() -> None:
    masks = np.zeros((6, 6), dtype=int)
    masks[0, :3] = 15
    assert check_hardware(quantized_network(4, masks)) == []

    masks[1, 0], masks[2, 4], masks[3, 5] = 16, 31, 20
    net = quantized_network(5, masks)
    assert check_hardware(net) == [
        "the weights select among 5 base weights per core (Iw_0..Iw_4); the chip has 4",
        "core 0 has 1 connections with masks above 15; the chip's weights are 4-bit",
        "core 1 has 2 connections with masks above 15; the chip's weights are 4-bit",
    ]
    assert hardware_refusal(net).endswith("(1 base weight too many, 3 connections over)")


def test_a_quantized_network_counts_masks_not_float_weights() -> None:
    """A weight quantized to mask 0 is no connection any more: it frees its CAM entry."""
    weights = fan_in(4, 70, {2: (65, 0)})
    weights["weights_in"][:2, 2] = 0.01  # two tiny weights, dropped by one bit
    net = network([4], **weights)
    assert check_hardware(net) == [
        "neuron 2 (core 0) has 65 incoming connections; the chip allows 64"
    ]
    assert check_hardware(net.quantized(n_bits=1)) == []


def test_profiles_are_checked_and_named() -> None:
    small = HardwareProfile("small", neurons_per_core=2, cores_per_chip=1, cam_entries=1,
                            weight_bits=1, base_weights=1)  # fmt: skip
    net = network([2], weights_rec=np.eye(2))
    assert check_hardware(net, small) == []
    with pytest.raises(ValueError, match="unknown hardware profile 'dynapse'.*dynapse2"):
        check_hardware(net, "dynapse")
    with pytest.raises(ValueError, match=r"bad.cam_entries must be an int >= 1, got 0"):
        HardwareProfile("bad", 256, 4, 0, 4, 4)
    with pytest.raises(TypeError, match="expected a DynapSimNetwork or a NetworkSpec"):
        check_hardware({"weights_rec": np.eye(2)})
