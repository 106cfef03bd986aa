"""Ground truth for harvest tests: MediaWiki's own XML dumps as export records.

``parse_dump`` turns a ``dumpBackup.php`` file into dicts shaped like the
harvester's JSONL export, so a test can compare the two revision by revision:

    pageid ns title revid parentid timestamp user userid comment minor
    sha1 text model format size [slots] [hidden]

``slots``: the non-main slots (``<content>``), by role, each ``model format sha1
size text`` as the export writes them.

Revision-deleted fields are left out and named, in the order user, comment,
text, sha1, under ``hidden`` (present only when something is hidden).  A hidden
user removes both ``user`` and ``userid``; hidden text also hides ``sha1``,
because the dump then writes an empty ``<sha1/>``.  ``size`` stays: MediaWiki
reports it even for hidden text; it is the revision's, all slots together.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_EXPORT_PREFIX = "{http://www.mediawiki.org/xml/export-"


def base36_to_hex(value: str) -> str:
    """MediaWiki's base-36 SHA-1 (up to 31 digits) as 40 lowercase hex digits."""
    number = int(value, 36)
    if number >= 1 << 160:
        raise ValueError(f"not a SHA-1 in base 36: {value!r}")
    return format(number, "040x")


def _local(tag: str) -> str:
    """Tag name without the export namespace (any schema version)."""
    if tag.startswith(_EXPORT_PREFIX):
        return tag.split("}", 1)[1]
    return tag


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


def _text(elem: ET.Element, name: str, default: str = "") -> str:
    child = _child(elem, name)
    if child is None or child.text is None:
        return default
    return child.text


def _deleted(elem: ET.Element | None) -> bool:
    return elem is not None and elem.get("deleted") == "deleted"


def _contributor(rev: ET.Element, record: dict[str, Any], hidden: list[str]) -> None:
    contributor = _child(rev, "contributor")
    if contributor is None or _deleted(contributor):
        hidden.append("user")
        return
    ip = _child(contributor, "ip")
    if ip is not None:
        record["user"], record["userid"] = ip.text or "", 0
    else:
        record["user"] = _text(contributor, "username")
        record["userid"] = int(_text(contributor, "id", "0"))


def _revision(rev: ET.Element, page: dict[str, Any]) -> dict[str, Any]:
    """One export record from a ``<revision>`` element."""
    record: dict[str, Any] = {
        **page,
        "revid": int(_text(rev, "id")),
        # The API reports 0 for a first revision; the dump leaves the element out.
        "parentid": int(_text(rev, "parentid", "0")),
        "timestamp": _text(rev, "timestamp"),
    }
    hidden: list[str] = []
    _contributor(rev, record, hidden)
    comment = _child(rev, "comment")
    if _deleted(comment):
        hidden.append("comment")
    else:
        record["comment"] = _text(rev, "comment")
    record["minor"] = _child(rev, "minor") is not None
    text = _child(rev, "text")
    sha1 = _text(rev, "sha1")
    if sha1:
        record["sha1"] = base36_to_hex(sha1)
    if text is None or _deleted(text):
        hidden.append("text")
    else:
        record["text"] = text.text or ""
    if not sha1:
        hidden.append("sha1")
    record["model"] = _text(rev, "model", "wikitext")
    record["format"] = _text(rev, "format", "text/x-wiki")
    record["size"] = _size(text)
    slots = {_text(content, "role"): _slot(content, "text" in hidden)
             for content in rev if _local(content.tag) == "content"}
    if slots:
        record["slots"] = slots
        # a revision's size is its slots' together (rev_len); <text bytes> is the main's
        record["size"] += sum(slot["size"] for slot in slots.values())
    if hidden:
        record["hidden"] = hidden
    return record


def _slot(content: ET.Element, text_hidden: bool) -> dict[str, Any]:
    text = _child(content, "text")
    slot: dict[str, Any] = {"model": _text(content, "model"), "format": _text(content, "format")}
    sha1 = text.get("sha1") if text is not None else None
    if sha1:
        slot["sha1"] = base36_to_hex(sha1)
    slot["size"] = _size(text)
    if not text_hidden and text is not None and not _deleted(text):
        slot["text"] = text.text or ""
    return slot


def _size(text: ET.Element | None) -> int:
    if text is None:
        return 0
    if text.get("bytes") is not None:
        return int(text.get("bytes", "0"))
    return len((text.text or "").encode("utf-8"))


def parse_dump(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the revisions of an export XML (schema 0.10/0.11), in dump order."""
    stack: list[str] = []
    page: dict[str, Any] = {}
    root: ET.Element | None = None
    for event, elem in ET.iterparse(path, events=("start", "end")):
        name = _local(elem.tag)
        if event == "start":
            if root is None:
                root = elem
            stack.append(name)
            continue
        stack.pop()
        parent = stack[-1] if stack else ""
        if parent == "page" and name in ("title", "ns", "id"):
            key = {"title": "title", "ns": "ns", "id": "pageid"}[name]
            page[key] = elem.text if name == "title" else int(elem.text or "0")
        elif name == "revision":
            yield _revision(elem, _page_fields(page))
            elem.clear()
        elif name == "page":
            page = {}
            # Drop finished pages from the tree so memory stays flat.
            if root is not None:
                root.clear()


def _page_fields(page: dict[str, Any]) -> dict[str, Any]:
    return {"pageid": page["pageid"], "ns": page["ns"], "title": page["title"]}


def load_dump(path: Path) -> dict[int, dict[str, Any]]:
    """All revisions of a dump keyed by revid (handy for small fixtures)."""
    return {record["revid"]: record for record in parse_dump(path)}
