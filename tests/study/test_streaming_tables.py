"""Final tables streamed from the chunk files (issue 18, part 2): the same tables as an
in-memory concatenation of the chunk files, the same files from collect over shards, and an
assembly whose memory does not grow with the neuron rows it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import runner.study.run as experiment
from runner.analysis.chip_statistics import chip_table, core_table, summarize
from runner.cli.collect import main as collect_main
from runner.study.footprint import assembly_footprint, check_assembly_fits
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.run_folder import STREAM_BATCH_ROWS, stream_tables
from runner.study.schema import register_configs
from tests.helpers import ROOT
from tests.helpers.config import compose_config

register_configs()
# three points of four chips x two trials, two rows a chunk: twelve chunks (whole chips)
SWEEP = ["backend=reference", "network.n_cluster=2", "network.neurons_per_core=8",
         "network.generator.params.n_inputs=8", "stimulus.n_steps=200", "stimulus.trials=2",
         "sweep=mismatch_robustness", "sweep.n_samples=4", "sweep.axes.0.values=[0.1,0.2,0.3]",
         "chunk_size=2", "output.figures=false"]  # fmt: skip
TABLES = ("instances", "neurons", "nominal", "cores", "chips")


def _run(folder: Path, *overrides: str) -> Path:
    plan = prepare(compose_config([*SWEEP, *overrides]))
    experiment.run(plan, folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("stream"))


def _chunks(folder: Path, kind: str) -> pd.DataFrame:
    """The in-memory result: pandas concatenation of the chunk files, in id order."""
    paths = sorted((folder / "chunks").glob(f"[0-9]*-*.{kind}.parquet"))
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def test_streamed_tables_equal_the_concatenated_chunks(run_dir: Path) -> None:
    plan = prepare(compose_config(SWEEP))
    assert len(plan.chunks) == 12
    instances, neurons = _chunks(run_dir, "instances"), _chunks(run_dir, "neurons")
    nominal = pd.concat([pd.read_parquet(run_dir / "chunks" / f"nominal-p{p:05d}.neurons.parquet")
                         for p in range(3)], ignore_index=True)  # fmt: skip
    chips = chip_table(instances, plan.sweep_columns)
    expected = {"instances": instances, "neurons": neurons, "nominal": nominal, "chips": chips,
                "cores": core_table(_chunks(run_dir, "cores"))}  # fmt: skip
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(pd.read_parquet(run_dir / f"{name}.parquet"), frame,
                                      check_exact=True, obj=name)  # fmt: skip
    summary = summarize(chips, instances, plan.sweep_columns, nominal, plan.baseline,
                        plan.paired, plan.accuracy, plan.quantization_loss)  # fmt: skip
    assert (run_dir / "summary.csv").read_text() == summary.to_csv(index=False)
    # a row group per chunk file (each is smaller than a batch), schema of the first chunk
    stored = pq.ParquetFile(run_dir / "neurons.parquet")
    assert stored.metadata.num_row_groups == 12
    first = pq.read_schema(next((run_dir / "chunks").glob("[0-9]*-*.neurons.parquet")))
    assert stored.schema_arrow.equals(first)


def test_collect_over_shards_gives_the_same_files(run_dir: Path, tmp_path: Path) -> None:
    for index in range(3):
        _run(tmp_path / str(index), "shard.count=3", f"shard.index={index}")
    assert collect_main([str(tmp_path), "--no-figures"]) == 0
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{name}.parquet"),
                                      pd.read_parquet(run_dir / f"{name}.parquet"),
                                      check_exact=True, obj=name)  # fmt: skip
    assert (tmp_path / "summary.csv").read_text() == (run_dir / "summary.csv").read_text()


# The assembly of a run folder, in a fresh interpreter: the chunk files of `run_dir` with
# the neuron chunk files given, then the peak resident memory (VmHWM, KiB).
_ASSEMBLE = """
import json, sys
def peak_kib():  # VmHWM: ru_maxrss keeps the forking parent's peak across exec on Linux
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0])
from pathlib import Path
from runner.study.prepare import prepare
from runner.study.run import assemble
from runner.study.run_folder import ChunkTables
from runner.study.schema import register_configs
from tests.helpers.config import compose_config
register_configs()
run_dir, out, neurons, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3:-1], sys.argv[-1]
plan = prepare(compose_config(json.loads(overrides)))
chunks = sorted(Path(run_dir, "chunks").glob("[0-9]*-*.instances.parquet"))
tables = ChunkTables(
    instances=chunks,
    nominal=sorted(Path(run_dir, "chunks").glob("nominal-p*.neurons.parquet")),
    neurons=[Path(path) for path in neurons],
    cores=[Path(str(path).replace(".instances.", ".cores.")) for path in chunks],
)
assemble(plan, out, tables)
print(peak_kib())
"""


def _peak_kib(run_dir: Path, out: Path, neurons: list[Path]) -> int:
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _ASSEMBLE, str(run_dir), str(out), *map(str, neurons),
         json.dumps(SWEEP)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return int(done.stdout.split()[-1])


def _neuron_file(path: Path, rows: int) -> pd.DataFrame:
    """A chunk's neurons file of `rows` rows (the columns and types of a run's)."""
    rng = np.random.default_rng(0)
    instance = np.repeat(np.arange(rows // 16, dtype=np.int64), 16)
    frame = pd.DataFrame({
        "instance": instance, "point": instance // 8, "chip": instance // 2 % 4,
        "trial": instance % 2, "neuron": np.tile(np.arange(16, dtype=np.int32), rows // 16),
        "core": np.tile(np.arange(16, dtype=np.int32) // 8, rows // 16),
        "spike_count": rng.integers(0, 50, rows).astype(np.int32),
        **{name: rng.random(rows, dtype=np.float32)
           for name in ("rate_hz", "rel_error", "abs_error_hz", "cv_isi")},
        "nonfinite": np.zeros(rows, dtype=bool),
    })  # fmt: skip
    frame.to_parquet(path, index=False)
    return frame


def test_assembly_memory_does_not_grow_with_the_neuron_rows(run_dir: Path, tmp_path: Path) -> None:
    rows = 8 * STREAM_BATCH_ROWS  # a chunk file of 512 Ki neuron rows
    frame = _neuron_file(tmp_path / "chunk.neurons.parquet", rows)
    copies = 12  # the same file as 12 chunks: 6.3 M rows, 366 MiB as a DataFrame
    table_bytes = copies * int(frame.memory_usage(deep=True).sum())
    del frame
    small = _peak_kib(run_dir, tmp_path / "small", [tmp_path / "chunk.neurons.parquet"])
    large = _peak_kib(run_dir, tmp_path / "large", [tmp_path / "chunk.neurons.parquet"] * copies)
    growth = (large - small) * 1024
    allowed = 32 * 2**20
    assert table_bytes >= 10 * allowed
    assert growth < allowed, f"peak grew {growth / 2**20:.0f} MiB for {copies}x the rows"
    assert pq.read_metadata(tmp_path / "large" / "neurons.parquet").num_rows == copies * rows


def test_the_memory_check_covers_the_assembly(tmp_path: Path) -> None:
    plan = prepare(compose_config(SWEEP))
    parts = assembly_footprint(plan)
    assert parts["instance rows"] == 24 * 3 * 32 * 8  # every row, read back for the chips
    assert parts["a chunk's neuron rows"] == 2 * 16 * 2 * (4 * 8 + 3 * 4 + 4 * 4 + 1)
    check_assembly_fits(plan, sum(parts.values()))
    with pytest.raises(ExperimentError, match="writing the final tables of 24 instances"):
        check_assembly_fits(plan, sum(parts.values()) - 1)
    lean = prepare(compose_config([*SWEEP, "output.neurons=false"]))
    assert "a chunk's neuron rows" not in assembly_footprint(lean)


def test_later_chunks_are_cast_to_the_first_schema_or_refused(tmp_path: Path) -> None:
    first, second, other = (tmp_path / f"{name}.parquet" for name in ("a", "b", "c"))
    pd.DataFrame({"instance": np.arange(3, dtype=np.int64), "x": [1.0, 2.0, 3.0]}).to_parquet(
        first, index=False)  # fmt: skip
    pd.DataFrame({"x": np.float32([4.0]), "instance": np.int32([3])}).to_parquet(second,
                                                                                  index=False)
    stream_tables([first, second], tmp_path / "out.parquet")
    expected = pd.DataFrame({"instance": np.arange(4, dtype=np.int64), "x": [1.0, 2, 3, 4]})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), expected)
    pd.DataFrame({"instance": [4], "y": [1.0]}).to_parquet(other, index=False)
    with pytest.raises(ValueError, match="c.parquet has the columns"):
        stream_tables([first, other], tmp_path / "out.parquet")
    assert pd.read_parquet(tmp_path / "out.parquet").equals(expected)  # left as it was
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
