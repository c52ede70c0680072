"""The built site in a real browser: headless Chromium (the system's) driven by Playwright.

The site is served from a sub-path on 127.0.0.1, as it would be hosted under any
prefix; every link is followed, console errors fail the test, and requests to any
other host are blocked and reported. Screenshots are kept in TOS_TRACKER_ARTIFACTS.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from tracker.ops.demo import run_demo
from tracker.publish import site_layout as layout

PREFIX = "/hosted/under/a/prefix/"
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("TOS_TRACKER_CHROMIUM") or shutil.which("chromium")
    if not found:
        message = "no system Chromium (install the Debian package 'chromium')"
        if os.environ.get("TOS_TRACKER_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Hosted(str):
    """The site's URL on 127.0.0.1, knowing the folder it serves."""

    folder: Path


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    """The demo's site served over HTTP on 127.0.0.1 under PREFIX."""
    workdir = tmp_path_factory.mktemp("browser") / "demo"
    run_demo(workdir, echo=lambda _: None)
    root = workdir.parent / "www"
    mount = root / PREFIX.strip("/")
    mount.parent.mkdir(parents=True)
    mount.symlink_to(workdir / "site", target_is_directory=True)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = Hosted(f"http://127.0.0.1:{server.server_port}{PREFIX}")
    url.folder = workdir / "site"
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TOS_TRACKER_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """A browser context that records console errors and blocks every other host."""

    def __init__(self, browser: Any, **options: Any) -> None:
        self.context = browser.new_context(**options)
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "file") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self, url: str) -> Any:
        page = self.context.new_page()
        page.on(
            "console",
            lambda m: self.errors.append(f"{url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"{url}: {e}"))
        response = page.goto(url)
        assert response is not None and response.status == 200, (url, response)
        return page

    def close(self) -> None:
        self.context.close()


def test_every_link_loads_without_console_errors(browser: Any, hosted: str) -> None:
    visit = Visit(browser)
    try:
        documents = json.loads((hosted.folder / layout.DOCUMENTS_JSON).read_text("utf-8"))
        tracked = {d["url"] for d in documents}  # the tracked pages' own addresses
        queue = [hosted + layout.HOME, hosted + layout.SEARCH + "?q=police"]
        seen_pages: set[str] = set()
        checked: set[str] = set()
        while queue:
            url = queue.pop()
            if url in seen_pages:
                continue
            seen_pages.add(url)
            page = visit.open(url)
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            for fragment in page.eval_on_selector_all(
                "a[href^='#']", "els => els.map(e => e.getAttribute('href').slice(1))"
            ):
                assert page.locator(f"[id='{fragment}']").count() == 1, (url, fragment)
            page.close()
            for link in links:
                target, _ = urldefrag(link)
                if not target.startswith(hosted):
                    assert target in tracked, f"{url} links outside the site: {target}"
                    continue
                if target.endswith(".html") or target.endswith("/"):
                    queue.append(target)
                elif target not in checked:
                    checked.add(target)
                    response = visit.context.request.get(target)
                    assert response.status == 200, (url, target, response.status)
        assert len(seen_pages) > 15
        assert any(c.endswith(".raw.gz") for c in checked)
        feeds = [c for c in checked if c.endswith(".atom")]
        assert len(feeds) == 10
        for feed in feeds:  # entry links resolve against the feed's own address
            text = visit.context.request.get(feed).text()
            for href in re.findall(r'<link rel="alternate" type="text/html" href="([^"]+)"', text):
                target = urljoin(feed, html.unescape(href))
                assert visit.context.request.get(target).status == 200, (feed, target)
        assert visit.errors == []
        assert visit.blocked == []
    finally:
        visit.close()


def test_police_clause_is_visible_on_its_change_page(
    browser: Any, hosted: str, artifacts: Path
) -> None:
    visit = Visit(browser, viewport={"width": 1200, "height": 900})
    try:
        home = visit.open(hosted + layout.HOME)
        home.screenshot(path=str(artifacts / "site-home.png"), full_page=True)
        home.get_by_role("link", name="Code of conduct for Azure OpenAI").first.click()
        home.get_by_role("link", name="2 clauses added, 1 modified").click()
        flags = home.locator("section.flags")
        clause = flags.get_by_text("by or for a police department in the United States")
        assert clause.is_visible()
        assert "law enforcement" in flags.inner_text()
        assert home.locator("section.flags mark").first.is_visible()
        home.screenshot(path=str(artifacts / "site-change.png"), full_page=True)
        # <ins> and <del> differ without colour: a sign before each, and a line style.
        ins = home.locator(".diff ins").first.evaluate(
            "e => [getComputedStyle(e, '::before').content, getComputedStyle(e).textDecorationLine]"
        )
        deleted = home.locator(".diff del").first.evaluate(
            "e => [getComputedStyle(e, '::before').content, getComputedStyle(e).textDecorationLine]"
        )
        assert ins == ['"+"', "underline"] and deleted == ['"−"', "line-through"]
        assert visit.errors == [] and visit.blocked == []
    finally:
        visit.close()
    assert (artifacts / "site-home.png").stat().st_size > 10_000
    assert (artifacts / "site-change.png").stat().st_size > 10_000


def test_search_finds_a_clause_of_an_older_version(browser: Any, hosted: str) -> None:
    visit = Visit(browser)
    try:
        page = visit.open(hosted + layout.SEARCH)
        page.get_by_label("Words to find").fill("state or local police")
        page.get_by_role("button", name="Search").last.click()
        results = page.locator("#results li")
        results.first.wait_for()
        text = results.first.inner_text()
        assert "use by state or local police" in text
        assert "until 2024-04-15" in text  # gone in the next version
        page.locator("#results li").first.get_by_role("link", name="2024-05-02").click()
        page.wait_for_load_state()
        assert page.url.endswith("changes/20240502T120000Z.html")
        none = visit.open(hosted + layout.SEARCH + "?q=zzzz-not-there")
        assert "0 clauses found" in none.locator("#status").inner_text()
        assert visit.errors == [] and visit.blocked == []
    finally:
        visit.close()


def test_readable_on_a_phone(browser: Any, hosted: str, artifacts: Path) -> None:
    visit = Visit(browser, viewport={"width": 360, "height": 800}, device_scale_factor=2)
    try:
        for path in (
            layout.HOME,
            layout.ALL_CHANGES,
            layout.SEARCH + "?q=police",
            layout.topic_page("law-enforcement"),
            layout.document_page("azure-openai/code-of-conduct"),
            layout.document_page("openai/usage-policies"),
            "documents/azure-openai/code-of-conduct/changes/20240502T120000Z.html",
            "documents/openai/usage-policies/changes/20250929T123119Z.html",
        ):
            page = visit.open(hosted + path)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, (path, overflow)
            size = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
            assert size >= 15
        page.screenshot(path=str(artifacts / "site-change-phone.png"), full_page=False)
        assert visit.errors == []
    finally:
        visit.close()


def test_opened_from_disk_search_still_works(browser: Any, hosted: Hosted) -> None:
    """Readers may open the folder without a server: scripts are files, not fetches."""
    visit = Visit(browser)
    try:
        page = visit.context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((hosted.folder / layout.SEARCH).as_uri() + "?q=police+department")
        page.locator("#results li").first.wait_for()
        assert "by or for a police department" in page.locator("#results").inner_text()
        assert errors == []
    finally:
        visit.close()
