"""Many wikis in one run: ``crawl --all`` and ``sync --all`` over a config's
``[[wiki]]`` tables (docs/fleet.md).

- ``--jobs N``: the wikis run N at a time, each a task of one nursery.
- One polite budget per host, shared by every wiki on it (the wikis of a farm
  on one server): N jobs never become N budgets against one host, whose
  concurrency cap and rate ceilings then hold for all of them together.
- ``--shard K/N``: a stable share of the wikis, those whose name's SHA-1 is K
  modulo N, so that N machines, each run by its own scheduler (cron, systemd
  timers, a Kubernetes Indexed Job whose completion index is K), split a fleet
  without talking to each other. A wiki keeps its shard whatever is added to or
  removed from the config.
- A failure stops only its wiki; the results come back in the config's order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import trio

from harvester.budget import PoliteBudget
from harvester.config import Settings
from harvester.errors import ConfigError, first_cause

DEFAULT_JOBS = 3
T = TypeVar("T")
Job = Callable[..., Awaitable[T]]  # run_crawl or run_sync: (settings, transport=, budgets=)


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 0 <= K < N (a Kubernetes completion index is K as it is)."""
    k, slash, n = text.partition("/")
    if slash and k.isdigit() and n.isdigit() and 0 <= int(k) < int(n):
        return int(k), int(n)
    raise ConfigError(f"--shard takes K/N with 0 <= K < N (e.g. 0/4), not {text!r}")


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % n == k


def select_wikis(wikis: list[tuple[str, Settings]], shard: tuple[int, int] | None
                 ) -> list[tuple[str, Settings]]:
    """The shard's wikis; two wikis with one name are a config error."""
    names = [name for name, _ in wikis]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"two [[wiki]] tables have the same name: {repeated[0]}")
    return [(name, settings) for name, settings in wikis if in_shard(name, shard)]


async def run_fleet(
    job: Job[T], wikis: list[tuple[str, Settings]], jobs: int = DEFAULT_JOBS, *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[tuple[str, T | Exception]]:
    """``job`` for each wiki, ``jobs`` at a time, one budget per host among them all."""
    if jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    budgets: dict[str, PoliteBudget] = {}
    limiter = trio.CapacityLimiter(jobs)
    results: dict[str, T | Exception] = {}

    async def one(name: str, settings: Settings) -> None:
        try:
            results[name] = await job(settings, transport=transport, budgets=budgets)
        except BaseExceptionGroup as group:
            cause = first_cause(group)
            if not isinstance(cause, Exception):
                raise
            results[name] = cause
        except Exception as exc:  # reported per wiki; the others go on
            results[name] = exc

    async def in_turn(group: list[tuple[str, Settings]]) -> None:
        async with limiter:
            for name, settings in group:
                await one(name, settings)

    async with trio.open_nursery() as nursery:
        for group in by_mirror(wikis):
            nursery.start_soon(in_turn, group)
    return [(name, results[name]) for name, _ in wikis]


def by_mirror(wikis: list[tuple[str, Settings]]) -> list[list[tuple[str, Settings]]]:
    """The wikis in groups that share a mirror (a mirror has one writer at a time: they
    run one after another), in the config's order."""
    groups: dict[str, list[tuple[str, Settings]]] = {}
    for index, (name, settings) in enumerate(wikis):
        key = str(Path(settings.mirror).resolve()) if settings.mirror else f"#{index}"
        groups.setdefault(key, []).append((name, settings))
    return list(groups.values())
