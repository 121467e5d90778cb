"""Neuron-steps per second of every backend, and of Rockpool 3.1, on one workload in one run.

Default workload (issue 3): N=256 neurons in one core, 64 Poisson inputs at 20 Hz, T=1000
steps of dt=1 ms, 5 % dense recurrent weights, percent_mismatch=0.1, instances
1/64/256/4096. Rockpool runs its best strategy: one nominal DynapSim, the sampled
parameter sets vmapped under jax.jit. Only measured numbers are reported; a backend above
its instance cap (--max-*) is skipped, not extrapolated.

    python bench/bench_backends.py [--quick] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Idle OpenBLAS workers spin after the reference's matmuls and steal the cores of the next
# backend (cpu at 1 instance measured 10x too slow); the reference does not gain from them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.backends import cpu, cuda, reference  # noqa: E402
from runner.batch import Batch, InputEvents, Variant  # noqa: E402
from runner.mismatch import MismatchModel  # noqa: E402
from runner.model import DEFAULT_CURRENTS, DEFAULT_LAYOUT, PARAMETER_NAMES  # noqa: E402


def workload(n_instances: int, n_neurons: int, n_steps: int, seed: int = 2026) -> Batch:
    """The benchmark network: integer (quantized) weights, one shared Poisson stimulus."""
    rng = np.random.default_rng(seed)
    n_inputs, rate, dt = 64, 20.0, 1e-3
    w_in = (rng.random((n_inputs, n_neurons)) < 0.25) * rng.integers(1, 4, (n_inputs, n_neurons))
    shape = (n_neurons, n_neurons)
    w_rec = (rng.random(shape) < 0.05) * rng.choice([-2, -1, 1, 2], shape)
    x = (rng.random((n_steps, n_inputs)) < rate * dt).astype(np.float32)
    nominal = {name: np.full(n_neurons, value, np.float32)
               for name, value in {**DEFAULT_CURRENTS, **DEFAULT_LAYOUT}.items()}  # fmt: skip
    return Batch(
        variants=(Variant(nominal, Iscale=1e-8, mismatch=MismatchModel(percent=0.1)),),
        core_map=np.zeros(n_neurons, np.int32),
        weights_in=w_in.astype(np.float32), weights_rec=w_rec.astype(np.float32),
        dt=dt, seed=seed, instances=np.arange(n_instances, dtype=np.uint64),
        instance_variant=np.zeros(n_instances, np.int32),
        inputs=InputEvents.from_dense(x, n_instances),
    )  # fmt: skip


def rockpool_runner(batch: Batch) -> Callable[[], np.ndarray]:
    """Rockpool's best strategy: jit(vmap(evolve)) over the per-instance parameter dicts."""
    import jax
    import jax.numpy as jnp
    from rockpool.devices.dynapse import DynapSim

    params, _ = batch.sample_parameters()
    n = batch.n_neurons
    (variant,) = batch.variants
    nominal = {k: jnp.asarray(variant.nominal[k]) for k in PARAMETER_NAMES}
    module = DynapSim((n, n), w_rec=jnp.asarray(batch.weights_rec), has_rec=True, dt=batch.dt,
                      Iscale=variant.Iscale, **nominal)  # fmt: skip
    u = jnp.asarray(batch.inputs.dense(0) @ batch.weights_in)

    def spike_counts(instance_params: dict) -> jax.Array:
        spikes, _, _ = module.set_attributes(instance_params).evolve(u, record=False)
        return spikes.sum(axis=-2)

    evolve = jax.jit(jax.vmap(spike_counts))
    stacked = {k: jnp.asarray(v) for k, v in params.items()}
    return lambda: np.asarray(jax.block_until_ready(evolve(stacked)))


def timed(run: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` runs, after one warm-up (compilation, caches)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor())  # fmt: skip
    return f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="instances 1/64, T=200")
    parser.add_argument("--instances", type=int, nargs="*", default=[1, 64, 256, 4096])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--neurons", type=int, default=256)
    parser.add_argument("--max-reference", type=int, default=256)
    parser.add_argument("--max-rockpool", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="append the table here")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.steps = [1, 64], 200

    runners: dict[str, tuple[int, Callable[[Batch], Callable[[], object]]]] = {
        "reference": (args.max_reference, lambda b: lambda: reference.run(b)),
        "cpu": (1 << 30, lambda b: lambda: cpu.run(b)),
        "rockpool (jit+vmap)": (args.max_rockpool, rockpool_runner),
    }
    if cuda.unavailable() is None:
        runners["cuda"] = (1 << 30, lambda b: lambda: cuda.run(b))

    rows = []
    for n_instances in args.instances:
        batch = workload(n_instances, args.neurons, args.steps)
        work = n_instances * args.neurons * args.steps
        rates: dict[str, float] = {}
        for name, (cap, make) in runners.items():
            if n_instances > cap:
                continue
            seconds = timed(make(batch), args.repeats)
            rates[name] = work / seconds
            print(f"{name:>20} B={n_instances:5d}: {rates[name]:.3e} neuron-steps/s "
                  f"({seconds:.3f} s)", flush=True)  # fmt: skip
        for name, rate in rates.items():
            vs_ref = f"{rate / rates['reference']:.1f}x" if "reference" in rates else "n/m"
            vs_rock = (f"{rate / rates['rockpool (jit+vmap)']:.1f}x"
                       if "rockpool (jit+vmap)" in rates else "n/m")  # fmt: skip
            rows.append(f"| {name} | {n_instances} | {rate:.3e} | {vs_ref} | {vs_rock} |")
        if "cuda" not in runners:
            rows.append(f"| cuda | {n_instances} | unmeasured (no GPU in this session) | | |")

    table = "\n".join([
        f"Machine: {machine()}",
        f"Command: `python bench/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`",
        f"Workload: N={args.neurons}, 64 Poisson inputs at 20 Hz, T={args.steps}, dt=1 ms, "
        "5 % recurrent weights, percent_mismatch=0.1",
        "",
        "| backend | instances | neuron-steps/s | vs reference | vs Rockpool |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "n/m: not measured at this instance count (capped: --max-reference/--max-rockpool).",
    ])  # fmt: skip
    print(table)
    if args.out:
        with args.out.open("a") as handle:
            handle.write(table + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
