"""One process at a time through a piece of work that others would only repeat: an
exclusive `flock` on a lock file. Several processes that need the same cached kernel
(the jobs of a Slurm array on one node, parallel test workers) then build it once: the
first builds, the others wait and find it built."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["held_lock"]


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created 0600 if absent), waiting for its holder.

    The operating system releases it when the holder's process ends, so a killed builder
    leaves no stale lock; the file itself stays, empty, for the next holder.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
