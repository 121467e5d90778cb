"""Chunk files in a run folder, and the final tables assembled from them.

Every finished chunk is written at once, atomically (an exclusively created temporary file,
then rename), as `chunks/<first>-<last>.instances.parquet` (+ `.neurons.parquet`); the
instances file is written last, so its presence means the chunk is complete. Final tables
are rebuilt from chunk files only, so an interrupted run leaves a consistent folder and a
rerun resumes; they are streamed from the chunk files a row group at a time
(`write_tables`), so their memory does not grow with the sweep. One invocation at a time
writes a folder (an OS lock on `chunks/.lock`, released when the process ends however it
ends); `chunks/experiment.json` records which
experiment the chunks belong to, and chunk files are checked before they are reused.
A quantized sweep point's weights are kept as `chunks/quantized-p<point>.npz`
(`quantized_arrays`), checked against the point's network on every run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runner.analysis.chip_statistics import AccuracySettings, chip_table, core_table, summarize
from runner.study.identity import differences, flatten, identity_digest
from runner.study.outcome import Outcome
from runner.study.sweep import Chunk
from runner.util.atomic_files import TEMPORARY_PREFIX, create_exclusive, write_atomic

if TYPE_CHECKING:
    from runner.physics.spec import NetworkSpec

__all__ = [
    "RunFolderError",
    "ExperimentMismatch",
    "RunFolderNotWritable",
    "probe_writable",
    "ChunkStore",
    "nominal_raster_label",
    "quantized_arrays",
    "ChunkTables",
    "stream_tables",
    "write_tables",
]

log = logging.getLogger(__name__)


# Rows read from a chunk file at a time while the final tables are written (a row group of
# the final file each): what the assembly holds of a table, whatever its size.
STREAM_BATCH_ROWS = 1 << 16


def nominal_raster_label(point: int, trial: int) -> str:
    """Raster file label of a point's nominal instance on one trial."""
    return f"nominal-p{point:05d}-t{trial:09d}"


def quantized_arrays(spec: NetworkSpec, loss: np.ndarray) -> dict[str, np.ndarray]:
    """What `chunks/quantized-p<point>.npz` holds of a quantized network (`spec.quantization`
    set): `n_bits`, `Iscale` [A], `core_map`, `base_weights` (n_cluster, n_bits) [A] (Iw_k of
    each core), the masks and signs `mask_in`, `sign_in`, `mask_rec`, `sign_rec` and the
    weights they restore, which the run simulates, `restored_in`, `restored_rec` (units of
    Iscale; each pair only when the network has such weights), and `quantization_loss`, per
    core (squared weight units)."""
    q = spec.quantization
    arrays = {"n_bits": np.asarray(q.n_bits), "Iscale": np.asarray(spec.Iscale),
              "core_map": spec.core_map, "base_weights": q.base_weights}  # fmt: skip
    for which in ("in", "rec"):
        if getattr(q, f"mask_{which}") is not None:
            arrays[f"mask_{which}"] = getattr(q, f"mask_{which}")
            arrays[f"sign_{which}"] = getattr(q, f"sign_{which}")
            arrays[f"restored_{which}"] = getattr(spec, f"weights_{which}")
    arrays["quantization_loss"] = np.asarray(loss)
    return arrays


class RunFolderError(ValueError):
    """The run folder cannot take this run (in use, read-only, or another experiment's)."""


class ExperimentMismatch(RunFolderError):
    """The run folder holds chunks of a different experiment."""


class RunFolderNotWritable(RunFolderError):
    """A file cannot be created in the run folder (read-only mount, permissions)."""


def _parquet_writer(frame: pd.DataFrame) -> Callable[[BinaryIO], None]:
    return lambda stream: frame.to_parquet(stream, index=False)


def probe_writable(folder: Path) -> None:
    """Create and remove a file: permission bits alone say nothing for root or read-only mounts."""
    try:
        descriptor, probe = create_exclusive(folder, "probe")
    except OSError as error:
        raise RunFolderNotWritable(
            f"run folder {folder} is not writable ({error.strerror}): use a writable hydra.run.dir"
        ) from error
    os.close(descriptor)
    os.unlink(probe)


def _table_problem(path: Path, first: int, last: int, repeat: int) -> str | None:
    """Why a chunk table is not the one of instances first..last (each `repeat` rows), or None."""
    if path.is_symlink() or not path.is_file():
        return "is not a regular file"
    expected = np.repeat(np.arange(first, last + 1), repeat)
    try:
        rows = pq.read_metadata(path).num_rows
        if rows != len(expected):
            return f"holds {rows} rows, expected {len(expected)}"
        ids = pq.read_table(path, columns=["instance"]).column(0).to_numpy()
    except (OSError, pa.ArrowException, KeyError) as error:
        return f"is unreadable ({error})"
    if not np.array_equal(ids, expected):
        return f"holds instances {ids.min()}..{ids.max()}, not those of its name"
    return None


class ChunkStore:
    """The `chunks/` folder of a run: what is done, and writing what gets done.

    `ChunkStore(run_dir)` only reads (collect may look at a job that is still running);
    `ChunkStore.open(...)` locks the folder for one invocation and may write.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "chunks"
        self.problems: list[str] = []  # files found bad by a read-only store
        self._lock: int | None = None

    @classmethod
    def open(cls, run_dir: Path, identity: dict[str, Any], config: dict[str, Any]) -> ChunkStore:
        """Lock the folder, check it is writable and holds this experiment (or none), claim it.

        Raises RunFolderError before anything in the folder changes; call release() after.
        """
        store = cls(run_dir)
        store.lock()
        try:
            probe_writable(store.root)
            probe_writable(store.run_dir)
            store._claim(identity, config)
            for folder in (store.root, store.run_dir):  # no other writer can be alive now
                for stale in folder.glob(f"{TEMPORARY_PREFIX}*"):
                    stale.unlink()
        except BaseException:
            store.release()
            raise
        return store

    def lock(self) -> None:
        """Hold the folder for this process, or raise RunFolderError at once."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            raise RunFolderNotWritable(
                f"run folder {self.root} is not writable ({error.strerror}): "
                "use a writable hydra.run.dir"
            ) from error
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(lock, 32, 0).decode(errors="replace").strip() or "?"
            os.close(lock)
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise RunFolderError(
                f"run folder {self.run_dir} is in use by another invocation (pid {holder}): "
                "wait for it to end or use another hydra.run.dir"
            ) from error
        os.ftruncate(lock, 0)
        os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
        self._lock = lock

    def release(self) -> None:
        """Give up the folder (the OS also does when the process ends)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def _record_path(self) -> Path:
        return self.root / "experiment.json"

    def recorded(self) -> dict[str, Any] | None:
        """The stored record (`identity`, its `digest`, the claiming `config`), or None.

        Raises ValueError naming the file when it cannot be read.
        """
        path = self._record_path
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
            if not {"digest", "identity", "config"} <= set(record):
                raise ValueError("expected the keys digest, identity, config")
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"{path} is unreadable ({error})") from error
        return record

    def _claim(self, identity: dict[str, Any], config: dict[str, Any]) -> None:
        """Record which experiment these chunks belong to; refuse a different one."""
        digest = identity_digest(identity)
        try:
            recorded = self.recorded()
        except ValueError as error:
            raise RunFolderError(f"{error}: cannot tell which experiment the chunks are") from error
        if recorded is not None and recorded["digest"] != digest:
            before, now = flatten(recorded["identity"]), flatten(identity)
            differs = "; ".join(
                f"{key}: {before.get(key, '-')!r} in the folder, {now.get(key, '-')!r} now"
                for key in differences(before, now)
            )
            raise ExperimentMismatch(
                f"{self.run_dir} holds chunks of a different experiment (differs in {differs}); "
                f"use a new hydra.run.dir or delete {self.root}"
            )
        record = {"digest": digest, "identity": identity, "config": config}
        payload = json.dumps(record, sort_keys=True, indent=1).encode()
        write_atomic(self._record_path, lambda stream: stream.write(payload))

    def _path(self, name: str, kind: str) -> Path:
        return self.root / f"{name}.{kind}.parquet"

    def _reject(self, paths: list[Path], problem: str, redo: str = "simulated again") -> None:
        """Move bad files aside (a writing store) or note them (a read-only one); `redo`
        says what becomes of them."""
        if self._lock is None:
            self.problems.append(f"{paths[0]} {problem}: left out")
            return
        aside = self.root / "rejected"
        aside.mkdir(exist_ok=True)
        for path in paths:
            if path.exists() or path.is_symlink():
                target = Path(tempfile.mkdtemp(dir=aside, prefix=f"{path.name}.")) / path.name
                os.replace(path, target)
        log.warning("%s %s: moved to %s; %s", paths[0], problem, aside, redo)

    def finished(
        self, chunk: Chunk, neurons_per_instance: int | None, cores_per_instance: int
    ) -> bool:
        """The chunk's files are complete and hold its instances, the core rows of each
        and, when given, the neuron rows of each; bad or partial ones are rejected, so the
        chunk runs again (a chunk written before core rows existed runs again too)."""
        instances = self._path(chunk.name, "instances")
        if not (instances.exists() or instances.is_symlink()):
            return False
        problem = _table_problem(instances, chunk.first, chunk.last, 1)
        neurons = self._path(chunk.name, "neurons")
        cores = self._path(chunk.name, "cores")
        for kind, path, per_instance in (("neurons", neurons, neurons_per_instance),
                                         ("cores", cores, cores_per_instance)):  # fmt: skip
            if problem is None and per_instance is not None:
                problem = _table_problem(path, chunk.first, chunk.last, per_instance)
                if problem is not None:
                    problem = f"is finished, but its {kind} file {problem}"
        if problem is None:
            return True
        self._reject([instances, neurons, cores], problem)
        return False

    def write(
        self,
        chunk: Chunk,
        instances: pd.DataFrame,
        neurons: pd.DataFrame | None,
        cores: pd.DataFrame,
    ) -> None:
        """The chunk's tables; the instances file last: its presence means all are there."""
        if neurons is not None:
            write_atomic(self._path(chunk.name, "neurons"), _parquet_writer(neurons))
        write_atomic(self._path(chunk.name, "cores"), _parquet_writer(cores))
        write_atomic(self._path(chunk.name, "instances"), _parquet_writer(instances))

    def paths(self, chunks: list[Chunk], kind: str) -> list[Path]:
        """The `kind` files of these chunks (those that exist), in id order."""
        paths = [self._path(c.name, kind) for c in sorted(chunks, key=lambda c: c.first)]
        return [path for path in paths if path.exists()]

    def nominal_path(self, point: int) -> Path:
        """The file of the point's nominal (trial, neuron) table."""
        return self._path(f"nominal-p{point:05d}", "neurons")

    def has_nominal(
        self, point: int, n_rows: int, readout_shape: tuple[int, int] | None = None
    ) -> bool:
        """The point's nominal table is there and whole, `n_rows` (trials x neurons) rows,
        and so is its fitted readout of `readout_shape` (features, classes) when one is
        needed: readable, that shape, and finite unless the nominal instance is not (NaN
        weights mean "none could be fitted"). A bad pair is rejected and fitted again."""
        path = self.nominal_path(point)
        if not (path.exists() or path.is_symlink()):
            return False
        problem = None
        try:
            if path.is_symlink() or not path.is_file():
                problem = "is not a regular file"
            elif (rows := pq.read_metadata(path).num_rows) != n_rows:
                problem = f"holds {rows} rows, expected {n_rows}"
            elif set(pq.read_table(path, columns=["point"]).column(0).to_pylist()) != {point}:
                problem = f"holds rows of another point than {point}"
            elif readout_shape is not None:
                problem = self._readout_problem(point, readout_shape)
        except (OSError, pa.ArrowException, KeyError) as error:
            problem = f"is unreadable ({error})"
        if problem is None:
            return True
        self._reject([path, self._readout_path(point)], problem)
        return False

    def write_nominal(self, point: int, frame: pd.DataFrame) -> None:
        """The (trial, neuron) table of a point's nominal instance, computed once per folder
        (written after its fitted readout: the table's presence means both are there)."""
        write_atomic(self.nominal_path(point), _parquet_writer(frame))

    def _readout_path(self, point: int) -> Path:
        return self.root / f"nominal-p{point:05d}.readout.npz"

    def write_readout(self, point: int, weights: np.ndarray, bias: np.ndarray) -> None:
        """The readout fitted on a point's nominal instance: (F, K) weights, (K,) bias."""
        write_atomic(self._readout_path(point),
                     lambda stream: np.savez(stream, weights=weights, bias=bias))  # fmt: skip

    def _readout_problem(self, point: int, shape: tuple[int, int]) -> str | None:
        """Why the point's fitted readout cannot be used with its nominal table, or None."""
        name = self._readout_path(point).name
        fitted = self.read_readout(point)
        if fitted is None:
            return f"has no readable fitted readout {name}"
        weights, bias = fitted
        if weights.shape != shape or bias.shape != shape[1:] or weights.dtype.kind != "f":
            return (f"has a fitted readout {name} of shape {weights.shape}, {bias.shape}; "
                    f"expected {shape} weights and ({shape[1]},) bias")  # fmt: skip
        finite = np.isfinite(weights).all() and np.isfinite(bias).all()
        nominal_finite = not pq.read_table(self.nominal_path(point), columns=["nonfinite"])[
            "nonfinite"].to_numpy().any()  # fmt: skip
        if finite != nominal_finite:
            return (f"has a fitted readout {name} that is {'' if finite else 'not '}finite "
                    f"for a{'' if nominal_finite else ' non'}-finite nominal instance")
        return None

    def read_readout(self, point: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(weights, bias) of the point's fitted readout, or None when missing or unreadable."""
        path = self._readout_path(point)
        if path.is_symlink() or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return data["weights"], data["bias"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            return None


    def _quantized_path(self, point: int) -> Path:
        return self.root / f"quantized-p{point:05d}.npz"

    def read_quantized(self, point: int) -> dict[str, np.ndarray] | None:
        """The arrays of a point's `quantized-p<point>.npz` (`quantized_arrays`), or None when
        the file is missing or unreadable."""
        path = self._quantized_path(point)
        if path.is_symlink() or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def keep_quantized(self, point: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Store a quantized point's arrays, unless its file holds exactly these: a file that
        is unreadable or differs (truncated, edited, from other code) is rejected and
        written again, never trusted."""
        path = self._quantized_path(point)
        stored = self.read_quantized(point)
        if (
            stored is not None
            and stored.keys() == arrays.keys()
            and all(np.array_equal(stored[key], value) for key, value in arrays.items())
        ):
            return
        if path.exists() or path.is_symlink():
            problem = "is unreadable" if stored is None else "differs from the quantization now"
            self._reject([path], problem, "written again")
        write_atomic(path, lambda stream: np.savez(stream, **arrays))

    def raster_path(self, label: str) -> Path:
        return self.root / f"{label}.raster.npz"

    def write_raster(self, label: str, raster: np.ndarray) -> None:
        """A (T, N) spike-count raster, stored sparse."""
        steps, neurons = np.nonzero(raster)
        write_atomic(
            self.raster_path(label),
            lambda stream: np.savez_compressed(
                stream, shape=np.asarray(raster.shape), step=steps.astype(np.int32),
                neuron=neurons.astype(np.int32), count=raster[steps, neurons].astype(np.int16),
            ),
        )  # fmt: skip

    def read_raster(self, label: str) -> np.ndarray | None:
        """The raster, or None when it is missing or unreadable (figures only leave it out)."""
        path = self.raster_path(label)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                raster = np.zeros(tuple(data["shape"]), dtype=np.int16)
                raster[data["step"], data["neuron"]] = data["count"]
        except (OSError, ValueError, KeyError, EOFError) as error:
            log.warning("raster %s is unreadable (%s): left out of the figures", path, error)
            return None
        return raster


def _write_stream(path: Path, tables: Iterator[pa.Table], schema: pa.Schema | None) -> None:
    """Write `tables` into one parquet file `path`, atomically, a row group each, holding
    one at a time; each is cast to `schema` (None: the first table's)."""

    def write(stream: BinaryIO) -> None:
        writer = None
        try:
            for table in tables:
                if writer is None:
                    writer = pq.ParquetWriter(stream, schema or table.schema)
                writer.write_table(table.select(writer.schema.names).cast(writer.schema))
            if writer is None:  # no rows anywhere: an empty table of this schema
                writer = pq.ParquetWriter(stream, schema or pa.schema([]))
        finally:
            if writer is not None:
                writer.close()

    write_atomic(path, write)


def _batches(paths: list[Path], schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows of these parquet files in order, STREAM_BATCH_ROWS at a time."""
    for path in paths:
        source = pq.ParquetFile(path)
        if set(source.schema_arrow.names) != set(schema.names):
            raise ValueError(f"{path} has the columns {sorted(source.schema_arrow.names)}, "
                             f"not those of {paths[0]}: {sorted(schema.names)}")  # fmt: skip
        for batch in source.iter_batches(batch_size=STREAM_BATCH_ROWS):
            yield pa.Table.from_batches([batch])


def stream_tables(paths: list[Path], path: Path) -> None:
    """Concatenate the parquet files `paths`, in this order, into one file `path` (written
    atomically, rows in row groups of at most STREAM_BATCH_ROWS), holding one row group at
    a time: the schema is the first file's, later files' columns are cast to it."""
    schema = pq.read_schema(paths[0]) if paths else None
    _write_stream(path, _batches(paths, schema) if schema is not None else iter(()), schema)


def _per_core(paths: list[Path]) -> Iterator[pa.Table]:
    """`core_table` of each chunk's core rows in turn: a chunk holds whole chips, in id
    order, so these are the rows of the whole table, in its (point, chip, core) order."""
    for path in paths:
        table = core_table(pd.read_parquet(path))
        if not table.empty:
            yield pa.Table.from_pandas(table, preserve_index=False)


@dataclass(frozen=True)
class ChunkTables:
    """The files a run folder's final tables are made of, each list in id order: chunks'
    `instances`, `neurons` (None: output.neurons is off), `cores` files and each point's
    `nominal` table."""

    instances: list[Path]
    nominal: list[Path]
    neurons: list[Path] | None
    cores: list[Path]


def write_tables(
    folder: Path,
    tables: ChunkTables,
    sweep_columns: list[str],
    baseline: int,
    paired: bool,
    accuracy: AccuracySettings | None = None,
    quantization_loss: Mapping[int, float] | None = None,
) -> Outcome:
    """The final tables of a run or a merge, each written atomically from the chunk files,
    one row group at a time (`stream_tables`; no neuron row is held beyond one): instances,
    nominal (and neurons) parquet, cores (per chip and core, from each chunk's (row, core)
    rows), chips (from the instance rows, read back) and summary.csv (paired changes
    against point `baseline` when `paired`, accuracies described with `accuracy` when there
    is a readout, the quantized points' `quantization_loss`); returns them, but neurons."""
    if tables.neurons is not None:
        stream_tables(tables.neurons, folder / "neurons.parquet")
    stream_tables(tables.instances, folder / "instances.parquet")
    stream_tables(tables.nominal, folder / "nominal.parquet")
    _write_stream(folder / "cores.parquet", _per_core(tables.cores), None)
    instances = pd.read_parquet(folder / "instances.parquet")
    nominal = pd.read_parquet(folder / "nominal.parquet")
    per_core = pd.read_parquet(folder / "cores.parquet")
    chips = chip_table(instances, sweep_columns)
    summary = summarize(chips, instances, sweep_columns, nominal, baseline, paired, accuracy,
                        quantization_loss)  # fmt: skip
    write_atomic(folder / "chips.parquet", _parquet_writer(chips))
    csv = summary.to_csv(index=False).encode()
    write_atomic(folder / "summary.csv", lambda stream: stream.write(csv))
    return Outcome(instances, chips, nominal, summary, cores=per_core)
