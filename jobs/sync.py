"""``harvester sync``: bring a mirror up to date from the wiki's recentchanges.

The mirror's high-water mark (the server time its data is known to be current
at; after a crawl, the crawl's start) minus a small overlap is where the walk
over recentchanges starts; entries are deduplicated by rcid. Edits and page
creations are fetched by revision id; every page touched by a log event
(move, deletion, undeletion, revision deletion, merge, import, ...) is
*reconciled*: its current history metadata is fetched and the store made to
match it, so the outcome does not depend on the order or kind of the events,
only on the wiki's state now. Everything applied is idempotent, so a sync
killed at any point and run again converges to the same mirror.

When recentchanges no longer reaches back to the high-water mark (wikis keep
about 90 days), a catch-up walk replaces it: list=allrevisions from the mark,
then a reconciliation of the page catalogue.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import trio

from harvester.budget import PoliteBudget
from harvester.client import ApiClient, open_client
from harvester.config import Settings
from harvester.errors import ConfigError
from harvester.walkers import (
    fetch_history_metadata,
    fetch_revisions,
    oldest_recent_change,
    revision_ids_between,
    walk_log_events,
    walk_page_catalogue,
    walk_recent_changes,
)
from jobs import site_policy, streams
from jobs.balance import Slice, SliceBoard, run_workers
from jobs.connection import authenticate, budget_for, check_etiquette, client_settings
from jobs.convert import catalogue_pages, page_record, pages_to_batch, revision_record
from jobs.crawl import record_bots
from jobs.files import FOLLOWED, FilesSummary, fetch_contents, reconcile_files
from jobs.outcome import run_status
from jobs.streams import format_ts, parse_ts
from jobs.writer import SerialWriter
from storage import changes, query
from storage.files import FILE_NAMESPACE
from storage.lock import MirrorLock
from storage.mirror import Mirror

log = logging.getLogger("harvester.sync")

# Entries can land in recentchanges a little after their timestamp (replication
# lag, slow transactions); re-reading this much and deduplicating by rcid
# catches them.
OVERLAP = timedelta(minutes=5)
CHECKPOINT = "sync/apply"
CATCH_UP = "sync/catch-up/"  # the catch-up's time slices, while it runs
REVIDS_PER_REQUEST = 50  # the API's multi-value limit; 500 with apihighlimits

# Log events and what they mean for the mirror. Each listed (type, action) makes
# the page it names be reconciled against the wiki; "target" also reconciles the
# page named in the event's parameters.
RECONCILE = {
    ("move", "move"): "moved", ("move", "move_redir"): "moved",
    ("delete", "delete"): "deleted", ("suppress", "delete"): "deleted",
    ("delete", "restore"): "undeleted",
    ("delete", "revision"): "revision hidden", ("suppress", "revision"): "revision hidden",
    ("merge", "merge"): "merged",
    ("import", "upload"): "imported", ("import", "interwiki"): "imported",
    ("protect", "protect"): "protection", ("protect", "modify"): "protection",
    ("protect", "unprotect"): "protection", ("protect", "move_prot"): "protection",
    ("contentmodel", "change"): "content model", ("contentmodel", "new"): "content model",
    ("pagelang", "pagelang"): "page language",
    ("upload", "upload"): "file", ("upload", "overwrite"): "file",
    ("upload", "revert"): "file",
    ("tag", "update"): "tags",
}
# Skipped on purpose: they change nothing the mirror holds (accounts, blocks,
# patrolling, thanks, log-entry visibility) or arrive as an edit or
# page-creation entry of their own (create/create).
SKIPPED_LOG_TYPES = {
    "newusers", "block", "patrol", "thanks", "create", "managetags",
    "abusefilter", "spamblacklist", "gblblock", "gblrights", "notifytranslators",
}
SKIPPED_LOG_EVENTS = {("delete", "event"), ("suppress", "event"), ("suppress", "block"),
                      ("suppress", "reblock")}


@dataclass
class SyncSummary:
    mode: str = "recentchanges"
    applied: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0
    high_water: str = ""
    files: FilesSummary | None = None  # when the mirror holds the wiki's files

    def describe(self) -> str:
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.applied.items()))
        changes_text = kinds or "no changes"
        line = (f"sync ({self.mode}): {changes_text}; {self.requests:,} requests, "
                f"{self.seconds:.1f} s; current as of {self.high_water}")
        return line if self.files is None else f"{line}\n{self.files.describe()}"


@dataclass
class SyncContext:
    client: ApiClient
    mirror: Mirror
    writer: SerialWriter
    summary: SyncSummary
    revids_per_request: int = REVIDS_PER_REQUEST
    sees_suppressions: bool = False
    bots_refreshed: bool = False
    workers: int = 1  # for the catch-up's walk over time slices
    transport: httpx.AsyncBaseTransport | None = None  # the tests' stand-in for the network
    # The mirror's files, when it holds them (crawl --files): the files named by the
    # log events of the entries being applied, reconciled before the entries are
    # recorded as applied.
    files: FilesSummary | None = None
    file_titles: set[str] = field(default_factory=set)
    # The namespaces the crawl took (None: all); the walk may take File: too, for files.
    scope: list[int] | None = None

    def in_scope(self, ns: Any) -> bool:
        return self.scope is None or ns in self.scope

    def count(self, new: int) -> None:
        self.summary.applied["revisions"] += new


def shifted(timestamp: str, delta: timedelta) -> str:
    return format_ts(parse_ts(timestamp) + delta)


async def run_sync(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
    budgets: dict[str, PoliteBudget] | None = None,
) -> SyncSummary:
    if not settings.mirror:
        raise ConfigError("sync needs --mirror DIR")
    directory = Path(settings.mirror)
    began = time.monotonic()
    # the lock first: a second sync or crawl of this mirror stops before any request
    with MirrorLock(directory, create=False), Mirror.open(directory, create=False) as mirror:
        api_url = mirror.get_meta("api_url")
        start = mirror.get_meta("sync_high_water") or mirror.get_meta("crawl_started")
        if api_url is None and mirror.list_checkpoints("crawl/dump/"):
            raise ConfigError(
                f"{directory} was imported from a dump without --wiki: run `harvester "
                "import-dump` again with the same file(s) and --wiki URL to attach it")
        if api_url is None or start is None or not crawl_finished(mirror):
            raise ConfigError(f"{directory} has no finished crawl: run `harvester crawl` first")
        if settings.api and not same_wiki(settings.api, api_url):
            raise ConfigError(
                f"{directory} is a mirror of {api_url}, but {settings.api} was given for it: "
                "correct the URL (or the config's api), or use another --mirror")
        host = httpx.URL(api_url).host
        check_etiquette(settings, host)
        budgets = {} if budgets is None else budgets
        budget = budgets.setdefault(host, budget_for(settings, host))
        async with open_client(api_url, budget, client_settings(settings), transport) as client:
            client.api_url = api_url
            robots = await site_policy.read_robots(client, api_url, directory)
            site_policy.check_robots(robots, settings, api_url)
            site_policy.keep_robots(mirror, robots)
            rights: frozenset[str] = frozenset()
            if settings.user or settings.oauth_token:
                rights = (await authenticate(client, settings)).rights
            ctx = SyncContext(client, mirror, SerialWriter(directory), SyncSummary(),
                              REVIDS_PER_REQUEST * (10 if "apihighlimits" in rights else 1),
                              sees_suppressions="suppressionlog" in rights,
                              workers=settings.concurrency, transport=transport,
                              scope=crawl_namespaces(mirror))
            if mirror.get_meta(FOLLOWED):
                ctx.files = ctx.summary.files = FilesSummary()
            run_id = await ctx.writer.run(mirror.start_run, "sync",
                                          {"api": api_url, "high_water": start})
            status = "failed"
            try:
                await sync_from(ctx, start)
                if ctx.files is not None:  # new versions' bytes, and any a killed run left
                    await fetch_contents(ctx, settings, ctx.files)
                status = "complete"
            except BaseException as exc:
                status = run_status(exc)
                raise
            finally:
                ctx.summary.requests = client.requests
                stats = {"mode": ctx.summary.mode, "applied": dict(ctx.summary.applied),
                         "requests": ctx.summary.requests, "high_water": ctx.summary.high_water}
                with trio.CancelScope(shield=True):
                    await ctx.writer.run(mirror.finish_run, run_id, status, stats)
    ctx.summary.seconds = time.monotonic() - began
    return ctx.summary


def same_wiki(given: str, recorded: str) -> bool:
    """Whether a URL given for a mirror (an api.php, or any page of the wiki) names the
    wiki the mirror records: the same api.php, or a page on the same site."""
    a, b = httpx.URL(given), httpx.URL(recorded)
    if a.path.endswith("api.php"):
        return (a.scheme, a.host, a.port, a.path) == (b.scheme, b.host, b.port, b.path)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def crawl_finished(mirror: Mirror) -> bool:
    checkpoints = mirror.list_checkpoints("crawl/")
    return bool(checkpoints) and all(cp.done for cp in checkpoints)


def crawl_namespaces(mirror: Mirror) -> list[int] | None:
    """The namespaces the crawl took (widened since, perhaps), or None for all."""
    plan = json.loads(mirror.get_meta("crawl_plan") or "{}")
    if "namespaces" in plan:
        taken = plan["namespaces"]
        every = query.stored_namespaces(mirror)
        # an older crawl wrote every namespace out where it now writes None
        return None if taken is None or set(taken) >= set(every) else taken
    revisions = mirror.list_checkpoints("crawl/revisions/")
    if revisions and revisions[0].state:
        spec = revisions[0].state.get("spec", {})
        return spec.get("namespaces")
    return None


async def sync_from(ctx: SyncContext, high_water: str) -> None:
    start = shifted(high_water, -OVERLAP)
    if not await recentchanges_cover(ctx, high_water):
        ctx.summary.mode = "catch-up, recentchanges expired"
        await catch_up(ctx, high_water, ctx.scope)
        return
    ctx.summary.high_water = high_water
    walked = ctx.scope
    if walked is not None and ctx.files is not None and FILE_NAMESPACE not in walked:
        walked = sorted([*walked, FILE_NAMESPACE])  # uploads are logged in File:
    async for entries, _ in walk_recent_changes(
        ctx.client, start=start, namespaces=walked, resume=None
    ):
        await apply_entries(ctx, entries)
    if ctx.sees_suppressions:
        await apply_suppressions(ctx, start)


async def recentchanges_cover(ctx: SyncContext, high_water: str) -> bool:
    """Whether recentchanges still holds every change made since ``high_water``.

    Its oldest entry being older than the mark settles it. A newer oldest entry
    means either that entries expired (wikis keep about 90 days) or that the
    wiki simply had none before (a young or quiet wiki): the gap is then checked
    against what wikis keep for good, revisions and logs. Nothing in it beyond
    revisions the mirror already has means nothing was lost.
    """
    oldest = await oldest_recent_change(ctx.client)
    if oldest is not None and oldest <= high_water:
        return True
    end = shifted(oldest, -timedelta(seconds=1)) if oldest else await server_time(ctx.client)
    if end < high_water:
        return True
    revids = await revision_ids_between(ctx.client, high_water, end)
    lost: bool = await ctx.writer.run(missing_revisions, ctx.mirror, revids)
    if lost:
        return False
    async for events, _ in walk_log_events(ctx.client, start=high_water, end=end):
        for event in events:
            followed = (str(event.get("type")), str(event.get("action")))
            if followed in RECONCILE or followed == ("renameuser", "renameuser"):
                return False
    return True


def missing_revisions(mirror: Mirror, revids: list[int]) -> bool:
    known = set(changes.stored_revision_ids_among(mirror, revids))
    return any(revid not in known for revid in revids)


async def apply_suppressions(ctx: SyncContext, start: str) -> None:
    """Suppressions never reach recentchanges; with the suppressionlog right their log
    shows them. (Without it nothing does: the README says so.)"""
    async for events, _ in walk_log_events(ctx.client, start=start, log_type="suppress"):
        for event in events:
            if event.get("action") in ("revision", "delete") and event.get("title"):
                ctx.summary.applied["suppressed"] += 1
                if event.get("ns") == FILE_NAMESPACE and ctx.files is not None:
                    ctx.file_titles.add(str(event["title"]))
                if ctx.in_scope(event.get("ns")):
                    await reconcile_title(ctx, str(event["title"]), dict(event))
        await apply_file_changes(ctx)


async def apply_entries(ctx: SyncContext, entries: list[dict[str, Any]]) -> None:
    """Apply one response's worth of recentchanges, then record them as applied."""
    seen = await ctx.writer.run(changes.seen_rcids, ctx.mirror, [e["rcid"] for e in entries])
    fresh = [e for e in entries if e["rcid"] not in seen]
    edits = [e for e in fresh if e.get("type") in ("edit", "new") and ctx.in_scope(e.get("ns"))]
    await fetch_and_store(ctx, [int(e["revid"]) for e in edits if e.get("revid")])
    for entry in fresh:
        if entry.get("type") in ("edit", "new"):
            if not ctx.in_scope(entry.get("ns")):
                continue
            ctx.summary.applied["edits" if entry["type"] == "edit" else "new pages"] += 1
        elif entry.get("type") == "log":
            await apply_log_event(ctx, entry)
    await apply_file_changes(ctx)
    if entries:
        newest = max(str(e["timestamp"]) for e in entries)
        ctx.summary.high_water = max(ctx.summary.high_water, newest)
        items = [(int(e["rcid"]), str(e["timestamp"])) for e in fresh]
        await ctx.writer.run(changes.record_rcids, ctx.mirror, items, ctx.summary.high_water)
        await ctx.writer.run(changes.prune_rcids, ctx.mirror,
                             shifted(ctx.summary.high_water, -2 * OVERLAP))


async def fetch_and_store(ctx: SyncContext, revids: list[int]) -> None:
    """Fetch revisions with content, as many per request as the API allows."""
    step = ctx.revids_per_request
    for i in range(0, len(revids), step):
        pages = await fetch_revisions(ctx.client, revids[i:i + step])
        await ctx.writer.run(ctx.mirror.write_batch, pages_to_batch(pages), CHECKPOINT,
                             None, False)


async def apply_log_event(ctx: SyncContext, entry: dict[str, Any]) -> None:
    event = (str(entry.get("logtype")), str(entry.get("logaction")))
    params = entry.get("logparams") or {}
    if event == ("renameuser", "renameuser"):
        old, new = params.get("olduser"), params.get("newuser")
        if old and new:
            await ctx.writer.run(changes.rename_user, ctx.mirror, str(old), str(new))
            ctx.summary.applied["user renames"] += 1
        return
    if event[0] == "rights":  # group changes: the bot group decides attribution of bots
        if not ctx.bots_refreshed:
            await record_bots(ctx.client, ctx.mirror, ctx.writer)
            ctx.bots_refreshed = True
        return
    kind = RECONCILE.get(event)
    if kind is None:
        if event[0] not in SKIPPED_LOG_TYPES and event not in SKIPPED_LOG_EVENTS:
            log.info("skipping log event %s/%s on %s", *event, entry.get("title"))
        return
    ctx.summary.applied[kind] += 1
    titles = [(str(entry["title"]), entry.get("ns"))]
    for key in ("target_title", "dest_title"):  # moves and merges name a second page
        if params.get(key):
            titles.append((str(params[key]), params.get("target_ns")))
    for title, ns in titles:
        if ns == FILE_NAMESPACE and ctx.files is not None:
            ctx.file_titles.add(title)
        if ctx.in_scope(ns):
            await reconcile_title(ctx, title, entry)


async def apply_file_changes(ctx: SyncContext) -> None:
    """The files the applied log events named, as the wiki has them now."""
    if ctx.files is not None and ctx.file_titles:
        await reconcile_files(ctx, ctx.file_titles, ctx.files)
        ctx.summary.applied["files"] += len(ctx.file_titles)
        ctx.file_titles.clear()


async def reconcile_title(ctx: SyncContext, title: str, entry: dict[str, Any] | None) -> None:
    page, revisions = await fetch_history_metadata(ctx.client, title=title)
    if page.get("missing") or "pageid" not in page:
        stored = await ctx.writer.run(query.pageid_of, ctx.mirror, title)
        if stored is not None:
            tombstone = {"log": entry, "title": title}
            await ctx.writer.run(changes.delete_page, ctx.mirror, stored, tombstone)
        return
    await reconcile_page(ctx, page, revisions)


async def reconcile_page(
    ctx: SyncContext, page: dict[str, Any], revisions: list[dict[str, Any]]
) -> None:
    record = page_record(page)
    current = [revision_record(record.pageid, rev) for rev in revisions]
    result = await ctx.writer.run(changes.reconcile_page, ctx.mirror, record, current)
    await fetch_and_store(ctx, sorted(result.missing))


async def catch_up(ctx: SyncContext, high_water: str, namespaces: list[int] | None) -> None:
    """Without recentchanges: new revisions by time, then every page checked by its info."""
    started_at = await server_time(ctx.client)
    await catch_up_revisions(ctx, shifted(high_water, -OVERLAP), started_at, namespaces)
    live: set[int] = set()
    walked = namespaces
    if walked is None:
        walked = await ctx.writer.run(query.stored_namespaces, ctx.mirror)
    for ns in walked:
        async for pages, _ in walk_page_catalogue(ctx.client, ns, None):
            for page in catalogue_pages(pages):
                live.add(page.pageid)
                if await ctx.writer.run(page_differs, ctx.mirror, page):
                    meta_page, revisions = await fetch_history_metadata(
                        ctx.client, pageid=page.pageid)
                    await reconcile_page(ctx, meta_page, revisions)
                    ctx.summary.applied["pages reconciled"] += 1
    gone = await ctx.writer.run(query.pages_outside, ctx.mirror, live, namespaces)
    for pageid in gone:
        await ctx.writer.run(changes.delete_page, ctx.mirror, pageid,
                             {"log": None, "reason": "absent from the wiki at catch-up"})
        ctx.summary.applied["pages deleted"] += 1
    if ctx.files is not None:
        await catch_up_files(ctx, shifted(high_water, -OVERLAP))
    ctx.summary.high_water = started_at
    await ctx.writer.run(changes.record_rcids, ctx.mirror, [], started_at)


async def catch_up_files(ctx: SyncContext, start: str) -> None:
    """Without recentchanges, the logs (kept for good) name the files that changed."""
    async for events, _ in walk_log_events(ctx.client, start=start):
        for event in events:
            params = event.get("params") or {}
            if event.get("ns") == FILE_NAMESPACE and event.get("title"):
                ctx.file_titles.add(str(event["title"]))
            if params.get("target_ns") == FILE_NAMESPACE and params.get("target_title"):
                ctx.file_titles.add(str(params["target_title"]))
    await apply_file_changes(ctx)


async def catch_up_revisions(
    ctx: SyncContext, start: str, now: str, namespaces: list[int] | None
) -> None:
    """Every revision saved since ``start``, over time slices that the workers split as
    they run dry (jobs/balance.py). A catch-up that was killed starts over from the
    high-water mark, so its slices are planned anew each time."""
    await ctx.writer.run(ctx.mirror.delete_checkpoints, CATCH_UP)
    count = streams.slice_count(ctx.workers, None, ctx.revids_per_request)
    slices = streams.time_slices(start, now, count, open_start=False)
    plan = streams.revision_streams(namespaces, slices, CATCH_UP)
    await ctx.writer.run(ctx.mirror.create_checkpoints, plan)
    checkpoints = await ctx.writer.run(ctx.mirror.list_checkpoints, CATCH_UP)
    board = SliceBoard([Slice.from_checkpoint(cp) for cp in checkpoints], now=now,
                       per_request=ctx.revids_per_request, edits=None, workers=ctx.workers,
                       stored=0)
    await run_workers(ctx, board, ctx.workers)
    await ctx.writer.run(ctx.mirror.delete_checkpoints, CATCH_UP)


async def server_time(client: ApiClient) -> str:
    data = await client.call({"action": "query", "curtimestamp": "1"})
    return str(data["curtimestamp"])


def page_differs(mirror: Mirror, page: Any) -> bool:
    """True when the catalogue entry disagrees with the wiki (renamed, edited, new)."""
    stored = query.page_state(mirror, page.pageid)
    if stored is None:
        return True
    return bool(stored.title != page.title or stored.latest_revid != page.latest_revid
                or stored.newest_stored != page.latest_revid)
