"""The mirror's SQLite schema, as an ordered list of migrations.

Each migration runs once, inside its own transaction, and is recorded in
``_migrations``; a mirror made by an older harvester is brought up to date when
it is opened. Never edit a migration that has shipped: append a new one.

Table and column names are meant to be read by people (e.g. with Datasette);
booleans are INTEGER 0/1, JSON is TEXT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def _create_catalogue(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("siteinfo").create({"section": str, "data": str}, pk="section")
    db.table("namespaces").create(
        {
            "id": int,
            "name": str,
            "canonical": str,
            "case_mode": str,
            "content": int,
            "subpages": int,
        },
        pk="id",
    )
    db.table("namespace_aliases").create({"alias": str, "id": int})
    # No unique index on (ns, title): pages get renamed, and two pageids can
    # briefly share a title between two crawls.
    db.table("pages").create(
        {
            "pageid": int,
            "ns": int,
            "title": str,
            "is_redirect": int,
            "length": int,
            "latest_revid": int,
            "content_model": str,
            "touched": str,
        },
        pk="pageid",
        not_null=["ns", "title"],
    )
    db.table("pages").create_index(["ns", "title"])
    db.table("users").create({"name": str, "userid": int}, pk="name")
    db.table("checkpoints").create(
        {"name": str, "state": str, "done": int, "items": int, "updated": str},
        pk="name",
        not_null=["done", "items"],
        defaults={"done": 0, "items": 0},
    )
    db.table("runs").create(
        {
            "id": int,
            "command": str,
            "args": str,
            "started": str,
            "finished": str,
            "status": str,
            "stats": str,
        },
        pk="id",
    )


def _create_revisions(db: sqlite_utils.Database) -> None:
    db.table("revisions").create(
        {
            "revid": int,
            "pageid": int,
            "parentid": int,
            "timestamp": str,
            "user": str,
            "userid": int,
            "comment": str,
            "minor": int,
            "size": int,
            "sha1": str,
            "tags": str,
            "texthidden": int,
            "userhidden": int,
            "commenthidden": int,
            "sha1hidden": int,
            "suppressed": int,
        },
        pk="revid",
        not_null=["pageid", "timestamp"],
    )
    # (pageid, timestamp, revid): a page's history in order, for export.
    # (pageid, revid): the delta store's "previous revision of this page" lookup,
    # which must not scan a 100,000-revision history.
    db.table("revisions").create_index(["pageid", "timestamp", "revid"])
    db.table("revisions").create_index(["pageid", "revid"])
    db.table("revisions").create_index(["timestamp"])
    db.table("slots").create(
        {
            "revid": int,
            "role": str,
            "content_model": str,
            "content_format": str,
            "size": int,
            "sha1": str,
            "text_sha1": str,
            "texthidden": int,
            "missing": int,
        },
        pk=("revid", "role"),
    )
    # texts: see storage/textstore.py. `children` counts the texts stored as
    # deltas against this one; the base-selection rule needs it.
    db.table("texts").create(
        {
            "sha1": str,
            "base": str,
            "depth": int,
            "size": int,
            "children": int,
            "data": bytes,
        },
        pk="sha1",
        not_null=["depth", "size", "children", "data"],
        defaults={"children": 0},
    )


def _create_views(db: sqlite_utils.Database) -> None:
    db.create_view(
        "latest_revisions",
        """
        SELECT p.pageid, p.ns, n.name AS namespace, p.title,
               r.revid, r.timestamp, r.user
        FROM pages p
        JOIN revisions r
          ON r.revid = (SELECT max(revid) FROM revisions WHERE pageid = p.pageid)
        LEFT JOIN namespaces n ON n.id = p.ns
        """,
    )
    # Edit counts are derived, not stored, so re-writing a batch can never skew them.
    db.create_view(
        "user_edits",
        """
        SELECT r.user AS name, u.userid, count(*) AS edits,
               min(r.revid) AS first_revid, min(r.timestamp) AS first_edit
        FROM revisions r LEFT JOIN users u ON u.name = r.user
        WHERE r.user IS NOT NULL
        GROUP BY r.user
        """,
    )


def _index_pages_by_namespace(db: sqlite_utils.Database) -> None:
    # Walks over a namespace in pageid order ("next page after N in ns") would
    # otherwise scan the namespace's whole (ns, title) index range each time.
    db.table("pages").create_index(["ns", "pageid"])


# A page's latest revision is its newest by (timestamp, revid), as in export
# --current-only: imported revisions can carry a higher revid than newer edits.
_LATEST_REVID = """(SELECT r2.revid FROM revisions r2 WHERE r2.pageid = p.pageid
                    ORDER BY r2.timestamp DESC, r2.revid DESC LIMIT 1)"""


def _create_reading(db: sqlite_utils.Database) -> None:
    db.execute("DROP VIEW latest_revisions")
    db.create_view(
        "latest_revisions",
        f"""
        SELECT p.pageid, p.ns, n.name AS namespace, p.title,
               r.revid, r.timestamp, r.user
        FROM pages p
        JOIN revisions r ON r.revid = {_LATEST_REVID}
        LEFT JOIN namespaces n ON n.id = p.ns
        """,
    )
    db.create_view(
        "page_history",
        """
        SELECT r.revid, r.pageid, p.ns, n.name AS namespace, p.title, r.parentid,
               r.timestamp, r.user, r.comment, r.minor, r.size, r.tags,
               r.texthidden, r.userhidden, r.commenthidden
        FROM revisions r
        JOIN pages p ON p.pageid = r.pageid
        LEFT JOIN namespaces n ON n.id = p.ns
        """,
    )
    # Correlated subqueries rather than GROUP BY: a LIMIT (Datasette shows 100
    # rows) then costs 100 index probes, not a pass over every revision.
    db.create_view(
        "page_summary",
        """
        SELECT p.pageid, p.ns, n.name AS namespace, p.title, p.is_redirect, p.length,
               (SELECT count(*) FROM revisions r WHERE r.pageid = p.pageid) AS revisions,
               (SELECT min(timestamp) FROM revisions r WHERE r.pageid = p.pageid) AS first_edit,
               (SELECT max(timestamp) FROM revisions r WHERE r.pageid = p.pageid) AS last_edit
        FROM pages p
        LEFT JOIN namespaces n ON n.id = p.ns
        """,
    )
    # Edits by one user, distinct editors (stats), and the user_edits view.
    db.table("revisions").create_index(["user"])
    # Full-text search over the latest text of each page (storage/search.py keeps
    # it current, lazily). rowid = pageid; search_indexed says which revision and
    # title each entry was made from.
    db.execute(
        "CREATE VIRTUAL TABLE search_index USING fts5("
        "title, text, tokenize = 'unicode61 remove_diacritics 2')"
    )
    db.table("search_indexed").create(
        {"pageid": int, "revid": int, "title": str, "text_sha1": str}, pk="pageid"
    )
    # A text removed from the store (hidden or deleted on the wiki) must not live
    # on in the index's copy until the next search.
    db.table("search_indexed").create_index(["text_sha1"])
    db.execute(
        """CREATE TRIGGER search_forget_text AFTER DELETE ON texts BEGIN
            DELETE FROM search_index WHERE rowid IN
                (SELECT pageid FROM search_indexed WHERE text_sha1 = OLD.sha1);
            DELETE FROM search_indexed WHERE text_sha1 = OLD.sha1;
        END"""
    )


def _create_sync(db: sqlite_utils.Database) -> None:
    # Pages deleted on the wiki: the page row moves here, with the log entry.
    db.table("tombstones").create(
        {"pageid": int, "ns": int, "title": str, "deleted_at": str, "log": str}, pk="pageid"
    )
    # recentchanges entries already applied by sync (the walk overlaps itself).
    db.table("sync_rcids").create({"rcid": int, "timestamp": str}, pk="rcid")
    db.table("sync_rcids").create_index(["timestamp"])
    # Garbage collection of texts: "does any slot still use this text?" and
    # "which texts are deltas against this one?" must not scan whole tables.
    db.table("slots").create_index(["text_sha1"])
    db.table("texts").create_index(["base"])


MIGRATIONS: list[tuple[str, Migration]] = [
    ("catalogue", _create_catalogue),
    ("revisions", _create_revisions),
    ("views", _create_views),
    ("pages by namespace and pageid", _index_pages_by_namespace),
    ("reading: views, user index, search index", _create_reading),
    ("sync: tombstones, applied rcids, text reference indexes", _create_sync),
]


def _ensure_migrations_table(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations"
        " (version INTEGER PRIMARY KEY, name TEXT, applied TEXT)"
    )


def schema_version(db: sqlite_utils.Database) -> int:
    """The number of migrations applied to this database (0 for a new one)."""
    if not db.table("_migrations").exists():
        return 0
    row = db.execute("SELECT max(version) FROM _migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the pending migrations in order; returns their names.

    BEGIN IMMEDIATE takes the write lock before reading the version, so two
    processes opening a new mirror at once cannot both apply a migration.
    """
    applied: list[str] = []
    if not db.table("_migrations").exists():
        _ensure_migrations_table(db)
    if schema_version(db) >= len(MIGRATIONS):
        return applied  # the usual case: no write lock needed to open a mirror
    for version, (name, migration) in enumerate(MIGRATIONS, start=1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(db) < version:
                migration(db)
                db.execute(
                    "INSERT INTO _migrations (version, name, applied) VALUES (?, ?, ?)",
                    [version, name, utc_now()],
                )
                applied.append(name)
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
    return applied


def utc_now() -> str:
    """Current time in the API's timestamp format (second precision, Z suffix)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
