"""API JSON (formatversion=2) to the store's records.

Hidden fields come back as flags (``texthidden``, ``userhidden``, ...) with the
value absent; they are stored as flags and never filled with guesses. Old wikis
without multi-content revisions give the content on the revision itself; very
old response formats put it under ``*``.

A broken or hostile server may send anything. What identifies and orders a revision
(its revid and timestamp, a page's id, namespace and title) must be right, or the
batch is refused with an error and nothing of it is stored; any other field that is
missing or of the wrong type is stored as unknown (NULL), never guessed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from harvester.errors import RemoteError
from storage.records import (
    FileVersionRecord,
    PageRecord,
    RevisionBatch,
    RevisionRecord,
    SlotRecord,
)

ISO_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
INTEGER = re.compile(r"-?[0-9]{1,19}")


def _int(value: Any) -> int | None:
    """A whole number SQLite can hold, or None (ASCII digits only: int() takes more)."""
    if type(value) is int:  # what JSON gives, almost always (bool is not int here)
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, str):
        if not INTEGER.fullmatch(value):
            return None
        value = int(value)
    return value if -(2**63) <= value < 2**63 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _required_int(obj: dict[str, Any], key: str, what: str) -> int:
    value = _int(obj.get(key))
    if value is None:
        raise RemoteError(f"the wiki sent {what} without a valid {key} ({obj.get(key)!r})")
    return value


def _timestamp(rev: dict[str, Any], revid: int) -> str:
    """MediaWiki's ISO 8601 form; anything else would break ordering and sync's high-water mark."""
    value = rev.get("timestamp")
    if isinstance(value, str) and ISO_TIMESTAMP.fullmatch(value):
        try:
            # The pattern fixes the form; this checks the date exists. A tenth
            # of the time strptime() takes.
            datetime.fromisoformat(value[:-1])
            return value
        except ValueError:
            pass
    raise RemoteError(f"the wiki sent revision {revid} with a malformed timestamp ({value!r})")


def _flag(obj: dict[str, Any], key: str) -> bool:
    # formatversion=2 sends true; the old format sends "" for a set flag
    return key in obj and obj[key] is not False


def _text(obj: dict[str, Any]) -> str | None:
    value = obj.get("content", obj.get("*"))
    return value if isinstance(value, str) else None


def slot_record(role: str, slot: dict[str, Any]) -> SlotRecord:
    hidden = _flag(slot, "texthidden")
    missing = _flag(slot, "textmissing") or _flag(slot, "missing")
    return SlotRecord(
        role=role,
        content_model=_str(slot.get("contentmodel")),
        # A login that may view hidden text still gets it flagged; the mirror keeps
        # neither the text nor its format, whoever fetched it.
        content_format=None if hidden else _str(slot.get("contentformat")),
        size=_int(slot.get("size")),
        sha1=_str(slot.get("sha1")),
        text=None if hidden or missing else _text(slot),
        texthidden=hidden,
        missing=missing,
    )


def revision_slots(rev: dict[str, Any]) -> list[SlotRecord]:
    slots = rev.get("slots")
    if isinstance(slots, dict):
        return [slot_record(str(role), slot) for role, slot in slots.items()
                if isinstance(slot, dict)]
    main = slot_record("main", rev)  # before MediaWiki 1.32: content on the revision
    if main.size is None:
        main.size = _int(rev.get("size"))
    if main.sha1 is None:
        main.sha1 = _str(rev.get("sha1"))
    return [main]


def revision_record(pageid: int, rev: dict[str, Any]) -> RevisionRecord:
    if not isinstance(rev, dict):
        raise RemoteError(f"the wiki sent a revision of page {pageid} that is not an object")
    revid = _required_int(rev, "revid", f"a revision of page {pageid}")
    userhidden = _flag(rev, "userhidden")
    commenthidden = _flag(rev, "commenthidden")
    sha1hidden = _flag(rev, "sha1hidden")
    tags = rev.get("tags")
    return RevisionRecord(
        revid=revid,
        pageid=pageid,
        parentid=_int(rev.get("parentid")),
        timestamp=_timestamp(rev, revid),
        user=None if userhidden else _str(rev.get("user")),
        userid=None if userhidden else _int(rev.get("userid")),
        comment=None if commenthidden else _str(rev.get("comment")),
        minor=_flag(rev, "minor"),
        size=_int(rev.get("size")),
        sha1=None if sha1hidden else _str(rev.get("sha1")),
        tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        # MediaWiki hides a revision's sha1 exactly when it hides its text, and a
        # metadata-only query (no content) reports only sha1hidden.
        texthidden=_flag(rev, "texthidden") or sha1hidden,
        userhidden=userhidden,
        commenthidden=commenthidden,
        sha1hidden=sha1hidden,
        suppressed=_flag(rev, "suppressed"),
        slots=revision_slots(rev),
    )


def page_record(page: dict[str, Any]) -> PageRecord:
    """A page as far as this response tells; unknown fields stay None."""
    pageid = _required_int(page, "pageid", "a page")
    title = page.get("title")
    if not isinstance(title, str) or not title:
        raise RemoteError(f"the wiki sent page {pageid} without a title")
    return PageRecord(
        pageid=pageid,
        ns=_required_int(page, "ns", f"page {pageid}"),
        title=title,
        is_redirect=_flag(page, "redirect") if "lastrevid" in page else None,
        length=_int(page.get("length")),
        latest_revid=_int(page.get("lastrevid")),
        content_model=_str(page.get("contentmodel")),
        touched=_str(page.get("touched")),
    )


def pages_to_batch(pages: list[dict[str, Any]]) -> RevisionBatch:
    """A response's pages (each with a ``revisions`` list) as one batch for the store."""
    batch = RevisionBatch(pages=[], revisions=[])
    for page in pages:
        if "pageid" not in page or page.get("missing") or page.get("invalid"):
            continue
        record = page_record(page)
        revisions = page.get("revisions", [])
        if not isinstance(revisions, list):
            raise RemoteError(f"the wiki sent page {record.pageid} with malformed revisions")
        batch.pages.append(record)
        batch.revisions.extend(revision_record(record.pageid, r) for r in revisions)
    return batch


def catalogue_pages(pages: list[dict[str, Any]]) -> list[PageRecord]:
    return [page_record(p) for p in pages if "pageid" in p and not p.get("missing")]


SHA1_HEX = re.compile(r"[0-9a-f]{40}")


def file_versions(pages: list[dict[str, Any]]) -> list[FileVersionRecord]:
    """The versions in one answer of the file catalogue walk (harvester/files.py). A
    file's name and each version's timestamp identify it: without them the answer is
    refused; any other field that is wrong is stored as unknown."""
    versions = []
    for page in pages:
        title = page.get("title") if isinstance(page, dict) else None
        if not isinstance(title, str) or ":" not in title:
            raise RemoteError(f"the wiki sent a file without a valid title ({title!r})")
        name = title.split(":", 1)[1].replace(" ", "_")
        infos = page.get("imageinfo", [])  # none: its versions came in an earlier answer
        if not isinstance(infos, list):
            raise RemoteError(f"the wiki sent a malformed imageinfo for {title}")
        versions += [file_version(name, info) for info in infos]
    return versions


def file_version(name: str, info: Any) -> FileVersionRecord:
    if not isinstance(info, dict):
        raise RemoteError(f"the wiki sent a version of {name} that is not an object")
    stamp = info.get("timestamp")
    if not (isinstance(stamp, str) and ISO_TIMESTAMP.fullmatch(stamp)):
        raise RemoteError(f"the wiki sent a version of {name} with a malformed timestamp "
                          f"({stamp!r})")
    filehidden, userhidden = _flag(info, "filehidden"), _flag(info, "userhidden")
    commenthidden = _flag(info, "commenthidden")
    sha1 = _str(info.get("sha1"))
    return FileVersionRecord(
        name=name, timestamp=stamp, archivename=_str(info.get("archivename")),
        user=None if userhidden else _str(info.get("user")),
        userid=None if userhidden else _int(info.get("userid")),
        comment=None if commenthidden else _str(info.get("comment")),
        size=_int(info.get("size")), width=_int(info.get("width")),
        height=_int(info.get("height")), mime=_str(info.get("mime")),
        mediatype=_str(info.get("mediatype")),
        # a login that may see a hidden file still gets it flagged: the mirror keeps
        # neither its bytes nor where they are
        sha1=None if filehidden or sha1 is None or not SHA1_HEX.fullmatch(sha1) else sha1,
        url=None if filehidden else _str(info.get("url")),
        filehidden=filehidden, userhidden=userhidden, commenthidden=commenthidden,
        suppressed=_flag(info, "suppressed"), extmetadata=_extmetadata(info.get("extmetadata")),
    )


def _extmetadata(value: Any) -> str | None:
    """``{"LicenseShortName": {"value": ..., "source": ...}, ...}`` as ``{name: value}``
    (JSON), the values as given (strings, some of them HTML)."""
    if not isinstance(value, dict):
        return None
    found = {str(key): field["value"] for key, field in value.items()
             if isinstance(field, dict) and isinstance(field.get("value"), (str, int, float))}
    return json.dumps(found, ensure_ascii=False, sort_keys=True) if found else None
