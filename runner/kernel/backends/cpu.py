"""The cpu backend: kernels/dynapsim.cu compiled by the host C++ compiler, run over OpenMP.

The same source the GPU runs, through `kernels/portability.h`: one thread per block owning
all N neurons (vectorised with `omp simd`), one block per
instance, blocks spread over cores. Built once per (sources, compiler, flags, N) into a user
cache and loaded with ctypes. `threads_per_block > 1` selects a test build that runs each
block's threads as fibers switching at its barriers, exercising the GPU's multi-thread
code path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from runner.kernel import kernel_calls
from runner.kernel.batch import Batch, BatchResult
from runner.physics.parameters import PARAMETER_NAMES
from runner.util.file_lock import held_lock

__all__ = ["run", "draw_parameters", "unavailable", "cache_dir", "private_cache_dir", "build",
           "sparse_flags", "cpu_target", "check_target", "target_description",
           "CPU_TARGET_VARIABLE", "SPARSE_DENSITY", "SPARSE_MIN_BYTES"]  # fmt: skip

# -ffp-contract=off: no FMA, so the float32 order is the reference's. -fno-math-errno and
# -fno-trapping-math let loops call the vector expf/logf; neither changes a result.
_FLAGS = ("-O3", "-fopenmp", "-shared", "-fPIC", "-ffp-contract=off", "-fno-math-errno",
          "-fno-trapping-math", "-fno-loop-unroll-and-jam")  # fmt: skip
_THREADED = ("-DDYN_THREADED_BLOCKS",)  # a block's threads as fibers (portability.h)
_LIBS = ("-lmvec", "-lm")
_RECORD_BUDGET_BYTES = 1 << 28  # host memory per chunk for outputs and full records
_DEFAULT_CHUNK = 4096

# Kernel stacks hold the per-neuron arrays of one block (~250 bytes per neuron); libgomp
# reads this when it loads, i.e. before the first build is opened.
os.environ.setdefault("OMP_STACKSIZE", "256M")


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


def unavailable() -> str | None:
    """Why the cpu backend cannot run here, or None."""
    if _compiler() is None:
        wanted = os.environ.get("CXX", "g++")
        return f"no C++ compiler found (looked for $CXX={wanted!r} and c++)"
    if not (kernel_calls.KERNEL_DIR / "dynapsim.cu").is_file():
        return f"kernel source missing: {kernel_calls.KERNEL_DIR / 'dynapsim.cu'}"
    return None


def cache_dir() -> Path:
    """$DYNAPSIM_RUNNER_CACHE, else $XDG_CACHE_HOME/dynapsim-runner, else ~/.cache/..."""
    explicit = os.environ.get("DYNAPSIM_RUNNER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dynapsim-runner"


# The instruction set the build targets: GCC's -march value. `native` is this CPU; a named
# level (x86-64-v3: AVX2, x86-64-v4: AVX-512) or CPU (znver3, skylake-avx512) lets a cluster
# whose nodes differ share one build, and an AVX-512 machine measure the AVX2 path.
CPU_TARGET_VARIABLE = "DYNAPSIM_CPU_TARGET"
_TARGET_CHARACTERS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
# Instruction sets a build may use (the compiler's macro) and this CPU's flag for each
_ISA_FLAGS = {"__SSE4_2__": "sse4_2", "__AVX__": "avx", "__AVX2__": "avx2", "__FMA__": "fma",
              "__BMI2__": "bmi2", "__AVX512F__": "avx512f", "__AVX512BW__": "avx512bw",
              "__AVX512VL__": "avx512vl", "__AVX512DQ__": "avx512dq"}  # fmt: skip
_WIDEST = (("__AVX512F__", "AVX-512"), ("__AVX2__", "AVX2"), ("__AVX__", "AVX"))


def cpu_target() -> str:
    """$DYNAPSIM_CPU_TARGET (default `native`): the -march of the cpu build."""
    target = os.environ.get(CPU_TARGET_VARIABLE, "").strip() or "native"
    if not _TARGET_CHARACTERS.fullmatch(target):
        raise ValueError(
            f"{CPU_TARGET_VARIABLE} must be a -march value such as native, x86-64-v3 or "
            f"x86-64-v4, got {target!r}"
        )
    return target


@functools.cache
def _target_query(compiler: str, target: str) -> tuple[str, frozenset[str]]:
    """The compiler's resolved target options (-Q --help=target) and the instruction-set
    macros it defines for -march=`target`."""
    options = subprocess.run([compiler, f"-march={target}", "-Q", "--help=target"],
                             capture_output=True, text=True)  # fmt: skip
    macros = subprocess.run([compiler, f"-march={target}", "-dM", "-E", "-x", "c++", os.devnull],
                            capture_output=True, text=True)  # fmt: skip
    if (options.returncode or macros.returncode) and target != "native":  # else the compile says
        said = (options.stderr or macros.stderr).strip().splitlines()
        raise ValueError(
            f"{CPU_TARGET_VARIABLE}={target}: the compiler ({compiler}) does not know this "
            f"target ({said[0] if said else 'no message'}); e.g. native, x86-64-v3, x86-64-v4"
        )
    defined = {line.split()[1] for line in macros.stdout.splitlines() if line.count(" ") >= 1}
    return options.stdout, frozenset(defined & set(_ISA_FLAGS))


def check_target() -> str:
    """The target, checked (ValueError, one line): well formed, known to the compiler, and
    using no instruction this CPU lacks (its library would die of SIGILL). A chosen target
    that fails is the user's error, never a reason to fall back to another backend."""
    target = cpu_target()
    compiler = _compiler()
    if compiler is None or target == "native":
        return target
    _, isa = _target_query(compiler, target)
    flags = _cpu_flags()
    missing = sorted(_ISA_FLAGS[m] for m in isa if flags and _ISA_FLAGS[m] not in flags)
    if missing:
        raise ValueError(
            f"{CPU_TARGET_VARIABLE}={target} uses {', '.join(missing)}, which this CPU lacks; "
            f"choose a lower target (x86-64-v3 for AVX2) or unset it for native"
        )
    return target


def target_description() -> str:
    """The target as the bench prints it: the variable's value and what the compiler makes of
    it, e.g. `native (-march=znver3, -mtune=znver3; AVX2)`."""
    compiler = _compiler()
    target = cpu_target()
    if compiler is None:
        return target
    options, isa = _target_query(compiler, target)
    resolved = dict(re.findall(r"^\s+-(march|mtune)=\s+(\S+)", options, flags=re.MULTILINE))
    widest = next((name for macro, name in _WIDEST if macro in isa), "SSE")
    return (f"{target} (-march={resolved.get('march', '?')}, -mtune={resolved.get('mtune', '?')};"
            f" {widest})")  # fmt: skip


@functools.cache
def _toolchain_identity(compiler: str, target: str) -> str:
    """What a build depends on beyond its sources and flags: the compiler's version, what it
    resolves the target to, and for `native` this CPU (a cache folder shared by cluster nodes
    of different CPUs must not hand one a library built for another's instruction set; a
    named target builds the same library on every node, which they then share)."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    options, _ = _target_query(compiler, target)
    this_cpu = _cpu_identity() if target == "native" else ""
    return "\0".join([version, options, platform.machine(), this_cpu])


def _cpu_identity() -> str:
    """The model name and instruction-set flags of this machine's first CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(dict.fromkeys(line for line in lines if line.startswith(wanted)))


def _cpu_flags() -> set[str]:
    """This CPU's instruction-set flags (/proc/cpuinfo), empty where there is none."""
    for line in _cpu_identity().splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _command(compiler: str, target: str, shape: dict[str, int]) -> list[str]:
    threaded = _THREADED if shape["DYN_NTHREADS"] > 1 else ()
    defs = [f"-D{name}={value}" for name, value in shape.items()]
    return [compiler, f"-march={target}", *_FLAGS, "-std=c++17", *threaded, *defs,
            f"-I{kernel_calls.KERNEL_DIR}", "-x", "c++",
            str(kernel_calls.KERNEL_DIR / "host.cpp")]  # fmt: skip


def private_cache_dir(subfolder: str = "") -> Path:
    """The cache folder (or a subfolder of it), created 0700; refused if another user owns it
    or others can write."""
    folder = cache_dir() / subfolder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(folder, "cache folder")
    return folder


def _check_private(path: Path, what: str) -> None:
    """Refuse a path another user owns or that group/others may write: it could be planted."""
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise RuntimeError(
            f"cpu backend: refusing the {what} {path}: it must be owned by uid {os.getuid()} "
            f"and writable by its owner only (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):o}); remove it or set DYNAPSIM_RUNNER_CACHE"
        )


def _digest_path(target: Path) -> Path:
    return target.with_suffix(".sha256")


def _content_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(target: Path) -> bool:
    """The library is whole: its bytes hash to the digest written when it was built (a
    truncated or damaged shared object can crash the process that maps it)."""
    digest = _digest_path(target)
    if not (target.is_file() and digest.is_file()):
        return False
    return digest.read_text().strip() == _content_digest(target)


def _compile(command: list[str], target: Path) -> None:
    """Compile into a private temporary file, record its digest, then rename it into place
    atomically, so that concurrent processes never see half a library."""
    fd, temporary = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([*command, "-o", temporary, *_LIBS], capture_output=True, text=True)
        if done.returncode != 0:
            command_line = " ".join(command)
            raise RuntimeError(f"compiling {command[-1]} failed:\n{command_line}\n{done.stderr}")
        os.chmod(temporary, 0o700)
        digest_temporary = Path(temporary).with_suffix(".sha256")
        digest_temporary.write_text(_content_digest(Path(temporary)))
        os.replace(digest_temporary, _digest_path(target))
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _load(target: Path) -> ctypes.CDLL:
    _check_private(target, "cached library")
    library = ctypes.CDLL(str(target))
    for name in ("dyn_launch_run", "dyn_launch_draw"):
        getattr(library, name).argtypes = (ctypes.c_int, ctypes.POINTER(ctypes.c_void_p))
        getattr(library, name).restype = None
    library.dyn_set_num_threads.argtypes = (ctypes.c_int,)
    return library


@functools.cache
def build(
    n_neurons: int,
    threads_per_block: int = 1,
    warp_size: int = 32,
    weight_bits: int = 32,
    shared_factors: int = 0,
    syn_bits: int = 0,
) -> ctypes.CDLL:
    """The shared library for N neurons, compiled on first use and cached on disk.

    threads_per_block > 1: the threaded test build, whole warps of `warp_size` threads (32
    as on a GPU; fewer lets a small network have several warps), at most `warp_size` warps;
    `shared_factors` of the per-neuron factors in (static) shared memory, as a GPU shape may.
    syn_bits > 0: the synaptic-mismatch build (`kernel_calls.synaptic_bits`).

    The cache key covers the kernel sources, the compiler, its version, the CPU it targets
    and every flag. A cached library that is not intact (truncated, corrupt) is rebuilt.
    Processes that need the same library at once (a job array's tasks on one node) take
    turns: the first compiles it, the others then load it.
    """
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"cpu backend: {reason}")
    warps, rest = divmod(threads_per_block, warp_size)
    if threads_per_block > 1 and (rest or not 1 <= warps <= warp_size <= 32):
        raise ValueError(
            f"threads_per_block must be 1 or whole warps of warp_size <= 32 threads, at most "
            f"warp_size warps; got threads_per_block={threads_per_block}, warp_size={warp_size}"
        )
    compiler = _compiler()
    target = check_target()
    shape = kernel_calls.defines(n_neurons, threads_per_block, warp_size, weight_bits,
                                 shared_factors, syn_bits)  # fmt: skip
    command = _command(compiler, target, shape)
    identity = _toolchain_identity(compiler, target)
    key = hashlib.sha256(
        "\0".join([kernel_calls.source_digest(), identity, *command]).encode()
    ).hexdigest()[:24]
    name = (f"dynapsim_n{n_neurons}_t{threads_per_block}w{warp_size}_{weight_bits}"
            f"_f{shared_factors}{f'_s{syn_bits}' if syn_bits else ''}_{key}.so")  # fmt: skip
    target = private_cache_dir() / name
    with held_lock(target.with_suffix(".lock")):  # processes needing it compile it once
        if not _intact(target):
            _compile(command, target)
    return _load(target)


_CTYPES = {np.dtype(t): c for t, c in ((np.int32, ctypes.c_int32), (np.uint32, ctypes.c_uint32),
           (np.uint64, ctypes.c_uint64), (np.float32, ctypes.c_float),
           (np.float64, ctypes.c_double))}  # fmt: skip


def _launch(function: ctypes._CFuncPtr, n_blocks: int, arguments: list) -> None:
    """Call a kernel the way cudaLaunchKernel does: void* args[] pointing at each value."""
    values = []
    for argument in arguments:
        if isinstance(argument, np.ndarray):
            assert argument.flags.c_contiguous
            values.append(ctypes.c_void_p(argument.ctypes.data))
        else:
            values.append(_CTYPES[argument.dtype](argument.item()))
    pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
    function(n_blocks, pointers)


_CACHE_LINE = 64


def _line_aligned(array: np.ndarray) -> np.ndarray:
    """`array`, or a copy of it, starting on a cache line. NumPy guarantees only 16 bytes:
    the kernel adds W_rec and W_in rows in AVX-512 vectors, which would then each straddle
    two cache lines."""
    if array.ctypes.data % _CACHE_LINE == 0:
        return array
    raw = np.empty(array.nbytes + _CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % _CACHE_LINE
    copy = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    return copy


# The one-thread build adds a weight matrix nonzero by nonzero (sparse rows) where that pays:
# at most 1/16 of its weights nonzero, and its dense float32 rows (SPARSE_MIN_BYTES or more)
# beyond a core's L2 cache, so that each spike's row would come from L3. Measured, one thread
# of a 2-core AVX-512 EPYC: N = 1024 with 3, 6, 10 % random recurrence, sparse rows take
# 0.76, 0.89, 1.11 of the dense rows' time; N = 256 (256 KiB of rows) at 2, 3.5, 5 %: 1.00,
# 1.04, 1.08.
SPARSE_DENSITY = 1 / 16
SPARSE_MIN_BYTES = 1 << 20


def sparse_flags(batch: Batch) -> int:
    """The weight matrices the one-thread build reads as sparse rows (`kernel_calls.SparseRows`
    flags): those sparse and large enough (SPARSE_DENSITY, SPARSE_MIN_BYTES)."""
    flags = 0
    for flag, matrix in ((kernel_calls.SparseRows.REC, batch.weights_rec),
                         (kernel_calls.SparseRows.IN, batch.weights_in)):  # fmt: skip
        if matrix is None or 4 * np.size(matrix) < SPARSE_MIN_BYTES:
            continue
        if np.count_nonzero(matrix) <= SPARSE_DENSITY * np.size(matrix):
            flags |= flag
    return flags


def run(
    batch: Batch,
    *,
    chunk_size: int | None = None,
    threads_per_block: int = 1,
    warp_size: int = 32,
    num_threads: int | None = None,
    weight_bits: int | None = None,
    shared_factors: int = 0,
    sparse: int | None = None,
) -> BatchResult:
    """Integrate a batch on the host. num_threads: OpenMP threads (default: OpenMP's own);
    threads_per_block, warp_size, shared_factors: the threaded test build (see `build`);
    weight_bits: how weight rows are stored (default `kernel_calls.weight_bits`); sparse: the
    matrices read as sparse rows (`kernel_calls.SparseRows` flags; default `sparse_flags`,
    one-thread build only)."""
    bits = weight_bits or kernel_calls.weight_bits(batch)
    syn_bits = kernel_calls.synaptic_bits(batch)
    library = build(batch.n_neurons, threads_per_block, warp_size, bits, shared_factors,
                    syn_bits)  # fmt: skip
    if num_threads is not None:
        library.dyn_set_num_threads(num_threads)
    inputs = kernel_calls.static_inputs(batch, bits)
    for name in ("w_rec", "w_in"):
        inputs[name] = _line_aligned(inputs[name])
    if sparse is None:
        sparse = sparse_flags(batch) if threads_per_block == 1 else 0
    rows = kernel_calls.SparseRows.of(batch, sparse)
    inputs.update(rows.arrays())
    size = chunk_size or kernel_calls.chunk_size_for(batch, _RECORD_BUDGET_BYTES, _DEFAULT_CHUNK)

    def launch(chunk: kernel_calls.Launch, arguments: list) -> None:
        _launch(library.dyn_launch_run, chunk.size, arguments)

    return kernel_calls.run_launches(np, batch, inputs, size, launch, to_host=np.asarray,
                                sparse_flags=rows.flags)  # fmt: skip


def draw_parameters(
    batch: Batch, *, threads_per_block: int = 1, warp_size: int = 32
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The kernel's own mismatch draws: name -> (B, N) float32, and non-physical counts (B,)."""
    bits = kernel_calls.weight_bits(batch)
    library = build(batch.n_neurons, threads_per_block, warp_size, bits,
                    syn_bits=kernel_calls.synaptic_bits(batch))  # fmt: skip
    inputs = kernel_calls.static_inputs(batch, bits)
    drawn = np.zeros((batch.n_instances, len(PARAMETER_NAMES), batch.n_neurons), np.float32)
    nonphysical = np.zeros(batch.n_instances, np.int64)
    _launch(library.dyn_launch_draw, batch.n_instances,
            kernel_calls.draw_arguments(np, batch, inputs, drawn, nonphysical))  # fmt: skip
    return kernel_calls.to_parameters(drawn), nonphysical
