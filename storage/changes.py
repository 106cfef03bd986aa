"""Applying the wiki's later changes to stored pages: what incremental sync needs.

The sync job reads recentchanges; for a page touched by a log event (move,
deletion, undeletion, revision deletion, merge, import, ...) it fetches the
page's current history metadata and calls reconcile_page(), which makes the
stored page match it whatever happened in between. Each public function here
is one transaction, and applying it twice changes nothing the second time.

Content the wiki no longer shows (deleted pages and revisions, hidden texts)
is removed from the texts table, not only flagged, and with secure_delete on
(see Mirror.open) SQLite zeroes the freed pages; Mirror.scrub_wal() then clears
the copies that earlier commits left in the WAL. (It cannot while another
connection is reading, e.g. a Datasette: the WAL is cleared at a later change.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .mirror import (
    UPDATE_REVISION,
    Mirror,
    actor_id,
    content_kind_id,
    revision_data_row,
    sha1_column,
)
from .records import PageRecord, RevisionRecord, SlotRecord
from .schema import utc_now
from .slots import fold, unfold

_META_COLUMNS = (
    "revid, pageid, parentid, timestamp, user, userid, comment, minor, size, sha1, tags,"
    " texthidden, userhidden, commenthidden, sha1hidden, suppressed"
)


# The main slot's stored text (hex sha1), if any.
_MAIN_TEXT = "SELECT text_sha1 FROM slots WHERE revid = ? AND role = 'main'"

# Host parameters per IN (...) list: well below SQLite's limit.
_CHUNK = 500


@dataclass
class ReconcileResult:
    """What reconcile_page() did, and what the caller must fetch with content."""

    # Revids to fetch with their content and store with Mirror.write_batch: not
    # stored at all, or stored without a text the wiki shows (newly visible,
    # changed, or never fetched).
    missing: set[int] = field(default_factory=set)
    deleted: int = 0  # stored revisions the page no longer has
    updated: int = 0  # stored revisions whose metadata or slots changed
    rehomed: int = 0  # stored under another pageid before (a history merge)
    purged_texts: int = 0  # texts removed from the texts table

    @property
    def changed(self) -> bool:
        return bool(self.deleted or self.updated or self.rehomed or self.purged_texts)


@dataclass
class _StoredSlot:
    role: str
    size: int | None
    sha1: str | None
    text_sha1: str | None
    texthidden: bool
    missing: bool
    text_id: int | None = None
    content_model: str | None = None


# -- reading ------------------------------------------------------------------------


def stored_revision_ids(mirror: Mirror, pageid: int) -> set[int]:
    """The revids stored under a page."""
    rows = mirror.db.conn.execute("SELECT revid FROM revision_data WHERE pageid = ?", (pageid,))
    return {int(row[0]) for row in rows}


def stored_revision_ids_among(mirror: Mirror, revids: list[int]) -> set[int]:
    """Which of ``revids`` the mirror holds, whatever their page."""
    found: set[int] = set()
    for chunk in _chunks(revids):
        rows = mirror.db.conn.execute(
            f"SELECT revid FROM revision_data WHERE revid IN ({_marks(chunk)})", chunk)
        found.update(int(row[0]) for row in rows)
    return found


def stored_revision_meta(mirror: Mirror, pageid: int) -> dict[int, RevisionRecord]:
    """A page's stored revisions by revid, metadata only: slots carry no text."""
    conn = mirror.db.conn
    revisions = _load_revisions(conn, "pageid = ?", [pageid])
    slots = _load_slots(conn, list(revisions))
    for revid, rev in revisions.items():
        rev.slots = [
            SlotRecord(
                role=s.role,
                size=s.size,
                sha1=s.sha1,
                texthidden=s.texthidden,
                missing=s.missing,
            )
            for s in slots.get(revid, [])
        ]
    return revisions


def _load_revisions(
    conn: sqlite3.Connection, where: str, params: list[Any]
) -> dict[int, RevisionRecord]:
    out: dict[int, RevisionRecord] = {}
    for row in conn.execute(f"SELECT {_META_COLUMNS} FROM revisions WHERE {where}", params):
        (revid, pageid, parentid, timestamp, user, userid, comment, minor, size, sha1, tags,
         texthidden, userhidden, commenthidden, sha1hidden, suppressed) = row  # fmt: skip
        out[revid] = RevisionRecord(
            revid=revid,
            pageid=pageid,
            parentid=parentid,
            timestamp=timestamp,
            user=user,
            userid=userid,
            comment=comment,
            minor=bool(minor),
            size=size,
            sha1=sha1,
            tags=json.loads(tags) if tags else [],
            texthidden=bool(texthidden),
            userhidden=bool(userhidden),
            commenthidden=bool(commenthidden),
            sha1hidden=bool(sha1hidden),
            suppressed=bool(suppressed),
        )
    return out


def _load_slots(conn: sqlite3.Connection, revids: list[int]) -> dict[int, list[_StoredSlot]]:
    out: dict[int, list[_StoredSlot]] = {}
    for chunk in _chunks(revids):
        for revid, role, size, sha1, text_sha1, texthidden, missing, text_id, model in conn.execute(
            "SELECT revid, role, size, sha1, text_sha1, texthidden, missing, text_id,"
            f" content_model FROM slots WHERE revid IN ({_marks(chunk)}) ORDER BY revid, role",
            chunk,
        ):
            slot = _StoredSlot(role, size, sha1, text_sha1, bool(texthidden), bool(missing),
                               text_id, model)  # fmt: skip
            out.setdefault(revid, []).append(slot)
    return out


# -- reconciling a page ------------------------------------------------------------


def reconcile_page(
    mirror: Mirror, page: PageRecord, current: list[RevisionRecord]
) -> ReconcileResult:
    """Make a stored page match the wiki's current view of it, in one transaction.

    ``current`` is the page's complete history as the API reports it now,
    metadata only (slot texts are ignored). Revisions the page no longer has
    are deleted (a merge elsewhere brings them back under their new page);
    revisions stored under another page are moved here; changed metadata and
    newly hidden texts are applied, and texts nothing refers to any more are
    purged. The result's ``missing`` says what to fetch with content.
    """
    for rev in current:
        if rev.pageid != page.pageid:
            raise ValueError(f"revision {rev.revid} belongs to page {rev.pageid}, not {page}")
    wanted = {rev.revid: rev for rev in current}
    result = ReconcileResult()
    with mirror.transaction() as conn:
        mirror.write_page_rows([page])
        # The page exists again (an undeletion): it is no longer a tombstone.
        conn.execute("DELETE FROM tombstones WHERE pageid = ?", (page.pageid,))
        here = _load_rows(conn, "pageid = ?", [page.pageid])
        gone = sorted(set(here) - set(wanted))
        freed = _delete_revisions(conn, gone)
        result.deleted = len(gone)
        stored = here | _load_rows_by_id(conn, sorted(set(wanted) - set(here)))
        slots = _load_slots(conn, sorted(set(wanted) & set(stored)))
        touched: list[int] = []  # unfolded here (storage/slots.py), folded again below
        for revid, rev in wanted.items():
            old = stored.get(revid)
            if old is None:
                result.missing.add(revid)
                continue
            result.rehomed += old[0] != page.pageid
            meta = _meta_row(rev)
            if old[1:] != meta[1:]:
                unfold(conn, [revid])  # a folded slot takes the row's size, sha1, flag
                touched.append(revid)
            slots_changed, needs_text, unused = _reconcile_slots(conn, rev, slots.get(revid, []))
            meta_changed = _update_revision(conn, rev, old, meta)
            touched += [revid] if slots_changed else []
            result.updated += meta_changed or slots_changed
            freed.extend(unused)
            if needs_text:
                result.missing.add(revid)
        fold(conn, touched)
        result.purged_texts = _collect_garbage(mirror, freed)
    if result.purged_texts:
        mirror.give_back_space()
    if result.changed:
        mirror.scrub_wal()  # hidden names and comments, not only texts
    return result


# A revision's stored metadata, in the column order of _META_COLUMNS after revid.
_MetaRow = tuple[Any, ...]


def _load_rows(conn: sqlite3.Connection, where: str, params: list[Any]) -> dict[int, _MetaRow]:
    sql = f"SELECT {_META_COLUMNS} FROM revisions WHERE {where}"
    return {row[0]: tuple(row[1:]) for row in conn.execute(sql, params)}


def _load_rows_by_id(conn: sqlite3.Connection, revids: list[int]) -> dict[int, _MetaRow]:
    out: dict[int, _MetaRow] = {}
    for chunk in _chunks(revids):
        out.update(_load_rows(conn, f"revid IN ({_marks(chunk)})", chunk))
    return out


def _meta_row(rev: RevisionRecord) -> _MetaRow:
    """The revision's metadata as stored: hidden fields are NULL whatever the caller sent."""
    return (
        rev.pageid, rev.parentid, rev.timestamp,
        None if rev.userhidden else rev.user,
        None if rev.userhidden else rev.userid,
        None if rev.commenthidden else rev.comment,
        int(rev.minor), rev.size,
        None if rev.sha1hidden else rev.sha1,
        json.dumps(rev.tags, ensure_ascii=False),  # as write_batch() writes them
        int(rev.texthidden), int(rev.userhidden), int(rev.commenthidden),
        int(rev.sha1hidden), int(rev.suppressed),
    )  # fmt: skip


def _update_revision(conn: sqlite3.Connection, rev: RevisionRecord, old: _MetaRow,
                     new: _MetaRow) -> bool:
    """Write a stored revision's metadata if it changed (``new``, _meta_row() of ``rev``,
    against ``old`` as stored); True if it did.

    A change of pageid alone (re-homing) is counted by the caller, not here.
    """
    revid = rev.revid
    main = conn.execute(_MAIN_TEXT, (revid,)).fetchone()
    sha1 = sha1_column(new[8], None if main is None else main[0])
    if old[1:] == new[1:]:
        if old[0] != new[0]:
            conn.execute("UPDATE revision_data SET pageid = ? WHERE revid = ?", (new[0], revid))
        # The main text may be gone (hidden) while the wiki still shows its sha1.
        conn.execute(
            "UPDATE revision_data SET sha1 = ? WHERE revid = ? AND sha1 IS NOT ?",
            (sha1, revid, sha1),
        )
        return False
    user, userid = new[3], new[4]
    actor = None if user is None else actor_id(conn, user, userid)
    conn.execute(UPDATE_REVISION, (*revision_data_row(rev, actor, sha1), revid))
    return True


def _reconcile_slots(
    conn: sqlite3.Connection, rev: RevisionRecord, stored: list[_StoredSlot]
) -> tuple[bool, bool, list[int]]:
    """Apply the current slot metadata: (changed, text to fetch, texts no longer used).

    A revision given without slots (an API answer without rvslots) keeps its
    stored slots; the revision's own texthidden flag still applies to them,
    as MediaWiki hides all slots of a revision together.
    """
    by_role = {s.role: s for s in stored}
    current = rev.slots or [SlotRecord(role=s.role, missing=s.missing) for s in stored]
    changed, needs_text, unused = False, False, list[int]()
    for slot in current:
        old = by_role.pop(slot.role, None)
        if old is None:
            needs_text = True  # a slot never stored: the whole revision is fetched again
            continue
        new = _slot_now(rev, slot, old)
        if new != old:
            # The format describes the serialised content: with the content withheld
            # the API gives none, and a mirror keeps none either (as a fresh crawl).
            kind = None
            if new.texthidden:
                kind = content_kind_id(conn, old.content_model, None)
            unfold(conn, [rev.revid])
            conn.execute(
                "UPDATE slot_data SET size = ?, sha1 = ?, text_id = ?, texthidden = ?,"
                " missing = ?, kind = coalesce(?, kind) WHERE revid = ? AND role = ?",
                (new.size, sha1_column(new.sha1, new.text_sha1), new.text_id,
                 int(new.texthidden), int(new.missing), kind, rev.revid, slot.role),
            )  # fmt: skip
            changed = True
        if old.text_id is not None and new.text_id is None:
            unused.append(old.text_id)
        needs_text |= new.text_sha1 is None and not new.texthidden and not new.missing
    if rev.slots:
        for gone in by_role.values():  # roles the revision no longer has
            unfold(conn, [rev.revid])
            conn.execute(
                "DELETE FROM slot_data WHERE revid = ? AND role = ?", (rev.revid, gone.role)
            )
            if gone.text_id is not None:
                unused.append(gone.text_id)
            changed = True
    return changed, needs_text, unused


def _slot_now(rev: RevisionRecord, slot: SlotRecord, old: _StoredSlot) -> _StoredSlot:
    """The stored slot updated with what the wiki says now."""
    hidden = slot.texthidden or rev.texthidden
    if hidden:
        # The wiki withholds the text and its sha1: so does the mirror.
        return _StoredSlot(old.role, old.size, slot.sha1, None, True, slot.missing, None,
                           old.content_model)
    sha1 = slot.sha1 if slot.sha1 is not None else old.sha1
    text_sha1, text_id = old.text_sha1, old.text_id
    if slot.sha1 is not None and old.sha1 is not None and slot.sha1 != old.sha1:
        text_sha1 = text_id = None  # the content is not what was stored: fetch it again
    size = slot.size if slot.size is not None else old.size
    return _StoredSlot(old.role, size, sha1, text_sha1, False, slot.missing, text_id,
                       old.content_model)


def _delete_revisions(conn: sqlite3.Connection, revids: list[int]) -> list[int]:
    """Delete revisions and their slots; returns the texts (ids) those slots referred to."""
    freed: list[int] = []
    for chunk in _chunks(revids):
        marks = _marks(chunk)
        freed += [
            row[0]
            for row in conn.execute(
                f"SELECT text_id FROM slots WHERE revid IN ({marks}) AND text_id IS NOT NULL",
                chunk,
            )
        ]
        conn.execute(f"DELETE FROM slot_data WHERE revid IN ({marks})", chunk)
        conn.execute(f"DELETE FROM revision_data WHERE revid IN ({marks})", chunk)
    return freed


# -- deleted pages and renamed users ------------------------------------------------


def delete_page(mirror: Mirror, pageid: int, tombstone: dict[str, Any]) -> int:
    """The page was deleted on the wiki: drop it, keep a tombstone; returns revisions removed.

    ``tombstone`` is stored as JSON in the tombstone's ``log`` column; its
    "log" entry (a logevents/recentchanges item), if any, supplies the time of
    the deletion, and its or the entry's "title"/"ns" stand in for a page row
    the mirror never had.
    """
    log = tombstone.get("log")
    entry: dict[str, Any] = log if isinstance(log, dict) else tombstone
    with mirror.transaction() as conn:
        row = conn.execute("SELECT ns, title FROM pages WHERE pageid = ?", (pageid,)).fetchone()
        ns, title = row if row is not None else (
            tombstone.get("ns", entry.get("ns")), tombstone.get("title", entry.get("title"))
        )  # fmt: skip
        revids = sorted(stored_revision_ids(mirror, pageid))
        freed = _delete_revisions(conn, revids)
        conn.execute("DELETE FROM pages WHERE pageid = ?", (pageid,))
        conn.execute(
            "INSERT OR REPLACE INTO tombstones (pageid, ns, title, deleted_at, log)"
            " VALUES (?, ?, ?, ?, ?)",
            (pageid, ns, title, str(entry.get("timestamp") or utc_now()),
             json.dumps(tombstone, ensure_ascii=False, default=str)),
        )  # fmt: skip
        _collect_garbage(mirror, freed)
    mirror.give_back_space()
    mirror.scrub_wal()
    return len(revids)


def rename_user(mirror: Mirror, old: str, new: str) -> int:
    """A user was renamed: attribution follows; returns the revisions attributed anew."""
    if old == new:
        return 0
    with mirror.transaction() as conn:
        return _rename_actors(conn, old, new)


def _rename_actors(conn: sqlite3.Connection, old: str, new: str) -> int:
    """Rename the authors named ``old``; returns the revisions attributed anew.

    An author (name, user id) may exist under the new name already, e.g. from
    edits made after the rename: its revisions and the renamed ones then share it.
    """
    changed = 0
    for actor, userid in conn.execute(
        "SELECT id, userid FROM actors WHERE name = ?", (old,)
    ).fetchall():
        changed += conn.execute(
            "SELECT count(*) FROM revision_data WHERE actor = ?", (actor,)
        ).fetchone()[0]
        twin = conn.execute(
            "SELECT id FROM actors WHERE name = ? AND userid IS ?", (new, userid)
        ).fetchone()
        if twin is None:
            conn.execute("UPDATE actors SET name = ? WHERE id = ?", (new, actor))
        else:
            conn.execute("UPDATE revision_data SET actor = ? WHERE actor = ?", (twin[0], actor))
            conn.execute("DELETE FROM actors WHERE id = ?", (actor,))
    return int(changed)


# -- garbage collection of texts ---------------------------------------------------


def collect_garbage_texts(mirror: Mirror) -> int:
    """Delete every text no slot refers to; returns how many. One transaction.

    Checks the whole texts table (each text's count of the slots that name it),
    so it also catches texts left unreferenced by other writers, e.g.
    write_batch() re-storing a revision whose text has been hidden since.
    """
    with mirror.transaction():
        purged = _collect_garbage(mirror, None)
    if purged:
        mirror.give_back_space()
        mirror.scrub_wal()
    return purged


def _collect_garbage(mirror: Mirror, candidates: Iterable[int] | None) -> int:
    """Delete unreferenced texts inside the caller's transaction.

    With candidates (the texts whose references the caller just removed) only
    those are checked: a sync reconciles one page at a time, and a sweep of the
    whole table for each would cost far more than the change itself.
    """
    conn = mirror.db.conn
    if candidates is None:
        unused = [row[0] for row in conn.execute("SELECT id FROM text_data WHERE refs <= 0")]
    else:
        unused = []
        for chunk in _chunks(sorted(set(candidates))):
            unused += [row[0] for row in conn.execute(
                f"SELECT id FROM text_data WHERE id IN ({_marks(chunk)}) AND refs <= 0", chunk)]
    return mirror.texts.remove_ids(unused)


# -- sync bookkeeping ----------------------------------------------------------------


def seen_rcids(mirror: Mirror, rcids: list[int]) -> set[int]:
    """Those of the recentchanges ids that have been applied already."""
    conn = mirror.db.conn
    out: set[int] = set()
    for chunk in _chunks(sorted(set(rcids))):
        rows = conn.execute(f"SELECT rcid FROM sync_rcids WHERE rcid IN ({_marks(chunk)})", chunk)
        out |= {int(row[0]) for row in rows}
    return out


def record_rcids(mirror: Mirror, items: list[tuple[int, str]], high_water: str) -> None:
    """Record applied recentchanges (rcid, timestamp) and the new high-water mark, atomically."""
    with mirror.transaction() as conn:
        conn.executemany("INSERT OR IGNORE INTO sync_rcids (rcid, timestamp) VALUES (?, ?)", items)
        mirror.set_meta("sync_high_water", high_water)


def prune_rcids(mirror: Mirror, before: str) -> int:
    """Forget rcids older than ``before`` (no walk re-reads them); returns how many."""
    with mirror.transaction() as conn:
        return int(conn.execute("DELETE FROM sync_rcids WHERE timestamp < ?", (before,)).rowcount)


# -- helpers -------------------------------------------------------------------------


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _marks(chunk: list[Any]) -> str:
    return ", ".join("?" * len(chunk))
