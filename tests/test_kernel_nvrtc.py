"""CI compiles the exact GPU kernel source with NVRTC (no GPU needed) for sm_80 and sm_90,
at the launch shapes the cuda backend chooses from; and the shape rules themselves."""

from __future__ import annotations

import pytest

from runner import kernel_check
from runner.backends import _kernel, cuda


def _nvrtc_missing() -> str | None:
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as error:  # cupy, or the pip wheel nvidia-cuda-nvrtc, is not installed
        return str(error)
    return None


needs_nvrtc = pytest.mark.skipif(_nvrtc_missing() is not None, reason=f"NVRTC: {_nvrtc_missing()}")


@needs_nvrtc
@pytest.mark.parametrize("arch", kernel_check.ARCHITECTURES)
def test_kernel_source_compiles_for_the_gpu_without_spills(arch):
    threads, _ = cuda.candidate_shapes(200)[0]  # 7 warps, 4 neurons per thread, padding
    report = kernel_check.compile_for(arch, 200, threads)
    print(report.log)
    assert report.ok, report.log
    assert "dynapsim_run" in report.log and "dynapsim_draw" in report.log
    assert "bytes spill stores" in report.log and report.spill_bytes == 0


@needs_nvrtc
def test_kernel_check_exits_non_zero_on_a_compile_error(monkeypatch, capsys):
    monkeypatch.setattr(kernel_check, "kernel_source", lambda defines: "this is not C++;\n")
    assert kernel_check.main(["16"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_kernel_check_refuses_networks_the_backend_refuses(capsys):
    assert kernel_check.main([str(cuda.MAX_NEURONS + 1)]) == 1
    assert f"1 to {cuda.MAX_NEURONS} neurons" in capsys.readouterr().out


def test_spill_bytes_are_read_from_the_ptxas_report():
    log = ("ptxas info    : Function properties for dynapsim_run\n"
           "    24 bytes stack frame, 16 bytes spill stores, 8 bytes spill loads\n"
           "ptxas info    : Function properties for dynapsim_draw\n"
           "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n")  # fmt: skip
    assert kernel_check.CompileReport("sm_90", 64, 64, True, log).spill_bytes == 24


def test_kernel_check_models_occupancy_from_the_ptxas_registers():
    log = ("ptxas info    : Compiling entry function 'dynapsim_draw' for 'sm_90'\n"
           "ptxas info    : Used 40 registers, used 1 barriers, 1024 bytes smem\n"
           "ptxas info    : Compiling entry function 'dynapsim_run' for 'sm_90'\n"
           "ptxas info    : Used 78 registers, used 1 barriers, 2080 bytes smem\n")  # fmt: skip
    # 78 registers: 2560 a warp (units of 256), 8 warps a block: 3 blocks in 65536 registers
    assert kernel_check.CompileReport("sm_90", 1024, 256, True, log).resident_blocks() == 3
    # 32 threads: the 32-block limit binds before the registers (2560 x 32 > 65536? no: 25)
    assert kernel_check.CompileReport("sm_90", 32, 32, True, log).resident_blocks() == 25


@pytest.mark.parametrize("n_neurons", [1, 48, 200, 256, 1000, 1024, 2048, 4096, 8192])
def test_candidate_shapes_are_whole_warps_covering_n(n_neurons):
    shapes = cuda.candidate_shapes(n_neurons)
    assert shapes
    for threads, per_thread in shapes:
        assert threads % 32 == 0 and 32 <= threads <= 1024
        assert per_thread * threads >= n_neurons > (per_thread - 1) * threads
        assert per_thread <= max(4, -(-n_neurons // 1024))


@pytest.mark.parametrize("n_neurons", [0, cuda.MAX_NEURONS + 1, 100_000])
def test_networks_beyond_the_limit_are_refused_with_the_limit(n_neurons):
    with pytest.raises(ValueError, match=f"1 to {cuda.MAX_NEURONS} neurons"):
        cuda.candidate_shapes(n_neurons)


def test_the_launch_shape_follows_occupancy_and_avoids_spills():
    # a made-up device: 2048 resident threads per multiprocessor, at most 16 blocks
    def occupancy(threads):
        return min(16, 2048 // threads), (128 if threads == 1024 else 0)

    # 1024 neurons: 256..1024 threads all fill the multiprocessor; 1024 spills; of the
    # rest the most neurons per thread wins
    assert cuda.choose_shape(1024, occupancy) == (256, 4)
    # 48 neurons: 64 threads x 16 blocks (32 warps) beat 32 threads x 16 blocks (16 warps)
    assert cuda.choose_shape(48, occupancy) == (64, 1)
    # only one candidate, spilling: still launched
    assert cuda.choose_shape(8192, occupancy) == (1024, 8)


def test_the_gpu_source_is_self_contained_and_keyed_on_every_header(monkeypatch, tmp_path):
    # CuPy's on-disk cache keys on the source text: every header must be inside it
    shape = _kernel.defines(64, 32)
    source = _kernel.kernel_source(shape)
    assert '#include "' not in source and "dyn_philox" in source and "dyn_expf" in source
    for name in _kernel.KERNEL_FILES:
        (tmp_path / name).write_text((_kernel.KERNEL_DIR / name).read_text())
    monkeypatch.setattr(_kernel, "KERNEL_DIR", tmp_path)
    assert _kernel.kernel_source(shape) == source
    for header in ("philox.cuh", "portability.h", "exact_math.cuh"):
        (tmp_path / header).write_text((tmp_path / header).read_text() + "\n// edited\n")
        edited = _kernel.kernel_source(shape)
        assert edited != source
        source = edited


def test_kernel_check_compiles_with_the_options_cupy_adds():
    # CuPy appends -ftz=true to every NVRTC compile: the checked binary must use it too
    assert "-ftz=true" in cuda.compile_options() and "--fmad=false" in cuda.compile_options()
