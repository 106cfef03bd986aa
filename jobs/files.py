"""``crawl --files``: every version of every file, its bytes once per SHA-1; and the
files' part of ``sync`` and ``verify --repair``.

A crawl takes two steps, both resumable:

1. The catalogue: ``generator=allimages`` with every version's imageinfo
   (harvester/files.py), each answer stored with its continuation token.
2. The bytes: each SHA-1 the mirror lacks, fetched once through the polite
   budget of the host that serves it, resumed with ``Range`` after a kill and
   checked against the SHA-1 (jobs/transfers.py). The API's own host shares the
   crawl's budget; a host the wiki names for its files (``meta=filerepoinfo``,
   e.g. upload.wikimedia.org) gets a budget of its own under the same rules.
   A URL on any other host is refused without a request. A version hidden on
   the wiki is never fetched; one over ``--files-max-size`` is skipped; a 404
   is recorded as missing; all are recorded, and none stops the crawl.

A sync brings each file a log event names to the versions the wiki shows now
(:func:`reconcile_files`), then fetches what is new as step 2 does.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import trio

from harvester.budget import PoliteBudget
from harvester.client import ApiClient, open_client
from harvester.config import Settings
from harvester.errors import HttpError, RedirectRefused
from harvester.files import every_version, file_hosts, host_of, walk_file_catalogue
from jobs.connection import budget_for, client_settings
from jobs.convert import file_versions
from jobs.progress import Progress
from jobs.transfers import ChecksumMismatch, Tally, Transfer, fetch_verified
from jobs.writer import SerialWriter
from storage import files
from storage.files import FileBytes, WantedBytes
from storage.mirror import Mirror

log = logging.getLogger("harvester.files")

CATALOGUE = "files/catalogue"
FOLLOWED = "files"  # meta: the mirror holds the wiki's files, and sync follows them


class FilesJob(Protocol):
    """What the steps here need of a crawl's or a sync's context."""

    client: ApiClient
    mirror: Mirror
    writer: SerialWriter
    transport: httpx.AsyncBaseTransport | None


@dataclass
class FilesSummary:
    versions: int = 0  # versions the catalogue walk stored this run
    reconciled: int = 0  # files a sync brought up to date
    removed: int = 0  # distinct contents deleted (no version uses them any more)
    fetched: int = 0  # distinct contents downloaded this run
    tally: Tally = field(default_factory=Tally)
    skipped: list[str] = field(default_factory=list)  # by file name, for the message
    missing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def describe(self) -> str:
        line = f"files: {self.fetched:,} downloaded ({self.tally.received / 1e6:,.1f} MB)"
        if self.versions:
            line += f" for {self.versions:,} versions catalogued"
        if self.reconciled:
            line += f"; {self.reconciled:,} files brought up to date, {self.removed:,} " \
                "contents removed"
        for label, names in (("skipped as too large", self.skipped),
                             ("missing on the wiki", self.missing),
                             ("refused (not on the wiki's file hosts)", self.refused),
                             ("with a wrong SHA-1", self.mismatched)):
            if names:
                line += f"; {len(names)} {label}: {', '.join(sorted(names)[:5])}"
                line += ", ..." if len(names) > 5 else ""
        return line


async def crawl_files(ctx: FilesJob, settings: Settings) -> FilesSummary:
    summary = FilesSummary()
    await ctx.writer.run(ctx.mirror.set_meta, FOLLOWED, "1")
    await walk_catalogue(ctx, summary)
    await fetch_contents(ctx, settings, summary)
    return summary


async def reconcile_files(ctx: FilesJob, titles: set[str], summary: FilesSummary) -> None:
    """Each file named (by a log event: an upload, a deletion, a move, ...) as the wiki
    has it now: its versions stored as they are, those gone removed with their bytes.
    The bytes of new versions come with :func:`fetch_contents`."""
    current = {}
    for title in sorted(titles):
        name = title.split(":", 1)[1].replace(" ", "_")
        current[name] = file_versions([{"title": title, "imageinfo":
                                        await every_version(ctx.client, title)}])
    removed = await ctx.writer.run(files.reconcile_files, ctx.mirror, current)
    summary.reconciled += len(current)
    summary.removed += len(removed)


async def walk_catalogue(ctx: FilesJob, summary: FilesSummary) -> None:
    await ctx.writer.run(ctx.mirror.create_checkpoints, [(CATALOGUE, None)])
    checkpoint = await ctx.writer.run(ctx.mirror.get_checkpoint, CATALOGUE)
    assert checkpoint is not None
    if checkpoint.done:
        return
    async for pages, token in walk_file_catalogue(ctx.client, checkpoint.state):
        versions = file_versions(pages)
        await ctx.writer.run(files.write_file_versions, ctx.mirror, versions, CATALOGUE,
                             token, token is None)
        summary.versions += len(versions)


async def fetch_contents(ctx: FilesJob, settings: Settings, summary: FilesSummary) -> None:
    """Every content the mirror lacks, ``settings.concurrency`` at a time."""
    await ctx.writer.run(files.remove_unused_bytes, ctx.mirror)
    if not await ctx.writer.run(files.wanted_bytes, ctx.mirror, "", 1):
        return  # nothing to fetch: not even the request for the file hosts
    hosts = await file_hosts(ctx.client)
    progress = Progress("files", total=None, initial=0, quiet=settings.quiet, unit="files")
    try:
        async with AsyncExitStack() as clients:
            fetcher = Fetcher(ctx, settings, hosts, clients, summary, progress)
            send, receive = trio.open_memory_channel[WantedBytes](0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(list_wanted, ctx, send)
                for _ in range(settings.concurrency):
                    nursery.start_soon(fetcher.work, receive.clone())
                receive.close()
    finally:
        progress.close()


async def list_wanted(ctx: FilesJob, send: trio.MemorySendChannel[WantedBytes]) -> None:
    """The contents to fetch, a page of the catalogue at a time."""
    async with send:
        after = ""
        while page := await ctx.writer.run(files.wanted_bytes, ctx.mirror, after):
            for wanted in page:
                await send.send(wanted)
            after = page[-1].sha1


@dataclass
class Fetcher:
    ctx: FilesJob
    settings: Settings
    hosts: set[str]  # scheme://host:port the wiki names for its files
    clients: AsyncExitStack  # closes the clients of other hosts than the API's
    summary: FilesSummary
    progress: Progress
    by_host: dict[str, ApiClient] = field(default_factory=dict)  # by scheme://host:port
    budgets: dict[str, PoliteBudget] = field(default_factory=dict)  # by host name
    opening: trio.Lock = field(default_factory=trio.Lock)

    def __post_init__(self) -> None:
        assert self.ctx.client.api_url is not None
        self.store = FileBytes(self.ctx.mirror.directory)
        self.by_host[host_of(self.ctx.client.api_url)] = self.ctx.client
        api_host = urlsplit(self.ctx.client.api_url).hostname or ""
        self.budgets[api_host] = self.ctx.client.budget

    async def work(self, receive: trio.MemoryReceiveChannel[WantedBytes]) -> None:
        async with receive:
            async for wanted in receive:
                state = await self.fetch(wanted)
                if state != files.STORED:
                    await self.ctx.writer.run(files.mark_file_bytes, self.ctx.mirror,
                                              wanted.sha1, state)
                self.progress.advance(1, self.ctx.client.requests)

    async def client_for(self, url: str) -> ApiClient:
        """The API's client for its own host; for another, a client and budget of its own
        (the same rules), without the login: credentials stay with the wiki. One budget
        a host name, whatever the scheme or port, made once however many workers ask."""
        host = host_of(url)
        async with self.opening:
            if host not in self.by_host:
                name = host.split("//", 1)[1].rsplit(":", 1)[0]
                if name not in self.budgets:
                    self.budgets[name] = budget_for(self.settings, name)
                plain = replace(client_settings(self.settings), bearer_token=None)
                self.by_host[host] = await self.clients.enter_async_context(open_client(
                    url, self.budgets[name], plain, self.ctx.transport))
        return self.by_host[host]

    async def fetch(self, wanted: WantedBytes) -> str:
        """One content: its bytes into the store, or the reason they are not there."""
        assert self.ctx.client.api_url is not None
        limit = self.settings.files_max_size
        if limit is not None and wanted.size is not None and wanted.size > limit:
            self.summary.skipped.append(wanted.name)
            return files.SKIPPED
        url = urljoin(self.ctx.client.api_url, wanted.url)
        if host_of(url) not in self.hosts:
            log.warning("%s: refusing %s, which is not on a host the wiki names for its "
                        "files", wanted.name, url)
            self.summary.refused.append(wanted.name)
            return files.REFUSED
        target = self.store.download(wanted.sha1)
        if not target.complete:
            transfer = Transfer(wanted.name, url, wanted.size, wanted.sha1)
            try:
                await fetch_verified(await self.client_for(url), transfer, target,
                                     self.summary.tally)
            except RedirectRefused as exc:  # the file host sent it somewhere else
                log.warning("%s: %s", wanted.name, exc)
                self.summary.refused.append(wanted.name)
                target.restart()
                return files.REFUSED
            except HttpError as exc:
                if exc.status not in (404, 410):
                    raise
                log.warning("%s: the wiki has no file at %s (%s)", wanted.name, url, exc.status)
                self.summary.missing.append(wanted.name)
                return files.MISSING
            except ChecksumMismatch as exc:  # its bytes are already thrown away
                log.error("%s", exc)
                self.summary.mismatched.append(wanted.name)
                return files.MISMATCH
            self.summary.fetched += 1
        await self.ctx.writer.run(files.record_file_bytes, self.ctx.mirror, wanted.sha1,
                                  target.received)
        return files.STORED
