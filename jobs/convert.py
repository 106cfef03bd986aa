"""API JSON (formatversion=2) to the store's records.

Hidden fields come back as flags (``texthidden``, ``userhidden``, ...) with the
value absent; they are stored as flags and never filled with guesses. Old wikis
without multi-content revisions give the content on the revision itself; very
old response formats put it under ``*``.
"""

from __future__ import annotations

from typing import Any

from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return int(value) if str(value).lstrip("-").isdigit() else None


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
        content_model=slot.get("contentmodel"),
        # A login that may view hidden text still gets it flagged; the mirror keeps
        # neither the text nor its format, whoever fetched it.
        content_format=None if hidden else slot.get("contentformat"),
        size=_int(slot.get("size")),
        sha1=slot.get("sha1") if isinstance(slot.get("sha1"), str) else None,
        text=None if hidden or missing else _text(slot),
        texthidden=hidden,
        missing=missing,
    )


def revision_slots(rev: dict[str, Any]) -> list[SlotRecord]:
    slots = rev.get("slots")
    if isinstance(slots, dict):
        return [slot_record(str(role), slot) for role, slot in slots.items()]
    main = slot_record("main", rev)  # before MediaWiki 1.32: content on the revision
    if main.size is None:
        main.size = _int(rev.get("size"))
    if main.sha1 is None:
        main.sha1 = rev.get("sha1") if isinstance(rev.get("sha1"), str) else None
    return [main]


def revision_record(pageid: int, rev: dict[str, Any]) -> RevisionRecord:
    userhidden = _flag(rev, "userhidden")
    commenthidden = _flag(rev, "commenthidden")
    sha1hidden = _flag(rev, "sha1hidden")
    return RevisionRecord(
        revid=int(rev["revid"]),
        pageid=pageid,
        parentid=_int(rev.get("parentid")),
        timestamp=str(rev["timestamp"]),
        user=None if userhidden else rev.get("user"),
        userid=None if userhidden else _int(rev.get("userid")),
        comment=None if commenthidden else rev.get("comment"),
        minor=_flag(rev, "minor"),
        size=_int(rev.get("size")),
        sha1=None if sha1hidden else rev.get("sha1"),
        tags=[str(t) for t in rev.get("tags", [])],
        texthidden=_flag(rev, "texthidden"),
        userhidden=userhidden,
        commenthidden=commenthidden,
        sha1hidden=sha1hidden,
        suppressed=_flag(rev, "suppressed"),
        slots=revision_slots(rev),
    )


def page_record(page: dict[str, Any]) -> PageRecord:
    """A page as far as this response tells; unknown fields stay None."""
    return PageRecord(
        pageid=int(page["pageid"]),
        ns=int(page["ns"]),
        title=str(page["title"]),
        is_redirect=_flag(page, "redirect") if "lastrevid" in page else None,
        length=_int(page.get("length")),
        latest_revid=_int(page.get("lastrevid")),
        content_model=page.get("contentmodel"),
        touched=page.get("touched"),
    )


def pages_to_batch(pages: list[dict[str, Any]]) -> RevisionBatch:
    """A response's pages (each with a ``revisions`` list) as one batch for the store."""
    batch = RevisionBatch(pages=[], revisions=[])
    for page in pages:
        if "pageid" not in page or page.get("missing") or page.get("invalid"):
            continue
        record = page_record(page)
        batch.pages.append(record)
        batch.revisions.extend(revision_record(record.pageid, r) for r in page.get("revisions", []))
    return batch


def catalogue_pages(pages: list[dict[str, Any]]) -> list[PageRecord]:
    return [page_record(p) for p in pages if "pageid" in p and not p.get("missing")]
