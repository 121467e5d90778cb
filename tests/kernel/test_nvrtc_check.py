"""CI compiles the exact GPU kernel source with NVRTC (no GPU needed) for sm_80 and sm_90,
at the launch shapes the cuda backend chooses from; and the shape rules themselves."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.kernel import kernel_calls, nvrtc_check
from runner.kernel.backends import cuda
from tests.helpers.markers import requires_nvrtc, slow


@slow  # a full NVRTC compile of the kernel per architecture
@requires_nvrtc
@pytest.mark.parametrize("arch", nvrtc_check.ARCHITECTURES)
def test_kernel_source_compiles_for_the_gpu_without_spills(arch, nvrtc_compiled_at_200):
    # nvrtc_check.compile_for(arch, 200, cuda.Shape(threads, 4)) for the first candidate
    # shape of N=200 (7 warps, 4 neurons per thread, padding), begun in the background
    report = nvrtc_compiled_at_200[arch, 0].result()
    print(report.log)
    assert report.ok, report.log
    assert "dynapsim_run" in report.log and "dynapsim_draw" in report.log
    assert "bytes spill stores" in report.log and report.spill_bytes == 0


@requires_nvrtc
def test_kernel_check_exits_non_zero_on_a_compile_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))  # compiled, not read back
    monkeypatch.setattr(nvrtc_check, "kernel_source", lambda defines: "this is not C++;\n")
    assert nvrtc_check.main(["16"]) == 1
    assert "FAILED" in capsys.readouterr().out


@requires_nvrtc
def test_a_report_is_compiled_once_then_read_from_the_cache(monkeypatch, tmp_path):
    """The same source, options and NVRTC give the same report: kept and read back (here
    marked to show where it came from); another source is compiled."""
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    tiny = 'extern "C" __global__ void dynapsim_run(int* x) { x[threadIdx.x] = %d; }\n'
    monkeypatch.setattr(nvrtc_check, "kernel_source", lambda defines: tiny % 1)
    shape = cuda.Shape(32, 1)
    first = nvrtc_check.compile_for("sm_80", 32, shape)
    (kept,) = (tmp_path / "nvrtc").glob("*.json")
    assert first.ok and "dynapsim_run" in first.log and kept.parent.stat().st_mode & 0o077 == 0
    kept.write_text(kept.read_text().replace("dynapsim_run", "read back"))

    again = nvrtc_check.compile_for("sm_80", 32, shape)
    assert again.ok and "read back" in again.log and again.spill_bytes == first.spill_bytes
    assert "dynapsim_run" in nvrtc_check.compile_for("sm_90", 32, shape).log  # other options
    monkeypatch.setattr(nvrtc_check, "kernel_source", lambda defines: tiny % 2)
    assert "dynapsim_run" in nvrtc_check.compile_for("sm_80", 32, shape).log  # other source
    assert len(list((tmp_path / "nvrtc").glob("*.json"))) == 3


@requires_nvrtc
def test_checks_running_at_once_compile_a_source_once(monkeypatch, tmp_path):
    # two kernel checks (or test workers) at once: one compiles, the other reads its report
    monkeypatch.setenv("DYNAPSIM_RUNNER_CACHE", str(tmp_path))
    compiles = []

    def slow_compile(source: str, options: tuple[str, ...]) -> tuple[bool, str]:
        compiles.append(options)
        time.sleep(0.3)  # long enough for the other caller to reach the lock
        return True, f"compiled with {' '.join(options)}"

    monkeypatch.setattr(nvrtc_check, "_compile", slow_compile)
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: nvrtc_check.compile_for("sm_90", 64, cuda.Shape(64, 1)),
                                range(2)))  # fmt: skip
    assert len(compiles) == 1 and reports[0] == reports[1] and "-arch=sm_90" in reports[0].log


def test_kernel_check_refuses_networks_the_backend_refuses(capsys):
    assert nvrtc_check.main([str(cuda.MAX_NEURONS + 1)]) == 1
    assert f"1 to {cuda.MAX_NEURONS} neurons" in capsys.readouterr().out


def test_spill_bytes_are_read_from_the_ptxas_report():
    log = ("ptxas info    : Function properties for dynapsim_run\n"
           "    24 bytes stack frame, 16 bytes spill stores, 8 bytes spill loads\n"
           "ptxas info    : Function properties for dynapsim_draw\n"
           "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n")  # fmt: skip
    assert nvrtc_check.CompileReport("sm_90", 64, 64, True, log).spill_bytes == 24


def test_kernel_check_models_occupancy_from_the_ptxas_registers():
    log = ("ptxas info    : Compiling entry function 'dynapsim_draw' for 'sm_90'\n"
           "ptxas info    : Used 40 registers, used 1 barriers, 1024 bytes smem\n"
           "ptxas info    : Compiling entry function 'dynapsim_run' for 'sm_90'\n"
           "ptxas info    : Used 78 registers, used 1 barriers, 2080 bytes smem\n")  # fmt: skip
    # 78 registers: 2560 a warp (units of 256), 8 warps a block: 3 blocks in 65536 registers
    report = nvrtc_check.CompileReport("sm_90", 1024, cuda.Shape(256, 4), True, log)
    assert report.resident_blocks() == 3
    # 32 threads: the 32-block limit binds before the registers (2560 x 32 > 65536? no: 25)
    report = nvrtc_check.CompileReport("sm_90", 32, cuda.Shape(32, 1), True, log)
    assert report.resident_blocks() == 25


def test_kernel_check_models_occupancy_from_the_shared_memory():
    log = ("ptxas info    : Compiling entry function 'dynapsim_run' for 'sm_80'\n"
           "ptxas info    : Used 32 registers, used 1 barriers, 512 bytes smem\n")  # fmt: skip
    # 2048 neurons, 4 factors in shared memory: 8 x 2048 + 4 x 4 x 2048 bytes of dynamic
    # shared memory, 512 static, 1024 reserved = 50688: 3 blocks in 164 KiB; on 1024 threads
    # the 2048 threads bind first
    shape = cuda.Shape(1024, 2, 4)
    assert nvrtc_check.CompileReport("sm_80", 2048, shape, True, log).resident_blocks() == 2
    shape = cuda.Shape(256, 8, 4)
    assert nvrtc_check.CompileReport("sm_80", 2048, shape, True, log).resident_blocks() == 3
    # 18 factors: 163840 + 512 bytes, within the 163 KiB a block may have on sm_80: one block
    shape = cuda.Shape(1024, 2, 18)
    assert nvrtc_check.CompileReport("sm_80", 2048, shape, True, log).resident_blocks() == 1
    # 4096 neurons with 18 factors: more than a block may have: does not fit
    shape = cuda.Shape(1024, 4, 18)
    assert nvrtc_check.CompileReport("sm_90", 4096, shape, True, log).resident_blocks() == 0


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
    # a made-up device: 2048 resident threads per multiprocessor, at most 16 blocks; a
    # 1024-thread block spills with its factors in registers
    def occupancy(shape):
        spills = shape.threads == 1024 and not shape.shared_factors
        return min(16, 2048 // shape.threads), (128 if spills else 0)

    no_room = 0  # no shared memory for factors: every shape keeps them in registers
    # 1024 neurons: 256..1024 threads all fill the multiprocessor; 1024 spills; of the
    # rest the most neurons per thread wins
    assert cuda.choose_shape(1024, occupancy, no_room) == cuda.Shape(256, 4)
    # 48 neurons: 64 threads x 16 blocks (32 warps) beat 32 threads x 16 blocks (16 warps)
    assert cuda.choose_shape(48, occupancy, no_room) == cuda.Shape(64, 1)
    # only one candidate, spilling: still launched
    assert cuda.choose_shape(8192, occupancy, no_room) == cuda.Shape(1024, 8)
    # with 100 KiB of shared memory a block: 8192 neurons fit the spike list and 1 factor
    # (64 + 32 KiB); that variant does not spill here and is launched
    assert cuda.choose_shape(8192, occupancy, 100 * 1024) == cuda.Shape(1024, 8, 1)


def test_factors_move_to_shared_memory_only_where_registers_spill():
    tried = []

    def occupancy(shape):  # registers spill at 2 or more neurons a thread, unless shared
        tried.append(shape)
        return 1, (64 if shape.per_thread >= 2 and not shape.shared_factors else 0)

    # 2048 neurons, 163 KiB a block: 18 factors fit (16 + 144 KiB) on 1024 threads x 2
    chosen = cuda.choose_shape(2048, occupancy, 166912)
    assert chosen == cuda.Shape(1024, 2, 18)
    most = kernel_calls.max_shared_factors
    assert {s for s in tried if s.shared_factors} == {
        cuda.Shape(t, p, most(2048, t, 166912)) for t, p in cuda.candidate_shapes(2048)
    }
    # 1024 neurons: 1024 threads x 1 neuron does not spill; no variant of it is tried
    tried.clear()
    assert cuda.choose_shape(1024, occupancy, 166912) == cuda.Shape(1024, 1)
    assert cuda.Shape(1024, 1, 18) not in tried


def test_where_every_shape_spills_the_least_spilling_is_launched():
    # 8192 neurons on sm_80 (as compiled): factors in registers spill 21.6 KB a thread at two
    # blocks a multiprocessor; 3 factors in shared memory spill 4.2 KB at one block
    def occupancy(shape):
        return (1, 4192) if shape.shared_factors else (2, 21592)

    assert cuda.choose_shape(8192, occupancy, 166912) == cuda.Shape(1024, 8, 3)


def test_at_equal_occupancy_factors_stay_in_registers():
    # 1024 neurons (as compiled for sm_90): 512 x 2 holds its factors in registers, 16 warps;
    # 256 x 4 needs them in shared memory, then 2 blocks of 8 warps; 1024 x 1 spills
    def occupancy(shape):
        if shape.threads == 1024:
            return 1, 144
        if shape.threads == 256:
            return (2, 0) if shape.shared_factors else (1, 140)
        return 1, (36 if shape.threads == 352 else 0)

    assert cuda.choose_shape(1024, occupancy, 232448) == cuda.Shape(512, 2)


def test_the_shared_factors_fit_the_block_limit():
    # 2048 neurons, 1024 threads: 16 KiB of spike list, 8 KiB a factor, 2 KiB static bound
    assert kernel_calls.max_shared_factors(2048, 1024, 166912) == 18  # sm_80: 163 KiB
    assert kernel_calls.max_shared_factors(4096, 1024, 166912) == 8
    assert kernel_calls.max_shared_factors(8192, 1024, 232448) == 5  # sm_90: 227 KiB
    assert kernel_calls.max_shared_factors(8192, 1024, 48 * 1024) == 0
    # padding slots count: 200 neurons on 64 threads are 256 slots
    assert kernel_calls.run_shared_bytes(200, 64, 3) == 4 * (2 * 200 + 3 * 256)


def test_the_gpu_source_is_self_contained_and_keyed_on_every_header(monkeypatch, tmp_path):
    # CuPy's on-disk cache keys on the source text: every header must be inside it
    shape = kernel_calls.defines(64, 32)
    source = kernel_calls.kernel_source(shape)
    assert '#include "' not in source and "dyn_philox" in source and "dyn_expf" in source
    for name in kernel_calls.KERNEL_FILES:
        (tmp_path / name).write_text((kernel_calls.KERNEL_DIR / name).read_text())
    monkeypatch.setattr(kernel_calls, "KERNEL_DIR", tmp_path)
    assert kernel_calls.kernel_source(shape) == source
    for header in ("philox.cuh", "portability.h", "exact_math.cuh"):
        (tmp_path / header).write_text((tmp_path / header).read_text() + "\n// edited\n")
        edited = kernel_calls.kernel_source(shape)
        assert edited != source
        source = edited


def test_the_gpu_source_leaves_out_the_host_vector_paths(monkeypatch, tmp_path):
    # host_vector.h is the one-thread host build's: it keys the cpu build, not the GPU source
    source = kernel_calls.kernel_source(kernel_calls.defines(1024, 1))
    for host_only in ("immintrin", "vector_size", "dyn_add_row", "dyn_record_all"):
        assert host_only not in source
    for name in kernel_calls.KERNEL_FILES:
        (tmp_path / name).write_text((kernel_calls.KERNEL_DIR / name).read_text())
    monkeypatch.setattr(kernel_calls, "KERNEL_DIR", tmp_path)
    digest = kernel_calls.source_digest()
    (tmp_path / "host_vector.h").write_text((tmp_path / "host_vector.h").read_text() + "//\n")
    assert kernel_calls.kernel_source(kernel_calls.defines(1024, 1)) == source
    assert kernel_calls.source_digest() != digest


def test_kernel_check_compiles_with_the_options_cupy_adds():
    # CuPy appends -ftz=true to every NVRTC compile: the checked binary must use it too
    assert "-ftz=true" in cuda.compile_options() and "--fmad=false" in cuda.compile_options()
