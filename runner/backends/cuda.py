"""The cuda backend: kernels/dynapsim.cu through CuPy's RawModule (NVRTC) on a GPU.

One block per instance, `launch_shape` threads per block each owning DYN_NPT neurons; the
network and input events are uploaded once, each chunk of instances is one launch. Chunks
are sized from the free device memory; without full records an instance's memory does not
depend on the number of steps.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..batch import Batch, BatchResult
from ..model import PARAMETER_NAMES
from . import _kernel

__all__ = ["run", "draw_parameters", "unavailable", "compile_options", "kernel_source",
           "launch_shape"]  # fmt: skip

_MEMORY_FRACTION = 0.5  # of the free device memory, for one chunk's outputs
_MAX_CHUNK = 1 << 20
_NEURONS_PER_THREAD = 2  # registers per thread stay well below spilling at NPT = 2


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
    """NVRTC options (no -arch: RawModule adds the device's own). No FMA contraction."""
    return ("--fmad=false", f"-I{_kernel.KERNEL_DIR}", "--std=c++17")


def launch_shape(n_neurons: int) -> tuple[int, int]:
    """(threads per block, neurons per thread) for N neurons: whole warps, NPT ~ 2."""
    warps = -(-n_neurons // (32 * _NEURONS_PER_THREAD))
    threads = 32 * min(max(warps, 1), 8)
    return threads, -(-n_neurons // threads)


def kernel_source(defines: dict[str, int]) -> str:
    """dynapsim.cu with its compile-time shape prepended as #defines."""
    header = "".join(f"#define {name} {value}\n" for name, value in defines.items())
    return header + (_kernel.KERNEL_DIR / "dynapsim.cu").read_text()


@functools.cache
def _module(n_neurons: int, digest: str) -> Any:
    import cupy

    threads, _ = launch_shape(n_neurons)
    source = kernel_source(_kernel.defines(n_neurons, threads))
    return cupy.RawModule(code=source, options=compile_options(), name_expressions=None)


def _kernel_function(batch: Batch, name: str) -> tuple[Any, int]:
    module = _module(batch.n_neurons, _kernel.source_digest())
    return module.get_function(name), launch_shape(batch.n_neurons)[0]


def _chunk_size(batch: Batch) -> int:
    import cupy

    free, _ = cupy.cuda.runtime.memGetInfo()
    per_instance = batch.n_neurons * (28 + 4 * batch.n_bins)
    recorded = len(batch.record_instances) * batch.n_steps * batch.n_neurons * 17
    budget = int(free * _MEMORY_FRACTION) - recorded
    if budget < per_instance:
        raise MemoryError(
            f"cuda backend: {len(batch.record_instances)} fully recorded instances need "
            f"{recorded / 2**30:.1f} GiB; the device has {free / 2**30:.1f} GiB free"
        )
    return max(1, min(_MAX_CHUNK, budget // per_instance))


def run(batch: Batch, *, chunk_size: int | None = None) -> BatchResult:
    """Integrate a batch on the GPU: inputs uploaded once, one launch per chunk."""
    import cupy

    function, threads = _kernel_function(batch, "dynapsim_run")
    inputs = {name: cupy.asarray(array) for name, array in _kernel.static_inputs(batch).items()}
    parts, offsets = [], []
    for chunk in _kernel.chunks(batch, chunk_size or _chunk_size(batch)):
        outputs = _kernel.allocate_outputs(cupy, batch, chunk)
        function((chunk.size,), (threads,),
                 tuple(_kernel.run_arguments(cupy, batch, inputs, chunk, outputs)))  # fmt: skip
        host = {name: array.get() for name, array in outputs.items()}
        parts.append(_kernel.to_result(batch, chunk, host))
        offsets.append(chunk.start)
    return BatchResult.concatenate(parts, offsets)


def draw_parameters(batch: Batch) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The kernel's own mismatch draws on the GPU: name -> (B, N), non-physical counts (B,)."""
    import cupy

    function, threads = _kernel_function(batch, "dynapsim_draw")
    inputs = {name: cupy.asarray(array) for name, array in _kernel.static_inputs(batch).items()}
    drawn = cupy.zeros((batch.n_instances, len(PARAMETER_NAMES), batch.n_neurons), cupy.float32)
    nonphysical = cupy.zeros(batch.n_instances, cupy.int64)
    function((batch.n_instances,), (threads,),
             tuple(_kernel.draw_arguments(cupy, batch, inputs, drawn, nonphysical)))  # fmt: skip
    return _kernel.to_parameters(drawn.get()), nonphysical.get()
