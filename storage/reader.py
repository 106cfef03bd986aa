"""Reading a mirror from Python, e.g. from a notebook (docs/python-api.md)::

    import harvester

    with harvester.open_mirror("mirror") as m:
        for page in m.pages(ns=0, limit=10):
            print(page.title, page.revisions)
        for rev in m.revisions(titles=["Main Page"]):
            print(rev.revid, rev.user, len(rev.text or ""))

The mirror is opened read-only (SQLite's ``mode=ro``): nothing here can write
it, and a crawl or sync may run meanwhile. A thin layer over storage/query.py,
storage/selection.py and storage/search.py: texts are read only when asked for.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from . import files, query, search
from .errors import NotInMirrorError, StorageError, TextHiddenError
from .mirror import Mirror
from .query import PageRow
from .search import SearchHit
from .selection import Selection, parse_timestamp
from .stored import StoredRevision


class Revision(StoredRevision):
    """A stored revision: every field of StoredRevision, and its texts on demand."""

    _mirror: Mirror

    @classmethod
    def of(cls, mirror: Mirror, stored: StoredRevision) -> Revision:
        revision = cls(**vars(stored))
        revision._mirror = mirror
        return revision

    def __repr__(self) -> str:
        return f"<Revision {self.revid} of {self.title!r} {self.timestamp}>"

    @property
    def text(self) -> str | None:
        """The main slot's wikitext; None when it is hidden on the wiki or not stored."""
        return self.slot_text("main")

    def slot_text(self, role: str) -> str | None:
        """A slot's text; None when hidden, missing or not stored. A damaged text
        (its SHA-1 does not match) raises StorageError: it never reads as hidden."""
        try:
            return query.slot_text(self._mirror, self, role)
        except (TextHiddenError, NotInMirrorError):
            return None


class MirrorReader:
    """Read access to one mirror. Use open_mirror(); close() it (or use ``with``)."""

    def __init__(self, mirror: Mirror) -> None:
        self._mirror = mirror

    @property
    def db(self) -> sqlite_utils.Database:
        """The mirror's SQLite database (read-only), for sqlite-utils' own helpers."""
        return self._mirror.db

    def close(self) -> None:
        self._mirror.close()

    def __enter__(self) -> MirrorReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def pages(
        self,
        ns: int | Iterable[int] | None = None,
        prefix: str | None = None,
        redirects: bool | None = None,
        limit: int | None = None,
    ) -> Iterator[PageRow]:
        return query.list_pages(self._mirror, ns=ns, prefix=prefix, redirects=redirects,
                                limit=limit)  # fmt: skip

    def page(self, title: str) -> PageRow:
        """The page with this title, normalised as MediaWiki does ("main_page" works)."""
        return query.find_page(self._mirror, title)

    def revisions(
        self,
        *,
        namespaces: Iterable[int] | None = None,
        titles: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        since: str | date | None = None,
        until: str | date | None = None,
        current_only: bool = False,
    ) -> Iterator[Revision]:
        """Revisions by page (pageid), oldest first within a page, read lazily; narrowed as
        ``harvester export`` narrows them. ``since``/``until``: ISO 8601 text, a date or
        a datetime (UTC)."""
        selection = Selection(
            namespaces=None if namespaces is None else frozenset(namespaces),
            titles=tuple(titles), prefixes=tuple(prefixes), since=_iso(since),
            until=_iso(until), current_only=current_only)
        for stored in self._mirror.iter_revisions(selection):
            yield Revision.of(self._mirror, stored)

    def history(self, title: str, limit: int | None = None) -> Iterator[Revision]:
        """The page's revisions, newest first."""
        page = query.find_page(self._mirror, title)
        for stored in query.history(self._mirror, page.pageid, limit):
            yield Revision.of(self._mirror, stored)

    def revision(self, revid: int) -> Revision:
        return Revision.of(self._mirror, query.revision(self._mirror, revid))

    def text(self, title: str, at: str | None = None, slot: str = "main") -> str:
        """The latest text of a page, or the one current at ``at`` (ISO 8601).

        Unlike Revision.text this raises (StorageError) when there is no text.
        """
        page = query.find_page(self._mirror, title)
        if at is None:
            stored = query.latest_revision(self._mirror, page)
        else:
            stored = query.revision_at(self._mirror, page, parse_timestamp(at))
        return query.slot_text(self._mirror, stored, slot)

    def search(self, text: str, ns: int | Iterable[int] | None = None,
               limit: int = 20) -> list[SearchHit]:
        """An FTS5 query over titles and latest texts. The index is brought up to date by
        ``harvester search`` (this reader writes nothing): a stale one is an error."""
        behind = search.stale_pages(self._mirror)
        if behind:
            raise StorageError(
                f"the search index of {self._mirror.directory} is behind the mirror by "
                f"{behind:,} pages: run `harvester search` once to bring it up to date")
        return list(search.search(self._mirror, text, ns=ns, limit=limit))

    def files(self) -> Iterator[dict[str, Any]]:
        """Each file with its current version, its count of versions and their bytes."""
        return files.iter_files(self._mirror)

    def file_versions(self, title: str) -> list[dict[str, Any]]:
        """Every version of a file (``File:`` may be left out), newest first, with its
        ``state``: ``stored`` when its bytes are in the mirror."""
        return files.file_versions(self._mirror, query.file_name(self._mirror, title))

    def file_path(self, title: str, at: str | date | None = None) -> Path:
        """Where the bytes of a file's current version (or the one current ``at``) are:
        to open, stream or copy. StorageError when the mirror has none (hidden, skipped,
        or not a file)."""
        name = query.file_name(self._mirror, title)
        when = _iso(at)
        version = files.version_at(self._mirror, name,
                                   None if when is None else parse_timestamp(when))
        return files.version_bytes_path(self._mirror, version)

    def file_bytes(self, title: str, at: str | date | None = None) -> bytes:
        """The bytes of file_path(), read whole: for small files."""
        return self.file_path(title, at).read_bytes()

    def stats(self) -> dict[str, Any]:
        return query.mirror_stats(self._mirror)

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        """Any SQL query over the mirror (docs/schema.md), row by row as dicts. Texts
        are in reach: ``revision_text(revid [, role])`` returns one (NULL when hidden)."""
        cursor = self._mirror.db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def sql(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """query(), as a list."""
        return list(self.query(sql, params))


def _iso(value: str | date | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def open_mirror(directory: str | os.PathLike[str]) -> MirrorReader:
    """Open an existing mirror for reading only."""
    return MirrorReader(Mirror.open_read_only(Path(directory)))
