"""Where a revision's slots are kept: folded into its row, or rows of ``slot_data``.

Most revisions have one slot, the main one, of the revision's own size, sha1
and hidden flag: its content kind and text go into the ``revision_data`` row
(``kind``, ``text_id``), with no ``slot_data`` row and no index entry of its own.
Any other revision keeps its slots in ``slot_data`` and ``kind`` NULL. The
``slots`` view shows both alike (storage/schema.sql).

Code that changes one slot of a stored revision unfolds it first and folds it
again after, so that only the writer of new revisions needs to know the rule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from sqlite_utils.utils import chunks

from .records import RevisionRecord

# A stored revision whose slots could be folded: the rule of folds(), on rows.
_FOLDABLE = """
SELECT s.revid, s.kind, s.text_id FROM slot_data s JOIN revision_data r ON r.revid = s.revid
WHERE s.revid IN ({marks}) AND r.kind IS NULL AND s.role = 'main' AND s.kind IS NOT NULL
    AND NOT s.missing AND s.size IS r.size AND s.sha1 IS r.sha1
    AND s.texthidden IS r.texthidden
    AND NOT EXISTS (SELECT 1 FROM slot_data o WHERE o.revid = s.revid AND o.role != 'main')
"""

_UNFOLD = """
INSERT INTO slot_data (revid, role, kind, size, sha1, text_id, texthidden, missing)
SELECT revid, 'main', kind, size, sha1, text_id, texthidden, 0 FROM revision_data
WHERE revid IN ({marks}) AND kind IS NOT NULL
"""

# Host parameters per IN (...) list: well below SQLite's limit.
_CHUNK = 500


def folds(rev: RevisionRecord) -> bool:
    """Whether a revision's slots are written into its own row (see the module's doc)."""
    if len(rev.slots) != 1:
        return False
    (slot,) = rev.slots
    return (slot.role == "main" and not slot.missing and slot.size == rev.size
            and slot.sha1 == rev.sha1 and (slot.texthidden or rev.texthidden) == rev.texthidden)


def unfold(conn: sqlite3.Connection, revids: Iterable[int]) -> None:
    """Move these revisions' folded main slots to ``slot_data`` (the others are left)."""
    for chunk in _chunks(revids):
        marks = ", ".join("?" * len(chunk))
        conn.execute(_UNFOLD.format(marks=marks), chunk)
        conn.execute(f"UPDATE revision_data SET kind = NULL, text_id = NULL"
                     f" WHERE revid IN ({marks}) AND kind IS NOT NULL", chunk)


def fold(conn: sqlite3.Connection, revids: Iterable[int]) -> None:
    """Fold those of these revisions whose slots allow it."""
    for chunk in _chunks(revids):
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(_FOLDABLE.format(marks=marks), chunk).fetchall()
        # The row takes the text first: its count never drops to 0 on the way.
        conn.executemany("UPDATE revision_data SET kind = ?, text_id = ? WHERE revid = ?",
                         [(kind, text_id, revid) for revid, kind, text_id in rows])
        conn.executemany("DELETE FROM slot_data WHERE revid = ?", [(row[0],) for row in rows])


def slot_text_id(conn: sqlite3.Connection, revid: int, role: str) -> int | None:
    """The text a revision's slot names, if it is stored."""
    row = conn.execute("SELECT text_id FROM slots WHERE revid = ? AND role = ?",
                       (revid, role)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def drop_text_references(conn: sqlite3.Connection, text_ids: list[int]) -> None:
    """Slots that named these texts name none now (the texts are gone)."""
    for chunk in _chunks(text_ids):
        marks = ", ".join("?" * len(chunk))
        for table in ("revision_data", "slot_data"):
            conn.execute(f"UPDATE {table} SET text_id = NULL WHERE text_id IN ({marks})", chunk)


def _chunks(items: Iterable[int]) -> Iterator[list[int]]:
    return (list(chunk) for chunk in chunks(items, _CHUNK))
