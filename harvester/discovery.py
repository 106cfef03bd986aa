"""Find a wiki's api.php from any URL of the wiki, the way MediaWiki advertises it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from harvester.client import ApiClient, map_api_error
from harvester.errors import (
    ApiError,
    HarvesterError,
    NotMediaWikiError,
    RemoteError,
    RetriesExhaustedError,
    RetryableError,
    TransportError,
)

SITEINFO_PROBE = {"action": "query", "meta": "siteinfo", "format": "json", "formatversion": "2"}
# <link rel="EditURI" type="application/rsd+xml" href="//host/w/api.php?action=rsd">
EDIT_URI = re.compile(r"<link\b[^>]*\brel=[\"']EditURI[\"'][^>]*>", re.IGNORECASE)
HREF = re.compile(r"\bhref=[\"']([^\"']+)[\"']", re.IGNORECASE)
# <meta name="generator" content="MediaWiki 1.39.17"/>: the page is a wiki even when
# its API cannot be reached, which makes for a more useful message.
GENERATOR = re.compile(
    r"<meta\b[^>]*\bname=[\"']generator[\"'][^>]*\bcontent=[\"']MediaWiki", re.IGNORECASE
)
# A MediaWiki API that lets nobody read without logging in answers every query with
# this error; it is still the API, and logging in (or the lack of it) decides the rest.
LOGIN_NEEDED = "readapidenied"


@dataclass(frozen=True)
class Probe:
    """What one candidate URL turned out to be."""

    is_api: bool
    reason: str = ""  # why it is not usable, for the final message
    api_error: ApiError | None = None  # a MediaWiki API that refuses to answer queries


async def probe_api(client: ApiClient, url: str) -> Probe:
    """Whether ``url`` is a MediaWiki Action API, and if not, why not. Throttling,
    server failures and the API's own retryable errors are retried like any call."""

    async def once() -> tuple[Probe, float]:
        response = await client.fetch_first(url, params=SITEINFO_PROBE)
        return judge_probe(response, url), float(response.extensions["started"])

    return await client.retrying(once)


def judge_probe(response: httpx.Response, url: str) -> Probe:
    if response.status_code != 200:
        return Probe(False, f"HTTP {response.status_code}")
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return Probe(False, "not JSON")
    if not isinstance(data, dict):
        return Probe(False, "JSON, but not the MediaWiki API")
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code, info = error["code"], str(error.get("info", ""))
        if code == LOGIN_NEEDED:
            return Probe(True)
        mapped = map_api_error(error, response)
        if isinstance(mapped, RetryableError):  # maxlag, ratelimited, readonly...
            raise mapped
        refusal = ApiError(code, f"the MediaWiki API at {url} refuses to answer queries: {info}")
        return Probe(False, f"API error {code}", refusal)
    query = data.get("query")
    general = query.get("general") if isinstance(query, dict) else None
    if not isinstance(general, dict):
        return Probe(False, "JSON, but not the MediaWiki API")
    if not str(general.get("generator", "")).startswith("MediaWiki"):
        return Probe(False, "an API, but not MediaWiki's")
    return Probe(True)


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
    refusal: ApiError | None = None
    wiki_page = False
    try:
        if urlsplit(url).path.endswith("api.php"):
            candidates.append(urlunsplit(urlsplit(url)._replace(query="", fragment="")))
        else:
            page = await client.fetch(url)
            wiki_page = GENERATOR.search(page.text) is not None
            advertised = api_from_page(page.text, str(page.url))
            if advertised:
                candidates.append(advertised)
        candidates += [g for g in guesses(url) if g not in candidates]
        for candidate in candidates:
            probe = await probe_api(client, candidate)
            if probe.is_api:
                return candidate
            tried.append(f"{candidate}: {probe.reason}")
            refusal = refusal or probe.api_error
    except RetriesExhaustedError as exc:
        if isinstance(exc.last, TransportError):  # never reached, as opposed to throttled
            raise RemoteError(f"cannot reach {client.host}: {exc.last}") from exc
        raise
    except HarvesterError:
        raise
    if refusal is not None:
        raise refusal
    what = f"{url} is a MediaWiki page, but its API cannot be used" if wiki_page else (
        f"no MediaWiki API found for {url}")
    raise NotMediaWikiError(f"{what} (tried {'; '.join(tried)})")
