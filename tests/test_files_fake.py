"""``crawl --files`` against the fake wiki: the paths a real server cannot be made to
take on demand (a wrong SHA-1, a 404 for one version, a URL on a foreign host, a
second file host)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import trio

from harvester.config import Settings
from jobs.crawl import CrawlSummary, run_crawl
from storage.attribution import load_site
from storage.file_attribution import (
    FROM_METADATA,
    FROM_WIKI,
    file_attribution,
    format_text,
    of_page,
)
from storage.files import FileBytes
from storage.mirror import Mirror
from tests.fakewiki import FakeFile, FakeFileVersion, FakePage, FakeRevision, FakeWiki, make_pages
from tests.helpers import file_states, held


def png(seed: str, size: int = 3000) -> bytes:
    """Distinct bytes of about ``size`` (what they are does not matter here)."""
    block = hashlib.sha256(seed.encode()).digest()
    return (b"\x89PNG" + block * (size // len(block) + 1))[:size]


def wiki_with_files() -> FakeWiki:
    wiki = FakeWiki(make_pages(2, 2))
    wiki.files = [
        FakeFile("Logo.png", [
            FakeFileVersion("2020-01-01T00:00:00Z", png("logo 1")),
            FakeFileVersion("2020-02-01T00:00:00Z", png("logo 2"), hidden=True),
            FakeFileVersion("2020-03-01T00:00:00Z", png("logo 3")),
            # a revert: the first version's bytes again
            FakeFileVersion("2020-04-01T00:00:00Z", png("logo 1"), comment="revert"),
        ]),
        # the same bytes under another name
        FakeFile("Logo_copy.png", [FakeFileVersion("2021-01-01T00:00:00Z", png("logo 3"))]),
        FakeFile("Big_map.png", [FakeFileVersion("2021-02-01T00:00:00Z", png("map", 50_000))]),
    ]
    return wiki


def settings_for(wiki: FakeWiki, mirror: Path, **extra: Any) -> Settings:
    return Settings(api=wiki.api_url, mirror=str(mirror), quiet=True,
                    max_requests_per_second=0, max_requests_per_minute=0, max_retries=0,
                    files=True, **extra)


def crawl(wiki: FakeWiki, mirror: Path, **extra: Any) -> CrawlSummary:
    return trio.run(lambda: run_crawl(settings_for(wiki, mirror, **extra),
                                      transport=wiki.transport()))


def states(mirror_dir: Path) -> dict[tuple[str, str], str]:
    return {key: state for key, (state, _) in file_states(mirror_dir).items()}


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def test_every_visible_version_once_per_sha1(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None
    visible = {sha1_of(v.data) for f in wiki.files for v in f.versions if not v.hidden}
    hidden = [v.data for f in wiki.files for v in f.versions if v.hidden]
    assert held(tmp_path / "m") == visible
    assert summary.files.fetched == len(visible) == 3
    # each distinct content was sent once, whole; the hidden one never
    sent = wiki.file_bytes_sent
    assert sum(sent.values()) == sum(len(d) for d in {
        v.data for f in wiki.files for v in f.versions if not v.hidden})
    assert not any("2020-02-01" in path for path in sent)
    # no trace of the hidden version's bytes anywhere in the directory
    for path in (tmp_path / "m").rglob("*"):
        if path.is_file():
            assert hidden[0][:64] not in path.read_bytes(), path
    assert states(tmp_path / "m") == {
        ("Logo.png", "2020-01-01T00:00:00Z"): "stored",
        ("Logo.png", "2020-02-01T00:00:00Z"): "hidden",
        ("Logo.png", "2020-03-01T00:00:00Z"): "stored",
        ("Logo.png", "2020-04-01T00:00:00Z"): "stored",
        ("Logo_copy.png", "2021-01-01T00:00:00Z"): "stored",
        ("Big_map.png", "2021-02-01T00:00:00Z"): "stored",
    }


def test_a_second_crawl_fetches_nothing_again(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    crawl(wiki, tmp_path / "m")
    before = dict(wiki.file_bytes_sent)
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None and summary.files.fetched == 0
    assert wiki.file_bytes_sent == before


def test_a_new_file_with_bytes_the_mirror_holds_costs_no_download(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    crawl(wiki, tmp_path / "m")
    with Mirror.open(tmp_path / "m", create=False) as mirror:
        mirror.delete_checkpoints("files/")  # the catalogue is walked again
    wiki.files.append(FakeFile("Third.png", [FakeFileVersion("2022-01-01T00:00:00Z",
                                                             png("logo 3"))]))
    before = sum(wiki.file_bytes_sent.values())
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None and summary.files.fetched == 0
    assert sum(wiki.file_bytes_sent.values()) == before
    assert states(tmp_path / "m")[("Third.png", "2022-01-01T00:00:00Z")] == "stored"


def test_a_wrong_sha1_is_fetched_twice_then_recorded_the_rest_goes_on(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    wiki.files[2].versions[0].sha1 = "0" * 40  # the wiki says one thing, sends another
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None
    assert summary.files.mismatched == ["Big_map.png"]
    assert "Big_map.png" in summary.files.describe()
    assert wiki.file_bytes_sent["/images/Big_map.png"] == 2 * 50_000
    assert states(tmp_path / "m")[("Big_map.png", "2021-02-01T00:00:00Z")] == "mismatch"
    assert len(held(tmp_path / "m")) == 2  # the others are there, nothing half-done is
    assert not list((tmp_path / "m" / "files").rglob("*.part"))


def test_a_404_for_an_old_version_is_recorded_as_missing(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    wiki.files.append(FakeFile("Old.png", [
        FakeFileVersion("2019-01-01T00:00:00Z", png("old 1")),
        FakeFileVersion("2019-02-01T00:00:00Z", png("old 2"))]))
    wiki.file_statuses["/images/archive/2019-01-01T00:00:00Z!Old.png"] = 404
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None and summary.files.missing == ["Old.png"]
    got = states(tmp_path / "m")
    assert got[("Old.png", "2019-01-01T00:00:00Z")] == "missing"
    assert got[("Old.png", "2019-02-01T00:00:00Z")] == "stored"
    assert got[("Big_map.png", "2021-02-01T00:00:00Z")] == "stored"


def test_a_url_on_a_host_the_wiki_does_not_name_is_refused_unasked(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    wiki.files[2].versions[0].url = "http://elsewhere.test/Big_map.png"
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None and summary.files.refused == ["Big_map.png"]
    assert not [r for _, _, r in wiki.requests if r.url.host == "elsewhere.test"]
    assert states(tmp_path / "m")[("Big_map.png", "2021-02-01T00:00:00Z")] == "refused"


def test_another_file_host_named_by_the_wiki_gets_its_own_budget_and_no_login(
        tmp_path: Path) -> None:
    wiki = wiki_with_files()
    wiki.file_hosts.append("http://upload.test/files")
    wiki.files[2].versions[0].url = "http://upload.test/files/Big_map.png"
    summary = crawl(wiki, tmp_path / "m", oauth_token="good-token")
    assert summary.files is not None and summary.files.fetched == 3
    there = [r for _, _, r in wiki.requests if r.url.host == "upload.test"]
    assert len(there) == 1 and "authorization" not in there[0].headers
    here = [r for _, _, r in wiki.requests if r.url.host == wiki.host]
    assert all(r.headers.get("authorization") == "Bearer good-token" for r in here)


def test_files_over_the_size_limit_are_skipped_until_it_is_lifted(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    summary = crawl(wiki, tmp_path / "m", files_max_size=10_000)
    assert summary.files is not None and summary.files.skipped == ["Big_map.png"]
    assert "/images/Big_map.png" not in wiki.file_bytes_sent
    assert states(tmp_path / "m")[("Big_map.png", "2021-02-01T00:00:00Z")] == "skipped"
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None and summary.files.fetched == 1
    assert states(tmp_path / "m")[("Big_map.png", "2021-02-01T00:00:00Z")] == "stored"


def test_a_partial_download_resumes_with_range(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    data = wiki.files[2].versions[0].data
    part = FileBytes(tmp_path / "m").download(sha1_of(data))
    part.append(data[:20_000])
    part.close()
    crawl(wiki, tmp_path / "m")
    assert wiki.file_bytes_sent["/images/Big_map.png"] == 50_000 - 20_000
    assert sha1_of(data) in held(tmp_path / "m")


def test_a_file_with_more_versions_than_one_answer_gives_is_asked_for_alone(
        tmp_path: Path) -> None:
    wiki = wiki_with_files()
    wiki.iilimit = 2  # Logo.png has 4 versions: the generator's answer drops two
    crawl(wiki, tmp_path / "m")
    got = states(tmp_path / "m")
    assert sorted(ts for name, ts in got if name == "Logo.png") == [
        v.timestamp for v in wiki.files[0].versions]
    alone = [p for _, p, _ in wiki.requests if p.get("titles") == "File:Logo.png"]
    assert len(alone) == 2  # 4 versions, 2 an answer


def test_a_files_own_licence_comes_from_its_extended_metadata(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    wiki.files[2].versions[0].metadata = {
        "LicenseShortName": "CC BY 4.0", "LicenseUrl": "https://creativecommons.org/licenses/by/4.0",
        "Artist": '<a href="//x.test/wiki/User:Map_maker">Map &amp; maker</a>',
        "Credit": "<span>Own work</span>", "AttributionRequired": "true",
    }
    crawl(wiki, tmp_path / "m")
    with Mirror.open(tmp_path / "m", create=False) as mirror:
        site = load_site(mirror)
        found = file_attribution(mirror, site, "Big_map.png")
        other = file_attribution(mirror, site, "Logo.png")
    assert (found.licence_name, found.licence_url, found.licence_source) == (
        "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0", FROM_METADATA)
    assert (found.artist, found.credit, found.attribution_required) == (
        "Map & maker", "Own work", True)
    assert found.warning is None
    assert "Map & maker" in format_text(found, site) and "CC BY 4.0" in format_text(found, site)
    # no metadata and no description page: the wiki's licence, with a warning
    assert other.licence_source == FROM_WIKI and other.warning
    assert other.uploaders == ["Alice"]


def test_verify_names_damaged_files_and_repair_fetches_them_again(tmp_path: Path) -> None:
    from jobs.verify import check_mirror, repair_mirror

    wiki = wiki_with_files()
    crawl(wiki, tmp_path / "m")
    store = FileBytes(tmp_path / "m")
    map_sha1 = sha1_of(wiki.files[2].versions[0].data)
    logo_sha1 = sha1_of(wiki.files[0].versions[0].data)
    damaged = bytearray(store.path(map_sha1).read_bytes())
    damaged[100] ^= 0xFF
    store.path(map_sha1).write_bytes(bytes(damaged))
    store.path(logo_sha1).unlink()
    settings = settings_for(wiki, tmp_path / "m")
    report = check_mirror(settings).report
    assert not report.ok and report.files_checked == 3
    assert report.damaged_files == {map_sha1: ["Big_map.png"], logo_sha1: ["Logo.png"]}
    sent = sum(wiki.file_bytes_sent.values())
    repaired = trio.run(lambda: repair_mirror(settings, transport=wiki.transport()))
    assert repaired.files is not None and repaired.files.fetched == 2
    assert sum(wiki.file_bytes_sent.values()) - sent == 50_000 + len(wiki.files[0].versions[0].data)
    assert check_mirror(settings).report.ok
    assert len(held(tmp_path / "m")) == 3  # each read back with its SHA-1


def test_a_file_host_redirecting_elsewhere_is_refused_and_the_rest_goes_on(
        tmp_path: Path) -> None:
    wiki = wiki_with_files()

    def redirect(request: httpx.Request, params: dict[str, str]) -> httpx.Response | None:
        if request.url.path == "/images/Big_map.png":
            return httpx.Response(302, headers={"Location": "http://elsewhere.test/map.png"})
        return None

    wiki.faults.append(redirect)
    summary = crawl(wiki, tmp_path / "m")
    assert summary.files is not None and summary.files.refused == ["Big_map.png"]
    assert not [r for _, _, r in wiki.requests if r.url.host == "elsewhere.test"]
    assert states(tmp_path / "m")[("Big_map.png", "2021-02-01T00:00:00Z")] == "refused"
    assert len(held(tmp_path / "m")) == 2


def test_only_a_file_description_page_carries_its_files_attribution(tmp_path: Path) -> None:
    wiki = wiki_with_files()
    for pageid, ns in ((101, 1), (102, 6)):  # a talk page of the same name, the File: page
        wiki.pages.append(FakePage(pageid, ns, f"NS{ns}:Logo.png", [
            FakeRevision(900 + pageid, "2020-06-01T00:00:00Z", "About the logo.")]))
    crawl(wiki, tmp_path / "m")
    with Mirror.open(tmp_path / "m", create=False) as mirror:
        site = load_site(mirror)
        assert of_page(mirror, site, 101) is None
        described = of_page(mirror, site, 102)
    assert described is not None and described.name == "Logo.png"
