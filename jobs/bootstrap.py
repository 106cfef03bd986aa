"""``harvester bootstrap``: a new mirror from the wiki's latest dump, then synced to now.

The robot policy's way to copy a big wiki: the history from the dumps, the
recent changes from the API. Three steps, each resumable, so the same command
continues wherever it was killed:

1. :func:`fetch_dumps`: find the wiki (robots.txt first), choose the latest
   complete full-history dump (remembered in ``DIR/dumps/dump.json``, so a
   resumed run keeps to it), and download its files into ``DIR/dumps/``:
   at most ``DUMP_CONNECTIONS`` at once, through a budget of the dump host's
   own, resumed with ``Range`` from what a killed run left, each checked
   against its published SHA-1 (a wrong one is fetched once more).
2. jobs/import_dump.py imports them and attaches the mirror to the wiki;
   :func:`remove_imported` then deletes the files whose import is complete.
3. jobs/sync.py brings the mirror from the dump's newest revision to now.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import trio

from harvester.budget import BudgetPolicy, PoliteBudget, is_wikimedia_host
from harvester.client import ApiClient, open_client
from harvester.config import Settings
from harvester.discovery import discover_api
from harvester.dumps import DumpFile, DumpRun, latest_full_history
from harvester.errors import ConfigError, RemoteError
from jobs import site_policy
from jobs.connection import budget_for, check_etiquette, client_settings
from jobs.transfers import Tally, Transfer, fetch_verified
from storage.downloads import PartialDownload
from storage.dumpimport import CHECKPOINT_PREFIX
from storage.mirror import recorded_done_checkpoints

log = logging.getLogger("harvester.bootstrap")

DUMPS_DIR = "dumps"
PLAN_FILE = "dump.json"
WIKIMEDIA_DUMPS = "https://dumps.wikimedia.org"
DUMP_CONNECTIONS = 2  # what Wikimedia's dumps site allows one client


@dataclass
class DumpsFetched:
    api_url: str
    run: DumpRun
    to_import: list[Path]  # downloaded, not yet (completely) imported
    requests: int = 0  # to the dumps host
    tally: Tally = field(default_factory=Tally)  # bytes received, files fetched again

    def describe(self) -> str:
        return (f"dump {self.run.dbname} {self.run.date} ({self.run.job}): "
                f"{len(self.run.files)} files, {self.tally.received / 1e6:,.1f} MB received in "
                f"{self.requests:,} requests to the dumps host")


def dumps_base(settings: Settings, host: str) -> str:
    if settings.dumps_url:
        return settings.dumps_url.rstrip("/")
    if is_wikimedia_host(host):
        return WIKIMEDIA_DUMPS
    raise ConfigError(f"no dumps are known for {host}: give the dumps site with --dumps-url URL "
                      "(laid out as Wikimedia's: /DBNAME/DATE/dumpstatus.json)")


def dumps_budget(settings: Settings, host: str) -> PoliteBudget:
    """The dump host's own budget: the run's rules, two connections."""
    policy = BudgetPolicy.for_host(
        host, concurrency=DUMP_CONNECTIONS,
        max_retries=settings.max_retries, per_second=settings.max_requests_per_second,
        per_minute=settings.max_requests_per_minute)
    return PoliteBudget(policy)


def dumps_dir(settings: Settings) -> Path:
    assert settings.mirror is not None
    return Path(settings.mirror) / DUMPS_DIR


async def fetch_dumps(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
    dumps_transport: httpx.AsyncBaseTransport | None = None,
) -> DumpsFetched:
    """Steps 1: the wiki, the dump to start from, and its files on disk."""
    if not settings.api or not settings.mirror:
        raise ConfigError("bootstrap needs the wiki's URL and --mirror DIR")
    directory = Path(settings.mirror)
    host = urlsplit(settings.api).hostname or ""
    check_etiquette(settings, host)
    base = dumps_base(settings, host)
    async with open_client(settings.api, budget_for(settings, host), client_settings(settings),
                           transport) as wiki:
        # a mirror this command made on an earlier run keeps the copy it read
        robots = await site_policy.read_robots(wiki, settings.api, directory)
        site_policy.check_robots(robots, settings, settings.api)
        wiki.api_url = await discover_api(wiki, settings.api)
        site_policy.check_robots(robots, settings, wiki.api_url)
        run = read_plan(directory)
        dbname = run.dbname if run is not None else await wiki_dbname(wiki)
    dumps_host = urlsplit(base).hostname or ""
    async with open_client(base, dumps_budget(settings, dumps_host), client_settings(settings),
                           dumps_transport) as dumps:
        if run is None:
            run = await latest_full_history(dumps, base, dbname)
            write_plan(directory, run)
        fetched = DumpsFetched(wiki.api_url, run, [])
        imported = imported_names(directory)
        wanted = [f for f in run.files if f.name not in imported]
        async with trio.open_nursery() as nursery:
            for dump_file in wanted:  # the budget lets two at a time through
                nursery.start_soon(download, dumps, dump_file, directory / DUMPS_DIR, fetched)
        fetched.to_import = [directory / DUMPS_DIR / f.name for f in wanted]
        fetched.requests = dumps.requests
    return fetched


async def wiki_dbname(wiki: ApiClient) -> str:
    data = await wiki.call({"action": "query", "meta": "siteinfo"})
    dbname = data.get("query", {}).get("general", {}).get("wikiid")
    if not isinstance(dbname, str) or not dbname:
        raise RemoteError(f"{wiki.api_url} does not tell its database name (siteinfo wikiid)")
    return dbname


def read_plan(directory: Path) -> DumpRun | None:
    """The dump a killed bootstrap had chosen: a resumed one keeps to it."""
    path = directory / DUMPS_DIR / PLAN_FILE
    if not path.is_file():
        return None
    try:
        return DumpRun.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}): delete it to choose the dump again") \
            from exc


def write_plan(directory: Path, run: DumpRun) -> None:
    path = directory / DUMPS_DIR / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(run.to_json(), indent=1), encoding="utf-8")
    temporary.replace(path)


def imported_names(directory: Path) -> set[str]:
    """The dump files whose import into the mirror is complete."""
    done = recorded_done_checkpoints(directory, CHECKPOINT_PREFIX)
    return {name[len(CHECKPOINT_PREFIX):] for name in done}


def remove_imported(settings: Settings) -> None:
    """Step 2's end: the dump files whose import is complete take no more space."""
    assert settings.mirror is not None
    for name in imported_names(Path(settings.mirror)):
        PartialDownload(dumps_dir(settings) / name).remove()


async def download(client: ApiClient, dump: DumpFile, into: Path, fetched: DumpsFetched) -> None:
    """One file, resumed from what is on disk, until its SHA-1 is the published one."""
    transfer = Transfer(dump.name, dump.url, dump.size, dump.sha1)
    await fetch_verified(client, transfer, PartialDownload(into / dump.name), fetched.tally)
