"""Revisions as read back from the mirror (the output side of the store).

Texts are not loaded here: a StoredSlot names its text by sha1 and the reader
fetches it only if it wants it (Mirror.read_text), so iterating a history
costs no decompression.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Column lists of the reading query in Mirror.iter_revisions; the order matters
# to stored_revision() below.
REVISION_COLUMNS = (
    "r.revid", "r.pageid", "p.ns", "p.title", "r.parentid", "r.timestamp", "r.user",
    "r.userid", "r.comment", "r.minor", "r.size", "r.sha1", "r.tags", "r.texthidden",
    "r.userhidden", "r.commenthidden", "r.sha1hidden", "r.suppressed",
)  # fmt: skip
# The slots of a revision, read with it: the `slots` view's columns (storage/schema.sql)
# for one `history` row of revision_data and the `sd` rows of slot_data SLOT_JOIN adds.
# The view itself, as the right side of a LEFT JOIN, would be computed whole first.
SLOT_JOIN = "LEFT JOIN slot_data sd ON sd.revid = history.revid"
_TEXT_SHA1 = "(SELECT lower(hex(t.sha1)) FROM text_data t WHERE t.id = {})"
SLOT_COLUMNS = (
    "CASE WHEN history.kind IS NULL THEN sd.role ELSE 'main' END",
    "(SELECT k.content_model FROM content_kinds k WHERE k.id = coalesce(history.kind, sd.kind))",
    "(SELECT k.content_format FROM content_kinds k WHERE k.id = coalesce(history.kind, sd.kind))",
    "CASE WHEN history.kind IS NULL THEN sd.size ELSE history.size END",
    # a folded slot's sha1 is the revision's (the view has made '' its text's)
    "CASE WHEN history.kind IS NOT NULL THEN r.sha1 WHEN sd.sha1 = '' THEN"
    f" {_TEXT_SHA1.format('sd.text_id')} ELSE sd.sha1 END",
    _TEXT_SHA1.format("coalesce(history.text_id, sd.text_id)"),
    "CASE WHEN history.kind IS NULL THEN sd.texthidden ELSE history.texthidden END",
    "coalesce(sd.missing, 0)",
)  # fmt: skip


@dataclass
class StoredSlot:
    role: str
    content_model: str | None
    content_format: str | None
    size: int | None
    sha1: str | None
    text_sha1: str | None  # None when the text is hidden, missing or was not fetched
    texthidden: bool
    missing: bool


@dataclass
class StoredRevision:
    revid: int
    pageid: int
    ns: int | None  # None only if the page row is missing
    title: str | None
    parentid: int | None
    timestamp: str
    user: str | None
    userid: int | None
    comment: str | None
    minor: bool
    size: int | None
    sha1: str | None
    tags: list[str]
    texthidden: bool
    userhidden: bool
    commenthidden: bool
    sha1hidden: bool
    suppressed: bool
    slots: list[StoredSlot] = field(default_factory=list)

    def slot(self, role: str) -> StoredSlot | None:
        return next((s for s in self.slots if s.role == role), None)


def stored_revision(rev: tuple[Any, ...], slots: list[tuple[Any, ...]]) -> StoredRevision:
    """Build a StoredRevision from one row of REVISION_COLUMNS and its SLOT_COLUMNS rows."""
    (revid, pageid, ns, title, parentid, timestamp, user, userid, comment, minor, size, sha1,
     tags, texthidden, userhidden, commenthidden, sha1hidden, suppressed) = rev  # fmt: skip
    return StoredRevision(
        revid=revid,
        pageid=pageid,
        ns=ns,
        title=title,
        parentid=parentid,
        timestamp=timestamp,
        user=user,
        userid=userid,
        comment=comment,
        minor=bool(minor),
        size=size,
        sha1=sha1,
        tags=json.loads(tags) if tags else [],
        texthidden=bool(texthidden),
        userhidden=bool(userhidden),
        commenthidden=bool(commenthidden),
        sha1hidden=bool(sha1hidden),
        suppressed=bool(suppressed),
        # A revision without slots comes out of the LEFT JOIN as one all-NULL row.
        slots=[
            StoredSlot(
                role=s[0],
                content_model=s[1],
                content_format=s[2],
                size=s[3],
                sha1=s[4],
                text_sha1=s[5],
                texthidden=bool(s[6]),
                missing=bool(s[7]),
            )
            for s in slots
            if s[0] is not None
        ],
    )
