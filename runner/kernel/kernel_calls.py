"""What the cpu and cuda backends share: the kernel source, its arguments and its outputs.

Both targets run `kernels/dynapsim.cu` with the same argument list; only where the arrays
live differs (NumPy for the host build, CuPy on a GPU). Arrays are passed by the caller's
array module `xp`, scalars as NumPy scalars of the kernel's exact C types.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from runner.kernel.batch import REDUCTION_FIELDS, Batch, BatchResult
from runner.physics.mismatch import WEIGHT_PARAMETER
from runner.physics.parameters import PARAMETER_NAMES, RECORD_NAMES
from runner.util.paths import KERNEL_DIR

__all__ = [
    "KERNEL_DIR",
    "KERNEL_FILES",
    "source_digest",
    "kernel_source",
    "defines",
    "N_FACTORS",
    "run_shared_bytes",
    "max_shared_factors",
    "synaptic_bits",
    "largest_weight",
    "weight_bits",
    "Launch",
    "launches",
    "static_inputs",
    "SparseRows",
    "variant_arrays",
    "output_layout",
    "layout_bytes",
    "output_bytes",
    "recorded_bytes",
    "chunk_size_for",
    "allocate_outputs",
    "run_launches",
    "run_arguments",
    "draw_arguments",
    "to_result",
    "to_parameters",
]

KERNEL_FILES = ("portability.h", "philox.cuh", "exact_math.cuh", "dynapsim.cu", "host_vector.h",
                "host.cpp")  # fmt: skip


def source_digest() -> str:
    """Hash of every kernel file: part of each build's cache key."""
    digest = hashlib.sha256()
    for name in KERNEL_FILES:
        digest.update(name.encode())
        digest.update((KERNEL_DIR / name).read_bytes())
    return digest.hexdigest()


_INCLUDE = re.compile(r'^#include "([^"]+)"[^\n]*$', re.MULTILINE)


def _inlined(name: str, seen: set[str]) -> str:
    """Kernel file `name` with its local `#include "..."` replaced by the files themselves."""

    def include(match: re.Match) -> str:
        header = match.group(1)
        if header in seen:
            return f"// {header}: already included above"
        seen.add(header)
        return f"// ---- {header}\n{_inlined(header, seen)}// ---- end of {header}"

    text = (KERNEL_DIR / name).read_text().replace("#pragma once\n", "")
    return _INCLUDE.sub(include, text)


def kernel_source(defines: dict[str, int]) -> str:
    """dynapsim.cu as one self-contained text (headers inlined) with its compile-time shape
    prepended as #defines: what NVRTC compiles, so CuPy's cache key (the source text) changes
    with every kernel file, and what kernel_check compiles."""
    header = "".join(f"#define {name} {value}\n" for name, value in defines.items())
    return header + _inlined("dynapsim.cu", {"dynapsim.cu"})


def defines(
    n_neurons: int,
    threads_per_block: int,
    warp_size: int = 32,
    weight_bits: int = 32,
    shared_factors: int = 0,
    syn_bits: int = 0,
) -> dict[str, int]:
    """Compile-time shape: N neurons, DYN_NTHREADS threads each owning DYN_NPT of them (the
    last slots of some threads are padding when they do not divide N), warps of DYN_WARP;
    weights stored in DYN_WEIGHT_BITS (`weight_bits`); the first `shared_factors` per-neuron
    factors of the kernel's list in shared memory instead of registers; DYN_SYN_BITS
    (`synaptic_bits`) only where synaptic mismatch is on, so that other builds' source text
    is what it was."""
    if not 0 <= shared_factors <= N_FACTORS:
        raise ValueError(f"shared_factors must be 0 to {N_FACTORS}, got {shared_factors}")
    return {
        "DYN_N": n_neurons,
        "DYN_NPT": -(-n_neurons // threads_per_block),
        "DYN_NTHREADS": threads_per_block,
        "DYN_WARP": warp_size,
        "DYN_WEIGHT_BITS": weight_bits,
        "DYN_SHARED_FACTORS": shared_factors,
        **({"DYN_SYN_BITS": syn_bits} if syn_bits else {}),
    }


_WEIGHT_TYPES = {8: np.int8, 16: np.int16, 32: np.float32}


def synaptic_bits(batch: Batch) -> int:
    """The build's DYN_SYN_BITS: the base weights per neuron of synaptic mismatch, else 0."""
    return 0 if batch.quantization is None else batch.quantization.n_bits


def largest_weight(weights: np.ndarray | None) -> float:
    """The largest |weight| of a matrix (as float32) whose weights are all integers; inf
    when one is not (NaN included), 0 when the matrix is absent."""
    if weights is None:
        return 0.0
    matrix = np.asarray(weights, np.float32)
    if not np.array_equal(matrix, np.round(matrix)):
        return float("inf")
    return float(np.abs(matrix).max(initial=0.0))


def weight_bits(batch: Batch) -> int:
    """8 or 16 when every weight (input and recurrent) is an integer that int8 or int16
    holds, as quantized weights are: stored so, exactly, the kernel fetches 4 or 2 times
    fewer bytes per row (and the one-thread host build adds a step's rows in exact int16
    lanes where its counts are integers). Otherwise 32 (float32). With synaptic mismatch
    8: the weights are then bit planes, sign * bit_k(mask) in {-1, 0, 1}."""
    if batch.quantization is not None:
        return 8
    present = [w for w in (batch.weights_in, batch.weights_rec) if w is not None]
    if not present:
        return 32
    largest = max(largest_weight(w) for w in present)
    for bits in (8, 16):
        if largest <= np.iinfo(_WEIGHT_TYPES[bits]).max:
            return bits
    return 32


def _drive_bound(weights: np.ndarray | None) -> np.int32:
    """The kernel's max_abs_* argument: the largest |weight| of an integer matrix, capped
    above int16's range (where the exact int16 drive is never taken); 0 when the matrix is
    absent or not integer."""
    largest = largest_weight(weights)
    return np.int32(min(largest, 1 << 16) if np.isfinite(largest) else 0)


N_FACTORS = 18  # the kernel's per-neuron factors (DYN_N_FACTORS)
STATIC_SHARED_BYTES = 2048  # bound on `dynapsim_run`'s static shared memory (1.3 KiB at most)


def _slots(n_neurons: int, threads: int) -> int:
    """Neuron slots of a block (the kernel's DYN_SLOTS): neurons, and padding slots."""
    return -(-n_neurons // threads) * threads


def run_shared_bytes(n_neurons: int, threads: int = 1, shared_factors: int = 0) -> int:
    """Dynamic shared memory of `dynapsim_run` on `threads` threads per block: the step's
    spike list, an int and a float per neuron (the kernel's DYN_DYNAMIC_SHARED s_spikes), and
    for each factor held there a float per slot."""
    return 4 * (2 * n_neurons + shared_factors * _slots(n_neurons, threads))


def max_shared_factors(n_neurons: int, threads: int, block_shared_bytes: int) -> int:
    """The most factors a block's shared memory (`block_shared_bytes`, the device's limit per
    block) holds besides the spike list and the static arrays: 0 to N_FACTORS."""
    free = block_shared_bytes - STATIC_SHARED_BYTES - run_shared_bytes(n_neurons, threads)
    return max(0, min(N_FACTORS, free // (4 * _slots(n_neurons, threads))))


@dataclass(frozen=True)
class Launch:
    """One kernel launch: batch positions [start, stop) and which of them are recorded in
    full. (A run's `sweep.Chunk` is a range of global instance ids, one backend call; the
    backend cuts its batch into launches that fit memory.)"""

    start: int
    stop: int
    record_positions: tuple[int, ...]  # batch positions, in slot order

    @property
    def size(self) -> int:
        return self.stop - self.start


def launches(batch: Batch, chunk_size: int) -> list[Launch]:
    """Consecutive launches of at most `chunk_size` instances."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    recorded = sorted(set(batch.record_instances))
    if recorded and not 0 <= recorded[0] <= recorded[-1] < batch.n_instances:
        raise ValueError(
            f"record_instances must be positions in [0, {batch.n_instances}), got {recorded}"
        )
    out = []
    for start in range(0, batch.n_instances, chunk_size):
        stop = min(start + chunk_size, batch.n_instances)
        out.append(Launch(start, stop, tuple(p for p in recorded if start <= p < stop)))
    return out


def static_inputs(batch: Batch, bits: int) -> dict[str, np.ndarray]:
    """The arrays every chunk shares (uploaded once on a GPU); weights stored in `bits`
    (the build's DYN_WEIGHT_BITS: `weight_bits(batch)`, or 32)."""
    if np.dtype(batch.dtype) != np.float32:
        raise ValueError(f"the kernel integrates in float32, got dtype {np.dtype(batch.dtype)}")
    weight_type = _WEIGHT_TYPES[bits]
    dummy = np.zeros(1, weight_type)  # stands in for an absent weight matrix

    def weights(array: np.ndarray | None) -> np.ndarray:
        if array is None:
            return dummy
        return np.ascontiguousarray(np.asarray(array, np.float32).astype(weight_type))

    events = batch.inputs
    nominal, w_in, w_rec = batch.nominal_tensor(), batch.weights_in, batch.weights_rec
    q = batch.quantization
    if q is not None:  # synaptic mismatch: base weight rows after the 24, bit planes
        base = [q.base_weights if v.base_weights is None else v.base_weights
                for v in batch.variants]  # fmt: skip
        per_neuron = np.stack([np.asarray(b, np.float32)[batch.core_map].T for b in base])
        nominal = np.concatenate([nominal, per_neuron], axis=1)
        w_in, w_rec = (None if planes is None else planes.transpose(1, 0, 2)  # (rows, bits, N)
                       for planes in (q.signed_bits(q.mask_in, q.sign_in),
                                      q.signed_bits(q.mask_rec, q.sign_rec)))  # fmt: skip
    return {
        "nominal": np.ascontiguousarray(nominal),
        "core_map": np.ascontiguousarray(batch.core_map, dtype=np.int32),
        "w_in": weights(w_in),
        "w_rec": weights(w_rec),
        **SparseRows.none().arrays(),
        "step_ptr": np.ascontiguousarray(events.step_ptr, dtype=np.int64),
        "channel": np.ascontiguousarray(events.channel, dtype=np.int32),
        "value": np.ascontiguousarray(events.value, dtype=np.float32),
        "instance_stream": np.ascontiguousarray(events.instance_stream, dtype=np.int32),
        "instances": np.ascontiguousarray(batch.instances, dtype=np.uint64),
        "instance_variant": np.ascontiguousarray(batch.instance_variant, dtype=np.int32),
        **variant_arrays(batch),
    }  # fmt: skip


@dataclass(frozen=True)
class SparseRows:
    """Weight matrices as sparse rows (CSR) for the one-thread host build: `flags` says which
    (the kernel's DYN_SPARSE_REC = 1, DYN_SPARSE_IN = 2); W_rec rows are rows 0..N-1, W_in
    rows N..N+C-1 (an absent or dense matrix has empty rows). float32 weights."""

    flags: int
    ptr: np.ndarray  # int64 (rows + 1,)
    post: np.ndarray  # int32 (nonzeros,), ascending within a row
    weight: np.ndarray  # float32 (nonzeros,)

    REC: ClassVar[int] = 1
    IN: ClassVar[int] = 2

    @classmethod
    def none(cls) -> SparseRows:
        """No matrix as sparse rows (the arrays are one-element stand-ins, never read)."""
        return cls(0, np.zeros(1, np.int64), np.zeros(1, np.int32), np.zeros(1, np.float32))

    @classmethod
    def of(cls, batch: Batch, flags: int) -> SparseRows:
        """The matrices of `batch` that `flags` names (and it has) as sparse rows (with
        synaptic mismatch: of sign * mask)."""
        w_in, w_rec, q = batch.weights_in, batch.weights_rec, batch.quantization
        if q is not None:  # synaptic mismatch: sign * mask, which the kernel decodes
            w_in = None if q.mask_in is None else q.sign_in * q.mask_in
            w_rec = None if q.mask_rec is None else q.sign_rec * q.mask_rec
        matrices = ((cls.REC, w_rec, batch.n_neurons),
                    (cls.IN, w_in, _rows(w_in)))  # fmt: skip
        ptr, posts, weights = [np.zeros(1, np.int64)], [], []
        present = 0
        for flag, matrix, n_rows in matrices:
            counts = np.zeros(n_rows, np.int64)
            if matrix is not None and flags & flag:
                present |= flag
                dense = np.asarray(matrix, np.float32)
                pre, post = np.nonzero(dense)  # rows ascending, posts ascending in a row
                counts = np.bincount(pre, minlength=n_rows)
                posts.append(post.astype(np.int32))
                weights.append(dense[pre, post])
            ptr.append(ptr[-1][-1] + np.cumsum(counts))
        if not present:
            return cls.none()
        return cls(present, np.concatenate(ptr), np.concatenate(posts), np.concatenate(weights))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"sparse_ptr": self.ptr, "sparse_post": self.post, "sparse_weight": self.weight}


def _rows(matrix: Any) -> int:
    return 0 if matrix is None else np.shape(matrix)[0]


def variant_arrays(batch: Batch) -> dict[str, np.ndarray]:
    """Per-variant rows: variant_int (P, 4) = mask, lognormal, clip, shared; variant_real
    (P, 5) = sigma, sigma**2/2, sqrt(1-f), sqrt(f), Iscale (the kernel's VI_*/VR_* order).
    The mask's bits 24 + k: base weight k deviates (synaptic mismatch).

    The float64 values are computed exactly as runner.physics.mismatch does, so the kernel's draws
    are bitwise those of `sample_parameters`.
    """
    ints, reals = [], []
    for variant in batch.variants:
        model = variant.mismatch
        sigma, fraction = model.sigma, model.shared_fraction
        mask = model.parameter_mask if model.active else 0
        if model.weights_active and batch.quantization is not None:
            mask |= ((1 << batch.quantization.n_bits) - 1) << WEIGHT_PARAMETER
        ints.append([np.uint32(mask).view(np.int32),
                     model.distribution == "lognormal", model.nonphysical == "clip",
                     fraction > 0.0])  # fmt: skip
        reals.append([sigma, 0.5 * sigma * sigma, np.sqrt(1.0 - fraction), np.sqrt(fraction),
                      variant.Iscale])  # fmt: skip
    return {
        "variant_int": np.ascontiguousarray(ints, dtype=np.int32),
        "variant_real": np.ascontiguousarray(reals, dtype=np.float64),
    }


def output_layout(
    n_instances: int, n_neurons: int, n_bins: int, n_steps: int, n_recorded: int
) -> dict[str, tuple]:
    """name -> (shape, dtype) of a chunk's outputs, in the kernel's argument order: the
    reductions, then the full records of its `n_recorded` instances (flat: the kernel
    indexes them itself). The one place that knows the outputs' sizes."""
    b, n, t = n_instances, n_neurons, n_steps
    reductions = {
        "spike_count": ((b, n), np.int64),
        "first_spike_step": ((b, n), np.int32),
        "last_spike_step": ((b, n), np.int32),
        "spiking_steps": ((b, n), np.int32),
        "isi_sumsq": ((b, n), np.float64),
        "binned_counts": ((b, n_bins, n), np.int32),
        "nonfinite_step": ((b,), np.int32),
        "nonphysical": ((b,), np.int64),
    }
    records = {
        "raster": ((n_recorded * t * n,), np.uint8),
        "traces": ((n_recorded * len(RECORD_NAMES) * t * n,), np.float32),
    }
    return {**reductions, **records}


def layout_bytes(layout: dict[str, tuple]) -> int:
    """Bytes of the arrays of an `output_layout`."""
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in layout.values())


def output_bytes(batch: Batch, n_instances: int, n_recorded: int) -> int:
    """Bytes of a chunk's outputs (`output_layout`)."""
    return layout_bytes(
        output_layout(n_instances, batch.n_neurons, batch.n_bins, batch.n_steps, n_recorded)
    )


def recorded_bytes(batch: Batch) -> int:
    """Bytes of the full records of every recorded instance of the batch."""
    return output_bytes(batch, 0, len(batch.record_instances))


def chunk_size_for(batch: Batch, budget_bytes: int, cap: int) -> int:
    """Instances per chunk such that a chunk's outputs fit `budget_bytes`, after the full
    records (at least a quarter of the budget is left to the reductions); 1 to `cap`."""
    per_instance = output_bytes(batch, 1, 0)
    free = max(budget_bytes - recorded_bytes(batch), budget_bytes // 4)
    return max(1, min(cap, free // per_instance))


def allocate_outputs(xp: ModuleType, batch: Batch, chunk: Launch) -> dict[str, Any]:
    """Zeroed output arrays of one chunk (records at least one element: never a null pointer)."""
    layout = output_layout(chunk.size, batch.n_neurons, batch.n_bins, batch.n_steps,
                           len(chunk.record_positions))  # fmt: skip
    return {name: xp.zeros(shape if name in REDUCTION_FIELDS else max(shape[0], 1), dtype)
            for name, (shape, dtype) in layout.items()}  # fmt: skip


def run_launches(
    xp: ModuleType,
    batch: Batch,
    inputs: dict[str, Any],
    chunk_size: int,
    launch: Callable[[Launch, list[Any]], None],
    to_host: Callable[[Any], np.ndarray],
    sparse_flags: int = 0,
) -> BatchResult:
    """The chunk loop of both kernel backends: per chunk, allocate its outputs, `launch`
    `dynapsim_run` with its arguments, copy the outputs `to_host`; then join the chunks."""
    parts, offsets = [], []
    bounds = (_drive_bound(batch.weights_in), _drive_bound(batch.weights_rec))
    for chunk in launches(batch, chunk_size):
        outputs = allocate_outputs(xp, batch, chunk)
        launch(chunk, run_arguments(xp, batch, inputs, chunk, outputs, bounds, sparse_flags))
        host = {name: to_host(array) for name, array in outputs.items()}
        parts.append(to_result(batch, chunk, host))
        offsets.append(chunk.start)
    if len(parts) == 1:
        return parts[0]  # already whole: joining would only copy every array
    return BatchResult.concatenate(parts, offsets)


def _record_slots(batch: Batch, chunk: Launch) -> np.ndarray:
    slots = np.full(chunk.size, -1, np.int32)
    for slot, position in enumerate(chunk.record_positions):
        slots[position - chunk.start] = slot
    return slots


def run_arguments(
    xp: ModuleType,
    batch: Batch,
    inputs: dict[str, Any],
    chunk: Launch,
    outputs: dict[str, Any],
    drive_bounds: tuple[np.int32, np.int32],
    sparse_flags: int = 0,
) -> list[Any]:
    """`dynapsim_run`'s arguments, in signature order, for one chunk; `drive_bounds`: the
    max_abs_in and max_abs_rec arguments (`_drive_bound`); `sparse_flags`: the matrices
    `inputs` also holds as sparse rows (`SparseRows`)."""
    part = slice(chunk.start, chunk.stop)
    return [
        inputs["nominal"], inputs["core_map"],
        inputs["w_in"], np.int32(batch.weights_in is not None),
        inputs["w_rec"], np.int32(batch.weights_rec is not None),
        *drive_bounds,
        np.int32(sparse_flags), inputs["sparse_ptr"], inputs["sparse_post"],
        inputs["sparse_weight"], inputs["step_ptr"], inputs["channel"], inputs["value"],
        xp.ascontiguousarray(inputs["instance_stream"][part]),
        xp.ascontiguousarray(inputs["instances"][part]),
        xp.ascontiguousarray(inputs["instance_variant"][part]),
        xp.asarray(_record_slots(batch, chunk)),
        np.int32(chunk.size), np.int32(batch.n_steps),
        np.int32(batch.bin_width or batch.n_steps), np.int32(batch.n_bins),
        np.float32(batch.dt), np.uint64(int(batch.seed) & 0xFFFFFFFFFFFFFFFF),
        inputs["variant_int"], inputs["variant_real"],
        *outputs.values(),
    ]  # fmt: skip


def draw_arguments(
    xp: ModuleType, batch: Batch, inputs: dict[str, Any], out: Any, nonphysical: Any
) -> list[Any]:
    """`dynapsim_draw`'s arguments: every instance of the batch at once."""
    return [
        inputs["nominal"], inputs["core_map"], inputs["instances"], inputs["instance_variant"],
        np.int32(batch.n_instances), np.uint64(int(batch.seed) & 0xFFFFFFFFFFFFFFFF),
        inputs["variant_int"], inputs["variant_real"], out, nonphysical,
    ]  # fmt: skip


def to_result(batch: Batch, chunk: Launch, outputs: dict[str, np.ndarray]) -> BatchResult:
    """Host copies of a chunk's outputs -> a BatchResult with chunk-local positions."""
    t, n = batch.n_steps, batch.n_neurons
    r = len(chunk.record_positions)
    raster = outputs["raster"][: r * t * n].reshape(r, t, n)
    traces = outputs["traces"][: r * len(RECORD_NAMES) * t * n].reshape(r, len(RECORD_NAMES), t, n)
    local = [p - chunk.start for p in chunk.record_positions]
    return BatchResult(
        **{name: outputs[name] for name in REDUCTION_FIELDS},
        raster={k: raster[slot].astype(np.float32) for slot, k in enumerate(local)},
        traces={
            k: {name: traces[slot, i] for i, name in enumerate(RECORD_NAMES)}
            for slot, k in enumerate(local)
        },
    )


def to_parameters(drawn: np.ndarray) -> dict[str, np.ndarray]:
    """(B, 24, N) kernel draws -> name -> (B, N), as runner.physics.mismatch.sample_parameters."""
    return {name: np.ascontiguousarray(drawn[:, i]) for i, name in enumerate(PARAMETER_NAMES)}
