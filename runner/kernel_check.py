"""Compile the exact GPU kernel source with NVRTC for sm_80 and sm_90, without a GPU.

`python -m runner.kernel_check [N ...]` builds kernels/dynapsim.cu as the cuda backend would
(same defines and options, plus -Xptxas=-v), prints ptxas' register/stack/spill report and
exits non-zero on any compile error. Needs cupy and NVRTC (`nvidia-cuda-nvrtc`), no device.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from .backends import _kernel
from .backends.cuda import compile_options, kernel_source, launch_shape

__all__ = ["ARCHITECTURES", "CompileReport", "compile_for", "main"]

ARCHITECTURES = ("sm_80", "sm_90")


@dataclass(frozen=True)
class CompileReport:
    arch: str
    n_neurons: int
    ok: bool
    log: str


def compile_for(arch: str, n_neurons: int) -> CompileReport:
    """NVRTC-compile the kernel to a cubin for `arch`; the log carries ptxas' -v report."""
    from cupy_backends.cuda.libs import nvrtc

    threads, _ = launch_shape(n_neurons)
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
    return CompileReport(arch, n_neurons, ok, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_neurons", nargs="*", type=int, default=[256, 1000])
    args = parser.parse_args(argv)
    failed = False
    for n_neurons in args.n_neurons:
        for arch in ARCHITECTURES:
            report = compile_for(arch, n_neurons)
            status = "ok" if report.ok else "FAILED"
            print(f"== {arch} N={n_neurons}: {status}")
            print(report.log.strip())
            failed |= not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
