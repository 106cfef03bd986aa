"""Run an iterator in a second process: the dump import's parser beside its store.

Importing a dump is two kinds of work in one Python thread: reading the XML
(decompressing, expat, building records) and storing it (SHA-1, zstd deltas,
SQLite). Threads cannot overlap them, both hold the GIL; a forked child can.
The child runs the iterator and sends its items through a queue bounded to
QUEUE_ITEMS, so memory stays flat however far ahead it could read; the parent
yields them in order. Items cross as pickles, so they must pickle; the
iterator's factory need not (the child is forked).

An exception in the child reaches the parent as that exception (or as a
StorageError with its message when it cannot be pickled), raised in place of
the next item. The child never outlives the parent's iteration: it is killed
when the parent stops early, fails or is interrupted, and it exits by itself
when the parent dies without a word (SIGKILL): on Linux the kernel kills it with
its parent (PR_SET_PDEATHSIG), elsewhere it notices within POLL_SECONDS. The
child holds nothing that keeps the mirror busy: the mirror's lock is closed in
it as it is forked (storage/lock.py). The child ignores SIGINT: Ctrl-C is the
parent's to handle.

PR_SET_PDEATHSIG fires when the *thread* that forked the child ends: the
child is forked on the generator's first step, so keep iterating it from the
thread that took that step.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from typing import Any, TypeVar

from .errors import StorageError

T = TypeVar("T")

# Items waiting in the queue: the parent works on one, the child builds the next.
QUEUE_ITEMS = 2
# How often a blocked side checks that the other is still there.
POLL_SECONDS = 0.5

_ITEM, _ERROR, _END = "item", "error", "end"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def available() -> bool:
    """Whether a second process can help: more than one CPU, and fork() to start it."""
    return (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods()


def read_ahead(produce: Callable[[], Iterator[T]]) -> Generator[T, None, None]:
    """The items of ``produce()``, computed in a forked child while the caller works."""
    context = multiprocessing.get_context("fork")
    channel: Any = context.Queue(maxsize=QUEUE_ITEMS)
    child = context.Process(target=_child, args=(produce, channel, os.getpid()), daemon=True)
    child.start()
    try:
        while True:
            kind, payload = _receive(channel, child)
            if kind == _END:
                return
            if kind == _ERROR:
                raise payload
            yield payload
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        channel.close()


def _receive(channel: Any, child: Any) -> tuple[str, Any]:
    while True:
        try:
            message: tuple[str, Any] = channel.get(timeout=POLL_SECONDS)
            return message
        except queue.Empty:
            if not child.is_alive():
                raise StorageError(
                    f"the dump reader process stopped (exit code {child.exitcode})"
                ) from None


def _child(produce: Callable[[], Iterator[Any]], channel: Any, parent: int) -> None:
    _die_with_parent()
    _check_parent(parent)  # the parent may have died before the line above
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for item in produce():
            _send(channel, (_ITEM, item), parent)
        _send(channel, (_END, None), parent)
    except BaseException as exc:  # everything goes to the parent, which decides
        _send(channel, (_ERROR, _transportable(exc)), parent)
    # The queue's feeder thread writes the last items into the pipe in the
    # background, and exiting waits for it: wait here instead, while the parent
    # is there to read them.
    with suppress(NotImplementedError):  # qsize() is missing on macOS
        while channel.qsize() > 0:
            _check_parent(parent)
            time.sleep(POLL_SECONDS / 10)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent ends."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _check_parent(parent: int) -> None:
    if os.getppid() != parent:  # the parent died: no one will read what is left
        os._exit(1)


def _send(channel: Any, message: tuple[str, Any], parent: int) -> None:
    while True:
        try:
            channel.put(message, timeout=POLL_SECONDS)
            return
        except queue.Full:
            _check_parent(parent)


def _transportable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return StorageError(f"{type(exc).__name__}: {exc}")
    return exc
