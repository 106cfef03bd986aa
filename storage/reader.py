"""A small Python API for reading a mirror, e.g. from a notebook::

    from storage.reader import open_mirror

    with open_mirror("mirror") as m:
        for page in m.pages(ns=0, limit=10):
            print(page.title, page.revisions)
        for rev in m.history("Main Page"):
            print(rev.revid, rev.user, len(rev.text or ""))

A thin layer over storage/query.py and storage/search.py: texts are loaded only
when ``rev.text`` is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from . import query, search
from .errors import StorageError
from .mirror import Mirror
from .query import PageRow
from .search import SearchHit
from .stored import StoredRevision


class Revision:
    """A stored revision; its metadata as attributes (see StoredRevision), texts on demand."""

    def __init__(self, mirror: Mirror, stored: StoredRevision) -> None:
        self._mirror = mirror
        self.stored = stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stored, name)

    def __repr__(self) -> str:
        return f"<Revision {self.stored.revid} of {self.stored.title!r} {self.stored.timestamp}>"

    @property
    def text(self) -> str | None:
        """The main slot's wikitext; None when it is hidden on the wiki or was not stored."""
        return self.slot_text("main")

    def slot_text(self, role: str) -> str | None:
        try:
            return query.slot_text(self._mirror, self.stored, role)
        except StorageError:
            return None


class MirrorReader:
    """Read access to one mirror. Use open_mirror(); close() it (or use ``with``)."""

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror

    def close(self) -> None:
        self.mirror.close()

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
        ns: int | None = None,
        prefix: str | None = None,
        redirects: bool | None = None,
        limit: int | None = None,
    ) -> Iterator[PageRow]:
        return query.list_pages(self.mirror, ns=ns, prefix=prefix, redirects=redirects,
                                limit=limit)  # fmt: skip

    def page(self, title: str) -> PageRow:
        """The page with this title, normalised as MediaWiki does ("main_page" works)."""
        return query.find_page(self.mirror, title)

    def history(self, title: str, limit: int | None = None) -> Iterator[Revision]:
        """The page's revisions, newest first."""
        page = query.find_page(self.mirror, title)
        for stored in query.history(self.mirror, page.pageid, limit):
            yield Revision(self.mirror, stored)

    def revision(self, revid: int) -> Revision:
        return Revision(self.mirror, query.revision(self.mirror, revid))

    def text(self, title: str, at: str | None = None, slot: str = "main") -> str:
        """The latest text of a page, or the one current at ``at`` (ISO 8601).

        Unlike Revision.text this raises (StorageError) when there is no text.
        """
        page = query.find_page(self.mirror, title)
        if at is None:
            stored = query.latest_revision(self.mirror, page)
        else:
            stored = query.revision_at(self.mirror, page, query.parse_timestamp(at))
        return query.slot_text(self.mirror, stored, slot)

    def search(self, text: str, ns: int | None = None, limit: int = 20) -> list[SearchHit]:
        """An FTS5 query over titles and latest texts (the index is refreshed first)."""
        search.refresh(self.mirror)
        return list(search.search(self.mirror, text, ns=ns, limit=limit))

    def stats(self) -> dict[str, Any]:
        return query.mirror_stats(self.mirror)

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        """Any SQL query over the mirror (docs/schema.md), row by row as dicts. Texts
        are in reach: ``revision_text(revid [, role])`` returns one (NULL when hidden)."""
        cursor = self.mirror.db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def sql(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """query(), as a list."""
        return list(self.query(sql, params))


def open_mirror(directory: str | os.PathLike[str]) -> MirrorReader:
    """Open an existing mirror for reading."""
    return MirrorReader(Mirror.open(Path(directory), create=False))
