"""Wikimedia's dumps site: the latest complete full-history dump of a wiki, and its files.

The layout (https://dumps.wikimedia.org, and its mirrors): ``/{dbname}/`` lists
the dump runs as ``{date}/`` links; ``/{dbname}/{date}/dumpstatus.json`` gives
each job's status and files, with their sizes and checksums::

    {"jobs": {"metahistory7zdump": {"status": "done", "files": {
        "enwiki-20260601-pages-meta-history1.xml-p1p812.7z":
            {"size": 123, "sha1": "...", "md5": "...", "url": "/enwiki/20260601/..."}}}}}

The files are fetched from ``{base}/{dbname}/{date}/{name}``, not from the
``url`` given, so that a mirror of the dumps under another path works too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from harvester.client import ApiClient
from harvester.errors import HttpError, RemoteError

# Full history, the smaller archive first: 7z files are a fraction of the bz2 ones.
HISTORY_JOBS = ("metahistory7zdump", "metahistorybz2dump")
RUN_LINK = re.compile(r"""href=["']?(?:\./)?(\d{8})/?["'>]""")
SHA1 = re.compile(r"[0-9a-f]{40}")
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
RUNS_TRIED = 5  # the newest runs; older ones than that are not "the latest" any more


@dataclass(frozen=True)
class DumpFile:
    name: str
    size: int
    sha1: str  # 40 hex
    url: str


@dataclass(frozen=True)
class DumpRun:
    dbname: str
    date: str
    job: str
    files: list[DumpFile]

    def to_json(self) -> dict[str, object]:
        return {"dbname": self.dbname, "date": self.date, "job": self.job,
                "files": [vars(f) for f in self.files]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> DumpRun:
        files = data["files"]
        assert isinstance(files, list)
        return cls(str(data["dbname"]), str(data["date"]), str(data["job"]),
                   [DumpFile(**f) for f in files])


async def latest_full_history(client: ApiClient, base: str, dbname: str) -> DumpRun:
    """The newest run whose full-history job is done, among the newest few."""
    index = f"{base.rstrip('/')}/{dbname}/"
    response = await client.fetch(index)
    if response.status_code == 404:
        raise RemoteError(f"{index} does not exist: the dumps site has no dumps of {dbname}")
    if response.status_code != 200:
        raise HttpError(f"{client.host} answered HTTP {response.status_code} for {index}",
                        response.status_code)
    dates = sorted(set(RUN_LINK.findall(response.text)), reverse=True)
    if not dates:
        raise RemoteError(f"{index} lists no dump runs")
    for date in dates[:RUNS_TRIED]:
        found = await full_history_of(client, index + date, dbname, date)
        if found is not None:
            return found
    raise RemoteError(f"none of the {min(len(dates), RUNS_TRIED)} newest dump runs of {dbname} "
                      f"at {index} has a complete full-history dump ({', '.join(HISTORY_JOBS)})")


async def full_history_of(client: ApiClient, run: str, dbname: str, date: str) -> DumpRun | None:
    response = await client.fetch(f"{run}/dumpstatus.json")
    if response.status_code != 200:
        return None  # a run still being set up, or not in this layout
    try:
        jobs = json.loads(response.content)["jobs"]
    except (ValueError, KeyError, TypeError):
        return None
    for job in HISTORY_JOBS:
        status = jobs.get(job) if isinstance(jobs, dict) else None
        if isinstance(status, dict) and status.get("status") == "done":
            files = parse_files(status.get("files"), f"{run}/dumpstatus.json")
            if files:
                return DumpRun(dbname, date, job,
                               [DumpFile(n, z, h, f"{run}/{n}") for n, z, h in files])
    return None


def parse_files(files: object, where: str) -> list[tuple[str, int, str]]:
    """(name, size, sha1) of each file, in name order; refuses what could be a path."""
    if not isinstance(files, dict):
        return []
    found = []
    for name, info in sorted(files.items()):
        size = info.get("size") if isinstance(info, dict) else None
        sha1 = str(info.get("sha1", "")).lower() if isinstance(info, dict) else ""
        if not SAFE_NAME.fullmatch(name) or name.startswith("."):
            raise RemoteError(f"{where} names a file {name!r}, which is not a plain file name")
        if type(size) is not int or size < 0 or not SHA1.fullmatch(sha1):
            raise RemoteError(f"{where} gives no size or sha1 for {name}")
        found.append((name, size, sha1))
    return found
