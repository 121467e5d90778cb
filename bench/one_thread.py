"""The cpu kernel on one thread, per workload: its rate and a digest of its reductions.

For changes to the host build: run it on the old and the new kernel (two checkouts, in
turn, pinned to one core) and compare. The rates say what the change is worth without
the noise of two threads on a shared host; equal digests say that no bit of any result
moved (the digest covers every reduction, for these K and T).

    taskset -c 1 python bench/one_thread.py [--instances 256] [--steps 500] [--repeats 3]
        [WORKLOAD ...]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's runner

from machine import machine  # noqa: E402
from workloads import SUITE  # noqa: E402

from runner.kernel.backends import cpu  # noqa: E402
from runner.kernel.batch import REDUCTION_FIELDS, BatchResult  # noqa: E402

__all__ = ["reductions_digest", "main"]


def reductions_digest(result: BatchResult) -> str:
    """SHA-256 (12 hex digits) of every reduction of a result, in REDUCTION_FIELDS order."""
    digest = hashlib.sha256()
    for name in REDUCTION_FIELDS:
        digest.update(np.ascontiguousarray(getattr(result, name)).tobytes())
    return digest.hexdigest()[:12]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", help="names from bench/workloads.py (all)")
    parser.add_argument("--instances", type=int, default=256)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(machine())
    for workload in SUITE:
        if args.workloads and workload.name not in args.workloads:
            continue
        workload = workload.with_steps(args.steps)
        network, k = workload.network(), args.instances
        batch = workload.batch(network, workload.inputs(k), k)
        result = cpu.run(batch, num_threads=1)  # warm-up: compilation, caches
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            cpu.run(batch, num_threads=1)
            best = min(best, time.perf_counter() - start)
        rate = k * workload.n_neurons * workload.n_steps / best
        digest = reductions_digest(result)
        print(f"{workload.name:26s} {rate:.3e} neuron-steps/s  reductions {digest}", flush=True)


if __name__ == "__main__":
    main()
