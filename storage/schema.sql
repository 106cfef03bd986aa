-- The mirror's schema as it is now: a new mirror is created from this file in
-- one step. Mirrors written by an earlier harvester are upgraded by the
-- migrations in storage/migrations.py, which end in the same schema
-- (tests/test_storage_schema.py holds the two together). docs/schema.md
-- explains every table and view.
--
-- Names are meant to be read by people (e.g. in Datasette); booleans are
-- INTEGER 0/1, JSON is TEXT, timestamps ISO 8601 TEXT (but revision_data's,
-- below, which the views show as ISO 8601).

-- -- the wiki ---------------------------------------------------------------------------

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE siteinfo (section TEXT PRIMARY KEY, data TEXT);
CREATE TABLE namespaces (
    id INTEGER PRIMARY KEY,
    name TEXT,
    canonical TEXT,
    case_mode TEXT,
    content INTEGER,
    subpages INTEGER
);
CREATE TABLE namespace_aliases (alias TEXT, id INTEGER);

-- No unique index on (ns, title): pages get renamed, and two pageids can
-- briefly share a title between two crawls.
CREATE TABLE pages (
    pageid INTEGER PRIMARY KEY,
    ns INTEGER NOT NULL,
    title TEXT NOT NULL,
    is_redirect INTEGER,
    length INTEGER,
    latest_revid INTEGER,
    content_model TEXT,
    touched TEXT
);
CREATE INDEX idx_pages_ns_title ON pages (ns, title);
-- A walk over a namespace in pageid order ("next page after N in ns").
CREATE INDEX idx_pages_ns_pageid ON pages (ns, pageid);

-- -- revisions, slots and texts ----------------------------------------------------------

-- Each (name, user id) an edit was attributed to.
CREATE TABLE actors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, userid INTEGER);
CREATE INDEX idx_actors_name ON actors (name, userid);
-- Every author seen (not hidden), with the user id the wiki gave (the highest, if
-- a name had several): a view of actors, which hold each name once or more.
CREATE VIEW users AS SELECT name, max(userid) AS userid FROM actors GROUP BY name;
CREATE TABLE content_kinds (id INTEGER PRIMARY KEY, content_model TEXT, content_format TEXT);

-- sha1 columns of revision_data and slot_data: '' means "the SHA-1 of the stored
-- text" (the main slot's text for a revision), NULL none (hidden or unknown),
-- anything else the wiki's value as given. timestamp: seconds since 1970 UTC,
-- 4 bytes where the ISO text took 20 (and as many again in the history index).
CREATE TABLE revision_data (
    revid INTEGER PRIMARY KEY,
    pageid INTEGER NOT NULL REFERENCES pages (pageid),
    parentid INTEGER,
    timestamp INTEGER NOT NULL,
    actor INTEGER REFERENCES actors (id),
    comment TEXT,
    minor INTEGER,
    size INTEGER,
    sha1 TEXT,
    tags TEXT,
    texthidden INTEGER,
    userhidden INTEGER,
    commenthidden INTEGER,
    sha1hidden INTEGER,
    suppressed INTEGER,
    -- The main slot folded into the row, when it is the revision's only slot and its
    -- size, sha1 and hidden flag are the revision's (most revisions): its content kind
    -- and its text (NULL when hidden or not fetched). kind NULL: the revision's slots,
    -- if any, are rows of slot_data; a folded revision has none there.
    kind INTEGER REFERENCES content_kinds (id),
    text_id INTEGER REFERENCES text_data (id)
);
-- A page's history in order: (pageid, timestamp), then revid, the rowid every
-- index entry ends with. It also serves the revision counts per page.
CREATE INDEX idx_revision_data_history ON revision_data (pageid, timestamp);
-- No index on actor: the commands that count by author (stats, user_edits)
-- read every revision anyway, and a user rename, which scans, is rare.

CREATE TABLE slot_data (
    revid INTEGER NOT NULL REFERENCES revision_data (revid),
    role TEXT NOT NULL,
    kind INTEGER REFERENCES content_kinds (id),
    size INTEGER,
    sha1 TEXT,
    text_id INTEGER REFERENCES text_data (id),
    texthidden INTEGER,
    missing INTEGER,
    PRIMARY KEY (revid, role)
) WITHOUT ROWID;

-- The texts of one page and slot, as line deltas in one zstd frame (storage/packs.py).
CREATE TABLE text_packs (
    id INTEGER PRIMARY KEY,
    pageid INTEGER,
    role TEXT NOT NULL,
    records INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX idx_text_packs_page ON text_packs (pageid, role);
-- Each distinct text once, by the SHA-1 of its UTF-8 bytes (20 bytes).
CREATE TABLE text_data (
    id INTEGER PRIMARY KEY,
    sha1 BLOB NOT NULL,
    size INTEGER NOT NULL,
    pack INTEGER REFERENCES text_packs (id),
    position INTEGER,
    -- How many slots (folded into revision_data or rows of slot_data) name this text,
    -- kept by the triggers below: 0 means no revision needs it (garbage).
    refs INTEGER NOT NULL DEFAULT 0
);
-- The dedup lookup: 8 bytes of each SHA-1 are as selective as 20, and smaller.
CREATE INDEX idx_text_data_sha1 ON text_data (substr(sha1, 1, 8));
-- The texts of a pack, to write it again without a purged one.
CREATE INDEX idx_text_data_pack ON text_data (pack, position);

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

-- -- files -----------------------------------------------------------------------------------

-- Every version of every file of the wiki, as its imageinfo gives it. The bytes are
-- beside this file, in DIR/files/, each once under its SHA-1 (storage/files.py).
-- state: wanted (to be fetched), stored (its bytes are in DIR/files), hidden (revision
-- deleted on the wiki: never fetched), skipped (larger than --files-max-size), missing
-- (the wiki answered 404), refused (its URL is on a host the wiki does not name for
-- files), mismatch (it came twice with another SHA-1 than the wiki's), deleted (deleted
-- on the wiki since: its bytes are gone from the mirror).
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

-- -- the crawl and the sync --------------------------------------------------------------

CREATE TABLE checkpoints (
    name TEXT PRIMARY KEY,
    state TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    items INTEGER NOT NULL DEFAULT 0,
    updated TEXT
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT,
    args TEXT,
    started TEXT,
    finished TEXT,
    status TEXT,
    stats TEXT
);
-- Pages deleted on the wiki: the page row moves here, with the log entry.
CREATE TABLE tombstones (
    pageid INTEGER PRIMARY KEY,
    ns INTEGER,
    title TEXT,
    deleted_at TEXT,
    log TEXT
);
-- recentchanges entries already applied by sync (the walk overlaps itself).
CREATE TABLE sync_rcids (rcid INTEGER PRIMARY KEY, timestamp TEXT);
CREATE INDEX idx_sync_rcids_timestamp ON sync_rcids (timestamp);

-- -- full-text search (storage/search.py keeps it current, lazily) --------------------------

-- rowid = pageid; search_indexed says which revision and title each entry was made from.
CREATE VIRTUAL TABLE search_index USING fts5(title, text, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE search_indexed (pageid INTEGER PRIMARY KEY, revid INTEGER, title TEXT, text_sha1 TEXT);
CREATE INDEX idx_search_indexed_text_sha1 ON search_indexed (text_sha1);
-- A text removed from the store (hidden or deleted on the wiki) must not live
-- on in the index's copy until the next search.
CREATE TRIGGER search_forget_text AFTER DELETE ON text_data BEGIN
    DELETE FROM search_index WHERE rowid IN
        (SELECT pageid FROM search_indexed WHERE text_sha1 = lower(hex(OLD.sha1)));
    DELETE FROM search_indexed WHERE text_sha1 = lower(hex(OLD.sha1));
END;

-- -- views for readers ---------------------------------------------------------------------
--
-- Scalar subqueries, not joins: a view over one table is flattened into any
-- query (also as the right side of a LEFT JOIN), so its indexes keep serving.

CREATE VIEW revisions AS SELECT
    r.revid, r.pageid, r.parentid, strftime('%Y-%m-%dT%H:%M:%SZ', r.timestamp, 'unixepoch') AS timestamp,
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

-- A page's latest revision is its newest by (timestamp, revid), as in export
-- --current-only: imported revisions can carry a higher revid than newer edits.
CREATE VIEW latest_revisions AS
SELECT p.pageid, p.ns, n.name AS namespace, p.title,
       r.revid, r.timestamp, r.user
FROM pages p
JOIN revisions r ON r.revid = (SELECT r2.revid FROM revision_data r2 WHERE r2.pageid = p.pageid
                               ORDER BY r2.timestamp DESC, r2.revid DESC LIMIT 1)
LEFT JOIN namespaces n ON n.id = p.ns;

CREATE VIEW page_history AS
SELECT r.revid, r.pageid, p.ns, n.name AS namespace, p.title, r.parentid,
       r.timestamp, r.user, r.comment, r.minor, r.size, r.tags,
       r.texthidden, r.userhidden, r.commenthidden
FROM revisions r
JOIN pages p ON p.pageid = r.pageid
LEFT JOIN namespaces n ON n.id = p.ns;

-- Correlated subqueries rather than GROUP BY: a LIMIT (Datasette shows 100
-- rows) then costs 100 index probes, not a pass over every revision.
CREATE VIEW page_summary AS
SELECT p.pageid, p.ns, n.name AS namespace, p.title, p.is_redirect, p.length,
       (SELECT count(*) FROM revision_data r WHERE r.pageid = p.pageid) AS revisions,
       (SELECT strftime('%Y-%m-%dT%H:%M:%SZ', min(timestamp), 'unixepoch') FROM revision_data r
        WHERE r.pageid = p.pageid) AS first_edit,
       (SELECT strftime('%Y-%m-%dT%H:%M:%SZ', max(timestamp), 'unixepoch') FROM revision_data r
        WHERE r.pageid = p.pageid) AS last_edit
FROM pages p
LEFT JOIN namespaces n ON n.id = p.ns;

-- Edit counts are derived, not stored, so re-writing a batch can never skew them.
CREATE VIEW user_edits AS
SELECT r.user AS name, u.userid, count(*) AS edits,
       min(r.revid) AS first_revid, min(r.timestamp) AS first_edit
FROM revisions r LEFT JOIN users u ON u.name = r.user
WHERE r.user IS NOT NULL
GROUP BY r.user;

-- Each file with its current version (its newest not deleted: a hidden version has no
-- archivename either), how many versions it has and their bytes in all (deleted ones
-- left out). A file deleted on the wiki shows its last version, state deleted.
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
