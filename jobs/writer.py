"""The single SQLite writer: every mirror call runs in a worker thread, one at a time."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class SerialWriter:
    """Runs blocking storage calls off the trio thread behind a ``CapacityLimiter(1)``.

    The connection is opened with ``check_same_thread=False``; the limiter is what
    makes that safe. Calls are not abandoned on cancellation, so a transaction
    that has started always finishes (or rolls back) before the run ends.
    """

    def __init__(self) -> None:
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await trio.to_thread.run_sync(call, limiter=self._limiter)
