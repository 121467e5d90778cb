"""The GPU's multi-thread block path, run on the CPU with real threads and barriers.

The threaded build gives each block DYN_NTHREADS std::threads (NPT < N, padding slots
included), so the shared-memory spike exchange, the prefix sum, every barrier and the
block reductions run as on a GPU; results must equal the one-thread build bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from runner.backends import cpu
from runner.mismatch import MismatchModel
from runner.model import PARAMETER_NAMES

from .kernel_batches import small_batch
from .test_cpu_backend import assert_same_result

pytestmark = pytest.mark.skipif(cpu.unavailable() is not None, reason=str(cpu.unavailable()))


@pytest.mark.parametrize("threads_per_block", [2, 3, 4])
def test_threaded_blocks_equal_one_thread_blocks(threads_per_block):
    batch = small_batch(n_neurons=40, n_steps=150, n_instances=3,
                        mismatch=MismatchModel(percent=3.0, shared_fraction=0.3))  # fmt: skip
    one = cpu.run(batch)
    assert one.spike_count.sum() > 100 and one.nonphysical.sum() > 0
    assert_same_result(one, cpu.run(batch, threads_per_block=threads_per_block))


def test_threaded_draws_equal_one_thread_draws():
    batch = small_batch(n_neurons=40, n_steps=1, mismatch=MismatchModel(percent=0.5))
    drawn, bad = cpu.draw_parameters(batch)
    threaded, threaded_bad = cpu.draw_parameters(batch, threads_per_block=3)
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(drawn[name], threaded[name])
    np.testing.assert_array_equal(bad, threaded_bad)


@pytest.mark.parametrize("has_w_in", [True, False])
def test_register_blocked_drive_equals_row_loops(has_w_in):
    # one-thread builds sum the drive of the first N // 256 * 256 neurons (N // 64 * 64
    # without AVX-512) in register blocks and the rest in the row loops the threaded build
    # uses for all: the sums must agree bit for bit, with and without input weights
    overrides = {} if has_w_in else {"weights_in": None}
    batch = small_batch(n_neurons=300, n_steps=120, n_instances=2, **overrides)
    one = cpu.run(batch)
    assert one.spike_count[:, :256].sum() > 100 and one.spike_count[:, 256:].sum() > 10
    assert_same_result(one, cpu.run(batch, threads_per_block=2))
