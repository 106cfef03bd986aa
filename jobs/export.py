"""``harvester export``: stream the mirror out as JSON lines."""

from __future__ import annotations

import sys
from pathlib import Path

from harvester.config import Settings
from storage.export_jsonl import write_jsonl
from storage.mirror import Mirror


def run_export(settings: Settings, fmt: str, output: str | None) -> int:
    """Write the export; to a temporary name first, so a failed export leaves no half file."""
    assert settings.mirror is not None and fmt == "jsonl"
    namespaces = set(settings.namespaces) if settings.namespaces is not None else None
    with Mirror.open(Path(settings.mirror), create=False) as mirror:
        if output is None or output == "-":
            return write_jsonl(mirror, sys.stdout, namespaces=namespaces,
                               current_only=settings.current_only)
        target = Path(output)
        partial = target.with_name(target.name + ".partial")
        with partial.open("w", encoding="utf-8") as out:
            count = write_jsonl(mirror, out, namespaces=namespaces,
                                current_only=settings.current_only)
        partial.replace(target)
        return count
