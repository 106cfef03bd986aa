"""Progress output: a bar on a terminal, log lines for cron, nothing when quiet."""

from __future__ import annotations

import io

import pytest

from jobs import progress
from jobs.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal() -> None:
    out = Terminal()
    bar = Progress("crawl", total=1000, initial=100, quiet=False, stream=out)
    bar.advance(50, requests=3)
    bar.close()
    assert "150/1.00k" in out.getvalue() and "rev" in out.getvalue()


def test_log_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    out = io.StringIO()
    lines = Progress("crawl", total=1000, initial=0, quiet=False, stream=out)
    lines.advance(1234, requests=25)
    lines.close()
    assert out.getvalue().startswith("crawl: 1,234 revisions stored (")
    assert "25 requests" in out.getvalue() and "\r" not in out.getvalue()


def test_quiet_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    for out in (io.StringIO(), Terminal()):
        quiet = Progress("crawl", total=10, initial=0, quiet=True, stream=out)
        quiet.advance(5, requests=1)
        quiet.close()
        assert out.getvalue() == ""
