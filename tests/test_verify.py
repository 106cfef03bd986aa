"""`harvester verify [--repair]`: damaged bytes in the mirror are found, named by page, and
fetched again from the wiki until the export equals the wiki's dump again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, assert_matches_dump

pytestmark = pytest.mark.mediawiki


def harvester(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harvester", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def damage(mirror: Path) -> tuple[set[str], int]:
    """Flip bytes in the middle of the biggest pack, and forget one slot's text; returns
    the titles whose texts that hits, and the revision that lost its text."""
    db = sqlite3.connect(mirror / "mirror.sqlite")
    with db:
        pack, data = db.execute(
            "SELECT id, data FROM text_packs ORDER BY length(data) DESC LIMIT 1").fetchone()
        middle = len(data) // 2
        broken = data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 64]) + \
            data[middle + 64:]
        db.execute("UPDATE text_packs SET data = ? WHERE id = ?", (broken, pack))
        titles = {row[0] for row in db.execute(
            "SELECT DISTINCT p.title FROM text_data t JOIN slots s ON s.text_id = t.id"
            " JOIN revision_data r ON r.revid = s.revid JOIN pages p ON p.pageid = r.pageid"
            " WHERE t.pack = ?", (pack,))}
        (revid,) = db.execute(
            "SELECT s.revid FROM slots s JOIN text_data t ON t.id = s.text_id"
            " WHERE t.pack != ? AND s.role = 'main' LIMIT 1", (pack,)).fetchone()
        # the main slot is folded into the revision's row, or a row of its own
        db.execute("UPDATE revision_data SET text_id = NULL WHERE revid = ?", (revid,))
        db.execute("UPDATE slot_data SET text_id = NULL WHERE revid = ? AND role = 'main'",
                   (revid,))
    db.close()
    return titles, revid


def test_verify_names_the_damage_and_repair_restores_the_dump(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    done = harvester("import-dump", str(fixture_dump), "--mirror", str(mirror),
                     "--wiki", shared_server.api_url, "--quiet")
    assert done.returncode == 0, done.stderr
    clean = harvester("verify", "--mirror", str(mirror))
    assert clean.returncode == 0 and "every text reads back" in clean.stdout, clean.stderr

    titles, forgotten = damage(mirror)
    found = harvester("verify", "--mirror", str(mirror), "--quiet")
    assert found.returncode == 6, found.stderr
    assert "texts damaged" in found.stderr and "1 slots without their text" in found.stderr
    assert "--repair" in found.stderr and "Traceback" not in found.stderr
    report = json.loads(harvester("verify", "--mirror", str(mirror), "--json").stdout)
    assert set(report["pages"]) >= titles and report["ok"] is False
    assert forgotten in {slot["revid"] for slot in report["unstored"]}

    repaired = harvester("verify", "--mirror", str(mirror), "--repair", "--quiet",
                         "--max-rps", "0", "--max-rpm", "0")
    assert repaired.returncode == 0, repaired.stderr
    again = harvester("verify", "--mirror", str(mirror))
    assert again.returncode == 0 and "every text reads back" in again.stdout
    assert_matches_dump(mirror, fixture_dump)
