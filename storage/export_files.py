"""``export --format files``: the current version of each file under its name, with an
index and an attribution file, for a static site or an offline reader (Kiwix) to
build on.

``DIR/NAME`` holds the bytes (the name as the wiki keys it, underscores for
spaces); ``DIR/index.jsonl`` has a JSON line per file (name, path, SHA-1, size,
type, dimensions, uploader, time, licence, credit, description page) in name
order; ``DIR/attribution.txt`` a line per file (storage/file_attribution.py).
A file whose current version's bytes the mirror lacks (hidden, skipped,
missing) is in the index with its ``state`` and no ``path``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from . import file_attribution
from .attribution import load_site
from .files import STORED, FileBytes, iter_files
from .mirror import Mirror

INDEX = "index.jsonl"
ATTRIBUTION = "attribution.txt"


def safe_name(name: str) -> str:
    """A file name that stays in the directory, whatever a wiki sends (MediaWiki itself
    allows no slash in a file's name)."""
    cleaned = name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    cleaned = cleaned.replace("\x00", "%00")
    return "%2E" + cleaned[1:] if cleaned.startswith(".") else cleaned


def write_files(mirror: Mirror, directory: Path,
                progress: Callable[[int], None] | None = None) -> int:
    """Returns how many files' bytes were written."""
    site = load_site(mirror)
    store = FileBytes(mirror.directory)
    directory.mkdir(parents=True, exist_ok=True)
    index_path, notes_path = directory / INDEX, directory / ATTRIBUTION
    written = 0
    with open(f"{index_path}.partial", "w", encoding="utf-8") as index, \
            open(f"{notes_path}.partial", "w", encoding="utf-8") as notes:
        notes.write(f"Attribution for the files of {site.sitename or 'the wiki'}"
                    f" ({site.server or 'server unknown'}) in this directory.\n\n")
        for row in iter_files(mirror):
            found = file_attribution.file_attribution(mirror, site, row["name"])
            entry = index_entry(row, found)
            if row["state"] == STORED:
                entry["path"] = safe_name(row["name"])
                shutil.copyfile(store.path(row["sha1"]), directory / entry["path"])
                written += 1
            write_line(index, entry)
            notes.write(file_attribution.format_text(found, site) + "\n")
            if progress is not None:
                progress(1)
    Path(f"{index_path}.partial").replace(index_path)
    Path(f"{notes_path}.partial").replace(notes_path)
    return written


def index_entry(row: dict[str, Any], found: file_attribution.FileAttribution) -> dict[str, Any]:
    return {
        "name": row["name"], "path": None, "sha1": row["sha1"], "size": row["size"],
        "mime": row["mime"], "width": row["width"], "height": row["height"],
        "uploader": row["user"], "timestamp": row["timestamp"], "state": row["state"],
        "versions": row["versions"],
        "licence": {"name": found.licence_name, "url": found.licence_url,
                    "source": found.licence_source},
        "artist": found.artist, "credit": found.credit, "description_url": found.url,
    }


def write_line(out: TextIO, entry: dict[str, Any]) -> None:
    out.write(json.dumps(entry, ensure_ascii=False) + "\n")
