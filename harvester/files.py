"""The wiki's files, as its API tells them: each version's metadata and where its
bytes are (``crawl --files``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from harvester.client import ApiClient
from harvester.continuation import Continue, iterate_query
from harvester.walkers import Chunk, query_list

# Every field a version has; the hidden ones come back as flags (filehidden, ...).
IMAGEINFO_PROPS = "timestamp|user|userid|comment|size|dimensions|sha1|mime|mediatype|url" \
    "|archivename"


def file_catalogue_params() -> dict[str, Any]:
    """Every file (``generator=allimages``, by name) with all its versions: ``iilimit``
    is per file, and a file with more versions than that continues in the next answer
    (``iicontinue``), the same files given again without the versions already sent."""
    return {
        "action": "query", "generator": "allimages", "gailimit": "max",
        "prop": "imageinfo", "iiprop": IMAGEINFO_PROPS, "iilimit": "max",
    }


async def walk_file_catalogue(client: ApiClient, resume: Continue | None) -> AsyncIterator[Chunk]:
    """Each answer's pages (title and ``imageinfo``), with the token that follows it."""
    async for response, nxt in iterate_query(client, file_catalogue_params(), resume):
        yield query_list(response, "pages"), nxt


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
    port = port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
