"""Sweep grid -> points; row ids; chunks of whole chips; shards of chunks.

A row is one (point, chip, trial): row = (point * n_chips + chip) * n_trials + j, where j is
the trial's position in the point's `chip_trials`; its mismatch draws are keyed by (seed,
chip) (paired) or (seed, point * n_chips + chip) (independent), never by the row. A chunk
is a contiguous row range holding whole chips (every trial of each), one backend call
spanning as many sweep points as fit, and names its file; a shard is a contiguous block of
chunks. So the numbers of a row never depend on chunk size, shard count or which backend
ran it. Chunks are arithmetic (`Chunks`): a plan of 10^12 rows costs what one of 32 does.
"""

from __future__ import annotations

import bisect
import copy
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from runner.study.schema import SweepAxis

__all__ = [
    "SweepPoint",
    "Chunk",
    "Chunks",
    "expand_sweep",
    "axis_paths",
    "axis_name",
    "axis_columns",
    "plan_chunks",
    "shard_chunks",
]


@dataclass(frozen=True)
class SweepPoint:
    index: int
    values: dict[str, Any]  # axis column name -> the value given in the sweep
    network: dict[str, Any]  # the point's `network:` tree, resolved and swept (plain values)
    stimulus: dict[str, Any]  # its `stimulus:` tree


@dataclass(frozen=True)
class Chunk:
    """Rows (instances) first..last (inclusive), of one or more sweep points: one backend
    call."""

    first: int
    last: int

    @property
    def name(self) -> str:
        return f"{self.first:09d}-{self.last:09d}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def axis_paths(axis: SweepAxis) -> list[str]:
    """The fields an axis sets: its `path`, or the `paths` of a joint axis (ValueError when
    it gives both, neither, or an empty list)."""
    if (axis.path is None) == (axis.paths is None):
        given = "both `path` and `paths`" if axis.path is not None else "neither"
        raise ValueError(
            f"sweep axis with values {axis.values!r}: give exactly one of `path` (one field) or "
            f"`paths` (a joint axis: a list of fields that move together), got {given}"
        )
    if axis.paths is not None and not axis.paths:
        raise ValueError("sweep axis paths=[]: a joint axis needs at least one path")
    return [axis.path] if axis.paths is None else list(axis.paths)


def axis_name(axis: SweepAxis) -> str:
    """How errors name an axis: its path, or its joint paths as a list."""
    paths = axis_paths(axis)
    return repr(paths[0]) if axis.paths is None else f"paths={paths}"


def axis_columns(axis: SweepAxis) -> list[str]:
    """Table columns of an axis, one per path: the path, prefixed `scale:` when values are
    factors."""
    return [("scale:" if axis.mode.value == "scale" else "") + path for path in axis_paths(axis)]


def _axis_entries(axis: SweepAxis) -> list[list[Any]]:
    """Per value of the axis, one entry per path (a joint axis: each value is such a list)."""
    if not axis.values:
        raise ValueError(f"sweep axis {axis_name(axis)} has no values")
    if axis.paths is None:
        return [[value] for value in axis.values]
    width = len(axis_paths(axis))
    for index, value in enumerate(axis.values):
        if not isinstance(value, list) or len(value) != width:
            raise ValueError(
                f"sweep axis {axis_name(axis)}: values[{index}] is {value!r}; each value of a "
                f"joint axis must be a list of {width} entries, one per path"
            )
    return [list(value) for value in axis.values]


def _locate(tree: dict[str, Any], path: str) -> tuple[Any, str | int]:
    """(container, key) of a dotted path; integer segments index lists (per-core values)."""
    parts = path.split(".")
    if parts[0] not in ("network", "stimulus") or len(parts) < 2:
        raise ValueError(f"sweep axis path {path!r} must start with 'network.' or 'stimulus.'")
    node: Any = tree
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the config"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(
                    f"sweep axis path {path!r}: {where} has {len(node)} entries, got {part!r}"
                )
            key: str | int = int(part)
        elif isinstance(node, dict):
            if part not in node:
                raise ValueError(
                    f"sweep axis path {path!r}: no key {part!r} in {where} (keys: {sorted(node)})"
                )
            key = part
        else:
            raise ValueError(f"sweep axis path {path!r}: {where} is a value, not a group")
        if depth == len(parts) - 1:
            return node, key
        node = node[key]
    raise AssertionError("unreachable")


def _scaled(value: Any, factor: float, path: str) -> Any:
    if isinstance(value, list):
        return [_scaled(entry, factor, path) for entry in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"sweep axis {path!r} (mode=scale): the field holds {value!r}, not a number"
        )
    return value * factor


def expand_sweep(
    network: dict[str, Any], stimulus: dict[str, Any], axes: Sequence[SweepAxis]
) -> list[SweepPoint]:
    """The grid, first axis slowest, over the plain `network` and `stimulus` trees (the
    network resolved: per-core lists); each point holds its own edited trees. A joint axis
    sets its paths together, and each path keeps its own column in `SweepPoint.values`."""
    entries = [_axis_entries(axis) for axis in axes]
    columns = [column for axis in axes for column in axis_columns(axis)]
    paths = [path for axis in axes for path in axis_paths(axis)]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(f"sweep axes set {repeated} more than once; each path may be on one "
                         f"axis, once (axes: {columns})")  # fmt: skip
    points = []
    for index, combination in enumerate(itertools.product(*entries)):
        tree = {"network": copy.deepcopy(network), "stimulus": copy.deepcopy(stimulus)}
        values = [value for entry in combination for value in entry]
        modes = [axis.mode.value for axis in axes for _ in axis_paths(axis)]
        for path, mode, value in zip(paths, modes, values, strict=True):
            container, key = _locate(tree, path)
            if mode == "scale":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(
                        f"sweep axis {path!r} (mode=scale): values are factors and must "
                        f"be numbers, got {value!r}"
                    )
                container[key] = _scaled(container[key], value, path)
            elif isinstance(container[key], list) and not isinstance(value, list):
                container[key] = [value] * len(container[key])  # one value for every core
            else:
                container[key] = value
        points.append(
            SweepPoint(
                index,
                dict(zip(columns, values, strict=True)),
                tree["network"],
                tree["stimulus"],
            )
        )
    return points


class Chunks(Sequence[Chunk]):
    """The chunks of a plan (or a contiguous block of them), computed on demand.

    Held as the chip range of each group of points, the chips per chunk and the rows per
    chip, so planning costs O(groups) whatever the number of rows; a chunk object exists
    only while it is indexed or iterated. Slicing gives another `Chunks` (a shard).
    """

    def __init__(self, groups: list[tuple[int, int]], chips_per_chunk: int,
                 indices: range | None = None, rows_per_chip: int = 1) -> None:  # fmt: skip
        """groups: (first chip, one past the last chip) of each group of points, in order."""
        self._groups = groups
        self._chips_per_chunk = chips_per_chunk
        self._rows_per_chip = rows_per_chip
        self._offsets = [0]  # index of each group's first chunk, then the total
        for start, stop in groups:
            self._offsets.append(self._offsets[-1] + -(-(stop - start) // chips_per_chunk))
        self._indices = range(self._offsets[-1]) if indices is None else indices

    def _chunk(self, index: int) -> Chunk:
        group = bisect.bisect_right(self._offsets, index) - 1
        start, stop = self._groups[group]
        first = start + (index - self._offsets[group]) * self._chips_per_chunk
        stop = min(first + self._chips_per_chunk, stop)
        return Chunk(first * self._rows_per_chip, stop * self._rows_per_chip - 1)

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, item: int) -> Chunk: ...

    @overload
    def __getitem__(self, item: slice) -> Chunks: ...

    def __getitem__(self, item: int | slice) -> Chunk | Chunks:
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise ValueError("a block of chunks is contiguous: slices take no step")
            return Chunks(self._groups, self._chips_per_chunk, self._indices[item],
                          self._rows_per_chip)  # fmt: skip
        return self._chunk(self._indices[item])

    def __iter__(self) -> Iterator[Chunk]:
        return (self._chunk(index) for index in self._indices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        rows = self._chips_per_chunk * self._rows_per_chip
        return f"Chunks({len(self)} chunks of up to {rows} rows)"

    def largest_per_group(self) -> list[Chunk]:
        """The largest of these chunks in each group of points they touch (O(groups))."""
        largest = []
        for low, high in itertools.pairwise(self._offsets):
            first = max(low, self._indices.start)
            if first < min(high, self._indices.stop):  # only a group's last chunk is short
                largest.append(self._chunk(first))
        return largest


def plan_chunks(
    point_groups: list[int], n_chips: int, chunk_size: int, n_trials: int = 1
) -> Chunks:
    """Chunks of whole chips over all points, in row order: max(1, chunk_size // n_trials)
    chips (each n_trials rows) per chunk, so a chunk exceeds chunk_size rows only when one
    chip's trials do.

    `point_groups[p]` says which points can share a backend call (same neurons, weights,
    dt and input shape); a chunk never straddles a change of group.
    """
    n_points = len(point_groups)
    if n_points < 1 or n_chips < 1 or chunk_size < 1 or n_trials < 1:
        raise ValueError(
            "need n_points, sweep.n_samples, chunk_size and stimulus.trials >= 1, "
            f"got {n_points}, {n_chips}, {chunk_size}, {n_trials}"
        )
    groups = []
    start = 0
    for _, members in itertools.groupby(point_groups):
        stop = start + len(list(members)) * n_chips
        groups.append((start, stop))
        start = stop
    return Chunks(groups, max(1, chunk_size // n_trials), rows_per_chip=n_trials)


def shard_chunks(chunks: Sequence[Chunk], index: int, count: int) -> Sequence[Chunk]:
    """Shard `index` of `count`: a contiguous block; the blocks partition `chunks`.

    A shard may hold no chunk (more shards than chunks).
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard.index must be in [0, shard.count={count}), got {index}")
    return chunks[index * len(chunks) // count : (index + 1) * len(chunks) // count]
