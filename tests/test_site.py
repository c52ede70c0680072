"""The static report site: pages, feeds and JSON built from real history, checked as files.

The browser checks (links, console, screenshots) live in test_site_browser.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import pytest
from bs4 import BeautifulSoup
from conftest import Clock, document_entry, invoke, write_config
from pytest_httpserver import HTTPServer

from tracker.analysis.diff import word_diff
from tracker.app.history import change_for, change_json
from tracker.app.pipeline import Tracker, run
from tracker.config.settings import load_config
from tracker.core.times import iso
from tracker.ops.demo import run_demo
from tracker.publish import site_layout as layout
from tracker.publish.report import side_by_side
from tracker.publish.site import SiteError, build_site

AZURE = "azure-openai/code-of-conduct"
OPENAI = "openai/usage-policies"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline demo's working folder: real history fetched over 127.0.0.1, site built."""
    workdir = tmp_path_factory.mktemp("site") / "demo"
    run_demo(workdir, echo=lambda _: None)
    return workdir


@pytest.fixture
def demo_tracker(demo: Path) -> Tracker:
    with Tracker.open(load_config(demo / "tracker.toml")) as tracker:
        yield tracker


def soup_of(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")


def local_targets(page: Path, soup: BeautifulSoup) -> list[tuple[str, Path]]:
    """Every href/src on a page that is not an outside link, resolved to a file."""
    out = []
    for tag in soup.find_all(href=True) + soup.find_all(src=True):
        value = tag.get("href") or tag.get("src")
        parts = urlsplit(value)
        if parts.scheme or value.startswith("//"):
            continue
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        out.append((value, target))
    return out


def parse_feed(path: Path) -> feedparser.FeedParserDict:
    """Parse as a feed reader would, told the content type a web server sends."""
    return feedparser.parse(
        path.read_bytes(), response_headers={"content-type": "application/atom+xml"}
    )


# --- what the reader sees ---------------------------------------------------------------------


def test_demo_builds_every_page(demo: Path) -> None:
    site = demo / "site"
    for path in (
        layout.HOME,
        layout.ALL_CHANGES,
        layout.SEARCH,
        layout.CHANGES_JSON,
        layout.DOCUMENTS_JSON,
        layout.STYLESHEET,
        layout.SEARCH_SCRIPT,
        layout.SEARCH_INDEX,
        layout.document_page(AZURE),
        layout.document_page(OPENAI),
        layout.topic_page("law-enforcement"),
        layout.feed("all"),
        layout.feed("documents", AZURE),
        layout.feed("topics", "military"),
    ):
        assert (site / path).is_file(), path


def test_home_lists_documents_changes_and_topics(demo: Path) -> None:
    soup = soup_of(demo / "site" / "index.html")
    assert [h.get_text() for h in soup.find_all(["h1", "h2"])] == [
        "tos-tracker",
        "Documents",
        "Latest changes",
        "Watched topics",
    ]
    rows = soup.select("#documents ~ .table-wrap tbody tr")
    assert {r.th.get_text(strip=True) for r in rows} == {
        "Code of conduct for Azure OpenAI Service (labelled reconstruction)",
        "Usage policies",
    }
    azure = next(r for r in rows if "Azure" in r.get_text())
    assert "law enforcement" in azure.get_text()  # the latest change's flags
    dates = [t["datetime"] for t in soup.select("ul.changes time")]
    assert dates == sorted(dates, reverse=True) and len(dates) == 4
    topics = [" ".join(li.get_text().split()) for li in soup.select("#topics + ul li")]
    assert "law enforcement: 4 flagged changes · feed" in topics


def test_change_page_has_flags_first_diff_side_by_side_and_neighbours(demo: Path) -> None:
    page = demo / "site" / layout.document_dir(OPENAI) / "changes" / "20250913T003124Z.html"
    soup = soup_of(page)
    headings = [h.get_text() for h in soup.find_all("h2")]
    assert headings[0] == "Flagged clauses"
    assert headings[-2:] == ["Inline diff", "Side by side"]
    assert soup.find("a", rel="prev")["href"] == "20240110T183037Z.html"
    assert soup.find("a", rel="next")["href"] == "20250929T123119Z.html"
    table = soup.find("table", class_="sbs")
    assert table.find("del") and table.find("ins")
    # Deleted words sit only in the old column, inserted only in the new one.
    assert all(d.find_parent("td")["class"][0] == "old" for d in table.find_all("del"))
    assert all(i.find_parent("td")["class"][0] == "new" for i in table.find_all("ins"))
    links = {a.get_text(): a["href"] for a in soup.select("dl.facts a")}
    assert links["text"].startswith("../versions/") and links["text"].endswith(".txt")


def test_military_clause_is_deleted_on_its_change_page(demo: Path) -> None:
    page = demo / "site" / layout.document_dir(OPENAI) / "changes" / "20240110T183037Z.html"
    soup = soup_of(page)
    deleted = " ".join(d.get_text() for d in soup.select(".diff del"))
    assert "Military and warfare" in deleted
    flagged = soup.find("section", class_="flags").get_text(" ", strip=True)
    assert "military and weapons" in flagged


def test_document_page_timeline_links_every_version(demo: Path, demo_tracker: Tracker) -> None:
    page = demo / "site" / layout.document_page(OPENAI)
    soup = soup_of(page)
    versions = demo_tracker.store.versions(OPENAI)
    times = [t["datetime"] for t in soup.select("table.list td.when time")]
    assert times == [iso(v.captured_at) for v in reversed(versions)]
    texts = [a["href"] for a in soup.find_all("a", string="text")]
    assert len(texts) == len(versions)
    for href in texts:
        assert (page.parent / href).read_bytes() in {
            (demo_tracker.store.root / v.path).read_bytes() for v in versions
        }
    raw = soup.find("a", string="raw HTML (gzip)")["href"]
    assert raw.endswith(".raw.gz") and (page.parent / raw).is_file()
    current = soup.find("div", class_="text").get_text()
    assert current == demo_tracker.store.read_text(versions[-1])


def test_topic_page_lists_flagged_changes_across_documents(demo: Path) -> None:
    soup = soup_of(demo / "site" / layout.topic_page("law-enforcement"))
    items = soup.select("ul.changes > li")
    assert len(items) == 4
    titles = {li.find("a", class_="title").get_text() for li in items}
    assert titles == {
        "Code of conduct for Azure OpenAI Service (labelled reconstruction)",
        "Usage policies",
    }
    assert "by or for a police department in the United States" in soup.get_text()
    military = soup_of(demo / "site" / layout.topic_page("military"))
    assert "police department" not in military.get_text()


def test_every_local_link_resolves_and_nothing_loads_from_outside(demo: Path) -> None:
    site = demo / "site"
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        soup = soup_of(page)
        for value, target in local_targets(page, soup):
            assert target.is_file(), f"{page.relative_to(site)} links to missing {value}"
            assert site in target.parents, f"{page} links outside the site: {value}"
        for tag in soup.find_all(src=True):
            assert not urlsplit(tag["src"]).scheme, f"{page} loads {tag['src']}"
        for tag in soup.find_all("link", href=True):
            # data: is inline (the empty favicon that spares a 404); nothing else has a scheme
            assert urlsplit(tag["href"]).scheme in ("", "data"), f"{page} loads {tag['href']}"


def test_pages_are_accessible_in_structure(demo: Path) -> None:
    for page in sorted((demo / "site").rglob("*.html")):
        soup = soup_of(page)
        assert soup.html["lang"] == "en"
        assert soup.find("main", id="content") and soup.find("header") and soup.find("footer")
        assert soup.find("a", class_="skip")["href"] == "#content"
        levels = [int(h.name[1]) for h in soup.find_all(re.compile(r"^h[1-6]$"))]
        assert levels[0] == 1 and levels.count(1) == 1, page
        assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), (page, levels)
        for field in soup.find_all("input", type="search"):
            assert soup.find("label", attrs={"for": field["id"]}), page


# --- data for scripts and readers -------------------------------------------------------------


def test_changes_json_is_the_diff_json_plus_url(demo: Path, demo_tracker: Tracker) -> None:
    data = json.loads((demo / "site" / "changes.json").read_text(encoding="utf-8"))
    assert len(data) == 4
    assert [c["to"]["captured_at"] for c in data] == sorted(
        (c["to"]["captured_at"] for c in data), reverse=True
    )
    azure = next(c for c in data if c["document"] == AZURE)
    change = change_for(demo_tracker, AZURE)
    expected = json.loads(json.dumps(change_json(change, demo_tracker.config.source(AZURE).url)))
    for key, value in expected.items():
        if key in ("from", "to"):
            assert {k: azure[key][k] for k in value} == value
        else:
            assert azure[key] == value, key
    assert azure["url"] == layout.change_page(AZURE, change.after.captured_at)
    assert (demo / "site" / azure["url"]).is_file()
    assert "law-enforcement" in azure["topics"]
    fields = ("document", "from", "to", "added_words", "removed_words", "cosmetic", "flags")
    for field in (*fields, "cosmetic_reason"):
        assert all(field in c for c in data)


def test_documents_json(demo: Path, demo_tracker: Tracker) -> None:
    data = {d["id"]: d for d in json.loads((demo / "site" / "documents.json").read_text("utf-8"))}
    assert set(data) == {AZURE, OPENAI}
    openai = data[OPENAI]
    versions = demo_tracker.store.versions(OPENAI)
    assert openai["version_count"] == len(versions) == len(openai["versions"])
    assert openai["change_count"] == len(versions) - 1
    assert openai["current"]["sha256"] == versions[-1].sha256
    assert (demo / "site" / openai["page"]).is_file()
    assert (demo / "site" / openai["current"]["text_url"]).is_file()
    assert openai["last_ok"] and openai["failing_since"] is None and openai["last_error"] is None


def test_feeds_are_valid_atom_linking_to_change_pages(demo: Path) -> None:
    site = demo / "site"
    feeds = sorted(site.joinpath("feeds").rglob("*.atom"))
    assert len(feeds) == 1 + 2 + 7  # all, per document, per topic
    for path in feeds:
        parsed = parse_feed(path)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert parsed.version == "atom10"
    everything = parse_feed(site / "feeds/all.atom")
    assert len(everything.entries) == 4
    ids = {e.id for e in everything.entries}
    assert len(ids) == 4 and all(i.startswith("urn:uuid:") for i in ids)
    police = next(e for e in everything.entries if "Azure" in e.title)
    assert "law enforcement" in police.title
    assert "by or for a police department" in police.content[0].value
    target = (site / "feeds" / police.link).resolve()
    assert target.is_file() and target.suffix == ".html"
    topic = parse_feed(site / "feeds/topics/military.atom")
    assert {e.title.split(":")[0] for e in topic.entries} == {"Usage policies"}


def test_site_url_makes_feed_links_absolute(demo: Path, tmp_path: Path) -> None:
    config = (demo / "tracker.toml").read_text(encoding="utf-8")
    path = demo / "with-site-url.toml"  # beside the demo's store, which it shares
    path.write_text(
        config + '\n[site]\nsite_url = "https://example.org/terms"\ntitle = "Terms watch"\n',
        encoding="utf-8",
    )
    with Tracker.open(load_config(path)) as tracker:
        assert tracker.store.root == demo / "snapshots"
        build_site(tracker, tmp_path / "site")
    parsed = parse_feed(tmp_path / "site/feeds/all.atom")
    assert not parsed.bozo
    assert parsed.feed.title == "Terms watch: all changes"
    assert all(e.link.startswith("https://example.org/terms/documents/") for e in parsed.entries)
    self_link = next(link for link in parsed.feed.links if link.rel == "self")
    assert self_link.href == "https://example.org/terms/feeds/all.atom"
    # Pages keep relative links, so the folder still works from anywhere.
    home = soup_of(tmp_path / "site/index.html")
    assert home.title.get_text() == "Terms watch"
    assert not any("example.org" in a["href"] for a in home.find_all("a", href=True))


def test_search_index_holds_every_version_once(demo: Path) -> None:
    script = (demo / "site" / layout.SEARCH_INDEX).read_text(encoding="utf-8")
    assert script.startswith("window.TOS_SEARCH = ")
    data = json.loads(script.removeprefix("window.TOS_SEARCH = ").rstrip().rstrip(";"))
    documents = [d["id"] for d in data["documents"]]
    azure = documents.index(AZURE)
    police = [
        c for c in data["clauses"] if c[0] == azure and "by or for a police department" in c[4]
    ]
    assert len(police) == 1 and police[0][1:3] == [1, 1]  # only in the second version
    removed = [c for c in data["clauses"] if c[0] == azure and "state or local police" in c[4]]
    assert removed and removed[0][1:3] == [0, 0]
    texts = [tuple(c) for c in data["clauses"]]
    assert len(texts) == len(set(texts))


# --- untrusted pages --------------------------------------------------------------------------

HOSTILE_BEFORE = b"""<html><body><main><h1>Terms</h1>
<p>You may use the service.</p></main></body></html>"""
HOSTILE_AFTER = b"""<html><body><main><h1>Terms &lt;script&gt;alert(1)&lt;/script&gt;</h1>
<p>You may use the service.</p>
<p>Police may ask: &lt;img src=x onerror="alert(2)"&gt; and
&lt;/textarea&gt;&lt;script&gt;alert(3)&lt;/script&gt;</p>
<p>Link <a href="javascript:alert(4)">here</a>.</p>
</main></body></html>"""


def test_planted_markup_is_shown_as_text(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    for body in (HOSTILE_BEFORE, HOSTILE_AFTER):
        httpserver.expect_ordered_request("/terms").respond_with_data(
            body, content_type="text/html; charset=utf-8"
        )
    entry = document_entry("evil/terms", httpserver.url_for("/terms"), select=["main"])
    entry["title"] = "Evil <b>terms</b>"
    tracker = make_tracker([entry])
    for _ in range(2):
        assert run(tracker, clock=clock).failed == 0
        clock.advance(days=1)
    build_site(tracker, tmp_path / "site")
    site = tmp_path / "site"
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        soup = BeautifulSoup(html, "lxml")
        scripts = [s.get("src") for s in soup.find_all("script")]
        assert None not in scripts, f"inline script in {page}"
        assert not soup.find(attrs={"onerror": True}), page
        assert not soup.find("img"), page
        assert not soup.find("b"), page
        assert "javascript:" not in " ".join(a["href"] for a in soup.find_all("a", href=True))
    change = next(site.rglob("changes/*.html"))
    text = soup_of(change).get_text()
    assert '<img src=x onerror="alert(2)">' in text
    assert "<script>alert(1)</script>" in text
    for feed in site.rglob("*.atom"):
        parsed = parse_feed(feed)
        assert not parsed.bozo, feed
        for entry in parsed.entries:
            for content in entry.get("content", []):
                inner = BeautifulSoup(content.value, "lxml")
                assert not inner.find("script") and not inner.find("img")
    search = (site / layout.SEARCH_INDEX).read_text(encoding="utf-8")
    assert "</script" not in search


# --- incremental builds -----------------------------------------------------------------------


def test_rebuild_rewrites_only_what_changed(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    bodies = [
        f"<html><body><main><h1>Terms</h1><p>Clause one, version {n}.</p>"
        f"<p>Police may {'never ' if n % 2 else ''}ask for data.</p></main></body></html>".encode()
        for n in range(4)
    ]
    tracker = make_tracker(
        [
            document_entry("a/terms", httpserver.url_for("/a")),
            document_entry("b/terms", httpserver.url_for("/b")),
        ]
    )

    def serve(version_a: int, version_b: int) -> None:
        httpserver.clear()
        httpserver.expect_request("/a").respond_with_data(
            bodies[version_a], content_type="text/html"
        )
        httpserver.expect_request("/b").respond_with_data(
            bodies[version_b], content_type="text/html"
        )
        assert run(tracker, clock=clock).failed == 0
        clock.advance(days=1)

    serve(0, 0)
    serve(1, 1)
    serve(2, 1)
    out = tmp_path / "site"
    first = build_site(tracker, out)
    assert first.computed == 3 and first.unchanged == 0 and first.removed == 0
    page = out / layout.change_page("b/terms", tracker.store.versions("b/terms")[-1].captured_at)
    before = page.stat().st_mtime_ns
    css_before = (out / layout.STYLESHEET).stat().st_mtime_ns

    again = build_site(tracker, out)
    assert again.computed == 0 and again.written == 0, again

    serve(3, 1)  # one new change of a/terms; b/terms only gets a new check time
    after = build_site(tracker, out)
    # The new change, and the one before it (its page gains a "next" link).
    assert after.computed == 2, after
    assert page.stat().st_mtime_ns == before  # b/terms' change page was not rewritten
    data = json.loads((out / "changes.json").read_text(encoding="utf-8"))
    assert len(data) == 4
    assert (out / layout.STYLESHEET).stat().st_mtime_ns == css_before

    full = build_site(tracker, out, full=True)
    assert full.computed == 4


def test_a_document_gone_from_the_store_leaves_no_stale_files(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    httpserver.expect_request("/a").respond_with_data("<p>a</p>", content_type="text/html")
    tracker = make_tracker([document_entry("a/terms", httpserver.url_for("/a"))])
    run(tracker, clock=clock)
    out = tmp_path / "site"
    build_site(tracker, out)
    assert (out / layout.document_page("a/terms")).is_file()
    (out / "mine.txt").write_text("the operator's own file")
    shutil.rmtree(tracker.store.document_dir("a/terms"))
    config = dataclasses.replace(load_config(tmp_path / "tracker.toml"), sources=())
    with Tracker.open(config) as empty:
        stats = build_site(empty, out)
    assert stats.removed > 0
    assert not (out / layout.document_dir("a/terms")).exists()
    assert (out / "mine.txt").read_text() == "the operator's own file"


def test_refuses_to_build_inside_the_store(make_tracker, tmp_path: Path) -> None:
    tracker = make_tracker([])
    with pytest.raises(SiteError, match="must not be inside the store"):
        build_site(tracker, tracker.store.root / "site")


# --- side by side -----------------------------------------------------------------------------


def test_side_by_side_aligns_replaced_added_and_removed_lines() -> None:
    old = "Title\n\nkeep one\nold words here\ngone line\nkeep two\n"
    new = "Title\n\nkeep one\nnew words here\nkeep two\nadded line\n"
    rows = side_by_side(word_diff(old, new).ops, context=10)
    text = [
        (
            "".join(t for _, t in r.left) if r.left is not None else None,
            "".join(t for _, t in r.right) if r.right is not None else None,
        )
        for r in rows
    ]
    assert ("old words here", "new words here") in text
    assert ("gone line", None) in text
    assert (None, "added line") in text
    assert ("keep two", "keep two") in text
    numbers = [(r.left_no, r.right_no) for r in rows]
    assert numbers[0] == (1, 1) and numbers[-1] == (None, 6)


def test_side_by_side_folds_long_unchanged_stretches() -> None:
    same = "\n".join(f"line {n}" for n in range(50))
    rows = side_by_side(word_diff(same + "\nend\n", same + "\nfinish\n").ops, context=3)
    assert rows[0].skipped == 47
    assert sum(1 for r in rows if not r.skipped) == 4


# --- command line -----------------------------------------------------------------------------


def test_site_build_command(demo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(demo)
    result = invoke("site", "build", "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["documents"] == 2 and stats["changes"] == 4 and stats["computed"] == 4
    assert (tmp_path / "out/index.html").is_file()


def test_site_serve_previews_on_loopback(demo: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "site", "serve", "--port", "0", "--no-build"],
        cwd=demo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url + "index.html", timeout=5) as response:
            assert response.status == 200
            assert b"Latest changes" in response.read()
        with urllib.request.urlopen(url + layout.feed("all"), timeout=5) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_run_builds_the_site_when_configured(httpserver: HTTPServer, workdir: Path) -> None:
    httpserver.expect_request("/t").respond_with_data(
        "<main><p>Police may not ask.</p></main>", content_type="text/html"
    )
    path = write_config(workdir, [document_entry("acme/terms", httpserver.url_for("/t"))])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('\n[site]\nout = "public"\nbuild_after_run = true\n')
    result = invoke("run", "--no-quiet")
    assert result.exit_code == 0, result.output
    assert "site: 1 documents" in result.output
    assert (workdir / "public" / layout.document_page("acme/terms")).is_file()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('site_url = "ftp://example.org/"', "key 'site_url' must be an http(s) URL"),
        ('build_after_run = "yes"', "key 'build_after_run' must be true or false"),
        ('colour = "blue"', "[site]"),
        ("out = 3", "key 'out' must be a string"),
    ],
)
def test_site_settings_are_checked(workdir: Path, table: str, message: str) -> None:
    path = write_config(workdir, [])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"\n[site]\n{table}\n")
    result = invoke("site", "build")
    assert result.exit_code == 2
    assert message in result.output


# --- review regressions: stale files, config edits, interrupted builds, hostile values -------


def _two_version_tracker(httpserver: HTTPServer, make_tracker, clock: Clock, **entry: object):
    bodies = [
        b"<main><h1>Terms</h1><p>Police may ask for data.</p></main>",
        b"<main><h1>Terms</h1><p>Police may never ask for data.</p></main>",
    ]
    for body in bodies:
        httpserver.expect_ordered_request("/t").respond_with_data(body, content_type="text/html")
    tracker = make_tracker([document_entry("acme/terms", httpserver.url_for("/t"), **entry)])
    for _ in bodies:
        assert run(tracker, clock=clock).failed == 0
        clock.advance(days=1)
    return tracker


def _reconfigure(tracker: Tracker, **changes: object) -> Tracker:
    source = dataclasses.replace(tracker.config.sources[0], **changes)
    return Tracker.open(dataclasses.replace(tracker.config, sources=(source,)))


def test_config_edits_reach_every_page_and_json(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    tracker = _two_version_tracker(httpserver, make_tracker, clock)
    out = tmp_path / "site"
    build_site(tracker, out)
    with _reconfigure(tracker, service="NewCo", url="https://moved.example/terms") as moved:
        build_site(moved, out)
    (entry,) = json.loads((out / "changes.json").read_text(encoding="utf-8"))
    assert entry["service"] == "NewCo"
    assert entry["document_url"] == "https://moved.example/terms"
    page = soup_of(out / entry["url"])
    assert "NewCo" in page.get_text() and page.find("a", href="https://moved.example/terms")


def test_files_a_build_no_longer_makes_are_removed_even_after_a_full_build(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    tracker = _two_version_tracker(httpserver, make_tracker, clock)
    out = tmp_path / "site"
    build_site(tracker, out)
    topic = out / layout.topic_page("military")
    assert topic.is_file()
    fewer = dataclasses.replace(
        tracker.config, topics=tuple(t for t in tracker.config.topics if t.id != "military")
    )
    with Tracker.open(fewer) as changed:
        stats = build_site(changed, out, full=True)  # new fingerprint and --full
    assert stats.removed >= 2
    assert not topic.exists() and not (out / layout.feed("topics", "military")).exists()


def test_an_interrupted_build_is_not_trusted_by_the_next(
    httpserver: HTTPServer,
    make_tracker,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracker = _two_version_tracker(httpserver, make_tracker, clock)
    out = tmp_path / "site"
    build_site(tracker, out)
    from tracker.publish import site as site_module

    real_write = site_module.SiteWriter.write
    calls = {"n": 0}

    def dying_write(self, path, data, key=None):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # the build is killed part way
        return real_write(self, path, data, key)

    with _reconfigure(tracker, title="Title Two") as renamed:
        monkeypatch.setattr(site_module.SiteWriter, "write", dying_write)
        with pytest.raises(KeyboardInterrupt):
            build_site(renamed, out)
        monkeypatch.setattr(site_module.SiteWriter, "write", real_write)
    build_site(tracker, out)  # back to the original title
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".atom"):
            assert "Title Two" not in path.read_text(encoding="utf-8"), path


def test_feeds_drop_characters_xml_forbids(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    from lxml import etree

    bodies = [
        b"<main><p>Police may ask.</p></main>",
        "<main><p>Police may ask \ufffe now.</p></main>".encode(),
    ]
    for body in bodies:
        httpserver.expect_ordered_request("/t").respond_with_data(body, content_type="text/html")
    entry = document_entry("acme/terms", httpserver.url_for("/t"))
    entry["title"] = "Bell\u0007 terms"
    tracker = make_tracker([entry])
    for _ in bodies:
        assert run(tracker, clock=clock).failed == 0
        clock.advance(days=1)
    build_site(tracker, tmp_path / "site")
    for feed in (tmp_path / "site" / "feeds").rglob("*.atom"):
        etree.fromstring(feed.read_bytes())  # strict XML parser: raises on a bad character
        assert not parse_feed(feed).bozo, feed


def test_a_non_http_address_is_never_a_link(make_tracker, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tracker.app.importer import ImportItem, import_items

    tracker = make_tracker([])
    item = ImportItem(
        datetime(2024, 1, 1, tzinfo=UTC),
        b"Terms\n\nPolice may ask for data, as long as it is lawful and proportionate.\n",
        "text",
        {"source": "folder", "file": "x.txt"},
        "javascript:alert(document.domain)",
    )
    import_items(tracker, "evil/doc", [item])
    tracker.index.rebuild(tracker.store, tracker.config.sources)
    build_site(tracker, tmp_path / "site")
    for page in (tmp_path / "site").rglob("*.html"):
        for link in soup_of(page).find_all(href=True):
            assert not link["href"].lower().startswith("javascript:"), page
    (document,) = json.loads((tmp_path / "site/documents.json").read_text(encoding="utf-8"))
    assert document["url"] is None
