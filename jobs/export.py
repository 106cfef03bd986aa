"""``harvester export``: stream the mirror out as JSON lines or MediaWiki XML.

The output file's suffix picks the compression (.gz, .bz2, .xz, .zst); a file
named for the format (.jsonl, .xml, ...) or with no suffix is not compressed,
and any other suffix is refused, so that nothing uncompressed is ever written
under a compressed name.
A file is written under a temporary ``.partial`` name and renamed when
complete, so a failed or interrupted export never leaves a file that looks
whole.

Beside an export to ``OUT`` goes ``OUT.attribution.txt``: the licence, then
one attribution line per exported page (storage/attribution.py), written and
renamed the same way. Plain text, uncompressed, whatever the export's
compression: it is for people, and what a republisher pastes. An export to
standard output has no place for a second file: it says so on stderr and
writes none (`harvester attribution --all` prints the same lines).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO, cast

import zstandard

from harvester.config import Settings
from harvester.errors import ConfigError
from jobs.progress import Progress
from storage import attribution, file_attribution
from storage import files as mirror_files
from storage.errors import is_disk_full
from storage.export_files import write_files
from storage.export_jsonl import write_jsonl
from storage.export_xml import write_xml
from storage.mirror import Mirror
from storage.selection import Selection

WRITERS = {"jsonl": write_jsonl, "xml": write_xml}
DIRECTORY_FORMATS = ("parquet", "files")
# The names a stream format's file may have, before any compression suffix.
FORMAT_SUFFIXES = {"jsonl": (".jsonl", ".json", ".ndjson"), "xml": (".xml",)}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
# gzip's and zstd's command-line defaults: level 9 of gzip costs three times
# the time for a few per cent.
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
XZ_PRESET = 6  # xz's own default
BUFFER = 1 << 20

Compressor = Callable[[BinaryIO], BinaryIO]


def run_export(settings: Settings, fmt: str, output: str | None,
               selection: Selection | None = None, *, uploads: bool = False) -> int:
    """Write the export; returns the number of revisions written. ``uploads``: the
    files' versions too, in the XML (as dumpBackup.php --uploads --include-files)."""
    if uploads and fmt != "xml":
        raise ConfigError("--uploads goes with --format xml (files: --format files)")
    assert settings.mirror is not None and (fmt in WRITERS or fmt in DIRECTORY_FORMATS)
    selection = selection or selection_from(settings)
    if fmt in DIRECTORY_FORMATS and output in (None, "-"):
        raise ConfigError(f"--format {fmt} writes a directory of files: give it with "
                          "--output DIR")
    if output not in (None, "-") and fmt not in DIRECTORY_FORMATS:
        check_output_name(output, fmt)
    with Mirror.open(Path(settings.mirror), create=False) as mirror:
        if fmt == "files":
            assert output is not None
            return export_files(mirror, Path(output), bool(settings.quiet))
        total = mirror.count_revisions(selection)
        # A bar on a terminal only: an export is a one-off, not a cron job to log.
        quiet = bool(settings.quiet) or not sys.stderr.isatty()
        progress = Progress(f"export {fmt}", total=total, initial=0, quiet=quiet)
        try:
            if fmt == "parquet":
                assert output is not None
                return export_parquet(mirror, Path(output), selection, progress)
            return export_stream(mirror, fmt, output, selection, progress, quiet, uploads)
        finally:
            progress.close()


def export_stream(mirror: Mirror, fmt: str, output: str | None, selection: Selection,
                  progress: Progress, quiet: bool, uploads: bool = False) -> int:
    count = 0  # stays 0 if a reader closes standard output early
    # The attribution file is renamed first, and only if the export completes:
    # leaving the export's block removes both partial files on failure.
    with open_output(output) as out, _attribution_output(output, quiet) as notes:
        if uploads:
            count = write_xml(mirror, out, selection, progress=progress.advance, uploads=True)
        else:
            count = WRITERS[fmt](mirror, out, selection, progress=progress.advance)
        if notes is not None:
            write_attribution(mirror, notes, selection, files=uploads)
    return count


def export_parquet(mirror: Mirror, directory: Path, selection: Selection,
                   progress: Progress) -> int:
    """Parquet (pyarrow, an optional dependency) into DIR/{wiki}/, with its attribution."""
    try:
        from storage.export_parquet import parquet_target, write_parquet
    except ImportError as exc:
        raise ConfigError("--format parquet needs pyarrow: pip install 'harvester[parquet]'") \
            from exc
    target = parquet_target(mirror, directory, selection)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_output(attribution_path(str(target))) as notes:
        count, _ = write_parquet(mirror, directory, selection, progress=progress.advance)
        write_attribution(mirror, notes, selection)
    return count


def export_files(mirror: Mirror, directory: Path, quiet: bool) -> int:
    """The current version of each file into DIR, with an index and the attribution;
    returns the number of files written."""
    total = mirror_files.file_counts(mirror)["files"]
    progress = Progress("export files", total=total, initial=0, unit="files",
                        quiet=quiet or not sys.stderr.isatty())
    try:
        return write_files(mirror, directory, progress.advance)
    finally:
        progress.close()


def selection_from(
    settings: Settings, titles: list[str] | None = None, since: str | None = None,
    until: str | None = None,
) -> Selection:
    """The revisions to export: the settings' namespaces and --current-only, and the
    command line's titles (``NAME``, ``PREFIX*`` or ``@FILE`` of either, a line each)."""
    exact: list[str] = []
    prefixes: list[str] = []
    for value in expand_title_files(titles or []):
        if value.endswith("*"):
            prefixes.append(value[:-1])
        else:
            exact.append(value)
    namespaces = frozenset(settings.namespaces) if settings.namespaces is not None else None
    return Selection(namespaces=namespaces, titles=tuple(exact), prefixes=tuple(prefixes),
                     since=since, until=until, current_only=bool(settings.current_only))


def expand_title_files(values: list[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        if not value.startswith("@"):
            found.append(value)
            continue
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--titles {value}: cannot read {value[1:]}: {exc}") from exc
        found += [line.strip() for line in text.splitlines() if line.strip()]
    return found


def check_output_name(output: str, fmt: str) -> None:
    """Refuse a suffix that is neither the format's nor a compression written here."""
    suffix = Path(output).suffix.lower()
    own = FORMAT_SUFFIXES.get(fmt, ())
    if not suffix or suffix in own or suffix in COMPRESSION_SUFFIXES:
        return
    raise ConfigError(
        f"--output {output}: {suffix} is not a name for {fmt} ({', '.join(own)}) nor a "
        f"compression harvester writes ({', '.join(COMPRESSION_SUFFIXES)})")


def attribution_path(output: str) -> str:
    return output + ".attribution.txt"


@contextlib.contextmanager
def _attribution_output(output: str | None, quiet: bool) -> Iterator[TextIO | None]:
    if output is None or output == "-":
        if not quiet:
            print("harvester: exporting to standard output: no attribution file written"
                  " (see `harvester attribution --all`)", file=sys.stderr)
        yield None
        return
    with open_output(attribution_path(output)) as notes:
        yield notes


def write_attribution(mirror: Mirror, out: TextIO, selection: Selection | None = None,
                      *, files: bool = False) -> int:
    """The licence, then one line per exported page (and with ``files``, per file whose
    description page is exported); returns the number of pages."""
    site = attribution.load_site(mirror)
    out.write(f"Attribution for the pages of {site.sitename or 'the wiki'}"
              f" ({site.server or 'server unknown'}) in this export.\n")  # fmt: skip
    out.write(f"Licence: {attribution.licence_text(site)}\n")
    if not site.licence_known:
        out.write(f"WARNING: {attribution.UNKNOWN_LICENCE_WARNING}.\n")
    out.write("\n")
    count = 0
    for pageid in attribution.exported_pageids(mirror, selection):
        found = attribution.page_attribution(mirror, site, pageid)
        out.write(attribution.format_text(found, site) + "\n")
        count += 1
        credit = file_attribution.of_page(mirror, site, pageid) if files else None
        if credit is not None:
            out.write(file_attribution.format_text(credit, site) + "\n")
    return count


@contextlib.contextmanager
def open_output(output: str | None) -> Iterator[TextIO]:
    """A UTF-8 text stream to ``output`` (compressed by its suffix), or to stdout."""
    if output is None or output == "-":
        with _stdout() as out:
            yield out
        return
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    try:
        # Closing the text stream ends the compressed stream; the compressors
        # leave the file itself to this outer block.
        with partial.open("wb", buffering=BUFFER) as raw, io.TextIOWrapper(
            compressor(target.name)(raw), encoding="utf-8", newline=""
        ) as out:
            yield out
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_disk_full(exc) and exc.filename is None:
            # A failed buffered write names no file: name the output in the message.
            exc.filename = str(target)
        raise
    partial.replace(target)


def compressor(name: str) -> Compressor:
    """The compressing writer over ``raw`` for a file name's suffix (.gz, .bz2, .xz, .zst)."""
    # The casts: these are binary file objects, but typeshed does not say BinaryIO.
    name = name.lower()
    if name.endswith(".gz"):
        return lambda raw: cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="wb",
                                                        compresslevel=GZIP_LEVEL))
    if name.endswith(".bz2"):
        return lambda raw: cast(BinaryIO, bz2.BZ2File(raw, "wb"))
    if name.endswith(".xz"):
        return lambda raw: cast(BinaryIO, lzma.LZMAFile(raw, "wb", preset=XZ_PRESET))
    if name.endswith(".zst"):
        return lambda raw: cast(BinaryIO, zstandard.ZstdCompressor(level=ZSTD_LEVEL)
                                .stream_writer(raw, closefd=False))
    return lambda raw: raw


@contextlib.contextmanager
def _stdout() -> Iterator[TextIO]:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # replaced by a test harness: use it as it is
        yield sys.stdout
        return
    sys.stdout.flush()
    # UTF-8 whatever the locale: the formats say so.
    out = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    try:
        yield out
        out.flush()
    except BrokenPipeError:
        # `harvester export | head`: the reader has all it wanted. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        out.detach()
