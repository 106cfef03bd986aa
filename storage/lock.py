"""Exclusive lock on a mirror directory, so two harvesters never write one mirror.

flock() rather than a pid file: the kernel drops the lock when the holder dies,
however it dies, so there is never a stale lock to clean up by hand.

A flock belongs to the open file, which a fork() shares with the child: a
forked helper (storage/readahead.py) would keep the mirror locked after the
writer died. So a forked child closes its copy of every lock at once
(os.register_at_fork); only the process that took a lock ever holds it.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from .errors import MirrorFullError, MirrorLockedError, StorageError, is_disk_full

LOCK_NAME = ".lock"

# File descriptors of the locks this process holds.
_held: set[int] = set()


def _drop_inherited_locks() -> None:
    """In a forked child: close the parent's lock files (not unlock: that is the parent's)."""
    for fd in _held:
        with suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


class MirrorLock:
    """``with MirrorLock(directory):`` holds DIR/.lock exclusively for the block."""

    def __init__(self, directory: Path, *, create: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._create = create
        self._fd: int | None = None

    def acquire(self) -> None:
        if not self.directory.is_dir():
            if not self._create:
                raise StorageError(f"no mirror at {self.directory}")
            self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise MirrorLockedError(
                f"mirror {self.directory} is in use by another harvester process (pid {holder})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The pid is only informative (for the message above); the lock is the flock.
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)  # releases the flock too
            if is_disk_full(exc):
                raise MirrorFullError(self.directory) from exc
            raise
        self._fd = fd
        _held.add(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd not in _held:  # never taken, or this is a forked child: not ours to release
            return
        _held.discard(fd)
        try:
            # Empty the pid first so nobody reads ours after we let go.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> MirrorLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    """The holder's pid as written in the lock file, or "unknown" while it is being written."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
