"""The notebook API (storage/reader.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlite_utils

from storage import search
from storage.errors import NotInMirrorError, StorageError
from storage.mirror import Mirror
from storage.reader import Revision, open_mirror
from storage.stored import StoredRevision
from tests.read_mirror import MAIN_1, MAIN_3, build


def test_reader(tmp_path: Path) -> None:
    build(tmp_path / "m")
    with open_mirror(tmp_path / "m") as m:
        assert [p.title for p in m.pages(ns=0)] == ["Main Page", "Zebra"]
        assert m.page("main_Page").revisions == 3
        revisions = list(m.history("Main Page"))
        assert all(isinstance(r, Revision) for r in revisions)
        assert [r.revid for r in revisions] == [12, 11, 10]
        assert revisions[0].userhidden and revisions[0].user is None
        assert revisions[0].text == MAIN_3 and revisions[-1].text == MAIN_1
        assert "Revision 12 of 'Main Page'" in repr(revisions[0])
        hidden = m.revision(41)
        assert hidden.texthidden and hidden.text is None
        assert m.revision(50).slot_text("extra") == '{"a": 1}'
        assert m.text("Main Page", at="2024-01-15") == MAIN_1
        with pytest.raises(StorageError, match="hidden"):
            m.text("TW:About")
        with pytest.raises(NotInMirrorError):
            m.page("Nope")
        with pytest.raises(StorageError, match="run `harvester search` once"):
            m.search("zebras")  # the index is behind, and this reader writes nothing
        with Mirror.open(tmp_path / "m", create=False) as writable:
            search.refresh(writable)  # what `harvester search` does first
        assert [h.title for h in m.search("zebras")] == ["Main Page"]
        assert m.stats()["revisions"] == 9
        assert m.sql("SELECT title FROM pages WHERE pageid = ?", [3]) == [{"title": "Zebra"}]


def test_open_mirror_needs_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no mirror at"):
        open_mirror(tmp_path / "nothing")


def test_texts_from_sql(tmp_path: Path) -> None:
    build(tmp_path / "m")
    with open_mirror(tmp_path / "m") as m:
        rows = m.query("SELECT title, revision_text(revid) AS text FROM latest_revisions"
                       " WHERE pageid = 1")
        assert not isinstance(rows, list)  # lazily, row by row
        assert list(rows) == [{"title": "Main Page", "text": MAIN_3}]
        assert m.sql("SELECT revision_text(10) AS a, revision_text(41) AS hidden,"
                     " revision_text(50, 'extra') AS slot, revision_text(10, 'nope') AS none,"
                     " revision_text(999) AS missing") == [
            {"a": MAIN_1, "hidden": None, "slot": '{"a": 1}', "none": None, "missing": None}]


def build_with_damaged_texts(directory: Path) -> None:
    """The test mirror, with every pack's bytes replaced by a broken zstd frame."""
    build(directory)
    db = sqlite3.connect(directory / "mirror.sqlite")
    with db:
        db.execute("UPDATE text_packs SET data = x'28b52ffd00'")
    db.close()


# sqlite3 reports the function's exception as unraisable, then fails the statement.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_corrupt_text_is_an_error_in_sql_not_a_null(tmp_path: Path) -> None:
    build_with_damaged_texts(tmp_path / "m")
    with open_mirror(tmp_path / "m") as m, pytest.raises(sqlite3.OperationalError):
        m.sql("SELECT revision_text(10)")


def test_the_reader_cannot_write(tmp_path: Path) -> None:
    build(tmp_path / "m")
    before = (tmp_path / "m" / "mirror.sqlite").read_bytes()
    with open_mirror(tmp_path / "m") as m:
        assert isinstance(m.db, sqlite_utils.Database)
        assert m.db["pages"].count == 6
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            m.sql("DELETE FROM pages")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            m.db["pages"].insert({"pageid": 99, "ns": 0, "title": "New"})
    assert (tmp_path / "m" / "mirror.sqlite").read_bytes() == before


def test_revisions_are_typed_and_narrowed_like_exports(tmp_path: Path) -> None:
    build(tmp_path / "m")
    with open_mirror(tmp_path / "m") as m:
        every = list(m.revisions())
        assert all(isinstance(r, Revision) and isinstance(r, StoredRevision) for r in every)
        assert len(every) == 9
        main = list(m.revisions(titles=["Main Page"]))
        assert [r.revid for r in main] == [10, 11, 12]  # oldest first
        assert main[0].text == MAIN_1 and main[-1].text == MAIN_3
        assert [r.revid for r in m.revisions(titles=["Main Page"], since=date(2024, 1, 15),
                                             current_only=True)] == [12]
        assert {r.ns for r in m.revisions(namespaces=[1])} <= {1}
        late = list(m.revisions(since=datetime(2024, 2, 1, tzinfo=UTC)))
        assert all(r.timestamp >= "2024-02-01" for r in late) and late


def test_a_corrupt_text_raises_and_never_reads_as_hidden(tmp_path: Path) -> None:
    build_with_damaged_texts(tmp_path / "m")
    with open_mirror(tmp_path / "m") as m:
        revision = m.revision(10)
        with pytest.raises(StorageError):
            _ = revision.text
        assert m.revision(41).text is None  # hidden is hidden
