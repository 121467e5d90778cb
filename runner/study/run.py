"""One experiment run: plan (`plan.prepare`), simulate the pending chunks, assemble the tables.

`run` keeps the quantized weights of the sweep points it runs (`chunks/quantized-p*.npz`),
simulates this shard's chunks that are not in the run folder yet (one backend call
per chunk, `simulate.py`), writing each as it finishes, and finally rebuilds
instances.parquet, chips.parquet, cores.parquet, neurons.parquet, nominal.parquet and
summary.csv from the chunk files (streamed: the neuron rows are never held together).
A shard that holds no chunk (more shards than chunks) simulates and writes nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from runner.analysis.readout import Readout
from runner.kernel.backends import resolve_backend
from runner.study.footprint import (
    available_memory,
    check_assembly_fits,
    check_chunks_fit,
    check_nominals_fit,
)
from runner.study.identity import experiment_identity
from runner.study.outcome import Outcome
from runner.study.plan import Plan
from runner.study.run_folder import ChunkStore, ChunkTables, quantized_arrays, write_tables
from runner.study.schema import plain
from runner.study.simulate import scoring_readout, simulate_chunk, simulate_nominals
from runner.study.sweep import Chunk

__all__ = ["plan_identity", "run", "assemble"]

log = logging.getLogger(__name__)

# Without a terminal (a log file, a Slurm job), progress is a log line at most this often.
_PROGRESS_LOG_INTERVAL_S = 30.0


def plan_identity(plan: Plan) -> dict[str, Any]:
    """What must match for chunk files to be reused (see runner.study.identity)."""
    return experiment_identity(plain(plan.config), plan.points)


class _Progress:
    """A tqdm bar on a terminal; elsewhere (logs) a log line per chunk, at most every 30 s."""

    def __init__(self, total: int, done: int, n_chunks: int, enabled: bool) -> None:
        self.interactive = enabled and sys.stderr.isatty()
        self.total, self.done, self.n_chunks, self.enabled = total, done, n_chunks, enabled
        self.bar = tqdm(total=total, initial=done, unit="inst", dynamic_ncols=True,
                        disable=not self.interactive)  # fmt: skip
        self.started = self.logged = time.monotonic()

    def chunk_done(self, number: int, chunk: Chunk, held: range) -> None:
        self.done += chunk.size
        if self.interactive:
            self.bar.set_postfix_str(f"chunk {number}/{self.n_chunks} points {held[0]}-{held[-1]}")
            self.bar.update(chunk.size)
            return
        now = time.monotonic()
        if self.enabled and (number == self.n_chunks
                             or now - self.logged >= _PROGRESS_LOG_INTERVAL_S):  # fmt: skip
            self.logged = now
            log.info("chunk %d/%d done (instances %d-%d): %d of %d instances, %.1f s so far",
                     number, self.n_chunks, chunk.first, chunk.last, self.done, self.total,
                     now - self.started)  # fmt: skip

    def close(self) -> None:
        self.bar.close()


def run(
    plan: Plan,
    run_dir: Path,
    progress: bool = True,
    on_claim: Callable[[], None] | None = None,
) -> Outcome:
    """Lock and claim the run folder (RunFolderError if it cannot take this run; then
    `on_claim`), simulate the pending chunks of this shard, write the tables."""
    store = ChunkStore.open(run_dir, plan_identity(plan), plain(plan.config))
    try:
        if on_claim is not None:
            on_claim()
        return _run_claimed(plan, store, progress)
    finally:
        store.release()


def _nominal_rates(frame: pd.DataFrame, n_trials: int) -> np.ndarray:
    """(trials, N) rates of one point's nominal table; a non-finite nominal trial has no
    rates to compare with (NaN)."""
    rates = np.where(frame["nonfinite"].to_numpy(), np.nan, frame["rate_hz"].to_numpy())
    return rates.reshape(n_trials, -1)


def _readouts(plan: Plan, store: ChunkStore, points: range) -> dict[int, Readout | None]:
    """Per point with a task: the readout its chips are scored with (`scoring_readout`)."""
    return {index: scoring_readout(plan, store, index)
            for index in points if plan.points[index].task is not None}  # fmt: skip


def _run_claimed(plan: Plan, store: ChunkStore, progress: bool) -> Outcome:
    config = plan.config
    backend = resolve_backend(config.backend.name.value)
    if not plan.chunks:
        log.info("%s holds none of the sweep's %d chunk(s): nothing to simulate or write",
                 plan.shard_label, len(plan.sweep_chunks))  # fmt: skip
        empty = pd.DataFrame()
        return Outcome(empty, empty, empty, empty, backend)
    pending = [c for c in plan.chunks if not store.finished(
        c, plan.neurons_per_instance(c), plan.cores_per_instance(c))]  # fmt: skip
    if pending:
        check_chunks_fit(plan, available_memory())
    check_assembly_fits(plan, available_memory())  # the final tables, even if none is pending
    total = sum(chunk.size for chunk in plan.chunks)
    to_do = sum(chunk.size for chunk in pending)
    log.info("backend %s: %d of %d chunks to simulate (%d instances), %d done before",
             backend, len(pending), len(plan.chunks), to_do,
             len(plan.chunks) - len(pending))  # fmt: skip
    touched = plan.touched_points()
    for index in touched:  # before any simulation: the weights the chunks are computed with
        point = plan.points[index]
        if point.quantization_loss is not None:
            store.keep_quantized(
                index, quantized_arrays(point.network.spec, point.quantization_loss)
            )
    missing = [
        plan.points[index] for index in plan.nominal_points()
        if not store.has_nominal(index, plan.nominal_rows(index), plan.readout_shape(index))
    ]  # fmt: skip
    if missing:
        check_nominals_fit(plan, missing, available_memory())
        simulate_nominals(plan, missing, store, backend)
    nominal_rates = {
        index: _nominal_rates(pd.read_parquet(store.nominal_path(index)),
                              len(plan.points[index].stimulus.nominal_trials))
        for index in touched
    }  # fmt: skip
    readouts = _readouts(plan, store, touched)

    simulated, seconds, neuron_steps = 0, 0.0, 0
    bar = _Progress(total, total - to_do, len(pending), progress)
    try:
        for number, chunk in enumerate(pending, start=1):
            point = plan.point_of(chunk.first)
            start = time.perf_counter()
            instances, neurons, cores = simulate_chunk(plan, chunk, nominal_rates, store,
                                                       backend, readouts)  # fmt: skip
            seconds += time.perf_counter() - start
            store.write(chunk, instances, neurons, cores)
            simulated += chunk.size
            neuron_steps += chunk.size * point.network.spec.n_neurons * point.stimulus.n_steps
            bar.chunk_done(number, chunk, plan.points_of(chunk))
    finally:
        bar.close()

    tables = ChunkTables(
        instances=store.paths(plan.chunks, "instances"),
        nominal=[store.nominal_path(index) for index in touched],
        neurons=store.paths(plan.chunks, "neurons") if config.output.neurons else None,
        cores=store.paths(plan.chunks, "cores"),
    )
    outcome = assemble(plan, store.run_dir, tables)
    return replace(outcome, backend=backend, simulated=simulated, seconds=seconds,
                   neuron_steps=neuron_steps)  # fmt: skip


def assemble(plan: Plan, folder: Path, tables: ChunkTables) -> Outcome:
    """The final tables of a run, or of a collect's merge, written into `folder` from these
    chunk files (streamed: `write_tables`), the chips (and each chip's cores) and summary
    computed from them."""
    return write_tables(folder, tables, plan.sweep_columns, plan.baseline, plan.paired,
                        plan.accuracy, plan.quantization_loss)  # fmt: skip
