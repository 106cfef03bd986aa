"""The polite budget: one per run, shared by every worker.

Every request of a run enters through :meth:`PoliteBudget.slot`, which enforces
(in this order) the concurrency cap, any pause the server asked for
(``Retry-After``), the minimum spacing between request starts (the per-second
ceiling plus an adaptive extra that grows when the server pushes back), and
the per-minute ceiling. All delays use trio's clock so ``MockClock`` drives them
in tests.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import trio

from harvester.errors import RetryableError

# Hosts run by the Wikimedia Foundation; their API etiquette applies.
WIKIMEDIA_DOMAINS = (
    "wikipedia.org", "wikimedia.org", "wiktionary.org", "wikibooks.org", "wikinews.org",
    "wikiquote.org", "wikisource.org", "wikiversity.org", "wikivoyage.org", "wikidata.org",
    "mediawiki.org", "wikifunctions.org", "wmflabs.org", "wmcloud.org",
)

# Published limits for Wikimedia hosts: at most 3 parallel requests, and about
# 200 requests a minute for an identified client that is not logged in.
WIKIMEDIA_MAX_CONCURRENCY = 3
WIKIMEDIA_PER_MINUTE = 200


def is_wikimedia_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in WIKIMEDIA_DOMAINS)


@dataclass(frozen=True)
class BudgetPolicy:
    concurrency: int = 1
    per_second: float | None = 10.0  # ceiling on request starts; None or 0: no ceiling
    per_minute: int | None = 600  # None or 0: no ceiling
    max_retries: int = 6
    backoff_base: float = 1.0  # first retry waits about this long, then doubles
    backoff_cap: float = 120.0
    pushback_floor: float = 1.0  # extra spacing right after the server pushed back
    pushback_factor: float = 2.0  # ... multiplied on each further pushback
    pushback_cap: float = 60.0
    recovery: float = 0.8  # each success multiplies the extra spacing by this
    max_retry_after: float = 900.0  # never sleep longer than this on one instruction

    @classmethod
    def for_host(cls, host: str, **overrides: object) -> BudgetPolicy:
        """Defaults for ``host``, with explicit settings (not None) on top."""
        base = cls()
        if is_wikimedia_host(host):
            base = replace(base, per_second=4.0, per_minute=WIKIMEDIA_PER_MINUTE)
        chosen = {k: v for k, v in overrides.items() if v is not None}
        policy = replace(base, **chosen)  # type: ignore[arg-type]
        if is_wikimedia_host(host) and policy.concurrency > WIKIMEDIA_MAX_CONCURRENCY:
            policy = replace(policy, concurrency=WIKIMEDIA_MAX_CONCURRENCY)
        return policy


@dataclass
class BudgetStats:
    requests: int = 0
    retries: int = 0
    pushbacks: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


class PoliteBudget:
    def __init__(self, policy: BudgetPolicy, *, rng: random.Random | None = None) -> None:
        if policy.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.policy = policy
        self.stats = BudgetStats()
        self._rng = rng or random.Random()
        self._limiter = trio.CapacityLimiter(policy.concurrency)
        self._turn = trio.Lock()  # request starts are handed out one at a time, FIFO
        self._last_start = -math.inf
        self._recent_starts: deque[float] = deque()
        self._paused_until = -math.inf
        self._extra_spacing = 0.0
        self._last_pushback = -math.inf

    @property
    def extra_spacing(self) -> float:
        return self._extra_spacing

    @property
    def paused_until(self) -> float:
        return self._paused_until

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the concurrency slots for one request; yields its start time."""
        async with self._limiter:
            yield await self._wait_turn()

    async def _wait_turn(self) -> float:
        async with self._turn:
            while True:
                now = trio.current_time()
                start = self._earliest_start(now)
                if start <= now:
                    break
                await trio.sleep_until(start)
            self._last_start = now
            if self.policy.per_minute:
                self._recent_starts.append(now)
            self.stats.requests += 1
            return now

    def _earliest_start(self, now: float) -> float:
        spacing = self._extra_spacing
        if self.policy.per_second:
            spacing += 1.0 / self.policy.per_second
        start = max(self._paused_until, self._last_start + spacing)
        limit = self.policy.per_minute
        if limit:
            while self._recent_starts and self._recent_starts[0] <= now - 60.0:
                self._recent_starts.popleft()
            if len(self._recent_starts) >= limit:
                start = max(start, self._recent_starts[-limit] + 60.0)
        return start

    def note_success(self, started: float) -> None:
        """Recover gradually: the extra spacing shrinks on each success.

        Only requests sent after the last pushback count: answers to requests
        that were already in flight say nothing about the server's state now.
        """
        if started < self._last_pushback:
            return
        self._extra_spacing *= self.policy.recovery
        if self._extra_spacing < 0.01:
            self._extra_spacing = 0.0

    def backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random (``attempt`` from 0)."""
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2.0**attempt)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def note_failure(self, error: RetryableError, attempt: int) -> float:
        """Record a transient failure; return how long the failed worker itself waits.

        Pushback (429, 503, maxlag, ratelimited) pauses *every* worker until the
        server's ``Retry-After`` (or a backoff delay) has elapsed and widens the
        spacing between all later requests. Other failures only delay the worker
        that saw them.
        """
        self.stats.retries += 1
        kind = type(error).__name__
        self.stats.by_error[kind] = self.stats.by_error.get(kind, 0) + 1
        wait = error.retry_after if error.retry_after is not None else self.backoff_delay(attempt)
        wait = min(max(wait, 0.0), self.policy.max_retry_after)
        if not error.pushback:
            return wait
        self.stats.pushbacks += 1
        self._last_pushback = trio.current_time()
        self._paused_until = max(self._paused_until, trio.current_time() + wait)
        grown = max(self.policy.pushback_floor, self._extra_spacing * self.policy.pushback_factor)
        self._extra_spacing = min(self.policy.pushback_cap, grown)
        return 0.0  # the pause applies through slot(); no need to sleep twice
