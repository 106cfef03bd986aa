"""storage/schema.sql is the schema; the migrations of storage/migrations.py end in it."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path
from typing import Any

import fixture_xml
import pytest
import zstandard

from storage import dumpimport
from storage.export_jsonl import write_jsonl
from storage.migrations import FOLDED_SLOTS, MIGRATIONS
from storage.mirror import DB_NAME, Mirror
from storage.verify import verify
from tests.helpers import make_mirror_at


def normalised(sql: str) -> str:
    sql = re.sub(r'["\[\]`]', "", sql.lower())
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r"\s*([(),=])\s*", r"\1", sql).strip()


def structure(path: Path) -> dict[str, Any]:
    """What a schema is, without how its statements happen to be written."""
    db = sqlite3.connect(path)
    out: dict[str, Any] = {}
    try:
        rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema"
                          " WHERE name NOT LIKE 'sqlite_%' AND name != '_migrations'").fetchall()
        for kind, name, table, sql in rows:
            if kind == "table" and not sql.upper().startswith("CREATE VIRTUAL"):
                if name.startswith("search_index_"):
                    continue  # FTS5's own tables, made by the virtual table
                out[name] = (
                    db.execute(f"PRAGMA table_xinfo({name})").fetchall(),
                    sorted(db.execute(f"PRAGMA foreign_key_list({name})").fetchall()),
                    "without rowid" in normalised(sql),
                )
            elif kind == "index":
                where = re.split(r"\bwhere\b", normalised(sql), maxsplit=1)[1:]
                out[name] = (table, db.execute(f"PRAGMA index_xinfo({name})").fetchall(), where)
            else:
                out[name] = (kind, table, normalised(sql))
        out["auto_vacuum"] = db.execute("PRAGMA auto_vacuum").fetchone()
    finally:
        db.close()
    return out


def test_a_new_mirror_is_made_from_the_declarations_in_one_step(tmp_path: Path) -> None:
    with Mirror.open(tmp_path / "new", create=True) as m:
        rows = m.db.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall()
    assert rows == [(i, name) for i, (name, _) in enumerate(MIGRATIONS, start=1)]
    current = structure(tmp_path / "new" / DB_NAME)
    assert {"revision_data", "slot_data", "text_data", "text_packs", "pages"} <= set(current)
    assert not any(name.endswith(("_update", "_delete")) for name in current)  # no write triggers
    assert current["slot_data"][1]  # foreign keys declared


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS)))
def test_every_earlier_version_is_upgraded_to_the_same_schema(tmp_path: Path,
                                                              version: int) -> None:
    with Mirror.open(tmp_path / "new", create=True):
        pass
    make_mirror_at(tmp_path / "old", version)
    with Mirror.open(tmp_path / "old", create=False) as m:
        assert m.db.execute("SELECT max(version) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
        assert m.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert structure(tmp_path / "old" / DB_NAME) == structure(tmp_path / "new" / DB_NAME)


# -- a mirror of the store before packs ----------------------------------------------------

_BARE = {"write_checksum": 0, "write_content_size": 0, "write_dict_id": 0,
         "format": zstandard.FORMAT_ZSTD1_MAGICLESS}  # fmt: skip


def _bare_frame(data: bytes, base: bytes | None) -> bytes:
    """A frame as the store before packs wrote it: bare zstd, a delta on its base."""
    params = zstandard.ZstdCompressionParameters.from_level(9, window_log=27, **_BARE)
    if base is None:
        return zstandard.ZstdCompressor(compression_params=params).compress(data)
    raw = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(dict_data=raw, compression_params=params).compress(data)


_BEFORE_PACKS = 7  # the schema of the store that kept one frame per text
_COPIED = ("meta", "siteinfo", "namespaces", "namespace_aliases", "pages", "actors",
           "content_kinds", "revision_data", "slot_data", "checkpoints", "runs")


def as_mirror_before_packs(source: Path, target: Path) -> None:
    """``source``'s rows in a mirror of schema 7, each text a bare frame on the one before
    it in its page (chains up to 16 long), as that store kept them."""
    make_mirror_at(target, _BEFORE_PACKS)
    with Mirror.open(source, create=False) as m:
        texts = [(tid, bytes(sha1), m.texts.get_bytes(bytes(sha1).hex()), pack)
                 for tid, sha1, pack in m.db.execute(
                     "SELECT id, sha1, pack FROM text_data ORDER BY pack, position")]
    conn = sqlite3.connect(target / DB_NAME)
    conn.execute("ATTACH ? AS source", (str(source / DB_NAME),))
    with conn:
        for table in _COPIED:
            if table == "revision_data":  # its timestamps were ISO text then
                conn.execute(
                    "INSERT INTO revision_data SELECT revid, pageid, parentid,"
                    " strftime('%Y-%m-%dT%H:%M:%SZ', timestamp, 'unixepoch'), actor, comment,"
                    " minor, size, sha1, tags, texthidden, userhidden, commenthidden,"
                    " sha1hidden, suppressed FROM source.revision_data")
            elif table == "slot_data":  # main slots were never folded into their revision
                conn.execute(
                    "INSERT INTO slot_data SELECT * FROM source.slot_data UNION ALL"
                    " SELECT revid, 'main', kind, size, sha1, text_id, texthidden, 0"
                    " FROM source.revision_data WHERE kind IS NOT NULL")
            else:
                conn.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
        previous: tuple[int, bytes, int, int] | None = None  # id, bytes, pack, depth
        for tid, sha1, data, pack in texts:
            base = previous if previous and previous[2] == pack and previous[3] < 16 else None
            depth = 0 if base is None else base[3] + 1
            conn.execute("INSERT INTO text_data (id, sha1, base, depth, size, children, data)"
                         " VALUES (?, ?, ?, ?, ?, 0, ?)",
                         (tid, sha1, base and base[0], depth, len(data),
                          _bare_frame(data, base and base[1])))
            previous = (tid, data, pack, depth)
    conn.close()


def jsonl(mirror: Path) -> list[str]:
    out = io.StringIO()
    with Mirror.open(mirror, create=False) as m:
        write_jsonl(m, out)
    return out.getvalue().splitlines()


def test_a_mirror_of_the_store_before_packs_exports_the_same_after_its_upgrade(
    tmp_path: Path,
) -> None:
    dump = tmp_path / "fixture.xml"
    fixture_xml.generate_fixture_xml(dump, scale=1)
    with Mirror.open(tmp_path / "now", create=True) as m:
        dumpimport.import_dump(m, dump, parallel=False)
    as_mirror_before_packs(tmp_path / "now", tmp_path / "before")
    with sqlite3.connect(tmp_path / "before" / DB_NAME) as conn:
        assert conn.execute("SELECT max(depth), count(*) FROM text_data").fetchone()[0] == 16
    expected = jsonl(tmp_path / "now")
    assert len(expected) > 2_000
    assert jsonl(tmp_path / "before") == expected  # upgraded on opening, revision by revision
    with Mirror.open(tmp_path / "before", create=False) as m:
        assert m.db.execute("SELECT count(*) FROM text_packs").fetchone()[0] > 100
        assert m.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert structure(tmp_path / "before" / DB_NAME) == structure(tmp_path / "now" / DB_NAME)


# -- a mirror from before main slots were folded into their revisions ----------------------

_BEFORE_FOLDING = [name for name, _ in MIGRATIONS].index(FOLDED_SLOTS)


def as_mirror_before_folding(source: Path, target: Path) -> None:
    """``source``'s rows in a mirror of the schema before FOLDED_SLOTS: every slot a row
    of slot_data, texts without counts."""
    make_mirror_at(target, _BEFORE_FOLDING)
    conn = sqlite3.connect(target / DB_NAME)
    conn.execute("ATTACH ? AS source", (str(source / DB_NAME),))
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
        " AND name NOT LIKE 'search_index%' AND name != '_migrations'")]
    with conn:
        for table in tables:
            columns = ", ".join(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
            conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM source.{table}")
        conn.execute("INSERT INTO slot_data SELECT revid, 'main', kind, size, sha1, text_id,"
                     " texthidden, 0 FROM source.revision_data WHERE kind IS NOT NULL")
    conn.close()


def test_a_mirror_before_folded_slots_is_upgraded_in_place_and_exports_the_same(
    tmp_path: Path,
) -> None:
    dump = tmp_path / "fixture.xml"
    stats = fixture_xml.generate_fixture_xml(dump, scale=1)
    with Mirror.open(tmp_path / "now", create=True) as m:
        dumpimport.import_dump(m, dump, parallel=False)
    as_mirror_before_folding(tmp_path / "now", tmp_path / "before")
    with sqlite3.connect(tmp_path / "before" / DB_NAME) as conn:
        slots_before, texts_named = conn.execute(
            "SELECT count(*), count(text_id) FROM slot_data").fetchone()
    assert slots_before > stats.revisions  # one each, and two for the two-slot page's
    expected = jsonl(tmp_path / "now")
    assert jsonl(tmp_path / "before") == expected  # upgraded on opening, revision by revision
    with Mirror.open(tmp_path / "before", create=False) as m:
        db = m.db.conn
        folded, = db.execute("SELECT count(*) FROM revision_data WHERE kind IS NOT NULL").fetchone()
        multi = db.execute("SELECT DISTINCT revid FROM slot_data").fetchall()
        assert folded + len(multi) == stats.revisions
        assert 0 < len(multi) < 10  # the two-slot page's revisions, no more
        assert verify(m).ok  # every text's count of the slots naming it is right
        assert db.execute("SELECT sum(refs) FROM text_data").fetchone()[0] == texts_named
    assert structure(tmp_path / "before" / DB_NAME) == structure(tmp_path / "now" / DB_NAME)
