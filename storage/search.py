"""Full-text search (SQLite FTS5) over the title and latest text of each page.

The index is kept up to date lazily, by the search itself: refresh() compares
each page's latest stored revision (and title) with what ``search_indexed``
says was indexed, and re-indexes only the pages that changed. Crawls never pay
for the index, searches are never stale, and a mirror nobody searches never
holds the extra copy of the latest texts that an FTS5 table keeps.

A page whose latest text is hidden on the wiki (or not stored) is indexed by
its title alone: the search must not fall back to an older text that the wiki
no longer shows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import InvalidQueryError, StorageError
from .mirror import Mirror
from .selection import namespace_list

# Pages re-indexed per transaction: a crawl writing at the same time waits for
# one chunk at most, never for a whole first build.
CHUNK = 500

# The pages whose index entry is missing or stale, with what to index now.
_STALE = """
    SELECT now.pageid, now.title, now.revid, now.text_sha1 FROM (
        SELECT p.pageid, p.title, r.revid,
            (SELECT s.text_sha1 FROM slots s WHERE s.revid = r.revid AND s.role = 'main'
             AND s.texthidden = 0 AND r.texthidden = 0) AS text_sha1
        FROM pages p
        LEFT JOIN revisions r ON r.revid = (
            SELECT r2.revid FROM revision_data r2 WHERE r2.pageid = p.pageid
            ORDER BY r2.timestamp DESC, r2.revid DESC LIMIT 1)
    ) now
    LEFT JOIN search_indexed i ON i.pageid = now.pageid
    WHERE i.pageid IS NULL OR i.revid IS NOT now.revid OR i.title IS NOT now.title
        OR i.text_sha1 IS NOT now.text_sha1
"""


@dataclass
class SearchHit:
    pageid: int
    ns: int
    title: str
    revid: int | None
    snippet: str  # matches between the caller's markers; newlines become spaces
    score: float  # bm25: lower is better


# Pages indexed that the mirror no longer has.
_GONE = "SELECT pageid FROM search_indexed WHERE pageid NOT IN (SELECT pageid FROM pages)"


def stale_pages(mirror: Mirror) -> int:
    """How many pages the index is behind on (new, changed or deleted since)."""
    conn = mirror.db.conn
    return len(conn.execute(_STALE).fetchall()) + len(conn.execute(_GONE).fetchall())


def refresh(mirror: Mirror) -> int:
    """Bring the index up to date; returns how many pages were (re-)indexed or dropped."""
    conn = mirror.db.conn
    try:
        stale = conn.execute(_STALE).fetchall()
        gone = [row[0] for row in conn.execute(_GONE)]
        for start in range(0, len(gone), CHUNK):
            with _immediate(conn):
                for pageid in gone[start : start + CHUNK]:
                    _unindex(conn, pageid)
        for start in range(0, len(stale), CHUNK):
            with _immediate(conn):
                for pageid, title, revid, sha1 in stale[start : start + CHUNK]:
                    text = "" if sha1 is None else mirror.read_text(sha1)
                    _unindex(conn, pageid)
                    conn.execute(
                        "INSERT INTO search_index (rowid, title, text) VALUES (?, ?, ?)",
                        (pageid, title, text),
                    )
                    conn.execute(
                        "INSERT INTO search_indexed (pageid, revid, title, text_sha1)"
                        " VALUES (?, ?, ?, ?)",
                        (pageid, revid, title, sha1),
                    )
    except sqlite3.OperationalError as exc:
        # A read-only mirror (or disk) cannot take the index update.
        raise StorageError(f"cannot update the search index of {mirror.directory}: {exc}") from None
    return len(stale) + len(gone)


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE: a deferred transaction that reads, then writes, fails at once
    # instead of waiting when a crawl commits in between.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _unindex(conn: sqlite3.Connection, pageid: int) -> None:
    conn.execute("DELETE FROM search_index WHERE rowid = ?", (pageid,))
    conn.execute("DELETE FROM search_indexed WHERE pageid = ?", (pageid,))


def search(
    mirror: Mirror,
    query: str,
    *,
    ns: int | Iterable[int] | None = None,
    limit: int = 20,
    marks: tuple[str, str] = ("«", "»"),
) -> Iterator[SearchHit]:
    """Pages matching an FTS5 query, best first (a title match weighs ten text matches).

    The index must be current: call refresh() first.
    """
    if not query.strip():
        raise InvalidQueryError("the search query is empty")
    sql = """
        SELECT p.pageid, p.ns, p.title, i.revid,
               snippet(search_index, 1, ?, ?, '…', 16), bm25(search_index, 10.0, 1.0) AS score
        FROM search_index
        JOIN pages p ON p.pageid = search_index.rowid
        LEFT JOIN search_indexed i ON i.pageid = p.pageid
        WHERE search_index MATCH ?"""
    params: list[object] = [marks[0], marks[1], query]
    wanted = namespace_list(ns)
    if wanted is not None:
        sql += f" AND p.ns IN ({', '.join('?' * len(wanted))})"
        params += wanted
    sql += " ORDER BY score LIMIT ?"
    params.append(limit)
    try:
        rows = mirror.db.conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        raise InvalidQueryError(
            f"bad search query {query!r} ({exc}); put words with punctuation"
            ' in double quotes, e.g. \'"Talk:Main Page"\''
        ) from None
    for pageid, page_ns, title, revid, snippet, score in rows:
        yield SearchHit(pageid, page_ns, title, revid, " ".join(snippet.split()), score)
