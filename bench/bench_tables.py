"""Peak memory and time of writing a run folder's final tables, and of collect, by size.

`python bench/bench_tables.py [--rows 100000 1000000] [--out DIR]`

For each size, chunk files shaped like a run's are written: one chip (two trials of a
256-neuron, two-core network) is simulated once with the reference backend, and its
instance, core and neuron rows are repeated as the chips of 128-row chunks (instance and
chip ids shifted) until the neuron rows reach the size; the nominal table is the real one.
Then, each in a fresh interpreter, the peak resident memory (VmHWM) and wall time of:

- assembly: `python -m runner`-equivalent `run` on a folder whose chunks are all there
  (nothing to simulate: the chunk checks and the final tables);
- collect: `runner.cli.collect.main` over two job folders, each holding one shard's chunks;
- import: the same interpreter importing the runner and stopping (the base).

The table printed gives the raw peaks (VmHWM, the base included), the in-memory size
of the neuron rows (as one pandas DataFrame, what the assembly used to hold) and the size of
neurons.parquet (small: the repeated rows compress well), and checks that collect gave the
same tables as the single folder's assembly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runner.study.prepare import prepare  # noqa: E402
from runner.study.run import run  # noqa: E402
from runner.study.schema import register_configs  # noqa: E402
from tests.helpers import compose_config  # noqa: E402

NETWORK = ["backend=reference", "network.n_cluster=2", "network.neurons_per_core=128",
           "network.generator.params.n_inputs=8", "stimulus.n_steps=100", "stimulus.trials=2",
           "sweep=mismatch_robustness", "sweep.axes.0.values=[0.2]",
           "output.figures=false"]  # fmt: skip
CHIPS_PER_CHUNK = 64  # 128 rows, 32,768 neuron rows a chunk
NEURONS = 256
TRIALS = 2

# Run in a fresh interpreter: what is measured, then the peak resident memory (KiB).
_MEASURE = """
import json, sys, time
def peak_kib():  # VmHWM: ru_maxrss keeps the forking parent's peak across exec on Linux
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0])
what, folder, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
start = time.perf_counter()
from runner.study.prepare import prepare
from runner.study.run import run
from runner.cli.collect import main
from runner.study.schema import register_configs
from tests.helpers import compose_config
register_configs()
imported = time.perf_counter()
if what == "assembly":
    run(prepare(compose_config(overrides)), folder, progress=False)
elif what == "collect":
    main([folder, "--no-figures"])
print(json.dumps({"seconds": time.perf_counter() - imported,
                  "peak_kib": peak_kib()}))
"""


def measure(what: str, folder: Path, overrides: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _MEASURE, what, str(folder),
                           json.dumps(overrides)],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def template(folder: Path) -> dict[str, pd.DataFrame]:
    """One chip's chunk files (two trials), simulated."""
    run(prepare(compose_config([*NETWORK, "sweep.n_samples=1", f"chunk_size={TRIALS}"])),
        folder, progress=False)  # fmt: skip
    name = f"{0:09d}-{TRIALS - 1:09d}"
    return {kind: pd.read_parquet(folder / "chunks" / f"{name}.{kind}.parquet")
            for kind in ("instances", "cores", "neurons")}  # fmt: skip


def write_chunks(frames: dict[str, pd.DataFrame], nominal: Path, folder: Path,
                 chunks: range, n_chips: int) -> None:  # fmt: skip
    """Chunk files `chunks` (indices) of a sweep of `n_chips` chips, as a run writes them."""
    (folder / "chunks").mkdir(parents=True)
    shutil.copy(nominal, folder / "chunks" / nominal.name)
    for index in chunks:
        chips = range(index * CHIPS_PER_CHUNK, min((index + 1) * CHIPS_PER_CHUNK, n_chips))
        name = f"{chips[0] * TRIALS:09d}-{chips[-1] * TRIALS + TRIALS - 1:09d}"
        for kind in ("neurons", "cores", "instances"):  # instances last, as a run does
            tiled = []
            for chip in chips:
                frame = frames[kind].copy()
                frame["instance"] += chip * TRIALS
                frame["chip"] += chip
                tiled.append(frame)
            pd.concat(tiled, ignore_index=True).to_parquet(
                folder / "chunks" / f"{name}.{kind}.parquet", index=False)


def bench(rows: int, work: Path, frames: dict[str, pd.DataFrame], nominal: Path) -> dict:
    n_chips = -(-rows // (NEURONS * TRIALS))
    n_chunks = -(-n_chips // CHIPS_PER_CHUNK)
    overrides = [*NETWORK, f"sweep.n_samples={n_chips}", f"chunk_size={CHIPS_PER_CHUNK * TRIALS}"]
    single = work / f"run-{rows}"
    write_chunks(frames, nominal, single, range(n_chunks), n_chips)
    assembly = measure("assembly", single, overrides)
    jobs = work / f"multirun-{rows}"
    half = n_chunks // 2
    for index, block in enumerate((range(half), range(half, n_chunks))):
        write_chunks(frames, nominal, jobs / str(index), block, n_chips)
        shard = [*overrides, "shard.count=2", f"shard.index={index}"]
        run(prepare(compose_config(shard)), jobs / str(index), progress=False)  # claims it
    collected = measure("collect", jobs, overrides)
    base = measure("import", single, overrides)
    neurons = pd.read_parquet(single / "neurons.parquet")
    for name in ("instances", "neurons", "cores", "chips", "nominal"):
        a, b = (pd.read_parquet(folder / f"{name}.parquet") for folder in (single, jobs))
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
    return {"neuron rows": len(neurons), "chunks": n_chunks,
            "table MiB": neurons.memory_usage(deep=True).sum() / 2**20,
            "file MiB": (single / "neurons.parquet").stat().st_size / 2**20,
            "base MiB": base["peak_kib"] / 1024,
            "assembly MiB": assembly["peak_kib"] / 1024, "assembly s": assembly["seconds"],
            "collect MiB": collected["peak_kib"] / 1024,
            "collect s": collected["seconds"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10**5, 10**6])
    parser.add_argument("--out", type=Path, default=None, help="keep the folders here")
    args = parser.parse_args()
    register_configs()
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-tables-"))
    try:
        frames = template(work / "template")
        nominal = work / "template" / "chunks" / "nominal-p00000.neurons.parquet"
        table = pd.DataFrame([bench(rows, work, frames, nominal) for rows in args.rows])
        print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    finally:
        if args.out is None:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
