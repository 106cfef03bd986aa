"""The wiki's files, as its API tells them: each version's metadata and where its
bytes are (``crawl --files``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from harvester.client import DEFAULT_PORTS, ApiClient
from harvester.continuation import Continue, iterate_query
from harvester.walkers import Chunk, query_list

# Every field a version has; the hidden ones come back as flags (filehidden, ...).
IMAGEINFO_PROPS = "timestamp|user|userid|comment|size|dimensions|sha1|mime|mediatype|url" \
    "|archivename|extmetadata"
# Of the extended metadata (CommonsMetadata and the like), what attribution needs.
EXTMETADATA = ("LicenseShortName", "LicenseUrl", "License", "UsageTerms", "Artist", "Credit",
               "AttributionRequired", "Copyrighted", "Restrictions")


# The smallest iilimit "max" can be (500; 5,000 with apihighlimits), for an answer that
# does not say which it used.
IILIMIT_MAX = 500


def file_catalogue_params() -> dict[str, Any]:
    """Every file (``generator=allimages``, by name) with its versions (``iilimit`` is
    per file)."""
    return {
        "action": "query", "generator": "allimages", "gailimit": "max",
        "prop": "imageinfo", "iiprop": IMAGEINFO_PROPS, "iilimit": "max",
        "iiextmetadatafilter": "|".join(EXTMETADATA),
    }


async def walk_file_catalogue(client: ApiClient, resume: Continue | None) -> AsyncIterator[Chunk]:
    """Each answer's pages (title and every version in ``imageinfo``), with the token
    that follows it.

    For several titles at once MediaWiki gives at most ``iilimit`` versions of each
    file and drops the rest without a continuation (ApiQueryImageInfo continues only
    for one title): a file that comes with that many is asked for again on its own,
    where the versions do continue (``iistart``)."""
    async for response, nxt in iterate_query(client, file_catalogue_params(), resume):
        pages = query_list(response, "pages")
        limits = response.get("limits", {})
        limit = limits.get("imageinfo") if isinstance(limits, dict) else None
        limit = limit if isinstance(limit, int) and limit > 0 else IILIMIT_MAX
        for page in pages:
            infos = page.get("imageinfo")
            if isinstance(infos, list) and len(infos) >= limit:
                page["imageinfo"] = await every_version(client, str(page.get("title")))
        yield pages, nxt


async def every_version(client: ApiClient, title: str) -> list[dict[str, Any]]:
    """All versions of one file, newest first, over as many answers as it takes."""
    params = {"action": "query", "titles": title, "prop": "imageinfo",
              "iiprop": IMAGEINFO_PROPS, "iilimit": "max",
              "iiextmetadatafilter": "|".join(EXTMETADATA)}
    versions: list[dict[str, Any]] = []
    async for response, _ in iterate_query(client, params):
        for page in query_list(response, "pages"):
            infos = page.get("imageinfo", [])
            if isinstance(infos, list):
                # iistart is inclusive: the version it names came at the end of the last
                versions += [i for i in infos if not versions or i != versions[-1]]
    return versions


async def file_hosts(client: ApiClient) -> set[str]:
    """The hosts the wiki names for its own files (``meta=filerepoinfo``: the local
    repository's URLs), with the API's: the only ones a file is fetched from."""
    assert client.api_url is not None
    data = await client.call({"action": "query", "meta": "filerepoinfo"})
    hosts = {host_of(client.api_url)}
    for repo in query_list(data, "repos"):
        if repo.get("local") is False:
            continue  # a shared repository (Commons): allimages lists only local files
        for key in ("url", "thumbUrl", "rootUrl"):
            value = repo.get(key)
            if isinstance(value, str) and value:
                hosts.add(host_of(urljoin(client.api_url, value)))
    return hosts


def host_of(url: str) -> str:
    """``scheme://host:port`` of a URL, the port always given: what a client is for."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or DEFAULT_PORTS.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
