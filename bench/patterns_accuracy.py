"""Task accuracy of the `patterns` task on ei_4core against mismatch, through the Python API.

Chip c is mismatch instance c at every level (the same deviations, scaled by the level);
it runs every sample of the dataset. A ridge readout fitted on the nominal network's train
responses is applied to every chip's test responses (transferred), and a ridge readout is
refitted on each chip's own train responses (per chip). Prints one row per level.

    python bench/patterns_accuracy.py --chips 16
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.analysis.readout import chance_level, chip_accuracies, features, fit_ridge  # noqa: E402
from runner.data.datasets import LabelledDataset  # noqa: E402
from runner.data.patterns import PatternTask, patterns  # noqa: E402
from runner.kernel.backends import get_backend  # noqa: E402
from runner.kernel.batch import InputEvents  # noqa: E402
from runner.network.dynapsim import (
    DynapSimNetwork,  # noqa: E402
    packed_batch,  # noqa: E402
)
from runner.physics.mismatch import MismatchModel  # noqa: E402
from runner.study.network_config import build_network, resolve_network  # noqa: E402
from runner.study.schema import NetworkConfig, register_configs, typed  # noqa: E402
from runner.util.paths import CONF_DIR  # noqa: E402


def ei_4core(percent_mismatch: float) -> DynapSimNetwork:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["network=ei_4core"])
    network = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)["network"]
    network["percent_mismatch"] = percent_mismatch
    return build_network(typed(NetworkConfig, resolve_network(network)), seed=0)


def chip_responses(
    net: DynapSimNetwork,
    dataset: LabelledDataset,
    chips: np.ndarray,
    bin_width: int,
    bins: int,
    backend: str,
) -> np.ndarray:
    """(len(chips), S, N * bins) features: every chip on every sample of the dataset."""
    events = InputEvents.from_dense(dataset.inputs, dataset.n_samples)
    streams = np.tile(np.arange(dataset.n_samples, dtype=np.int32), chips.size)
    events = dataclasses.replace(events, instance_stream=streams)
    instances = np.repeat(chips, dataset.n_samples)
    batch = packed_batch([net], np.zeros(instances.size, np.int32), events, instances,
                         net.spec.seed, bin_width)  # fmt: skip
    result = get_backend(backend)(batch)
    if (result.nonfinite_step >= 0).any():
        raise RuntimeError("non-finite instances: report them, do not average")
    counts = features(result.binned_counts, dataset.n_steps, bin_width, bins)
    return counts.reshape(chips.size, dataset.n_samples, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=16)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--bins", type=int, default=1)
    parser.add_argument("--bin-width", type=int, default=10, help="kernel bin width (steps)")
    parser.add_argument("--alpha", type=float, default=1000.0)
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--task", nargs="*", default=[], help="PatternTask fields, name=value")
    args = parser.parse_args()
    types = {f.name: f.type for f in dataclasses.fields(PatternTask)}
    changes = dict(item.split("=") for item in args.task)
    task = PatternTask(
        **{key: (float if types[key] == "float" else int)(value) for key, value in changes.items()}
    )
    dataset = patterns(task, args.train_fraction)
    labels, train = dataset.labels, dataset.train
    print(task)
    chance = chance_level(task.n_classes)
    print(f"{dataset.n_samples} samples ({train.sum()} train), chance {chance:.3f}")

    start = time.perf_counter()
    nominal_net = ei_4core(0.0)
    nominal_net = DynapSimNetwork(dataclasses.replace(nominal_net.spec, mismatch=MismatchModel()))
    nominal = chip_responses(nominal_net, dataset, np.zeros(1, np.uint64), args.bin_width,
                             args.bins, args.backend)[0]  # fmt: skip
    readout = fit_ridge(nominal[train], labels[train], task.n_classes, args.alpha)
    nominal_test = float((readout.predict(nominal[~train]) == labels[~train]).mean())
    nominal_train = float((readout.predict(nominal[train]) == labels[train]).mean())
    rate = nominal.sum() / (nominal.shape[0] * 1024 * task.n_steps * task.dt)
    print(f"nominal: train {nominal_train:.3f} test {nominal_test:.3f}, mean rate {rate:.1f} Hz")
    chips = np.arange(args.chips, dtype=np.uint64)
    print("level  transferred mean  q05   | per-chip mean  q05")
    for level in args.levels:
        responses = chip_responses(ei_4core(level), dataset, chips, args.bin_width, args.bins,
                                   args.backend)  # fmt: skip
        acc = chip_accuracies(responses, labels, train, readout, refit_alpha=args.alpha)
        print(
            f"{level:5.2f}  {acc.transferred.mean():.3f}  {np.quantile(acc.transferred, 0.05):.3f}"
            f"  | {acc.per_chip.mean():.3f}  {np.quantile(acc.per_chip, 0.05):.3f}",
            flush=True,
        )
    steps = (1 + len(args.levels) * args.chips) * dataset.n_samples * task.n_steps * 1024
    elapsed = time.perf_counter() - start
    print(f"{elapsed:.1f} s for {steps:.2e} neuron-steps ({steps / elapsed:.2e} /s)")


if __name__ == "__main__":
    main()
