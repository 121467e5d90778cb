"""Chunk files in a run folder, and the final tables assembled from them.

Every finished chunk is written at once, atomically (temporary name, then rename), as
`chunks/<first>-<last>.instances.parquet` (+ `.neurons.parquet`); the instances file is
written last, so its presence means the chunk is complete. Final tables are rebuilt from
chunk files only, so an interrupted run leaves a consistent folder and a rerun resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sweep import Chunk

__all__ = [
    "write_atomic",
    "ExperimentMismatch",
    "ChunkStore",
    "SUMMARY_METRICS",
    "QUANTILES",
    "summarize",
]

SUMMARY_METRICS: tuple[str, ...] = (
    "mean_rate_hz", "rate_std_hz", "pop_rate_std_hz", "pop_rate_peak_hz", "mean_isi_cv",
    "mean_first_spike_s", "n_silent", "n_saturated", "rate_rel_error", "rate_corr", "frac_within",
)  # fmt: skip
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class ExperimentMismatch(ValueError):
    """The run folder holds chunks of a different experiment."""


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary name in the same folder, then rename: all or nothing."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    write(temporary)
    os.replace(temporary, path)


class ChunkStore:
    """The `chunks/` folder of a run: what is done, and writing what gets done."""

    def __init__(self, run_dir: Path, write: bool = True) -> None:
        """write=False only reads (collect may look at a job that is still running)."""
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "chunks"
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in self.root.glob(".tmp-*"):  # left by an interrupted write
                stale.unlink()

    @classmethod
    def existing(cls, run_dir: Path) -> ChunkStore | None:
        """A read-only view of a folder's chunks, or None if it has none."""
        store = cls(run_dir, write=False)
        return store if store.root.is_dir() else None

    def claim(self, experiment: dict[str, Any]) -> None:
        """Record which experiment these chunks belong to; refuse a different one."""
        path = self.root / "experiment.json"
        digest = hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).hexdigest()
        if path.exists():
            recorded = json.loads(path.read_text())
            if recorded["digest"] != digest:
                differs = sorted(
                    key for key in set(experiment) | set(recorded["experiment"])
                    if experiment.get(key) != recorded["experiment"].get(key)
                )  # fmt: skip
                raise ExperimentMismatch(
                    f"{self.run_dir} holds chunks of a different experiment "
                    f"(differs in {differs}); "
                    f"use a new hydra.run.dir or delete {self.root}"
                )
            return
        payload = json.dumps({"digest": digest, "experiment": experiment}, sort_keys=True, indent=1)
        write_atomic(path, lambda p: p.write_text(payload))

    def _path(self, name: str, kind: str) -> Path:
        return self.root / f"{name}.{kind}.parquet"

    def done(self, chunk: Chunk) -> bool:
        return self._path(chunk.name, "instances").exists()

    def write(self, chunk: Chunk, instances: pd.DataFrame, neurons: pd.DataFrame | None) -> None:
        if neurons is not None:
            write_atomic(
                self._path(chunk.name, "neurons"), lambda p: neurons.to_parquet(p, index=False)
            )
        write_atomic(
            self._path(chunk.name, "instances"), lambda p: instances.to_parquet(p, index=False)
        )

    def read(self, chunks: list[Chunk], kind: str) -> pd.DataFrame:
        """Concatenate the `kind` tables of these chunks (those that exist), in id order."""
        paths = [self._path(c.name, kind) for c in sorted(chunks, key=lambda c: c.first)]
        frames = [pd.read_parquet(p) for p in paths if p.exists()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _nominal_path(self, point: int) -> Path:
        return self._path(f"nominal-p{point:05d}", "neurons")

    def has_nominal(self, point: int) -> bool:
        return self._nominal_path(point).exists()

    def write_nominal(self, point: int, frame: pd.DataFrame) -> None:
        """The per-neuron table of a point's nominal instance, computed once per folder."""
        write_atomic(self._nominal_path(point), lambda p: frame.to_parquet(p, index=False))

    def read_nominal(self, point: int) -> pd.DataFrame:
        return pd.read_parquet(self._nominal_path(point))

    def raster_path(self, label: str) -> Path:
        return self.root / f"{label}.raster.npz"

    def write_raster(self, label: str, raster: np.ndarray) -> None:
        """A (T, N) spike-count raster, stored sparse."""
        steps, neurons = np.nonzero(raster)
        write_atomic(
            self.raster_path(label),
            lambda p: np.savez_compressed(
                p, shape=np.asarray(raster.shape), step=steps.astype(np.int32),
                neuron=neurons.astype(np.int32), count=raster[steps, neurons].astype(np.int16),
            ),
        )  # fmt: skip

    def read_raster(self, label: str) -> np.ndarray | None:
        path = self.raster_path(label)
        if not path.exists():
            return None
        with np.load(path) as data:
            raster = np.zeros(tuple(data["shape"]), dtype=np.int16)
            raster[data["step"], data["neuron"]] = data["count"]
        return raster


def summarize(
    instances: pd.DataFrame, sweep_columns: list[str], nominal_rates: pd.Series
) -> pd.DataFrame:
    """Per sweep point: n, non-finite count and ids, then mean/std/quantiles of each metric.

    Non-finite instances are excluded from the statistics and listed instead.
    """
    rows = []
    for point, group in instances.groupby("point", sort=True):
        finite = group[~group["nonfinite"]]
        row: dict[str, Any] = {"point": point}
        row.update({column: group[column].iloc[0] for column in sweep_columns})
        row["n_instances"] = len(group)
        row["n_nonfinite"] = int(group["nonfinite"].sum())
        row["nonfinite_instances"] = " ".join(map(str, group.loc[group["nonfinite"], "instance"]))
        row["nonphysical"] = int(group["nonphysical"].sum())
        row["nominal_mean_rate_hz"] = nominal_rates.get(point, np.nan)
        for metric in SUMMARY_METRICS:
            values = finite[metric].astype(np.float64)
            row[f"{metric}.mean"] = values.mean()
            row[f"{metric}.std"] = values.std(ddof=1) if len(values) > 1 else np.nan
            for q in QUANTILES:
                row[f"{metric}.q{round(q * 100):02d}"] = (
                    values.quantile(q) if len(values) else np.nan
                )
        rows.append(row)
    return pd.DataFrame(rows)
