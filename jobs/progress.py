"""Progress reporting: a tqdm bar on a terminal, periodic log lines otherwise (cron)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_SECONDS = 30.0


class Progress:
    """Counts revisions stored; ``total`` (from siteinfo statistics) gives the ETA."""

    def __init__(
        self, label: str, *, total: int | None, initial: int, quiet: bool,
        stream: TextIO | None = None, unit: str = "revisions",
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.count = initial
        self.quiet = quiet
        self._bar: tqdm | None = None
        self._started = time.monotonic()
        self._initial = initial
        self._last_log = self._started
        if not quiet and self.stream.isatty():
            self._bar = tqdm(
                total=total if total and total >= initial else None, initial=initial,
                unit="rev" if unit == "revisions" else unit, unit_scale=True, desc=label,
                file=self.stream, dynamic_ncols=True,
            )

    def advance(self, revisions: int, requests: int | None = None) -> None:
        """Count revisions (or the units given); ``requests`` only for jobs that talk to
        a wiki."""
        self.count += revisions
        if self._bar is not None:
            self._bar.update(revisions)
            if requests is not None:
                self._bar.set_postfix(requests=requests, refresh=False)
            return
        now = time.monotonic()
        if not self.quiet and now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            line = f"{self.label}: {self.count:,} {self.unit} stored ({self.rate():.1f}/s)"
            if requests is not None:
                line += f", {requests:,} requests"
            print(line, file=self.stream, flush=True)

    def rate(self) -> float:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return (self.count - self._initial) / elapsed

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
