"""Files written all or nothing: through a new temporary file in the same folder, then a
rename, so that a reader (another process, a resumed run) never sees half a file."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["TEMPORARY_PREFIX", "create_exclusive", "write_atomic"]

TEMPORARY_PREFIX = ".tmp-"  # of the temporary files: left over only by a killed writer


def create_exclusive(folder: Path, name: str) -> tuple[int, Path]:
    """A new temporary file `.tmp-<name>.<random>` (O_EXCL: never an existing file or link);
    its mode follows the umask."""
    path = folder / f"{TEMPORARY_PREFIX}{name}.{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    return os.open(path, flags, 0o666), path


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a new temporary file in the same folder, then rename: all or nothing.

    The temporary file is created exclusively under an unpredictable name, so neither a
    planted symlink nor another process's temporary file is ever written through.
    """
    descriptor, temporary = create_exclusive(path.parent, path.name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
