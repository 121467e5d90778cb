"""The kernel's synaptic mismatch (DYN_SYN_BITS builds): draws bitwise those of
`sample_base_weights`, the synaptic input current bitwise the reference's, spikes equal to
the reference's and bitwise equal across the cpu and threaded builds; the GPU source
compiles (NVRTC) without spills, and builds without synaptic mismatch are the same source."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from runner import DynapSimNetwork, dynapsim_net_from_spec
from runner.kernel import kernel_calls
from runner.kernel.backends import cpu, reference
from runner.kernel.batch import REDUCTION_FIELDS, Batch, BatchResult
from runner.physics.mismatch import MismatchModel

pytestmark = pytest.mark.skipif(cpu.unavailable() is not None, reason="no compiler")
N_INSTANCES = 3


def network(recurrent: bool = True, inputs: bool = True, **extra: object) -> DynapSimNetwork:
    """Two cores of 10 neurons (20: padding slots in the threaded build), 5 inputs."""
    rng = np.random.default_rng(11)
    n, n_in = 20, 5
    return dynapsim_net_from_spec(
        2, np.repeat([0, 1], 10),
        weights_in=rng.normal(1.0, 1.0, (n_in, n)) * (rng.random((n_in, n)) < 0.8) if inputs
        else None,
        weights_rec=rng.normal(0.0, 1.0, (n, n)) * (rng.random((n, n)) < 0.3) if recurrent
        else None,
        Idc=[2e-10, 2e-10], percent_mismatch=0.3, seed=4, **{"mismatch_weights": True, **extra},
    ).quantized(4)  # fmt: skip


def batch_of(net: DynapSimNetwork, n_steps: int = 250) -> Batch:
    n_in = net.spec.n_inputs
    rng = np.random.default_rng(2)
    x = (rng.random((N_INSTANCES, n_steps, n_in)) < 0.15).astype(np.float32)
    if net.spec.weights_in is None:
        x *= np.float32(3.0)
    return net.batch(x, np.arange(5, 5 + N_INSTANCES), net.spec.seed,
                     record_instances=range(N_INSTANCES))  # fmt: skip


def assert_same(a: BatchResult, b: BatchResult) -> None:
    for name in REDUCTION_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for k in a.traces:
        np.testing.assert_array_equal(a.raster[k], b.raster[k])
        for name, values in a.traces[k].items():
            np.testing.assert_array_equal(values, b.traces[k][name], err_msg=name)


CASES = {
    "gaussian": {},
    "lognormal shared": {"mismatch_distribution": "lognormal", "mismatch_shared_fraction": 0.5},
    "clip": {"nonphysical": "clip"},
}


@pytest.mark.parametrize("case", CASES)
def test_spikes_and_input_current_are_the_references(case: str) -> None:
    batch = batch_of(network(**CASES[case]))
    expected, got = reference.run(batch), cpu.run(batch)
    assert got.spike_count.sum() > 0
    np.testing.assert_array_equal(got.spike_count, expected.spike_count)
    np.testing.assert_array_equal(got.nonphysical, expected.nonphysical)
    for k in range(N_INSTANCES):  # the drive is exact: isyn to the last bit
        np.testing.assert_array_equal(got.traces[k]["isyn"], expected.traces[k]["isyn"])


def test_large_percent_counts_nonphysical_base_weights_as_the_mirror() -> None:
    batch = batch_of(network(), n_steps=20)
    wide = MismatchModel(percent=3.0, weights=True)
    batch = replace(batch, variants=tuple(replace(v, mismatch=wide) for v in batch.variants))
    expected = reference.run(batch).nonphysical
    assert expected.sum() > 0
    np.testing.assert_array_equal(cpu.run(batch).nonphysical, expected)


@pytest.mark.parametrize("shape", [dict(recurrent=False), dict(inputs=False)])
def test_networks_without_a_matrix(shape: dict) -> None:
    batch = batch_of(network(**shape))
    expected, got = reference.run(batch), cpu.run(batch)
    assert got.spike_count.sum() > 0
    np.testing.assert_array_equal(got.spike_count, expected.spike_count)


def test_threaded_build_is_bitwise_the_one_thread_build() -> None:
    batch = batch_of(network())
    assert_same(cpu.run(batch, threads_per_block=8, warp_size=4), cpu.run(batch))


def test_sparse_rows_of_signed_masks_are_bitwise_the_dense_bit_planes() -> None:
    batch = batch_of(network())
    flags = kernel_calls.SparseRows.REC | kernel_calls.SparseRows.IN
    assert_same(cpu.run(batch, sparse=flags), cpu.run(batch, sparse=0))


def test_only_synaptic_batches_get_the_define() -> None:
    plain = network(mismatch_weights=False)
    assert kernel_calls.synaptic_bits(batch_of(plain, 2)) == 0
    assert "DYN_SYN_BITS" not in kernel_calls.defines(20, 1)
    assert kernel_calls.synaptic_bits(batch_of(network(), 2)) == 4
    assert kernel_calls.defines(20, 1, syn_bits=4)["DYN_SYN_BITS"] == 4
