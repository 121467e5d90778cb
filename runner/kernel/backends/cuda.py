"""The cuda backend: kernels/dynapsim.cu through CuPy's RawModule (NVRTC) on a GPU.

One block per instance, each of its threads owning DYN_NPT neurons (interleaved, so that a
warp's weight-row reads coalesce). The launch shape is chosen among `candidate_shapes` with
CuPy's occupancy API: the shape whose compiled kernel keeps the most warps resident per
multiprocessor without spilling registers; a shape whose threads own several neurons each
and spill is also tried with the neurons' time-invariant factors in shared memory, as many
as the device's shared memory holds (the state stays in registers). The network and input
events are uploaded once, each chunk of instances is one launch; chunks are sized from the
free device memory, and without full records an instance's memory does not depend on the
number of steps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.kernel import kernel_calls
from runner.kernel.batch import Batch, BatchResult
from runner.physics.parameters import PARAMETER_NAMES

__all__ = ["run", "draw_parameters", "unavailable", "compile_options", "candidate_shapes",
           "check_size", "Shape", "choose_shape", "launch_shape", "MAX_NEURONS"]  # fmt: skip

MAX_NEURONS = 8192  # the spike list (8 N bytes) fits the 64 KiB of dynamic shared memory
_MAX_THREADS = 1024  # per block, every CUDA architecture
_NEURONS_PER_THREAD = (1, 2, 3, 4)  # shapes tried; more only where 1024 threads need it
_MEMORY_FRACTION = 0.5  # of the free device memory, for one chunk's outputs
_MAX_CHUNK = 1 << 20


def unavailable() -> str | None:
    """Why the cuda backend cannot run here, or None (never raises)."""
    try:
        import cupy
    except Exception as error:  # ImportError, or a broken CUDA install
        return f"cupy is not importable ({error.__class__.__name__}: {error})"
    try:
        if not cupy.cuda.is_available():
            return "no usable CUDA device (cupy.cuda.is_available() is False)"
    except Exception as error:
        return f"CUDA runtime error: {error}"
    return None


def compile_options() -> tuple[str, ...]:
    """NVRTC options (no -arch: RawModule adds the device's own). No FMA contraction, and
    -ftz=true written out: CuPy appends it to every compile, so kernel_check's binary is the
    one the backend runs (the host build flushes subnormals alike)."""
    return ("--fmad=false", "-ftz=true", "--std=c++17")


def check_size(n_neurons: int) -> None:
    """Refuse, before any work, a network the kernel cannot hold."""
    if not 1 <= n_neurons <= MAX_NEURONS:
        raise ValueError(
            f"cuda backend: networks of 1 to {MAX_NEURONS} neurons fit one thread block "
            f"(its spike list lives in 64 KiB of shared memory), got {n_neurons}; the cpu "
            "backend has no such limit"
        )


def candidate_shapes(n_neurons: int) -> list[tuple[int, int]]:
    """(threads per block, neurons per thread) the backend chooses from: whole warps, at
    most 1024 threads, 1 to 4 neurons per thread (more only where 1024 threads need it)."""
    check_size(n_neurons)
    fewest = -(-n_neurons // _MAX_THREADS)
    shapes = {}
    for per_thread in sorted({max(p, fewest) for p in _NEURONS_PER_THREAD}):
        threads = min(_MAX_THREADS, 32 * -(-n_neurons // (32 * per_thread)))
        shapes[threads] = -(-n_neurons // threads)
    return sorted(shapes.items())


@dataclass(frozen=True)
class Shape:
    """A launch shape: threads per block, neurons per thread, and how many of the kernel's
    per-neuron factors live in shared memory (0: all in registers)."""

    threads: int
    per_thread: int
    shared_factors: int = 0


def choose_shape(n_neurons: int, occupancy: Any, block_shared_bytes: int) -> Shape:
    """The shape to launch. `occupancy(shape)` -> (resident blocks per multiprocessor, bytes
    of local memory per thread) of the kernel compiled for that shape. Each candidate is tried
    with its factors in registers and, where that spills and its threads own several neurons,
    with as many of them in shared memory as a block's `block_shared_bytes` hold. The fewest
    bytes spilled first (spill-free shapes, or else the least local-memory traffic), then
    the most resident warps, then factors in registers rather than shared memory, then the
    most neurons per thread (fewer threads per instance: more instances in flight)."""
    tried = []
    for threads, per_thread in candidate_shapes(n_neurons):
        shape = Shape(threads, per_thread)
        tried.append(shape)
        factors = kernel_calls.max_shared_factors(n_neurons, threads, block_shared_bytes)
        if factors and per_thread > 1 and occupancy(shape)[1] > 0:
            tried.append(Shape(threads, per_thread, factors))

    def score(shape: Shape) -> tuple:
        blocks, local_bytes = occupancy(shape)
        return (-local_bytes, blocks * shape.threads // 32, -shape.shared_factors,
                shape.per_thread)  # fmt: skip

    return max(tried, key=score)


@functools.cache
def _module(n_neurons: int, shape: Shape, weight_bits: int, syn_bits: int, digest: str) -> Any:
    import cupy

    defines = kernel_calls.defines(n_neurons, shape.threads, 32, weight_bits, shape.shared_factors,
                                   syn_bits)  # fmt: skip
    return cupy.RawModule(code=kernel_calls.kernel_source(defines), options=compile_options(),
                          name_expressions=None)  # fmt: skip


def _function(
    n_neurons: int, shape: Shape, name: str, weight_bits: int = 32, syn_bits: int = 0
) -> Any:
    digest = kernel_calls.source_digest()
    function = _module(n_neurons, shape, weight_bits, syn_bits, digest).get_function(name)
    if name == "dynapsim_run":
        shared = kernel_calls.run_shared_bytes(n_neurons, shape.threads, shape.shared_factors)
        function.max_dynamic_shared_size_bytes = shared
    return function


def _occupancy(n_neurons: int) -> Any:
    from cupy_backends.cuda.api import driver

    @functools.cache
    def occupancy(shape: Shape) -> tuple[int, int]:
        function = _function(n_neurons, shape, "dynapsim_run")
        blocks = driver.occupancyMaxActiveBlocksPerMultiprocessor(
            function.kernel.ptr, shape.threads,
            kernel_calls.run_shared_bytes(n_neurons, shape.threads, shape.shared_factors)
        )  # fmt: skip
        return blocks, function.local_size_bytes

    return occupancy


@functools.cache
def launch_shape(n_neurons: int) -> Shape:
    """The shape this device runs N neurons with (compiles the candidates once each)."""
    import cupy

    limit = cupy.cuda.Device().attributes["MaxSharedMemoryPerBlockOptin"]
    return choose_shape(n_neurons, _occupancy(n_neurons), limit)


def _chunk_size(batch: Batch) -> int:
    import cupy

    free, _ = cupy.cuda.runtime.memGetInfo()
    budget = int(free * _MEMORY_FRACTION)
    if kernel_calls.recorded_bytes(batch) + kernel_calls.output_bytes(batch, 1, 0) > budget:
        raise MemoryError(
            f"cuda backend: {len(batch.record_instances)} fully recorded instances need "
            f"{kernel_calls.recorded_bytes(batch) / 2**30:.1f} GiB; the device has "
            f"{free / 2**30:.1f} GiB free"
        )
    return kernel_calls.chunk_size_for(batch, budget, _MAX_CHUNK)


def _upload(batch: Batch, bits: int) -> dict[str, Any]:
    """The batch's shared arrays on the device (weights stored in `bits`)."""
    import cupy

    inputs = kernel_calls.static_inputs(batch, bits)
    return {name: cupy.asarray(array) for name, array in inputs.items()}


def run(batch: Batch, *, chunk_size: int | None = None) -> BatchResult:
    """Integrate a batch on the GPU: inputs uploaded once, one launch per chunk."""
    import cupy

    check_size(batch.n_neurons)
    shape = launch_shape(batch.n_neurons)
    bits = kernel_calls.weight_bits(batch)
    function = _function(batch.n_neurons, shape, "dynapsim_run", bits,
                         kernel_calls.synaptic_bits(batch))  # fmt: skip
    shared = kernel_calls.run_shared_bytes(batch.n_neurons, shape.threads, shape.shared_factors)
    inputs = _upload(batch, bits)

    def launch(chunk: kernel_calls.Launch, arguments: list) -> None:
        function((chunk.size,), (shape.threads,), tuple(arguments), shared_mem=shared)

    return kernel_calls.run_launches(cupy, batch, inputs, chunk_size or _chunk_size(batch), launch,
                              to_host=cupy.asnumpy)  # fmt: skip


def draw_parameters(batch: Batch) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The kernel's own mismatch draws on the GPU: name -> (B, N), non-physical counts (B,)."""
    import cupy

    check_size(batch.n_neurons)
    shape = launch_shape(batch.n_neurons)
    bits = kernel_calls.weight_bits(batch)
    function = _function(batch.n_neurons, shape, "dynapsim_draw", bits,
                         kernel_calls.synaptic_bits(batch))  # fmt: skip
    inputs = _upload(batch, bits)
    drawn = cupy.zeros((batch.n_instances, len(PARAMETER_NAMES), batch.n_neurons), cupy.float32)
    nonphysical = cupy.zeros(batch.n_instances, cupy.int64)
    function((batch.n_instances,), (shape.threads,),
             tuple(kernel_calls.draw_arguments(cupy, batch, inputs, drawn,
                                               nonphysical)))  # fmt: skip
    return kernel_calls.to_parameters(drawn.get()), nonphysical.get()
