"""Neuron-steps per second of every backend and of Rockpool 3.1 on a suite of workloads.

The suite (bench/workloads.py): N=256 one core with a shared stimulus and with one stimulus
per instance, N=1024 four E/I cores, a low-rate network (~7 Hz), a high-rate one with
multi-spike steps, inputs that are not integer counts, strong adaptation. Per workload, in
one run:

- kernel: the backend on the prepared batch (`backend.run(batch)`);
- end to end: `net.simulate(x, K, backend=...)` from the dense input x, as a user calls it
  (input checks, dense -> events, result assembly included);
- Rockpool: its best strategy, one nominal DynapSim and the sampled parameter sets (and the
  instances' inputs) vmapped under jax.jit, from the same dense x (W_in inside the jit);
- Rockpool on all cores: the same, the instances split over one XLA host device per core
  (jax.pmap of the vmap). XLA runs one jit's elementwise work on one core, so the plain
  vmap leaves the other cores idle, while the cpu backend spreads instances over all of
  them: this column is the like-for-like comparison on a multi-core machine.

Each time is the best of `--repeats` runs after a warm-up (compilation, caches), the columns
of a workload run in turn within each round (a slow minute of a shared host then slows every
column of the row, not only the one that ran in it). Only
measured numbers are reported; the reference runs `--reference-instances` instances (it is
slow), its rate is compared as a rate.

    python bench/bench_backends.py [--quick] [--workloads NAME ...] [--json F] [--out F.md]
                                   [--chip-ratio ROUNDS]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Idle OpenBLAS workers spin after the reference's matmuls and steal the cores of the next
# backend (cpu at 1 instance measured 10x too slow); the reference does not gain from them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# One XLA host device per core, for Rockpool's pmap over all cores (read when jax loads).
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine  # noqa: E402
from workloads import SUITE, Workload, workload_by_name  # noqa: E402

from runner.kernel.backends import (
    cpu,  # noqa: E402
    cuda,  # noqa: E402
    reference,  # noqa: E402
)
from runner.kernel.batch import Batch  # noqa: E402
from runner.network.dynapsim import DynapSimNetwork  # noqa: E402
from runner.physics.parameters import PARAMETER_NAMES  # noqa: E402

__all__ = ["best_times", "rockpool_runner", "main"]


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each of `runs` over `repeats` rounds, after one warm-up each
    (compilation, caches). A round runs each once, in turn: a slower minute of a shared
    host hits every column of a row alike, instead of the one that happened to run then."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def rockpool_runner(
    network: DynapSimNetwork, x: np.ndarray, batch: Batch, all_cores: bool = False
) -> Callable[[], np.ndarray]:
    """Rockpool's best strategy: jit(vmap(evolve)) over the instances' parameter dicts (and
    inputs, when each instance has its own), from the dense input through W_in; all_cores:
    the instances split evenly over the XLA host devices, pmap(vmap(evolve)). The runner
    returns the spike counts (K, N)."""
    import jax
    import jax.numpy as jnp
    from rockpool.devices.dynapse import DynapSim

    spec = network.spec
    n = spec.n_neurons
    (variant,) = batch.variants
    nominal = {k: jnp.asarray(variant.nominal[k]) for k in PARAMETER_NAMES}
    has_rec = spec.weights_rec is not None
    w_rec = jnp.asarray(spec.weights_rec if has_rec else np.zeros((n, n)), jnp.float32)
    module = DynapSim((n, n), w_rec=w_rec, has_rec=has_rec, dt=spec.dt, Iscale=variant.Iscale,
                      **nominal)  # fmt: skip
    w_in = jnp.asarray(spec.weights_in, jnp.float32)

    def spike_counts(instance_params: dict, x_instance: jax.Array) -> jax.Array:
        spikes, _, _ = module.set_attributes(instance_params).evolve(x_instance @ w_in,
                                                                     record=False)
        return spikes.sum(axis=-2)

    per_instance = 0 if x.ndim == 3 else None
    params, _ = batch.sample_parameters()
    k = batch.n_instances
    vmapped = jax.vmap(spike_counts, in_axes=(0, per_instance))
    if all_cores:
        devices = math.gcd(k, jax.local_device_count())  # an even split of the instances

        def split(v: np.ndarray) -> np.ndarray:
            return np.asarray(v).reshape(devices, k // devices, *np.shape(v)[1:])

        evolve = jax.pmap(vmapped, in_axes=(0, per_instance),
                          devices=jax.local_devices()[:devices])  # fmt: skip
        stacked = {name: split(v) for name, v in params.items()}
        x_in = split(x) if x.ndim == 3 else x
    else:
        evolve = jax.jit(vmapped)
        stacked = {name: jnp.asarray(v) for name, v in params.items()}
        x_in = jnp.asarray(x)
    return lambda: np.asarray(jax.block_until_ready(evolve(stacked, x_in))).reshape(k, n)


def measure_workload(workload: Workload, args: argparse.Namespace, backends: list[str]) -> dict:
    """Rates (neuron-steps/s) of each column for one workload."""
    network, k = workload.network(), args.instances
    x = workload.inputs(k)
    batch = workload.batch(network, x, k)
    work = k * workload.n_neurons * workload.n_steps
    row: dict = {
        "workload": workload.name, "description": workload.description, "instances": k,
        "neurons": workload.n_neurons, "steps": workload.n_steps,
    }  # fmt: skip
    modules = {"cpu": cpu, "cuda": cuda}
    runs: dict[str, Callable[[], object]] = {}
    for name in backends:
        runs[f"{name}kernel_calls"] = lambda m=modules[name]: m.run(batch)
        runs[f"{name}_end_to_end"] = lambda n=name: network.simulate(x, k, backend=n)
    if args.rockpool:
        on_one, on_all = (rockpool_runner(network, x, batch, all_cores=flag)
                          for flag in (False, True))  # fmt: skip
        runs["rockpool"], runs["rockpool_all_cores"] = on_one, on_all
    for column, seconds in best_times(runs, args.repeats).items():
        row[column] = work / seconds
    counts = modules[backends[0]].run(batch).spike_count
    row["rate_hz"] = float(counts.mean() / (workload.n_steps * workload.dt))
    if args.reference_instances > 0:
        kr = min(k, args.reference_instances)
        small = workload.batch(network, x[:kr] if x.ndim == 3 else x, kr)
        seconds = best_times({"reference": lambda: reference.run(small)},
                             max(1, args.repeats - 1))["reference"]  # fmt: skip
        row["reference"] = kr * workload.n_neurons * workload.n_steps / seconds
        row["reference_instances"] = kr
    if args.rockpool:
        row["rockpool_split_same_counts"] = bool(np.array_equal(on_one(), on_all()))
    return row


def chip_ratio(args: argparse.Namespace, rounds: int) -> str:
    """The N=1024 target, robust to a loaded machine: the cpu kernel rates of n1024_ei_4core
    and n256_one_core, measured round-robin `rounds` times (best of each), so that load
    changes hit both alike; their ratio per neuron-step."""
    runs = {}
    for name in ("n256_one_core", "n1024_ei_4core"):
        workload = workload_by_name(name).with_steps(args.steps)
        network = workload.network()
        batch = workload.batch(network, workload.inputs(args.instances), args.instances)
        cpu.run(batch)  # warm-up: build, caches
        runs[name] = (batch, args.instances * workload.n_neurons * workload.n_steps)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, (batch, _) in runs.items():
            start = time.perf_counter()
            cpu.run(batch)
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: work / best[name] for name, (_, work) in runs.items()}
    ratio = rates["n1024_ei_4core"] / rates["n256_one_core"]
    measured = ", ".join(f"{name} {rate:.2e}" for name, rate in rates.items())
    return (f"cpu kernel, round-robin best of {rounds}: {measured} neuron-steps/s; N=1024 at "
            f"{ratio:.2f} of the N=256 speed per neuron-step (target >= 0.60)")  # fmt: skip


def _rate(value: float | None) -> str:
    return "n/m" if value is None else f"{value:.2e}"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/m" if a is None or b is None else f"{a / b:.1f}x"


def table(rows: list[dict], backends: list[str]) -> str:
    """Markdown: rates per column, then the ratios the targets are stated in."""
    main = backends[-1]  # cuda when present, else cpu
    lines = [
        "| workload | K | firing Hz | reference | " + " | ".join(
            f"{b} kernel | {b} end-to-end" for b in backends) + " | Rockpool | "
        f"Rockpool all cores | {main} e2e / kernel time | {main} kernel vs reference | "
        f"{main} e2e vs Rockpool | {main} e2e vs Rockpool all cores |",
        "|---" * (10 + 2 * len(backends)) + "|",
    ]  # fmt: skip
    for row in rows:
        cells = [row["workload"], str(row["instances"]), f"{row['rate_hz']:.1f}",
                 _rate(row.get("reference"))]  # fmt: skip
        for b in backends:
            cells += [_rate(row[f"{b}kernel_calls"]), _rate(row[f"{b}_end_to_end"])]
        kernel, e2e = row[f"{main}kernel_calls"], row[f"{main}_end_to_end"]
        cells += [
            _rate(row.get("rockpool")), _rate(row.get("rockpool_all_cores")), f"{kernel / e2e:.2f}",
            _ratio(kernel, row.get("reference")), _ratio(e2e, row.get("rockpool")),
            _ratio(e2e, row.get("rockpool_all_cores")),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 instances, T=200, 1 repeat")
    parser.add_argument("--workloads", nargs="*", default=[w.name for w in SUITE],
                        choices=[w.name for w in SUITE])  # fmt: skip
    parser.add_argument("--instances", type=int, default=256)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--reference-instances", type=int, default=4,
                        help="instances the reference runs (0: skip it)")  # fmt: skip
    parser.add_argument("--no-rockpool", dest="rockpool", action="store_false")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    parser.add_argument("--out", type=Path, default=None, help="append the table here")
    parser.add_argument("--chip-ratio", type=int, default=0, metavar="ROUNDS",
                        help="also measure the N=1024/N=256 ratio round-robin (0: skip)")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.steps, args.repeats = 32, 200, 1
    backends = ["cpu"] + (["cuda"] if cuda.unavailable() is None else [])

    rows = []
    for workload in SUITE:
        if workload.name in args.workloads:
            rows.append(measure_workload(workload.with_steps(args.steps), args, backends))
            print(json.dumps(rows[-1]), flush=True)
    command = f"python bench/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}".strip()
    report = "\n".join([
        f"Machine: {machine()}",
        f"Command: `{command}`",
        f"Instances K={args.instances} (reference: {args.reference_instances}), "
        f"T={args.steps}, dt=1 ms, percent_mismatch=0.1; rates in neuron-steps/s"
        + ("" if "cuda" in backends else "; cuda: no GPU in this run, not measured"),
        "",
        table(rows, backends),
        "",
        "n/m: not measured (reference skipped, or Rockpool off).",
        *([f"\nChip size: {chip_ratio(args, args.chip_ratio)}"] if args.chip_ratio else []),
    ])  # fmt: skip
    print(report)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "command": command,
                                         "rows": rows}, indent=2))  # fmt: skip
    if args.out:
        with args.out.open("a") as handle:
            handle.write(report + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
