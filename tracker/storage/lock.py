"""The store's lock: one writer (run, import, reindex, verify) at a time on one store,
opened without following a link, so a shared store cannot make it truncate another file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tracker.core.errors import LockedError, StoreError
from tracker.core.files import NOFOLLOW

LOCK_NAME = ".lock"


@contextlib.contextmanager
def hold_lock(root: Path, wait: float, reason: Callable[[OSError], str]) -> Iterator[None]:
    """Hold `root`'s lock, waiting up to `wait` seconds for another holder, then raising
    `LockedError`; `reason` words an OS error (a full or read-only disk)."""
    path = root / LOCK_NAME
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open_lock(path)
    except OSError as exc:
        raise StoreError(f"cannot lock the store at {path}: {reason(exc)}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise LockedError(
                        f"{root} is in use by {holder}; try again later"
                        " (or give run --wait SECONDS)"
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def open_lock(path: Path) -> Any:
    """Open (or create) a lock file without following a symbolic link, as a text handle.

    A shared store could hold `.lock` as a link to any file the user can write, which
    the lock would then truncate; a link, or anything but a plain file, is refused.
    """
    flags = os.O_RDWR | NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            fd = os.open(path, flags)  # most often there: no need to ask to create it
        except FileNotFoundError:
            fd = os.open(path, flags | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(
                f"{path} is a symbolic link; refusing to use it as the lock"
                " (remove it: a lock is an empty plain file)"
            ) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StoreError(f"{path} is not a plain file; refusing to use it as the lock")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a+")
    except BaseException:
        os.close(fd)
        raise
