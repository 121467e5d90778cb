"""Spec files: written and read back; unreadable files and mistyped fields name file and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runner import dynapsim_net_from_spec
from runner.physics.specfile import load_spec_file, save_spec_file

FIELDS = dict(n_cluster=2, core_map=[0, 0, 1], weights_in=np.arange(6.0).reshape(2, 3),
              Itau_mem=[2e-12, [3e-12]], Iscale=2e-8, C_mem=3e-12)  # fmt: skip


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_a_saved_spec_builds_the_same_network(tmp_path: Path, suffix: str) -> None:
    fields = dict(FIELDS, Itau_mem=[2e-12, 3e-12]) if suffix == ".npz" else FIELDS
    loaded = load_spec_file(save_spec_file(tmp_path / f"net{suffix}", **fields))
    direct, read = dynapsim_net_from_spec(**fields).spec, dynapsim_net_from_spec(**loaded).spec
    for name, values in direct.nominal.items():
        np.testing.assert_array_equal(read.nominal[name], values, err_msg=name)
    np.testing.assert_array_equal(read.weights_in, direct.weights_in)
    assert read.Iscale == direct.Iscale


def _json(fields: object):
    return lambda path: path.write_text(json.dumps(fields))


def _truncated_npz(path: Path) -> None:
    save_spec_file(path, n_cluster=1, core_map=np.zeros(64, int), weights_in=np.ones((64, 64)))
    path.write_bytes(path.read_bytes()[:100])


BAD_FILES = [
    ("empty.json", lambda p: p.write_text(""), r"cannot read it as a \.json file"),
    ("cut.json", lambda p: p.write_text('{"n_cluster": 1, "core'), r"cannot read it as a \.json"),
    ("list.json", _json([1, 2]), "expected a JSON object of spec fields, got a list"),
    ("empty.npz", lambda p: p.write_bytes(b""), r"cannot read it as a \.npz file"),
    ("cut.npz", _truncated_npz, r"cannot read it as a \.npz file"),
    ("noise.npz", lambda p: p.write_bytes(b"PK\x03\x04 noise"), r"cannot read it as a \.npz"),
    ("array.npz", lambda p: np.save(p.with_suffix(""), np.zeros(3)) or
     p.with_suffix(".npy").rename(p), "not an .npz archive"),  # fmt: skip
    ("words.json", _json({"n_cluster": "two", "core_map": [0]}), r"field n_cluster must be an int"),
    ("cores.json", _json({"n_cluster": 1.5, "core_map": [0]}), r"field n_cluster must be an int"),
    ("scalar.json", _json({"n_cluster": 1, "core_map": [0], "Itau_mem": 1e-12}),
     r"field Itau_mem must be a list with one entry per core \(n_cluster=1\).*got 1e-12"),
    ("entry.json", _json({"n_cluster": 2, "core_map": [0, 1], "Idc": [1e-12, "x"]}),
     r"field Idc\[1\] must be a number or a list of that core's per-neuron values, got 'x'"),
    ("map.json", _json({"n_cluster": 1, "core_map": "0"}), r"field core_map must be a list"),
    ("w.json", _json({"n_cluster": 1, "core_map": [0], "weights_in": [1, 2]}),
     r"field weights_in must be a 2-D array"),
    ("dt.json", _json({"n_cluster": 1, "core_map": [0], "dt": "1ms"}), r"field dt must be a num"),
    ("layout.json", _json({"n_cluster": 1, "core_map": [0], "C_mem": [[1.0]]}), r"field C_mem"),
    ("typo.json", _json({"n_cluster": 1, "core_map": [0], "Itau_men": [1e-12]}),
     r"unknown spec field\(s\) \['Itau_men'\] \(did you mean 'Itau_mem'\?\)"),
    ("none.json", _json({"core_map": [0]}), "the spec file has no 'n_cluster'"),
]  # fmt: skip


@pytest.mark.parametrize("name,write,message", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_unusable_spec_files_name_the_file_and_field(tmp_path: Path, name, write, message) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError, match=message) as error:
        load_spec_file(path)
    assert str(error.value).startswith(f"network.file {path}")


def test_npz_per_core_scalar_is_refused_not_iterated(tmp_path: Path) -> None:
    path = tmp_path / "net.npz"
    np.savez(path, n_cluster=1, core_map=np.zeros(3, int), Idc=np.float64(1e-12))
    with pytest.raises(ValueError, match=r"field Idc must be a list with one entry per core"):
        load_spec_file(path)


def test_null_fields_count_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"n_cluster": 1, "core_map": [0, 0], "weights_rec": None}))
    assert "weights_rec" not in load_spec_file(path)
