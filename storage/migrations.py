"""Upgrades of mirrors written by earlier harvesters, in order.

A new mirror is created from storage/schema.sql in one step; these steps only
bring an older file up to it. Each runs once, inside its own transaction, and
is recorded in ``_migrations``. Never edit a step that has shipped: append a
new one, and change storage/schema.sql to match (tests/test_storage_schema.py
holds the two together).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]

# The migration after which the file has space to give back (see Mirror.open).
COMPACT_STORE = "compact store: integer text ids, binary sha1s, readable views"


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


# -- the compact store ---------------------------------------------------------------
#
# Per revision the first schema stored the same SHA-1 up to six times as 40-char
# hex (revisions.sha1, slots.sha1, slots.text_sha1, texts.sha1 and their
# indexes), each author name and content model in full, and three indexes on
# revisions; the texts themselves were a sixth of the file (fixture wiki: 374 KB
# of 2.51 MB). Now the rows live in compact tables (integer keys, one binary
# SHA-1 per text, lookup tables for authors and content models) and the
# readable tables of before are views of the same names and columns.

_COMPACT_TABLES = """
CREATE TABLE actors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, userid INTEGER);
CREATE INDEX idx_actors_name ON actors (name, userid);
CREATE TABLE content_kinds (id INTEGER PRIMARY KEY, content_model TEXT, content_format TEXT);
CREATE TABLE text_data (
    id INTEGER PRIMARY KEY,
    sha1 BLOB NOT NULL,
    base INTEGER,
    depth INTEGER NOT NULL,
    size INTEGER NOT NULL,
    children INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL
);
CREATE TABLE revision_data (
    revid INTEGER PRIMARY KEY,
    pageid INTEGER NOT NULL,
    parentid INTEGER,
    timestamp TEXT NOT NULL,
    actor INTEGER,
    comment TEXT,
    minor INTEGER,
    size INTEGER,
    sha1 TEXT,
    tags TEXT,
    texthidden INTEGER,
    userhidden INTEGER,
    commenthidden INTEGER,
    sha1hidden INTEGER,
    suppressed INTEGER
);
CREATE TABLE slot_data (
    revid INTEGER NOT NULL,
    role TEXT NOT NULL,
    kind INTEGER,
    size INTEGER,
    sha1 TEXT,
    text_id INTEGER,
    texthidden INTEGER,
    missing INTEGER,
    PRIMARY KEY (revid, role)
) WITHOUT ROWID;
"""

# After the rows are in: sorted index builds pack their pages full.
_COMPACT_INDEXES = """
-- The dedup lookup: 8 bytes of each SHA-1 are as selective as 20, and smaller.
CREATE INDEX idx_text_data_sha1 ON text_data (substr(sha1, 1, 8));
-- Garbage collection: which texts are deltas against this one, does any slot
-- still use this text.
CREATE INDEX idx_text_data_base ON text_data (base) WHERE base IS NOT NULL;
CREATE INDEX idx_slot_data_text ON slot_data (text_id) WHERE text_id IS NOT NULL;
-- A page's history in order: (pageid, timestamp), then revid, the rowid every
-- index entry ends with. It also serves "the previous revision of this page"
-- for the delta store and the revision counts per page.
CREATE INDEX idx_revision_data_history ON revision_data (pageid, timestamp);
-- Edits by one author, distinct editors.
CREATE INDEX idx_revision_data_actor ON revision_data (actor) WHERE actor IS NOT NULL;
"""

# sha1 columns of revision_data and slot_data: '' means "the SHA-1 of the stored
# text" (the main slot's text for a revision), NULL none (hidden or unknown),
# anything else the wiki's value as given.
_MAIN_TEXT_SHA1 = """(SELECT lower(hex(t.sha1)) FROM slot_data s JOIN text_data t
    ON t.id = s.text_id WHERE s.revid = r.revid AND s.role = 'main')"""

# Scalar subqueries, not joins: a view over one table is flattened into any
# query (also as the right side of a LEFT JOIN), so its indexes keep serving.
_COMPACT_VIEWS = f"""
CREATE VIEW revisions AS SELECT
    r.revid, r.pageid, r.parentid, r.timestamp,
    (SELECT a.name FROM actors a WHERE a.id = r.actor) AS user,
    (SELECT a.userid FROM actors a WHERE a.id = r.actor) AS userid,
    r.comment, r.minor, r.size,
    CASE r.sha1 WHEN '' THEN {_MAIN_TEXT_SHA1} ELSE r.sha1 END AS sha1,
    coalesce(r.tags, '[]') AS tags,
    r.texthidden, r.userhidden, r.commenthidden, r.sha1hidden, r.suppressed
FROM revision_data r;
CREATE VIEW slots AS SELECT
    s.revid, s.role,
    (SELECT k.content_model FROM content_kinds k WHERE k.id = s.kind) AS content_model,
    (SELECT k.content_format FROM content_kinds k WHERE k.id = s.kind) AS content_format,
    s.size,
    CASE s.sha1 WHEN '' THEN (SELECT lower(hex(t.sha1)) FROM text_data t WHERE t.id = s.text_id)
        ELSE s.sha1 END AS sha1,
    (SELECT lower(hex(t.sha1)) FROM text_data t WHERE t.id = s.text_id) AS text_sha1,
    s.texthidden, s.missing, s.text_id
FROM slot_data s;
CREATE VIEW texts AS SELECT
    t.id, lower(hex(t.sha1)) AS sha1,
    (SELECT lower(hex(b.sha1)) FROM text_data b WHERE b.id = t.base) AS base,
    t.depth, t.size, t.children, t.data
FROM text_data t;
"""

# Hand edits through the readable views (UPDATE and DELETE; the harvester itself
# writes the tables) reach the rows they show.
_ACTOR_OF_NEW = """CASE WHEN NEW.user IS OLD.user AND NEW.userid IS OLD.userid THEN actor
    WHEN NEW.user IS NULL THEN NULL
    ELSE (SELECT id FROM actors WHERE name = NEW.user AND userid IS NEW.userid) END"""
_KIND_OF_NEW = """(SELECT id FROM content_kinds
    WHERE content_model IS NEW.content_model AND content_format IS NEW.content_format)"""
# A text removed from the store (hidden or deleted on the wiki) must not live
# on in the search index's copy until the next search.
_FORGET_TEXT = """CREATE TRIGGER search_forget_text AFTER DELETE ON text_data BEGIN
    DELETE FROM search_index WHERE rowid IN
        (SELECT pageid FROM search_indexed WHERE text_sha1 = lower(hex(OLD.sha1)));
    DELETE FROM search_indexed WHERE text_sha1 = lower(hex(OLD.sha1));
END;
"""
_COMPACT_TRIGGERS = f"""
CREATE TRIGGER revisions_update INSTEAD OF UPDATE ON revisions BEGIN
    INSERT INTO actors (name, userid) SELECT NEW.user, NEW.userid
        WHERE NEW.user IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM actors WHERE name = NEW.user AND userid IS NEW.userid);
    UPDATE revision_data SET revid = NEW.revid, pageid = NEW.pageid, parentid = NEW.parentid,
        timestamp = NEW.timestamp, actor = {_ACTOR_OF_NEW}, comment = NEW.comment,
        minor = NEW.minor, size = NEW.size,
        sha1 = CASE WHEN NEW.sha1 IS OLD.sha1 THEN sha1 ELSE NEW.sha1 END,
        tags = CASE WHEN NEW.tags IS OLD.tags THEN tags ELSE nullif(NEW.tags, '[]') END,
        texthidden = NEW.texthidden, userhidden = NEW.userhidden,
        commenthidden = NEW.commenthidden, sha1hidden = NEW.sha1hidden,
        suppressed = NEW.suppressed
    WHERE revid = OLD.revid;
END;
CREATE TRIGGER revisions_delete INSTEAD OF DELETE ON revisions BEGIN
    DELETE FROM revision_data WHERE revid = OLD.revid;
END;
CREATE TRIGGER slots_update INSTEAD OF UPDATE ON slots BEGIN
    INSERT INTO content_kinds (content_model, content_format)
        SELECT NEW.content_model, NEW.content_format WHERE NOT EXISTS {_KIND_OF_NEW};
    UPDATE slot_data SET revid = NEW.revid, role = NEW.role, kind = {_KIND_OF_NEW},
        size = NEW.size, texthidden = NEW.texthidden, missing = NEW.missing,
        sha1 = CASE WHEN NEW.sha1 IS OLD.sha1 THEN sha1 ELSE NEW.sha1 END,
        text_id = CASE WHEN NEW.text_sha1 IS OLD.text_sha1 THEN NEW.text_id
            WHEN NEW.text_sha1 IS NULL THEN NULL
            ELSE (SELECT id FROM text_data WHERE lower(hex(sha1)) = lower(NEW.text_sha1)) END
    WHERE revid = OLD.revid AND role = OLD.role;
END;
CREATE TRIGGER slots_delete INSTEAD OF DELETE ON slots BEGIN
    DELETE FROM slot_data WHERE revid = OLD.revid AND role = OLD.role;
END;
CREATE TRIGGER texts_update INSTEAD OF UPDATE ON texts BEGIN
    UPDATE text_data SET depth = NEW.depth, size = NEW.size, children = NEW.children,
        data = NEW.data,
        base = CASE WHEN NEW.base IS OLD.base THEN base WHEN NEW.base IS NULL THEN NULL
            ELSE (SELECT b.id FROM text_data b WHERE lower(hex(b.sha1)) = lower(NEW.base)) END
    WHERE id = OLD.id;
END;
CREATE TRIGGER texts_delete INSTEAD OF DELETE ON texts BEGIN
    DELETE FROM text_data WHERE id = OLD.id;
END;
{_FORGET_TEXT}"""

# The rows of the first schema, converted. Old frames are kept as they are (the
# reader tells them by their magic number): upgrading costs no recompression.
_COPY_OLD_ROWS = """
INSERT INTO actors (name, userid)
    SELECT user, userid FROM revisions WHERE user IS NOT NULL
    GROUP BY user, userid ORDER BY min(revid);
INSERT INTO content_kinds (content_model, content_format)
    SELECT DISTINCT content_model, content_format FROM slots;
INSERT INTO text_data (id, sha1, base, depth, size, children, data)
    SELECT t.rowid, _sha1_bytes(t.sha1), b.rowid, t.depth, t.size, t.children, t.data
    FROM texts t LEFT JOIN texts b ON b.sha1 = t.base ORDER BY t.rowid;
INSERT INTO revision_data
    SELECT r.revid, r.pageid, r.parentid, r.timestamp, a.id, r.comment, r.minor, r.size,
        CASE WHEN r.sha1 = (SELECT s.text_sha1 FROM slots s
                            WHERE s.revid = r.revid AND s.role = 'main') THEN '' ELSE r.sha1 END,
        nullif(r.tags, '[]'), r.texthidden, r.userhidden, r.commenthidden, r.sha1hidden,
        r.suppressed
    FROM revisions r LEFT JOIN actors a ON a.name = r.user AND a.userid IS r.userid
    ORDER BY r.revid;
INSERT INTO slot_data
    SELECT s.revid, s.role, k.id, s.size,
        CASE WHEN s.sha1 = s.text_sha1 THEN '' ELSE s.sha1 END, t.rowid, s.texthidden, s.missing
    FROM slots s
    LEFT JOIN content_kinds k
        ON k.content_model IS s.content_model AND k.content_format IS s.content_format
    LEFT JOIN texts t ON t.sha1 = s.text_sha1
    ORDER BY s.revid, s.role;
DROP TABLE slots;
DROP TABLE revisions;
DROP TABLE texts;
"""


def executescript(db: sqlite_utils.Database, script: str) -> None:
    # Statement by statement: sqlite3's executescript() would COMMIT the
    # migration's transaction. (No statement here holds a ';' inside a string.)
    for statement in statements(script):
        db.execute(statement)


def statements(script: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    assert not pending.strip(), pending
    return out


def _compact_store(db: sqlite_utils.Database) -> None:
    db.conn.create_function("_sha1_bytes", 1, _sha1_bytes, deterministic=True)
    executescript(db, _COMPACT_TABLES)
    executescript(db, _COPY_OLD_ROWS)
    executescript(db, _COMPACT_INDEXES)
    executescript(db, _COMPACT_VIEWS)
    executescript(db, _COMPACT_TRIGGERS)


def _sha1_bytes(hex_sha1: str) -> bytes:
    return bytes.fromhex(hex_sha1)


# -- packed texts ---------------------------------------------------------------------
#
# One zstd frame per text (a delta against another text) made the texts 3.5
# times 7z's archive of the same history: every frame paid its own entropy
# tables and header. Now the texts of a page are packed (storage/packs.py);
# text_data keeps one row per distinct text, ids unchanged, so slot_data
# needs no change.

PACKED_TEXTS = "packed texts: line deltas, one zstd frame per pack"

_PACK_TABLES = f"""
CREATE TABLE text_packs (
    id INTEGER PRIMARY KEY,
    pageid INTEGER,
    role TEXT NOT NULL,
    records INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX idx_text_packs_page ON text_packs (pageid, role);
CREATE TABLE text_data (
    id INTEGER PRIMARY KEY,
    sha1 BLOB NOT NULL,
    size INTEGER NOT NULL,
    pack INTEGER REFERENCES text_packs (id),
    position INTEGER
);
-- The dedup lookup: 8 bytes of each SHA-1 are as selective as 20, and smaller.
CREATE INDEX idx_text_data_sha1 ON text_data (substr(sha1, 1, 8));
-- The texts of a pack, to write it again without a purged one.
CREATE INDEX idx_text_data_pack ON text_data (pack, position);
CREATE VIEW texts AS SELECT
    t.id, lower(hex(t.sha1)) AS sha1, t.size, t.pack, t.position
FROM text_data t;
{_FORGET_TEXT}"""

# Each page+slot's texts in the order of its history; a text used by several
# pages goes with the first.
_TEXTS_IN_HISTORY_ORDER = """
SELECT r.pageid, s.role, s.text_id FROM slot_data s JOIN revision_data r ON r.revid = s.revid
WHERE s.text_id IS NOT NULL ORDER BY r.pageid, s.role, r.timestamp, r.revid
"""


def _pack_texts(db: sqlite_utils.Database) -> None:
    from .legacy_texts import LegacyTexts
    from .textstore import PACK_TEXTS, TextStore

    for statement in ("DROP VIEW texts", "DROP TRIGGER search_forget_text",
                      "DROP INDEX idx_text_data_sha1", "DROP INDEX idx_text_data_base"):
        db.execute(statement)  # the view's INSTEAD OF triggers go with it
    # legacy: the views that name text_data must keep naming it, not follow the rename
    db.execute("PRAGMA legacy_alter_table=ON")
    try:
        db.execute("ALTER TABLE text_data RENAME TO legacy_text_data")
    finally:
        db.execute("PRAGMA legacy_alter_table=OFF")
    executescript(db, _PACK_TABLES)
    legacy, store = LegacyTexts(db.conn, "legacy_text_data"), TextStore(db.conn)
    seen: set[int] = set()
    for pageid, role, text_id in db.conn.execute(_TEXTS_IN_HISTORY_ORDER):
        if text_id not in seen:
            seen.add(text_id)
            store.add_bytes(legacy.read(text_id), pageid, role, text_id)
            if len(seen) % PACK_TEXTS == 0:
                store.flush()
    store.flush()
    db.execute("DROP TABLE legacy_text_data")  # texts no slot used go with it


# -- the current declarations ----------------------------------------------------------
#
# The readable views took hand edits through INSTEAD OF triggers, kept for
# writers of the first schema; nothing writes through them now. The tables
# that reference others now say so (Datasette links them): the same tables,
# with REFERENCES clauses in their declaration, which change nothing on disk.

CURRENT_DECLARATIONS = "current declarations: no write triggers on views, foreign keys declared"

_WRITE_TRIGGERS = ("revisions_update", "revisions_delete", "slots_update", "slots_delete")


# The references the two tables declare from this step on.
_REFERENCES = {
    "revision_data": [("actor INTEGER,", "actor INTEGER REFERENCES actors (id),")],
    "slot_data": [
        ("revid INTEGER NOT NULL,", "revid INTEGER NOT NULL REFERENCES revision_data (revid),"),
        ("kind INTEGER,", "kind INTEGER REFERENCES content_kinds (id),"),
        ("text_id INTEGER,", "text_id INTEGER REFERENCES text_data (id),"),
    ],
}


def _with_references(table: str, sql: str) -> str:
    for old, new in _REFERENCES[table]:
        assert sql.count(old) == 1, (table, old)
        sql = sql.replace(old, new)
    return sql


def _current_declarations(db: sqlite_utils.Database) -> None:
    for trigger in _WRITE_TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for table in _REFERENCES:
        _redeclare(db, table, functools.partial(_with_references, table))


def _redeclare(db: sqlite_utils.Database, table: str, change: Callable[[str], str]) -> None:
    """Give a table a new CREATE TABLE statement that stores its rows the same way.

    SQLite's documented way to change constraints and declarations that leave the
    file's format as it is (https://sqlite.org/lang_altertable.html#otheralter):
    edit the schema's text, then bump the schema version.
    """
    (old,) = db.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
                        [table]).fetchone()
    version = int(db.execute("PRAGMA schema_version").fetchone()[0])
    db.execute("PRAGMA writable_schema = ON")
    try:
        db.execute("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?",
                   [change(old), table])
        db.execute(f"PRAGMA schema_version = {version + 1}")
    finally:
        db.execute("PRAGMA writable_schema = OFF")


# -- integer timestamps ------------------------------------------------------------------
#
# A revision's timestamp as seconds since 1970 (4 bytes) instead of ISO text
# (20), in its row and again in the history index; the views show ISO 8601.

INTEGER_TIMESTAMPS = "integer timestamps in revision_data"

_ISO = "'%Y-%m-%dT%H:%M:%SZ'"
_VIEWS_ON_SECONDS = f"""
CREATE VIEW revisions AS SELECT
    r.revid, r.pageid, r.parentid, strftime({_ISO}, r.timestamp, 'unixepoch') AS timestamp,
    (SELECT a.name FROM actors a WHERE a.id = r.actor) AS user,
    (SELECT a.userid FROM actors a WHERE a.id = r.actor) AS userid,
    r.comment, r.minor, r.size,
    CASE r.sha1 WHEN '' THEN (SELECT lower(hex(t.sha1)) FROM slot_data s JOIN text_data t
    ON t.id = s.text_id WHERE s.revid = r.revid AND s.role = 'main') ELSE r.sha1 END AS sha1,
    coalesce(r.tags, '[]') AS tags,
    r.texthidden, r.userhidden, r.commenthidden, r.sha1hidden, r.suppressed
FROM revision_data r;
CREATE VIEW latest_revisions AS
SELECT p.pageid, p.ns, n.name AS namespace, p.title,
       r.revid, r.timestamp, r.user
FROM pages p
JOIN revisions r ON r.revid = (SELECT r2.revid FROM revision_data r2 WHERE r2.pageid = p.pageid
                               ORDER BY r2.timestamp DESC, r2.revid DESC LIMIT 1)
LEFT JOIN namespaces n ON n.id = p.ns;
CREATE VIEW page_summary AS
SELECT p.pageid, p.ns, n.name AS namespace, p.title, p.is_redirect, p.length,
       (SELECT count(*) FROM revision_data r WHERE r.pageid = p.pageid) AS revisions,
       (SELECT strftime({_ISO}, min(timestamp), 'unixepoch') FROM revision_data r
        WHERE r.pageid = p.pageid) AS first_edit,
       (SELECT strftime({_ISO}, max(timestamp), 'unixepoch') FROM revision_data r
        WHERE r.pageid = p.pageid) AS last_edit
FROM pages p
LEFT JOIN namespaces n ON n.id = p.ns;
"""


def _integer_timestamps(db: sqlite_utils.Database) -> None:
    for view in ("revisions", "latest_revisions", "page_summary"):
        db.execute(f"DROP VIEW {view}")
    # The declared type decides how a value is stored (TEXT would turn the
    # numbers back into text); changing it leaves the rows as they are, and
    # every row is rewritten below.
    _redeclare(db, "revision_data", lambda sql: sql.replace(
        "timestamp TEXT NOT NULL", "timestamp INTEGER NOT NULL"))
    # strftime('%s') accepts exactly the API's form; anything else is NULL,
    # which NOT NULL refuses: the upgrade then fails whole, the file unchanged.
    db.execute("UPDATE revision_data SET timestamp = CAST(strftime('%s', timestamp) AS INTEGER)")
    executescript(db, _VIEWS_ON_SECONDS)


# -- no index on actor ------------------------------------------------------------------

NO_ACTOR_INDEX = "no index on revision_data.actor: no command needs it"


def _drop_actor_index(db: sqlite_utils.Database) -> None:
    db.execute("DROP INDEX IF EXISTS idx_revision_data_actor")


# -- revisions name their page --------------------------------------------------------
#
# A declared reference, so that Datasette (and any tool that reads foreign keys)
# links a revision to its page; the rows stay as they are.

PAGE_REFERENCE = "revision_data.pageid references pages"


def _reference_pages(db: sqlite_utils.Database) -> None:
    def declare(sql: str) -> str:
        old = "pageid INTEGER NOT NULL,"
        assert sql.count(old) == 1, sql
        return sql.replace(old, "pageid INTEGER NOT NULL REFERENCES pages (pageid),")

    _redeclare(db, "revision_data", declare)


# -- files ------------------------------------------------------------------------------
#
# Every version of every file (``crawl --files``): the catalogue here, the bytes in
# DIR/files/ (storage/files.py).

FILE_TABLES = "files: file_versions, file_blobs and the files view"

_FILES = """
CREATE TABLE file_versions (
    name TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    archivename TEXT,
    user TEXT,
    userid INTEGER,
    comment TEXT,
    size INTEGER,
    width INTEGER,
    height INTEGER,
    mime TEXT,
    mediatype TEXT,
    sha1 TEXT,
    url TEXT,
    filehidden INTEGER,
    userhidden INTEGER,
    commenthidden INTEGER,
    suppressed INTEGER,
    extmetadata TEXT,
    state TEXT NOT NULL,
    PRIMARY KEY (name, timestamp)
) WITHOUT ROWID;
-- What is left to fetch, and which versions a downloaded SHA-1 completes.
CREATE INDEX idx_file_versions_sha1 ON file_versions (sha1);
CREATE INDEX idx_file_versions_state ON file_versions (state) WHERE state != 'stored';
-- The bytes the mirror holds: DIR/files/<first two hex digits>/<sha1>.
CREATE TABLE file_blobs (
    sha1 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    stored TEXT NOT NULL
) WITHOUT ROWID;
CREATE VIEW files AS
SELECT v.name, v.timestamp, v.user, v.comment, v.size, v.width, v.height, v.mime,
       v.mediatype, v.sha1, v.state,
       (SELECT count(*) FROM file_versions o WHERE o.name = v.name
        AND o.state != 'deleted') AS versions,
       (SELECT sum(o.size) FROM file_versions o WHERE o.name = v.name
        AND o.state != 'deleted') AS version_bytes
FROM file_versions v
WHERE v.timestamp = (SELECT o.timestamp FROM file_versions o WHERE o.name = v.name
                     ORDER BY o.state != 'deleted' DESC, o.timestamp DESC LIMIT 1);
"""


def _create_file_tables(db: sqlite_utils.Database) -> None:
    executescript(db, _FILES)


# -- folded slots ---------------------------------------------------------------------
#
# A revision whose only slot is its main one, of the revision's size, sha1 and hidden
# flag, keeps that slot's content kind and text in its own row: no slot_data row and
# no index entry for it. Texts count the slots that name them (text_data.refs, kept by
# triggers), which is how garbage is found without an index on every text reference.

FOLDED_SLOTS = "main slots folded into revision_data, texts counted by their references"

_FOLD = """
CREATE TEMP TABLE folding AS
SELECT s.revid, s.kind, s.text_id FROM slot_data s JOIN revision_data r ON r.revid = s.revid
WHERE s.role = 'main' AND s.kind IS NOT NULL AND NOT s.missing AND s.size IS r.size
    AND s.sha1 IS r.sha1 AND s.texthidden IS r.texthidden
    AND NOT EXISTS (SELECT 1 FROM slot_data o WHERE o.revid = s.revid AND o.role != 'main');
UPDATE revision_data SET kind = f.kind, text_id = f.text_id FROM folding f
WHERE f.revid = revision_data.revid;
DELETE FROM slot_data WHERE revid IN (SELECT revid FROM folding);
DROP TABLE folding;
DROP INDEX idx_slot_data_text;
CREATE TEMP TABLE counted AS
SELECT text_id, count(*) AS n FROM (
    SELECT text_id FROM revision_data WHERE text_id IS NOT NULL
    UNION ALL SELECT text_id FROM slot_data WHERE text_id IS NOT NULL)
GROUP BY text_id;
UPDATE text_data SET refs = c.n FROM counted c WHERE c.text_id = text_data.id;
DROP TABLE counted;
"""

_FOLDED_VIEWS = """
CREATE VIEW revisions AS SELECT
    r.revid, r.pageid, r.parentid,
    strftime('%Y-%m-%dT%H:%M:%SZ', r.timestamp, 'unixepoch') AS timestamp,
    (SELECT a.name FROM actors a WHERE a.id = r.actor) AS user,
    (SELECT a.userid FROM actors a WHERE a.id = r.actor) AS userid,
    r.comment, r.minor, r.size,
    CASE r.sha1 WHEN '' THEN (SELECT lower(hex(t.sha1)) FROM text_data t WHERE t.id =
        coalesce(r.text_id, (SELECT s.text_id FROM slot_data s WHERE s.revid = r.revid
                             AND s.role = 'main'))) ELSE r.sha1 END AS sha1,
    coalesce(r.tags, '[]') AS tags,
    r.texthidden, r.userhidden, r.commenthidden, r.sha1hidden, r.suppressed
FROM revision_data r;

-- A folded revision's main slot comes from its revision_data row, any other slot
-- from slot_data.

CREATE VIEW slots AS SELECT
    r.revid, CASE WHEN r.kind IS NULL THEN s.role ELSE 'main' END AS role,
    (SELECT k.content_model FROM content_kinds k WHERE k.id = coalesce(r.kind, s.kind))
        AS content_model,
    (SELECT k.content_format FROM content_kinds k WHERE k.id = coalesce(r.kind, s.kind))
        AS content_format,
    CASE WHEN r.kind IS NULL THEN s.size ELSE r.size END AS size,
    CASE CASE WHEN r.kind IS NULL THEN s.sha1 ELSE r.sha1 END
        WHEN '' THEN (SELECT lower(hex(t.sha1)) FROM text_data t
                      WHERE t.id = coalesce(r.text_id, s.text_id))
        ELSE CASE WHEN r.kind IS NULL THEN s.sha1 ELSE r.sha1 END END AS sha1,
    (SELECT lower(hex(t.sha1)) FROM text_data t WHERE t.id = coalesce(r.text_id, s.text_id))
        AS text_sha1,
    CASE WHEN r.kind IS NULL THEN s.texthidden ELSE r.texthidden END AS texthidden,
    coalesce(s.missing, 0) AS missing,
    coalesce(r.text_id, s.text_id) AS text_id
FROM revision_data r LEFT JOIN slot_data s ON s.revid = r.revid
WHERE r.kind IS NOT NULL OR s.revid IS NOT NULL;

CREATE VIEW texts AS SELECT
    t.id, lower(hex(t.sha1)) AS sha1, t.size, t.pack, t.position, t.refs
FROM text_data t;
"""

_COUNT_TEXT_REFERENCES = """
CREATE TRIGGER count_text_of_new_revision AFTER INSERT ON revision_data
WHEN NEW.text_id IS NOT NULL BEGIN
    UPDATE text_data SET refs = refs + 1 WHERE id = NEW.text_id;
END;
CREATE TRIGGER count_text_of_removed_revision AFTER DELETE ON revision_data
WHEN OLD.text_id IS NOT NULL BEGIN
    UPDATE text_data SET refs = refs - 1 WHERE id = OLD.text_id;
END;
CREATE TRIGGER count_text_of_changed_revision AFTER UPDATE OF text_id ON revision_data
WHEN OLD.text_id IS NOT NEW.text_id BEGIN
    UPDATE text_data SET refs = refs - 1 WHERE id = OLD.text_id;
    UPDATE text_data SET refs = refs + 1 WHERE id = NEW.text_id;
END;
CREATE TRIGGER count_text_of_new_slot AFTER INSERT ON slot_data
WHEN NEW.text_id IS NOT NULL BEGIN
    UPDATE text_data SET refs = refs + 1 WHERE id = NEW.text_id;
END;
CREATE TRIGGER count_text_of_removed_slot AFTER DELETE ON slot_data
WHEN OLD.text_id IS NOT NULL BEGIN
    UPDATE text_data SET refs = refs - 1 WHERE id = OLD.text_id;
END;
CREATE TRIGGER count_text_of_changed_slot AFTER UPDATE OF text_id ON slot_data
WHEN OLD.text_id IS NOT NEW.text_id BEGIN
    UPDATE text_data SET refs = refs - 1 WHERE id = OLD.text_id;
    UPDATE text_data SET refs = refs + 1 WHERE id = NEW.text_id;
END;
"""


def _fold_slots(db: sqlite_utils.Database) -> None:
    for view in ("revisions", "slots", "texts"):
        db.execute(f"DROP VIEW {view}")
    db.execute("ALTER TABLE revision_data ADD COLUMN kind INTEGER REFERENCES content_kinds (id)")
    db.execute("ALTER TABLE revision_data ADD COLUMN text_id INTEGER REFERENCES text_data (id)")
    db.execute("ALTER TABLE text_data ADD COLUMN refs INTEGER NOT NULL DEFAULT 0")
    executescript(db, _FOLD)
    executescript(db, _FOLDED_VIEWS)
    # Last: the counts above are made in one pass, not by the triggers.
    executescript(db, _COUNT_TEXT_REFERENCES)


# -- users as a view -------------------------------------------------------------------
#
# The users table repeated every author's name of actors, with its own index.

USERS_VIEW = "users: a view of actors"


def _users_view(db: sqlite_utils.Database) -> None:
    db.execute("DROP TABLE users")
    db.execute("CREATE VIEW users AS SELECT name, max(userid) AS userid FROM actors"
               " GROUP BY name")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("catalogue", _create_catalogue),
    ("revisions", _create_revisions),
    ("views", _create_views),
    ("pages by namespace and pageid", _index_pages_by_namespace),
    ("reading: views, user index, search index", _create_reading),
    ("sync: tombstones, applied rcids, text reference indexes", _create_sync),
    (COMPACT_STORE, _compact_store),
    (PACKED_TEXTS, _pack_texts),
    (CURRENT_DECLARATIONS, _current_declarations),
    (INTEGER_TIMESTAMPS, _integer_timestamps),
    (NO_ACTOR_INDEX, _drop_actor_index),
    (PAGE_REFERENCE, _reference_pages),
    (FILE_TABLES, _create_file_tables),
    (FOLDED_SLOTS, _fold_slots),
    (USERS_VIEW, _users_view),
]


