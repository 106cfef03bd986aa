"""Walks over the wiki's lists, each resumable from a continuation token.

Each walker yields ``(items, next_token)`` per API response: the items of that
response and the token that resumes right after them (None at the end). The
caller stores both in one transaction; that is the whole checkpoint protocol.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

from harvester.client import ApiClient
from harvester.continuation import Continue, iterate_query
from harvester.errors import ContinuationLoopError, RemoteError

Items = list[dict[str, Any]]
Chunk = tuple[Items, Continue | None]

# Revision properties for a full-fidelity copy. The hidden-field flags
# (texthidden, userhidden, ...) come back with "flags"/"user"/"comment"/"sha1".
REVISION_PROPS = (
    "ids|flags|timestamp|user|userid|comment|size|sha1|contentmodel|content|tags"
    "|slotsize|slotsha1|roles"
)
SITEINFO_PROPS = "general|namespaces|namespacealiases|rightsinfo|statistics"


def pipe(values: Iterable[int]) -> str:
    return "|".join(str(v) for v in values)


def query_list(response: dict[str, Any], key: str) -> Items:
    """The list ``query.<key>`` of a response: empty when absent (MediaWiki leaves out
    empty results), an error when it is not a list of objects (a broken server)."""
    query = response.get("query", {})
    found = query.get(key, []) if isinstance(query, dict) else None
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise RemoteError(f"the wiki sent a malformed '{key}' list")
    return found


ISO_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def fetch_siteinfo_and_group(
    client: ApiClient, group: str
) -> tuple[dict[str, Any], str, list[str] | None]:
    """Siteinfo, the server's time and, in the same request, the members of ``group``
    (None when there are more than one batch holds: ask :func:`group_members`)."""
    data = await client.call({
        "action": "query", "meta": "siteinfo", "siprop": SITEINFO_PROPS, "curtimestamp": "1",
        "list": "allusers", "augroup": group, "aulimit": "max",
    })
    members = None if "continue" in data else member_names(data)
    query, now = data.get("query"), data.get("curtimestamp")
    if isinstance(query, dict):
        query = {k: v for k, v in query.items() if k != "allusers"}
    if not (isinstance(query, dict) and isinstance(query.get("general"), dict)
            and isinstance(query.get("namespaces"), dict)):
        raise RemoteError("the wiki sent malformed siteinfo (no general or namespaces section)")
    if not isinstance(now, str) or not ISO_TIMESTAMP.fullmatch(now):
        raise RemoteError(f"the wiki sent a malformed current time ({now!r})")
    return query, now, members


def mediawiki_version(generator: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", generator)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def has_allrevisions(siteinfo: dict[str, Any]) -> bool:
    """list=allrevisions exists since MediaWiki 1.27."""
    return mediawiki_version(siteinfo["general"].get("generator", "")) >= (1, 27)


def allrevisions_params(
    namespaces: list[int] | None, start: str | None, end: str | None
) -> dict[str, Any]:
    """``list=allrevisions`` for every revision with content, oldest first, in [start, end]."""
    params: dict[str, Any] = {
        "action": "query", "list": "allrevisions", "arvprop": REVISION_PROPS,
        "arvslots": "*", "arvlimit": "max", "arvdir": "newer",
    }
    if namespaces is not None:
        params["arvnamespace"] = pipe(namespaces)
    if start:
        params["arvstart"] = start
    if end:
        params["arvend"] = end
    return params


async def walk_allrevisions(
    client: ApiClient, *, namespaces: list[int] | None, start: str | None, end: str | None,
    resume: Continue | None,
) -> AsyncIterator[Chunk]:
    """Every revision with content, oldest first, optionally within [start, end]."""
    params = allrevisions_params(namespaces, start, end)
    async for response, nxt in iterate_query(client, params, resume):
        yield query_list(response, "allrevisions"), nxt


async def fetch_allrevisions_batch(
    client: ApiClient, *, namespaces: list[int] | None, start: str | None, end: str | None,
    resume: Continue | None,
) -> Chunk:
    """One batch of :func:`walk_allrevisions`, for a walk whose ``end`` may move between
    batches (a time slice that another worker split)."""
    params = allrevisions_params(namespaces, start, end)
    return await fetch_batch(client, params, resume, "allrevisions")


async def fetch_batch(
    client: ApiClient, params: dict[str, Any], resume: Continue | None, key: str
) -> Chunk:
    """One request of a walk, from ``resume``: its ``query.<key>`` list and the next token."""
    token: Continue = dict(resume) if resume else {"continue": ""}
    response = await client.call({**params, **token})
    nxt = response.get("continue")
    if not isinstance(nxt, dict) or not nxt:
        nxt = None
    elif nxt == token:
        raise ContinuationLoopError(
            f"the wiki returned the continuation {nxt} again; stopping instead of looping"
        )
    return query_list(response, key), nxt


async def revision_timestamp(
    client: ApiClient, namespaces: list[int] | None, *, newest: bool = False
) -> str | None:
    """When the wiki's oldest (or newest) revision was saved; None when it has none."""
    params: dict[str, Any] = {
        "action": "query", "list": "allrevisions", "arvprop": "timestamp",
        "arvlimit": "1", "arvdir": "older" if newest else "newer",
    }
    if namespaces is not None:
        params["arvnamespace"] = pipe(namespaces)
    data = await client.call(params)
    pages = query_list(data, "allrevisions")
    if not pages or not pages[0].get("revisions"):
        return None
    return checked_timestamp(pages[0]["revisions"][0])


def checked_timestamp(item: Any) -> str:
    value = item.get("timestamp") if isinstance(item, dict) else None
    if not isinstance(value, str) or not ISO_TIMESTAMP.fullmatch(value):
        raise RemoteError(f"the wiki sent a malformed timestamp ({value!r})")
    return value


def allpages_params(namespace: int, *, content: bool, start: str | None = None,
                    end: str | None = None) -> dict[str, Any]:
    """``generator=allpages`` over a namespace in title order, from ``start`` to ``end``
    (both inclusive), with each page's info and, with ``content``, its latest revision.

    With several pages per request the API returns only the latest revision of
    each; when content is too large for one response it continues within the
    same set of pages, so a page may come without ``revisions`` in one chunk and
    with them in the next.
    """
    params: dict[str, Any] = {
        "action": "query", "generator": "allpages", "gapnamespace": str(namespace),
        "gaplimit": "max", "prop": "info",
    }
    if content:
        params.update(prop="info|revisions", rvprop=REVISION_PROPS, rvslots="*")
    if start:
        params["gapfrom"] = start
    if end:
        params["gapto"] = end
    return params


async def walk_page_catalogue(
    client: ApiClient, namespace: int, resume: Continue | None
) -> AsyncIterator[Chunk]:
    """Every page of a namespace with its info (ids, redirect flag, length, latest revision)."""
    params = allpages_params(namespace, content=False)
    async for response, nxt in iterate_query(client, params, resume):
        yield query_list(response, "pages"), nxt


async def fetch_allpages_batch(
    client: ApiClient, *, namespace: int, start: str | None, end: str | None,
    resume: Continue | None, content: bool,
) -> Chunk:
    """One batch of an allpages walk (:func:`allpages_params`) whose end may move between
    batches (a title range that another worker split)."""
    params = allpages_params(namespace, content=content, start=start, end=end)
    return await fetch_batch(client, params, resume, "pages")


async def walk_page_history(
    client: ApiClient, pageid: int, resume: Continue | None
) -> AsyncIterator[Chunk]:
    """One page's full history, oldest first (the path for wikis without allrevisions)."""
    params = {
        "action": "query", "prop": "revisions", "pageids": str(pageid), "rvprop": REVISION_PROPS,
        "rvslots": "*", "rvlimit": "max", "rvdir": "newer",
    }
    async for response, nxt in iterate_query(client, params, resume):
        yield query_list(response, "pages"), nxt


# Revision metadata without content: what reconciling a page against the wiki compares.
METADATA_PROPS = "ids|flags|timestamp|user|userid|comment|size|sha1|tags|slotsize|slotsha1|roles"
RC_PROPS = "title|ids|timestamp|loginfo"


async def oldest_recent_change(client: ApiClient) -> str | None:
    """The timestamp of the oldest entry recentchanges still holds (None when empty)."""
    data = await client.call({"action": "query", "list": "recentchanges", "rcdir": "newer",
                              "rclimit": "1", "rcprop": "timestamp", "rctype": "edit|new|log"})
    changes = query_list(data, "recentchanges")
    return checked_timestamp(changes[0]) if changes else None


async def walk_recent_changes(
    client: ApiClient, *, start: str, namespaces: list[int] | None, resume: Continue | None
) -> AsyncIterator[Chunk]:
    """Edits, page creations and log events since ``start``, oldest first."""
    params: dict[str, Any] = {
        "action": "query", "list": "recentchanges", "rcdir": "newer", "rcstart": start,
        "rctype": "edit|new|log", "rcprop": RC_PROPS, "rclimit": "max",
    }
    if namespaces is not None:
        params["rcnamespace"] = pipe(namespaces)
    async for response, nxt in iterate_query(client, params, resume):
        yield query_list(response, "recentchanges"), nxt


async def fetch_revisions(client: ApiClient, revids: list[int]) -> Items:
    """The given revisions with content and their pages' info, by revision id."""
    params = {
        "action": "query", "prop": "info|revisions", "revids": pipe(revids),
        "rvprop": REVISION_PROPS, "rvslots": "*",
    }
    pages: Items = []
    async for response, _ in iterate_query(client, params):
        pages.extend(query_list(response, "pages"))
    return pages


async def fetch_history_metadata(
    client: ApiClient, *, pageid: int | None = None, title: str | None = None
) -> tuple[dict[str, Any], Items]:
    """A page's info and the metadata of its whole current history (no content).

    The page dict has ``missing`` set when the page does not exist (deleted).
    """
    params: dict[str, Any] = {
        "action": "query", "prop": "info|revisions", "rvprop": METADATA_PROPS,
        "rvslots": "*", "rvlimit": "max", "rvdir": "newer",
    }
    if pageid is not None:
        params["pageids"] = str(pageid)
    else:
        params["titles"] = title
    page: dict[str, Any] = {}
    revisions: Items = []
    async for response, _ in iterate_query(client, params):
        for found in query_list(response, "pages"):
            page = {**page, **{k: v for k, v in found.items() if k != "revisions"}}
            revisions.extend(found.get("revisions", []))
    return page, revisions


async def walk_log_events(
    client: ApiClient, *, start: str, log_type: str | None = None, end: str | None = None
) -> AsyncIterator[Chunk]:
    """Log events since ``start`` (up to ``end``), oldest first; e.g. the suppression log,
    which never appears in recentchanges and needs the suppressionlog right."""
    params = {
        "action": "query", "list": "logevents", "ledir": "newer", "lestart": start,
        "leprop": "ids|title|type|timestamp|details", "lelimit": "max",
    }
    if log_type:
        params["letype"] = log_type
    if end:
        params["leend"] = end
    async for response, nxt in iterate_query(client, params):
        yield query_list(response, "logevents"), nxt


async def revision_ids_between(client: ApiClient, start: str, end: str) -> list[int]:
    """Ids of the revisions saved in [start, end], whatever their page."""
    params = {"action": "query", "list": "allrevisions", "arvprop": "ids", "arvlimit": "max",
              "arvdir": "newer", "arvstart": start, "arvend": end}
    revids: list[int] = []
    async for response, _ in iterate_query(client, params):
        for page in query_list(response, "allrevisions"):
            for rev in page.get("revisions", []):
                if not isinstance(rev, dict) or type(rev.get("revid")) is not int:
                    raise RemoteError(f"the wiki sent a malformed revision id ({rev!r:.80})")
                revids.append(rev["revid"])
    return revids


async def group_members(client: ApiClient, group: str) -> list[str]:
    """The names of the users in a group (e.g. "bot"), all of them."""
    params = {"action": "query", "list": "allusers", "augroup": group, "aulimit": "max"}
    names: list[str] = []
    async for response, _ in iterate_query(client, params):
        names.extend(member_names(response))
    return names


def member_names(response: dict[str, Any]) -> list[str]:
    return [user["name"] for user in query_list(response, "allusers")
            if isinstance(user.get("name"), str)]
