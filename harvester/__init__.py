"""harvester: a bulk dump-and-mirror harvester for MediaWiki wikis.

``import harvester`` gives the Python API (docs/python-api.md): ``open_mirror``
to read a mirror, and ``crawl``, ``sync``, ``export`` to run the commands. The
names are loaded on first use, so that the remote side's modules
(``harvester.client`` and the rest) load nothing of the local side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from harvester.api import (
        CrawlSummary,
        MirrorReader,
        PageRow,
        Revision,
        Settings,
        SyncSummary,
        crawl,
        export,
        open_mirror,
        settings,
        sync,
    )

__all__ = ["CrawlSummary", "MirrorReader", "PageRow", "Revision", "Settings", "SyncSummary",
           "__version__", "crawl", "export", "open_mirror", "settings", "sync"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harvester import api

        return getattr(api, name)
    raise AttributeError(f"module 'harvester' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
