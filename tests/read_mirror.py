"""A small mirror for the reading tests, written directly with Mirror.write_batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord

SITEINFO: dict[str, Any] = {
    "general": {"wikiid": "testwiki", "sitename": "Testwiki"},
    "namespaces": {
        "0": {"id": 0, "name": "", "case": "first-letter", "content": True},
        "1": {"id": 1, "name": "Talk", "canonical": "Talk", "case": "first-letter"},
        "2": {"id": 2, "name": "User", "canonical": "User", "case": "first-letter"},
        "4": {"id": 4, "name": "Testwiki", "canonical": "Project", "case": "first-letter"},
        "5": {"id": 5, "name": "Testwiki talk", "canonical": "Project talk",
              "case": "first-letter"},
        "10": {"id": 10, "name": "Template", "canonical": "Template", "case": "first-letter"},
        "100": {"id": 100, "name": "Wörter", "canonical": "Wörter", "case": "case-sensitive"},
    },
    "namespacealiases": [{"id": 4, "alias": "TW"}],
}  # fmt: skip

MAIN_1 = "The '''main page''' welcomes readers.\n"
MAIN_2 = "The '''main page''' welcomes readers and editors.\n"
MAIN_3 = "The '''main page''' welcomes readers, editors and zebras.\n"


def rev(
    revid: int, pageid: int, timestamp: str, text: str | None, **kw: Any
) -> RevisionRecord:
    slots = kw.pop("slots", None)
    if slots is None:
        slots = [SlotRecord("main", "wikitext", "text/x-wiki", None if text is None else
                            len(text.encode()), None, text)]  # fmt: skip
    fields: dict[str, Any] = {
        "parentid": None,
        "user": "Alice",
        "userid": 1,
        "comment": f"edit {revid}",
        "minor": False,
        "size": None if text is None else len(text.encode()),
        "sha1": None,
    }
    fields.update(kw)
    return RevisionRecord(revid=revid, pageid=pageid, timestamp=timestamp, slots=slots, **fields)


PAGES = [
    PageRecord(1, 0, "Main Page", is_redirect=False, length=len(MAIN_3)),
    PageRecord(2, 1, "Talk:Main Page", is_redirect=False, length=20),
    PageRecord(3, 0, "Zebra", is_redirect=True, length=23),
    PageRecord(4, 4, "Testwiki:About", is_redirect=False, length=30),
    PageRecord(5, 2, "User:Alice", is_redirect=False, length=10),
    PageRecord(6, 100, "Wörter:kleine", is_redirect=False, length=5),
]

REVISIONS = [
    rev(10, 1, "2024-01-01T10:00:00Z", MAIN_1),
    rev(11, 1, "2024-02-01T10:00:00Z", MAIN_2, user="Bob", userid=2, minor=True),
    rev(12, 1, "2024-03-01T10:00:00Z", MAIN_3, user=None, userid=None, userhidden=True,
        comment=None, commenthidden=True),
    rev(20, 2, "2024-01-05T00:00:00Z", "Let us talk about the main page."),
    rev(30, 3, "2024-01-06T00:00:00Z", "#REDIRECT [[Main Page]]"),
    rev(40, 4, "2024-01-07T00:00:00Z", "About this wiki: aardvarks."),
    rev(41, 4, "2024-01-08T00:00:00Z", None, texthidden=True,
        slots=[SlotRecord("main", "wikitext", texthidden=True)]),
    rev(50, 5, "2024-01-09T00:00:00Z", "Alice's page", user="Carol", userid=3,
        slots=[SlotRecord("main", "wikitext", text="Alice's page"),
               SlotRecord("extra", "json", text='{"a": 1}')]),
    rev(60, 6, "2024-01-10T00:00:00Z", "klein"),
]  # fmt: skip


def build(directory: Path) -> Path:
    with Mirror.open(directory, create=True) as mirror:
        mirror.save_siteinfo(SITEINFO)
        mirror.write_batch(RevisionBatch(PAGES, REVISIONS), "test", None, True)
        run = mirror.start_run("crawl", {"api": "http://localhost/api.php"})
        mirror.finish_run(run, "ok", {"revisions": len(REVISIONS)})
    return directory
