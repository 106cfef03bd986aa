"""Progress output: a bar on a terminal, log lines for cron, nothing when quiet."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from harvester.cli import configure_logging
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


def test_log_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    out = io.StringIO()
    with caplog.at_level(logging.INFO, logger="harvester.progress"):
        lines = Progress("crawl", total=10_000, initial=0, quiet=False, stream=out)
        lines.advance(1234, requests=25)
        lines.close()
    (record,) = caplog.records
    assert record.getMessage().startswith("crawl: 1,234 of 10,000 revisions stored (")
    assert "25 requests" in record.getMessage() and out.getvalue() == ""


def test_the_bar_ends_at_what_was_done_with_the_final_request_count() -> None:
    out = Terminal()
    bar = Progress("crawl", total=3072, initial=0, quiet=False, stream=out)
    bar.advance(2830, requests=65)
    bar.close(requests=73, complete=True)  # the wiki's count was above what there was
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "2.83k/2.83k" in last and "100%" in last and "requests=73" in last


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("harvester.progress").setLevel(logging.NOTSET)


def test_log_lines_off_a_terminal_have_an_iso_time_and_a_level(
        monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    for fmt in ("text", "json"):
        err = io.StringIO()  # not a terminal
        monkeypatch.setattr("sys.stderr", err)
        configure_logging(0, fmt)
        logging.getLogger("harvester.progress").info("crawl: 10 revisions stored")
        logging.getLogger("harvester.sync").info("not shown without -v")
        logging.getLogger("harvester.files").warning("Big.png: refused")
        lines = err.getvalue().splitlines()
        assert len(lines) == 2, lines
        if fmt == "text":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO harvester.progress: "
                                r"crawl: 10 revisions stored", lines[0]), lines[0]
            assert " WARNING harvester.files: Big.png: refused" in lines[1]
        else:
            first, second = (json.loads(line) for line in lines)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["time"])
            assert (first["level"], first["logger"], first["message"]) == (
                "INFO", "harvester.progress", "crawl: 10 revisions stored")
            assert second["level"] == "WARNING"


def test_quiet_keeps_the_progress_lines_out(monkeypatch: pytest.MonkeyPatch,
                                            restore_logging: None) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    configure_logging(0, "text", quiet=True)
    logging.getLogger("harvester.progress").info("crawl: 10 revisions stored")
    assert err.getvalue() == ""


def test_quiet_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    for out in (io.StringIO(), Terminal()):
        quiet = Progress("crawl", total=10, initial=0, quiet=True, stream=out)
        quiet.advance(5, requests=1)
        quiet.close()
        assert out.getvalue() == ""
