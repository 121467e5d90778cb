"""Weight quantization: `runner.quantize_weights` against Rockpool 3.1's
`autoencoder_quantization`, time and per-core error, on the same chip-sized matrices.

The matrices fill one DYNAP-SE2: 4 cores of 256 neurons, 64 inputs, normal weights
(N(0, 1)), each neuron with exactly 64 incoming connections (the chip's CAM) drawn from the
64 inputs and 1024 neurons. Both quantize them to 4 bits. The error of a core is the
relative Frobenius error of its columns, ||W_c - R_c|| / ||W_c|| (input and recurrent rows
together), R the weights the quantized chip realises, restored from masks, signs and the
base weights Iw_0..Iw_3 of the core.

- ours: the best of `--repeats` runs (every run gives the same bits);
- Rockpool: one run, its defaults (Adam, step 1e-4, up to 1e7 epochs, stopped when the
  loss no longer falls by 1e-6 over 5 checkpoints of 1000 epochs) unless `--rockpool-epochs
  E` (then exactly E epochs per core); its autoencoder starts from NumPy's global RNG,
  seeded with `--seed`. JIT compilation is included in its time (it compiles per core).

Then our time and error for 1 to 8 bits (Rockpool's quantization is 4-bit only).

    python bench/bench_quantization.py [--seed S] [--repeats R] [--rockpool-epochs E]
                                       [--no-rockpool]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from runner import check_hardware, dynapsim_net_from_spec, quantize_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

N_CORES, PER_CORE, N_INPUTS, FAN_IN, ISCALE = 4, 256, 64, 64, 1e-8


def chip_matrices(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights_in, weights_rec, core_map): normal weights, 64 sources per neuron."""
    rng = np.random.default_rng(seed)
    n = N_CORES * PER_CORE
    sources = np.zeros((N_INPUTS + n, n), dtype=bool)
    for neuron in range(n):
        sources[rng.choice(N_INPUTS + n, FAN_IN, replace=False), neuron] = True
    weights = rng.standard_normal(sources.shape) * sources
    core_map = np.repeat(np.arange(N_CORES), PER_CORE)
    return weights[:N_INPUTS], weights[N_INPUTS:], core_map


def restored(spec: dict[str, Any], core_map: np.ndarray, n_bits: int) -> np.ndarray:
    """The weights a quantized spec (per-core lists) realises, input rows then recurrent.
    Computed here, not by `dynapsim_net_from_spec`, which refuses negative Iw_k (Rockpool's
    bounded runs can end with one)."""
    currents = np.array([spec[f"Iw_{k}"] for k in range(n_bits)], dtype=np.float64).T
    bits = (np.arange(2**n_bits)[:, None] >> np.arange(n_bits)) & 1
    levels = bits @ currents.T  # (masks, cores)
    rows = []
    for which in ("in", "rec"):
        mask = sum(np.asarray(m, dtype=np.int64) for m in spec[f"weights_{which}"])
        sign = sum(np.asarray(s, dtype=np.float64) for s in spec[f"sign_{which}"])
        rows.append(levels[mask, core_map[None, :]] * sign / ISCALE)
    return np.vstack(rows)


def errors(weights: np.ndarray, quantized: np.ndarray, core_map: np.ndarray) -> list[float]:
    return [
        float(np.linalg.norm(weights[:, core_map == core] - quantized[:, core_map == core])
              / np.linalg.norm(weights[:, core_map == core]))
        for core in range(N_CORES)
    ]  # fmt: skip


def ours(
    w_in: np.ndarray, w_rec: np.ndarray, core_map: np.ndarray, n_bits: int, repeats: int
) -> tuple[float, dict[str, Any]]:
    """Best time of `repeats` runs (each gives the same bits), and the result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = quantize_weights(w_in, w_rec, core_map, Iscale=ISCALE, n_bits=n_bits)
        best = min(best, time.perf_counter() - start)
    return best, result


def rockpool(
    w_in: np.ndarray, w_rec: np.ndarray, core_map: np.ndarray, seed: int, epochs: int | None
) -> tuple[float, dict[str, Any]]:
    from rockpool.devices.dynapse import autoencoder_quantization

    options = {} if epochs is None else {"fixed_epoch": True, "num_epoch": epochs}
    np.random.seed(seed)
    start = time.perf_counter()
    result = autoencoder_quantization(N_CORES, core_map, w_in, w_rec, Iscale=ISCALE, **options)
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours; the best counts")
    parser.add_argument(
        "--rockpool-epochs",
        type=int,
        default=None,
        help="a fixed number of epochs per core (default: Rockpool's own stop)",
    )
    parser.add_argument("--no-rockpool", dest="rockpool", action="store_false")
    args = parser.parse_args(argv)

    w_in, w_rec, core_map = chip_matrices(args.seed)
    weights = np.vstack([w_in, w_rec])
    violations = check_hardware(dynapsim_net_from_spec(N_CORES, core_map, w_in, w_rec))
    assert not violations, violations
    print(f"# Weight quantization, {N_CORES} cores x {PER_CORE} neurons, {N_INPUTS} inputs, "
          f"{FAN_IN} connections per neuron, N(0, 1) weights, seed {args.seed}")  # fmt: skip
    print(f"\nMachine: {machine()}\n")

    our_time, our_result = ours(w_in, w_rec, core_map, 4, args.repeats)
    our_errors = errors(weights, restored(our_result, core_map, 4), core_map)
    print("| 4 bits | time (s) | " + " | ".join(f"error core {c}" for c in range(N_CORES)) + " |")
    print("|---|---|" + "---|" * N_CORES)
    print(f"| ours | {our_time:.2f} | " + " | ".join(f"{e:.4f}" for e in our_errors) + " |")
    if args.rockpool:
        their_time, their_result = rockpool(w_in, w_rec, core_map, args.seed,
                                            args.rockpool_epochs)  # fmt: skip
        their_errors = errors(weights, restored(their_result, core_map, 4), core_map)
        epochs = "default stop" if args.rockpool_epochs is None else f"{args.rockpool_epochs} ep"
        print(f"| Rockpool ({epochs}) | {their_time:.1f} | "
              + " | ".join(f"{e:.4f}" for e in their_errors) + " |")  # fmt: skip
        ratios = [theirs / mine for theirs, mine in zip(their_errors, our_errors, strict=True)]
        print(f"\nSpeed-up: {their_time / our_time:.0f}x; error ratio Rockpool / ours per core: "
              + ", ".join(f"{ratio:.2f}" for ratio in ratios))  # fmt: skip

    print("\n| ours, bits | time (s) | mean error | max error |")
    print("|---|---|---|---|")
    for n_bits in range(1, 9):
        elapsed, result = ours(w_in, w_rec, core_map, n_bits, 1)
        core_errors = errors(weights, restored(result, core_map, n_bits), core_map)
        print(
            f"| {n_bits} | {elapsed:.2f} | {np.mean(core_errors):.4f} | {np.max(core_errors):.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
