"""Reading user files (spec and stimulus arrays): any failure becomes one error naming the file."""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["unreadable_as_error"]

# What NumPy and json raise on an empty, truncated or corrupt file (ValueError covers
# JSONDecodeError, UnicodeDecodeError and "pickled data" from allow_pickle=False).
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, json.JSONDecodeError)


@contextmanager
def unreadable_as_error(path: Path, key: str) -> Iterator[None]:
    """Turn a read failure inside the block into `ValueError('<key> <path>: cannot read ...')`."""
    try:
        yield
    except _READ_ERRORS as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "pickle" in reason:  # NumPy's guess for a file without the .npy/.npz header
            reason = "not a NumPy array file, or one holding Python objects"
        message = f"{key} {path}: cannot read it as a {path.suffix} file ({reason})"
        raise ValueError(message) from None
