"""Export a mirror as Parquet, for DuckDB, pandas, Polars and Spark to read in place.

One row per revision. Columns carry the names Wikimedia's own content history
table (``mediawiki_content_history_v1``) gives them where it has the column,
so that queries written for it work here: ``page_id``, ``page_namespace_id``,
``page_title``, ``user_id``, ``user_text``, ``user_is_visible``, ``revision_id``,
``revision_parent_id``, ``revision_dt``, ``revision_comment``,
``revision_comment_is_visible``, ``revision_is_minor_edit``, ``revision_size``,
``revision_sha1``, ``revision_content_slots`` (a map from slot role to
``content_body``, ``content_format``, ``content_model``, ``content_sha1``,
``content_size``), ``revision_content_is_visible`` and ``wiki_id``. Beside
them: ``revision_tags``, ``revision_sha1_is_visible`` and
``revision_is_suppressed``. A hidden field is null with its ``*_is_visible``
false; ``page_title`` is the full title as the wiki shows it.

Files go to ``DIR/{wiki_id}/``, one set per wiki, named after the selection's
time bounds (``revisions-{since}-{until}.parquet``), so that a daily export
with ``--since``/``--until`` adds a file beside the others. Rows are written
in row groups of bounded size, so memory stays flat on a mirror of any size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .mirror import Mirror
from .selection import Selection
from .stored import StoredRevision, StoredSlot

# A row group is written when it holds this many revisions or this many bytes of text.
GROUP_ROWS = 5_000
GROUP_TEXT_BYTES = 16 * 1024 * 1024
PROGRESS_EVERY = 256

SLOT = pa.struct([
    ("content_body", pa.string()), ("content_format", pa.string()),
    ("content_model", pa.string()), ("content_sha1", pa.string()),
    ("content_size", pa.int64()),
])
SCHEMA = pa.schema([
    ("wiki_id", pa.string()),
    ("page_id", pa.int64()),
    ("page_namespace_id", pa.int64()),
    ("page_title", pa.string()),
    ("user_id", pa.int64()),
    ("user_text", pa.string()),
    ("user_is_visible", pa.bool_()),
    ("revision_id", pa.int64()),
    ("revision_parent_id", pa.int64()),
    ("revision_dt", pa.timestamp("s", tz="UTC")),
    ("revision_comment", pa.string()),
    ("revision_comment_is_visible", pa.bool_()),
    ("revision_is_minor_edit", pa.bool_()),
    ("revision_size", pa.int64()),
    ("revision_sha1", pa.string()),
    ("revision_sha1_is_visible", pa.bool_()),
    ("revision_tags", pa.list_(pa.string())),
    ("revision_content_slots", pa.map_(pa.string(), SLOT)),
    ("revision_content_is_visible", pa.bool_()),
    ("revision_is_suppressed", pa.bool_()),
])


def wiki_id_of(mirror: Mirror) -> str:
    return str((mirror.get_siteinfo("general") or {}).get("wikiid") or "wiki")


def parquet_target(mirror: Mirror, directory: Path, selection: Selection) -> Path:
    """The file an export of ``selection`` writes into ``directory``."""

    def bound(value: str | None, default: str) -> str:
        return value.replace(":", "") if value else default

    name = f"revisions-{bound(selection.since, 'start')}-{bound(selection.until, 'end')}"
    if selection.current_only:
        name += "-current"
    return directory / wiki_id_of(mirror) / f"{name}.parquet"


def write_parquet(
    mirror: Mirror, directory: Path, selection: Selection | None = None, *,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, Path]:
    """Write the revisions ``selection`` takes; returns their number and the file written.

    The file is written under a ``.partial`` name and renamed when complete.
    """
    selection = selection or Selection()
    wiki_id = wiki_id_of(mirror)
    target = parquet_target(mirror, directory, selection)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    count = pending = 0
    rows: list[dict[str, Any]] = []
    text_bytes = 0
    try:
        with pq.ParquetWriter(partial, SCHEMA, compression="zstd") as writer:
            for rev in mirror.iter_revisions(selection):
                row = revision_row(mirror, wiki_id, rev)
                rows.append(row)
                text_bytes += sum(len(s["content_body"] or "")
                                  for _, s in row["revision_content_slots"])
                if len(rows) >= GROUP_ROWS or text_bytes >= GROUP_TEXT_BYTES:
                    writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
                    rows, text_bytes = [], 0
                count += 1
                pending += 1
                if progress is not None and pending >= PROGRESS_EVERY:
                    progress(pending)
                    pending = 0
            if rows or count == 0:
                writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    if progress is not None and pending:
        progress(pending)
    return count, target


def revision_row(mirror: Mirror, wiki_id: str, rev: StoredRevision) -> dict[str, Any]:
    main = rev.slot("main")
    text_visible = not (rev.texthidden or (main is not None and main.texthidden))
    when = datetime.strptime(rev.timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return {
        "wiki_id": wiki_id,
        "page_id": rev.pageid,
        "page_namespace_id": rev.ns,
        "page_title": rev.title,
        "user_id": None if rev.userhidden else rev.userid,
        "user_text": None if rev.userhidden else rev.user,
        "user_is_visible": not rev.userhidden,
        "revision_id": rev.revid,
        "revision_parent_id": rev.parentid,
        "revision_dt": when,
        "revision_comment": None if rev.commenthidden else rev.comment,
        "revision_comment_is_visible": not rev.commenthidden,
        "revision_is_minor_edit": rev.minor,
        "revision_size": rev.size,
        "revision_sha1": None if rev.sha1hidden else rev.sha1,
        "revision_sha1_is_visible": not rev.sha1hidden,
        "revision_tags": rev.tags,
        # a list of pairs is how pyarrow takes a map
        "revision_content_slots": [(slot.role, slot_struct(mirror, rev, slot))
                                   for slot in rev.slots],
        "revision_content_is_visible": text_visible,
        "revision_is_suppressed": rev.suppressed,
    }


def slot_struct(mirror: Mirror, rev: StoredRevision, slot: StoredSlot) -> dict[str, Any]:
    hidden = rev.texthidden or slot.texthidden
    body = None if hidden or slot.text_sha1 is None else mirror.read_text(slot.text_sha1)
    return {"content_body": body, "content_format": slot.content_format,
            "content_model": slot.content_model,
            "content_sha1": None if rev.sha1hidden else slot.sha1,
            "content_size": slot.size}
