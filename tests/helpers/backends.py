"""The backends under test and the one place that says how closely their results must agree.

`BACKENDS_UNDER_TEST` are pytest params: the reference, the cpu build, the threaded cpu
build (a block's threads as fibers switching at its barriers, the GPU's code path) and cuda
(skipped without a device). `assert_results_agree` holds the cross-backend contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from runner.kernel import kernel_calls
from runner.kernel.backends import cpu, cuda, reference
from runner.kernel.batch import Batch, BatchResult
from runner.physics.parameters import PARAMETER_NAMES, RECORD_NAMES
from tests.helpers.markers import requires_compiler, requires_gpu

__all__ = [
    "REDUCTIONS",
    "Contract",
    "CROSS_BACKEND",
    "SAME_BACKEND",
    "assert_results_agree",
    "assert_same_result",
    "assert_draws_match_sampler",
    "BackendUnderTest",
    "BACKENDS_UNDER_TEST",
    "instances_alone",
    "record_chunk_sizes",
]

REDUCTIONS = ("spike_count", "first_spike_step", "last_spike_step", "spiking_steps",
              "isi_sumsq", "binned_counts")  # fmt: skip
FLAGS = ("nonfinite_step", "nonphysical")


@dataclass(frozen=True)
class Contract:
    """How closely two runs of the same batch must agree.

    differing_neurons: fraction of (instance, neuron) pairs whose spike reductions or raster
    may differ (float ties: an ulp of expf/logf deciding a spike). trace_rtol: relative
    tolerance of recorded traces (0: bitwise; also relative to each trace's largest value),
    checked on instances whose spikes all agree.
    Non-finite steps and non-physical counts always agree exactly.
    """

    differing_neurons: float = 0.0
    trace_rtol: float = 0.0


# cpu vs reference and cuda vs either: same float32 operations, but the exp/log of libm,
# NumPy and CUDA differ by an ulp, a few ulps of the traces. Spikes equal on these tests.
CROSS_BACKEND = Contract(differing_neurons=0.0, trace_rtol=2e-5)
# one backend against itself (chunking, threads, packing): bit for bit
SAME_BACKEND = Contract()


def _differing_pairs(expected: BatchResult, actual: BatchResult) -> np.ndarray:
    """(B, N) bool: pairs whose reductions (or recorded raster) differ."""
    differ = np.zeros(expected.spike_count.shape, bool)
    for name in REDUCTIONS:
        a, b = getattr(expected, name), getattr(actual, name)
        assert a.shape == b.shape, f"{name}: shape {b.shape}, expected {a.shape}"
        a, b = a.reshape(a.shape[0], -1, a.shape[-1]), b.reshape(b.shape[0], -1, b.shape[-1])
        differ |= (a != b).any(axis=1)
    for k in expected.raster:
        differ[k] |= (expected.raster[k] != actual.raster[k]).any(axis=0)
    return differ


def assert_results_agree(
    expected: BatchResult, actual: BatchResult, contract: Contract = SAME_BACKEND
) -> None:
    """`actual` is `expected` within `contract` (every field, every recorded instance)."""
    for name in FLAGS:
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), name)
    assert actual.raster.keys() == expected.raster.keys() == actual.traces.keys()
    differ = _differing_pairs(expected, actual)
    allowed = int(contract.differing_neurons * differ.size)
    assert differ.sum() <= allowed, (
        f"{differ.sum()} of {differ.size} (instance, neuron) pairs differ (allowed {allowed}); "
        f"first at {np.argwhere(differ)[:5].tolist()}"
    )
    for k in expected.traces:
        if differ[k].any():
            continue  # a tie moved a spike: the traces part ways from there
        for name in RECORD_NAMES:
            got, want = actual.traces[k][name], expected.traces[k][name]
            if contract.trace_rtol == 0.0:
                np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), name)
            else:
                # relative to the trace's scale too: vmem = Ut/kappa ln(imem/Io) crosses 0
                scale = contract.trace_rtol * float(np.abs(want).max())
                np.testing.assert_allclose(got, want, rtol=contract.trace_rtol, atol=scale,
                                           err_msg=name)  # fmt: skip


def assert_same_result(a: BatchResult, b: BatchResult, exact_traces: bool = True) -> None:
    """Bit for bit (one backend), or within the cross-backend contract (README: the kernel
    and its backends): kernel builds agree bit for bit; against the reference, spikes and
    reductions are equal on the test cases and traces close."""
    assert_results_agree(a, b, SAME_BACKEND if exact_traces else CROSS_BACKEND)


def instances_alone(batch: Batch, rows: np.ndarray) -> Batch:
    """The same instances (ids, streams, variants) in a batch of their own, unrecorded."""
    return dataclasses.replace(
        batch,
        instances=batch.instances[rows],
        instance_variant=batch.instance_variant[rows],
        inputs=dataclasses.replace(
            batch.inputs, instance_stream=batch.inputs.instance_stream[rows]
        ),
        record_instances=(),
    )


@dataclass(frozen=True)
class BackendUnderTest:
    """A backend as the suite drives it: how to run it and how to make it chunk."""

    name: str
    run: Callable[..., BatchResult]
    contract: Contract  # against the reference backend
    draw: Callable[[Batch], tuple[dict[str, np.ndarray], np.ndarray]] | None = None
    chunks: bool = True  # splits a batch into chunks sized from memory

    def force_small_chunks(self, monkeypatch: pytest.MonkeyPatch, batch: Batch) -> int:
        """Shrink the memory the backend sizes chunks from to the least it accepts for
        `batch`; returns the chunk size that follows (the same for any number of instances)."""
        if self.name == "cuda":
            import cupy

            def chunk_with(free: int) -> int | None:
                monkeypatch.setattr(cupy.cuda.runtime, "memGetInfo", lambda: (free, 2 * free))
                try:
                    return cuda._chunk_size(batch)
                except MemoryError:  # not even one instance and the records fit
                    return None

            free = 1 << 16
            while chunk_with(free) is None:
                free = int(free * 1.1) + 1
            return chunk_with(free)
        monkeypatch.setattr(cpu, "_RECORD_BUDGET_BYTES", 1)  # no room: one instance a chunk
        return 1


def record_chunk_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the chunks the kernel backends go on to run, appended as they are cut."""
    sizes: list[int] = []
    original = kernel_calls.launches

    def spy(batch: Batch, chunk_size: int) -> list[Any]:
        out = original(batch, chunk_size)
        sizes.extend(chunk.size for chunk in out)
        return out

    monkeypatch.setattr(kernel_calls, "launches", spy)
    return sizes


_THREADS = 64  # two whole warps: the cross-warp spike exchange runs too


def _threaded_cpu(batch: Batch, **options: Any) -> BatchResult:
    return cpu.run(batch, threads_per_block=_THREADS, **options)


def _cpu_sparse_rows(batch: Batch, **options: Any) -> BatchResult:
    rows = kernel_calls.SparseRows
    return cpu.run(batch, sparse=rows.REC | rows.IN, **options)


def _threaded_draw(batch: Batch) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return cpu.draw_parameters(batch, threads_per_block=_THREADS)


def _param(backend: BackendUnderTest, *marks: Any) -> Any:
    return pytest.param(backend, id=backend.name, marks=marks)


BACKENDS_UNDER_TEST = [
    _param(BackendUnderTest("reference", reference.run, SAME_BACKEND, chunks=False)),
    _param(BackendUnderTest("cpu", cpu.run, CROSS_BACKEND, cpu.draw_parameters),
           *requires_compiler),
    # 64 threads a block: two warps, so the cross-warp spike exchange runs too
    _param(BackendUnderTest("cpu_threaded", _threaded_cpu, CROSS_BACKEND, _threaded_draw),
           *requires_compiler),
    # both weight matrices as sparse rows, whatever their density (cpu.sparse_flags)
    _param(BackendUnderTest("cpu_sparse_rows", _cpu_sparse_rows, CROSS_BACKEND),
           *requires_compiler),
    _param(BackendUnderTest("cuda", cuda.run, CROSS_BACKEND, cuda.draw_parameters),
           *requires_gpu),
]  # fmt: skip


def assert_draws_match_sampler(batch: Batch, draw: Callable[[Batch], tuple]) -> None:
    """A kernel's own mismatch draws (`draw(batch)`) are bit for bit the NumPy sampler's."""
    expected, expected_bad = batch.sample_parameters()
    drawn, bad = draw(batch)
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(drawn[name].view(np.uint32),
                                      expected[name].view(np.uint32), err_msg=name)  # fmt: skip
    np.testing.assert_array_equal(bad, expected_bad)
