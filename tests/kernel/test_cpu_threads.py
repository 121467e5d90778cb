"""The GPU's multi-thread block path, run on the CPU: a block's threads as fibers.

The threaded build gives each block DYN_NTHREADS threads (fibers that switch at barriers, in
an order that reverses at each barrier) in warps whose ballots and shuffles portability.h
emulates (per-warp scratch and barriers), so the interleaved neuron
ownership, the warp-scan spike exchange, every barrier and the block reductions run as on a
GPU; results must equal the one-thread build bit for bit.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from runner.kernel.backends import cpu
from runner.physics.mismatch import MismatchModel
from runner.physics.parameters import PARAMETER_NAMES
from tests.helpers.backends import assert_same_result
from tests.helpers.batches import small_batch
from tests.helpers.cli import run_process
from tests.helpers.markers import requires_compiler

pytestmark = requires_compiler


# (N, threads, warp size): several warps, >= 3 neurons per thread, N not a multiple of 32,
# padding slots (N < NPT * threads), full GPU warps of 32 for the larger networks
SHAPES = [(48, 16, 4), (48, 8, 4), (200, 64, 32), (200, 96, 32), (1024, 256, 32)]


@pytest.mark.parametrize(("n_neurons", "threads", "warp"), SHAPES)
def test_threaded_blocks_equal_one_thread_blocks(n_neurons, threads, warp):
    n_steps = 150 if n_neurons < 1000 else 25
    batch = small_batch(n_neurons=n_neurons, n_steps=n_steps, n_instances=2,
                        mismatch=MismatchModel(percent=0.3, shared_fraction=0.3))  # fmt: skip
    one = cpu.run(batch)
    assert (one.spike_count > 0).sum() > n_neurons // 2  # many spikes per step to exchange
    assert_same_result(one, cpu.run(batch, threads_per_block=threads, warp_size=warp))


# some (7) or all (18) of the per-neuron factors in shared memory, as the cuda backend puts
# them where a shape's registers cannot hold them (N = 2048 on a GPU)
@pytest.mark.parametrize(("n_neurons", "threads", "warp", "factors"),
                         [(48, 16, 4, 7), (200, 64, 32, 18)])  # fmt: skip
def test_factors_in_shared_memory_change_no_bit(n_neurons, threads, warp, factors):
    batch = small_batch(n_neurons=n_neurons, n_steps=150, n_instances=2,
                        mismatch=MismatchModel(percent=0.3, shared_fraction=0.3))  # fmt: skip
    one = cpu.run(batch)
    assert (one.spike_count > 0).sum() > n_neurons // 2
    threaded = cpu.run(batch, threads_per_block=threads, warp_size=warp, shared_factors=factors)
    assert_same_result(one, threaded)


def test_threaded_blocks_count_nonphysical_samples_alike():
    batch = small_batch(n_neurons=40, n_steps=30, n_instances=3,
                        mismatch=MismatchModel(percent=3.0, shared_fraction=0.3))  # fmt: skip
    one = cpu.run(batch)
    assert one.nonphysical.sum() > 0
    assert_same_result(one, cpu.run(batch, threads_per_block=16, warp_size=4))


def test_threaded_draws_equal_one_thread_draws():
    batch = small_batch(n_neurons=40, n_steps=1, mismatch=MismatchModel(percent=0.5))
    drawn, bad = cpu.draw_parameters(batch)
    threaded, threaded_bad = cpu.draw_parameters(batch, threads_per_block=12, warp_size=4)
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
    assert_same_result(one, cpu.run(batch, threads_per_block=64))


def test_threaded_shapes_must_be_whole_warps():
    with pytest.raises(ValueError, match="whole warps"):
        cpu.build(48, 20)
    with pytest.raises(ValueError, match="at most warp_size warps"):
        cpu.build(48, 24, warp_size=4)


def test_builds_of_other_warp_sizes_run_in_one_process(tmp_path):
    """A build with warps of 4 loaded first, then one with warps of 32, in a fresh process:
    each keeps its own warp scratch and barriers (inline variables would be merged across
    the loaded builds, and the second would write past the first's arrays)."""
    probe = (
        "from runner.kernel.backends import cpu\n"
        "from tests.helpers.batches import small_batch\n"
        "for n, threads, warp in ((48, 16, 4), (200, 64, 32)):\n"
        "    batch = small_batch(n_neurons=n, n_steps=20, n_instances=2)\n"
        "    same = cpu.run(batch).spike_count == cpu.run(batch, threads_per_block=threads,\n"
        "                                                  warp_size=warp).spike_count\n"
        "    print(bool(same.all()))\n"
    )
    result = run_process([sys.executable, "-c", probe], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True"]
