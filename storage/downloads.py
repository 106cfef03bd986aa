"""Files downloaded into a mirror's directory, resumably: ``NAME.part`` while it grows,
``NAME`` once its SHA-1 is checked.

Bytes are appended and flushed as they arrive, so after a kill the ``.part``
file holds exactly what was received, and the download resumes from its size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class PartialDownload:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self._out: BinaryIO | None = None

    @property
    def complete(self) -> bool:
        return self.path.is_file()

    @property
    def received(self) -> int:
        """Bytes received so far (the whole file once complete)."""
        if self.complete:
            return self.path.stat().st_size
        return self.part.stat().st_size if self.part.is_file() else 0

    def append(self, chunk: bytes) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.part.open("ab")
        self._out.write(chunk)

    def flush(self) -> None:
        """Make what was appended durable: a resumed download trusts the file's size."""
        if self._out is not None:
            self._out.flush()
            os.fsync(self._out.fileno())

    def close(self) -> None:
        if self._out is not None:
            self.flush()
            self._out.close()
            self._out = None

    def restart(self) -> None:
        """Throw away what was received (the server sent the whole file, or it was wrong)."""
        self.close()
        self.part.unlink(missing_ok=True)

    def sha1(self) -> str:
        self.close()
        digest = hashlib.sha1()
        with (self.path if self.complete else self.part).open("rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def finish(self) -> None:
        """The received bytes are the file: give it its name."""
        self.close()
        os.replace(self.part, self.path)

    def remove(self) -> None:
        self.restart()
        self.path.unlink(missing_ok=True)
