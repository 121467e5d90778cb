"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from runner.study import sweep


@pytest.fixture
def made_chunks(monkeypatch) -> list[sweep.Chunk]:
    """Every `sweep.Chunk` object built while the test runs (planning must build few)."""
    made: list[sweep.Chunk] = []

    class CountedChunk(sweep.Chunk):
        def __init__(self, first: int, last: int) -> None:
            super().__init__(first, last)
            made.append(self)

    monkeypatch.setattr(sweep, "Chunk", CountedChunk)
    return made
