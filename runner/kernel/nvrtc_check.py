"""Compile the exact GPU kernel source with NVRTC for sm_80 and sm_90, without a GPU.

`python -m runner.kernel_check [N ...]` builds kernels/dynapsim.cu as the cuda backend would:
the same self-contained source, defines and options (plus -Xptxas=-v), at every launch shape
the backend may choose for N (`cuda.candidate_shapes`, and where one spills, the same with
its factors in shared memory). It then picks the shape the backend would launch with
`cuda.choose_shape`, the occupancy modelled from ptxas' register and shared memory counts for
an A100 (sm_80) or H100/H200 (sm_90) multiprocessor, prints every report, and exits non-zero
on a compile error, if the chosen shape spills registers or does not fit a multiprocessor, or
for an N the backend refuses. Needs cupy and NVRTC (`nvidia-cuda-nvrtc`), no device.

A compile's report is kept in the user's cache (`nvrtc/` in the cpu backend's cache folder),
keyed by the whole source text, the options and NVRTC's version: the same source compiles
to the same report, so a second check of an unchanged kernel reads it instead of spending
a core-minute per shape on NVRTC. Checks running at once take turns per report: a
source is compiled once, by the first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from runner.kernel import kernel_calls
from runner.kernel.backends.cpu import private_cache_dir
from runner.kernel.backends.cuda import Shape, check_size, choose_shape, compile_options
from runner.util.atomic_files import write_atomic
from runner.util.file_lock import held_lock

__all__ = ["ARCHITECTURES", "DEFAULT_SIZES", "CompileReport", "compile_for", "check", "main"]

ARCHITECTURES = ("sm_80", "sm_90")
DEFAULT_SIZES = (256, 1024, 2048)  # a core, a DYNAP-SE2 chip, two chips
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_RUN_USAGE = re.compile(r"entry function 'dynapsim_run'.*?Used (\d+) registers([^\n]*)", re.DOTALL)
_STATIC_SHARED = re.compile(r"(\d+) bytes smem")
_SM_REGISTERS, _SM_THREADS, _SM_BLOCKS = 65536, 2048, 32  # sm_80 and sm_90 alike
_REGISTER_UNIT = 256  # registers are allocated per warp in units of 256
# shared memory: (per multiprocessor, most a block may opt in to); each block also holds 1 KiB
# the system reserves. A100 (sm_80): 164 and 163 KiB; H100/H200 (sm_90): 228 and 227 KiB.
SHARED_BYTES = {"sm_80": (167936, 166912), "sm_90": (233472, 232448)}
_RESERVED_SHARED = 1024

kernel_source = kernel_calls.kernel_source  # the text NVRTC compiles (tests may substitute it)


@dataclass(frozen=True)
class CompileReport:
    arch: str
    n_neurons: int
    shape: Shape
    ok: bool
    log: str

    @property
    def spill_bytes(self) -> int:
        """Bytes of register spill stores and loads, over every kernel of the module."""
        return sum(int(a) + int(b) for a, b in _SPILLS.findall(self.log))

    def resident_blocks(self) -> int:
        """Blocks of `dynapsim_run` one multiprocessor holds, limited by threads, blocks,
        registers and shared memory (static and dynamic); 0 if one block does not fit."""
        registers, rest = _RUN_USAGE.search(self.log).groups()
        static = _STATIC_SHARED.search(rest)
        threads = self.shape.threads
        per_warp = -(-int(registers) * 32 // _REGISTER_UNIT) * _REGISTER_UNIT
        by_registers = _SM_REGISTERS // (per_warp * (threads // 32))
        shared = kernel_calls.run_shared_bytes(self.n_neurons, threads, self.shape.shared_factors)
        shared += int(static.group(1)) if static else 0
        per_multiprocessor, per_block = SHARED_BYTES[self.arch]
        if shared > per_block:
            return 0
        by_shared = per_multiprocessor // (shared + _RESERVED_SHARED)
        return min(_SM_BLOCKS, _SM_THREADS // threads, by_registers, by_shared)


def compile_for(arch: str, n_neurons: int, shape: Shape, syn_bits: int = 0) -> CompileReport:
    """NVRTC-compile the kernel for N neurons at launch `shape` (with synaptic mismatch of
    `syn_bits` base weights, if > 0) to a cubin for `arch`; the log carries ptxas' -v report."""
    from cupy_backends.cuda.libs import nvrtc

    defines = kernel_calls.defines(n_neurons, shape.threads, shared_factors=shape.shared_factors,
                                   syn_bits=syn_bits)  # fmt: skip
    source = kernel_source(defines)
    options = (f"-arch={arch}", "-Xptxas=-v", *compile_options())
    key = hashlib.sha256("\0".join([source, *options, repr(nvrtc.getVersion())]).encode())
    kept = private_cache_dir("nvrtc") / f"{key.hexdigest()[:32]}.json"
    with held_lock(kept.with_suffix(".lock")):  # concurrent checks compile a source once
        if not kept.is_file():
            ok, log = _compile(source, options)
            write_atomic(kept, lambda file: file.write(json.dumps({"ok": ok, "log": log}).encode()))
    report = json.loads(kept.read_text())
    return CompileReport(arch, n_neurons, shape, report["ok"], report["log"])


def _compile(source: str, options: tuple[str, ...]) -> tuple[bool, str]:
    """NVRTC's verdict on `source` with `options` (compiled to a cubin), and its log."""
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(source, "dynapsim.cu", (), ())
    try:
        nvrtc.compileProgram(program, options)
        nvrtc.getCUBIN(program)
        ok = True
    except nvrtc.NVRTCError:
        ok = False
    log = nvrtc.getProgramLog(program).replace("\x00", "")
    nvrtc.destroyProgram(program)
    return ok, log


def check(arch: str, n_neurons: int) -> tuple[bool, str]:
    """Compile the shapes the backend would try for `arch`; (passed, printed report)."""
    reports: dict[Shape, CompileReport] = {}

    def occupancy(shape: Shape) -> tuple[int, int]:
        if shape not in reports:
            reports[shape] = compile_for(arch, n_neurons, shape)
        report = reports[shape]
        return (report.resident_blocks(), report.spill_bytes) if report.ok else (0, 1 << 30)

    shape = choose_shape(n_neurons, occupancy, SHARED_BYTES[arch][1])
    lines = []
    for tried, report in reports.items():
        status = "ok" if report.ok else "FAILED"
        lines.append(f"-- {arch} N={n_neurons} threads={tried.threads} shared factors="
                     f"{tried.shared_factors}: {status}, {report.spill_bytes} bytes spilled\n"
                     f"{report.log.strip()}")  # fmt: skip
    if not all(report.ok for report in reports.values()):
        return False, "\n".join(lines) + f"\n== {arch} N={n_neurons}: FAILED to compile"
    chosen = reports[shape]
    blocks, spilled = chosen.resident_blocks(), chosen.spill_bytes
    verdict = "ok" if blocks and not spilled else (
        f"SPILLS {spilled} bytes" if spilled else "does NOT fit a multiprocessor")
    lines.append(f"== {arch} N={n_neurons}: the backend launches {shape.threads} threads x "
                 f"{shape.per_thread} neurons, {shape.shared_factors} factors in shared memory "
                 f"({blocks} blocks per multiprocessor): {verdict}")  # fmt: skip
    return verdict == "ok", "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_neurons", nargs="*", type=int, default=list(DEFAULT_SIZES))
    args = parser.parse_args(argv)
    failed = False
    for n_neurons in args.n_neurons:
        try:
            check_size(n_neurons)
        except ValueError as error:
            print(f"== N={n_neurons}: REFUSED: {error}")
            failed = True
            continue
        # one thread per architecture: NVRTC lets go of the GIL, so they compile on two cores
        with ThreadPoolExecutor(len(ARCHITECTURES)) as pool:
            sizes = [n_neurons] * len(ARCHITECTURES)
            for passed, report in pool.map(check, ARCHITECTURES, sizes):
                print(report)
                failed |= not passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
