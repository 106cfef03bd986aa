"""Title normalisation as MediaWiki does it (storage/titles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import InvalidQueryError
from storage.mirror import Mirror
from storage.titles import TitleParser
from tests.read_mirror import SITEINFO


@pytest.fixture(scope="module")
def parser(tmp_path_factory: pytest.TempPathFactory) -> TitleParser:
    with Mirror.open(tmp_path_factory.mktemp("m"), create=True) as mirror:
        mirror.save_siteinfo(SITEINFO)
        return TitleParser.from_db(mirror.db.conn)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Main Page", (0, "Main Page")),
        ("main_page", (0, "Main page")),  # only the first letter is case-insensitive
        ("  Main__Page_ ", (0, "Main Page")),
        ("Main \u00a0 Page", (0, "Main Page")),
        (":Main Page", (0, "Main Page")),  # a link-style leading colon
        ("talk:main_page", (1, "Talk:Main page")),
        ("TALK : Main Page", (1, "Talk:Main Page")),
        ("Project:About", (4, "Testwiki:About")),  # canonical name
        ("tw:about", (4, "Testwiki:About")),  # alias
        ("testwiki_talk:x", (5, "Testwiki talk:X")),
        ("Wörter:kleine", (100, "Wörter:kleine")),  # case-sensitive namespace
        ("wörter:Kleine", (100, "Wörter:Kleine")),
        ("Nonsense:foo", (0, "Nonsense:foo")),  # no such namespace: part of the title
        ("éclair", (0, "Éclair")),
        ("ßtraße", (0, "ßtraße")),  # upper() gives two letters: MediaWiki keeps it
        ("Talk:Foo:Bar", (1, "Talk:Foo:Bar")),
    ],
)
def test_parse(parser: TitleParser, typed: str, expected: tuple[int, str]) -> None:
    assert parser.parse(typed) == expected


@pytest.mark.parametrize("typed", ["", "   ", "Talk:", "_", "A|B", "A[b]", "Foo#bar"])
def test_not_a_title(parser: TitleParser, typed: str) -> None:
    with pytest.raises(InvalidQueryError, match="is not a page title"):
        parser.parse(typed)


def test_prefix_and_default_namespace(parser: TitleParser) -> None:
    assert parser.parse_prefix("talk:m") == (1, "Talk:M")
    assert parser.parse_prefix("Talk:") == (1, "Talk:")
    assert parser.parse_prefix("info", default_ns=10) == (10, "Template:Info")
    assert parser.parse("info", default_ns=10) == (10, "Template:Info")
    assert parser.parse(":info", default_ns=10) == (0, "Info")


def test_mirror_without_siteinfo_knows_the_builtin_namespaces(tmp_path: Path) -> None:
    with Mirror.open(tmp_path, create=True) as mirror:
        parser = TitleParser.from_db(mirror.db.conn)
    assert parser.parse("user_talk:bob") == (3, "User talk:Bob")
    assert parser.parse("image:x.png") == (6, "File:X.png")
    assert parser.parse("foo") == (0, "Foo")
