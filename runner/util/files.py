"""Finding and reading user files (specs, stimuli, datasets): a relative path is looked up in
the working directory, then in the shipped conf/; any read failure becomes one error naming
the file."""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.util.paths import CONF_DIR

__all__ = ["find_file", "unreadable_as_error"]

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


def find_file(path: str, key: str) -> Path:
    """A relative path is looked up in the working directory, then in conf/."""
    for candidate in (Path(path), CONF_DIR / path):
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"{key}: no file {path!r} (looked in the working directory and {CONF_DIR})"
    )
