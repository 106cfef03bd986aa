"""Find a wiki's api.php from any URL of the wiki, the way MediaWiki advertises it."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from harvester.client import ApiClient
from harvester.errors import HarvesterError, NotMediaWikiError, RemoteError, TransportError

SITEINFO_PROBE = {"action": "query", "meta": "siteinfo", "format": "json", "formatversion": "2"}
# <link rel="EditURI" type="application/rsd+xml" href="//host/w/api.php?action=rsd">
EDIT_URI = re.compile(r"<link\b[^>]*\brel=[\"']EditURI[\"'][^>]*>", re.IGNORECASE)
HREF = re.compile(r"\bhref=[\"']([^\"']+)[\"']", re.IGNORECASE)


async def probe_api(client: ApiClient, url: str) -> dict[str, Any] | None:
    """The siteinfo of the API at ``url``, or None when it is not a MediaWiki API."""
    response = await client.fetch_once(url, params=SITEINFO_PROBE)
    if response.status_code != 200:
        return None
    try:
        data = json.loads(response.content)
        general = data["query"]["general"]
    except (ValueError, KeyError, TypeError):
        return None
    if not str(general.get("generator", "")).startswith("MediaWiki"):
        return None
    return dict(general)


def api_from_page(html: str, page_url: str) -> str | None:
    match = EDIT_URI.search(html)
    if not match:
        return None
    href = HREF.search(match.group(0))
    if not href:
        return None
    url = urljoin(page_url, href.group(1).replace("&amp;", "&"))
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def guesses(url: str) -> list[str]:
    parts = urlsplit(url)
    root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    found = [root + "/w/api.php", root + "/api.php"]
    directory = parts.path.rsplit("/", 1)[0]
    if parts.path.endswith(".php") and directory:
        found.insert(0, f"{root}{directory}/api.php")
    return found


async def discover_api(client: ApiClient, url: str) -> str:
    """Return the api.php URL of the wiki that ``url`` belongs to."""
    tried: list[str] = []
    candidates: list[str] = []
    try:
        if urlsplit(url).path.endswith("api.php"):
            candidates.append(urlunsplit(urlsplit(url)._replace(query="", fragment="")))
        else:
            page = await client.fetch_once(url)
            advertised = api_from_page(page.text, str(page.url))
            if advertised:
                candidates.append(advertised)
        candidates += [g for g in guesses(url) if g not in candidates]
        for candidate in candidates:
            tried.append(candidate)
            if await probe_api(client, candidate) is not None:
                return candidate
    except TransportError as exc:
        raise RemoteError(f"cannot reach {client.host}: {exc}") from exc
    except HarvesterError:
        raise
    raise NotMediaWikiError(
        f"no MediaWiki API found for {url} (tried {', '.join(tried) or 'nothing'})"
    )
