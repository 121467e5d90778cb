"""The cuda backend against the cpu build (bit for bit) and the reference; skipped without
a GPU. The contract is `assert_same_result`'s (tests/helpers/backends.py)."""

from __future__ import annotations

import numpy as np
import pytest

from runner.kernel.backends import cpu, cuda, reference
from runner.physics.mismatch import MismatchModel
from runner.physics.parameters import PARAMETER_NAMES
from tests.helpers.backends import assert_same_result
from tests.helpers.batches import batch_from_case, small_batch
from tests.helpers.cases import CASES
from tests.helpers.markers import requires_gpu

pytestmark = requires_gpu


@pytest.mark.parametrize("mismatch", [MismatchModel(percent=0.3),
                                      MismatchModel(percent=4.0, distribution="lognormal",
                                                    shared_fraction=0.5, nonphysical="clip")])
def test_gpu_draws_are_bitwise_those_of_sample_parameters(mismatch):
    batch = small_batch(n_neurons=300, n_steps=2, n_instances=5, mismatch=mismatch)
    expected, expected_bad = batch.sample_parameters()
    drawn, bad = cuda.draw_parameters(batch)
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(drawn[name].view(np.uint32), expected[name].view(np.uint32))
    np.testing.assert_array_equal(bad, expected_bad)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gpu_equals_cpu_bitwise_and_matches_reference_on_conformance_cases(case):
    batch = batch_from_case(case, n_instances=3, bin_width=50, record_instances=(0, 2))
    got = cuda.run(batch)
    assert_same_result(cpu.run(batch), got)  # traces included, bit for bit
    assert_same_result(reference.run(batch), got, exact_traces=False)


@pytest.mark.parametrize("n_neurons", [200, 1024, 2048])
def test_gpu_equals_cpu_bitwise_and_ignores_chunking(n_neurons):
    batch = small_batch(n_neurons=n_neurons, n_steps=200, n_instances=9)
    whole = cuda.run(batch)
    assert whole.spike_count.sum() > 0
    assert_same_result(whole, cuda.run(batch, chunk_size=4))
    assert_same_result(cpu.run(batch), whole)


def test_gpu_runs_the_largest_network():
    batch = small_batch(n_neurons=cuda.MAX_NEURONS, n_steps=20, n_instances=2,
                        record_instances=())  # fmt: skip
    assert_same_result(cpu.run(batch), cuda.run(batch))


def test_gpu_refuses_a_network_beyond_its_limit_before_any_work():
    batch = small_batch(n_neurons=cuda.MAX_NEURONS + 1, n_steps=2, n_instances=1)
    with pytest.raises(ValueError, match=f"1 to {cuda.MAX_NEURONS} neurons"):
        cuda.run(batch)
