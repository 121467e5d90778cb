"""Compile the exact GPU kernel source with NVRTC for sm_80 and sm_90, without a GPU.

`python -m runner.kernel_check [N ...]` builds kernels/dynapsim.cu as the cuda backend would:
the same self-contained source, defines and options (plus -Xptxas=-v), at every launch shape
the backend may choose for N (`cuda.candidate_shapes`). It then picks the shape the backend
would launch with `cuda.choose_shape`, the occupancy modelled from ptxas' register counts for
an sm_80/sm_90 multiprocessor (65536 registers, 2048 threads, 32 blocks), prints every
report, and exits non-zero on a compile error, if the chosen shape spills registers, or for
an N the backend refuses. Needs cupy and NVRTC (`nvidia-cuda-nvrtc`), no device.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from .backends import _kernel
from .backends.cuda import candidate_shapes, check_size, choose_shape, compile_options

__all__ = ["ARCHITECTURES", "DEFAULT_SIZES", "CompileReport", "compile_for", "check", "main"]

ARCHITECTURES = ("sm_80", "sm_90")
DEFAULT_SIZES = (256, 1024, 2048)  # a core, a DYNAP-SE2 chip, two chips
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_RUN_REGISTERS = re.compile(r"entry function 'dynapsim_run'.*?Used (\d+) registers", re.DOTALL)
_SM_REGISTERS, _SM_THREADS, _SM_BLOCKS = 65536, 2048, 32  # sm_80 and sm_90 alike
_REGISTER_UNIT = 256  # registers are allocated per warp in units of 256

kernel_source = _kernel.kernel_source  # the text NVRTC compiles (tests may substitute it)


@dataclass(frozen=True)
class CompileReport:
    arch: str
    n_neurons: int
    threads: int
    ok: bool
    log: str

    @property
    def spill_bytes(self) -> int:
        """Bytes of register spill stores and loads, over every kernel of the module."""
        return sum(int(a) + int(b) for a, b in _SPILLS.findall(self.log))

    def resident_blocks(self) -> int:
        """Blocks of `dynapsim_run` one multiprocessor holds, limited by threads, blocks and
        registers (shared memory, 8 bytes a neuron, never binds first)."""
        registers = int(_RUN_REGISTERS.search(self.log).group(1))
        per_warp = -(-registers * 32 // _REGISTER_UNIT) * _REGISTER_UNIT
        by_registers = _SM_REGISTERS // (per_warp * (self.threads // 32))
        return min(_SM_BLOCKS, _SM_THREADS // self.threads, by_registers)


def compile_for(arch: str, n_neurons: int, threads: int) -> CompileReport:
    """NVRTC-compile the kernel for N neurons on `threads` threads per block to a cubin for
    `arch`; the log carries ptxas' -v report."""
    from cupy_backends.cuda.libs import nvrtc

    source = kernel_source(_kernel.defines(n_neurons, threads))
    program = nvrtc.createProgram(source, "dynapsim.cu", (), ())
    options = (f"-arch={arch}", "-Xptxas=-v", *compile_options())
    try:
        nvrtc.compileProgram(program, options)
        nvrtc.getCUBIN(program)
        ok = True
    except nvrtc.NVRTCError:
        ok = False
    log = nvrtc.getProgramLog(program).replace("\x00", "")
    nvrtc.destroyProgram(program)
    return CompileReport(arch, n_neurons, threads, ok, log)


def check(arch: str, n_neurons: int) -> tuple[bool, str]:
    """Compile every candidate shape for `arch`; (passed, printed report)."""
    reports = {threads: compile_for(arch, n_neurons, threads)
               for threads, _ in candidate_shapes(n_neurons)}  # fmt: skip
    lines = []
    for threads, report in reports.items():
        status = "ok" if report.ok else "FAILED"
        lines.append(f"-- {arch} N={n_neurons} threads={threads}: {status}, "
                     f"{report.spill_bytes} bytes spilled\n{report.log.strip()}")  # fmt: skip
    if not all(report.ok for report in reports.values()):
        return False, "\n".join(lines) + f"\n== {arch} N={n_neurons}: FAILED to compile"

    def occupancy(threads: int) -> tuple[int, int]:
        report = reports[threads]
        return report.resident_blocks(), report.spill_bytes

    threads, per_thread = choose_shape(n_neurons, occupancy)
    spilled = reports[threads].spill_bytes
    verdict = "ok" if not spilled else f"SPILLS {spilled} bytes"
    lines.append(f"== {arch} N={n_neurons}: the backend launches {threads} threads x "
                 f"{per_thread} neurons ({reports[threads].resident_blocks()} blocks per "
                 f"multiprocessor): {verdict}")  # fmt: skip
    return not spilled, "\n".join(lines)


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
        for arch in ARCHITECTURES:
            passed, report = check(arch, n_neurons)
            print(report)
            failed |= not passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
