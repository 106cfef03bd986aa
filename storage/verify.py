"""Is every byte of the mirror what it should be? And putting back what is not.

:func:`verify` checks the SQLite file (``PRAGMA integrity_check``), decodes
every stored text and checks it against its SHA-1, checks that every
slot that should have a text has one (not hidden on the wiki, not missing
there), and hashes every file's bytes in DIR/files. What it finds is named
by page and revision, or by file. :func:`restore` takes
the texts fetched again from the wiki (jobs/verify.py) and writes each
damaged pack anew: its readable texts as they are, its damaged ones from what
was fetched (checked against their SHA-1), and the rest dropped, so that the
mirror says plainly it lacks them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import StorageError
from .files import check_file_bytes, count_file_bytes
from .mirror import Mirror
from .slots import drop_text_references, fold, slot_text_id, unfold


@dataclass(frozen=True)
class Affected:
    """A revision's slot whose text is damaged, or absent when it should be there."""

    revid: int
    role: str
    pageid: int
    title: str | None
    text_id: int | None  # the damaged text; None: no text at all


@dataclass
class VerifyReport:
    integrity: list[str] = field(default_factory=list)  # SQLite's findings; empty: ok
    texts_checked: int = 0
    damaged_packs: dict[int | None, list[int]] = field(default_factory=dict)  # -> text ids
    damaged: list[Affected] = field(default_factory=list)
    unstored: list[Affected] = field(default_factory=list)
    files_checked: int = 0
    damaged_files: dict[str, list[str]] = field(default_factory=dict)  # sha1 -> file names
    miscounted: int = 0  # texts whose count of the slots naming them is wrong

    @property
    def ok(self) -> bool:
        return not (self.integrity or self.damaged_packs or self.unstored or self.damaged_files
                    or self.miscounted)

    def pages(self) -> list[str]:
        """The titles hit, for the summary."""
        hit = {a.title or f"pageid {a.pageid}" for a in self.damaged + self.unstored}
        return sorted(hit)


_AFFECTED = """SELECT s.revid, s.role, r.pageid, p.title, s.text_id FROM slots s
    JOIN revision_data r ON r.revid = s.revid LEFT JOIN pages p ON p.pageid = r.pageid"""


# Texts whose count of the slots naming them (text_data.refs, kept by triggers) is
# wrong: a text counted too low would be taken for garbage.
_MISCOUNTED = """SELECT t.id, coalesce(c.n, 0) FROM text_data t LEFT JOIN
    (SELECT text_id, count(*) AS n FROM slots WHERE text_id IS NOT NULL GROUP BY text_id) c
    ON c.text_id = t.id WHERE t.refs IS NOT coalesce(c.n, 0)"""


def count_texts(mirror: Mirror) -> int:
    """How many texts and files verify() reads (its progress bar's total)."""
    texts = int(mirror.db.execute("SELECT count(*) FROM text_data").fetchone()[0])
    return texts + count_file_bytes(mirror)


def verify(mirror: Mirror, progress: Callable[[int], None] | None = None) -> VerifyReport:
    report = VerifyReport()
    conn = mirror.db.conn
    report.integrity = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")
                        if row[0] != "ok"]
    report.miscounted = len(conn.execute(_MISCOUNTED).fetchall())
    # Pack by pack, in order: each pack is decompressed once, whatever its texts.
    rows = conn.execute("SELECT id, pack FROM text_data ORDER BY pack, position").fetchall()
    for text_id, pack in rows:
        try:
            mirror.texts.get_by_id(int(text_id))
        except StorageError:
            report.damaged_packs.setdefault(pack, []).append(int(text_id))
        report.texts_checked += 1
        if progress is not None:
            progress(1)
    mirror.texts.clear_caches()
    damaged_ids = sorted(i for ids in report.damaged_packs.values() for i in ids)
    for start in range(0, len(damaged_ids), 500):
        chunk = damaged_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        report.damaged += [Affected(*row) for row in conn.execute(
            f"{_AFFECTED} WHERE s.text_id IN ({marks}) ORDER BY s.revid", chunk)]
    report.unstored = [Affected(*row) for row in conn.execute(
        f"{_AFFECTED} WHERE s.text_id IS NULL AND NOT coalesce(s.texthidden, 0)"
        " AND NOT coalesce(s.missing, 0) AND NOT coalesce(r.texthidden, 0) ORDER BY s.revid")]
    report.files_checked = count_file_bytes(mirror)
    report.damaged_files = check_file_bytes(mirror, progress)
    return report


def restore(mirror: Mirror, report: VerifyReport,
            fetched: dict[tuple[int, str], bytes]) -> tuple[int, int]:
    """Write back what the wiki sent for the report's slots ((revid, role) -> bytes);
    returns how many slots have their text again, and how many are left without one."""
    by_sha1 = {hashlib.sha1(data).hexdigest(): data for data in fetched.values()}
    restored = lost = 0
    with mirror.transaction():
        conn = mirror.db.conn
        for pack, text_ids in report.damaged_packs.items():
            if pack is None:  # a text row in no pack: nothing to rebuild, only to refill
                dropped = text_ids
                _delete_texts(conn, dropped)
            else:
                dropped = mirror.texts.rebuild_pack(pack, _recovered(mirror, pack, by_sha1))
            drop_text_references(conn, dropped)
        # every slot the report names that has no text now: from what was fetched
        for slot in report.damaged + report.unstored:
            if slot_text_id(conn, slot.revid, slot.role) is not None:
                restored += 1
                continue
            data = fetched.get((slot.revid, slot.role))
            if data is None:
                lost += 1
                continue
            stored = mirror.texts.add_bytes(data, slot.pageid, slot.role)  # or the same one
            unfold(conn, [slot.revid])
            conn.execute("UPDATE slot_data SET text_id = ? WHERE revid = ? AND role = ?",
                         (stored.id, slot.revid, slot.role))
            fold(conn, [slot.revid])
            restored += 1
    return restored, lost


def recount_text_references(mirror: Mirror) -> int:
    """Set every wrong count of the slots naming a text right; returns how many were."""
    with mirror.transaction() as conn:
        wrong = conn.execute(_MISCOUNTED).fetchall()
        conn.executemany("UPDATE text_data SET refs = ? WHERE id = ?",
                         [(n, text_id) for text_id, n in wrong])
    return len(wrong)


def _recovered(mirror: Mirror, pack: int, by_sha1: dict[str, bytes]) -> dict[int, bytes]:
    """The texts of a damaged pack that can be had: read from it, or fetched again."""
    found: dict[int, bytes] = {}
    for text_id, digest in mirror.db.conn.execute(
            "SELECT id, sha1 FROM text_data WHERE pack = ?", (pack,)).fetchall():
        sha1 = bytes(digest).hex()
        try:
            found[int(text_id)] = mirror.texts.get_bytes(sha1)
        except StorageError:
            data = by_sha1.get(sha1)
            if data is not None:
                found[int(text_id)] = data
    return found


def _delete_texts(conn: sqlite3.Connection, ids: list[int]) -> None:
    for chunk in _chunks(ids):
        conn.execute(
            f"DELETE FROM text_data WHERE id IN ({', '.join('?' * len(chunk))})", chunk)


def _chunks(items: list[int], size: int = 500) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
