"""Downloads that resume and verify: a dump file for ``bootstrap``, a file's bytes for
``crawl --files``.

The bytes go to disk as they arrive (storage/downloads.py), through the
client's budget, one slot held for the whole body. A download killed half-way
resumes with ``Range`` from the bytes on disk; the whole is then checked
against its SHA-1, and a wrong one is fetched once more before it is given up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx
import trio

from harvester.client import ApiClient
from harvester.errors import RemoteError
from storage.downloads import PartialDownload

log = logging.getLogger("harvester.transfers")

FLUSH_EVERY = 8 << 20  # bytes between flushes of a download to the file


@dataclass(frozen=True)
class Transfer:
    """What to fetch and what it must be."""

    label: str  # for messages: the dump file's or the wiki file's name
    url: str
    size: int | None  # None: not known before it comes
    sha1: str  # 40 hex


@dataclass
class Tally:
    received: int = 0  # bytes, this run
    refetched: list[str] = field(default_factory=list)  # labels whose SHA-1 was wrong once


class ChecksumMismatch(RemoteError):
    """The bytes came twice with another SHA-1 than the one they must have."""


async def fetch_verified(
    client: ApiClient, transfer: Transfer, target: PartialDownload, tally: Tally
) -> None:
    """Fetch ``transfer`` into ``target`` (resumed from what is on disk) until its SHA-1
    is the one given, and give it its name; :class:`ChecksumMismatch` after two tries."""
    if target.complete:  # its SHA-1 was checked before it got its name
        return
    for _ in range(2):
        if transfer.size is None or target.received != transfer.size:
            await client.retrying(lambda: receive(client, transfer, target, tally))
        if await trio.to_thread.run_sync(target.sha1) == transfer.sha1:
            target.finish()
            log.info("%s: complete", transfer.label)
            return
        log.warning("%s: its SHA-1 is not %s; fetching it again", transfer.label, transfer.sha1)
        tally.refetched.append(transfer.label)
        target.restart()
    raise ChecksumMismatch(
        f"{transfer.url} ({transfer.label}) came twice with another SHA-1 than {transfer.sha1}")


async def receive(
    client: ApiClient, transfer: Transfer, target: PartialDownload, tally: Tally
) -> tuple[None, float]:
    """One attempt: the bytes from what is on disk to the end (or what the server sends)."""
    offset = target.received
    if transfer.size is not None and offset > transfer.size:  # more than the file: not it
        target.restart()
        offset = 0
    headers = {"Accept-Encoding": "identity"}  # the bytes the SHA-1 is of
    if offset:
        headers["Range"] = f"bytes={offset}-"
    async with client.open_stream(transfer.url, headers=headers) as response:
        started = float(response.extensions["started"])
        if response.status_code == 416:  # nothing after offset: the SHA-1 says the rest
            return None, started
        if offset and range_start(response) != offset:  # the whole file, not the rest
            target.restart()
        unflushed = 0
        try:
            async for chunk in client.body_chunks(response):
                target.append(chunk)
                tally.received += len(chunk)
                unflushed += len(chunk)
                if unflushed >= FLUSH_EVERY:
                    target.flush()
                    unflushed = 0
        finally:
            target.close()
    return None, started


def range_start(response: httpx.Response) -> int | None:
    """Where a 206 answer's bytes start (``Content-Range: bytes START-END/SIZE``)."""
    if response.status_code != 206:
        return None
    value = response.headers.get("content-range", "")
    unit, _, spec = value.partition(" ")
    start = spec.split("-", 1)[0]
    return int(start) if unit == "bytes" and start.isdigit() else None
