"""The first contact with a GPU, in one command: `python bench/gpu_check.py --out DIR`.

In at most `--budget-s` seconds (default 470: fits 8 minutes on one H100/H200) it

1. prints the device (name, SMs, memory, compute capability, driver and runtime);
2. runs the GPU tests (`pytest -m gpu`: the cuda column of tests/kernel/test_backends.py and
   tests/kernel/test_cuda.py);
3. runs compute-sanitizer's racecheck, synccheck and memcheck on a small case (N=200,
   several warps), when the tool is installed;
4. benchmarks N=256 (one core) and N=1024 (four E/I cores) at 1k-256k instances: kernel
   time by CUDA events around each launch, for the default launch shape and a sweep of
   threads per block, and end to end (`net.simulate(x, K, backend="cuda")`, wall time);
5. writes DIR/gpu_check.md and DIR/gpu_check.json, with the targets (>= 1e11 neuron-steps/s
   at N=256, >= 5e10 at N=1024) marked met or not, as measured.

Every step runs in a subprocess under a timeout; the benchmark writes each measurement as it
goes and skips a size whose projected time would overrun the budget, so a slow first kernel
still leaves a report. Without a GPU it runs the CPU parts instead (NVRTC compile check,
the backend test suite on the CPU builds, a small cpu-backend benchmark) and says what it
skipped and why.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import Workload, one_core, workload_by_name  # noqa: E402

from runner.kernel import kernel_calls  # noqa: E402
from runner.kernel.backends import (
    cpu,  # noqa: E402
    cuda,  # noqa: E402
)

__all__ = ["TARGETS", "Step", "bench_workloads", "evaluate_targets", "main"]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
TARGETS = {256: 1e11, 1024: 5e10}  # neuron-steps/s on one H100/H200
GPU_INSTANCES = (1024, 4096, 16384, 65536, 262144)
CPU_INSTANCES = (64, 256)
THREADS_SWEEP = (128, 256, 512)  # besides the backend's default; each shape is a compile
_WARM_UP_INSTANCES = 1024
SANITIZER_TOOLS = ("racecheck", "synccheck", "memcheck")


@dataclass
class Step:
    """One step of the check: what ran, how it ended, and its output's tail."""

    name: str
    status: str  # ok | failed | timeout | skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Report:
    device: str
    gpu: bool
    steps: list[Step] = field(default_factory=list)
    bench: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)


def bench_workloads(n_steps: int) -> dict[int, Workload]:
    """N=256 one core and N=1024 four E/I cores, one stimulus shared by all instances."""
    ei = workload_by_name("n1024_ei_4core")
    return {
        256: one_core(256, n_steps=n_steps),
        1024: dataclasses.replace(ei, per_instance_inputs=False, n_steps=n_steps,
                                  description=ei.description.replace(" per instance", "")),
    }  # fmt: skip


def describe_device() -> tuple[str, bool]:
    """A line about the GPU (or why there is none), and whether the cuda backend is usable."""
    reason = cuda.unavailable()
    if reason is not None:
        return f"no GPU: {reason}", False
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    free, total = cupy.cuda.runtime.memGetInfo()
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return (
        f"{name}, {props['multiProcessorCount']} SMs, sm_{props['major']}{props['minor']}, "
        f"{total / 2**30:.0f} GiB ({free / 2**30:.0f} free), driver "
        f"{cupy.cuda.runtime.driverGetVersion()}, runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
        f"CuPy {cupy.__version__}"
    ), True


def run_step(name: str, command: list[str], timeout: float) -> Step:
    """Run a command in its own process group under a timeout; keep its output's tail. On a
    timeout the whole group goes (compute-sanitizer's target, pytest's children)."""
    if timeout < 5:
        return Step(name, "skipped", detail="no time left in the budget")
    start = time.monotonic()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True) as process:  # fmt: skip
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return Step(name, "timeout", time.monotonic() - start,
                        f"stopped after {timeout:.0f} s\n{output[-3000:]}")  # fmt: skip
    status = "ok" if process.returncode == 0 else "failed"
    return Step(name, status, time.monotonic() - start,
                f"exit {process.returncode}\n{output[-3000:]}")  # fmt: skip


def find_sanitizer() -> str | None:
    for candidate in (shutil.which("compute-sanitizer"),
                      os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin",
                                   "compute-sanitizer")):  # fmt: skip
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def sanitizer_case() -> int:
    """The small case the sanitizer watches: N=200 (several warps), 4 instances, recorded."""
    from runner.kernel.backends import reference

    workload = one_core(200, n_steps=40)
    network = workload.network()
    batch = dataclasses.replace(workload.batch(network, workload.inputs(4), 4),
                                record_instances=(1,), bin_width=10)  # fmt: skip
    got, expected = cuda.run(batch), reference.run(batch)
    cuda.draw_parameters(batch)
    same = np.array_equal(got.spike_count, expected.spike_count)
    print(f"sanitizer case: {got.spike_count.sum()} spikes, equal to the reference: {same}")
    return 0


# --- benchmark worker (runs in a subprocess) -------------------------------------------------


@contextlib.contextmanager
def kernel_events() -> Iterator[list]:
    """CUDA events around every launch of the chunk loop the kernel backends share
    (`kernel_calls.run_launches(xp, batch, inputs, chunk_size, launch, ...)`), as
    (start, stop)."""
    import cupy

    original = getattr(kernel_calls, "run_launches", None)
    if original is None:
        raise KernelTimingUnavailable(
            "kernel time needs runner.kernel.kernel_calls.run_launches, the shared chunk loop"
        )
    pairs: list = []

    def run_launches(xp: Any, batch: Any, inputs: Any, chunk_size: int, launch: Any,
                   *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        def timed_launch(chunk: Any, arguments: list) -> None:
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            launch(chunk, arguments)
            stop.record()
            pairs.append((start, stop))

        return original(xp, batch, inputs, chunk_size, timed_launch, *args, **kwargs)

    kernel_calls.run_launches = run_launches
    try:
        yield pairs
    finally:
        kernel_calls.run_launches = original


class KernelTimingUnavailable(RuntimeError):
    """The cuda backend offers no seam to put CUDA events around its launches."""


def kernel_seconds(pairs: list) -> float:
    import cupy

    for _, stop in pairs:
        stop.synchronize()
    return sum(cupy.cuda.get_elapsed_time(start, stop) for start, stop in pairs) / 1e3


def bench_worker(args: argparse.Namespace) -> int:
    """Measure and append one JSON line per measurement to args.json_lines; skip what would
    overrun the deadline (projected from the last rate measured for that N and shape)."""
    deadline = args.deadline
    gpu = cuda.unavailable() is None
    instances = args.instances or (GPU_INSTANCES if gpu else CPU_INSTANCES)
    sweep_supported = "threads_per_block" in inspect.signature(cuda.run).parameters
    shapes: list[int | None] = [None]
    if gpu and sweep_supported:
        shapes += list(args.threads)
    def emit(record: dict) -> None:  # line by line: a timeout keeps what was measured
        with args.json_lines.open("a") as out:
            out.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    if gpu and not sweep_supported:
        emit({"note": "launch-shape sweep skipped: runner.kernel.backends.cuda.run takes no "
                      "threads_per_block keyword"})  # fmt: skip
    workloads = bench_workloads(args.steps)
    networks = {n: workload.network() for n, workload in workloads.items()}
    rates: dict[tuple[int, int | None], float] = {}  # last neuron-steps/s per (N, shape)
    for shape in shapes:  # the default shape first: the targets are judged on it
        for n_neurons, workload in workloads.items():
            x = workload.inputs(1)
            for k in instances:
                work = k * n_neurons * workload.n_steps
                record = {"backend": "cuda" if gpu else "cpu", "neurons": n_neurons,
                          "instances": k, "steps": workload.n_steps,
                          "threads_per_block": shape}  # fmt: skip
                rate = rates.get((n_neurons, shape), rates.get((n_neurons, None)))
                runs = 2 if shape is None else 1  # end to end only at the default shape
                projected = 0.0 if rate is None else runs * work / rate
                if time.time() + projected > deadline:
                    emit({**record, "skipped": f"projected {projected:.0f} s exceeds the budget"})
                    break
                try:
                    record.update(measure(networks[n_neurons], x, workload, k, shape, gpu))
                except Exception as error:  # an invalid shape, out of memory: record, go on
                    emit({**record, "error": f"{error.__class__.__name__}: {error}"[:500]})
                    break
                measured = record.get("kernel_rate") or record.get("end_to_end_rate")
                if measured:
                    rates[n_neurons, shape] = measured
                emit(record)
    return 0


def measure(network: Any, x: np.ndarray, workload: Workload, k: int, shape: int | None,
            gpu: bool) -> dict[str, Any]:  # fmt: skip
    """Kernel rate (CUDA events; on the CPU the backend's wall time) and end-to-end rate."""
    batch = workload.batch(network, x, k)
    work = k * workload.n_neurons * workload.n_steps
    options = {} if shape is None else {"threads_per_block": shape}
    backend = cuda if gpu else cpu
    warm_up = min(k, _WARM_UP_INSTANCES)  # compiles the build, fills caches and pools
    backend.run(workload.batch(network, x, warm_up), **options)
    result: dict[str, Any] = {}
    if gpu:
        try:
            with kernel_events() as pairs:
                start = time.perf_counter()
                backend.run(batch, **options)
                wall = time.perf_counter() - start
            seconds = kernel_seconds(pairs)
            result.update(kernel_s=seconds, kernel_rate=work / seconds, launches=len(pairs),
                          backend_wall_s=wall)  # fmt: skip
        except KernelTimingUnavailable as why:
            result["note"] = str(why)
    else:
        start = time.perf_counter()
        backend.run(batch)
        seconds = time.perf_counter() - start
        result.update(kernel_s=seconds, kernel_rate=work / seconds)
    if shape is None:
        start = time.perf_counter()
        simulated = network.simulate(x, k, backend="cuda" if gpu else "cpu")
        e2e = time.perf_counter() - start
        result.update(end_to_end_s=e2e, end_to_end_rate=work / e2e,
                      firing_hz=float(simulated.spike_counts.mean()
                                      / (workload.n_steps * workload.dt)))  # fmt: skip
    return result


# --- orchestration ------------------------------------------------------------------------


def evaluate_targets(bench: list[dict[str, Any]], gpu: bool) -> list[dict[str, Any]]:
    """Per target N: the best kernel and end-to-end rates measured on the GPU, and whether
    they reach the target; unmeasured when there was no GPU or no measurement."""
    out = []
    for n_neurons, target in TARGETS.items():
        rows = [r for r in bench if r.get("neurons") == n_neurons and r.get("backend") == "cuda"
                and "kernel_rate" in r]  # fmt: skip
        entry: dict[str, Any] = {"neurons": n_neurons, "target": target}
        if not gpu or not rows:
            entry["status"] = "unmeasured" + ("" if gpu else " (no GPU)")
        else:
            best = max(rows, key=lambda r: r["kernel_rate"])
            e2e = [r["end_to_end_rate"] for r in rows if "end_to_end_rate" in r]
            entry.update(best_kernel_rate=best["kernel_rate"], at_instances=best["instances"],
                         threads_per_block=best["threads_per_block"],
                         best_end_to_end_rate=max(e2e) if e2e else None,
                         status="met" if best["kernel_rate"] >= target else "NOT met")  # fmt: skip
        out.append(entry)
    return out


def markdown(report: Report, command: str) -> str:
    lines = [
        "# GPU check", "",
        f"- Command: `{command}`",
        f"- Host: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- Device: {report.device}", "",
        "## Steps", "", "| step | status | seconds |", "|---|---|---|",
        *(f"| {s.name} | {s.status} | {s.seconds:.0f} |" for s in report.steps), "",
        "## Targets", "",
        "| N | target | status | best kernel rate | at K | threads/block | best end-to-end |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for t in report.targets:
        best_e2e = t.get("best_end_to_end_rate")
        lines.append(
            f"| {t['neurons']} | {t['target']:.0e} | {t['status']} | "
            + (f"{t['best_kernel_rate']:.3e} | {t['at_instances']} | "
               f"{t['threads_per_block'] or 'default'} | "
               f"{'' if best_e2e is None else format(best_e2e, '.3e')} |"
               if "best_kernel_rate" in t else " | | | |")
        )  # fmt: skip
    lines += ["", "## Benchmark", "",
              "| backend | N | K | threads/block | kernel s | kernel rate | end-to-end s | "
              "end-to-end rate | e2e/kernel | firing Hz | note |",
              "|---" * 11 + "|"]  # fmt: skip
    for r in report.bench:
        if "neurons" not in r:
            lines.append(f"| | | | | | | | | | | {r.get('note', '')} |")
            continue

        def number(key: str, spec: str = ".3e", row: dict = r) -> str:
            return format(row[key], spec) if row.get(key) is not None else ""

        ratio = (f"{r['end_to_end_s'] / r['kernel_s']:.2f}"
                 if "end_to_end_s" in r and "kernel_s" in r else "")  # fmt: skip
        lines.append(
            f"| {r['backend']} | {r['neurons']} | {r['instances']} | "
            f"{r['threads_per_block'] or 'default'} | {number('kernel_s', '.3f')} | "
            f"{number('kernel_rate')} | {number('end_to_end_s', '.3f')} | "
            f"{number('end_to_end_rate')} | {ratio} | {number('firing_hz', '.1f')} | "
            f"{r.get('skipped') or r.get('error') or r.get('note') or ''} |"
        )
    lines += ["", "## Step output (tails)", ""]
    for s in report.steps:
        lines += [f"### {s.name}: {s.status}", "", "```", s.detail.strip()[-2000:], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--budget-s", type=float, default=470.0)
    parser.add_argument("--steps", type=int, default=1000, help="time steps per run")
    parser.add_argument("--instances", type=int, nargs="*", default=None,
                        help=f"default: {GPU_INSTANCES} on a GPU, {CPU_INSTANCES} on the CPU")
    parser.add_argument("--threads", type=int, nargs="*", default=list(THREADS_SWEEP))
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["tests", "sanitizer", "compile", "bench"])  # fmt: skip
    parser.add_argument("--sanitizer-case", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bench-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json-lines", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sanitizer_case:
        return sanitizer_case()
    if args.bench_worker:
        return bench_worker(args)

    start = time.time()
    deadline = start + args.budget_s

    def left(cap: float) -> float:
        return max(0.0, min(cap, deadline - time.time()))

    device, gpu = describe_device()
    print(f"device: {device}", flush=True)
    report = Report(device=device, gpu=gpu)
    python = sys.executable

    def add(step: Step) -> None:
        report.steps.append(step)
        print(f"[{time.time() - start:5.0f} s] {step.name}: {step.status}"
              + (f" ({step.detail.splitlines()[0]})" if step.status == "skipped" else ""),
              flush=True)  # fmt: skip

    if "compile" in args.skip:
        add(Step("NVRTC compile check", "skipped", detail="--skip compile"))
    elif gpu:
        add(Step("NVRTC compile check", "skipped", detail="the GPU compiles the kernel itself"))
    else:
        add(run_step("NVRTC compile check (sm_80, sm_90; N=1024)",
                     [python, "-m", "runner.kernel.nvrtc_check", "1024"], left(150)))  # fmt: skip
    # in this process's order, without the project's pytest-xdist options (the device's
    # Python has no xdist, and one GPU is one worker)
    pytest = [python, "-m", "pytest", "-o", "addopts=", "-q", "-rs"]
    if "tests" in args.skip:
        add(Step("tests", "skipped", detail="--skip tests"))
    elif gpu:
        add(run_step("GPU tests (pytest -m gpu)", [*pytest, "-m", "gpu", "tests"], left(170)))
    else:
        add(Step("GPU tests", "skipped", detail="no GPU"))
        add(run_step("backend suite on the CPU builds (tests/kernel/test_backends.py)",
                     [*pytest, "tests/kernel/test_backends.py"], left(240)))
    sanitizer = find_sanitizer()
    for tool in SANITIZER_TOOLS:
        name = f"compute-sanitizer {tool}"
        if "sanitizer" in args.skip or not gpu or sanitizer is None:
            why = ("--skip sanitizer" if "sanitizer" in args.skip else
                   "no GPU" if not gpu else "compute-sanitizer not found (PATH, $CUDA_HOME/bin)")
            add(Step(name, "skipped", detail=why))
            continue
        add(run_step(name, [sanitizer, "--tool", tool, "--error-exitcode", "99", python,
                            str(SCRIPT), "--sanitizer-case"], left(45)))  # fmt: skip
    if "bench" in args.skip:
        add(Step("benchmark", "skipped", detail="--skip bench"))
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        lines = args.out / "bench.jsonl"
        lines.unlink(missing_ok=True)
        bench_deadline = deadline - 10  # room to write the report
        command = [python, str(SCRIPT), "--bench-worker", "--json-lines", str(lines),
                   "--deadline", str(bench_deadline), "--steps", str(args.steps),
                   "--threads", *map(str, args.threads)]  # fmt: skip
        if args.instances:
            command += ["--instances", *map(str, args.instances)]
        label = "benchmark (cuda)" if gpu else "benchmark (cpu backend; cuda skipped: no GPU)"
        add(run_step(label, command, left(bench_deadline - time.time() + 5)))
        if lines.exists():
            report.bench = [json.loads(line) for line in lines.read_text().splitlines() if line]
    report.targets = evaluate_targets(report.bench, gpu)
    args.out.mkdir(parents=True, exist_ok=True)
    command = f"python bench/gpu_check.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    (args.out / "gpu_check.md").write_text(markdown(report, command))
    (args.out / "gpu_check.json").write_text(json.dumps(dataclasses.asdict(report), indent=2))
    for target in report.targets:
        print(f"target N={target['neurons']} >= {target['target']:.0e}: {target['status']}")
    skipped = [s.name for s in report.steps if s.status == "skipped"]
    if skipped:
        print("skipped: " + "; ".join(skipped))
    print(f"report: {args.out / 'gpu_check.md'} ({time.time() - start:.0f} s)")
    failed = [s for s in report.steps if s.status in ("failed", "timeout")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
