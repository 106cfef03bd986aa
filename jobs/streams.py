"""A crawl as a set of named, independently resumable streams.

The plan is made once, on the first run, and stored as checkpoint rows; a
resumed crawl runs the streams that are not done, from their saved tokens,
whatever concurrency it is given. Stream names:

- ``crawl/pages/ns=N``: the page catalogue of one namespace;
- ``crawl/revisions/NNNN``: ``list=allrevisions`` over one time slice;
- ``crawl/current/ns=N``: latest revision of each page (``--current-only``);
- ``crawl/history/ns=N``: per-page histories, for wikis without allrevisions.

An idle worker splits a busy stream in two; the later half is a stream of its
own, named after the first with a number: ``crawl/pages/ns=0/0004``
(jobs/balance.py, jobs/title_ranges.py, jobs/histories.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

PAGES = "crawl/pages/"
REVISIONS = "crawl/revisions/"
CURRENT = "crawl/current/"
HISTORY = "crawl/history/"
MIN_SLICE = timedelta(hours=1)


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def format_ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> int:
    """An API timestamp as seconds since 1970 (ValueError when it is not one)."""
    return int(parse_ts(text).timestamp())


def iso(seconds: int) -> str:
    return format_ts(datetime.fromtimestamp(seconds, UTC))


# Each time slice ends in a partial batch, one request more than the floor: keep
# the slices to at most this share of the requests the walk needs anyway.
SLICE_OVERHEAD = 0.05
# Without statistics, how many slices a worker may make in all (by splitting).
SLICES_PER_WORKER = 4


def slice_budget(workers: int, revisions: int | None, per_request: int) -> int:
    """How many time slices a walk may have in all, splits included: few enough that
    their partial last batches add at most 5% to its requests (``revisions`` from
    siteinfo), and never fewer than one."""
    if not isinstance(revisions, int) or revisions <= 0:
        return workers * SLICES_PER_WORKER
    return 1 + int(revisions / per_request * SLICE_OVERHEAD)


def slice_count(workers: int, revisions: int | None, per_request: int) -> int:
    """The slices a walk starts with: one a worker, within the budget; splitting
    the busiest slice (jobs/balance.py) does the rest."""
    return max(1, min(workers, slice_budget(workers, revisions, per_request)))


def time_slices(
    first: str, until: str, count: int, *, open_start: bool = True
) -> list[tuple[str | None, str | None]]:
    """Split [first, until] into ``count`` disjoint inclusive ranges; the last is open-ended.

    Timestamps have one-second resolution and the API's start/end bounds are
    inclusive, so each range ends one second before the next begins: no
    revision is fetched twice. With ``open_start`` the first range starts open
    too, so nothing older than ``first`` (say, imported while the crawl runs) is
    skipped; without, it starts at ``first`` (a sync catching up from a mark).
    """
    floor = None if open_start else first
    start, end = parse_ts(first), parse_ts(until)
    span = end - start
    count = max(1, min(count, int(span / MIN_SLICE)))
    if count == 1:
        return [(floor, None)]
    bounds = [start + span * i / count for i in range(count)]
    bounds = [b.replace(microsecond=0) for b in bounds]
    slices: list[tuple[str | None, str | None]] = []
    for i, lower in enumerate(bounds):
        low = floor if i == 0 else format_ts(lower)
        high = None if i == count - 1 else format_ts(bounds[i + 1] - timedelta(seconds=1))
        slices.append((low, high))
    return slices


def revision_streams(
    namespaces: list[int] | None, slices: list[tuple[str | None, str | None]],
    prefix: str = REVISIONS,
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{prefix}{i:04d}", {"spec": {"namespaces": namespaces, "start": lo, "end": hi}})
        for i, (lo, hi) in enumerate(slices)
    ]


def namespace_streams(prefix: str, namespaces: list[int]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{prefix}ns={ns}", {"spec": {"ns": ns}}) for ns in namespaces]
