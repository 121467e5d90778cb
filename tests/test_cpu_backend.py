"""The cpu backend (kernels/dynapsim.cu built for the host) against the reference backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from runner.backends import cpu, reference
from runner.batch import BatchResult, Variant
from runner.mismatch import MismatchModel
from runner.model import PARAMETER_NAMES
from runner.reductions import reduce_raster

from .backend_helpers import CROSS_BACKEND, SAME_BACKEND, assert_results_agree
from .cases import CASES
from .kernel_batches import batch_from_case, nominal_for, small_batch

pytestmark = pytest.mark.skipif(cpu.unavailable() is not None, reason=str(cpu.unavailable()))

REDUCTIONS = ("spike_count", "first_spike_step", "last_spike_step", "spiking_steps",
              "isi_sumsq", "binned_counts", "nonfinite_step", "nonphysical")  # fmt: skip


def assert_same_result(a: BatchResult, b: BatchResult, exact_traces: bool = True) -> None:
    """Bit for bit (one backend), or within the cross-backend contract (backend_helpers)."""
    assert_results_agree(a, b, SAME_BACKEND if exact_traces else CROSS_BACKEND)


def assert_bitwise_parameters(batch) -> None:
    expected, expected_bad = batch.sample_parameters()
    drawn, bad = cpu.draw_parameters(batch)
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(drawn[name].view(np.uint32),
                                      expected[name].view(np.uint32), err_msg=name)  # fmt: skip
    np.testing.assert_array_equal(bad, expected_bad)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cpu_matches_reference_on_conformance_cases(case):
    batch = batch_from_case(case, n_instances=3, bin_width=50, record_instances=(0, 2))
    assert_bitwise_parameters(batch)
    expected, got = reference.run(batch), cpu.run(batch)
    assert expected.spike_count.sum() > 0
    assert_same_result(expected, got, exact_traces=False)
    # the kernel's on-the-fly reductions are what its own raster implies
    for k, raster in got.raster.items():
        implied = reduce_raster(raster[None], batch.bin_width)
        for name, value in implied.items():
            np.testing.assert_array_equal(getattr(got, name)[k], value[0], err_msg=name)


@pytest.mark.parametrize(
    "mismatch",
    [
        MismatchModel(percent=0.3),
        MismatchModel(percent=0.3, distribution="lognormal"),
        MismatchModel(percent=0.3, shared_fraction=0.4),
        MismatchModel(percent=0.3, distribution="lognormal", shared_fraction=1.0),
        MismatchModel(percent=0.2, parameters=("Itau_mem", "Igain_syn", "Io", "Ut", "C_mem")),
        MismatchModel(percent=4.0, nonphysical="keep"),
        MismatchModel(percent=4.0, nonphysical="clip"),
        MismatchModel(percent=0.0),
        MismatchModel(percent=0.5, parameters=()),
    ],
    ids=[
        "gaussian",
        "lognormal",
        "shared",
        "lognormal_all_shared",
        "subset",
        "keep",
        "clip",
        "zero",
        "no_parameters",
    ],  # fmt: skip
)
def test_kernel_draws_are_bitwise_those_of_sample_parameters(mismatch):
    batch = small_batch(n_neurons=40, n_steps=2, n_instances=5, mismatch=mismatch)
    batch = dataclasses.replace(batch, instances=np.array([0, 1, 2**32 + 5, 7, 2**40], np.uint64))
    assert_bitwise_parameters(batch)
    if mismatch.nonphysical == "keep" and mismatch.percent > 1:
        assert cpu.draw_parameters(batch)[1].sum() > 0  # the case really has negative draws


def test_clip_policy_runs_like_the_reference():
    batch = small_batch(n_steps=150, mismatch=MismatchModel(percent=1.5, nonphysical="clip"))
    expected, got = reference.run(batch), cpu.run(batch)
    assert got.nonphysical.sum() > 0
    np.testing.assert_array_equal(got.nonphysical, expected.nonphysical)
    np.testing.assert_array_equal(got.spike_count, expected.spike_count)


def test_recurrent_batch_with_per_instance_streams_matches_reference():
    batch = small_batch(n_neurons=48, n_steps=300, n_instances=5)
    expected, got = reference.run(batch), cpu.run(batch)
    assert (expected.spike_count > 1).sum() > 20  # neurons with intervals: ISI stats matter
    assert_same_result(expected, got, exact_traces=False)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_blow_up_is_flagged_at_the_same_step():
    # finite weights whose sum overflows float32 when two input events meet in one step
    batch = small_batch(n_steps=60, n_instances=3, input_scale=1e38, record_instances=())
    expected, got = reference.run(batch), cpu.run(batch)
    assert (expected.nonfinite_step >= 0).all()
    np.testing.assert_array_equal(got.nonfinite_step, expected.nonfinite_step)


def test_results_do_not_depend_on_chunks_or_openmp_threads():
    batch = small_batch(n_steps=120, n_instances=7)
    whole = cpu.run(batch, num_threads=2)
    assert_same_result(whole, cpu.run(batch, chunk_size=3, num_threads=1))
    assert_same_result(whole, cpu.run(batch, chunk_size=1, num_threads=2))
    # and an instance's result does not depend on the other instances in its batch
    alone = cpu.run(dataclasses.replace(
        batch, instances=batch.instances[3:4], record_instances=(),
        inputs=dataclasses.replace(batch.inputs, instance_stream=batch.inputs.instance_stream[3:4]),
    ))  # fmt: skip
    np.testing.assert_array_equal(alone.spike_count[0], whole.spike_count[3])


def test_build_is_cached_and_reports_missing_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    cpu.build.cache_clear()
    cpu.build(24)
    assert len(list(tmp_path.glob("dynapsim_n24_t1_*.so"))) == 1
    assert not list(tmp_path.glob("tmp*"))  # built atomically, no leftovers
    cpu.build.cache_clear()
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(cpu.shutil, "which", lambda name: None)
    assert "no C++ compiler" in cpu.unavailable()
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        cpu.build(24)
    cpu.build.cache_clear()


def test_float64_batches_are_refused():
    batch = dataclasses.replace(small_batch(n_steps=3), dtype=np.float64)
    with pytest.raises(ValueError, match="float32"):
        cpu.run(batch)


def mixed_variants() -> tuple[Variant, ...]:
    """Three sweep points in one batch: other biases, Iscale, mismatch model and percent."""
    core_map = (np.arange(36) * 2 // 36).astype(np.int32)
    return (
        Variant(nominal_for(core_map, {"Idc": [2e-10, 1e-10]}), 1e-8, MismatchModel(0.2)),
        Variant(
            nominal_for(core_map, {"Idc": [5e-10, 5e-13], "Itau_mem": [4e-12, 2e-12]}),
            2e-8,
            MismatchModel(0.4, "lognormal", shared_fraction=0.3),
        ),  # fmt: skip
        Variant(nominal_for(core_map, {"Idc": [1e-10, 3e-10]}), 1e-8, MismatchModel(0.0)),
    )


def test_a_packed_sweep_equals_its_points_run_alone():
    variants = mixed_variants()
    packed = small_batch(n_neurons=36, n_steps=200, n_instances=9, variants=variants)
    assert_bitwise_parameters(packed)
    got = cpu.run(packed)
    assert_same_result(reference.run(packed), got, exact_traces=False)
    for index in range(len(variants)):
        rows = np.flatnonzero(packed.instance_variant == index)
        alone = dataclasses.replace(
            packed,
            variants=(variants[index],),
            instances=packed.instances[rows],
            instance_variant=np.zeros(rows.size, np.int32),
            inputs=dataclasses.replace(
                packed.inputs, instance_stream=packed.inputs.instance_stream[rows]
            ),
            record_instances=(),
        )
        single = cpu.run(alone)
        for name in REDUCTIONS:
            np.testing.assert_array_equal(getattr(single, name), getattr(got, name)[rows], name)
