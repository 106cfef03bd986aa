"""``harvester import-dump``: bootstrap a mirror from MediaWiki XML dumps.

The dumps go into the same store a crawl writes (storage/dumpimport.py does
the work), resumably. With ``--wiki URL`` the mirror is attached to the live
wiki: its API is found and its siteinfo checked against the dump's (same
database name, same host), then recorded like a crawl's, so that
``harvester sync`` continues from the newest revision in the dumps.

Order of checks: every dump's header first (a wrong file fails before
anything else happens), then the live wiki, then the mirror.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from harvester.client import open_client
from harvester.config import Settings
from harvester.discovery import discover_api
from harvester.errors import ConfigError
from harvester.walkers import fetch_siteinfo_and_group, group_members
from jobs.connection import budget_for, check_etiquette, client_settings
from jobs.crawl import wiki_identity
from jobs.outcome import run_status
from jobs.progress import Progress
from storage import dumpimport
from storage.dumpxml import DumpError, SiteInfo, read_siteinfo
from storage.lock import MirrorLock
from storage.mirror import Mirror


@dataclass
class DumpHead:
    path: Path
    site: SiteInfo


@dataclass
class LiveWiki:
    api_url: str
    siteinfo: dict[str, Any]
    bots: list[str]


@dataclass
class ImportSummary:
    results: list[dumpimport.ImportResult] = field(default_factory=list)
    seconds: float = 0.0
    high_water: str | None = None
    api_url: str | None = None

    def describe(self) -> str:
        revisions = sum(r.revisions for r in self.results)
        new = sum(r.new_revisions for r in self.results)
        pages = sum(r.pages for r in self.results)
        xml = sum(r.xml_bytes for r in self.results) / 1e6
        rate = new / self.seconds if self.seconds > 0 else 0.0
        names = ", ".join(r.file for r in self.results)
        line = (f"import complete: {pages:,} pages, {revisions:,} revisions ({new:,} new) "
                f"from {names}, {xml:,.1f} MB of XML in {self.seconds:.1f} s "
                f"({rate:,.0f} new revisions/s)")
        if self.high_water:
            line += f"; current as of {self.high_water}"
        if self.api_url:
            return line + f"; attached to {self.api_url}: harvester sync continues from there"
        return line + "; to sync it later, run this again with --wiki URL"


def read_heads(files: list[str]) -> list[DumpHead]:
    """Each dump's siteinfo; all of them must be from one wiki."""
    heads: list[DumpHead] = []
    for name in files:
        path = Path(name)
        try:
            site = read_siteinfo(path)
        except DumpError as exc:
            raise ConfigError(str(exc)) from exc
        first = heads[0].site if heads else site
        if not dumpimport.same_wiki(site, first.as_api()["general"]):
            raise ConfigError(f"{path} is a dump of {site.describe()}, "
                              f"{heads[0].path} of {first.describe()}: import them separately")
        heads.append(DumpHead(path, site))
    if len({head.path.name for head in heads}) < len(heads):
        raise ConfigError("two dumps have the same file name: the import of each is "
                          "tracked by its name, give them different ones")
    return heads


async def fetch_live_wiki(
    settings: Settings, url: str, site: SiteInfo,
    transport: httpx.AsyncBaseTransport | None = None,
) -> LiveWiki:
    """The live wiki behind ``url``: its API, siteinfo and bots, checked against the dump."""
    host = urlsplit(url).hostname or ""
    check_etiquette(settings, host)
    async with open_client(url, budget_for(settings, host), client_settings(settings),
                           transport) as client:
        client.api_url = await discover_api(client, url)
        siteinfo, _, bots = await fetch_siteinfo_and_group(client, "bot")
        general = siteinfo.get("general", {})
        if not dumpimport.same_wiki(site, general):
            raise ConfigError(
                f"the dump is of {site.describe()}, but {client.api_url} is "
                f"{dumpimport.describe_general(general)}: not the same wiki")
        if bots is None:  # more bots than one answer holds
            bots = await group_members(client, "bot")
        return LiveWiki(client.api_url, siteinfo, sorted(bots))


def run_import(settings: Settings, heads: list[DumpHead], live: LiveWiki | None) -> ImportSummary:
    assert settings.mirror is not None and heads
    directory = Path(settings.mirror)
    began = time.monotonic()
    try:
        with MirrorLock(directory), Mirror.open(directory, create=True) as mirror:
            summary = import_into(mirror, settings, heads, live)
            if any(r.new_revisions for r in summary.results):
                mirror.tighten_packs()
                mirror.rewrite_file()
    except DumpError as exc:  # the input's fault: a usage error, not the mirror's
        raise ConfigError(str(exc)) from exc
    summary.seconds = time.monotonic() - began
    return summary


def import_into(
    mirror: Mirror, settings: Settings, heads: list[DumpHead], live: LiveWiki | None
) -> ImportSummary:
    pending = [h for h in heads if not _done(mirror, h.path)]
    if pending:
        dumpimport.check_importable(mirror)
    for head in heads:
        dumpimport.check_same_wiki(mirror, head.site, str(head.path))
    if live is not None:  # the live wiki's siteinfo says more than a dump's
        mirror.bind_wiki(wiki_identity(live.siteinfo), live.api_url)
        mirror.save_siteinfo(live.siteinfo)
        mirror.set_meta("bot_users", json.dumps(live.bots, ensure_ascii=False))
    arguments = {"files": [str(h.path) for h in heads], "wiki": live.api_url if live else None}
    run_id = mirror.start_run("import-dump", arguments)
    progress = Progress("import", total=None, initial=0, quiet=bool(settings.quiet))
    summary = ImportSummary(api_url=mirror.get_meta("api_url"))
    status = "failed"
    try:
        for head in heads:
            result = dumpimport.import_dump(
                mirror, head.path, lambda new, _bytes: progress.advance(new))
            summary.results.append(result)
        status = "complete"
    except BaseException as exc:
        status = run_status(exc)
        raise
    finally:
        progress.close()
        stats = {"files": [r.file for r in summary.results],
                 "new_revisions": sum(r.new_revisions for r in summary.results)}
        mirror.finish_run(run_id, status, stats)
    summary.high_water = dumpimport.set_high_water(mirror)
    return summary


def _done(mirror: Mirror, path: Path) -> bool:
    checkpoint = mirror.get_checkpoint(dumpimport.checkpoint_name(path))
    return checkpoint is not None and checkpoint.done
