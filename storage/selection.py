"""Which revisions an export (or a reader) takes: one declaration for every format.

A :class:`Selection` narrows by namespace, by page (exact titles and title
prefixes, as MediaWiki normalises them), by time, and to each page's current
revision. It turns itself into the SQL of :meth:`Mirror.iter_revisions` and
:meth:`Mirror.count_revisions`, so that the count a progress bar shows and the
rows written always agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidQueryError, NotInMirrorError
from .titles import TitleParser


@dataclass(frozen=True)
class Selection:
    namespaces: frozenset[int] | None = None
    titles: tuple[str, ...] = ()  # pages by title
    prefixes: tuple[str, ...] = ()  # pages whose title starts so ("Talk:A" works)
    since: str | None = None  # revisions saved at or after (ISO 8601, UTC)
    until: str | None = None  # ... and before
    # each page's newest revision before ``until``, if at or after ``since``
    current_only: bool = False

    @property
    def pages_narrowed(self) -> bool:
        return bool(self.titles or self.prefixes)


def namespace_list(ns: int | Iterable[int] | None) -> list[int] | None:
    """One namespace or several, as a sorted list (None: every namespace)."""
    if ns is None:
        return None
    return [ns] if isinstance(ns, int) else sorted(set(ns))


@dataclass(frozen=True)
class SelectionSql:
    """A selection resolved against one mirror: the FROM, WHERE and ORDER BY of the query."""

    source: str
    where: str
    order: str
    params: list[Any]


def parse_timestamp(text: str) -> str:
    """A timestamp in the mirror's format (``2024-01-31T12:00:00Z``) from ISO 8601 input.

    A date alone means its midnight; a time without a zone means UTC, the
    wiki's timestamps being UTC.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidQueryError(
            f"{text!r} is not a timestamp (expected e.g. 2024-01-31 or 2024-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(timestamp: str, what: str) -> int:
    """Seconds since 1970 of a time given on the command line (as parse_timestamp reads it)."""
    try:
        normal = parse_timestamp(timestamp)
    except InvalidQueryError:
        raise InvalidQueryError(f"{what} takes a time like 2024-01-31 or "
                                f"2024-01-31T12:00:00Z, not {timestamp!r}") from None
    return int(datetime.strptime(normal, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def resolve(selection: Selection, titles: TitleParser,
            find: Callable[[int, str], int | None]) -> SelectionSql:
    """The SQL for ``selection``; ``find(ns, title)``: the page under a title, or None."""
    params: list[Any] = []
    conditions: list[str] = []
    if selection.namespaces is not None:
        conditions.append(f"p.ns IN ({', '.join('?' * len(selection.namespaces))})")
        params += sorted(selection.namespaces)
    if selection.pages_narrowed:
        conditions.append(_page_condition(selection, titles, find, params))
    since = epoch(selection.since, "--since") if selection.since else None
    until = epoch(selection.until, "--until") if selection.until else None
    if selection.current_only:
        newest = "SELECT r2.revid FROM revision_data r2 WHERE r2.pageid = p.pageid"
        newest_params: list[Any] = []
        if until is not None:
            newest += " AND r2.timestamp < ?"
            newest_params.append(until)
        # Driven by pages, one index probe each, instead of by every revision.
        source = (f"pages p JOIN revision_data history ON history.revid = ({newest}"
                  " ORDER BY r2.timestamp DESC, r2.revid DESC LIMIT 1)")
        params = newest_params + params
        order = "p.pageid"
    else:
        # In the history index's order: the view's ISO timestamp is not indexed.
        source = "revision_data history LEFT JOIN pages p ON p.pageid = history.pageid"
        order = "history.pageid, history.timestamp, history.revid"
        if until is not None:
            conditions.append("history.timestamp < ?")
            params.append(until)
    if since is not None:
        conditions.append("history.timestamp >= ?")
        params.append(since)
    where = " AND ".join(conditions)
    return SelectionSql(source, f"WHERE {where}" if where else "", order, params)


def _page_condition(selection: Selection, titles: TitleParser,
                    find: Callable[[int, str], int | None], params: list[Any]) -> str:
    pageids = []
    for title in selection.titles:
        ns, full = titles.parse(title)
        pageid = find(ns, full)
        if pageid is None:
            raise NotInMirrorError(f"no page {full!r} in the mirror")
        pageids.append(pageid)
    alternatives = ["p.pageid IN (SELECT value FROM json_each(?))"]
    params.append(json.dumps(pageids))
    for prefix in selection.prefixes:
        ns, start = titles.parse_prefix(prefix)
        # A range, not LIKE or substr(): it walks the (ns, title) index.
        alternatives.append("(p.ns = ? AND p.title >= ? AND p.title < ?)")
        params += [ns, start, start + "\U0010ffff"]
    return "(" + " OR ".join(alternatives) + ")"
