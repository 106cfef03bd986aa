"""Progress reporting: a tqdm bar on a terminal, periodic log lines otherwise (cron).

Off a terminal the lines go through logging ("harvester.progress", level INFO),
so they carry the time stamp and level of every log line, or are JSON objects
with ``--log-format json`` (harvester/cli.py sets the format).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_SECONDS = 30.0
log = logging.getLogger("harvester.progress")


class Progress:
    """Counts what a job stores; ``total`` (None when it cannot be known beforehand)
    gives the ETA. ``close(complete=True)`` makes the bar end at what was done, so it
    agrees with the job's summary."""

    def __init__(
        self, label: str, *, total: int | None, initial: int, quiet: bool,
        stream: TextIO | None = None, unit: str = "revisions",
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.count = initial
        self.total = total if total and total >= initial else None
        self.quiet = quiet
        self.requests: int | None = None
        self._bar: tqdm | None = None
        self._started = time.monotonic()
        self._initial = initial
        self._last_log = self._started
        if not quiet and self.stream.isatty():
            self._bar = tqdm(
                total=self.total, initial=initial,
                unit="rev" if unit == "revisions" else unit, unit_scale=True, desc=label,
                file=self.stream, dynamic_ncols=True,
            )

    def advance(self, done: int, requests: int | None = None) -> None:
        """Count what was stored; ``requests`` (so far) only for jobs that talk to a wiki."""
        self.count += done
        if requests is not None:
            self.requests = requests
        if self._bar is not None:
            self._bar.update(done)
            if requests is not None:
                self._bar.set_postfix(requests=requests, refresh=False)
            return
        now = time.monotonic()
        if not self.quiet and now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            log.info(self.line())

    def line(self) -> str:
        of = f" of {self.total:,}" if self.total else ""
        text = f"{self.label}: {self.count:,}{of} {self.unit} stored ({self.rate():.1f}/s)"
        if self.requests is not None:
            text += f", {self.requests:,} requests"
        return text

    def rate(self) -> float:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return (self.count - self._initial) / elapsed

    def close(self, *, requests: int | None = None, complete: bool = False) -> None:
        """``requests``: the job's final count; ``complete``: it did all there was, so
        the total is what was done (the bar ends full)."""
        if requests is not None:
            self.requests = requests
        if self._bar is not None:
            if complete:
                self._bar.total = self._bar.n
            if self.requests is not None:
                self._bar.set_postfix(requests=self.requests, refresh=False)
            self._bar.refresh()
            self._bar.close()
            self._bar = None
