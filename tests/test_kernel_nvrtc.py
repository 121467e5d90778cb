"""CI compiles the exact GPU kernel source with NVRTC (no GPU needed) for sm_80 and sm_90."""

from __future__ import annotations

import pytest

nvrtc = pytest.importorskip("cupy_backends.cuda.libs.nvrtc")

from runner import kernel_check  # noqa: E402


def _nvrtc_missing() -> str | None:
    try:
        nvrtc.getVersion()
    except Exception as error:  # the pip wheel nvidia-cuda-nvrtc is not installed
        return str(error)
    return None


@pytest.mark.skipif(_nvrtc_missing() is not None, reason=f"NVRTC: {_nvrtc_missing()}")
@pytest.mark.parametrize("arch", kernel_check.ARCHITECTURES)
def test_kernel_source_compiles_for_the_gpu_without_spills(arch):
    report = kernel_check.compile_for(arch, 48)
    print(report.log)
    assert report.ok, report.log
    assert "dynapsim_run" in report.log and "dynapsim_draw" in report.log
    assert " 0 bytes spill stores" in report.log and "bytes spill stores" in report.log
    assert report.log.count(" 0 bytes spill stores") == report.log.count("bytes spill stores")


def test_kernel_check_exits_non_zero_on_a_compile_error(monkeypatch, capsys):
    if _nvrtc_missing() is not None:
        pytest.skip(f"NVRTC: {_nvrtc_missing()}")
    broken = "this is not C++;\n"
    monkeypatch.setattr(kernel_check, "kernel_source", lambda defines: broken)
    assert kernel_check.main(["16"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_the_gpu_source_is_self_contained_and_keyed_on_every_header(monkeypatch, tmp_path):
    # CuPy's on-disk cache keys on the source text: every header must be inside it
    from runner.backends import _kernel

    shape = _kernel.defines(64, 32)
    source = _kernel.kernel_source(shape)
    assert '#include "' not in source and "dyn_philox" in source and "dyn_bits" in source
    for name in _kernel.KERNEL_FILES:
        (tmp_path / name).write_text((_kernel.KERNEL_DIR / name).read_text())
    monkeypatch.setattr(_kernel, "KERNEL_DIR", tmp_path)
    assert _kernel.kernel_source(shape) == source
    for header in ("philox.cuh", "portability.h"):
        (tmp_path / header).write_text((tmp_path / header).read_text() + "\n// edited\n")
        edited = _kernel.kernel_source(shape)
        assert edited != source
        source = edited
