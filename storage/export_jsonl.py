"""Export a mirror as JSON Lines: one object per revision.

Pages come by pageid, revisions oldest first within a page (timestamp, revid).
Fields hidden by revision deletion are omitted, not null, and listed under
"hidden", so a consumer can tell "hidden" from "empty". Everything streams from
one cursor; memory stays flat whatever the size of the mirror.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from .mirror import Mirror
from .selection import Selection
from .stored import StoredRevision, StoredSlot

# Often enough for a smooth progress bar, rarely enough to cost nothing.
PROGRESS_EVERY = 256


def iter_export_records(
    mirror: Mirror, selection: Selection | None = None
) -> Iterator[dict[str, Any]]:
    for rev in mirror.iter_revisions(selection):
        yield export_record(mirror, rev)


def write_jsonl(
    mirror: Mirror,
    out: TextIO,
    selection: Selection | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the export to ``out``; returns the number of revisions written.

    ``progress`` is called now and then with the number of revisions written
    since its last call.
    """
    count = pending = 0
    for record in iter_export_records(mirror, selection):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        count += 1
        pending += 1
        if progress is not None and pending >= PROGRESS_EVERY:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return count


def export_record(mirror: Mirror, rev: StoredRevision) -> dict[str, Any]:
    """One revision as an export object; key order is part of the format."""
    main = rev.slot("main")
    text_hidden = rev.texthidden or (main is not None and main.texthidden)
    record: dict[str, Any] = {
        "pageid": rev.pageid,
        "ns": rev.ns,
        "title": rev.title,
        "revid": rev.revid,
        "parentid": rev.parentid,
        "timestamp": rev.timestamp,
    }
    if not rev.userhidden:
        record["user"] = rev.user
        record["userid"] = rev.userid
    if not rev.commenthidden:
        record["comment"] = rev.comment
    record["minor"] = rev.minor
    if not rev.sha1hidden:
        record["sha1"] = rev.sha1
    if not text_hidden:
        record["text"] = _slot_text(mirror, main)
    record["model"] = main.content_model if main else None
    record["format"] = main.content_format if main else None
    record["size"] = rev.size
    record["tags"] = rev.tags
    others = [slot for slot in rev.slots if slot.role != "main"]
    if others:
        record["slots"] = {slot.role: _slot_record(mirror, rev, slot) for slot in others}
    hidden = [
        name
        for name, flag in (
            ("text", text_hidden),
            ("user", rev.userhidden),
            ("comment", rev.commenthidden),
            ("sha1", rev.sha1hidden),
        )
        if flag
    ]
    if hidden:
        record["hidden"] = hidden
    if rev.suppressed:
        record["suppressed"] = True
    return record


def _slot_record(mirror: Mirror, rev: StoredRevision, slot: StoredSlot) -> dict[str, Any]:
    record: dict[str, Any] = {"model": slot.content_model, "format": slot.content_format}
    if not rev.sha1hidden:
        record["sha1"] = slot.sha1
    record["size"] = slot.size
    if not (slot.texthidden or rev.texthidden):
        record["text"] = _slot_text(mirror, slot)
    return record


def _slot_text(mirror: Mirror, slot: StoredSlot | None) -> str | None:
    """The slot's text; None when it was missing on the wiki or never fetched."""
    if slot is None or slot.text_sha1 is None:
        return None
    return mirror.read_text(slot.text_sha1)
