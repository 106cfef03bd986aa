"""The mirror: one directory holding ``mirror.sqlite``, the catalogue and the revision store.

The storage layer is plain synchronous code: the crawler calls it from one
worker thread at a time, which is why the connection is opened with
check_same_thread=False and why write_batch() need not lock anything itself.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from .errors import MirrorMismatchError, StorageError
from .migrations import COMPACT_STORE, FOLDED_SLOTS, INTEGER_TIMESTAMPS, PACKED_TEXTS
from .records import Checkpoint, PageRecord, RevisionBatch, RevisionRecord, SlotRecord
from .schema import VERSION, migrate, schema_version, utc_now
from .selection import Selection, SelectionSql, resolve
from .slots import folds, slot_text_id
from .stored import (
    REVISION_COLUMNS,
    SLOT_COLUMNS,
    SLOT_JOIN,
    StoredRevision,
    stored_revision,
)
from .textstore import TextStore
from .titles import TitleParser

DB_NAME = "mirror.sqlite"

_UPSERT_PAGE = """
    INSERT INTO pages (pageid, ns, title, is_redirect, length, latest_revid, content_model, touched)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (pageid) DO UPDATE SET
        ns = excluded.ns,
        title = excluded.title,
        is_redirect = coalesce(excluded.is_redirect, pages.is_redirect),
        length = coalesce(excluded.length, pages.length),
        latest_revid = coalesce(excluded.latest_revid, pages.latest_revid),
        content_model = coalesce(excluded.content_model, pages.content_model),
        touched = coalesce(excluded.touched, pages.touched)
"""

# revision_data's columns as every writer fills them (write_batch, and a sync's
# changes in storage/changes.py), in the order of revision_data_row(); kind and
# text_id, a folded main slot (storage/slots.py), only write_batch sets.
_REVISION_DATA = (
    "pageid", "parentid", "timestamp", "actor", "comment", "minor", "size", "sha1", "tags",
    "texthidden", "userhidden", "commenthidden", "sha1hidden", "suppressed",
)  # fmt: skip
_FOLDED_SLOT = ("kind", "text_id")
_UPSERT_REVISION = (
    f"INSERT INTO revision_data (revid, {', '.join(_REVISION_DATA + _FOLDED_SLOT)})"
    f" VALUES ({', '.join('?' * (1 + len(_REVISION_DATA + _FOLDED_SLOT)))})"
    " ON CONFLICT (revid) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _REVISION_DATA + _FOLDED_SLOT))
UPDATE_REVISION = (f"UPDATE revision_data SET {', '.join(f'{c} = ?' for c in _REVISION_DATA)}"
                   " WHERE revid = ?")

_INSERT_SLOT = """
    INSERT INTO slot_data (revid, role, kind, size, sha1, text_id, texthidden, missing)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# items accumulates across calls; state and done are replaced.
_UPDATE_CHECKPOINT = """
    INSERT INTO checkpoints (name, state, done, items, updated) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        state = excluded.state, done = excluded.done,
        items = checkpoints.items + excluded.items, updated = excluded.updated
"""


def recorded_api_url(directory: Path) -> str | None:
    """The API URL a mirror was made from, read without opening it for writing (None when
    there is no mirror, or it records none: say, a dump not attached to its wiki)."""
    return recorded_meta(directory, "api_url")


def recorded_meta(directory: Path, key: str) -> str | None:
    """A ``meta`` value of the mirror in ``directory``, read without opening it for
    writing (None when there is no mirror or no such value)."""
    rows = read_only_rows(directory, "SELECT value FROM meta WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


def recorded_done_checkpoints(directory: Path, prefix: str) -> list[str]:
    """The names of the finished checkpoints under ``prefix``, read as
    :func:`recorded_meta` reads (none when there is no mirror)."""
    rows = read_only_rows(directory, "SELECT name FROM checkpoints WHERE done"
                          " AND substr(name, 1, length(?)) = ?", (prefix, prefix))
    return [str(row[0]) for row in rows]


def read_only_rows(directory: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    path = Path(directory) / DB_NAME
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # not a mirror: opening it says so, with the reason


def revision_text(conn: sqlite3.Connection, texts: TextStore, revid: int,
                  role: str = "main") -> str | None:
    """The text of a revision's slot, or None when hidden, missing or not stored."""
    text_id = slot_text_id(conn, revid, role)
    return None if text_id is None else texts.get_by_id(text_id)


def register_sql_functions(conn: sqlite3.Connection, texts: TextStore) -> None:
    """``revision_text(revid [, role])`` on ``conn``, reading through ``texts``
    (docs/schema.md): on the mirror's own connections, and on Datasette's."""

    def sql_revision_text(revid: object, role: object = "main") -> str | None:
        if not isinstance(revid, int) or not isinstance(role, str):
            return None
        return revision_text(conn, texts, revid, role)

    conn.create_function("revision_text", 1, sql_revision_text)
    conn.create_function("revision_text", 2, sql_revision_text)


class Mirror:
    """An open mirror. Use Mirror.open(); close() it (or use ``with``)."""

    def __init__(self, directory: Path, db: sqlite_utils.Database) -> None:
        self.directory = directory
        self.db = db
        self.texts = TextStore(db.conn)
        register_sql_functions(db.conn, self.texts)

    # -- opening and closing ----------------------------------------------------

    @classmethod
    def open_read_only(cls, directory: Path) -> Mirror:
        """The mirror opened so that nothing can write it (SQLite's ``mode=ro``): for
        readers beside a running crawl, and for the Python API. It must be of this
        harvester's schema: any command of this version upgrades an older one."""
        directory = Path(directory)
        path = directory / DB_NAME
        if not path.is_file():
            raise StorageError(f"no mirror at {directory}")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None)
        try:
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA busy_timeout=10000")
            version = schema_version(db)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StorageError(f"{path} is not a mirror: {exc}") from None
        if version != VERSION:
            conn.close()
            newer = "a newer" if version > VERSION else "an earlier"
            raise StorageError(
                f"mirror {directory} was written by {newer} harvester (schema {version}, "
                f"this one knows {VERSION})" + ("" if version > VERSION else
                f": `harvester stats --mirror {directory}` upgrades it"))
        return cls(directory, db)

    @classmethod
    def open(cls, directory: Path, *, create: bool) -> Mirror:
        directory = Path(directory)
        path = directory / DB_NAME
        new = not path.exists()
        if new:
            if not create:
                raise StorageError(f"no mirror at {directory}")
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create mirror {directory}: {exc.strerror}") from None
        elif not path.is_file():
            raise StorageError(f"{path} is not a file")
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db = sqlite_utils.Database(conn)
            if new:
                _set_file_format(db)
            # WAL + synchronous=NORMAL: a commit is in the WAL file when it
            # returns, so a killed process loses nothing committed; only a power
            # failure or OS crash can lose the last commits, never corrupt the file.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # Another process touching the mirror while a batch commits (say
            # `harvester status` during a crawl) waits instead of failing at once.
            db.execute("PRAGMA busy_timeout=10000")
            # Text hidden or deleted on the wiki must not survive in the file's
            # free pages once storage/changes.py has removed it: SQLite then
            # zeroes what it frees. Cost, 3,000 Anarchism revisions (CPU time,
            # median of 6): write_batch within noise (it frees almost nothing);
            # a reconcile that purges one text 67 -> 77 ms.
            db.execute("PRAGMA secure_delete=ON")
            version = schema_version(db)
            if version > VERSION:
                raise StorageError(
                    f"mirror {directory} was written by a newer harvester"
                    f" (schema {version}, this one knows {VERSION})"
                )
            applied = migrate(db)
            if version and {COMPACT_STORE, PACKED_TEXTS, INTEGER_TIMESTAMPS,
                            FOLDED_SLOTS} & set(applied):
                _vacuum(db)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StorageError(f"{path} is not a usable mirror database ({exc})") from None
        except BaseException:
            conn.close()
            raise
        return cls(directory, db)

    def close(self) -> None:
        self.texts.clear_caches()
        self.db.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock up front, so a transaction never fails
        # half-way because another connection wrote first.
        self.db.conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        # The texts added in the transaction go into their packs with it.
        self.texts.flush()
        self.db.conn.execute("COMMIT")

    def _rollback(self) -> None:
        self.texts.discard_pending()
        if self.db.conn.in_transaction:
            self.db.conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the mirror's connection: committed, or rolled back."""
        self._begin()
        try:
            yield self.db.conn
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def tighten_packs(self, pages_per_transaction: int = 200) -> int:
        """Pack each page's texts tight after a crawl or an import (textstore.tighten),
        then the small packs of several pages together (textstore.share); returns how
        many page+slots were tightened. A transaction every few pages, so an
        interruption keeps what is done; running it again finishes it."""
        loose = self.texts.pages_with_open_packs()
        for start in range(0, len(loose), pages_per_transaction):
            with self.transaction():
                for pageid, role in loose[start : start + pages_per_transaction]:
                    self.texts.tighten(pageid, role)
        groups = self.texts.sharable_packs()  # then small pages' packs shared
        for start in range(0, len(groups), 10):
            with self.transaction():
                for role, pack_ids in groups[start : start + 10]:
                    self.texts.share(role, pack_ids)
        if loose or groups:
            self.give_back_space()
        return len(loose)

    def rewrite_file(self) -> None:
        """Rewrite the file with every page full (VACUUM), after a bulk load.

        Rows and index entries arriving in no particular order leave B-tree
        pages part empty: a tenth of an imported mirror. Needs free disk space
        the size of the file; without it (or with a reader holding the file)
        it is skipped and the file stays as it was.
        """
        _vacuum(self.db)

    def give_back_space(self) -> None:
        """Return the file's free pages to the file system (after texts were removed)."""
        # Through executescript: a plain execute() steps the pragma once, and each
        # step frees one page.
        self.db.conn.executescript("PRAGMA incremental_vacuum;")

    def scrub_wal(self) -> bool:
        """Copy the WAL into the database and truncate it; False if a reader prevented it.

        The WAL keeps the page images of earlier commits, including texts that
        have since been removed, until it is checkpointed and reset.
        """
        busy = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    # -- meta and the wiki's identity -------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def bind_wiki(self, wiki_id: str, api_url: str) -> None:
        """Record which wiki this mirror holds; refuse to mix in another wiki."""
        self._begin()
        try:
            known = self.get_meta("wiki_id")
            if known is None:
                self.set_meta("wiki_id", wiki_id)
                self.set_meta("api_url", api_url)
            elif known != wiki_id:
                url = self.get_meta("api_url")
                raise MirrorMismatchError(
                    f"mirror {self.directory} holds wiki {known} ({url}), not {wiki_id}"
                )
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def save_siteinfo(self, siteinfo: dict[str, Any]) -> None:
        """Store an Action API siteinfo answer (formatversion=2) and its namespaces."""
        namespaces = [
            {
                "id": int(ns["id"]),
                "name": ns.get("name", ""),
                "canonical": ns.get("canonical"),
                "case_mode": ns.get("case"),
                "content": int(bool(ns.get("content", False))),
                "subpages": int(bool(ns.get("subpages", False))),
            }
            for ns in siteinfo.get("namespaces", {}).values()
        ]
        aliases = [
            {"alias": a["alias"], "id": int(a["id"])} for a in siteinfo.get("namespacealiases", [])
        ]
        with self.db.atomic():
            for section, data in siteinfo.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO siteinfo (section, data) VALUES (?, ?)",
                    [section, json.dumps(data, ensure_ascii=False)],
                )
            if "namespaces" in siteinfo:
                self.db.execute("DELETE FROM namespaces")
                self.db.table("namespaces").insert_all(namespaces)
            if "namespacealiases" in siteinfo:
                self.db.execute("DELETE FROM namespace_aliases")
                self.db.table("namespace_aliases").insert_all(aliases)

    def get_siteinfo(self, section: str) -> Any:
        row = self.db.execute("SELECT data FROM siteinfo WHERE section = ?", [section]).fetchone()
        return None if row is None else json.loads(row[0])

    # -- runs -----------------------------------------------------------------

    def start_run(self, command: str, args: dict[str, Any]) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (command, args, started, status) VALUES (?, ?, ?, 'running')",
            [command, json.dumps(args, ensure_ascii=False, default=str), utc_now()],
        )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET finished = ?, status = ?, stats = ? WHERE id = ?",
            [utc_now(), status, json.dumps(stats, ensure_ascii=False, default=str), run_id],
        )

    # -- checkpoints ----------------------------------------------------------

    def get_checkpoint(self, name: str) -> Checkpoint | None:
        row = self.db.execute(
            "SELECT name, state, done, items FROM checkpoints WHERE name = ?", [name]
        ).fetchone()
        return None if row is None else _checkpoint(row)

    def list_checkpoints(self, prefix: str) -> list[Checkpoint]:
        # substr() rather than LIKE: prefixes may contain % or _.
        rows = self.db.execute(
            "SELECT name, state, done, items FROM checkpoints"
            " WHERE substr(name, 1, length(?)) = ? ORDER BY name",
            [prefix, prefix],
        ).fetchall()
        return [_checkpoint(row) for row in rows]

    def create_checkpoints(self, items: list[tuple[str, dict[str, Any] | None]]) -> None:
        """Create checkpoints that do not exist yet; existing ones keep their progress."""
        now = utc_now()
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO checkpoints (name, state, done, items, updated)"
                " VALUES (?, ?, 0, 0, ?)",
                [(name, _state_json(state), now) for name, state in items],
            )

    def save_checkpoints(self, items: list[tuple[str, dict[str, Any] | None]]) -> None:
        """Set the states of several unfinished checkpoints in one transaction, creating
        any that are new and keeping every count: how a piece of a walk is split in two."""
        now = utc_now()
        with self.transaction() as conn:
            conn.executemany(
                _UPDATE_CHECKPOINT, [(name, _state_json(state), 0, 0, now) for name, state in items]
            )

    def advance_checkpoint(
        self, name: str, state: dict[str, Any] | None, done: bool, items: int
    ) -> None:
        """Inside a transaction: a walk's checkpoint moves on with the data it stored
        (``items`` more of them)."""
        assert self.db.conn.in_transaction, "a checkpoint moves with its data"
        self.db.conn.execute(_UPDATE_CHECKPOINT,
                             (name, _state_json(state), int(done), items, utc_now()))

    def delete_checkpoints(self, prefix: str) -> None:
        """Forget every checkpoint whose name starts with ``prefix``."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM checkpoints WHERE substr(name, 1, length(?)) = ?",
                         [prefix, prefix])

    # -- the atomic writes -------------------------------------------------------

    def write_batch(
        self, batch: RevisionBatch, checkpoint: str, state: dict[str, Any] | None, done: bool
    ) -> int:
        """Store a batch of revisions and advance a checkpoint, all or nothing.

        Idempotent: writing a batch again replaces its rows and counts nothing
        twice. Returns the number of revisions that were not stored before.
        Plain SQL on the connection: sqlite-utils' bulk helpers manage their
        own transactions, and everything here must be one.
        """
        conn = self.db.conn
        self._begin()
        try:
            self.write_page_rows(batch.pages)
            # A page's history order, in which its texts go into its pack.
            revisions = sorted(batch.revisions, key=lambda r: (r.pageid, r.timestamp, r.revid))
            new = _BatchWriter(conn, self.texts, revisions).write(revisions)
            conn.execute(
                _UPDATE_CHECKPOINT, (checkpoint, _state_json(state), int(done), new, utc_now())
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return new

    def write_pages(
        self, pages: list[PageRecord], checkpoint: str, state: dict[str, Any] | None, done: bool
    ) -> None:
        """Store a step of the page catalogue walk and advance its checkpoint, atomically."""
        self._begin()
        try:
            self.write_page_rows(pages)
            self.db.conn.execute(
                _UPDATE_CHECKPOINT,
                (checkpoint, _state_json(state), int(done), len(pages), utc_now()),
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def write_page_rows(self, pages: list[PageRecord]) -> None:
        """Insert or update page rows inside the caller's transaction; unknown fields keep
        what is stored."""
        # coalesce() in the statement: a partial record never erases known fields.
        self.db.conn.executemany(
            _UPSERT_PAGE,
            [
                (
                    p.pageid,
                    p.ns,
                    p.title,
                    _int_or_none(p.is_redirect),
                    p.length,
                    p.latest_revid,
                    p.content_model,
                    p.touched,
                )
                for p in pages
            ],
        )

    # -- reading ----------------------------------------------------------------

    def read_text(self, sha1: str) -> str:
        return self.texts.get(sha1)

    def revision_text(self, revid: int, role: str = "main") -> str | None:
        """The text of a revision's slot, or None when hidden, missing or not stored."""
        return revision_text(self.db.conn, self.texts, revid, role)

    def count_revisions(self, selection: Selection | None = None) -> int:
        """How many revisions iter_revisions() yields with the same selection."""
        if selection is None or selection == Selection():
            return int(self.db.execute("SELECT count(*) FROM revision_data").fetchone()[0])
        sql = self._selection_sql(selection)
        return int(self.db.execute(f"SELECT count(*) FROM {sql.source} {sql.where}",
                                   sql.params).fetchone()[0])

    def count_pages(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM pages").fetchone()[0])

    def iter_revisions(self, selection: Selection | None = None) -> Iterator[StoredRevision]:
        """Stored revisions, by pageid, oldest first within a page; streams from a cursor.

        ``selection`` narrows them (storage/selection.py); by default, all of them.
        """
        sql = self._selection_sql(selection or Selection())
        # A dedicated cursor: texts are read through the same connection meanwhile.
        columns = ", ".join(REVISION_COLUMNS + SLOT_COLUMNS)
        cursor = self.db.conn.execute(
            f"SELECT {columns} FROM {sql.source} JOIN revisions r ON r.revid = history.revid"
            f" {SLOT_JOIN} {sql.where} ORDER BY {sql.order}, sd.role",
            sql.params,
        )
        n_rev = len(REVISION_COLUMNS)
        for _, rows in itertools.groupby(cursor, key=lambda row: row[0]):
            first, *rest = rows
            yield stored_revision(first[:n_rev], [first[n_rev:], *(r[n_rev:] for r in rest)])

    def iter_selected_pageids(self, selection: Selection | None = None) -> Iterator[int]:
        """The pages of the revisions iter_revisions() yields, in pageid order."""
        sql = self._selection_sql(selection or Selection())
        rows = self.db.conn.execute(f"SELECT DISTINCT history.pageid FROM {sql.source}"
                                    f" {sql.where} ORDER BY history.pageid", sql.params)
        return (int(pageid) for (pageid,) in rows.fetchall())

    def page_under_title(self, ns: int, title: str) -> int | None:
        """The page stored under this exact title now. Two pageids can share a title for
        a while (a page moved between two crawls): the one edited last holds it."""
        row = self.db.execute(
            "SELECT p.pageid FROM pages p WHERE p.ns = ? AND p.title = ? ORDER BY"
            " (SELECT max(timestamp) FROM revision_data r WHERE r.pageid = p.pageid) DESC"
            " LIMIT 1", [ns, title]).fetchone()
        return None if row is None else int(row[0])

    def _selection_sql(self, selection: Selection) -> SelectionSql:
        return resolve(selection, TitleParser.from_db(self.db.conn), self.page_under_title)

    def iter_text_sha1s(self) -> Iterator[str]:
        """Every stored text's sha1 (for checks: each must read back)."""
        for row in self.db.conn.execute("SELECT sha1 FROM text_data"):
            yield bytes(row[0]).hex()


class _BatchWriter:
    """The rows of one write_batch(), with what its revisions share looked up once.

    8 statements per revision where there were 20 (import of the scale-1
    fixture dump: 24,254 instead of 60,160 for 3,072 revisions): one query
    says which revisions are stored already; authors, users and content kinds
    are looked up once per batch; a revision's sha1 is known to be its text's
    when its row is written. The lookups are kept for one transaction only: a
    rolled-back one hands its ids out again, and renames (storage/changes.py)
    change authors between batches.
    """

    def __init__(
        self, conn: sqlite3.Connection, texts: TextStore, revisions: list[RevisionRecord]
    ) -> None:
        self.conn = conn
        self.texts = texts
        self.stored = _stored_revids(conn, [rev.revid for rev in revisions])
        names = sorted({rev.user for rev in revisions if rev.user and not rev.userhidden})
        self.actors = _known_actors(conn, names)
        self.kinds: dict[tuple[str | None, str | None], int] = {}

    def write(self, revisions: list[RevisionRecord]) -> int:
        """Write the revisions in this order; returns how many were not stored before."""
        new = 0
        for rev in revisions:
            new += self.revision(rev)
        return new

    def revision(self, rev: RevisionRecord) -> int:
        """Write one revision with its slots and texts; 1 if it is new, else 0."""
        conn = self.conn
        known = rev.revid in self.stored
        if known:
            # Replace the slot set as a whole: a re-fetch is the truth now. (A new
            # revision has no slots: they are only ever removed with their revision.)
            conn.execute("DELETE FROM slot_data WHERE revid = ?", (rev.revid,))
        # Texts first: then the revision's sha1 is known to be its main text's
        # (stored once, in text_data: see storage/schema.sql) when its row is written.
        sha1 = rev.sha1
        folded = folds(rev)
        kind = text_id = None
        for slot in rev.slots:
            text_id, text_sha1 = self.text(rev, slot)
            if slot.role == "main" and text_sha1 is not None and text_sha1 == sha1:
                sha1 = ""
            kind = self.kind(slot)
            if not folded:
                conn.execute(_INSERT_SLOT, (
                    rev.revid, slot.role, kind, slot.size, sha1_column(slot.sha1, text_sha1),
                    text_id, int(slot.texthidden or rev.texthidden), int(slot.missing)))
        user = None if rev.userhidden else rev.user
        actor = None if user is None else self.actor(user, rev.userid)
        conn.execute(_UPSERT_REVISION, (
            rev.revid, *revision_data_row(rev, actor, sha1),
            kind if folded else None, text_id if folded else None))
        self.stored.add(rev.revid)
        return 0 if known else 1

    def text(self, rev: RevisionRecord, slot: SlotRecord) -> tuple[int | None, str | None]:
        """A slot's text stored (or found stored): its id and sha1; None, None if it has none."""
        if not _keeps_text(rev, slot):
            return None, None
        data = slot.text_bytes()
        assert data is not None
        return self.texts.add_bytes(data, rev.pageid, slot.role)

    def kind(self, slot: SlotRecord) -> int:
        """The id of the slot's content model and format, added if new."""
        kind = self.kinds.get((slot.content_model, slot.content_format))
        if kind is None:
            kind = content_kind_id(self.conn, slot.content_model, slot.content_format)
            self.kinds[slot.content_model, slot.content_format] = kind
        return kind

    def actor(self, name: str, userid: int | None) -> int:
        """The author's id, added if new."""
        found = self.actors.get((name, userid))
        if found is None:
            found = self.actors[name, userid] = actor_id(self.conn, name, userid)
        return found


def _known_actors(conn: sqlite3.Connection, names: list[str]) -> dict[tuple[str, int | None], int]:
    """The ``actors`` ids of these names, as actor_id() finds them."""
    actors: dict[tuple[str, int | None], int] = {}
    for i in range(0, len(names), 500):  # host parameters per statement
        chunk = names[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        for actor, name, userid in conn.execute(
            f"SELECT id, name, userid FROM actors WHERE name IN ({marks}) ORDER BY id", chunk
        ):
            actors.setdefault((name, userid), actor)  # the first, like actor_id()
    return actors


def _stored_revids(conn: sqlite3.Connection, revids: list[int]) -> set[int]:
    """Which of these revisions the mirror holds."""
    out: set[int] = set()
    for i in range(0, len(revids), 500):  # host parameters per statement
        chunk = revids[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        out.update(row[0] for row in conn.execute(
            f"SELECT revid FROM revision_data WHERE revid IN ({marks})", chunk))  # fmt: skip
    return out


def _vacuum(db: sqlite_utils.Database) -> None:
    """Rebuild an upgraded mirror's file: the old tables' pages become free space.

    Also switches it to incremental auto-vacuum. Skipped when another
    connection holds the file (it is only smaller later, never wrong).
    """
    _set_file_format(db)
    with suppress(sqlite3.OperationalError):
        db.execute("VACUUM")


def _set_file_format(db: sqlite_utils.Database) -> None:
    """Settings that take effect in an empty file or at the next VACUUM."""
    # Freed pages go back to the file system (Mirror.give_back_space) instead of
    # staying in the file as free pages.
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")


def _state_json(state: dict[str, Any] | None) -> str | None:
    return None if state is None else json.dumps(state, ensure_ascii=False, sort_keys=True)


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    name, state, done, items = row
    return Checkpoint(
        name=name,
        state=None if state is None else json.loads(state),
        done=bool(done),
        items=int(items),
    )


def _int_or_none(value: bool | None) -> int | None:
    return None if value is None else int(value)


def actor_id(conn: sqlite3.Connection, name: str, userid: int | None) -> int:
    """The id of an author (name and user id) in ``actors``, added if new."""
    row = conn.execute(
        "SELECT id FROM actors WHERE name = ? AND userid IS ?", (name, userid)
    ).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO actors (name, userid) VALUES (?, ?)", (name, userid))
    return int(cursor.lastrowid or 0)


def content_kind_id(conn: sqlite3.Connection, model: str | None, fmt: str | None) -> int:
    """The id of a (content model, format) pair in ``content_kinds``, added if new."""
    row = conn.execute(
        "SELECT id FROM content_kinds WHERE content_model IS ? AND content_format IS ?",
        (model, fmt),
    ).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute(
        "INSERT INTO content_kinds (content_model, content_format) VALUES (?, ?)", (model, fmt)
    )
    return int(cursor.lastrowid or 0)


def _keeps_text(rev: RevisionRecord, slot: SlotRecord) -> bool:
    hidden = slot.texthidden or rev.texthidden
    return slot.has_text and not hidden and not slot.missing


def timestamp_column(iso: str) -> int:
    """A timestamp as revision_data keeps it: seconds since 1970 UTC (see schema.sql)."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def sha1_column(given: str | None, stored: str | None) -> str | None:
    """A sha1 as stored next to a text: '' when it is that text's own (see schema.py)."""
    if given is not None and stored is not None and given == stored:
        return ""
    return given


def revision_data_row(rev: RevisionRecord, actor: int | None, sha1: str | None) -> tuple[Any, ...]:
    """A revision's metadata as revision_data keeps it, in _REVISION_DATA's order: ``actor``
    its author's id, ``sha1`` as sha1_column() makes it; a hidden comment is NULL."""
    return (
        rev.pageid, rev.parentid, timestamp_column(rev.timestamp), actor,
        None if rev.commenthidden else rev.comment, int(rev.minor), rev.size, sha1,
        _tags_column(rev.tags), int(rev.texthidden), int(rev.userhidden),
        int(rev.commenthidden), int(rev.sha1hidden), int(rev.suppressed),
    )  # fmt: skip


def _tags_column(tags: list[str]) -> str | None:
    return json.dumps(tags, ensure_ascii=False) if tags else None
