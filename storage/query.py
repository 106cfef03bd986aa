"""Read queries over a mirror: pages, histories, one revision's text, statistics.

Every query here is driven by an index (see docs/schema.md for the plans):
a title lookup is one probe of pages(ns, title), a history walks
revisions(pageid, timestamp, revid), and a text read decompresses one short
delta chain, so reading any revision of any mirror takes milliseconds.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import InvalidQueryError, NotInMirrorError, TextHiddenError
from .files import FILE_NAMESPACE, file_counts
from .mirror import DB_NAME, Mirror
from .selection import namespace_list
from .stored import REVISION_COLUMNS, SLOT_COLUMNS, SLOT_JOIN, StoredRevision, stored_revision
from .titles import TitleParser


@dataclass
class PageRow:
    pageid: int
    ns: int
    title: str
    is_redirect: bool | None
    length: int | None  # bytes of the latest text, as the wiki reported it
    revisions: int  # stored revisions
    latest_timestamp: str | None


_PAGE_COLUMNS = """p.pageid, p.ns, p.title, p.is_redirect, p.length,
    (SELECT count(*) FROM revision_data r WHERE r.pageid = p.pageid),
    (SELECT strftime('%Y-%m-%dT%H:%M:%SZ', max(timestamp), 'unixepoch') FROM revision_data r
     WHERE r.pageid = p.pageid)"""


def _page_row(row: tuple[Any, ...]) -> PageRow:
    pageid, ns, title, is_redirect, length, revisions, latest = row
    redirect = None if is_redirect is None else bool(is_redirect)
    return PageRow(pageid, ns, title, redirect, length, int(revisions), latest)


def title_parser(mirror: Mirror) -> TitleParser:
    return TitleParser.from_db(mirror.db.conn)


def file_name(mirror: Mirror, title: str) -> str:
    """A file's name as the wiki keys it (underscores), from a title with or without the
    File: namespace; InvalidQueryError when the title is of another namespace."""
    ns, full = title_parser(mirror).parse(title, default_ns=FILE_NAMESPACE)
    if ns != FILE_NAMESPACE:
        raise InvalidQueryError(f"{title!r} is not a file's title")
    return full.split(":", 1)[1].replace(" ", "_")


def find_page(mirror: Mirror, title: str) -> PageRow:
    """The page with this title (normalised as MediaWiki does), or NotInMirrorError."""
    ns, full = title_parser(mirror).parse(title)
    pageid = mirror.page_under_title(ns, full)
    if pageid is None:
        # Only the first letter is case-insensitive on most wikis; a near miss
        # is worth naming (this scans the namespace, but only on failure).
        near = mirror.db.conn.execute(
            "SELECT title FROM pages WHERE ns = ? AND title = ? COLLATE NOCASE LIMIT 1", (ns, full)
        ).fetchone()
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise NotInMirrorError(f"no page {full!r} in the mirror{hint}")
    row = mirror.db.conn.execute(f"SELECT {_PAGE_COLUMNS} FROM pages p WHERE p.pageid = ?",
                                 (pageid,)).fetchone()
    return _page_row(row)


def list_pages(
    mirror: Mirror,
    *,
    ns: int | Iterable[int] | None = None,
    prefix: str | None = None,
    redirects: bool | None = None,
    limit: int | None = None,
) -> Iterator[PageRow]:
    """Pages by namespace and title; ``ns``: one namespace or several; ``prefix`` may
    name a namespace ("Talk:A")."""
    where: list[str] = []
    params: list[Any] = []
    wanted = namespace_list(ns)
    if prefix:
        default = wanted[0] if wanted and len(wanted) == 1 else 0
        found_ns, start = title_parser(mirror).parse_prefix(prefix, default)
        # A range, not LIKE or substr(): it walks the (ns, title) index.
        where.append("p.ns = ? AND p.title >= ? AND p.title < ?")
        params += [found_ns, start, start + "\U0010ffff"]
    elif wanted is not None:
        where.append(f"p.ns IN ({', '.join('?' * len(wanted))})")
        params += wanted
    if redirects is not None:
        where.append("coalesce(p.is_redirect, 0) = ?")
        params.append(int(redirects))
    sql = f"SELECT {_PAGE_COLUMNS} FROM pages p"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY p.ns, p.title"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for row in mirror.db.conn.execute(sql, params):
        yield _page_row(row)


# -- revisions ------------------------------------------------------------------


def _revisions(mirror: Mirror, inner: str, params: list[Any]) -> Iterator[StoredRevision]:
    """Revisions picked by ``inner`` (a SELECT of revisions rows, ordered), with their slots."""
    columns = ", ".join(REVISION_COLUMNS + SLOT_COLUMNS)
    cursor = mirror.db.conn.execute(
        f"SELECT {columns} FROM ({inner}) r LEFT JOIN pages p ON p.pageid = r.pageid"
        f" JOIN revision_data history ON history.revid = r.revid {SLOT_JOIN}"
        " ORDER BY r.timestamp DESC, r.revid DESC, sd.role",
        params,
    )
    n_rev = len(REVISION_COLUMNS)
    for _, rows in itertools.groupby(cursor, key=lambda row: row[0]):
        first, *rest = rows
        yield stored_revision(first[:n_rev], [first[n_rev:], *(r[n_rev:] for r in rest)])


def history(mirror: Mirror, pageid: int, limit: int | None = None) -> Iterator[StoredRevision]:
    """A page's stored revisions, newest first (timestamp, then revid)."""
    inner = "SELECT * FROM revisions WHERE pageid = ? ORDER BY timestamp DESC, revid DESC"
    params: list[Any] = [pageid]
    if limit is not None:
        inner += " LIMIT ?"
        params.append(limit)
    return _revisions(mirror, inner, params)


def revision(mirror: Mirror, revid: int) -> StoredRevision:
    found = next(_revisions(mirror, "SELECT * FROM revisions WHERE revid = ?", [revid]), None)
    if found is None:
        raise NotInMirrorError(f"no revision {revid} in the mirror")
    return found


def latest_revision(mirror: Mirror, page: PageRow) -> StoredRevision:
    found = next(history(mirror, page.pageid, 1), None)
    if found is None:
        raise NotInMirrorError(f"the mirror has no revision of {page.title!r}")
    return found


def revision_at(mirror: Mirror, page: PageRow, timestamp: str) -> StoredRevision:
    """The revision that was current at ``timestamp`` (normalised by parse_timestamp)."""
    inner = (
        "SELECT * FROM revisions WHERE pageid = ? AND timestamp <= ?"
        " ORDER BY timestamp DESC, revid DESC LIMIT 1"
    )
    found = next(_revisions(mirror, inner, [page.pageid, timestamp]), None)
    if found is None:
        raise NotInMirrorError(f"{page.title!r} did not exist yet at {timestamp} in the mirror")
    return found


def slot_text(mirror: Mirror, rev: StoredRevision, role: str = "main") -> str:
    """The text of a revision's slot; TextHiddenError or NotInMirrorError when there is none."""
    slot = rev.slot(role)
    where = f"revision {rev.revid} of {rev.title!r}"
    if slot is None:
        roles = ", ".join(s.role for s in rev.slots) or "none"
        raise NotInMirrorError(f"{where} has no slot {role!r} (slots: {roles})")
    if rev.texthidden or slot.texthidden:
        raise TextHiddenError(f"the text of {where} is hidden on the wiki; the mirror has no copy")
    if slot.missing:
        raise NotInMirrorError(f"the text of {where} is missing on the wiki itself")
    if slot.text_sha1 is None:
        raise NotInMirrorError(f"the text of {where} was not fetched into the mirror")
    return mirror.read_text(slot.text_sha1)


# -- statistics -----------------------------------------------------------------


# Distinct author names with a stored revision: one pass over the revisions.
_EDITORS = """SELECT count(DISTINCT a.name) FROM revision_data r
    JOIN actors a ON a.id = r.actor"""


def mirror_stats(mirror: Mirror) -> dict[str, Any]:
    """The wiki, counts, sizes and the last run, as one JSON-ready dict (`harvester stats`)."""
    def one(sql: str) -> int:
        return int(mirror.db.conn.execute(sql).fetchone()[0] or 0)

    namespaces = [
        {"ns": ns, "name": name, "pages": pages, "revisions": revisions}
        for ns, name, pages, revisions in mirror.db.conn.execute(
            """SELECT p.ns, n.name, count(*),
                      sum((SELECT count(*) FROM revisions r WHERE r.pageid = p.pageid))
               FROM pages p LEFT JOIN namespaces n ON n.id = p.ns
               GROUP BY p.ns ORDER BY p.ns"""
        )
    ]
    # Every revision's texts in full, as an XML dump would hold them, versus the
    # distinct texts, versus what the compressed store takes.
    raw = one("SELECT sum(size * refs) FROM text_data")
    distinct = one("SELECT sum(size) FROM text_data")
    stored = one("SELECT sum(length(data)) FROM text_packs")
    files = sum(
        path.stat().st_size
        for path in (mirror.directory / name for name in (DB_NAME, DB_NAME + "-wal"))
        if path.exists()
    )
    return {
        "mirror": os.fspath(mirror.directory),
        "pages": one("SELECT count(*) FROM pages"),
        "revisions": one("SELECT count(*) FROM revisions"),
        "editors": one(_EDITORS),
        "namespaces": namespaces,
        "texts": one("SELECT count(*) FROM text_data"),
        "text_bytes": raw,
        "distinct_text_bytes": distinct,
        "stored_text_bytes": stored,
        "file_bytes": files,
        "compression_ratio": round(raw / stored, 1) if stored else None,
        "files": file_counts(mirror),
        "last_run": _last_run(mirror),
        "wiki": _wiki(mirror),
    }


def _wiki(mirror: Mirror) -> dict[str, Any]:
    """Which wiki the mirror copies: its name, database name and API (None: not known,
    as for a dump imported without --wiki)."""
    general = mirror.get_siteinfo("general") or {}
    return {"name": general.get("sitename"), "database": general.get("wikiid"),
            "api": mirror.get_meta("api_url")}


def _last_run(mirror: Mirror) -> dict[str, Any] | None:
    row = mirror.db.conn.execute(
        "SELECT command, started, finished, status FROM runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("command", "started", "finished", "status"), row, strict=True))


# -- the catalogue, for the crawl and the sync ---------------------------------------------


def namespaces_with_pages(mirror: Mirror) -> list[int]:
    """The namespaces the page catalogue has pages in."""
    return [int(row[0]) for row in mirror.db.execute("SELECT DISTINCT ns FROM pages ORDER BY ns")]


def stored_namespaces(mirror: Mirror) -> list[int]:
    """The wiki's namespaces (those that hold pages: not Special or Media)."""
    return [int(row[0]) for row in mirror.db.execute("SELECT id FROM namespaces WHERE id >= 0")]


def next_pageid(mirror: Mirror, ns: int, after: int, upto: int | None = None) -> int | None:
    """The smallest pageid above ``after`` (and at most ``upto``) in a namespace, or None."""
    row = mirror.db.execute(
        "SELECT min(pageid) FROM pages WHERE ns = ? AND pageid > ? AND pageid <= ?",
        [ns, after, _NO_LIMIT if upto is None else upto]).fetchone()
    return None if row[0] is None else int(row[0])


def pages_between(mirror: Mirror, ns: int, after: int, upto: int | None) -> int:
    """How many pages of a namespace have a pageid in (after, upto]."""
    row = mirror.db.execute(
        "SELECT count(*) FROM pages WHERE ns = ? AND pageid > ? AND pageid <= ?",
        [ns, after, _NO_LIMIT if upto is None else upto]).fetchone()
    return int(row[0])


def nth_pageid(mirror: Mirror, ns: int, after: int, n: int) -> int | None:
    """The ``n``-th pageid (from 0) above ``after`` in a namespace, or None."""
    row = mirror.db.execute(
        "SELECT pageid FROM pages WHERE ns = ? AND pageid > ? ORDER BY pageid LIMIT 1 OFFSET ?",
        [ns, after, n]).fetchone()
    return None if row is None else int(row[0])


_NO_LIMIT = 2**63 - 1


def pageid_of(mirror: Mirror, title: str) -> int | None:
    """The pageid of the page stored under this exact title, or None."""
    row = mirror.db.execute("SELECT pageid FROM pages WHERE title = ?", [title]).fetchone()
    return None if row is None else int(row[0])


@dataclass
class PageState:
    title: str
    latest_revid: int | None  # as the catalogue says
    newest_stored: int | None  # the highest revid stored for it


def page_state(mirror: Mirror, pageid: int) -> PageState | None:
    row = mirror.db.execute(
        "SELECT title, latest_revid, (SELECT max(revid) FROM revision_data WHERE pageid = ?1)"
        " FROM pages WHERE pageid = ?1", [pageid]).fetchone()
    return None if row is None else PageState(*row)


def pages_outside(mirror: Mirror, live: set[int], namespaces: list[int] | None) -> list[int]:
    """The stored pages (of these namespaces, or all) whose pageid is not in ``live``."""
    rows = mirror.db.execute("SELECT pageid, ns FROM pages")
    return [int(pageid) for pageid, ns in rows
            if pageid not in live and (namespaces is None or ns in namespaces)]
