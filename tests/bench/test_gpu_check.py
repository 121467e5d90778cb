"""bench/gpu_check.py: its report, and the CPU parts it runs where there is no GPU."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from runner.kernel.backends import cuda
from tests.helpers import ROOT
from tests.helpers.markers import requires_compiler

BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check")
    sys.path.remove(str(BENCH))


def test_targets_are_judged_on_the_best_gpu_kernel_rate(gpu_check):
    rows = [
        {"backend": "cuda", "neurons": 256, "instances": 1024, "threads_per_block": None,
         "kernel_rate": 4e10, "end_to_end_rate": 3e10},
        {"backend": "cuda", "neurons": 256, "instances": 65536, "threads_per_block": 128,
         "kernel_rate": 1.2e11},
        {"backend": "cuda", "neurons": 1024, "instances": 1024, "threads_per_block": None,
         "kernel_rate": 4.9e10, "end_to_end_rate": 4e10},
        {"backend": "cpu", "neurons": 1024, "instances": 64, "threads_per_block": None,
         "kernel_rate": 9e10},  # a cpu row never counts for the GPU targets
        {"backend": "cuda", "neurons": 256, "instances": 262144, "skipped": "projected"},
    ]  # fmt: skip
    by_n = {t["neurons"]: t for t in gpu_check.evaluate_targets(rows, gpu=True)}
    assert by_n[256]["status"] == "met" and by_n[256]["at_instances"] == 65536
    assert by_n[256]["threads_per_block"] == 128 and by_n[256]["best_end_to_end_rate"] == 3e10
    assert by_n[1024]["status"] == "NOT met" and by_n[1024]["best_kernel_rate"] == 4.9e10
    no_gpu = gpu_check.evaluate_targets(rows, gpu=False)
    assert all(t["status"] == "unmeasured (no GPU)" for t in no_gpu)


@requires_compiler
def test_one_command_writes_a_report_and_names_what_it_skipped(gpu_check, tmp_path):
    status = gpu_check.main(["--out", str(tmp_path), "--skip", "tests", "compile", "sanitizer",
                             "--instances", "3", "--steps", "20", "--budget-s", "300"])  # fmt: skip
    assert status == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    gpu = cuda.unavailable() is None
    assert report["gpu"] is gpu
    steps = {step["name"]: step for step in report["steps"]}
    assert steps["compute-sanitizer racecheck"]["status"] == "skipped"
    bench = [step for name, step in steps.items() if name.startswith("benchmark")]
    assert [step["status"] for step in bench] == ["ok"]
    measured = [row for row in report["bench"] if "kernel_rate" in row]
    assert {(row["neurons"], row["instances"]) for row in measured} >= {(256, 3), (1024, 3)}
    for row in measured:
        assert row["backend"] == ("cuda" if gpu else "cpu")
        assert row["kernel_rate"] > 0 and row["firing_hz"] > 0
        assert row["end_to_end_rate"] == pytest.approx(
            3 * row["neurons"] * 20 / row["end_to_end_s"])
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "## Targets" in markdown and report["device"] in markdown
    if not gpu:
        assert all(t["status"] == "unmeasured (no GPU)" for t in report["targets"])
        assert "benchmark (cpu backend; cuda skipped: no GPU)" in steps


def test_a_step_past_its_timeout_is_stopped_and_keeps_its_output(gpu_check):
    script = "import time; print('started', flush=True); time.sleep(120)"
    step = gpu_check.run_step("slow", [sys.executable, "-c", script], timeout=5)
    assert step.status == "timeout" and "started" in step.detail
    failing = gpu_check.run_step("failing", [sys.executable, "-c", "raise SystemExit(3)"], 30)
    assert failing.status == "failed" and failing.detail.startswith("exit 3")
