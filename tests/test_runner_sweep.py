"""Sweep grids, instance ids, chunks and shards."""

from __future__ import annotations

import numpy as np
import pytest

from runner.netconfig import resolve_network
from runner.robustness import robustness_metrics
from runner.sweep import expand_sweep, plan_chunks, shard_chunks


def network() -> dict:
    currents = {"Itau_mem": [1e-12, 2e-12], "Idc": None}
    return {"file": None, "generator": {"name": "feedforward", "params": {}}, "n_cluster": 2,
            "neurons_per_core": 4, "currents": currents, "layout": {}, "Iscale": None,
            "dt": None, "percent_mismatch": 0.1}  # fmt: skip


def test_grid_order_scale_and_per_core_paths() -> None:
    axes = [
        {"path": "network.currents.Itau_mem", "mode": "scale", "values": [1, 3]},
        {"path": "network.currents.Idc.1", "mode": "replace", "values": [0.0, 7e-12]},
        {"path": "stimulus.rate_hz", "mode": "replace", "values": [5.0]},
    ]
    points = expand_sweep(resolve_network(network()), {"rate_hz": 10.0}, axes)
    assert [p.index for p in points] == [0, 1, 2, 3]
    assert points[1].values == {
        "scale:network.currents.Itau_mem": 1,
        "network.currents.Idc.1": 7e-12,
        "stimulus.rate_hz": 5.0,
    }
    assert points[2].network["currents"]["Itau_mem"] == [3e-12, 6e-12]
    assert points[1].network["currents"]["Idc"] == [5e-13, 7e-12]  # core 0 keeps the default
    assert points[0].stimulus["rate_hz"] == 5.0
    assert network()["currents"]["Itau_mem"] == [1e-12, 2e-12]  # the base is not mutated


def test_replacing_a_per_core_field_with_a_number_sets_every_core() -> None:
    axes = [{"path": "network.currents.Itau_mem", "mode": "replace", "values": [4e-12]}]
    (point,) = expand_sweep(resolve_network(network()), {}, axes)
    assert point.network["currents"]["Itau_mem"] == [4e-12, 4e-12]


@pytest.mark.parametrize(
    "path,message",
    [
        ("network.currents.Itau_mm", "no key 'Itau_mm' in network.currents"),
        ("network.currents.Itau_mem.2", "has 2 entries"),
        ("seed", "must start with 'network.' or 'stimulus.'"),
        ("network.dt.x", "is a value, not a group"),
    ],
)
def test_bad_axis_paths(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_sweep(
            resolve_network(network()), {}, [{"path": path, "mode": "replace", "values": [1]}]
        )


@pytest.mark.parametrize(
    "groups,n_samples,chunk_size",
    [([0], 1, 1), ([0, 0, 0], 10, 4), ([0] * 5, 256, 64), ([0, 0], 7, 100), ([0, 1, 1, 2], 5, 8)],
)
def test_chunks_cover_every_instance_once_within_one_group(groups, n_samples, chunk_size) -> None:
    chunks = plan_chunks(groups, n_samples, chunk_size)
    ids = np.concatenate([np.arange(c.first, c.last + 1) for c in chunks])
    np.testing.assert_array_equal(ids, np.arange(len(groups) * n_samples))
    group_of = np.repeat(groups, n_samples)
    assert all(group_of[c.first] == group_of[c.last] and c.size <= chunk_size for c in chunks)
    assert len({c.name for c in chunks}) == len(chunks)
    # as few calls as the groups allow: only the last chunk of a group may be short
    per_group = {g: sum(1 for c in chunks if group_of[c.first] == g) for g in set(groups)}
    for g, n in per_group.items():
        assert n == -(-groups.count(g) * n_samples // chunk_size)


def test_chunks_pack_several_sweep_points() -> None:
    chunks = plan_chunks([0] * 5, 256, 4096)
    assert [(c.first, c.last) for c in chunks] == [(0, 1279)]


@pytest.mark.parametrize("n_chunks", [1, 2, 5, 17, 64])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8])
def test_shards_partition_the_chunks(n_chunks: int, count: int) -> None:
    chunks = plan_chunks([0], n_chunks, 1)
    shards = [shard_chunks(chunks, index, count) for index in range(count)]
    assert [c for shard in shards for c in shard] == chunks
    with pytest.raises(ValueError, match="shard.index"):
        shard_chunks(chunks, count, count)


def test_robustness_metrics() -> None:
    nominal = np.array([10.0, 20.0, 0.0, 30.0])
    rates = np.array([[10.0, 20.0, 0.0, 30.0], [11.0, 30.0, 1.0, 30.0]])
    metrics = robustness_metrics(rates, nominal, within=0.2)
    np.testing.assert_allclose(metrics["rate_rel_error"], [0.0, 12.0 / 60.0])
    np.testing.assert_allclose(metrics["frac_within"], [1.0, 0.5])
    assert metrics["rate_corr"][0] == pytest.approx(1.0)
    flat = robustness_metrics(np.full((1, 4), 5.0), nominal, 0.2)
    assert np.isnan(flat["rate_corr"][0])
