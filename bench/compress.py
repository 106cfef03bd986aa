"""Reference sizes of a dump: 7z -mx=9, xz -9 and zstd -19 --long of the XML.

Results are kept in a JSON file keyed by the dump's SHA-256 (with --cache), because
compressing a few hundred MB at these levels takes minutes. A missing program is
reported with the package to install, and its size is None.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# name -> (program, command with {src} and {dst}, Debian package)
COMPRESSORS: dict[str, tuple[str, list[str], str]] = {
    "7z -mx=9": ("7z", ["7z", "a", "-bd", "-mx=9", "{dst}", "{src}"], "p7zip-full"),
    "xz -9": ("xz", ["xz", "-9", "-k", "-c", "{src}"], "xz-utils"),
    "zstd -19 --long": ("zstd", ["zstd", "-q", "-19", "--long", "-c", "{src}"], "zstd"),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def compress_one(name: str, src: Path, work: Path) -> dict[str, Any]:
    program, template, package = COMPRESSORS[name]
    if shutil.which(program) is None:
        print(f"{program} is missing, skipping '{name}' (apt-get install {package})",
              file=sys.stderr)
        return {"bytes": None, "seconds": None, "missing": package}
    dst = work / f"{src.name}.{program}"
    dst.unlink(missing_ok=True)
    command = [part.format(src=src, dst=dst) for part in template]
    started = time.monotonic()
    if "{dst}" in template:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    else:
        with dst.open("wb") as out:
            subprocess.run(command, check=True, stdout=out)
    seconds = time.monotonic() - started
    size = dst.stat().st_size
    dst.unlink()
    return {"bytes": size, "seconds": round(seconds, 1)}


def reference_sizes(dump: Path, work: Path, cache: Path | None) -> dict[str, dict[str, Any]]:
    """Compressed sizes of ``dump`` by each compressor (cached by content when possible)."""
    store = cache / "compressed-sizes.json" if cache else None
    known: dict[str, Any] = {}
    if store and store.exists():
        known = json.loads(store.read_text())
    key = file_sha256(dump)
    sizes: dict[str, dict[str, Any]] = dict(known.get(key, {}))
    for name in COMPRESSORS:
        if sizes.get(name, {}).get("bytes") is None:
            print(f"compressing the dump with {name} ...", file=sys.stderr)
            sizes[name] = compress_one(name, dump, work)
    if store:
        known[key] = sizes
        store.write_text(json.dumps(known, indent=2))
    return sizes
