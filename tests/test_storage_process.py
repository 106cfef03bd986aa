"""Multi-process behaviour: the mirror lock, and write_batch() under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.errors import MirrorLockedError, StorageError
from storage.lock import MirrorLock
from storage.mirror import DB_NAME, Mirror
from tests.helpers import ROOT

HOLD_LOCK = """
import sys, time
from pathlib import Path
from storage.lock import MirrorLock
with MirrorLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""

# Writes batch after batch, forever, resuming from its checkpoint. Batch k holds
# revisions 10k+1 .. 10k+10 spread over three pages, with texts of a few kB
# (so a kill can land in the middle of compression), and sets state {"next": k+1}.
WRITER = """
import sys
from pathlib import Path
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord
mirror = Mirror.open(Path(sys.argv[1]), create=True)
cp = mirror.get_checkpoint("walk")
k = cp.state["next"] if cp and cp.state else 0
print("ready", flush=True)
pages = [PageRecord(p, 0, f"Page {p}") for p in (1, 2, 3)]
while True:
    revisions = []
    for i in range(10):
        revid = 10 * k + i + 1
        text = f"page {revid % 3} " + " ".join(str(n) for n in range(revid, revid + 2000))
        revisions.append(RevisionRecord(
            revid=revid, pageid=1 + revid % 3, parentid=None,
            timestamp="2024-01-01T00:00:00Z", user=f"U{revid % 7}", userid=revid % 7,
            comment=None, minor=False, size=len(text), sha1=None,
            slots=[SlotRecord(role="main", text=text)]))
    mirror.write_batch(RevisionBatch(pages, revisions), "walk", {"next": k + 1}, False)
    k += 1
"""


def spawn(script: str, directory: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()


def test_lock_excludes_another_process_and_dies_with_it(tmp_path: Path) -> None:
    holder = spawn(HOLD_LOCK, tmp_path)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(MirrorLockedError) as err, MirrorLock(tmp_path):
            pass
        assert f"pid {holder.pid}" in str(err.value)
        assert str(tmp_path) in str(err.value)
    finally:
        kill(holder)
    # The kernel released the lock with the process: no stale lock.
    with MirrorLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    assert not lock.held


def test_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    with MirrorLock(tmp_path), pytest.raises(MirrorLockedError):
        MirrorLock(tmp_path).acquire()
    with MirrorLock(tmp_path):  # released by the with block above
        pass


def test_lock_without_create(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no mirror at"):
        MirrorLock(tmp_path / "absent", create=False).acquire()


def test_sigkill_never_leaves_a_partial_batch(tmp_path: Path) -> None:
    rng = random.Random(7)
    for _ in range(5):
        writer = spawn(WRITER, tmp_path)
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 0.4))
        kill(writer)
        check_consistent(tmp_path)
    with Mirror.open(tmp_path, create=False) as mirror:
        assert mirror.count_revisions() > 0, "the writer never got a batch in"


def check_consistent(directory: Path) -> None:
    with Mirror.open(directory, create=False) as mirror:
        assert mirror.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cp = mirror.get_checkpoint("walk")
        batches = cp.state["next"] if cp and cp.state else 0
        revids = [r[0] for r in mirror.db.execute("SELECT revid FROM revisions ORDER BY revid")]
        assert revids == list(range(1, 10 * batches + 1))
        assert cp is None or cp.items == len(revids)
        slots = mirror.db.execute("SELECT count(*) FROM slots WHERE text_sha1 IS NOT NULL")
        assert slots.fetchone()[0] == len(revids)
        mirror.texts.cache.clear()
        for sha1 in mirror.iter_text_sha1s():  # every text decompresses and checks out
            mirror.read_text(sha1)
    # Nothing but the mirror's own files in the directory (the WAL is fine).
    names = {p.name for p in directory.iterdir()} - {f"{DB_NAME}-wal", f"{DB_NAME}-shm"}
    assert names == {DB_NAME}
