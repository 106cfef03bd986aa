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


MIGRATIONS: list[tuple[str, Migration]] = [
    ("catalogue", _create_catalogue),
    ("revisions", _create_revisions),
    ("views", _create_views),
    ("pages by namespace and pageid", _index_pages_by_namespace),
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
