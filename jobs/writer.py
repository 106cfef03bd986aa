"""The single SQLite writer: every mirror call runs in a worker thread, one at a time."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from storage.errors import MirrorFullError, is_disk_full

T = TypeVar("T")


class SerialWriter:
    """Runs blocking storage calls off the trio thread behind a ``CapacityLimiter(1)``.

    The connection is opened with ``check_same_thread=False``; the limiter is what
    makes that safe. Calls are not abandoned on cancellation, so a transaction
    that has started always finishes (or rolls back) before the run ends.

    Every write of a crawl or sync passes through here, so this is where a full
    disk (SQLite's "database or disk is full", or ENOSPC) becomes a
    MirrorFullError naming ``directory``: the failed transaction has been rolled
    back, and the same command resumes once there is space.
    """

    def __init__(self, directory: Path | str | None = None) -> None:
        self._limiter = trio.CapacityLimiter(1)
        self._directory = directory

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await trio.to_thread.run_sync(call, limiter=self._limiter)
        except Exception as exc:
            if is_disk_full(exc):
                raise MirrorFullError(self._directory) from exc
            raise
