"""held_lock: one holder at a time, waiters let in when it lets go or its process dies."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runner.util.file_lock import held_lock


def _enter_in_a_thread(path: Path) -> tuple[threading.Thread, threading.Event]:
    entered = threading.Event()

    def enter() -> None:
        with held_lock(path):
            entered.set()

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    return thread, entered


def test_a_waiter_enters_when_the_holder_lets_go(tmp_path):
    path = tmp_path / "build.lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another open file: another holder, as another process
    thread, entered = _enter_in_a_thread(path)
    assert not entered.wait(0.3)
    os.close(holder)
    assert entered.wait(10)
    thread.join(10)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    path = tmp_path / "build.lock"
    hold = ("import fcntl, os, sys\n"
            "fcntl.flock(os.open(sys.argv[1], os.O_RDWR | os.O_CREAT), fcntl.LOCK_EX)\n"
            "print('held', flush=True); sys.stdin.read()")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", hold, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    thread, entered = _enter_in_a_thread(path)
    assert not entered.wait(0.3)
    holder.kill()
    holder.wait(10)
    assert entered.wait(10)
    thread.join(10)


def test_the_lock_file_is_private_and_never_a_link(tmp_path):
    path = tmp_path / "build.lock"
    with held_lock(path):
        assert path.stat().st_mode & 0o077 == 0
    (tmp_path / "planted.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError), held_lock(tmp_path / "planted.lock"):
        pass
    assert not (tmp_path / "elsewhere").exists()
