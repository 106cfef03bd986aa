"""The Python API behind ``import harvester``: the commands as functions, and read
access to a mirror (docs/python-api.md).

Like the CLI, this module sits above both sides and runs the jobs; the rest of
the ``harvester`` package is the remote side only. Settings are the CLI's: the
same names as its options and as the config file's keys (config.example.toml),
checked the same way.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from harvester.cli import run_async
from harvester.config import Settings, build_settings
from jobs.crawl import CrawlSummary, run_crawl
from jobs.export import run_export, selection_from
from jobs.sync import SyncSummary, run_sync
from storage.query import PageRow
from storage.reader import MirrorReader, Revision, open_mirror
from storage.selection import Selection

PathLike = str | os.PathLike[str]

__all__ = ["CrawlSummary", "MirrorReader", "PageRow", "Revision", "Settings", "SyncSummary",
           "crawl", "export", "open_mirror", "settings", "sync"]


def settings(mirror: PathLike, *, api: str | None = None, config: PathLike | None = None,
             **options: Any) -> Settings:
    """The settings a command would run with: the config file's, then ``options`` (the
    config's keys: ``contact``, ``namespaces``, ``concurrency``, ...). Quiet unless
    ``quiet=False``: no progress bar in a notebook."""
    overrides = {"quiet": True, **options, "mirror": os.fspath(mirror), "api": api}
    return build_settings(Path(config) if config is not None else None, overrides)


def crawl(api: str | None = None, *, mirror: PathLike, config: PathLike | None = None,
          **options: Any) -> CrawlSummary:
    """``harvester crawl``: copy a wiki (or go on with the mirror's own) into ``mirror``."""
    return run_async(run_crawl, settings(mirror, api=api, config=config, **options))


def sync(*, mirror: PathLike, config: PathLike | None = None, **options: Any) -> SyncSummary:
    """``harvester sync``: bring the mirror up to date from the wiki's recent changes."""
    return run_async(run_sync, settings(mirror, config=config, **options))


def export(
    *, mirror: PathLike, output: PathLike, format: str = "jsonl",
    namespaces: list[int] | None = None, titles: list[str] | None = None,
    since: str | date | None = None, until: str | date | None = None,
    current_only: bool = False,
) -> int:
    """``harvester export``: returns the number of revisions written to ``output`` (a
    file, or a directory for ``format="parquet"``)."""
    chosen = settings(mirror, namespaces=namespaces, current_only=current_only)
    selection: Selection = selection_from(
        chosen, titles, None if since is None else str(since),
        None if until is None else str(until))
    return run_export(chosen, format, os.fspath(output), selection)
