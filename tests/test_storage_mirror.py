"""Mirror: opening, schema, identity, siteinfo, runs, checkpoints and write_batch()."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import zstandard

from storage import packs
from storage.errors import MirrorMismatchError, StorageError
from storage.migrations import MIGRATIONS
from storage.mirror import DB_NAME, Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord
from storage.textstore import StoredText
from tests.helpers import make_mirror_at


def rev(revid: int, pageid: int = 1, text: str | None = "text", **kw: Any) -> RevisionRecord:
    fields: dict[str, Any] = {
        "parentid": revid - 1 or None,
        "timestamp": f"2024-01-01T00:00:{revid % 60:02d}Z",
        "user": "Alice",
        "userid": 5,
        "comment": f"edit {revid}",
        "minor": False,
        "size": None if text is None else len(text.encode()),
        "sha1": None,
        "slots": [SlotRecord(role="main", content_model="wikitext", text=text)],
    }
    fields.update(kw)
    return RevisionRecord(revid=revid, pageid=pageid, **fields)


def batch(*revisions: RevisionRecord) -> RevisionBatch:
    pageids = sorted({r.pageid for r in revisions})
    return RevisionBatch([PageRecord(p, 0, f"Page {p}") for p in pageids], list(revisions))


def count(mirror: Mirror, table: str) -> int:
    return int(mirror.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with Mirror.open(tmp_path / "m", create=True) as m:
        yield m


# -- opening ------------------------------------------------------------------


def test_open_without_create_needs_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no mirror at"):
        Mirror.open(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent").exists()


def test_not_sqlite_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(StorageError, match="not a usable mirror database"):
        Mirror.open(tmp_path, create=False)


def test_schema_is_recorded_and_reopening_keeps_data(tmp_path: Path) -> None:
    with Mirror.open(tmp_path, create=True) as m:
        m.set_meta("k", "v")
        pragma = m.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert pragma == "wal"
        rows = m.db.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall()
        assert [name for _, name in rows] == [name for name, _ in MIGRATIONS]
        tables = set(m.db.table_names())
        assert {"meta", "siteinfo", "namespaces", "namespace_aliases", "pages"} <= tables
        assert {"revision_data", "slot_data", "text_data", "checkpoints", "runs"} <= tables
        # The readable tables of the first schema are views of the compact ones.
        assert {"revisions", "slots", "texts"} <= set(m.db.view_names())
        assert {"latest_revisions", "user_edits"} <= set(m.db.view_names())
    with Mirror.open(tmp_path, create=False) as m:
        assert m.get_meta("k") == "v"
        assert m.get_meta("nope") is None


def test_older_mirror_is_migrated(tmp_path: Path) -> None:
    # A mirror made when the schema ended at migration 3 (the later ones are
    # appended over time, so the test does not name them).
    make_mirror_at(tmp_path, 3)
    db = sqlite_utils.Database(tmp_path / DB_NAME)
    assert db.execute("SELECT max(version) FROM _migrations").fetchone()[0] == 3
    assert "idx_pages_ns_pageid" not in {i.name for i in db.table("pages").indexes}
    db.close()
    with Mirror.open(tmp_path, create=False) as m:
        rows = m.db.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall()
        assert rows == [(i, name) for i, (name, _) in enumerate(MIGRATIONS, start=1)]
        assert "idx_pages_ns_pageid" in {i.name for i in m.db.table("pages").indexes}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with Mirror.open(tmp_path, create=True) as m:
        m.db.execute("INSERT INTO _migrations VALUES (999, 'future', '')")
    with pytest.raises(StorageError, match="newer harvester"):
        Mirror.open(tmp_path, create=False)


# -- identity, siteinfo, runs -----------------------------------------------------


def test_bind_wiki_refuses_another_wiki(mirror: Mirror) -> None:
    mirror.bind_wiki("enwiki@https://en.example.org", "https://en.example.org/w/api.php")
    mirror.bind_wiki("enwiki@https://en.example.org", "https://en.example.org/w/api.php")
    with pytest.raises(MirrorMismatchError) as err:
        mirror.bind_wiki("dewiki@https://de.example.org", "https://de.example.org/w/api.php")
    message = str(err.value)
    assert "enwiki@https://en.example.org" in message and "dewiki" in message
    assert "https://en.example.org/w/api.php" in message
    assert not mirror.db.conn.in_transaction


SITEINFO: dict[str, Any] = {
    "general": {"wikiid": "testwiki", "server": "http://localhost", "sitename": "Test"},
    "namespaces": {
        "0": {"id": 0, "name": "", "case": "first-letter", "content": True, "subpages": False},
        "1": {
            "id": 1,
            "name": "Talk",
            "canonical": "Talk",
            "case": "first-letter",
            "subpages": True,
            "content": False,
        },
        "4": {"id": 4, "name": "Testwiki", "canonical": "Project", "case": "first-letter"},
    },
    "namespacealiases": [{"id": 4, "alias": "TW"}],
    "rightsinfo": {"url": "https://creativecommons.org/", "text": "CC BY-SA"},
    "statistics": {"pages": 3, "edits": 10},
}


def test_save_siteinfo(mirror: Mirror) -> None:
    mirror.save_siteinfo(SITEINFO)
    assert mirror.get_siteinfo("general")["wikiid"] == "testwiki"
    assert mirror.get_siteinfo("rightsinfo")["text"] == "CC BY-SA"
    rows = mirror.db.execute("SELECT * FROM namespaces ORDER BY id").fetchall()
    assert rows == [
        (0, "", None, "first-letter", 1, 0),
        (1, "Talk", "Talk", "first-letter", 0, 1),
        (4, "Testwiki", "Project", "first-letter", 0, 0),
    ]
    assert mirror.db.execute("SELECT alias, id FROM namespace_aliases").fetchall() == [("TW", 4)]
    # Saving again replaces, never duplicates.
    mirror.save_siteinfo({**SITEINFO, "namespaces": {"0": SITEINFO["namespaces"]["0"]}})
    assert count(mirror, "namespaces") == 1
    assert count(mirror, "namespace_aliases") == 1


def test_runs(mirror: Mirror) -> None:
    run = mirror.start_run("crawl", {"workers": 4, "path": Path("/x")})
    mirror.finish_run(run, "ok", {"revisions": 10})
    row = mirror.db.execute("SELECT command, args, status, stats, finished FROM runs").fetchone()
    assert row[:4] == ("crawl", '{"workers": 4, "path": "/x"}', "ok", '{"revisions": 10}')
    assert row[4] is not None


# -- checkpoints ------------------------------------------------------------------


def test_checkpoints(mirror: Mirror) -> None:
    assert mirror.get_checkpoint("revs:0") is None
    mirror.create_checkpoints([("revs:0", {"start": 1}), ("revs:1", None), ("x_%", None)])
    mirror.write_batch(batch(rev(1)), "revs:1", {"cont": "abc"}, False)
    mirror.create_checkpoints([("revs:1", {"start": 99})])  # exists: keeps its progress
    cp = mirror.get_checkpoint("revs:1")
    assert cp is not None and cp.state == {"cont": "abc"} and cp.items == 1 and not cp.done
    names = [c.name for c in mirror.list_checkpoints("revs:")]
    assert names == ["revs:0", "revs:1"]
    assert [c.name for c in mirror.list_checkpoints("x_%")] == ["x_%"]
    assert mirror.list_checkpoints("x__") == []  # no LIKE wildcards


def test_write_pages(mirror: Mirror) -> None:
    pages = [PageRecord(1, 0, "A", is_redirect=False, length=10), PageRecord(2, 1, "Talk:A")]
    mirror.write_pages(pages, "allpages:0", {"apcontinue": "B"}, False)
    mirror.write_pages([PageRecord(3, 0, "C")], "allpages:0", None, True)
    cp = mirror.get_checkpoint("allpages:0")
    assert cp is not None and cp.items == 3 and cp.done and cp.state is None
    assert mirror.count_pages() == 3


# -- write_batch ------------------------------------------------------------------


def test_write_batch_is_idempotent(mirror: Mirror) -> None:
    b = batch(rev(1, text="one"), rev(2, text="two"), rev(3, pageid=2, text="three"))
    assert mirror.write_batch(b, "cp", {"n": 1}, False) == 3
    tables = ["pages", "revisions", "slots", "texts", "users"]
    before = {t: count(mirror, t) for t in tables}
    assert mirror.write_batch(b, "cp", {"n": 2}, True) == 0
    assert {t: count(mirror, t) for t in tables} == before
    cp = mirror.get_checkpoint("cp")
    assert cp is not None and cp.items == 3 and cp.done and cp.state == {"n": 2}
    # A batch that overlaps the stored ones counts only what is new.
    assert mirror.write_batch(batch(rev(3, pageid=2, text="three"), rev(4)), "cp", None, True) == 1
    assert mirror.get_checkpoint("cp").items == 4  # type: ignore[union-attr]
    assert mirror.count_revisions() == 4


def test_partial_page_keeps_known_fields(mirror: Mirror) -> None:
    full = PageRecord(1, 0, "Old title", is_redirect=False, length=42, latest_revid=9,
                      content_model="wikitext", touched="2024-01-01T00:00:00Z")  # fmt: skip
    mirror.write_pages([full], "allpages", None, False)
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "New title")], [rev(9)]), "r", None, False)
    row = mirror.db.execute("SELECT * FROM pages").fetchone()
    assert row == (1, 0, "New title", 0, 42, 9, "wikitext", "2024-01-01T00:00:00Z")
    mirror.write_pages([PageRecord(1, 0, "New title", is_redirect=True)], "allpages", None, False)
    assert mirror.db.execute("SELECT is_redirect, length FROM pages").fetchone() == (1, 42)


def test_revision_fields_round_trip(mirror: Mirror) -> None:
    r = rev(7, tags=["mw-undo", "visualeditor"], minor=True, sha1="a" * 40)
    mirror.write_batch(batch(r), "cp", None, False)
    row = mirror.db.execute(
        "SELECT revid, pageid, parentid, timestamp, user, userid, comment, minor, size, sha1, tags"
        " FROM revisions"
    ).fetchone()
    assert row == (7, 1, 6, "2024-01-01T00:00:07Z", "Alice", 5, "edit 7", 1, 4, "a" * 40,
                   '["mw-undo", "visualeditor"]')  # fmt: skip
    assert mirror.revision_text(7) == "text"
    assert mirror.revision_text(7, "mediainfo") is None
    assert mirror.revision_text(8) is None


def test_hidden_flags_and_hidden_text(mirror: Mirror) -> None:
    hidden = rev(
        1,
        text=None,
        user=None,
        userid=None,
        comment=None,
        sha1=None,
        texthidden=True,
        userhidden=True,
        commenthidden=True,
        sha1hidden=True,
        suppressed=True,
        slots=[SlotRecord(role="main", texthidden=True)],
    )
    # Even if a text came along with a hidden flag, the store keeps no copy of it.
    leaked = rev(2, texthidden=True, slots=[SlotRecord(role="main", text="secret")])
    mirror.write_batch(batch(hidden, leaked), "cp", None, False)
    flags = mirror.db.execute(
        "SELECT texthidden, userhidden, commenthidden, sha1hidden, suppressed FROM revisions"
        " WHERE revid = 1"
    ).fetchone()
    assert flags == (1, 1, 1, 1, 1)
    assert mirror.db.execute("SELECT text_sha1, texthidden FROM slots").fetchall() == [
        (None, 1),
        (None, 1),
    ]
    assert count(mirror, "texts") == 0
    assert mirror.revision_text(1) is None


def test_missing_slot(mirror: Mirror) -> None:
    r = rev(1, slots=[SlotRecord(role="main", missing=True)])
    mirror.write_batch(batch(r), "cp", None, False)
    assert mirror.db.execute("SELECT missing, text_sha1 FROM slots").fetchone() == (1, None)


def test_users_and_edit_counts(mirror: Mirror) -> None:
    revisions = [rev(1), rev(2), rev(3, user="Bob", userid=6), rev(4, user=None, userid=None)]
    revisions.append(rev(5, user=None, userid=None, userhidden=True))
    mirror.write_batch(batch(*revisions), "cp", None, False)
    mirror.write_batch(batch(*revisions), "cp", None, False)
    assert mirror.db.execute("SELECT * FROM users ORDER BY name").fetchall() == [
        ("Alice", 5),
        ("Bob", 6),
    ]
    edits = mirror.db.execute("SELECT name, edits, first_revid FROM user_edits ORDER BY name")
    assert edits.fetchall() == [("Alice", 2, 1), ("Bob", 1, 3)]


def test_latest_revisions_view(mirror: Mirror) -> None:
    mirror.save_siteinfo(SITEINFO)
    mirror.write_batch(batch(rev(1), rev(5), rev(3, pageid=2)), "cp", None, False)
    rows = mirror.db.execute(
        "SELECT pageid, namespace, revid FROM latest_revisions ORDER BY pageid"
    ).fetchall()
    assert rows == [(1, "", 5), (2, "", 3)]


def test_failed_batch_leaves_nothing(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror.write_batch(batch(rev(1)), "cp", {"n": 1}, False)
    original = mirror.texts.add_bytes
    calls = 0

    def failing_put(*args: Any) -> StoredText:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk on fire")
        return original(*args)

    monkeypatch.setattr(mirror.texts, "add_bytes", failing_put)
    with pytest.raises(RuntimeError):
        mirror.write_batch(batch(rev(2, text="a"), rev(3, text="b")), "cp", {"n": 2}, False)
    assert not mirror.db.conn.in_transaction
    assert mirror.count_revisions() == 1 and count(mirror, "texts") == 1
    cp = mirror.get_checkpoint("cp")
    assert cp is not None and cp.state == {"n": 1} and cp.items == 1
    monkeypatch.undo()
    assert mirror.write_batch(batch(rev(2, text="a"), rev(3, text="b")), "cp", None, False) == 2


def test_a_batch_failing_while_its_pack_is_written_leaves_nothing(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.write_batch(batch(rev(1, text="one")), "cp", {"n": 1}, False)
    [(before,)] = mirror.db.execute("SELECT data FROM text_packs").fetchall()

    def failing(*args: Any) -> bytes:
        raise OSError("disk on fire")

    monkeypatch.setattr(packs, "compress", failing)
    with pytest.raises(OSError):
        mirror.write_batch(batch(rev(2, text="two"), rev(3, text="three")), "cp", {"n": 2},
                           False)
    assert not mirror.db.conn.in_transaction
    assert mirror.db.execute("SELECT data FROM text_packs").fetchall() == [(before,)]
    assert count(mirror, "texts") == 1 and mirror.count_revisions() == 1
    monkeypatch.undo()
    # the texts the failed batch had pending are forgotten, not written by the next one
    mirror.write_batch(batch(rev(4, text="four")), "cp", None, False)
    assert mirror.db.execute("SELECT records FROM text_packs").fetchall() == [(2,)]
    assert mirror.write_batch(batch(rev(2, text="two"), rev(3, text="three")), "cp", None,
                              False) == 2
    mirror.texts.clear_caches()
    assert [mirror.revision_text(r) for r in (1, 2, 3, 4)] == ["one", "two", "three", "four"]


def test_opening_needs_no_write_lock(tmp_path: Path) -> None:
    with Mirror.open(tmp_path, create=True) as writer:
        writer.write_batch(batch(rev(1)), "cp", None, False)
        writer.db.execute("BEGIN IMMEDIATE")  # as if a batch were being written
        start = time.monotonic()
        with Mirror.open(tmp_path, create=False) as reader:
            assert reader.count_revisions() == 1
        assert time.monotonic() - start < 2
        writer.db.execute("ROLLBACK")


# -- upgrading a mirror of the first schema ----------------------------------------


def _old_frame(data: bytes, base: bytes | None) -> bytes:
    """A frame as the first schema's store wrote it: magic number, size and checksum."""
    params = zstandard.ZstdCompressionParameters.from_level(
        9, write_checksum=1, write_content_size=1
    )
    if base is None:
        return zstandard.ZstdCompressor(compression_params=params).compress(data)
    raw = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(dict_data=raw, compression_params=params).compress(data)


def test_a_mirror_of_the_first_schema_is_upgraded_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = "Version one. " * 200, "Version one. " * 199 + "Version two."
    sha = {t: hashlib.sha1(t.encode()).hexdigest() for t in (first, second)}
    revisions = [  # as the first schema's tables held them, hidden fields and all
        (1, 1, None, "2024-01-01T00:00:01Z", "Alice", 5, "new", 0, 2600, sha[first], "[]",
         0, 0, 0, 0, 0),
        (2, 1, 1, "2024-01-01T00:00:02Z", "192.0.2.1", 0, None, 1, 2599, "F" * 40,
         '["mw-undo"]', 0, 0, 1, 0, 0),
        (3, 1, 2, "2024-01-01T00:00:03Z", None, None, "gone", 0, 7, None, "[]", 1, 1, 0, 1, 1),
        (4, 2, None, "2024-01-02T00:00:00Z", "Alice", 5, "copy", 0, 2600, sha[first], "[]",
         0, 0, 0, 0, 0),
    ]  # fmt: skip
    slots = [
        (1, "main", "wikitext", "text/x-wiki", 2600, sha[first], sha[first], 0, 0),
        (2, "main", "wikitext", "text/x-wiki", 2599, sha[second], sha[second], 0, 0),
        (2, "extra", "json", None, 2, None, None, 0, 1),
        (3, "main", "wikitext", None, 7, None, None, 1, 0),
        (4, "main", "wikitext", "text/x-wiki", 2600, sha[first], sha[first], 0, 0),
    ]
    texts = [
        (sha[first], None, 0, 2600, 1, _old_frame(first.encode(), None)),
        (sha[second], sha[first], 1, 2599, 0, _old_frame(second.encode(), first.encode())),
    ]
    make_mirror_at(tmp_path, 6)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.executemany(f"INSERT INTO revisions VALUES ({', '.join('?' * 16)})", revisions)
        conn.executemany(f"INSERT INTO slots VALUES ({', '.join('?' * 9)})", slots)
        conn.executemany("INSERT INTO texts VALUES (?, ?, ?, ?, ?, ?)", texts)
        conn.executemany("INSERT INTO users VALUES (?, ?)", [("Alice", 5)])
        conn.executemany("INSERT INTO pages (pageid, ns, title) VALUES (?, 0, ?)",
                         [(1, "One"), (2, "Two")])
    conn.close()
    with Mirror.open(tmp_path, create=False) as m:
        assert m.db.execute("SELECT * FROM revisions ORDER BY revid").fetchall() == revisions
        columns = "revid, role, content_model, content_format, size, sha1, text_sha1, texthidden"
        assert m.db.execute(f"SELECT {columns}, missing FROM slots ORDER BY revid, role"
                            ).fetchall() == sorted(slots)  # fmt: skip
        # every text in its page's pack, in history order
        assert m.db.execute("SELECT sha1, size, pack, position FROM texts ORDER BY id"
                            ).fetchall() == [(sha[first], 2600, 1, 0), (sha[second], 2599, 1, 1)]
        assert m.db.execute("SELECT pageid, role, records FROM text_packs").fetchall() == [
            (1, "main", 2)]
        assert m.db.execute("SELECT name, edits FROM user_edits").fetchall() == [("192.0.2.1", 1),
                                                                                 ("Alice", 2)]
        assert [m.revision_text(r) for r in (1, 2, 3, 4)] == [first, second, None, first]
        # The old tables' pages were given back, and later frees will be too.
        assert m.db.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert m.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert m.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # New writes go on into the same pack.
        third = second + " And three."
        m.write_batch(batch(rev(5, text=third, timestamp="2024-01-01T00:00:05Z")), "cp", None,
                      False)  # fmt: skip
        assert m.db.execute("SELECT pack, position FROM texts WHERE sha1 = ?",
                            [hashlib.sha1(third.encode()).hexdigest()]).fetchone() == (1, 2)
        m.texts.clear_caches()
        assert m.revision_text(5) == third


def test_compact_tables_store_each_sha1_once(mirror: Mirror) -> None:
    """The wiki's sha1s equal to the stored text's are kept as '' and shown in full."""
    text = "some text"
    sha1 = hashlib.sha1(text.encode()).hexdigest()
    r = rev(1, text=text, sha1=sha1, tags=[])
    r.slots[0].sha1 = sha1
    mirror.write_batch(batch(r, rev(2, text=text, sha1="0" * 40)), "cp", None, False)
    assert mirror.db.execute("SELECT revid, sha1, tags FROM revision_data").fetchall() == [
        (1, "", None), (2, "0" * 40, None)]
    assert mirror.db.execute("SELECT sha1 FROM revisions ORDER BY revid").fetchall() == [
        (sha1,), ("0" * 40,)]
    assert mirror.db.execute("SELECT s.sha1, s.text_sha1, r.tags FROM slots s"
                             " JOIN revisions r USING (revid) WHERE revid = 1"
                             ).fetchone() == (sha1, sha1, "[]")  # fmt: skip
    # The views are for reading: writes go to the tables.
    with pytest.raises(sqlite3.OperationalError, match="view"):
        mirror.db.execute("DELETE FROM revisions WHERE revid = 2")
    mirror.db.execute("DELETE FROM revision_data WHERE revid = 2")
    assert count(mirror, "revision_data") == 1
