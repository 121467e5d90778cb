"""Every backend on the same batches: what a first GPU run must get right.

Parametrised over reference, cpu, the threaded cpu build and cuda (skipped without a
device); sizes span one warp to several warps with several neurons per thread. Agreement
with the reference follows the contract in `tests/helpers/backends.py`; a backend against
itself (chunks, packing, recording) is bit for bit. Each backend runs each named batch once
(`backend_result`): the tests that check different things of one run share it.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from runner.kernel.backends import reference
from runner.kernel.batch import Batch, BatchResult, Variant
from runner.kernel.reductions import reduce_raster
from runner.physics.mismatch import MismatchModel
from tests.helpers.backends import (
    BACKENDS_UNDER_TEST,
    REDUCTIONS,
    SAME_BACKEND,
    BackendUnderTest,
    assert_draws_match_sampler,
    assert_results_agree,
    instances_alone,
    record_chunk_sizes,
)
from tests.helpers.batches import nominal_for, small_batch

SIZES = (48, 200, 1024)


@pytest.fixture(params=BACKENDS_UNDER_TEST)
def backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    return request.param


@functools.cache
def sized_batch(n_neurons: int) -> Batch:
    return small_batch(n_neurons=n_neurons, n_steps=120, n_instances=5, record_instances=(0, 3))


@functools.cache
def reference_result(name: str) -> BatchResult:
    with warnings.catch_warnings():  # the blown-up instances warn in NumPy
        warnings.simplefilter("ignore", RuntimeWarning)
        return reference.run(NAMED_BATCHES[name]())


@functools.cache
def backend_result(backend: BackendUnderTest, name: str) -> BatchResult:
    """`backend` on the named batch, run once (tests only read results)."""
    if backend.name == "reference":
        return reference_result(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return backend.run(NAMED_BATCHES[name]())


def assert_reductions_follow_raster(result: BatchResult, bin_width: int) -> None:
    """The on-the-fly reductions of a recorded instance are what its raster implies."""
    assert result.raster
    for k, raster in result.raster.items():
        implied = reduce_raster(raster[None], bin_width)
        for name, value in implied.items():
            np.testing.assert_array_equal(getattr(result, name)[k], value[0], err_msg=name)


SWEEP_INSTANCES = 7


@functools.cache
def sweep_batch(n_instances: int = SWEEP_INSTANCES) -> Batch:
    """Three sweep points in one batch: other biases, Iscale, mismatch model and percent."""
    core_map = (np.arange(200) * 2 // 200).astype(np.int32)
    variants = (
        Variant(nominal_for(core_map, {"Idc": [2e-10, 1e-10]}), 1e-8, MismatchModel(0.2)),
        Variant(nominal_for(core_map, {"Idc": [5e-10, 5e-13], "Itau_mem": [4e-12, 2e-12]}),
                2e-8, MismatchModel(0.4, "lognormal", shared_fraction=0.3)),
        Variant(nominal_for(core_map, {"Idc": [1e-10, 3e-10]}), 1e-8,
                MismatchModel(0.1, parameters=("Itau_mem", "Ispkthr", "Vth"))),
    )  # fmt: skip
    return small_batch(n_neurons=200, n_steps=150, n_instances=n_instances, variants=variants,
                       record_instances=(2, n_instances - 1))  # fmt: skip


def nonphysical_batch(policy: str) -> Batch:
    """Mismatch wide enough that some instances draw negative currents: kept, they blow up."""
    return small_batch(n_neurons=48, n_steps=100, n_instances=8, record_instances=(0, 1),
                       mismatch=MismatchModel(percent=1.2, nonphysical=policy))  # fmt: skip


NAMED_BATCHES = {
    **{f"n{n}": functools.partial(sized_batch, n) for n in SIZES},
    "sweep": sweep_batch,
    "keep": functools.partial(nonphysical_batch, "keep"),
    "clip": functools.partial(nonphysical_batch, "clip"),
}


@pytest.mark.parametrize("n_neurons", SIZES)
def test_agrees_with_reference(backend, n_neurons):
    batch = sized_batch(n_neurons)
    got = backend_result(backend, f"n{n_neurons}")
    assert (got.spike_count > 1).mean() > 0.5  # active enough for ISIs and bins to matter
    assert_results_agree(reference_result(f"n{n_neurons}"), got, backend.contract)
    assert_reductions_follow_raster(got, batch.bin_width)


@pytest.mark.parametrize("n_neurons", SIZES)
def test_kernel_draws_are_bitwise_those_of_sample_parameters(backend, n_neurons):
    if backend.draw is None:
        pytest.skip(f"{backend.name} samples with sample_parameters itself")
    batch = sweep_batch() if n_neurons == 200 else sized_batch(n_neurons)
    assert_draws_match_sampler(batch, backend.draw)


def test_a_packed_sweep_equals_its_points_run_alone(backend):
    batch = sweep_batch()
    packed = backend_result(backend, "sweep")
    assert_results_agree(reference_result("sweep"), packed, backend.contract)
    for index in range(len(batch.variants)):
        rows = np.flatnonzero(batch.instance_variant == index)
        alone = backend.run(instances_alone(batch, rows))
        for name in (*REDUCTIONS, "nonfinite_step", "nonphysical"):
            np.testing.assert_array_equal(getattr(alone, name), getattr(packed, name)[rows], name)


def test_memory_driven_chunks_change_nothing(backend, monkeypatch):
    if not backend.chunks:
        pytest.skip(f"{backend.name} runs a batch whole")
    chunk = backend.force_small_chunks(monkeypatch, sweep_batch())
    batch = sweep_batch(max(7, 3 * chunk + 1))  # at least 3 chunks, records across them
    sizes = record_chunk_sizes(monkeypatch)
    chunked = backend.run(batch)
    assert len(sizes) >= 3 and sum(sizes) == batch.n_instances
    monkeypatch.undo()
    whole = (backend_result(backend, "sweep") if batch.n_instances == SWEEP_INSTANCES
             else backend.run(batch))  # fmt: skip
    assert_results_agree(whole, chunked, SAME_BACKEND)


def test_recording_changes_no_result(backend):
    batch = sized_batch(200)
    recorded = backend_result(backend, "n200")
    unrecorded = backend.run(instances_alone(batch, np.arange(batch.n_instances)))
    assert not unrecorded.raster and sorted(recorded.raster) == [0, 3]
    for name in (*REDUCTIONS, "nonfinite_step", "nonphysical"):
        np.testing.assert_array_equal(getattr(recorded, name), getattr(unrecorded, name), name)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_instances_are_flagged_and_contained(backend):
    batch = nonphysical_batch("keep")
    expected, got = reference_result("keep"), backend_result(backend, "keep")
    blown = expected.nonfinite_step >= 0
    assert blown.any() and not blown.all()  # the case really mixes both
    np.testing.assert_array_equal(got.nonfinite_step >= 0, blown)
    np.testing.assert_array_equal(got.nonphysical, expected.nonphysical)
    finite = np.flatnonzero(~blown)
    for name in REDUCTIONS:
        np.testing.assert_array_equal(getattr(got, name)[finite], getattr(expected, name)[finite])
    # a blown-up neighbour changes nothing of a finite instance
    alone = backend.run(instances_alone(batch, finite))
    for name in REDUCTIONS:
        np.testing.assert_array_equal(getattr(alone, name), getattr(got, name)[finite], name)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_step_is_the_references(backend):
    """A neuron whose Ispkthr drew negative has a NaN spike count (as in Rockpool): the
    instance is non-finite from that step on every backend."""
    got = backend_result(backend, "keep")
    np.testing.assert_array_equal(got.nonfinite_step, reference_result("keep").nonfinite_step)


def test_clipped_instances_stay_finite(backend):
    got = backend_result(backend, "clip")
    assert (got.nonfinite_step == -1).all()
    np.testing.assert_array_equal(got.nonphysical, reference_result("keep").nonphysical)
    assert got.nonphysical.sum() > 0
    assert_results_agree(reference_result("clip"), got, backend.contract)
