"""The synaptic-mismatch build of the GPU source (DYN_SYN_BITS) compiles with NVRTC for every
architecture, without spills, at the shape the first candidate of N = 200 has."""

from __future__ import annotations

import pytest

from runner.kernel import nvrtc_check
from runner.kernel.backends import cuda
from tests.helpers.markers import requires_nvrtc


@requires_nvrtc
@pytest.mark.parametrize("arch", nvrtc_check.ARCHITECTURES)
@pytest.mark.parametrize("syn_bits", [1, 4, 8])
def test_synaptic_build_compiles_for_the_gpu_without_spills(arch: str, syn_bits: int) -> None:
    threads, _ = cuda.candidate_shapes(200)[0]  # 7 warps, 4 neurons per thread, padding
    report = nvrtc_check.compile_for(arch, 200, cuda.Shape(threads, 4), syn_bits)
    assert report.ok, report.log
    assert "dynapsim_run" in report.log and report.spill_bytes == 0, report.log
