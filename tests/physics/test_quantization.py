"""Weight quantization: hand-computed optima, the method's optimality conditions, Rockpool's
layout of the result, determinism, zero weights, 1 to 8 bits, and refused arguments."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from runner import NetworkSpec, Quantization, quantize_weights
from runner.physics import quantization as quantizer

ISCALE = 1e-8


def bits_of(n_bits: int) -> np.ndarray:
    """(2**n_bits, n_bits): the bits of every mask."""
    return (np.arange(2**n_bits)[:, None] >> np.arange(n_bits)) & 1


def base_weights(result: dict[str, Any], n_bits: int) -> np.ndarray:
    """(n_cluster, n_bits) in weight units: Iw_k / Iscale."""
    return np.array([result[f"Iw_{k}"] for k in range(n_bits)]).T / ISCALE


def sparse_normal(seed: int, shape: tuple[int, int], density: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * (rng.random(shape) < density)


def relative_error(weights: np.ndarray, restored: np.ndarray, columns: np.ndarray) -> float:
    return float(
        np.linalg.norm(weights[:, columns] - restored[:, columns])
        / np.linalg.norm(weights[:, columns])
    )


def test_one_bit_by_hand_drops_the_weights_nearer_zero() -> None:
    """One base weight b: each |w| in {1, 2, 3, 6} is 0 or b. By threshold, keeping {6}
    gives b = 6, loss 1+4+9 = 14; {3, 6}: b = 4.5, loss 1+4+2.25+2.25 = 9.5; {2, 3, 6}:
    b = 11/3, loss 9.67; all: b = 3, loss 14. The optimum b = 4.5 drops 1 and 2 (both
    nearer 0 than 4.5): their masks are 0, their signs 0, no CAM entry."""
    w_rec = np.array([[1.0, 0, -3], [0, 6, 0], [-2, 0, 0]])
    result = quantize_weights(None, w_rec, [0, 0, 0], Iscale=ISCALE, n_bits=1)

    np.testing.assert_array_equal(result["weights_rec"][0], [[0, 0, 1], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(result["sign_rec"][0], [[0, 0, -1], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(result["Iw_0"], [4.5 * ISCALE], rtol=1e-12)
    np.testing.assert_allclose(
        result["restored_rec"], [[0, 0, -4.5], [0, 4.5, 0], [0, 0, 0]], rtol=1e-12
    )
    np.testing.assert_allclose(result["quantization_loss"], [9.5 / 4], rtol=1e-12)
    assert result["weights_in"] == [None] and result["sign_in"] == [None]
    assert result["restored_in"] is None
    assert "Iw_1" not in result


def test_two_bits_by_hand_represent_two_cores_exactly() -> None:
    """Core 0 holds |w| in {1, 2, 3}, core 1 {0.5, 1, 1.5}: the levels {0, b0, b1, b0+b1}
    hold them exactly only for (b0, b1) = (1, 2) and (0.5, 1) (increasing order)."""
    w_in = np.array([[0, 3.0, 0, -1.5]])
    w_rec = np.array([[1.0, 0, -0.5, 0], [0, -2, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]])
    core_map = [0, 0, 1, 1]
    result = quantize_weights(w_in, w_rec, core_map, Iscale=ISCALE, n_bits=2)

    np.testing.assert_allclose(base_weights(result, 2), [[1, 2], [0.5, 1]], rtol=1e-12)
    np.testing.assert_array_equal(result["weights_in"][0], [[0, 3, 0, 0]])
    np.testing.assert_array_equal(result["weights_in"][1], [[0, 0, 0, 3]])
    np.testing.assert_array_equal(result["sign_in"][1], [[0, 0, 0, -1]])
    masks_rec = [[1, 0, 1, 0], [0, 2, 0, 2], [0, 0, 0, 0], [0, 1, 0, 0]]
    signs_rec = [[1, 0, -1, 0], [0, -1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]]
    np.testing.assert_array_equal(sum(result["weights_rec"]), masks_rec)
    np.testing.assert_array_equal(sum(result["sign_rec"]), signs_rec)
    np.testing.assert_allclose(result["restored_in"], w_in, rtol=1e-12)
    np.testing.assert_allclose(result["restored_rec"], w_rec, rtol=1e-12)
    assert max(result["quantization_loss"]) < 1e-24


@pytest.mark.parametrize("n_bits", range(1, 9))
def test_restored_weights_are_the_chips_formula(n_bits: int) -> None:
    """restored = sign * sum_k bit_k(mask) * Iw_k(core of the column) / Iscale, bit for bit;
    masks fit n_bits; Iw_0..Iw_{n_bits-1} increasing; per-core lists in Rockpool's layout."""
    core_map = np.repeat([0, 1, 2], [5, 7, 4])
    w_in = sparse_normal(1, (6, 16), 0.5)
    w_rec = sparse_normal(2, (16, 16), 0.3)
    result = quantize_weights(w_in, w_rec, core_map, Iscale=ISCALE, n_bits=n_bits)

    assert {key for key in result if key.startswith("Iw_")} == {f"Iw_{k}" for k in range(n_bits)}
    currents = np.array([result[f"Iw_{k}"] for k in range(n_bits)]).T  # (core, bit)
    assert (currents >= 0).all() and (np.diff(currents, axis=1) >= 0).all()
    for which, weights in (("in", w_in), ("rec", w_rec)):
        masks, signs = result[f"weights_{which}"], result[f"sign_{which}"]
        assert len(masks) == len(signs) == len(result["quantization_loss"]) == 3
        total_mask = np.zeros(weights.shape, dtype=np.int64)
        total_sign = np.zeros(weights.shape, dtype=np.int64)
        for core in range(3):
            assert masks[core].shape == signs[core].shape == weights.shape
            assert masks[core].dtype == np.int32 and signs[core].dtype == np.int8
            others = core_map != core
            assert not masks[core][:, others].any() and not signs[core][:, others].any()
            total_mask += masks[core]
            total_sign += signs[core]
        assert total_mask.min() >= 0 and total_mask.max() < 2**n_bits
        levels = np.zeros((3, 2**n_bits))
        for k in range(n_bits):  # bit by bit, as the chip (and Rockpool) sum them
            levels += bits_of(n_bits)[:, k] * currents[:, k : k + 1]
        expected = levels[core_map[None, :], total_mask] * total_sign / ISCALE
        np.testing.assert_array_equal(result[f"restored_{which}"], expected)


@pytest.mark.parametrize("n_bits", [1, 2, 4, 8])
def test_zero_weights_stay_absent_and_nonzero_ones_are_dropped_only_nearest_zero(
    n_bits: int,
) -> None:
    core_map = np.repeat([0, 1], 10)
    w_rec = sparse_normal(3, (20, 20), 0.4)
    result = quantize_weights(None, w_rec, core_map, Iscale=ISCALE, n_bits=n_bits)
    masks, signs = sum(result["weights_rec"]), sum(result["sign_rec"])

    absent = w_rec == 0
    assert not masks[absent].any() and not signs[absent].any()
    assert not result["restored_rec"][absent].any()
    connected = masks > 0
    np.testing.assert_array_equal(signs[connected], np.sign(w_rec[connected]))
    assert not signs[~connected].any()  # a dropped weight has no synapse type either
    smallest = np.array([result["Iw_0"][core] for core in core_map]) / ISCALE  # per column
    dropped = ~absent & ~connected
    if n_bits == 1:
        assert dropped.any(), "one bit drops the smallest weights"
    assert (np.abs(w_rec) <= smallest[None, :] / 2)[dropped].all()


@pytest.mark.parametrize("n_bits", [1, 3, 4, 6])
def test_masks_and_base_weights_are_each_optimal_given_the_other(n_bits: int) -> None:
    """The fixed point of the method: each connection has the nearest of its core's 2**n
    levels, and the base weights satisfy the KKT conditions of their least squares."""
    core_map = np.repeat([0, 1], [12, 20])
    w_in = sparse_normal(4, (8, 32), 0.6)
    w_rec = sparse_normal(5, (32, 32), 0.4)
    result = quantize_weights(w_in, w_rec, core_map, Iscale=ISCALE, n_bits=n_bits)
    base = base_weights(result, n_bits)

    for core in range(2):
        columns = core_map == core
        weights = np.vstack([w_in[:, columns], w_rec[:, columns]])
        masks = np.vstack([result["weights_in"][core], result["weights_rec"][core]])[:, columns]
        a, mask = np.abs(weights[weights != 0]), masks[weights != 0]
        levels = bits_of(n_bits) @ base[core]
        restored = levels[mask]
        nearest = np.min(np.abs(a[:, None] - levels[None, :]), axis=1)
        np.testing.assert_allclose(np.abs(a - restored), nearest, rtol=0, atol=1e-12)
        gradient = bits_of(n_bits)[mask].T @ (a - restored)  # -dL/db / 2
        used = bits_of(n_bits)[mask].any(axis=0)
        scale = np.sum(a)
        assert (np.abs(gradient[used & (base[core] > 0)]) < 1e-9 * scale).all()
        assert (gradient[used & (base[core] == 0)] < 1e-9 * scale).all()


def test_error_falls_with_every_bit() -> None:
    core_map = np.repeat([0, 1], 32)
    w_in = sparse_normal(6, (16, 64), 0.5)
    w_rec = sparse_normal(7, (64, 64), 0.2)
    weights = np.vstack([w_in, w_rec])
    errors = []
    for n_bits in range(1, 9):
        result = quantize_weights(w_in, w_rec, core_map, Iscale=ISCALE, n_bits=n_bits)
        restored = np.vstack([result["restored_in"], result["restored_rec"]])
        errors.append([relative_error(weights, restored, core_map == c) for c in range(2)])
    errors = np.array(errors)
    assert (np.diff(errors, axis=0) < 0).all(), errors
    assert errors[3].max() < 0.08  # 4 bits on normal weights: ~6 %


def assert_same_results(first: dict[str, Any], again: dict[str, Any]) -> None:
    assert first.keys() == again.keys()
    for key, value in first.items():
        for ours, theirs in zip(value, again[key], strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=key)


def test_same_input_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    core_map = np.repeat([0, 1, 2, 3], 16)
    w_in = sparse_normal(8, (10, 64), 0.5)
    w_rec = sparse_normal(9, (64, 64), 0.3)
    first = quantize_weights(w_in, w_rec, core_map)
    monkeypatch.setattr(quantizer, "_RECENT_FITS", OrderedDict())  # fitted again
    again = quantize_weights(np.asfortranarray(w_in), w_rec.copy(), list(core_map))

    assert_same_results(first, again)


def test_a_core_seen_before_is_not_fitted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The points of a sweep share their weights: each core is fitted once; the results are
    those of a fresh fit and independent of each other."""
    monkeypatch.setattr(quantizer, "_RECENT_FITS", OrderedDict())
    fits = []
    original = quantizer._Core.fit
    monkeypatch.setattr(quantizer._Core, "fit", lambda core, base: fits.append(1) or
                        original(core, base))  # fmt: skip
    core_map = np.repeat([0, 1], 20)
    w_rec = sparse_normal(3, (40, 40), 0.4)
    first = quantize_weights(None, w_rec, core_map, Iscale=ISCALE)
    n_fits = len(fits)
    again = quantize_weights(None, w_rec, core_map, Iscale=2 * ISCALE)  # the same cores
    first["Iw_0"][0] = -1.0  # no result shares the other's arrays

    assert n_fits > 0 and len(fits) == n_fits
    np.testing.assert_array_equal(again["restored_rec"], first["restored_rec"])
    fresh = quantize_weights(None, w_rec, core_map, Iscale=ISCALE)
    assert fresh["Iw_0"][0] > 0 and again["Iw_0"][0] == 2 * fresh["Iw_0"][0]


def test_a_core_without_connections_has_zero_base_weights() -> None:
    w_rec = np.zeros((6, 6))
    w_rec[0, 1] = 2.0
    result = quantize_weights(None, w_rec, [0, 0, 1, 1, 1, 1], n_cluster=3)

    assert len(result["Iw_0"]) == 3
    assert [result[f"Iw_{k}"][1] for k in range(4)] == [0.0] * 4
    assert [result[f"Iw_{k}"][2] for k in range(4)] == [0.0] * 4
    assert result["quantization_loss"][1:] == [0.0, 0.0]
    np.testing.assert_allclose(result["restored_rec"], w_rec, rtol=1e-12)


def test_no_weights_at_all_is_rockpools_empty_spec() -> None:
    result = quantize_weights(None, None, [0, 1])
    assert result["weights_in"] == result["weights_rec"] == [None, None]
    assert result["Iw_3"] == [0.0, 0.0] and result["restored_rec"] is None


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"n_bits": 0}, ValueError, r"n_bits must be an int in \[1, 9\), got 0"),
        ({"n_bits": 9}, ValueError, r"n_bits must be an int in \[1, 9\), got 9"),
        ({"n_bits": 2.0}, ValueError, "n_bits must be an int"),
        ({"n_bits": True}, ValueError, "n_bits must be an int"),
        ({"Iscale": 0.0}, ValueError, "Iscale must be > 0"),
        ({"weights_rec": np.ones((4, 3))}, ValueError, r"weights_rec must have shape \(4, 4\)"),
        ({"weights_in": np.ones(4)}, ValueError, r"weights_in must have shape \(Nin, 4\)"),
        ({"weights_in": np.full((2, 4), np.inf)}, ValueError, "weights_in must be finite"),
        ({"weights_rec": np.full((4, 4), np.nan)}, ValueError, "weights_rec must be finite"),
        ({"core_map": [0, 0, 1]}, ValueError, r"weights_rec must have shape \(3, 3\)"),
        ({"core_map": [0, -1, 0, 0]}, ValueError, "core_map ids must be >= 0"),
        ({"core_map": [0, 0.5, 0, 0]}, TypeError, "core_map must hold integer core ids"),
        ({"n_cluster": 1}, ValueError, r"core_map ids must be in \[0, n_cluster=1\)"),
    ],
)
def test_bad_arguments_are_named(change: dict[str, Any], error: type, match: str) -> None:
    arguments = {"weights_in": None, "weights_rec": np.eye(4), "core_map": [0, 0, 1, 1]}
    with pytest.raises(error, match=match):
        quantize_weights(**{**arguments, **change})


def quantization(**change: Any) -> Quantization:
    fields = {
        "n_bits": 2, "base_weights": [[1e-9, 2e-9], [3e-9, 4e-9]],
        "mask_rec": [[0, 3, 2], [1, 0, 0], [0, 0, 3]],
        "sign_rec": [[0, -1, 1], [1, 1, 0], [0, 0, -1]],
    }  # fmt: skip
    return Quantization(**{**fields, **change})


def test_a_spec_restores_its_weights_from_its_quantization() -> None:
    """Column 2 is core 1's: its masks select core 1's base weights (3 and 4 nA)."""
    spec = NetworkSpec.build(2, [0, 0, 1], None, None, {}, {}, quantization=quantization())

    np.testing.assert_allclose(
        spec.weights_rec, [[0, -0.3, 0.4], [0.1, 0, 0], [0, 0, -0.7]], rtol=1e-12
    )
    assert spec.weights_in is None and spec.quantization.mask_rec.dtype == np.int32
    q = quantization()
    with pytest.raises(ValueError, match="give the weights or their quantization, not both"):
        NetworkSpec.build(2, [0, 0, 1], None, np.eye(3), {}, {}, quantization=q)
    with pytest.raises(ValueError, match="base weights for 2 cores, the network n_cluster=3"):
        NetworkSpec.build(3, [0, 1, 2], None, None, {}, {}, quantization=q)
    with pytest.raises(ValueError, match=r"weights_rec masks must have one column per neuron"):
        NetworkSpec.build(2, [0, 0, 1, 1], None, None, {}, {}, quantization=q)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_bits": 9}, r"n_bits must be an int in \[1, 9\), got 9"),
        ({"base_weights": [[1e-9, 2e-9, 3e-9]]}, r"base weights must be \(n_cluster, n_bits=2\)"),
        ({"base_weights": [[1e-9, -2e-9]] * 2}, "Iw_0..Iw_1 must be >= 0"),
        ({"mask_rec": [[0, 4, 0]] * 3}, r"weights_rec masks must be ints in \[0, 3\].*got 4"),
        ({"mask_rec": [[0, 1, 0]] * 2, "sign_rec": [[0, 1, 0]] * 2}, "must be square"),
        ({"sign_rec": None}, "weights_rec masks and sign_rec come together"),
        ({"mask_in": [[1, 0, 0]], "sign_in": [[1, 0]]}, "must be 2-D of one shape"),
    ],
)
def test_a_quantization_is_checked_when_built(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        quantization(**change)
