"""Plain records handed to the store by the crawler.

They mirror what the MediaWiki Action API returns (formatversion=2), already
decoded; the store never sees raw API JSON for revisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PageRecord:
    """A page as far as it is known; None means "unknown", never "empty"."""

    pageid: int
    ns: int
    title: str
    is_redirect: bool | None = None
    length: int | None = None
    latest_revid: int | None = None
    content_model: str | None = None
    touched: str | None = None


@dataclass
class SlotRecord:
    """One content slot of a revision (MCR); "main" holds the wikitext."""

    role: str
    content_model: str | None = None
    content_format: str | None = None
    size: int | None = None  # as the API gives it
    sha1: str | None = None  # slot sha1 as the API gives it (40 hex), or None
    text: str | None = None  # None when hidden or missing
    texthidden: bool = False
    missing: bool = False
    # The text as UTF-8 bytes, in place of ``text``, from a reader that has them
    # (a dump's): the store needs bytes, and sending a str to the storing
    # process would encode and decode it once more.
    utf8: bytes | None = None

    @property
    def has_text(self) -> bool:
        return self.text is not None or self.utf8 is not None

    def text_bytes(self) -> bytes | None:
        return self.utf8 if self.utf8 is not None else (
            None if self.text is None else self.text.encode("utf-8"))


@dataclass
class RevisionRecord:
    """One revision with its metadata, deletion flags and slots."""

    revid: int
    pageid: int
    parentid: int | None
    timestamp: str  # ISO 8601 as the API gives it, e.g. "2026-11-22T19:07:58Z"
    user: str | None
    userid: int | None
    comment: str | None
    minor: bool
    size: int | None
    sha1: str | None  # revision sha1, 40 hex, as the API gives it
    tags: list[str] = field(default_factory=list)
    texthidden: bool = False
    userhidden: bool = False
    commenthidden: bool = False
    sha1hidden: bool = False
    suppressed: bool = False
    slots: list[SlotRecord] = field(default_factory=list)


@dataclass
class RevisionBatch:
    """What one crawl step stores atomically."""

    pages: list[PageRecord]  # pages touched by this batch; often only pageid/ns/title known
    revisions: list[RevisionRecord]


@dataclass
class Checkpoint:
    """Resumable progress of one unit of crawl work."""

    name: str
    state: dict[str, Any] | None
    done: bool
    items: int


@dataclass
class FileVersionRecord:
    """One version of a file as the wiki's imageinfo gives it; None means unknown or
    hidden. ``name`` is the file's name as the wiki keys it: no namespace, underscores
    for spaces (MediaWiki's ``img_name``)."""

    name: str
    timestamp: str  # when this version was uploaded, ISO 8601
    archivename: str | None  # the wiki's name for an old version; None for the current one
    user: str | None
    userid: int | None
    comment: str | None
    size: int | None
    width: int | None
    height: int | None
    mime: str | None
    mediatype: str | None
    sha1: str | None  # 40 hex, of the file's bytes
    url: str | None
    filehidden: bool = False
    userhidden: bool = False
    commenthidden: bool = False
    suppressed: bool = False
    # The file's own licence and credit as the wiki's extended metadata gives them
    # (JSON: LicenseShortName, LicenseUrl, Artist, Credit, ...), when it has them.
    extmetadata: str | None = None
