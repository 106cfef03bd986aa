"""The examples of docs/python-api.md, run as they are against the fixture wiki, and the
shape of ``import harvester``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import harvester
from harvester.errors import ConfigError
from tests.ground_truth import parse_dump
from tests.helpers import ROOT

DOC = ROOT / "docs" / "python-api.md"
DOC_WIKI = "http://127.0.0.1:8080/api.php"


def doc_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_public_api_is_curated() -> None:
    assert set(harvester.__all__) >= {"open_mirror", "crawl", "sync", "export", "Revision"}
    for name in harvester.__all__:
        assert getattr(harvester, name) is not None
    with pytest.raises(AttributeError):
        _ = harvester.no_such_name  # type: ignore[attr-defined]
    assert (ROOT / "harvester" / "py.typed").is_file()
    with pytest.raises(ConfigError, match="unknown key 'concurency'"):
        harvester.settings("m", concurency=2)


@pytest.mark.mediawiki
def test_the_documented_examples_run(shared_server: Any, fixture_dump: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    examples = doc_examples()
    assert len(examples) == 3
    results: list[dict[str, Any]] = []
    for code in examples:
        namespace: dict[str, Any] = {}
        exec(code.replace(DOC_WIKI, shared_server.api_url), namespace)
        results.append(namespace)
    truth = [r for r in parse_dump(fixture_dump) if r["title"] == "Main Page"]
    assert results[0]["summary"].revisions == len(list(parse_dump(fixture_dump)))
    assert sorted((tmp_path / "parquet").glob("*/*.parquet"))
    history = results[2]["history"]
    assert list(history["revid"]) == [r["revid"] for r in sorted(
        truth, key=lambda r: (r["timestamp"], r["revid"]))]
    texts = {r["revid"]: r.get("text") for r in truth}
    assert {row.revid: row.text for row in history.itertuples()} == texts
