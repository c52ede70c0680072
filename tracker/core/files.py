"""Files written whole or not at all, read whole, and relative paths checked before use."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, durable: bool = True, sync_dir: bool = True) -> None:
    """Write via a temporary file in the same folder, fsync, then rename into place.

    `durable=False` skips the fsyncs, for outputs that can be rebuilt (the site):
    readers still never see half a file, but a power cut may lose the newest ones.
    `sync_dir=False` leaves the folder's fsync (which makes the rename durable) to the
    caller, who writes several files into one folder and syncs it once.

    Plain os calls, about six system calls a file: a run writes three files a page from
    several threads, and every system call is a hand-over of the GIL between them.
    """
    folder = path.parent
    while True:
        tmp = folder / f".{path.name}.{_PID[0]}-{next(_TEMP_NUMBERS)}.tmp"
        try:
            fd = os.open(tmp, _CREATE, 0o644)
            break
        except FileExistsError:
            continue  # left by a killed process that had the same pid
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
            os.fchmod(fd, 0o644)  # whatever the umask: stores are shared read-only
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable and sync_dir:
        fsync_dir(folder)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_TEMP_NUMBERS = itertools.count()
_PID = [os.getpid()]  # getpid is a system call; a forked child learns its own below
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


def read_bytes(path: Path, *, follow: bool = True) -> bytes:
    """A whole file, unbuffered: no isatty probe or seek as `open()` makes by default.

    `follow=False` refuses a symbolic link (ELOOP) where the store keeps plain files.
    Anything but a plain file (a FIFO would block for ever, a device never end) is
    refused with EINVAL: stores and sites are shared, and read as data.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    with open(os.open(path, flags | (0 if follow else NOFOLLOW)), "rb", buffering=0) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a plain file", str(path))
        return handle.readall()


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def safe_relative(rel: object) -> list[str] | None:
    """`rel`'s parts when it is a plain relative path (no absolute, `..`, `.`, empty part,
    backslash or NUL), else None: the lexical half of `Store.resolve_inside`."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
