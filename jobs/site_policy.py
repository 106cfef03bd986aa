"""The site's rules for robots, checked before a crawl asks the API anything.

- robots.txt (harvester/robots.py says how it is read): fetched once through the
  run's budget and kept in the mirror for a day, so a daily sync costs one
  request more a day, not one a run.
- Dumps first: Wikimedia's robot policy asks bulk consumers to use the dumps
  rather than the API for old content. A full-history crawl of a Wikimedia
  wiki with more than ``DUMPS_FIRST_EDITS`` edits is refused and pointed at
  ``harvester bootstrap``, which starts from the dumps and syncs the rest.

Either check is skipped with an explicit setting, for an operator who has the
site's permission.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from harvester import robots
from harvester.budget import is_wikimedia_host
from harvester.client import ApiClient
from harvester.config import Settings
from harvester.errors import HarvesterError, PolicyRefusal
from storage.mirror import Mirror, recorded_meta

log = logging.getLogger("harvester.policy")

ROBOTS_KEY = "robots_txt"  # the mirror's meta row holding the copy
ROBOTS_MAX_AGE = 24 * 3600.0
# RFC 9309 asks crawlers to read at least 500 KiB of it; a longer one is not read at all.
ROBOTS_MAX_BYTES = 512 * 1024
# Above this many edits a full-history API crawl of a Wikimedia wiki is refused: the
# whole history of such a wiki is tens of thousands of requests or more, which its
# robot policy says to take from the dumps.
DUMPS_FIRST_EDITS = 1_000_000
ROBOT_POLICY_URL = "https://wikitech.wikimedia.org/wiki/Robot_policy"


@dataclass
class RobotsCopy:
    """What the site's robots.txt said when it was read; status None: it could not be."""

    url: str
    fetched: float  # seconds since 1970
    status: int | None
    text: str
    fresh: bool = False  # fetched by this run (and not yet kept in the mirror)

    def to_json(self) -> str:
        values = asdict(self)
        del values["fresh"]
        return json.dumps(values, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> RobotsCopy | None:
        try:
            values = json.loads(text)
            return cls(str(values["url"]), float(values["fetched"]),
                       values["status"], str(values["text"]))
        except (ValueError, KeyError, TypeError):
            return None


def robots_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))


async def read_robots(
    client: ApiClient, url: str, directory: Path, *, now: Callable[[], float] = time.time
) -> RobotsCopy:
    """The robots.txt of the wiki at ``url``: the mirror's copy if under a day old, else
    one request (one attempt: a robots.txt that cannot be read allows)."""
    where = robots_url(url)
    kept = recorded_meta(directory, ROBOTS_KEY)
    copy = RobotsCopy.from_json(kept) if kept is not None else None
    if copy is not None and copy.url == where and 0 <= now() - copy.fetched < ROBOTS_MAX_AGE:
        return copy
    try:
        response = await client.fetch_first(where, max_bytes=ROBOTS_MAX_BYTES)
    except HarvesterError as exc:
        log.info("robots.txt not read (%s): nothing to obey", exc)
        return RobotsCopy(where, now(), None, "")
    text = response.content.decode("utf-8", "replace") if response.status_code == 200 else ""
    return RobotsCopy(where, now(), response.status_code, text, fresh=True)


def check_robots(copy: RobotsCopy, settings: Settings, url: str) -> None:
    """Refuse when robots.txt keeps the harvester off ``url``'s path."""
    if settings.ignore_robots_txt or copy.status != 200:
        return
    reason = robots.refusal(copy.text, urlsplit(url).path or "/", copy.url)
    if reason is not None:
        raise PolicyRefusal(
            f"refused: {reason}. Crawl it only with the site's permission, and then "
            "with --ignore-robots-txt (or 'ignore_robots_txt = true' in the config)")


def keep_robots(mirror: Mirror, copy: RobotsCopy) -> None:
    """Keep a copy fetched by this run in the mirror, for the next day's runs."""
    if copy.fresh and copy.status is not None:
        mirror.set_meta(ROBOTS_KEY, copy.to_json())


def check_dumps_first(
    settings: Settings, url: str, siteinfo: dict[str, Any],
    *, wikimedia: Callable[[str], bool] = is_wikimedia_host,
) -> None:
    """Refuse a full-history crawl of a big Wikimedia wiki: its dumps are the way."""
    if settings.current_only or settings.live_history:
        return
    host = urlsplit(url).hostname or ""
    edits = siteinfo.get("statistics", {}).get("edits")
    if not wikimedia(host) or type(edits) is not int or edits <= DUMPS_FIRST_EDITS:
        return
    raise PolicyRefusal(
        f"refused: {host} has {edits:,} edits, and Wikimedia's robot policy "
        f"({ROBOT_POLICY_URL}) asks for the dumps, not the API, to copy a history of "
        f"more than {DUMPS_FIRST_EDITS:,}. Run `harvester bootstrap {url} --mirror DIR`: it "
        "imports the latest dump and syncs the rest from recent changes. With the site's "
        "agreement to crawl it live, add --live-history")
