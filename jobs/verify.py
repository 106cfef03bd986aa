"""``harvester verify --mirror DIR [--repair]``: check every byte, fetch back what is bad.

The checks are storage/verify.py's. ``--repair`` asks the wiki again, by
revision id and through the run's polite budget, for the texts of every slot
found damaged or absent, then writes them back in one transaction; a text the
wiki no longer shows (hidden or deleted since) is left out and said so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harvester.client import ApiClient, open_client
from harvester.config import Settings
from harvester.errors import ConfigError
from harvester.walkers import fetch_revisions
from jobs import site_policy
from jobs.connection import authenticate, budget_for, check_etiquette, client_settings
from jobs.convert import pages_to_batch
from jobs.files import FilesSummary, fetch_contents
from jobs.outcome import run_status
from jobs.progress import Progress
from jobs.writer import SerialWriter
from storage import files
from storage import verify as checks
from storage.lock import MirrorLock
from storage.mirror import Mirror, recorded_api_url

REVIDS_PER_REQUEST = 50


@dataclass
class VerifySummary:
    report: checks.VerifyReport
    seconds: float = 0.0
    repaired: bool = False
    restored: int = 0
    lost: int = 0
    requests: int = 0
    recounted: int = 0  # texts counted again (text_data.refs), by a repair
    after: checks.VerifyReport | None = None  # the check again, after a repair
    files: FilesSummary | None = None  # the files fetched again, after a repair

    @property
    def ok(self) -> bool:
        return (self.after or self.report).ok

    def describe(self) -> str:
        report = self.report
        checked = f"{report.texts_checked:,} texts"
        if report.files_checked:
            checked += f" and {report.files_checked:,} files"
        parts = [f"verify: {checked} checked in {self.seconds:.1f} s",
                 "the SQLite file is sound" if not report.integrity else
                 f"the SQLite file is damaged: {'; '.join(report.integrity[:3])}"]
        damaged = sum(len(ids) for ids in report.damaged_packs.values())
        if damaged:
            parts.append(f"{damaged:,} texts damaged ({len(report.damaged):,} slots)")
        if report.unstored:
            parts.append(f"{len(report.unstored):,} slots without their text")
        if report.miscounted:
            parts.append(f"{report.miscounted:,} texts with a wrong count of the slots that"
                         " name them")
        if report.damaged_files:
            names = sorted({n for names in report.damaged_files.values() for n in names})
            parts.append(f"{len(report.damaged_files):,} files damaged or gone: "
                         f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
        if not (damaged or report.unstored or report.integrity or report.damaged_files
                or report.miscounted):
            parts.append("every text reads back with its SHA-1"
                         + (", and every file" if report.files_checked else ""))
        line = "; ".join(parts)
        if report.pages():
            shown = ", ".join(report.pages()[:10])
            more = f" and {len(report.pages()) - 10:,} more" if len(report.pages()) > 10 else ""
            revids = sorted({a.revid for a in report.damaged + report.unstored})
            line += f"\npages hit: {shown}{more}; revisions: {', '.join(map(str, revids[:20]))}"
            if len(revids) > 20:
                line += f" and {len(revids) - 20:,} more"
        fetched = damaged or report.unstored or report.damaged_files
        if self.recounted:
            line += f"\nrepair: {self.recounted:,} texts counted again"
        if self.repaired:
            if fetched:
                line += (f"\nrepair: {self.restored:,} slots have their text again, fetched in "
                         f"{self.requests:,} requests; {self.lost:,} could not be had from the"
                         " wiki")
            if self.files is not None:
                line += f"\nrepair: {self.files.describe()}"
        elif not report.ok:
            line += ("\nrun it again with --repair to count them again"
                     if report.miscounted and not fetched else
                     "\nrun it again with --repair to fetch them from the wiki")
        return line

    def as_json(self) -> dict[str, Any]:
        report = self.report
        return {
            "ok": self.ok, "texts_checked": report.texts_checked,
            "integrity": report.integrity,
            "damaged": [vars(a) for a in report.damaged],
            "unstored": [vars(a) for a in report.unstored],
            "files_checked": report.files_checked, "damaged_files": report.damaged_files,
            "miscounted": report.miscounted, "recounted": self.recounted,
            "pages": report.pages(), "repaired": self.repaired, "restored": self.restored,
            "lost": self.lost, "requests": self.requests, "seconds": round(self.seconds, 3),
        }


def check_mirror(settings: Settings) -> VerifySummary:
    """The checks alone, on the mirror opened read-only (a crawl may run meanwhile)."""
    assert settings.mirror is not None
    began = time.monotonic()
    with Mirror.open_read_only(Path(settings.mirror)) as mirror:
        summary = VerifySummary(_checked(mirror, settings))
    summary.seconds = time.monotonic() - began
    return summary


def _checked(mirror: Mirror, settings: Settings) -> checks.VerifyReport:
    total = checks.count_texts(mirror)
    progress = Progress("verify", total=total, initial=0, quiet=bool(settings.quiet))
    try:
        return checks.verify(mirror, progress.advance)
    finally:
        progress.close()


async def repair_mirror(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> VerifySummary:
    """The checks, then the texts they found bad fetched again and written back."""
    assert settings.mirror is not None
    directory = Path(settings.mirror)
    api_url = recorded_api_url(directory)
    if api_url is None:
        raise ConfigError(f"{directory} records no wiki to fetch texts from "
                          "(a dump imported without --wiki)")
    began = time.monotonic()
    host = httpx.URL(api_url).host
    check_etiquette(settings, host)
    with MirrorLock(directory, create=False), Mirror.open(directory, create=False) as mirror:
        summary = VerifySummary(_checked(mirror, settings))
        report = summary.report
        if report.miscounted:  # nothing to fetch for these
            summary.recounted = checks.recount_text_references(mirror)
        if not (report.damaged or report.unstored or report.damaged_files):
            if summary.recounted:
                summary.repaired, summary.after = True, checks.verify(mirror)
            summary.seconds = time.monotonic() - began
            return summary
        run_id = mirror.start_run("verify", {"repair": True})
        status = "failed"
        try:
            async with open_client(api_url, budget_for(settings, host),
                                   client_settings(settings), transport) as client:
                client.api_url = api_url
                robots = await site_policy.read_robots(client, api_url, directory)
                site_policy.check_robots(robots, settings, api_url)
                if settings.user or settings.oauth_token:
                    await authenticate(client, settings)
                fetched = await _fetch(client, summary.report)
                if report.damaged_files:
                    summary.files = await _fetch_files(client, mirror, settings, report,
                                                       transport)
                summary.requests = client.requests
            summary.restored, summary.lost = checks.restore(mirror, summary.report, fetched)
            summary.repaired = True
            summary.after = checks.verify(mirror)
            status = "complete"
        except BaseException as exc:
            status = run_status(exc)
            raise
        finally:
            mirror.finish_run(run_id, status, {"restored": summary.restored,
                                               "lost": summary.lost})
    summary.seconds = time.monotonic() - began
    return summary


async def _fetch(client: ApiClient, report: checks.VerifyReport) -> dict[tuple[int, str], bytes]:
    revids = sorted({a.revid for a in report.damaged + report.unstored})
    fetched: dict[tuple[int, str], bytes] = {}
    for start in range(0, len(revids), REVIDS_PER_REQUEST):
        pages = await fetch_revisions(client, revids[start:start + REVIDS_PER_REQUEST])
        for revision in pages_to_batch(pages).revisions:
            for slot in revision.slots:
                data = slot.text_bytes()
                if data is not None:
                    fetched[revision.revid, slot.role] = data
    return fetched


@dataclass
class _FilesRepair:
    """What jobs/files.py's download step needs (a FilesJob)."""

    client: ApiClient
    mirror: Mirror
    writer: SerialWriter
    transport: httpx.AsyncBaseTransport | None


async def _fetch_files(client: ApiClient, mirror: Mirror, settings: Settings,
                       report: checks.VerifyReport,
                       transport: httpx.AsyncBaseTransport | None) -> FilesSummary:
    """The damaged files' bytes out of the store, and fetched again as a crawl would."""
    files.forget_file_bytes(mirror, sorted(report.damaged_files))
    summary = FilesSummary()
    job = _FilesRepair(client, mirror, SerialWriter(mirror.directory), transport)
    await fetch_contents(job, settings, summary)
    return summary


def summary_json(summary: VerifySummary) -> str:
    return json.dumps(summary.as_json(), ensure_ascii=False)
