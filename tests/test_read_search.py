"""Full-text search (storage/search.py): lazy refresh, hidden texts, bad queries."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs import read
from storage import search
from storage.errors import InvalidQueryError
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, SlotRecord
from tests.read_mirror import build, rev


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with Mirror.open(build(tmp_path / "m"), create=False) as m:
        yield m


def titles(mirror: Mirror, query: str, **kw: object) -> list[str]:
    search.refresh(mirror)
    return [hit.title for hit in search.search(mirror, query, **kw)]  # type: ignore[arg-type]


def test_search_texts_and_titles(mirror: Mirror) -> None:
    assert titles(mirror, "zebras") == ["Main Page"]  # text of the latest revision
    assert titles(mirror, "zebra") == ["Zebra"]  # the title
    # A title match ranks above text matches.
    assert titles(mirror, "main")[0] == "Main Page"
    assert set(titles(mirror, "main")) == {"Main Page", "Talk:Main Page", "Zebra"}
    assert titles(mirror, "main", ns=1) == ["Talk:Main Page"]
    assert titles(mirror, "main", limit=1) == ["Main Page"]
    assert titles(mirror, '"Talk:Main Page"') == ["Talk:Main Page"]
    assert titles(mirror, "welcom*") == ["Main Page"]
    assert titles(mirror, "woerter OR klein") == ["Wörter:kleine"]
    # the README's example of words near each other, in FTS5's syntax
    assert titles(mirror, "NEAR(readers zebras)") == ["Main Page"]
    assert titles(mirror, "NEAR(readers zebras, 1)") == []  # two words between them


def test_old_and_hidden_texts_are_not_searched(mirror: Mirror) -> None:
    # "aardvarks" is only in revision 40; the latest revision 41 of that page is hidden.
    assert titles(mirror, "aardvarks") == []
    assert titles(mirror, "testwiki") == ["Testwiki:About"]  # its title still is
    assert titles(mirror, "editors NOT zebras") == []  # revision 11's text is not latest


def test_snippet_marks_the_match(mirror: Mirror) -> None:
    search.refresh(mirror)
    (hit,) = search.search(mirror, "zebras", marks=("<b>", "</b>"))
    assert hit.snippet == "The '''main page''' welcomes readers, editors and <b>zebras</b>."
    assert (hit.pageid, hit.revid) == (1, 12)


def test_refresh_is_lazy_and_follows_new_revisions(mirror: Mirror) -> None:
    assert search.refresh(mirror) == 6
    assert search.refresh(mirror) == 0  # nothing changed, nothing re-indexed
    new = rev(13, 1, "2024-04-01T00:00:00Z", "Now about giraffes.")
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "Main Page")], [new]), "t", None, True)
    assert titles(mirror, "giraffes") == ["Main Page"]
    assert titles(mirror, "zebras") == []
    assert search.refresh(mirror) == 0
    # A move (new title, same revision) re-indexes; an older revision arriving late does not.
    mirror.write_pages([PageRecord(1, 0, "Home")], "t", None, True)
    old = rev(9, 1, "2023-01-01T00:00:00Z", "Ancient elephants.")
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "Home")], [old]), "t", None, True)
    assert search.refresh(mirror) == 1
    assert titles(mirror, "home") == ["Home"] and titles(mirror, "elephants") == []


def test_text_hidden_later_leaves_the_index(mirror: Mirror) -> None:
    assert titles(mirror, "zebras") == ["Main Page"]
    hidden = rev(12, 1, "2024-03-01T10:00:00Z", None, texthidden=True,
                 slots=[SlotRecord("main", "wikitext", texthidden=True)])  # fmt: skip
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "Main Page")], [hidden]), "t", None, True)
    assert titles(mirror, "zebras") == []
    assert titles(mirror, "main", ns=0)[0] == "Main Page"


def test_removing_a_text_removes_its_index_entry(mirror: Mirror) -> None:
    assert titles(mirror, "zebras") == ["Main Page"]
    sha1 = mirror.db.execute("SELECT text_sha1 FROM search_indexed WHERE pageid = 1").fetchone()
    with mirror.transaction():
        mirror.texts.remove(sha1)
    # Gone at once (a trigger), not only at the next search.
    assert mirror.db.execute("SELECT count(*) FROM search_index WHERE search_index MATCH "
                             "'zebras'").fetchone()[0] == 0  # fmt: skip


def test_deleted_page_leaves_the_index(mirror: Mirror) -> None:
    assert titles(mirror, "zebra") == ["Zebra"]
    mirror.db.execute("DELETE FROM pages WHERE pageid = 3")
    assert search.refresh(mirror) == 1
    assert titles(mirror, "zebra") == []


@pytest.mark.parametrize("query", ['"unclosed', "AND", "Talk:Main", "foo(", "NEAR("])
def test_bad_query(mirror: Mirror, query: str) -> None:
    search.refresh(mirror)
    with pytest.raises(InvalidQueryError, match="bad search query"):
        list(search.search(mirror, query))


def test_empty_query(mirror: Mirror) -> None:
    with pytest.raises(InvalidQueryError, match="empty"):
        list(search.search(mirror, "  "))


def test_search_command_json(tmp_path: Path) -> None:
    directory = str(build(tmp_path / "m"))
    out = io.StringIO()
    assert read.run_search(directory, out, "main", ns=None, limit=2, as_json=True) == 2
    rows = json.loads(out.getvalue())
    assert [set(r) for r in rows] == [{"title", "ns", "pageid", "revid", "snippet", "score"}] * 2
    assert rows[0]["title"] == "Main Page" and "«main»" in rows[0]["snippet"]
    with pytest.raises(read.ReadUsageError, match="bad search query"):
        read.run_search(directory, io.StringIO(), "a OR", ns=None, limit=2, as_json=False)
    out = io.StringIO()
    read.run_search(directory, out, "zebras", ns=None, limit=20, as_json=False)
    assert out.getvalue().splitlines()[0] == "Main Page  (pageid 1)"
