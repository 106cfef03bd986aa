"""The mirror's files: every version of every file of the wiki (``crawl --files``).

The catalogue is in SQLite (``file_versions``, ``file_blobs``; docs/schema.md);
the bytes are beside it, each distinct content once, as
``DIR/files/<first two hex digits>/<sha1>``. Beside the file, not inside it:
files run to hundreds of MB, and a download must be written as it arrives (so
memory stays flat), resumed from the bytes on disk after a kill (``.part``),
and checked against its SHA-1 before anything records it. As a BLOB a file
would be written in one transaction, twice through the WAL, and every copy or
VACUUM of the catalogue would carry all the files.

Order of a download: the bytes into ``<sha1>.part``; the SHA-1 checked; the
file renamed to ``<sha1>``; then the catalogue records it. Killed between the
last two, the next run finds the file complete and records it without fetching
it again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from .downloads import PartialDownload
from .errors import NotInMirrorError, StorageError, TextHiddenError
from .mirror import Mirror
from .records import FileVersionRecord
from .schema import utc_now

FILES_DIR = "files"
FILE_NAMESPACE = 6

WANTED = "wanted"  # its bytes are to be fetched
STORED = "stored"  # its bytes are in DIR/files
HIDDEN = "hidden"  # revision-deleted on the wiki: never fetched
SKIPPED = "skipped"  # larger than the run's --files-max-size
MISSING = "missing"  # the wiki has no bytes for it (404, or no URL or SHA-1 given)
REFUSED = "refused"  # its URL is on a host the wiki does not name for its files
MISMATCH = "mismatch"  # it came twice with another SHA-1 than the wiki's
DELETED = "deleted"  # deleted on the wiki since (the file or this version): no bytes kept
# What a crawl tries to fetch (again): a new size limit, or a second chance.
FETCHABLE = (WANTED, SKIPPED, MISMATCH)
# meta: the SHA-1s whose bytes a committed change made unused, until they are deleted
PENDING_REMOVAL = "files_to_remove"

FILE_VERSION_COLUMNS = tuple(f.name for f in fields(FileVersionRecord))
# Numbered parameters: the columns in order, then the state the metadata gives; a
# version whose bytes the mirror already holds is stored at once.
_STATE = len(FILE_VERSION_COLUMNS) + 1
_SHA1 = FILE_VERSION_COLUMNS.index("sha1") + 1
_UPSERT_VERSION = f"""
    INSERT INTO file_versions ({", ".join(FILE_VERSION_COLUMNS)}, state)
    VALUES ({", ".join(f"?{n}" for n in range(1, _STATE))},
            CASE WHEN ?{_STATE} = 'wanted' AND EXISTS
                 (SELECT 1 FROM file_blobs b WHERE b.sha1 = ?{_SHA1}) THEN 'stored'
            ELSE ?{_STATE} END)
    ON CONFLICT (name, timestamp) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in FILE_VERSION_COLUMNS[2:])},
    state = excluded.state
"""


@dataclass(frozen=True)
class WantedBytes:
    """One distinct content to fetch, with the first file and URL that have it."""

    sha1: str
    size: int | None
    url: str
    name: str


class FileBytes:
    """``DIR/files``: the bytes of the mirror's files, by SHA-1."""

    def __init__(self, directory: Path) -> None:
        self.root = Path(directory) / FILES_DIR

    def path(self, sha1: str) -> Path:
        if len(sha1) != 40 or not all(c in "0123456789abcdef" for c in sha1):
            raise ValueError(f"not a SHA-1: {sha1!r}")
        return self.root / sha1[:2] / sha1

    def download(self, sha1: str) -> PartialDownload:
        return PartialDownload(self.path(sha1))

    def holds(self, sha1: str) -> bool:
        return self.path(sha1).is_file()


def version_state(version: FileVersionRecord) -> str:
    """What a version's bytes are to the mirror, as far as its metadata tells."""
    if version.filehidden:
        return HIDDEN
    if version.sha1 is None or version.url is None:
        return MISSING
    return WANTED  # or stored, if the mirror holds its SHA-1 (decided in the upsert)


def write_file_versions(
    mirror: Mirror, versions: list[FileVersionRecord], checkpoint: str,
    state: dict[str, Any] | None, done: bool,
) -> None:
    """Store a step of the file catalogue walk and advance its checkpoint, atomically.
    A version seen again is updated; its state starts over from its metadata."""
    with mirror.transaction() as conn:
        conn.executemany(_UPSERT_VERSION, [
            (*astuple(version), version_state(version)) for version in versions])
        mirror.advance_checkpoint(checkpoint, state, done, len(versions))


def reconcile_files(mirror: Mirror, current: dict[str, list[FileVersionRecord]]) -> list[str]:
    """Make the mirror's versions of each file named the ones the wiki shows now (none:
    the file was deleted or moved away). A version the wiki no longer shows is recorded
    as deleted, or removed when it shows under another of the names (a move); the bytes
    no version needs any more are removed, hidden ones included; returns the SHA-1s
    removed. All files in one transaction: the bytes of a file moved
    to a new name stay, as the new name's.

    The removal of bytes is recorded in the same transaction as the catalogue's change
    and done after it: a kill in between leaves the record, and the next call (or
    :func:`remove_unused_bytes`) finishes it."""
    remove_unused_bytes(mirror)
    conn = mirror.db.conn
    # a version that shows under another of the names is a move, not a deletion
    moved = {(v.timestamp, v.sha1) for versions in current.values() for v in versions}
    with mirror.transaction():
        before: set[str] = set()
        for name, versions in current.items():
            before |= {row[0] for row in conn.execute(
                "SELECT sha1 FROM file_versions WHERE name = ? AND sha1 IS NOT NULL", [name])}
            conn.executemany(_UPSERT_VERSION, [
                (*astuple(version), version_state(version)) for version in versions])
            keep = [version.timestamp for version in versions]
            gone = conn.execute(
                f"SELECT timestamp, sha1 FROM file_versions WHERE name = ? AND state != ? AND "
                f"timestamp NOT IN ({', '.join('?' for _ in keep)})",
                [name, DELETED, *keep]).fetchall()
            for timestamp, sha1 in gone:
                if (timestamp, sha1) in moved:  # it lives on under the file's new name
                    conn.execute("DELETE FROM file_versions WHERE name = ? AND timestamp = ?",
                                 [name, timestamp])
                else:  # recorded as deleted, like a deleted page's tombstone
                    conn.execute("UPDATE file_versions SET state = ?, url = NULL"
                                 " WHERE name = ? AND timestamp = ?", [DELETED, name, timestamp])
        unused = sorted(sha1 for sha1 in before if not conn.execute(
            "SELECT 1 FROM file_versions WHERE sha1 = ? AND state != ? LIMIT 1",
            [sha1, DELETED]).fetchone())
        conn.executemany("DELETE FROM file_blobs WHERE sha1 = ?", [(s,) for s in unused])
        if unused:
            mirror.set_meta(PENDING_REMOVAL, json.dumps(unused))
    remove_unused_bytes(mirror)
    return unused


def remove_unused_bytes(mirror: Mirror) -> None:
    """Delete from DIR/files the bytes a committed change left without a version."""
    pending = mirror.get_meta(PENDING_REMOVAL)
    if pending is None:
        return
    store = FileBytes(mirror.directory)
    for sha1 in json.loads(pending):
        store.download(sha1).remove()
    mirror.db.conn.execute("DELETE FROM meta WHERE key = ?", [PENDING_REMOVAL])


def wanted_bytes(mirror: Mirror, after: str = "", limit: int = 500) -> list[WantedBytes]:
    """The next distinct contents to fetch, by SHA-1 after ``after``: read a page at a
    time, so that a wiki of a million files does not sit in memory."""
    marks = ", ".join("?" for _ in FETCHABLE)
    rows = mirror.db.conn.execute(
        f"""SELECT sha1, max(size), min(url), min(name) FROM file_versions
            WHERE state IN ({marks}) AND sha1 > ? GROUP BY sha1 ORDER BY sha1 LIMIT ?""",
        [*FETCHABLE, after, limit]).fetchall()
    return [WantedBytes(sha1, size, url, name) for sha1, size, url, name in rows]


def record_file_bytes(mirror: Mirror, sha1: str, size: int) -> int:
    """The bytes of ``sha1`` are in DIR/files: every version that has them is stored.
    Returns how many versions that completes."""
    with mirror.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO file_blobs (sha1, size, stored) VALUES (?, ?, ?)",
                     [sha1, size, utc_now()])
        return _set_state(conn, sha1, STORED)


def mark_file_bytes(mirror: Mirror, sha1: str, state: str) -> int:
    """The versions with these bytes could not be fetched: why (skipped, missing,
    refused, mismatch). Returns how many versions."""
    assert state in (SKIPPED, MISSING, REFUSED, MISMATCH), state
    with mirror.transaction() as conn:
        return _set_state(conn, sha1, state)


def _set_state(conn: sqlite3.Connection, sha1: str, state: str) -> int:
    marks = ", ".join("?" for _ in FETCHABLE)
    cursor = conn.execute(
        f"UPDATE file_versions SET state = ? WHERE sha1 = ? AND state IN ({marks})",
        [state, sha1, *FETCHABLE])
    return cursor.rowcount


# -- reading ----------------------------------------------------------------------------


def iter_files(mirror: Mirror) -> Iterator[dict[str, Any]]:
    """Each file with its current version, its count of versions and their bytes."""
    cursor = mirror.db.conn.execute("SELECT * FROM files ORDER BY name")
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def file_names(mirror: Mirror) -> Iterator[str]:
    """Every file's name, in order."""
    for (name,) in mirror.db.conn.execute("SELECT DISTINCT name FROM file_versions ORDER BY name"):
        yield name


def file_versions(mirror: Mirror, name: str) -> list[dict[str, Any]]:
    """Every version of one file, newest first."""
    cursor = mirror.db.conn.execute(
        f"SELECT {', '.join(FILE_VERSION_COLUMNS)}, state FROM file_versions WHERE name = ?"
        " ORDER BY timestamp DESC", [name])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def file_counts(mirror: Mirror) -> dict[str, Any]:
    """Files, versions by state, and the bytes held (``stats``)."""
    conn = mirror.db.conn
    files = conn.execute("SELECT count(DISTINCT name) FROM file_versions WHERE state != ?",
                         [DELETED])
    states = dict(conn.execute("SELECT state, count(*) FROM file_versions GROUP BY state"))
    held, held_bytes = conn.execute("SELECT count(*), sum(size) FROM file_blobs").fetchone()
    return {"files": int(files.fetchone()[0]), "versions": sum(states.values()),
            "versions_by_state": states, "contents": int(held),
            "content_bytes": int(held_bytes or 0)}


def version_at(mirror: Mirror, name: str, at: str | None = None) -> dict[str, Any]:
    """The version of a file current at ``at`` (ISO 8601; default now), with its state;
    NotInMirrorError when the mirror has none."""
    cursor = mirror.db.conn.execute(
        f"SELECT {', '.join(FILE_VERSION_COLUMNS)}, state FROM file_versions"
        " WHERE name = ? AND timestamp <= ? ORDER BY timestamp DESC LIMIT 1",
        [name, at or "9999"])
    row = cursor.fetchone()
    if row is None:
        when = f" at {at}" if at else ""
        raise NotInMirrorError(f"the mirror has no file {name.replace('_', ' ')}{when}")
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def version_bytes_path(mirror: Mirror, version: dict[str, Any]) -> Path:
    """Where a stored version's bytes are; why not, for one that is not stored."""
    name = version["name"].replace("_", " ")
    if version["state"] == HIDDEN:
        raise TextHiddenError(f"the version of {name} of {version['timestamp']} is hidden on "
                              "the wiki: the mirror has no copy")
    if version["state"] != STORED:
        raise NotInMirrorError(f"the bytes of {name} of {version['timestamp']} are not in the "
                               f"mirror ({version['state']})")
    path = FileBytes(mirror.directory).path(version["sha1"])
    if not path.is_file():
        raise StorageError(f"{path}, the bytes of {name}, is gone from the mirror's files")
    return path


# -- verify -----------------------------------------------------------------------------


def count_file_bytes(mirror: Mirror) -> int:
    return int(mirror.db.conn.execute("SELECT count(*) FROM file_blobs").fetchone()[0])


def check_file_bytes(mirror: Mirror, progress: Callable[[int], None] | None = None
                     ) -> dict[str, list[str]]:
    """Every content the catalogue says DIR/files holds, read and hashed: the SHA-1s
    that are damaged or gone, with the names of the files that have them."""
    store = FileBytes(mirror.directory)
    bad: dict[str, list[str]] = {}
    for (sha1,) in mirror.db.conn.execute("SELECT sha1 FROM file_blobs ORDER BY sha1").fetchall():
        path = store.path(sha1)
        if not path.is_file() or store.download(sha1).sha1() != sha1:
            bad[sha1] = [row[0] for row in mirror.db.conn.execute(
                "SELECT DISTINCT name FROM file_versions WHERE sha1 = ? ORDER BY name", [sha1])]
        if progress is not None:
            progress(1)
    return bad


def forget_file_bytes(mirror: Mirror, sha1s: list[str]) -> None:
    """Damaged contents out of the store, their versions wanted again (crawl --files or
    verify --repair fetch them)."""
    with mirror.transaction() as conn:
        for sha1 in sha1s:
            conn.execute("DELETE FROM file_blobs WHERE sha1 = ?", [sha1])
            conn.execute("UPDATE file_versions SET state = ? WHERE sha1 = ? AND state = ?",
                         [WANTED, sha1, STORED])
        mirror.set_meta(PENDING_REMOVAL, json.dumps(sorted(sha1s)))
    remove_unused_bytes(mirror)
