"""The cost of synaptic mismatch on the cpu backend: the bench suite's `n1024_ei_4core`
workload quantized to 4 bits, with and without `mismatch_weights` (best of 3 after a
warm-up that builds both kernels), in neuron-steps per second.

    python bench/bench_synaptic.py [instances]
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import workload_by_name  # noqa: E402

from runner.kernel.backends import cpu  # noqa: E402
from runner.network.dynapsim import DynapSimNetwork  # noqa: E402


def main(n_instances: int = 16) -> None:
    workload = workload_by_name("n1024_ei_4core")
    plain = workload.network().quantized(4)
    synaptic = DynapSimNetwork(
        replace(plain.spec, mismatch=replace(plain.spec.mismatch, weights=True))
    )
    x = workload.inputs(n_instances)
    times = {}
    for name, net in (("quantized", plain), ("quantized + synaptic mismatch", synaptic)):
        batch = workload.batch(net, x, n_instances)
        cpu.run(batch)  # warm-up: builds the kernel
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            cpu.run(batch)
            best = min(best, time.perf_counter() - start)
        times[name] = best
        rate = n_instances * workload.n_steps * workload.n_neurons / best
        print(f"{name}: {n_instances} instances x {workload.n_steps} steps x "
              f"{workload.n_neurons} neurons: {best:.3f} s, {rate:.3g} neuron-steps/s")  # fmt: skip
    print(f"ratio: {times['quantized + synaptic mismatch'] / times['quantized']:.2f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
