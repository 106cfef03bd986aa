"""storage/readahead.py: an iterator run in a forked child, its items read in order."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import readahead
from storage.dumpxml import DumpError
from storage.errors import MirrorLockedError, StorageError
from storage.lock import MirrorLock
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(not readahead.available(), reason="needs fork and 2 CPUs")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_items_arrive_in_order_from_another_process() -> None:
    def produce() -> Iterator[tuple[int, int, bytes]]:
        for i in range(200):
            yield i, os.getpid(), bytes(i % 7) * 50_000

    items = list(readahead.read_ahead(produce))
    assert [i for i, _, _ in items] == list(range(200))
    assert all(blob == bytes(i % 7) * 50_000 for i, _, blob in items)
    assert {pid for _, pid, _ in items} != {os.getpid()}


def test_an_error_in_the_child_is_raised_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield from range(3)
        raise DumpError("dump.xml: not well-formed (invalid token): line 7, column 2")

    got = []
    with pytest.raises(DumpError, match="line 7, column 2"):
        for item in readahead.read_ahead(produce):
            got.append(item)
    assert got == [0, 1, 2]


def test_an_error_that_cannot_be_pickled_arrives_as_its_message() -> None:
    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:  # pickling would call Odd(msg)
            super().__init__(f"odd {a} {b}")

    def produce() -> Iterator[int]:
        yield 1
        raise Odd(2, 3)

    with pytest.raises(StorageError, match="Odd: odd 2 3"):
        list(readahead.read_ahead(produce))


def test_a_child_that_dies_is_an_error_not_a_hang() -> None:
    def produce() -> Iterator[int]:
        yield 1
        os._exit(9)

    with pytest.raises(StorageError, match="exit code 9"):
        list(readahead.read_ahead(produce))


def test_the_child_reads_ahead_a_bounded_number_of_items() -> None:
    made = multiprocessing.get_context("fork").Value("i", 0)

    def produce() -> Iterator[int]:
        while True:
            with made.get_lock():
                made.value += 1
            yield made.value

    items = readahead.read_ahead(produce)
    assert next(items) == 1
    time.sleep(1.0)
    # one taken, QUEUE_ITEMS waiting, one being put
    assert made.value <= 1 + readahead.QUEUE_ITEMS + 1
    items.close()


def test_stopping_early_stops_the_child() -> None:
    def produce() -> Iterator[int]:
        while True:
            yield os.getpid()

    items = readahead.read_ahead(produce)
    child = next(items)
    assert pid_alive(child)
    items.close()
    assert not pid_alive(child)


# The parent reads one item (the child's pid) and is then killed with SIGKILL.
# The child's own check of its parent is made too slow to matter: it must be
# the kernel that ends it.
ORPHAN = """
import sys, os, time
from storage import readahead
readahead.POLL_SECONDS = 600

def produce():
    while True:
        yield os.getpid(), b"x" * 1_000_000

items = readahead.read_ahead(produce)  # kept: a dropped generator stops the child
pid, _ = next(items)
print(pid, flush=True)
time.sleep(60)
"""


def test_a_child_whose_parent_is_killed_exits_by_itself() -> None:
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert pid_alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert wait_gone(child), "the reader process outlived its parent"


# The parent holds a mirror's lock while its reader runs, and is killed.
LOCKED_PARENT = """
import sys, os, time
from pathlib import Path
from storage import readahead
from storage.lock import MirrorLock
readahead.POLL_SECONDS = 600

def produce():
    while True:
        yield os.getpid(), b"x" * 1_000_000

lock = MirrorLock(Path(sys.argv[1]))
lock.acquire()
items = readahead.read_ahead(produce)
pid, _ = next(items)
print(pid, flush=True)
time.sleep(60)
"""


def test_a_killed_parent_leaves_the_mirror_unlocked_at_once(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", LOCKED_PARENT, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    with pytest.raises(MirrorLockedError):
        MirrorLock(tmp_path).acquire()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    with MirrorLock(tmp_path) as lock:  # the reader, alive or dying, holds nothing
        assert lock.held
    assert wait_gone(child)


def test_a_forked_child_cannot_release_its_parents_lock(tmp_path: Path) -> None:
    with MirrorLock(tmp_path) as lock:
        def produce() -> Iterator[bool]:
            lock.release()  # the child's copy of the parent's lock object
            yield lock.held

        assert list(readahead.read_ahead(produce)) == [False]
        assert lock.held
        with pytest.raises(MirrorLockedError):  # still the parent's
            MirrorLock(tmp_path).acquire()
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
