"""The cpu backend (kernels/dynapsim.cu built for the host) against the reference backend."""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from runner.kernel import kernel_calls
from runner.kernel.backends import cpu, reference
from runner.kernel.batch import REDUCTION_FIELDS, Batch, BatchResult, InputEvents, Variant
from runner.kernel.reductions import reduce_raster
from runner.physics.mismatch import MismatchModel
from tests.helpers.backends import assert_draws_match_sampler, assert_same_result
from tests.helpers.batches import batch_from_case, nominal_for, small_batch
from tests.helpers.cases import CASES
from tests.helpers.fixtures import CACHED_N, copy_cpu_build_cache
from tests.helpers.markers import requires_compiler

pytestmark = requires_compiler

REDUCTIONS = REDUCTION_FIELDS


def assert_bitwise_parameters(batch) -> None:
    assert_draws_match_sampler(batch, cpu.draw_parameters)


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
    # 43 neurons: the host's Philox takes 4 counters a vector, then 3 one by one; instance
    # numbers and a seed with high words of their own
    batch = small_batch(n_neurons=43, n_steps=2, n_instances=5, mismatch=mismatch)
    batch = dataclasses.replace(batch, instances=np.array([0, 1, 2**32 + 5, 7, 2**40], np.uint64),
                                seed=(3 << 32) + 99)
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


def _cached_library(cache: Path) -> Path:
    (library,) = cache.glob(f"dynapsim_n{CACHED_N}_t1w32_*_*.so")
    return library


def test_build_is_cached_and_reports_missing_compiler(monkeypatch, cpu_build_cache):
    # cpu_build_cache: a fresh folder after one cpu.build(CACHED_N), as the build left it
    cache = cpu_build_cache
    assert len(list(cache.glob(f"dynapsim_n{CACHED_N}_t1w32_*_*.so"))) == 1
    assert not list(cache.glob("tmp*"))  # built atomically, no leftovers
    assert cache.stat().st_mode & 0o777 == 0o700  # private
    cpu.build.cache_clear()
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(cpu.shutil, "which", lambda name: None)
    assert "no C++ compiler" in cpu.unavailable()
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        cpu.build(CACHED_N)
    cpu.build.cache_clear()


def test_a_corrupt_cached_library_is_rebuilt(monkeypatch, tmp_path, cpu_build_cache):
    cache = copy_cpu_build_cache(cpu_build_cache, tmp_path / "cache")
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(cache))
    library = _cached_library(cache)
    size = library.stat().st_size
    library.write_bytes(library.read_bytes()[:1000])  # e.g. a disk that filled up mid-copy
    cpu.build.cache_clear()
    # no library of this folder was ever loaded here (a process reuses its loaded handle for
    # a path): what loads is the rebuilt one
    cpu.build(CACHED_N).dyn_set_num_threads(1)
    cpu.build.cache_clear()
    assert _cached_library(cache).stat().st_size == size


def test_planted_libraries_and_shared_cache_folders_are_refused(
    monkeypatch, tmp_path, cpu_build_cache
):
    cache = copy_cpu_build_cache(cpu_build_cache, tmp_path / "cache")
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(cache))
    cpu.build.cache_clear()
    cpu.build(CACHED_N)
    library = _cached_library(cache)
    library.chmod(0o766)  # anyone could have replaced it
    cpu.build.cache_clear()
    with pytest.raises(RuntimeError, match="refusing the cached library .*writable by its owner"):
        cpu.build(CACHED_N)
    library.chmod(0o700)
    cache.chmod(0o777)
    cpu.build.cache_clear()
    with pytest.raises(RuntimeError, match="refusing the cache folder"):
        cpu.build(CACHED_N)
    cpu.build.cache_clear()


def _copying_compiles(monkeypatch, built: Path) -> None:
    """Every compile copies `built` (a build key is under test, not the compiler), checking
    that the command targets the chosen CPU target."""

    def copy_built(command: list[str], target: Path) -> None:
        assert f"-march={cpu.cpu_target()}" in command
        shutil.copy2(built, target)
        cpu._digest_path(target).write_text(cpu._content_digest(target))

    monkeypatch.setattr(cpu, "_compile", copy_built)


def _build_on_two_cpus(monkeypatch) -> None:
    """cpu.build(CACHED_N) as a node with AVX2 and then as one with AVX-512 would."""
    for cpu_model in ("model name : CPU A\nflags : avx2", "model name : CPU B\nflags : avx512f"):
        monkeypatch.setattr(cpu, "_cpu_identity", lambda model=cpu_model: model)
        cpu._toolchain_identity.cache_clear()
        cpu.build.cache_clear()
        cpu.build(CACHED_N)


def test_the_build_key_covers_the_cpu(monkeypatch, tmp_path, cpu_build_cache):
    # a home folder shared by cluster nodes of different CPUs: each CPU gets its own build
    _copying_compiles(monkeypatch, _cached_library(cpu_build_cache))
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    _build_on_two_cpus(monkeypatch)
    assert len(list(tmp_path.glob(f"dynapsim_n{CACHED_N}_t1w32_*_*.so"))) == 2
    cpu._toolchain_identity.cache_clear()
    cpu.build.cache_clear()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_subnormal_currents_flush_to_zero_as_on_the_gpu():
    # CuPy compiles with -ftz=true; the host build flushes subnormal floats alike, so the
    # builds agree even there (the reference, plain NumPy, keeps them)
    core_map = np.zeros(4, np.int32)
    nominal = nominal_for(core_map, {"Io": [1e-39]})  # a subnormal float32 current
    batch = dataclasses.replace(
        small_batch(n_neurons=4, n_steps=3, n_instances=1, record_instances=(0,)),
        variants=(Variant(nominal, 1e-8, MismatchModel(0.0)),), core_map=core_map,
        weights_in=None, weights_rec=None,
        inputs=InputEvents.from_dense(np.zeros((3, 4), np.float32), 1),
    )  # fmt: skip
    first_isyn = cpu.run(batch).traces[0]["isyn"][0]
    np.testing.assert_array_equal(first_isyn, 0.0)
    assert (reference.run(batch).traces[0]["isyn"][0] > 0).all()
    threaded = cpu.run(batch, threads_per_block=4, warp_size=4).traces[0]["isyn"][0]
    np.testing.assert_array_equal(threaded, 0.0)


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


@pytest.mark.parametrize(
    ("scale", "bits"), [(1.0, 8), (100.0, 16), (20000.0, 32), (0.5, 32)]
)  # fmt: skip
def test_integer_weights_are_stored_as_narrow_as_they_fit(scale, bits):
    batch = small_batch(n_neurons=8, n_steps=2)  # weights in -2 .. 2 (recurrent), 0 .. 3
    scaled = dataclasses.replace(batch, weights_rec=batch.weights_rec * np.float32(scale))
    assert kernel_calls.weight_bits(scaled) == bits
    assert kernel_calls.static_inputs(scaled, bits)["w_rec"].dtype.itemsize * 8 == bits
    no_weights = dataclasses.replace(batch, weights_in=None, weights_rec=None)
    assert kernel_calls.weight_bits(no_weights) == 32


@pytest.mark.parametrize("has_w_in", [True, False])
def test_narrow_weights_give_the_same_bits_as_float_weights(monkeypatch, has_w_in):
    # N=300: the one-thread build's register-blocked rows and its row loops both convert
    overrides = {} if has_w_in else {"weights_in": None}
    batch = small_batch(n_neurons=300, n_steps=80, n_instances=2, **overrides)
    assert kernel_calls.weight_bits(batch) == 8
    narrow = cpu.run(batch, weight_bits=8)
    assert narrow.spike_count.sum() > 100
    for bits in (16, 32):
        assert_same_result(narrow, cpu.run(batch, weight_bits=bits))
    threaded = cpu.run(batch, threads_per_block=64)  # the GPU's path: narrow rows
    assert_same_result(narrow, threaded)


def _with_inputs(batch, x: np.ndarray):
    return dataclasses.replace(batch, inputs=InputEvents.from_dense(x, batch.n_instances))


@functools.cache
def _int16_case(case: str) -> tuple[Batch, BatchResult, BatchResult]:
    """A case's batch and its float-row and threaded results (the same for dense and sparse
    W_rec rows of the one-thread build: computed once for both)."""
    batch = small_batch(n_neurons=300, n_steps=80, n_instances=2)
    x = (np.random.default_rng(5).random((2, 80, 8)) < 0.3).astype(np.float32)
    if case == "fractional counts":  # some steps' events are not integers
        x[:, ::3] *= np.float32(0.5)
    elif case == "beyond int16":  # weights up to 3 * 120, counts up to 60: some steps over
        batch = dataclasses.replace(batch, weights_in=batch.weights_in * np.float32(120))
        x *= np.random.default_rng(6).integers(1, 60, x.shape).astype(np.float32)
    else:  # strong drive: most neurons fire each step, several spikes in one step
        batch = dataclasses.replace(batch, weights_in=batch.weights_in * np.float32(40))
    batch = _with_inputs(batch, x)
    float_rows = cpu.run(batch, weight_bits=32, sparse=0)
    threaded = cpu.run(batch, threads_per_block=64)  # scalar step 3 there
    return batch, float_rows, threaded


@pytest.mark.parametrize("sparse", [0, kernel_calls.SparseRows.REC], ids=["dense", "sparse W_rec"])
@pytest.mark.parametrize("case", ["fractional counts", "beyond int16", "multi-spike steps"])
def test_the_int16_drive_gives_the_bits_of_float_rows_or_is_not_taken(case, sparse):
    # the one-thread build adds integer rows in int16 lanes only where every count of a step
    # is an integer and the sum of |weight x count| fits int16: all rows, or the W_rec rows
    # (dense, or sparse ones added first) with the W_in rows then added as floats; otherwise
    # float rows. N = 300: a full block of 256, a tail block of 32, 12 neurons in row loops
    batch, float_rows, threaded = _int16_case(case)
    bits = kernel_calls.weight_bits(batch)
    assert bits in (8, 16)
    narrow = cpu.run(batch, sparse=sparse)
    assert_same_result(narrow, float_rows)
    assert_same_result(narrow, threaded)  # scalar step 3 there
    if case == "multi-spike steps":  # the vector counts and reductions of step 3 were taken
        raster = narrow.raster[1].astype(np.int64)  # the recorded instance (T, N)
        assert raster.max() > 1 and ((raster > 1).sum(axis=1) > 300 // 32).any()
        assert ((raster > 0).sum(axis=1) > 300 // 8).mean() > 0.5


@pytest.mark.parametrize("n_neurons", [48, 300])
@pytest.mark.parametrize("weights", ["none", "sparse inputs only"])
def test_the_blocked_drive_starts_from_zero_without_dense_rows(n_neurons: int, weights: str):
    # no dense row to add (no weights: events drive their neuron; or W_in as sparse rows and
    # no W_rec): the register-blocked neurons' drive is zero plus the sparse rows, never what
    # the array held before. Every target has register blocks at these N
    if weights == "none":  # an event's channel is a neuron
        batch, sparse = small_batch(n_neurons, weights_in=None, weights_rec=None), 0
        x = (np.random.default_rng(3).random((4, 200, n_neurons)) < 0.05).astype(np.float32)
        batch = _with_inputs(batch, x * np.float32(4))
    else:
        batch, sparse = small_batch(n_neurons, weights_rec=None), kernel_calls.SparseRows.IN
    one_thread = cpu.run(batch, sparse=sparse)
    assert one_thread.spike_count.sum() > 0
    assert_same_result(one_thread, cpu.run(batch, threads_per_block=64))
    assert_same_result(reference.run(batch), one_thread, exact_traces=False)


def _lacks_avx2() -> bool:
    flags = cpu._cpu_flags()
    return bool(flags) and "avx2" not in flags


@pytest.mark.parametrize("target", [
    pytest.param("x86-64-v3", marks=pytest.mark.skipif(_lacks_avx2(), reason="no AVX2 here")),
    "x86-64",  # SSE2 only: the generic vector code
])  # fmt: skip
def test_every_cpu_target_gives_the_bits_of_native(monkeypatch, target: str):
    # DYNAPSIM_CPU_TARGET changes the vector paths (lanes per vector: 16, 8 or 4; register
    # blocks; sign-extending loads; byte tests), never a result: integer rows in int16 lanes,
    # float rows on top of them, multi-spike steps, float rows alone; N = 300 puts neurons
    # in full blocks, a tail block and the row loops, at different boundaries per target
    cases = [_int16_case(case) for case in ("fractional counts", "multi-spike steps")]
    native = [(batch, cpu.run(batch), float_rows) for batch, float_rows, _ in cases]
    monkeypatch.setenv(cpu.CPU_TARGET_VARIABLE, target)
    cpu.build.cache_clear()
    try:
        for batch, narrow, float_rows in native:
            assert_same_result(cpu.run(batch), narrow)
            assert_same_result(cpu.run(batch, weight_bits=32, sparse=0), float_rows)
    finally:
        cpu.build.cache_clear()


def test_a_target_this_cpu_cannot_run_is_refused_before_a_build(monkeypatch):
    monkeypatch.setattr(cpu, "_cpu_flags", lambda: {"sse2", "sse4_2", "avx"})  # no AVX2
    monkeypatch.setenv(cpu.CPU_TARGET_VARIABLE, "x86-64-v3")
    monkeypatch.setattr(cpu, "_compile", lambda *_: pytest.fail("compiled"))
    cpu.build.cache_clear()
    with pytest.raises(ValueError, match=r"^DYNAPSIM_CPU_TARGET=x86-64-v3 uses avx2, bmi2, fma, "
                       r"which this CPU lacks; choose a lower target"):  # fmt: skip
        cpu.build(48)
    monkeypatch.delenv(cpu.CPU_TARGET_VARIABLE)
    assert cpu.check_target() == "native"  # whatever this CPU has


def test_the_build_key_covers_the_target(monkeypatch, tmp_path, cpu_build_cache):
    # nodes sharing a home folder with different DYNAPSIM_CPU_TARGET values keep their builds
    _copying_compiles(monkeypatch, _cached_library(cpu_build_cache))
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    for target in ("native", "x86-64"):
        monkeypatch.setenv(cpu.CPU_TARGET_VARIABLE, target)
        cpu.build.cache_clear()
        cpu.build(CACHED_N)
    assert len(list(tmp_path.glob(f"dynapsim_n{CACHED_N}_t1w32_*_*.so"))) == 2
    # a named target is one build for nodes of different CPUs (native is one each)
    _build_on_two_cpus(monkeypatch)
    assert len(list(tmp_path.glob(f"dynapsim_n{CACHED_N}_t1w32_*_*.so"))) == 2
    cpu._toolchain_identity.cache_clear()
    cpu.build.cache_clear()


_BOTH_SPARSE = kernel_calls.SparseRows.REC | kernel_calls.SparseRows.IN


@pytest.mark.parametrize("n_neurons", [48, 300, 1024])
def test_sparse_rows_give_the_same_bits_as_dense_rows(n_neurons):
    # N = 300 and 1024: the sparse rows are added before (W_rec) and after (W_in) the
    # register-blocked dense rows of the other matrix and the row loops of the rest
    batch = small_batch(n_neurons=n_neurons, n_steps=100 if n_neurons < 1000 else 40,
                        n_instances=2)  # fmt: skip
    dense = cpu.run(batch, sparse=0)
    assert dense.spike_count.sum() > n_neurons
    for flags in (kernel_calls.SparseRows.REC, kernel_calls.SparseRows.IN, _BOTH_SPARSE):
        assert_same_result(dense, cpu.run(batch, sparse=flags))
    without_inputs = dataclasses.replace(batch, weights_in=None)  # events drive neurons 0..7
    assert_same_result(cpu.run(without_inputs, sparse=0),
                       cpu.run(without_inputs, sparse=_BOTH_SPARSE))  # fmt: skip


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_sparse_rows_take_a_non_finite_value_as_dense_rows_do():
    # an infinite input: a dense row gives NaN (0 x inf) to every neuron without that input
    # and +-inf to those with it; sparse rows must too, bit for bit, NaN included
    batch = small_batch(n_neurons=48, n_steps=60, n_instances=2, record_instances=(0, 1))
    x = (np.random.default_rng(0).random((2, 60, 8)) < 0.15).astype(np.float32)
    x[0, 20, 3] = np.inf
    batch = dataclasses.replace(batch, inputs=InputEvents.from_dense(x, 2))
    dense = cpu.run(batch, sparse=0)
    assert dense.nonfinite_step[0] == 20 and dense.nonfinite_step[1] == -1
    isyn = dense.traces[0]["isyn"][20]  # NaN where the weight is 0, inf elsewhere
    assert np.isnan(isyn).any() and not np.isnan(isyn).all()
    sparse = cpu.run(batch, sparse=_BOTH_SPARSE)
    assert_same_result(dense, sparse)
    for name, trace in dense.traces[0].items():
        bits = sparse.traces[0][name].view(np.uint32)
        np.testing.assert_array_equal(trace.view(np.uint32), bits, err_msg=name)


def test_sparse_rows_are_used_where_they_pay():
    from runner.data.weights import ei_network

    # a chip's E/I network: 24 of 1024 recurrent and 8 of 256 input weights per neuron, 4 and
    # 1 MiB of dense rows: both sparse
    core_map = np.repeat(np.arange(4), 256)
    ei = ei_network(core_map, n_inputs=256, seed=1)
    chip = small_batch(n_neurons=1024, n_steps=30, n_instances=2, weights_in=ei["weights_in"],
                       weights_rec=ei["weights_rec"])  # fmt: skip
    assert cpu.sparse_flags(chip) == _BOTH_SPARSE
    # 20 % of the weights nonzero: dense rows
    assert cpu.sparse_flags(small_batch(n_neurons=1024, n_steps=1, n_instances=1)) == 0
    # a core of 256 neurons with 2 % recurrence: its 256 KiB of rows stay in cache: dense
    w_rec = np.zeros((256, 256), np.float32)
    w_rec[:, :5] = 1.0
    core = small_batch(n_neurons=256, n_steps=1, n_instances=1, weights_rec=w_rec)
    assert cpu.sparse_flags(core) == 0
    # the default run reads the chip's rows sparse: the same bits as dense rows
    assert_same_result(cpu.run(chip, sparse=0), cpu.run(chip))


_MATH_HARNESS = r"""
#include "exact_math.cuh"
extern "C" void vector_math(const float* x, float* e, float* l, int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) { e[i] = dyn_expf(x[i]); l[i] = dyn_logf(x[i]); }
}
extern "C" __attribute__((optimize("no-tree-vectorize")))
void scalar_math(const float* x, float* e, float* l, int n) {
    for (int i = 0; i < n; ++i) { e[i] = dyn_expf(x[i]); l[i] = dyn_logf(x[i]); }
}
"""


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def test_kernel_exp_log_are_within_an_ulp_and_the_same_in_vector_and_scalar_code(tmp_path):
    # the cross-backend contract rests on these: the same bits however the loop is compiled,
    # and within 1 ulp of float64 exp/log rounded to float32 (what the reference computes)
    source = tmp_path / "math.cpp"
    source.write_text(_MATH_HARNESS)
    library = tmp_path / "math.so"
    subprocess.run([cpu._compiler(), f"-march={cpu.cpu_target()}", *cpu._FLAGS, "-std=c++17",
                    f"-I{kernel_calls.KERNEL_DIR}", str(source), "-o", str(library)],
                   check=True)  # fmt: skip
    math = ctypes.CDLL(str(library))
    rng = np.random.default_rng(0)
    specials = [0.0, -1.0, np.inf, -np.inf, np.nan, 1e-39, 1.0]
    samples = [rng.uniform(-87, 88, 50_000), rng.uniform(-1, 1, 50_000),
               10.0 ** rng.uniform(-37, 38, 50_000), specials]  # fmt: skip
    x = np.concatenate(samples).astype(np.float32)
    results = {}
    for name in ("vector_math", "scalar_math"):
        e, lg = np.empty_like(x), np.empty_like(x)
        pointers = [a.ctypes.data_as(ctypes.c_void_p) for a in (x, e, lg)]
        getattr(math, name)(*pointers, ctypes.c_int(x.size))
        results[name] = (e, lg)
    for vector, scalar in zip(results["vector_math"], results["scalar_math"], strict=True):
        np.testing.assert_array_equal(vector.view(np.uint32), scalar.view(np.uint32))
    e, lg = results["vector_math"]
    with np.errstate(all="ignore"):
        want_e = np.exp(x.astype(np.float64)).astype(np.float32)
        want_l = np.log(x.astype(np.float64)).astype(np.float32)
    normal_e = np.isfinite(want_e) & (want_e >= np.finfo(np.float32).tiny)
    assert _ulps(e[normal_e], want_e[normal_e]).max() <= 1
    finite_l = np.isfinite(want_l) & (x >= np.finfo(np.float32).tiny)
    assert _ulps(lg[finite_l], want_l[finite_l]).max() <= 1
    # specials: NaN/inf as libm; subnormals are zero (as on the GPU with -ftz=true)
    got = {value: (e[i - 7], lg[i - 7]) for i, value in enumerate(specials) if value == value}
    assert got[0.0] == (1.0, -np.inf) and got[1.0] == (np.float32(np.e), 0.0)
    assert np.isnan(got[-1.0][1]) and got[np.inf] == (np.inf, np.inf) and got[-np.inf][0] == 0
    assert got[1e-39] == (1.0, -np.inf) and np.isnan(e[-3]) and np.isnan(lg[-3])


def test_processes_needing_one_library_compile_it_once(monkeypatch, tmp_path, cpu_build_cache):
    # a job array's tasks starting at once on one node: the first compiles, the others wait
    # for it and load its library (threads here: each opens the lock file anew, as a process)
    _copying_compiles(monkeypatch, _cached_library(cpu_build_cache))
    copy_built, compiles = cpu._compile, []

    def slow_copy(command: list[str], target: Path) -> None:
        compiles.append(target)
        time.sleep(0.3)  # long enough for every other caller to reach the lock
        copy_built(command, target)

    monkeypatch.setattr(cpu, "_compile", slow_copy)
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu, "build", cpu.build.__wrapped__)  # no per-process memo
    with ThreadPoolExecutor(3) as pool:
        libraries = list(pool.map(lambda _: cpu.build(CACHED_N), range(3)))
    assert len(compiles) == 1 and all(library is not None for library in libraries)
