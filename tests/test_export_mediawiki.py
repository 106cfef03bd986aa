"""The XML export round-trips through a real MediaWiki.

Crawl the fixture wiki, export XML, import it with importDump.php into a fresh
wiki, dump that wiki with dumpBackup.php and compare with the fixture's own
dump. importDump.php assigns new revision and page ids, so revisions are
matched by page title and timestamp (unique within a page in the fixture);
what is compared is the content: sha1, text, user, comment, minor flag, model
and format.

Users: importDump keeps a contributor's name when a local account of that name
exists and prefixes it ("imported>Name") otherwise, so the fresh wiki gets the
fixture's accounts first. Names that already carry a prefix ("imported>Old
Timer") are not valid local names and stay as they are.

Hidden fields: the export writes them the way dumpBackup does (``deleted=
"deleted"``, no content), and importDump has no notion of revision deletion: it
imports such a revision as a visible one with an empty text, an empty comment
and the user "imported>Unknown user". So for a revision hidden on the source,
the fields that were hidden are checked to be exactly those placeholders (the
hidden content never leaked into the export), the others compared as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import demo_wiki
import pytest
from fixture_xml import LOCAL_USERS

from harvester.config import Settings
from jobs.crawl import run_crawl
from storage.export_xml import write_xml
from storage.mirror import Mirror
from tests.ground_truth import parse_dump

pytestmark = pytest.mark.mediawiki
COMPARED = ("sha1", "text", "user", "comment", "minor", "model", "format")
# What importDump.php makes of a field the export marks as deleted.
IMPORTED_PLACEHOLDERS = {
    "text": "",
    "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # sha1 of the empty text
    "user": "imported>Unknown user",
    "comment": "",
}

Key = tuple[str, str, int]


def by_title_and_timestamp(dump: Path) -> dict[Key, dict[str, Any]]:
    """Revisions by title, timestamp and their order within that second (two edits of a
    page can share a timestamp; a dump lists them by revid, and importDump keeps that order)."""
    records: dict[Key, dict[str, Any]] = {}
    for record in parse_dump(dump):
        ordinal = 0
        while (record["title"], record["timestamp"], ordinal) in records:
            ordinal += 1
        records[(record["title"], record["timestamp"], ordinal)] = record
    return records


def expected_after_import(source: dict[str, Any]) -> dict[str, Any]:
    hidden = set(source.get("hidden", []))
    return {
        field: IMPORTED_PLACEHOLDERS[field] if field in hidden else source[field]
        for field in COMPARED
    }


def reimported_dump(xml: Path, directory: Path) -> Path:
    """Import ``xml`` into a new, empty wiki and dump that wiki."""
    fresh = demo_wiki.create_wiki(directory / "wiki", demo_wiki.free_port())
    demo_wiki.create_users(fresh, [*LOCAL_USERS, *demo_wiki.LIVE_USERS])
    demo_wiki.import_xml(fresh, xml, refresh_links=False)
    return demo_wiki.dump_backup(fresh, directory / "reimported.xml")


async def test_xml_export_survives_importdump(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    mirror_dir = tmp_path / "mirror"
    await run_crawl(Settings(api=shared_server.api_url, mirror=str(mirror_dir), quiet=True,
                             max_requests_per_second=0, max_requests_per_minute=0))
    xml = tmp_path / "export.xml"
    with Mirror.open(mirror_dir, create=False) as mirror, xml.open("w", encoding="utf-8") as out:
        exported = write_xml(mirror, out)

    source = by_title_and_timestamp(fixture_dump)
    again = by_title_and_timestamp(reimported_dump(xml, tmp_path))
    assert exported == len(source)
    # The fresh wiki's own Main Page revision (made by install.php) is the only extra.
    extra = set(again) - set(source)
    assert [title for title, _, _ in extra] == ["Main Page"]
    assert not set(source) - set(again), "revisions lost in the round trip"

    hidden = [key for key, record in source.items() if record.get("hidden")]
    assert len(hidden) >= 4
    mismatched = [
        (key, expected_after_import(record), {f: again[key].get(f) for f in COMPARED})
        for key, record in source.items()
        if expected_after_import(record) != {f: again[key].get(f) for f in COMPARED}
    ]
    assert not mismatched, f"{len(mismatched)} revisions differ, e.g. {mismatched[0]}"[:3000]
