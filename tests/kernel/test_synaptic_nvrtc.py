"""The synaptic-mismatch build of the GPU source (DYN_SYN_BITS) compiles with NVRTC for every
architecture, without spills, at the shape the first candidate of N = 200 has (compiled in
the background from the start of the session: tests.helpers.fixtures)."""

from __future__ import annotations

import pytest

from runner.kernel import nvrtc_check
from tests.helpers.fixtures import NVRTC_SYN_BITS
from tests.helpers.markers import requires_nvrtc, slow


@slow  # a full NVRTC compile of the synaptic build per architecture and width
@requires_nvrtc
@pytest.mark.parametrize("arch", nvrtc_check.ARCHITECTURES)
@pytest.mark.parametrize("syn_bits", [bits for bits in NVRTC_SYN_BITS if bits])
def test_synaptic_build_compiles_for_the_gpu_without_spills(
    arch: str, syn_bits: int, nvrtc_compiled_at_200
) -> None:
    report = nvrtc_compiled_at_200[arch, syn_bits].result()
    assert report.ok, report.log
    assert "dynapsim_run" in report.log and report.spill_bytes == 0, report.log
