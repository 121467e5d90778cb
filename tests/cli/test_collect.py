"""`runner.collect` reads experiments from what is stored with the chunks, and survives bad
job folders: unreadable configs and damaged chunk files are named and left out."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runner.cli.collect import MAX_LABEL_LENGTH, main
from tests.helpers.studies import run_study

SHARDS = ("shard.count=2",)


def collect_output(root: Path, capsys, *args: str) -> tuple[int, str]:
    status = main([str(root), "--no-figures", *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Job folders 0 and 1: the two shards of one sweep (as a multirun leaves them)."""
    root = tmp_path_factory.mktemp("two_shards")
    for index in (0, 1):
        run_study(root / str(index), *SHARDS, f"shard.index={index}")
    return root


@pytest.fixture
def sweep(two_shards: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "sweep"
    shutil.copytree(two_shards, copy)
    return copy


def unsharded_instances(two_shards: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(two_shards / j / "instances.parquet") for j in "01"],
                     ignore_index=True)  # fmt: skip


def test_jobs_without_hydra_files_are_found_by_their_stored_identity(
    sweep: Path, two_shards: Path, capsys
) -> None:
    status, text = collect_output(sweep, capsys, "--require-complete")
    assert status == 0, text
    pd.testing.assert_frame_equal(pd.read_parquet(sweep / "instances.parquet"),
                                  unsharded_instances(two_shards))  # fmt: skip


def test_an_unreadable_job_config_is_named_and_skipped(
    sweep: Path, two_shards: Path, capsys
) -> None:
    shutil.copytree(sweep / "1", sweep / "2")
    record = sweep / "2" / "chunks" / "experiment.json"
    record.write_text(record.read_text()[:40])
    (sweep / "3" / ".hydra").mkdir(parents=True)
    (sweep / "3" / ".hydra" / "config.yaml").write_text("seed: [unclosed\n")
    status, text = collect_output(sweep, capsys)
    assert status == 0, text
    assert f"job 2: skipped, {record} is unreadable" in text
    assert "job 3: skipped" in text and "config.yaml" in text
    pd.testing.assert_frame_equal(pd.read_parquet(sweep / "instances.parquet"),
                                  unsharded_instances(two_shards))  # fmt: skip
    assert collect_output(sweep, capsys, "--require-complete")[0] == 1


def test_a_damaged_chunk_file_is_named_and_left_out(sweep: Path, two_shards: Path, capsys) -> None:
    damaged = sorted((sweep / "1" / "chunks").glob("*.instances.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    lost = set(pd.read_parquet(two_shards / "1" / "chunks" / damaged.name)["instance"])
    status, text = collect_output(sweep, capsys)
    assert status == 0, text
    assert f"{damaged} is unreadable" in text and "left out" in text
    merged = pd.read_parquet(sweep / "instances.parquet")
    expected = unsharded_instances(two_shards)
    expected = expected[~expected["instance"].isin(lost)].reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, expected)
    assert damaged.read_bytes() == (two_shards / "1" / "chunks" / damaged.name).read_bytes()[:100]


def test_a_label_too_long_for_a_file_name_gets_a_short_folder(tmp_path: Path, capsys) -> None:
    rates = {"a": [10.000000001 + k for k in range(8)], "b": [20.000000001 + k for k in range(8)]}
    for job, values in enumerate(rates.values()):
        run_study(tmp_path / str(job), f"stimulus.rate_hz=[{','.join(map(str, values))}]")
    status, text = collect_output(tmp_path, capsys, "--require-complete")
    assert status == 0, text
    folders = sorted((tmp_path / "collect").iterdir())
    assert len(folders) == 2
    labels = []
    for folder in folders:
        assert folder.name.startswith("experiment-") and len(folder.name) < MAX_LABEL_LENGTH
        labels.append((folder / "label.txt").read_text().strip())
        assert (folder / "instances.parquet").is_file()
    assert sorted(labels) == [
        ",".join(f"stimulus.rate_hz.{k}={value}" for k, value in enumerate(values))
        for values in rates.values()
    ]
    assert all(label in text for label in labels)


def test_collect_refuses_inputs_changed_since_the_jobs_ran(tmp_path: Path, capsys) -> None:
    stimulus = tmp_path / "input.npy"
    np.save(stimulus, np.zeros((100, 8), dtype=np.float32))
    run_study(tmp_path / "jobs" / "0", "stimulus.kind=file", f"stimulus.file={stimulus}",
        "stimulus.trials=1")  # fmt: skip
    np.save(stimulus, np.ones((100, 8), dtype=np.float32))
    status, text = collect_output(tmp_path / "jobs", capsys, "--require-complete")
    assert status == 1
    assert f"files.stimulus.file={stimulus}" in text and "nothing merged" in text, text
    assert not (tmp_path / "jobs" / "instances.parquet").exists()
