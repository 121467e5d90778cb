"""The cuda backend against the reference and the cpu build; skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

from runner.backends import cpu, cuda, reference
from runner.mismatch import MismatchModel
from runner.model import PARAMETER_NAMES

from .cases import CASES
from .kernel_batches import batch_from_case, small_batch
from .test_cpu_backend import REDUCTIONS, assert_same_result

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cuda.unavailable() is not None, reason=str(cuda.unavailable())),
]


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
def test_gpu_matches_reference_on_conformance_cases(case):
    batch = batch_from_case(case, n_instances=3, bin_width=50, record_instances=(0, 2))
    # CUDA's expf/logf are not glibc's: traces agree to rounding, spikes unless knife-edge
    assert_same_result(reference.run(batch), cuda.run(batch), exact_traces=False)


def test_gpu_matches_cpu_and_ignores_chunking():
    batch = small_batch(n_neurons=200, n_steps=300, n_instances=9)
    whole = cuda.run(batch)
    assert_same_result(whole, cuda.run(batch, chunk_size=4))
    expected = cpu.run(batch)
    for name in REDUCTIONS:
        np.testing.assert_array_equal(getattr(whole, name), getattr(expected, name), err_msg=name)
