"""Sweep grids, instance ids, chunks and shards."""

from __future__ import annotations

import numpy as np
import pytest

from runner.study.network_config import resolve_network
from runner.study.schema import SweepAxis
from runner.study.sweep import axis_columns, expand_sweep, plan_chunks, shard_chunks


def network() -> dict:
    currents = {"Itau_mem": [1e-12, 2e-12], "Idc": None}
    return {"file": None, "generator": {"name": "feedforward", "params": {}}, "n_cluster": 2,
            "neurons_per_core": 4, "currents": currents, "layout": {}, "Iscale": None,
            "dt": None, "percent_mismatch": 0.1}  # fmt: skip


def test_grid_order_scale_and_per_core_paths() -> None:
    axes = [
        SweepAxis(path="network.currents.Itau_mem", mode="scale", values=[1, 3]),
        SweepAxis(path="network.currents.Idc.1", mode="replace", values=[0.0, 7e-12]),
        SweepAxis(path="stimulus.rate_hz", mode="replace", values=[5.0]),
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
    axes = [SweepAxis(path="network.currents.Itau_mem", mode="replace", values=[4e-12])]
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
            resolve_network(network()), {}, [SweepAxis(path=path, mode="replace", values=[1])]
        )


def test_a_joint_axis_moves_its_paths_together_each_in_its_own_column() -> None:
    axes = [
        SweepAxis(paths=["network.dt", "network.percent_mismatch"],
                  values=[[1e-3, 0.0], [2e-3, 0.3]]),
        SweepAxis(path="stimulus.rate_hz", values=[5.0, 8.0]),
    ]  # fmt: skip
    points = expand_sweep(resolve_network(network()), {"rate_hz": 10.0}, axes)
    assert [p.values for p in points] == [
        {"network.dt": 1e-3, "network.percent_mismatch": 0.0, "stimulus.rate_hz": 5.0},
        {"network.dt": 1e-3, "network.percent_mismatch": 0.0, "stimulus.rate_hz": 8.0},
        {"network.dt": 2e-3, "network.percent_mismatch": 0.3, "stimulus.rate_hz": 5.0},
        {"network.dt": 2e-3, "network.percent_mismatch": 0.3, "stimulus.rate_hz": 8.0},
    ]
    assert [(p.network["dt"], p.network["percent_mismatch"], p.stimulus["rate_hz"])
            for p in points] == [(1e-3, 0.0, 5.0), (1e-3, 0.0, 8.0), (2e-3, 0.3, 5.0),
                                 (2e-3, 0.3, 8.0)]  # fmt: skip
    assert [axis_columns(axis) for axis in axes] == [
        ["network.dt", "network.percent_mismatch"], ["stimulus.rate_hz"]]  # fmt: skip


def test_a_joint_axis_scales_each_path_by_its_own_factor() -> None:
    axis = SweepAxis(paths=["network.currents.Itau_mem", "network.dt"], mode="scale",
                     values=[[2, 3]])  # fmt: skip
    (point,) = expand_sweep(resolve_network({**network(), "dt": 1e-3}), {}, [axis])
    assert point.network["currents"]["Itau_mem"] == [2e-12, 4e-12]
    assert point.network["dt"] == pytest.approx(3e-3)
    assert point.values == {"scale:network.currents.Itau_mem": 2, "scale:network.dt": 3}


@pytest.mark.parametrize(
    "axes,message",
    [
        ([SweepAxis(path="network.dt", paths=["network.dt"], values=[[1e-3]])],
         r"give exactly one of `path` \(one field\) or `paths` .* got both"),
        ([SweepAxis(values=[1e-3])], r"give exactly one of `path` .* got neither"),
        ([SweepAxis(paths=[], values=[[]])], r"sweep axis paths=\[\]: a joint axis needs at least"),
        ([SweepAxis(paths=["network.dt", "network.Iscale"], values=[[1e-3, 1e-8], 1e-3])],
         r"sweep axis paths=\['network.dt', 'network.Iscale'\]: values\[1\] is 0.001; each "
         r"value of a joint axis must be a list of 2 entries, one per path"),
        ([SweepAxis(paths=["network.dt", "network.Iscale"], values=[[1e-3]])],
         r"values\[0\] is \[0.001\]; .* a list of 2 entries"),
        ([SweepAxis(paths=["network.dt", "network.Iscale"], values=[])],
         r"sweep axis paths=\['network.dt', 'network.Iscale'\] has no values"),
        ([SweepAxis(paths=["network.dt", "network.Iscale"], values=[[1e-3, 1e-8]]),
          SweepAxis(path="network.Iscale", values=[2e-8])],
         r"sweep axes set \['network.Iscale'\] more than once"),
        ([SweepAxis(paths=["network.dt", "network.dt"], values=[[1e-3, 2e-3]])],
         r"sweep axes set \['network.dt'\] more than once"),
    ],
)  # fmt: skip
def test_bad_joint_axes_are_refused_naming_the_axis_and_the_shape(axes, message) -> None:
    with pytest.raises(ValueError, match=message):
        expand_sweep(resolve_network(network()), {}, axes)


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


def listed_chunks(groups: list[int], n_samples: int, chunk_size: int) -> list[tuple[int, int]]:
    """Every chunk, built one by one: what the arithmetic plan must equal."""
    chunks, start = [], 0
    for group in sorted(set(groups)):
        stop = start + groups.count(group) * n_samples
        chunks += [(first, min(first + chunk_size, stop) - 1)
                   for first in range(start, stop, chunk_size)]  # fmt: skip
        start = stop
    return chunks


@pytest.mark.parametrize(
    "groups,n_samples,chunk_size",
    [([0], 1, 1), ([0, 0, 1], 10, 4), ([0, 1, 1, 2], 5, 8), ([0, 0, 0, 1, 2, 2], 7, 3)],
)
@pytest.mark.parametrize("count", [1, 2, 3, 5, 40])
def test_the_arithmetic_plan_and_its_shards_equal_the_listed_chunks(
    groups, n_samples, chunk_size, count
) -> None:
    expected = listed_chunks(groups, n_samples, chunk_size)
    chunks = plan_chunks(groups, n_samples, chunk_size)
    assert [(c.first, c.last) for c in chunks] == expected
    assert len(chunks) == len(expected)
    assert [(chunks[i].first, chunks[i].last) for i in range(-len(expected), 0)] == expected
    for index in range(count):
        low, high = index * len(expected) // count, (index + 1) * len(expected) // count
        shard = shard_chunks(chunks, index, count)
        assert [(c.first, c.last) for c in shard] == expected[low:high]  # may be empty
        # the largest chunk of each group the shard touches: the memory check's worst case
        group_of = np.repeat(groups, n_samples)
        worst = {}
        for first, last in expected[low:high]:
            group = group_of[first]
            worst[group] = max(worst.get(group, 0), last - first + 1)
        assert [c.size for c in shard.largest_per_group()] == list(worst.values())


def test_a_huge_plan_makes_only_the_chunks_it_is_asked_for(made_chunks) -> None:
    """~10^12 samples in 10^9 shards: planning a shard builds no chunk object per instance."""
    made = made_chunks
    n_samples = 10**12 + 1
    chunks = plan_chunks([0, 0, 1], n_samples, 1024)  # groups of 2 and 1 points
    in_group_0 = -(-2 * n_samples // 1024)
    assert len(chunks) == in_group_0 + -(-n_samples // 1024)
    shard = shard_chunks(chunks, 3, 10**9)
    assert not made  # planning and sharding are arithmetic
    low, high = 3 * len(chunks) // 10**9, 4 * len(chunks) // 10**9
    assert len(shard) == high - low == 3
    assert (shard[0].first, shard[0].size) == (low * 1024, 1024)
    end_of_group_0 = chunks[in_group_0 - 1]
    assert (end_of_group_0.last, end_of_group_0.size) == (2 * n_samples - 1, 2 * n_samples % 1024)
    assert chunks[in_group_0].first == 2 * n_samples  # a new group starts a new chunk
    assert chunks[-1].last == 3 * n_samples - 1
    assert len(made) == 5  # one per indexing above


def test_chunk_names_sort_by_id_and_parse_beyond_nine_digits() -> None:
    chunks = plan_chunks([0], 2 * 10**9, 10**8)
    names = [c.name for c in chunks]
    assert names[9] == "900000000-999999999" and names[10] == "1000000000-1099999999"
    parsed = [tuple(map(int, name.split("-"))) for name in names]
    assert parsed == [(c.first, c.last) for c in chunks]


@pytest.mark.parametrize(
    "groups,n_chips,chunk_size,n_trials",
    [([0], 5, 1, 4), ([0, 0, 1], 3, 8, 4), ([0, 0], 7, 9, 3), ([0, 1, 1], 2, 100, 5)],
)
def test_chunks_hold_whole_chips_in_row_ids(groups, n_chips, chunk_size, n_trials) -> None:
    """Rows (point * n_chips + chip) * n_trials + trial: every row once, each chunk a run
    of whole chips (max(1, chunk_size // n_trials) of them), never across a group."""
    chunks = plan_chunks(groups, n_chips, chunk_size, n_trials)
    rows = np.concatenate([np.arange(c.first, c.last + 1) for c in chunks])
    np.testing.assert_array_equal(rows, np.arange(len(groups) * n_chips * n_trials))
    per_chunk = max(1, chunk_size // n_trials)
    expected = [(first * n_trials, (last + 1) * n_trials - 1)
                for first, last in listed_chunks(groups, n_chips, per_chunk)]  # fmt: skip
    assert [(c.first, c.last) for c in chunks] == expected
    assert all(c.first % n_trials == 0 and c.size % n_trials == 0 for c in chunks)
    shard = shard_chunks(chunks, 1, 2)
    assert [(c.first, c.last) for c in shard] == expected[len(expected) // 2 :]
