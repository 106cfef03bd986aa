"""A Datasette plugin: a mirror in Datasette, texts included.

Active wherever harvester and Datasette are installed together (the
``datasette`` entry point in pyproject.toml): ``datasette DIR/mirror.sqlite``.
On every connection to a mirror it registers ``revision_text(revid [, role])``
(docs/schema.md), and it describes the mirror's tables, views and columns, with
the column that names a row of ``pages`` and ``actors`` when another table
links to it (the schema declares those links as foreign keys).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from datasette import hookimpl

from .mirror import DB_NAME, register_sql_functions
from .textstore import TextStore

TIMESTAMP = "when, in UTC (ISO 8601)"
TABLES: dict[str, dict[str, Any]] = {
    "pages": {
        "description": "One row per page of the wiki.",
        "label_column": "title",
        "columns": {"pageid": "the wiki's page id", "ns": "namespace id (see namespaces)",
                    "title": "full title, with the namespace prefix",
                    "is_redirect": "1 for a redirect", "latest_revid": "the current revision",
                    "length": "bytes of the latest text"},
    },
    "revisions": {
        "description": "One row per revision (a view of revision_data). The text: "
                       "select revision_text(revid).",
        "columns": {"revid": "revision id", "pageid": "the page", "parentid":
                    "the revision before it", "timestamp": TIMESTAMP,
                    "user": "author (an IP address when anonymous); null when hidden",
                    "comment": "edit summary; null when hidden", "minor": "1 for a minor edit",
                    "size": "bytes of the content", "sha1": "SHA-1 of the content (40 hex)",
                    "tags": "change tags (JSON list)"},
    },
    "page_history": {"description": "Every revision with its page's title and namespace."},
    "latest_revisions": {"description": "Each page's newest revision."},
    "slots": {"description": "The content slots of each revision (main holds the "
                             "wikitext). The text: select revision_text(revid, role)."},
    "texts": {"description": "Each distinct text once, by SHA-1, compressed in text_packs."},
    "revision_data": {
        "description": "The rows behind the revisions view: timestamps in seconds, "
                       "authors as actor ids, and the main slot (kind, text_id) when it is "
                       "the revision's only one.",
    },
    "slot_data": {"description": "The slots of revisions that do not keep their one main "
                                 "slot in their own row."},
    "text_data": {"description": "Where each text is: its pack and position; refs: how "
                                 "many slots name it."},
    "text_packs": {"description": "The texts' bytes: line deltas in one zstd frame a pack "
                                  "(docs/schema.md has the format)."},
    "actors": {"description": "Each (name, user id) an edit was attributed to.",
               "label_column": "name"},
    "users": {"description": "Registered users met in the history."},
    "namespaces": {"description": "The wiki's namespaces.", "label_column": "name"},
    "tombstones": {"description": "Pages deleted on the wiki, with the deletion's log entry."},
    "runs": {"description": "Every crawl, sync and import, with its outcome."},
    "checkpoints": {"description": "Where each walk of a crawl or sync stands."},
}


def is_mirror(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                       " AND name IN ('slot_data', 'text_data', 'text_packs')").fetchone()
    return bool(row and row[0] == 3)


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    if is_mirror(conn):
        register_sql_functions(conn, TextStore(conn))


@hookimpl
def get_metadata(datasette: Any) -> dict[str, Any]:
    mirrors = [name for name, database in datasette.databases.items()
               if database.path and Path(database.path).name == DB_NAME]
    return {"databases": {name: {"tables": TABLES} for name in mirrors}}
