"""The MediaWiki XML export (storage/export_xml.py), checked against the JSONL export."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.export_jsonl import write_jsonl
from storage.export_xml import EXPORT_NS, sha1_base36, write_xml
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, SlotRecord
from storage.selection import Selection
from tests.ground_truth import base36_to_hex, parse_dump
from tests.helpers import hidden_rev, rev, sha1

NS = {"mw": EXPORT_NS}
SITEINFO: dict[str, Any] = {
    "general": {
        "sitename": "Test & Wiki", "wikiid": "testwiki", "lang": "de",
        "base": "http://127.0.0.1/index.php/Main_Page", "generator": "MediaWiki 1.39.17",
        "case": "first-letter",
    },
    "namespaces": {
        "0": {"id": 0, "name": "", "case": "first-letter"},
        "1": {"id": 1, "name": "Diskussion", "canonical": "Talk", "case": "first-letter"},
        "4": {"id": 4, "name": "Test", "canonical": "Project", "case": "case-sensitive"},
    },
    "namespacealiases": [{"id": 4, "alias": "TW"}],
}  # fmt: skip


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with Mirror.open(tmp_path / "m", create=True) as m:
        m.save_siteinfo(SITEINFO)
        pages = [
            PageRecord(1, 0, "Alpha & <Omega>"),
            PageRecord(2, 1, "Diskussion:Alpha"),
            PageRecord(3, 0, "Weiter", is_redirect=True, latest_revid=30),
        ]
        revisions = [
            rev(10, 1, "2024-01-01T00:00:00Z", "first <b>&amp;</b> \"quoted\" 'x' ]]> ☃ 𝄞"),
            rev(11, 1, "2024-01-02T00:00:00Z", "second\n  indented\n", parentid=10,
                user="192.0.2.7", userid=0, comment="", minor=True),
            hidden_rev(12, 1, "2024-01-03T00:00:00Z", parentid=11, user=None, userid=None,
                       comment=None, userhidden=True, commenthidden=True, suppressed=True),
            rev(13, 1, "2024-01-04T00:00:00Z", "", parentid=12, user="imported>Old Timer",
                userid=0, comment="emptied the page"),
            rev(20, 2, "2024-02-01T00:00:00Z", "talk", comment="/* Section */ ~~~~"),
            rev(21, 2, "2024-02-02T00:00:00Z", "talk", parentid=20, comment="protected"),
            rev(30, 3, "2024-03-01T00:00:00Z", "#redirect [[tw:target_page#Part]]"),
        ]
        m.write_batch(RevisionBatch(pages, revisions), "cp", None, False)
        yield m


def xml_export(mirror: Mirror, **kw: Any) -> str:
    """The XML export of the revisions a Selection(**kw) takes."""
    out = io.StringIO()
    write_xml(mirror, out, Selection(**kw))
    return out.getvalue()


def xml_file(tmp_path: Path, mirror: Mirror, **kw: Any) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(xml_export(mirror, **kw), encoding="utf-8")
    return path


def jsonl_records(mirror: Mirror, **kw: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    write_jsonl(mirror, out, Selection(**kw))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def as_dump_record(record: dict[str, Any]) -> dict[str, Any]:
    """A JSONL record in tests/ground_truth's shape (what a dump can express)."""
    out = {k: v for k, v in record.items() if k not in ("tags", "slots", "suppressed")}
    out["parentid"] = out["parentid"] or 0  # the dump leaves out a first revision's parent
    if "hidden" in out:
        out["hidden"] = sorted(out["hidden"])
    return out


def test_parse_dump_reads_back_the_jsonl_records(mirror: Mirror, tmp_path: Path) -> None:
    ours = [as_dump_record(r) for r in parse_dump(xml_file(tmp_path, mirror))]
    expected = [as_dump_record(r) for r in jsonl_records(mirror)]
    assert ours == expected
    assert len(ours) == 7


def test_header_and_siteinfo(mirror: Mirror) -> None:
    root = ET.fromstring(xml_export(mirror))
    assert root.tag == f"{{{EXPORT_NS}}}mediawiki"
    assert root.get("version") == "0.11"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"
    site = root.find("mw:siteinfo", NS)
    assert site is not None
    assert [child.tag.split("}")[1] for child in site] == [
        "sitename", "dbname", "base", "generator", "case", "namespaces"]
    assert site.findtext("mw:sitename", namespaces=NS) == "Test & Wiki"
    assert site.findtext("mw:dbname", namespaces=NS) == "testwiki"
    spaces = site.findall("mw:namespaces/mw:namespace", NS)
    assert [(n.get("key"), n.get("case"), n.text) for n in spaces] == [
        ("0", "first-letter", None), ("1", "first-letter", "Diskussion"),
        ("4", "case-sensitive", "Test")]


def test_elements_like_mediawiki(mirror: Mirror) -> None:
    text = xml_export(mirror)
    root = ET.fromstring(text)
    pages = root.findall("mw:page", NS)
    assert [p.findtext("mw:title", namespaces=NS) for p in pages] == [
        "Alpha & <Omega>", "Diskussion:Alpha", "Weiter"]
    first = pages[0].findall("mw:revision", NS)
    # Child order as in XmlDumpWriter; no parentid on a first revision.
    assert [c.tag.split("}")[1] for c in first[0]] == [
        "id", "timestamp", "contributor", "comment", "origin", "model", "format", "text", "sha1"]
    assert first[1].find("mw:contributor/mw:ip", NS) is not None
    assert first[1].find("mw:minor", NS) is not None
    assert first[1].find("mw:comment", NS) is None  # an empty comment is left out
    assert first[3].findtext("mw:contributor/mw:username", namespaces=NS) == "imported>Old Timer"
    main = first[0].find("mw:text", NS)
    assert main is not None
    assert main.get("{http://www.w3.org/XML/1998/namespace}space") == "preserve"
    assert main.get("bytes") == str(len((main.text or "").encode("utf-8")))
    digest = first[0].findtext("mw:sha1", namespaces=NS) or ""
    assert len(digest) == 31 and base36_to_hex(digest) == sha1(main.text or "")
    assert '<text bytes="0" sha1="phoiac9h4m842xq45sp7s6u21eteeq1" xml:space="preserve" />' in text


def test_origin_follows_inherited_content(mirror: Mirror) -> None:
    root = ET.fromstring(xml_export(mirror))
    talk = root.findall("mw:page", NS)[1].findall("mw:revision", NS)
    # Revision 21 has its parent's content (a null revision): MediaWiki keeps the origin.
    assert [r.findtext("mw:origin", namespaces=NS) for r in talk] == ["20", "20"]


def test_redirect_target_is_a_normalised_title(mirror: Mirror) -> None:
    root = ET.fromstring(xml_export(mirror))
    redirects = [p.find("mw:redirect", NS) for p in root.findall("mw:page", NS)]
    assert [r.get("title") if r is not None else None for r in redirects] == [
        None, None, "Test:target page"]


def test_hidden_fields(mirror: Mirror, tmp_path: Path) -> None:
    text = xml_export(mirror)
    hidden = text[text.index("<id>12</id>"):]
    hidden = hidden[:hidden.index("</revision>")]
    assert '<contributor deleted="deleted" />' in hidden
    assert '<comment deleted="deleted" />' in hidden
    assert '<text bytes="7" deleted="deleted" />' in hidden
    assert "<sha1/>" in hidden and "xml:space" not in hidden
    record = next(r for r in parse_dump(xml_file(tmp_path, mirror)) if r["revid"] == 12)
    assert record["hidden"] == ["user", "comment", "text", "sha1"]


def test_a_hidden_text_is_never_read(mirror: Mirror) -> None:
    """Even a text the store should not have stays out when its slot is hidden."""
    leaked = rev(14, 1, "2024-01-05T00:00:00Z", "SECRET", parentid=13)
    mirror.write_batch(RevisionBatch([], [leaked]), "cp", None, False)
    # Hide it afterwards without dropping the stored text, as a damaged store might.
    mirror.db.execute("UPDATE revision_data SET texthidden = 1 WHERE revid = 14")
    mirror.db.execute("UPDATE slot_data SET texthidden = 1 WHERE revid = 14")
    read: list[str] = []
    original = mirror.read_text
    mirror.read_text = lambda sha: read.append(sha) or original(sha)  # type: ignore[method-assign]
    assert "SECRET" not in xml_export(mirror)
    assert "SECRET" not in json.dumps(jsonl_records(mirror))
    assert sha1("SECRET") not in read


def test_non_main_slots_become_content_elements(mirror: Mirror, tmp_path: Path) -> None:
    r = rev(15, 1, "2024-01-06T00:00:00Z", "main", parentid=13)
    r.slots.append(SlotRecord("mediainfo", "wikibase-mediainfo", "application/json", 7,
                              sha1('{"a":1}'), '{"a":1}'))
    r.slots.append(SlotRecord("secret", "wikitext", None, 3, None, None, texthidden=True))
    mirror.write_batch(RevisionBatch([], [r]), "cp", None, False)
    root = ET.fromstring(xml_export(mirror))
    revision = next(x for x in root.iter(f"{{{EXPORT_NS}}}revision")
                    if x.findtext("mw:id", namespaces=NS) == "15")
    contents = revision.findall("mw:content", NS)
    assert [[c.tag.split("}")[1] for c in content] for content in contents] == [
        ["role", "origin", "model", "format", "text"]] * 2
    info, secret = contents
    assert info.findtext("mw:role", namespaces=NS) == "mediainfo"
    assert info.findtext("mw:text", namespaces=NS) == '{"a":1}'
    assert info.findtext("mw:origin", namespaces=NS) == "15"
    secret_text = secret.find("mw:text", NS)
    assert secret_text is not None and secret_text.get("deleted") == "deleted"
    assert [c.tag.split("}")[1] for c in revision][-3:] == ["content", "content", "sha1"]
    assert next(x for x in parse_dump(xml_file(tmp_path, mirror)) if x["revid"] == 15)["text"] \
        == "main"


def test_characters_xml_cannot_hold(mirror: Mirror, tmp_path: Path) -> None:
    nasty = "a\x00b\x01c\x1fd\ufffee\r\nf\tg"
    r = rev(16, 1, "2024-01-07T00:00:00Z", nasty, parentid=13, comment="bell\x07",
            user="Ctl\x0bUser")
    mirror.write_batch(RevisionBatch([PageRecord(1, 0, "Alpha\x02")], [r]), "cp", None, False)
    record = next(x for x in parse_dump(xml_file(tmp_path, mirror)) if x["revid"] == 16)
    assert record["text"] == "a\ufffdb\ufffdc\ufffdd\ufffde\r\nf\tg"  # CR survives
    assert record["comment"] == "bell\ufffd" and record["user"] == "Ctl\ufffdUser"
    assert record["title"] == "Alpha\ufffd"


def test_filters(mirror: Mirror, tmp_path: Path) -> None:
    current = [r["revid"] for r in parse_dump(xml_file(tmp_path, mirror, current_only=True))]
    assert current == [13, 21, 30]
    talk = [r["revid"] for r in parse_dump(xml_file(tmp_path, mirror, namespaces=frozenset({1})))]
    assert talk == [20, 21]
    both = xml_file(tmp_path, mirror, namespaces=frozenset({0}), current_only=True)
    assert [r["revid"] for r in parse_dump(both)] == [13, 30]


def test_empty_mirror_is_a_valid_file(tmp_path: Path) -> None:
    with Mirror.open(tmp_path / "empty", create=True) as m:
        root = ET.fromstring(xml_export(m))
    assert root.findall("mw:page", NS) == []


def test_progress_counts_every_revision(mirror: Mirror) -> None:
    calls: list[int] = []
    count = write_xml(mirror, io.StringIO(), progress=calls.append)
    assert count == sum(calls) == 7


def test_sha1_base36_matches_mediawiki() -> None:
    # sha1("") as MediaWiki writes it
    assert sha1_base36(sha1("")) == "phoiac9h4m842xq45sp7s6u21eteeq1"
    assert sha1_base36("0" * 39 + "1") == "0" * 30 + "1"
    assert base36_to_hex(sha1_base36("f" * 40)) == "f" * 40
