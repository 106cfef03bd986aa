"""The dependency direction of the design: jobs uses harvester and storage, which never
import each other; storage is plain synchronous code (no httpx, no trio). And in tests/,
no test module imports another: what they share is in tests/helpers.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

FORBIDDEN = {
    "harvester": {"storage", "sqlite3", "sqlite_utils"},
    "storage": {"harvester", "jobs", "httpx", "trio"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_to_its_side(package: str) -> None:
    for path in sorted((ROOT / package).glob("*.py")):
        if package == "harvester" and path.name in ("cli.py", "api.py"):
            continue  # the CLI and the Python API run jobs, and jobs may see both sides
        wrong = imported_roots(path) & FORBIDDEN[package]
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_trio_run_is_called_only_by_the_cli() -> None:
    callers = [p.relative_to(ROOT).as_posix() for pkg in ("harvester", "storage", "jobs")
               for p in (ROOT / pkg).glob("*.py") if "trio.run(" in p.read_text(encoding="utf-8")]
    assert callers == ["harvester/cli.py"]


# Runs a command in a fresh interpreter and says, at exit, whether trio was loaded.
TRIO_AT_EXIT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('trio' in sys.modules))\n"
    "from harvester.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize(("command", "loads_trio"), [
    (["show", "--rev", "1"], "False"),
    (["export", "--format", "jsonl", "--output", "-"], "False"),
    (["crawl", "http://127.0.0.1:9/api.php"], "True"),
])
def test_only_the_commands_that_talk_to_a_wiki_load_trio(
    tmp_path: Path, command: list[str], loads_trio: str
) -> None:
    """Start-up of the reading commands stays short: trio is imported by the
    commands that need it (harvester/cli.py run_async)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TRIO_AT_EXIT, command[0], "--mirror",
                           str(tmp_path / "m"), *command[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == loads_trio, (done.stdout, done.stderr)



SQL = re.compile(r"^\s*(select\s.+\sfrom\s|insert\s+into\s|update\s+\w+\s+set\s|delete\s+from\s"
                 r"|(create|drop)\s+(table|index|view|trigger)\s|pragma\s)",
                 re.IGNORECASE | re.DOTALL)


@pytest.mark.parametrize("package", ["harvester", "jobs"])
def test_storage_owns_its_sql(package: str) -> None:
    """No SQL outside storage/: no statement in a string, no connection reached into."""
    for path in sorted((ROOT / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not SQL.match(node.value), f"{path.relative_to(ROOT)}: {node.value[:60]!r}"
            if isinstance(node, ast.Attribute) and node.attr in {"db", "conn"}:
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")


def test_the_sql_pattern_finds_sql() -> None:
    assert SQL.match("select distinct ns from pages order by ns")
    assert SQL.match("\n    SELECT id FROM namespaces WHERE id >= 0")
    assert not SQL.match("select a mode for the crawl")


def imported_test_modules(source: str) -> set[str]:
    """The test modules (tests.test_*) that the imports of ``source``, a module of the
    package tests, name: absolute or relative, ``from tests import test_x``, at the top
    or inside a function alike."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = ["tests"][: max(0, 2 - node.level)] if node.level else []
            module = ".".join([*package, *([node.module] if node.module else [])])
            names = [module, *(".".join(filter(None, [module, a.name])) for a in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests":
                parts = parts[1:]
            if parts and parts[0].startswith("test_"):
                found.add(f"tests.{parts[0]}")
    return found


def test_no_test_module_imports_another() -> None:
    paths = sorted((ROOT / "tests").glob("test_*.py"))
    assert len(paths) > 1
    for path in paths:
        wrong = sorted(imported_test_modules(path.read_text(encoding="utf-8")))
        assert not wrong, (f"{path.relative_to(ROOT)} imports {wrong}; what test modules "
                           "share belongs in tests/helpers.py")


def test_the_import_finder_sees_every_form() -> None:
    source = "\n".join([
        "import {p}.test_a",
        "import {p}.test_b as b",
        "from {p}.test_c import x",
        "from {p} import helpers, test_d",
        "from . import test_e",
        "from .test_f import y",
        "def later():",
        "    from {p}.test_g import z",
        "from {p}.helpers import ROOT",
        "from . import helpers as h",
        "from .fakewiki import FakeWiki",
        "import json",
    ]).format(p="tests")  # spelt so that a grep for such imports finds none in this file
    assert sorted(imported_test_modules(source)) == [f"tests.test_{c}" for c in "abcdefg"]
