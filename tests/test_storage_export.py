"""The JSON Lines export (storage/export_jsonl.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.export_jsonl import iter_export_records, write_jsonl
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord
from storage.selection import Selection

BASE_KEYS = ["pageid", "ns", "title", "revid", "parentid", "timestamp", "user", "userid"]
BASE_KEYS += ["comment", "minor", "sha1", "text", "model", "format", "size", "tags"]


def rev(
    revid: int, pageid: int, timestamp: str, text: str | None = "x", **kw: Any
) -> RevisionRecord:
    fields: dict[str, Any] = {
        "parentid": None,
        "user": "Zoë",
        "userid": 3,
        "comment": "summary",
        "minor": False,
        "size": 1,
        "sha1": "b" * 40,
        "slots": [SlotRecord("main", "wikitext", "text/x-wiki", 1, "c" * 40, text)],
    }
    fields.update(kw)
    return RevisionRecord(revid=revid, pageid=pageid, timestamp=timestamp, **fields)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with Mirror.open(tmp_path, create=True) as m:
        pages = [PageRecord(2, 0, "Beta"), PageRecord(1, 0, "Alpha"), PageRecord(3, 1, "Talk:A")]
        revisions = [
            # Out of order on purpose: the export sorts by page, then timestamp, revid.
            rev(30, 2, "2024-03-01T00:00:00Z", "beta 2"),
            rev(20, 2, "2024-02-01T00:00:00Z", "beta 1 ☃"),
            rev(11, 1, "2024-01-02T00:00:00Z", "alpha 2"),
            rev(10, 1, "2024-01-01T00:00:00Z", "alpha 1"),
            rev(40, 3, "2024-04-01T00:00:00Z", "talk"),
        ]
        m.write_batch(RevisionBatch(pages, revisions), "cp", None, False)
        yield m


def test_order_keys_and_values(mirror: Mirror) -> None:
    records = list(iter_export_records(mirror))
    assert [(r["pageid"], r["revid"]) for r in records] == [
        (1, 10),
        (1, 11),
        (2, 20),
        (2, 30),
        (3, 40),
    ]
    first = records[0]
    assert list(first) == BASE_KEYS
    assert first == {
        "pageid": 1,
        "ns": 0,
        "title": "Alpha",
        "revid": 10,
        "parentid": None,
        "timestamp": "2024-01-01T00:00:00Z",
        "user": "Zoë",
        "userid": 3,
        "comment": "summary",
        "minor": False,
        "sha1": "b" * 40,
        "text": "alpha 1",
        "model": "wikitext",
        "format": "text/x-wiki",
        "size": 1,
        "tags": [],
    }


def test_write_jsonl(mirror: Mirror) -> None:
    out = io.StringIO()
    assert write_jsonl(mirror, out) == 5
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert "beta 1 ☃" in lines[2]  # not escaped: ensure_ascii=False
    assert json.loads(lines[2])["text"] == "beta 1 ☃"


def test_filters(mirror: Mirror) -> None:
    talk = [r["revid"] for r in iter_export_records(mirror, Selection(namespaces=frozenset({1})))]
    assert talk == [40]
    current = [r["revid"] for r in iter_export_records(mirror, Selection(current_only=True))]
    assert current == [11, 30, 40]
    out = io.StringIO()
    assert write_jsonl(mirror, out, Selection(namespaces=frozenset({0}), current_only=True)) == 2


def test_hidden_fields_are_omitted(mirror: Mirror) -> None:
    hidden = rev(
        50, 1, "2024-05-01T00:00:00Z", None,
        user=None, userid=None, comment=None, sha1=None,
        texthidden=True, userhidden=True, commenthidden=True, sha1hidden=True, suppressed=True,
        slots=[SlotRecord("main", "wikitext", "text/x-wiki", 5, None, None, texthidden=True)],
    )  # fmt: skip
    only_comment = rev(51, 1, "2024-05-02T00:00:00Z", "y", comment=None, commenthidden=True)
    batch = RevisionBatch([PageRecord(1, 0, "Alpha")], [hidden, only_comment])
    mirror.write_batch(batch, "cp", None, False)
    main_only = Selection(namespaces=frozenset({0}))
    records = {r["revid"]: r for r in iter_export_records(mirror, main_only)}
    assert list(records[50]) == [
        "pageid", "ns", "title", "revid", "parentid", "timestamp", "minor",
        "model", "format", "size", "tags", "hidden", "suppressed",
    ]  # fmt: skip
    assert records[50]["hidden"] == ["text", "user", "comment", "sha1"]
    assert records[50]["suppressed"] is True
    assert "comment" not in records[51] and records[51]["hidden"] == ["comment"]
    assert records[51]["text"] == "y" and "suppressed" not in records[51]


def test_non_main_slots(mirror: Mirror) -> None:
    r = rev(60, 1, "2024-06-01T00:00:00Z", "main text")
    r.slots.append(
        SlotRecord("mediainfo", "wikibase-mediainfo", "application/json", 9, "d" * 40, '{"a":1}')
    )
    r.slots.append(SlotRecord("extra", "wikitext", None, 3, None, None, texthidden=True))
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "Alpha")], [r]), "cp", None, False)
    record = next(x for x in iter_export_records(mirror) if x["revid"] == 60)
    assert list(record) == [*BASE_KEYS, "slots"]
    assert record["text"] == "main text"
    assert record["slots"] == {
        "extra": {"model": "wikitext", "format": None, "sha1": None, "size": 3},
        "mediainfo": {
            "model": "wikibase-mediainfo",
            "format": "application/json",
            "sha1": "d" * 40,
            "size": 9,
            "text": '{"a":1}',
        },
    }


def test_revision_without_content(mirror: Mirror) -> None:
    bare = rev(70, 1, "2024-07-01T00:00:00Z", slots=[])
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "Alpha")], [bare]), "cp", None, False)
    record = next(x for x in iter_export_records(mirror) if x["revid"] == 70)
    assert record["text"] is None and record["model"] is None and "hidden" not in record
