"""Labelled datasets: validation that names the file and array, and the seeded split."""

from __future__ import annotations

import numpy as np
import pytest

from runner.data.datasets import LabelledDataset, load_dataset, stratified_split


def arrays(n_samples: int = 12, n_steps: int = 5, n_channels: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "inputs": rng.poisson(0.5, (n_samples, n_steps, n_channels)),
        "labels": np.arange(n_samples) % 3,
    }


def test_a_dataset_file_with_its_own_split(tmp_path) -> None:
    data = arrays()
    train = np.arange(12) < 9
    np.savez(tmp_path / "d.npz", **data, train=train)
    dataset = load_dataset(str(tmp_path / "d.npz"), n_channels=3)
    np.testing.assert_array_equal(dataset.inputs, data["inputs"])
    assert dataset.inputs.dtype == np.float32
    np.testing.assert_array_equal(dataset.train, train)
    assert (dataset.n_samples, dataset.n_steps, dataset.n_channels, dataset.n_classes) == (
        12, 5, 3, 3,
    )  # fmt: skip


def test_the_seeded_split_is_stratified_and_reproducible() -> None:
    labels = np.repeat([0, 1, 2], [10, 20, 5])
    split = stratified_split(labels, 0.7, seed=4)
    np.testing.assert_array_equal(split, stratified_split(labels, 0.7, seed=4))
    assert not np.array_equal(split, stratified_split(labels, 0.7, seed=5))
    # round(0.7 * n) of each class: 7 of 10, 14 of 20, round(3.5) = 4 of 5
    assert [int(split[labels == k].sum()) for k in range(3)] == [7, 14, 4]
    one_each = stratified_split(np.array([0, 1, 1, 1]), 0.1, seed=0)  # at least one per class
    assert one_each[0] and one_each[1:].sum() == 1


def test_a_split_drawn_for_a_file_without_train(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", **arrays())
    first = load_dataset(str(tmp_path / "d.npz"), 3, train_fraction=0.5, seed=9)
    again = load_dataset(str(tmp_path / "d.npz"), 3, train_fraction=0.5, seed=9)
    np.testing.assert_array_equal(first.train, again.train)
    np.testing.assert_array_equal(first.train, stratified_split(first.labels, 0.5, 9))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"inputs": np.zeros((12, 5))}, r"inputs must have shape \(samples S >= 1, steps T"),
        ({"inputs": np.zeros((0, 5, 3))}, r"inputs must have shape"),
        ({"inputs": np.zeros((12, 5, 4))}, r"shape \(S, T, C=3\) .* got \(12, 5, 4\)"),
        ({"inputs": np.full((12, 5, 3), -1.0)}, r"inputs must hold spike counts .* got -1.0 at"),
        ({"inputs": np.full((12, 5, 3), 0.5)}, r"spike counts \(integers >= 0\), got 0.5"),
        ({"inputs": np.full((12, 5, 3), np.nan)}, r"inputs must be finite"),
        ({"inputs": np.full((12, 5, 3), "a")}, r"inputs must hold real spike counts"),
        ({"labels": np.arange(11)}, r"labels must be \(12,\) integers .* got shape \(11,\)"),
        ({"labels": np.zeros(12)}, r"labels must be \(12,\) integers .* dtype float64"),
        ({"labels": np.arange(12) - 1}, r"labels must be class indices >= 0, got -1"),
        ({"train": np.ones(12, bool)}, r"no test sample \(train is True for all 12\)"),
        ({"train": np.ones(12)}, r"train must be \(12,\) booleans .* dtype float64"),
        ({"train": np.arange(12) % 3 == 0}, r"class\(es\) \[1, 2\] have no train sample"),
        ({"labels": np.arange(12) % 2 * 2}, r"class\(es\) \[1\] have no train sample"),
    ],
)
def test_invalid_datasets_name_the_file_and_array(tmp_path, changes, message) -> None:
    data = {**arrays(), **changes}
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    if "train" not in changes:
        data["train"] = np.arange(12) < 3  # samples 0, 1, 2: one of each class
        np.savez(path, **data)
    with pytest.raises(ValueError, match=rf"dataset {path}: .*{message}"):
        load_dataset(str(path), n_channels=3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"x": np.zeros((1, 1, 1))}, r"missing array\(s\) \['inputs', 'labels'\]; .* got \['x'\]"),
        (b"not a zip", r"cannot read it as a .npz file"),
    ],
)
def test_unreadable_dataset_files(tmp_path, content, message) -> None:
    path = tmp_path / "bad.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, **content)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(path), n_channels=1)
    with pytest.raises(ValueError, match=r"must be an .npz"):
        np.save(tmp_path / "d.npy", np.zeros(3))
        load_dataset(str(tmp_path / "d.npy"), n_channels=1)
    with pytest.raises(FileNotFoundError, match="dataset: no file"):
        load_dataset(str(tmp_path / "absent.npz"), n_channels=1)


@pytest.mark.parametrize(
    ("fraction", "seed", "message"),
    [
        (1.0, 0, r"train_fraction must be in \(0, 1\)"),
        (0.0, 0, r"train_fraction must be in \(0, 1\)"),
        (0.5, -1, r"split seed must be an int in \[0, 2\*\*64\)"),
        (0.5, 2.0, r"split seed must be an int"),
    ],
)
def test_split_settings_are_checked(fraction, seed, message) -> None:
    with pytest.raises(ValueError, match=message):
        LabelledDataset.build(**arrays(), train_fraction=fraction, seed=seed)
