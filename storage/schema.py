"""The mirror's schema: storage/schema.sql declares it; new mirrors are made from it.

A new mirror is created from the declarations in one step. A mirror written
by an earlier harvester is upgraded when it is opened, by the steps of
storage/migrations.py that it has not had yet; ``_migrations`` records them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from .migrations import MIGRATIONS, Migration, executescript

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
# The migration a mirror made from schema.sql counts as having had.
VERSION = len(MIGRATIONS)


def declarations() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


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


def migrate(db: sqlite_utils.Database, *, upto: int | None = None) -> list[str]:
    """Bring the file to the current schema; returns the names of the steps applied.

    An empty file gets the current schema in one step, recorded as every
    migration at once. ``upto`` replays the migrations only that far instead,
    from the first: how the tests make a mirror of an earlier version. BEGIN
    IMMEDIATE takes the write lock before the version is read, so two
    processes opening a new mirror at once cannot both create or upgrade it.
    """
    if not db.table("_migrations").exists():
        _ensure_migrations_table(db)
    target = VERSION if upto is None else upto
    if schema_version(db) >= target:
        return []  # the usual case: no write lock needed to open a mirror
    if upto is None and _transaction(db, _create):
        return ["created"]
    applied: list[str] = []
    for version, (name, migration) in enumerate(MIGRATIONS[:target], start=1):
        if _transaction(db, functools.partial(_apply, version, name, migration)):
            applied.append(name)
    return applied


def _apply(version: int, name: str, migration: Migration, db: sqlite_utils.Database) -> bool:
    """Migration ``version`` if the file has not had it yet; True if it ran."""
    if schema_version(db) >= version:
        return False
    migration(db)
    db.execute("INSERT INTO _migrations (version, name, applied) VALUES (?, ?, ?)",
               [version, name, utc_now()])
    return True


def _create(db: sqlite_utils.Database) -> bool:
    """The current schema in an empty file; False if the file is not empty."""
    if schema_version(db) or _has_tables(db):
        return False
    executescript(db, declarations())
    db.conn.executemany(
        "INSERT INTO _migrations (version, name, applied) VALUES (?, ?, ?)",
        [(version, name, utc_now()) for version, (name, _) in enumerate(MIGRATIONS, start=1)])
    return True


def _transaction(db: sqlite_utils.Database, work: Callable[[sqlite_utils.Database], bool]) -> bool:
    db.execute("BEGIN IMMEDIATE")
    try:
        done = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    return done


def _has_tables(db: sqlite_utils.Database) -> bool:
    row = db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                     " AND name != '_migrations'").fetchone()
    return bool(row[0])


def utc_now() -> str:
    """Current time in the API's timestamp format (second precision, Z suffix)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
