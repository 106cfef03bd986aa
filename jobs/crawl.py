"""``harvester crawl``: copy every revision of a wiki into a mirror, resumably.

Each API response is written to the mirror together with the continuation
token that follows it, in one transaction. Killed at any instant, a crawl run
again picks up each stream from its last committed token: nothing is lost,
nothing is fetched twice into the store.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from harvester.auth import Identity
from harvester.budget import PoliteBudget, is_wikimedia_host
from harvester.client import ApiClient, open_client
from harvester.config import Settings
from harvester.discovery import discover_api
from harvester.errors import ConfigError
from harvester.walkers import (
    fetch_siteinfo_and_group,
    group_members,
    has_allrevisions,
    revision_timestamp,
)
from jobs import site_policy, streams
from jobs.balance import Slice, SliceBoard, run_workers
from jobs.connection import authenticate, budget_for, check_etiquette, client_settings
from jobs.files import FilesSummary, crawl_files
from jobs.histories import PageRange, PageRangeBoard
from jobs.outcome import run_status
from jobs.progress import Progress
from jobs.title_ranges import TitleBoard, TitleRange
from jobs.writer import SerialWriter
from storage import query
from storage.lock import MirrorLock
from storage.mirror import Mirror, recorded_api_url

log = logging.getLogger("harvester.crawl")


@dataclass
class CrawlSummary:
    api_url: str
    pages: int
    revisions: int
    new_revisions: int
    requests: int
    seconds: float
    identity: str
    mode: str
    files: FilesSummary | None = None  # with --files

    def describe(self) -> str:
        ratio = ""
        if self.new_revisions:
            ratio = f" ({1000 * self.requests / self.new_revisions:.1f} per 1,000 new revisions)"
        return (f"crawl complete: {self.pages:,} pages, {self.revisions:,} revisions "
                f"({self.new_revisions:,} new) from {self.api_url} as {self.identity}, "
                f"{self.requests:,} requests{ratio}, {self.seconds:.1f} s")


@dataclass
class CrawlContext:
    client: ApiClient
    mirror: Mirror
    writer: SerialWriter
    progress: Progress
    per_request: int  # revisions with content a request brings
    server_now: str
    siteinfo: dict[str, Any]
    new_revisions: int = 0
    transport: httpx.AsyncBaseTransport | None = None  # the tests' stand-in for the network

    def count(self, new: int) -> None:
        self.new_revisions += new
        self.progress.advance(new, self.client.requests)


def wiki_identity(siteinfo: dict[str, Any]) -> str:
    general = siteinfo["general"]
    return f"{general.get('wikiid', '')}@{general.get('server', '')}{general.get('scriptpath', '')}"


def content_namespaces(siteinfo: dict[str, Any], wanted: list[int] | None) -> list[int]:
    known = sorted(int(ns) for ns in siteinfo["namespaces"] if int(ns) >= 0)
    if wanted is None:
        return known
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ConfigError(f"the wiki has no namespace {', '.join(map(str, unknown))}")
    return sorted(wanted)


async def run_crawl(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
    wikimedia: Callable[[str], bool] = is_wikimedia_host,
    budgets: dict[str, PoliteBudget] | None = None,
) -> CrawlSummary:
    """``wikimedia`` tells Wikimedia's hosts, whose robot policy asks for dumps first;
    ``budgets``, by host, are shared with other wikis of the run (jobs/fleet.py)."""
    if not settings.mirror:
        raise ConfigError("crawl needs --mirror DIR (and, for a new mirror, the wiki's URL)")
    if not settings.api:  # go on with the wiki the mirror was made from
        recorded = recorded_api_url(Path(settings.mirror))
        if recorded is None:
            raise ConfigError(f"crawl needs the wiki's URL: {settings.mirror} records none")
        settings = replace(settings, api=recorded)
    assert settings.api is not None and settings.mirror is not None
    host = urlsplit(settings.api).hostname or ""
    check_etiquette(settings, host)
    directory = Path(settings.mirror)
    began = time.monotonic()
    budgets = {} if budgets is None else budgets
    budget = budgets.setdefault(host, budget_for(settings, host))
    async with open_client(settings.api, budget, client_settings(settings), transport) as client:
        # the site's rules, then the wiki and the login, before touching the disk: a wrong
        # URL or a refusal leaves nothing behind
        robots = await site_policy.read_robots(client, settings.api, directory)
        site_policy.check_robots(robots, settings, settings.api)
        client.api_url = await discover_api(client, settings.api)
        site_policy.check_robots(robots, settings, client.api_url)
        identity = await authenticate(client, settings)
        site = await fetch_siteinfo_and_group(client, "bot")
        site_policy.check_dumps_first(settings, client.api_url, site[0], wikimedia=wikimedia)
        directory.mkdir(parents=True, exist_ok=True)
        with MirrorLock(directory), Mirror.open(directory, create=True) as mirror:
            site_policy.keep_robots(mirror, robots)
            summary = await crawl_into(client, mirror, settings, identity, site, transport)
    summary.seconds = time.monotonic() - began
    return summary


async def crawl_into(
    client: ApiClient, mirror: Mirror, settings: Settings, identity: Identity,
    site: tuple[dict[str, Any], str, list[str] | None],
    transport: httpx.AsyncBaseTransport | None = None,
) -> CrawlSummary:
    """``site``: the wiki's siteinfo, the server's time and its bots, as
    :func:`fetch_siteinfo_and_group` gives them."""
    writer = SerialWriter(mirror.directory)
    siteinfo, server_now, bots = site
    assert client.api_url is not None
    await writer.run(mirror.bind_wiki, wiki_identity(siteinfo), client.api_url)
    await writer.run(mirror.save_siteinfo, siteinfo)
    await record_bots(client, mirror, writer, bots)
    if await writer.run(mirror.get_meta, "crawl_started") is None:
        # the first run's server time: a later sync catches up exactly from here
        await writer.run(mirror.set_meta, "crawl_started", server_now)
    per_request = 500 if identity.high_limits else 50  # revisions with content
    mode = await plan_crawl(client, mirror, writer, settings, siteinfo, server_now, per_request)
    run_id = await writer.run(mirror.start_run, "crawl", run_arguments(settings, identity))
    progress = Progress(
        "crawl", total=expected_total(siteinfo, mode, settings.namespaces),
        initial=await writer.run(mirror.count_revisions), quiet=settings.quiet,
    )
    ctx = CrawlContext(client, mirror, writer, progress, per_request, server_now, siteinfo,
                       transport=transport)
    status = "failed"
    files_summary = None
    try:
        await run_phases(ctx, mode, settings.concurrency)
        if ctx.new_revisions:  # they came a few at a time per page: pack each page's tight
            await writer.run(mirror.tighten_packs)
        progress.close(requests=client.requests, complete=True)
        if settings.files:
            files_summary = await crawl_files(ctx, settings)
        status = "complete"
    except BaseException as exc:
        status = run_status(exc)
        raise
    finally:
        progress.close()
        stats = {"requests": client.requests, "new_revisions": ctx.new_revisions,
                 "retries": client.budget.stats.retries}
        if files_summary is not None:
            stats["files_fetched"] = files_summary.fetched
            stats["file_bytes_received"] = files_summary.tally.received
        with trio.CancelScope(shield=True):
            await writer.run(mirror.finish_run, run_id, status, stats)
    pages, revisions = await writer.run(mirror_counts, mirror)
    return CrawlSummary(
        api_url=client.api_url, pages=pages, revisions=revisions,
        new_revisions=ctx.new_revisions, requests=client.requests, seconds=0.0,
        identity=identity.name if not identity.anonymous else "anonymous", mode=mode,
        files=files_summary,
    )


async def record_bots(
    client: ApiClient, mirror: Mirror, writer: SerialWriter, bots: list[str] | None = None
) -> None:
    """The wiki's bot group, so that attribution can tell bots from people."""
    if bots is None:
        bots = await group_members(client, "bot")
    await writer.run(mirror.set_meta, "bot_users", json.dumps(sorted(bots), ensure_ascii=False))


def run_arguments(settings: Settings, identity: Identity) -> dict[str, Any]:
    return {
        "api": settings.api, "namespaces": settings.namespaces,
        "current_only": settings.current_only, "concurrency": settings.concurrency,
        "user": None if identity.anonymous else identity.name,
        "high_limits": identity.high_limits, "files": settings.files,
        "files_max_size": settings.files_max_size,
    }


def mirror_counts(mirror: Mirror) -> tuple[int, int]:
    return mirror.count_pages(), mirror.count_revisions()


async def plan_crawl(
    client: ApiClient, mirror: Mirror, writer: SerialWriter, settings: Settings,
    siteinfo: dict[str, Any], server_now: str, per_request: int,
) -> str:
    """Create the crawl's streams on the first run. On a later run the options say the
    scope: the same one resumes; a wider one (more namespaces, or the histories of a
    --current-only mirror) adds the streams of what the mirror lacks; a narrower one
    is refused."""
    namespaces = content_namespaces(siteinfo, settings.namespaces)
    mode = choose_mode(settings, siteinfo)
    # None: every namespace (also those the wiki adds later, for sync)
    wanted: dict[str, Any] = {
        "namespaces": None if settings.namespaces is None else namespaces, "mode": mode}
    stored_text = await writer.run(mirror.get_meta, "crawl_plan")
    todo = namespaces
    if stored_text is not None:
        stored = json.loads(stored_text)
        had = set(namespaces if stored["namespaces"] is None else stored["namespaces"])
        widened = widening(stored["mode"], had, mode, set(namespaces))
        if widened is None:
            raise ConfigError(
                f"this mirror holds {scope_text(stored['namespaces'], stored['mode'])}; "
                f"{scope_text(wanted['namespaces'], mode)} would leave some of it out. A "
                "mirror is only ever widened: run the same command as before to resume it, "
                "or use a new --mirror for a narrower copy")
        if not widened:
            if stored != wanted:  # the same scope, written as the plan writes it now
                await writer.run(mirror.set_meta, "crawl_plan", json.dumps(wanted))
            return mode
        todo = sorted(widened)
        log.info("widening the mirror to %s: fetching %s", scope_text(wanted["namespaces"], mode),
                 scope_text(todo, mode))
    plan = await streams_for(client, settings, siteinfo, per_request, mode, todo,
                             whole=stored_text is None and settings.namespaces is None,
                             widening=stored_text is not None)
    await writer.run(mirror.create_checkpoints, plan)
    await writer.run(mirror.set_meta, "crawl_plan", json.dumps(wanted))
    return mode


def widening(had_mode: str, had: set[int], mode: str, wanted: set[int]) -> set[int] | None:
    """The namespaces to fetch (empty: none, the same scope), or None when the wanted
    scope is not a widening of the mirror's (fewer namespaces, or latest revisions
    only where the mirror has histories)."""
    if not wanted >= had or (mode == "current" and had_mode != "current"):
        return None
    if had_mode == "current" and mode != "current":
        return wanted  # the histories, of every namespace
    return wanted - had


def scope_text(namespaces: list[int] | None, mode: str) -> str:
    which = "every namespace" if namespaces is None else \
        f"namespace{'s' if len(namespaces) != 1 else ''} {', '.join(map(str, namespaces))}"
    return f"{'the latest revisions' if mode == 'current' else 'the histories'} of {which}"


async def streams_for(
    client: ApiClient, settings: Settings, siteinfo: dict[str, Any], per_request: int,
    mode: str, namespaces: list[int], *, whole: bool, widening: bool,
) -> list[tuple[str, dict[str, Any] | None]]:
    """The streams that fetch ``namespaces`` in ``mode``; ``whole``: all of the wiki
    (allrevisions unfiltered); ``widening``: added to a mirror's earlier streams, under
    names of their own. The page catalogue of the allrevisions mode is planned after
    its walk (see run_phases)."""
    if mode == "current":
        return list(streams.namespace_streams(streams.CURRENT, namespaces))
    if mode == "pages":
        return [*streams.namespace_streams(streams.PAGES, namespaces),
                *streams.namespace_streams(streams.HISTORY, namespaces)]
    selected = None if whole else namespaces
    slices: list[tuple[str | None, str | None]] = [(None, None)]
    count = streams.slice_count(settings.concurrency, statistic(siteinfo, "edits"), per_request)
    if count > 1:
        # slices of equal length between the oldest and the newest edit, not up to
        # today: a wiki quiet for years would leave all slices but one empty
        first = await revision_timestamp(client, selected)
        last = await revision_timestamp(client, selected, newest=True)
        if first is not None and last is not None:
            slices = streams.time_slices(first, last, count)
    prefix = streams.REVISIONS
    if widening:
        prefix += f"ns={','.join(map(str, namespaces))}/"
    return list(streams.revision_streams(selected, slices, prefix))


async def run_phases(ctx: CrawlContext, mode: str, workers: int) -> None:
    """Run the crawl's streams in the order each mode needs."""
    if mode == "current":  # pages come with their info: no separate catalogue
        await walk_titles(ctx, streams.CURRENT, workers, content=True)
    elif mode == "pages":  # the histories walk the catalogue's pages
        await walk_titles(ctx, streams.PAGES, workers, content=False)
        checkpoints = await ctx.writer.run(ctx.mirror.list_checkpoints, streams.HISTORY)
        ranges = PageRangeBoard([PageRange.from_checkpoint(cp) for cp in checkpoints])
        await run_workers(ctx, ranges, workers)
    else:
        await walk_revisions(ctx, workers)
        # every live page has a revision, so the walk has met every namespace that has
        # pages; cataloguing only those saves a request per empty namespace
        found = await ctx.writer.run(query.namespaces_with_pages, ctx.mirror)
        await ctx.writer.run(ctx.mirror.create_checkpoints,
                             streams.namespace_streams(streams.PAGES, found))
        await walk_titles(ctx, streams.PAGES, workers, content=False)


def choose_mode(settings: Settings, siteinfo: dict[str, Any]) -> str:
    if settings.current_only:
        return "current"
    if settings.history_mode == "auto":
        return "allrevisions" if has_allrevisions(siteinfo) else "pages"
    return settings.history_mode


def expected_total(siteinfo: dict[str, Any], mode: str, namespaces: list[int] | None
                   ) -> int | None:
    """What the progress bar counts up to: the wiki's edits (its pages, for the latest
    revisions only). The wiki counts them for all its namespaces only, so a crawl of
    some has no total: better none than one it never reaches."""
    if namespaces is not None:
        return None
    return statistic(siteinfo, "pages" if mode == "current" else "edits")


def statistic(siteinfo: dict[str, Any], name: str) -> int | None:
    value = siteinfo.get("statistics", {}).get(name)
    return value if type(value) is int else None


async def walk_titles(ctx: CrawlContext, prefix: str, workers: int, *, content: bool) -> None:
    """An allpages walk (the catalogue, or the latest revisions) over title ranges, split
    among the workers as they run dry."""
    checkpoints = await ctx.writer.run(ctx.mirror.list_checkpoints, prefix)
    first_letter = {int(ns) for ns, info in ctx.siteinfo["namespaces"].items()
                    if isinstance(info, dict) and info.get("case") == "first-letter"}
    board = TitleBoard(
        [TitleRange.from_checkpoint(cp) for cp in checkpoints], content=content,
        per_request=ctx.per_request if content else ctx.per_request * 10,
        pages=statistic(ctx.siteinfo, "pages"), workers=workers, first_letter=first_letter,
    )
    await run_workers(ctx, board, workers)


async def walk_revisions(ctx: CrawlContext, workers: int) -> None:
    """The allrevisions walk over its time slices, split among the workers as they run dry."""
    checkpoints = await ctx.writer.run(ctx.mirror.list_checkpoints, streams.REVISIONS)
    board = SliceBoard(
        [Slice.from_checkpoint(cp) for cp in checkpoints], now=ctx.server_now,
        per_request=ctx.per_request, edits=statistic(ctx.siteinfo, "edits"), workers=workers,
        stored=await ctx.writer.run(ctx.mirror.count_revisions),
    )
    await run_workers(ctx, board, workers)
