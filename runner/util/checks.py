"""The one check of integer arguments (counts, seeds, instance ids), with one wording."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["UINT64_STOP", "check_int"]

UINT64_STOP = 2**64  # seeds and instance ids key Philox with 64 bits


def check_int(name: str, value: Any, minimum: int = 0, stop: int | None = None) -> int:
    """`value` as an int in [minimum, stop) (no upper bound when `stop` is None). A bool, a
    float or an int out of range is refused: a seed or id beyond 64 bits would silently alias
    another. The ValueError names `name`, the range and the value."""
    integral = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not integral or value < minimum or (stop is not None and value >= stop):
        if stop is None:
            expected = f">= {minimum}"
        else:
            expected = f"in [{minimum}, {'2**64' if stop == UINT64_STOP else stop})"
        raise ValueError(f"{name} must be an int {expected}, got {value!r}")
    return int(value)
