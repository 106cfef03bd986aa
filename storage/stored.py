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
SLOT_COLUMNS = (
    "s.role", "s.content_model", "s.content_format", "s.size", "s.sha1", "s.text_sha1",
    "s.texthidden", "s.missing",
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
