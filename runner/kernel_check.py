"""Compile the exact GPU kernel source with NVRTC for sm_80 and sm_90, without a GPU.

`python -m runner.kernel_check [N ...]` builds kernels/dynapsim.cu as the cuda backend would:
the same self-contained source, defines and options (plus -Xptxas=-v), at every launch shape
the backend may choose for N (`cuda.candidate_shapes`: which one it launches depends on the
device's occupancy). It prints ptxas' register/stack/spill report per shape and exits
non-zero on any compile error, on any register spill, or for an N the backend refuses.
Needs cupy and NVRTC (`nvidia-cuda-nvrtc`), no device.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from .backends import _kernel
from .backends.cuda import candidate_shapes, compile_options

__all__ = ["ARCHITECTURES", "DEFAULT_SIZES", "CompileReport", "compile_for", "main"]

ARCHITECTURES = ("sm_80", "sm_90")
DEFAULT_SIZES = (256, 1024, 2048)  # a core, a DYNAP-SE2 chip, two chips
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_neurons", nargs="*", type=int, default=list(DEFAULT_SIZES))
    args = parser.parse_args(argv)
    failed = False
    for n_neurons in args.n_neurons:
        try:
            shapes = candidate_shapes(n_neurons)
        except ValueError as error:
            print(f"== N={n_neurons}: REFUSED: {error}")
            failed = True
            continue
        for threads, per_thread in shapes:
            for arch in ARCHITECTURES:
                report = compile_for(arch, n_neurons, threads)
                status = "ok" if report.ok else "FAILED"
                if report.ok and report.spill_bytes:
                    status = f"SPILLS {report.spill_bytes} bytes"
                print(f"== {arch} N={n_neurons} threads={threads} NPT={per_thread}: {status}")
                print(report.log.strip())
                failed |= status != "ok"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
