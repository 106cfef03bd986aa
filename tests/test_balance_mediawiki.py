"""A crawl killed while a time slice is being split, against the real MediaWiki.

The fault proxy holds back every answer of the first slice, so the second
slice's worker finishes first and splits the first one. The crawl is killed
(SIGKILL) at one of two instants, then run again to the end:

- during the split: the split is committed, but the batch the victim had in
  flight, asked for with its old end, is not stored yet;
- right after it: a request of either half, with its new bounds, has been
  answered.

Either way the resumed mirror must equal MediaWiki's own dump, and the
checkpoints must count each revision once.
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from jobs.streams import epoch, iso
from storage.mirror import DB_NAME
from tests.faultproxy import FaultPlan, FaultProxy, Params
from tests.helpers import (
    ROOT,
    assert_matches_dump,
    check_crawl_checkpoints,
    check_store,
    harvester_command,
)

pytestmark = pytest.mark.mediawiki

FIRST = "crawl/revisions/0000"


def first_slice(method: str, params: Params) -> bool:
    return (params.get("list") == "allrevisions" and params.get("arvprop") != "timestamp"
            and "arvstart" not in params)


def slices(mirror: Path) -> dict[str, dict[str, Any]]:
    """The crawl's time slices as committed: name -> spec."""
    if not (mirror / DB_NAME).exists():
        return {}
    db = sqlite3.connect(f"file:{mirror / DB_NAME}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT name, state FROM checkpoints"
                          " WHERE name LIKE 'crawl/revisions/%'").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    finally:
        db.close()
    return {name: json.loads(state)["spec"] for name, state in rows if state}


def first_slice_requests(proxy: FaultProxy) -> list[Params]:
    return [e.params for e in proxy.entries() if first_slice(e.method, e.params)]


def after_the_split(proxy: FaultProxy, narrowed: str) -> bool:
    """Has a request of either half, with its new bounds, been answered?"""
    later = iso(epoch(narrowed) + 1)
    return any(e.params.get("arvend") == narrowed or e.params.get("arvstart") == later
               for e in proxy.entries() if e.params.get("list") == "allrevisions")


@pytest.mark.parametrize("moment", ["during the split", "right after the split"])
def test_killed_at_a_split_resumes_to_the_dump(
    shared_server: Any, fixture_dump: Path, tmp_path: Path, moment: str
) -> None:
    mirror = tmp_path / "m"
    plan = FaultPlan(latency=0.3, slow=first_slice)
    with FaultProxy(shared_server.api_url, plan) as proxy:
        command = harvester_command("crawl", proxy.api_url, "--mirror", str(mirror), "--quiet",
                                    "--concurrency", "2")
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        narrowed: str | None = None  # the victim's end once split
        while process.poll() is None and time.monotonic() < deadline:
            found = slices(mirror)
            if len(found) > 2 and narrowed is None:  # the split is committed
                narrowed = found[FIRST]["end"]
                if moment == "during the split":
                    break
            if narrowed is not None and after_the_split(proxy, narrowed):
                break
            time.sleep(0.005)
        assert process.poll() is None, "the crawl ended before the moment came"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert narrowed is not None and len(slices(mirror)) == 3
        asked = [p.get("arvend") for p in first_slice_requests(proxy)]
        if moment == "during the split":  # its batch in flight had the old end
            assert asked and narrowed not in asked, asked
        else:
            assert after_the_split(proxy, narrowed)
        check_store(mirror)
        check_crawl_checkpoints(mirror)
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert_matches_dump(mirror, fixture_dump)
    check_crawl_checkpoints(mirror)
    # the three slices tile time, each starting a second after the one before ends
    ranges = sorted((spec["start"] or "", spec["end"]) for spec in slices(mirror).values())
    assert ranges[0][0] == "" and ranges[-1][1] is None
    assert narrowed in [end for _, end in ranges]
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end is not None and iso(epoch(end) + 1) == start
