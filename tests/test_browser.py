"""Browser fetching with the system Chromium, against real HTTP servers on 127.0.0.1.

Every browser here may load from 127.0.0.1 only (`browser_allow_hosts`); any other
host is blocked before a request is made. Without Chromium these tests skip, unless
TOS_TRACKER_REQUIRE_BROWSER is set (as CI does), when they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock, document_entry, files_under
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.browser import find_chromium
from tracker.config import parse_config
from tracker.errors import ConfigError
from tracker.fetch import USER_AGENT, Fetcher
from tracker.index import Index
from tracker.pipeline import Tracker, run
from tracker.store import Store

INSTALL_HINT = "install tos-tracker[browser] and the Debian chromium package"
JS_PAGE = """<!doctype html><html><head><title>Terms</title></head><body>
<nav>Menu</nav><main></main>
<script>
setTimeout(() => {
  document.querySelector("main").innerHTML =
    "<h1>Terms of Use</h1><p>These terms were rendered by a script.</p>";
}, 300);
</script></body></html>"""
REAL_PAGE = (
    "<!doctype html><html><head><title>Usage policies</title></head><body>"
    "<main><h1>Usage policies</h1><p>{text}</p></main></body></html>"
)
# A JavaScript challenge: sets a cookie and reloads; only a browser gets through.
JS_CHALLENGE = """<!doctype html><html><head><title>Just a moment...</title></head><body>
<p>Verifying you are human. This may take a few seconds.</p>
<noscript>Enable JavaScript and cookies to continue</noscript>
<script>
setTimeout(() => { document.cookie = "passed=1; path=/"; location.reload(); }, 200);
</script>
</body></html>"""
# A challenge no browser passes (it never moves on).
STUCK_CHALLENGE = (
    "<!doctype html><html><head><title>Just a moment...</title></head>"
    "<body><p>Verifying you are human.</p></body></html>"
)
LOGIN_PAGE = (
    "<!doctype html><html><head><title>Sign in</title></head><body><form method='post'>"
    "<input type='email' name='email'><input type='password' name='password'>"
    "<button>Sign in</button></form></body></html>"
)


def html(text: str, status: int = 200, **headers: str) -> Response:
    return Response(text, status=status, headers=headers, content_type="text/html")


@pytest.fixture(scope="module")
def chromium() -> str:
    found, reason = find_chromium()
    problem = None
    if found is None:
        problem = f"{reason}: install the Debian package 'chromium'"
    elif importlib.util.find_spec("playwright") is None:
        problem = "Playwright for Python is not installed: pip install tos-tracker[browser]"
    if problem:
        if os.environ.get("TOS_TRACKER_REQUIRE_BROWSER"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert found is not None
    return found


@pytest.fixture
def browsing(
    make_tracker: Callable[..., Tracker], chromium: str, clock: Clock
) -> Callable[..., tuple[Tracker, Fetcher]]:
    """A tracker whose browser may load from 127.0.0.1 only, and its fetcher."""
    made: list[Fetcher] = []

    def make(documents: list[dict[str, object]], **fetch: object) -> tuple[Tracker, Fetcher]:
        settings: dict[str, object] = {
            "browser_path": chromium,
            "browser_allow_hosts": ["127.0.0.1"],
            **fetch,
        }
        tracker = make_tracker(documents, **settings)
        fetcher = Fetcher(tracker.config.fetch, clock=clock)
        made.append(fetcher)
        return tracker, fetcher

    yield make
    for fetcher in made:
        fetcher.close()


def meta_of(tracker: Tracker, document: str) -> dict[str, Any]:
    latest = tracker.store.latest_capture(document)
    assert latest is not None
    return latest.meta


def assert_reindex_gives_the_same_index(tracker: Tracker) -> None:
    """The index rebuilt from the files alone equals the one built run by run."""
    rebuilt = Index(Path(tracker.config.index_path).with_name("rebuilt.db"))
    rebuilt.rebuild(Store(tracker.config.store_path), tracker.config.sources)
    assert rebuilt.dump() == tracker.index.dump()
    rebuilt.close()


def text_of(tracker: Tracker, document: str) -> str:
    version = tracker.store.latest_version(document)
    assert version is not None
    return tracker.store.read_text(version)


def test_a_javascript_page_needs_the_browser(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    httpserver.expect_request("/js").respond_with_handler(lambda r: html(JS_PAGE))
    url = httpserver.url_for("/js")
    tracker, fetcher = browsing(
        [
            document_entry("test/plain", url, select=["main"]),
            document_entry("test/rendered", url, select=["main"], browser=True),
        ]
    )
    outcomes = {o.document: o for o in run(tracker, clock=clock, fetcher=fetcher).outcomes}
    plain, rendered = outcomes["test/plain"], outcomes["test/rendered"]
    assert (plain.status, plain.error_kind) == ("failed", "empty")
    assert plain.error == "the page has no readable text (is it rendered by JavaScript?)"
    assert rendered.status == "new", rendered.error
    assert text_of(tracker, "test/rendered") == (
        "# Terms of Use\n\nThese terms were rendered by a script.\n"
    )
    meta = meta_of(tracker, "test/rendered")
    assert (meta["via"], meta["status"], meta["content_type"]) == (
        "browser",
        200,
        "text/html; charset=utf-8",
    )
    assert "fallback_from" not in meta and meta["etag"] is None
    assert meta["final_url"] == url
    # The browser says who is asking, after Chromium's own User-Agent.
    agents = [request.headers.get("User-Agent", "") for request, _ in httpserver.log]
    assert agents.count(USER_AGENT) == 1
    browser_agents = [a for a in agents if a != USER_AGENT]
    assert browser_agents and all(
        "HeadlessChrome" in a and a.endswith(USER_AGENT) for a in browser_agents
    )
    assert fetcher.browser.launches == 1


def test_a_bot_wall_falls_back_to_the_browser(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    def guarded(request: Request) -> Response:
        if request.cookies.get("passed") == "1":
            return html(REAL_PAGE.format(text="Do not use our models for weapons."))
        return html(JS_CHALLENGE, 403, **{"cf-mitigated": "challenge"})

    httpserver.expect_request("/guarded").respond_with_handler(guarded)
    tracker, fetcher = browsing(
        [document_entry("test/guarded", httpserver.url_for("/guarded"), select=["main"])]
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert outcome.status == "new", outcome.error
    assert text_of(tracker, "test/guarded") == (
        "# Usage policies\n\nDo not use our models for weapons.\n"
    )
    meta = meta_of(tracker, "test/guarded")
    assert (meta["via"], meta["fallback_from"], meta["status"]) == ("browser", "bot_wall", 200)
    # The plain fetch met the wall once (a 403 is not retried); the browser got through.
    statuses = [
        (r.headers.get("User-Agent") == USER_AGENT, s.status_code) for r, s in httpserver.log
    ]
    assert statuses[0] == (True, 403)
    assert statuses[1:] == [(False, 403), (False, 200)]
    assert_reindex_gives_the_same_index(tracker)


def test_a_challenge_page_is_never_recorded_and_history_goes_on(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    pages = {"now": html(REAL_PAGE.format(text="Version one."))}
    httpserver.expect_request("/terms").respond_with_handler(lambda r: pages["now"])
    tracker, fetcher = browsing(
        [document_entry("test/terms", httpserver.url_for("/terms"), select=["main"])],
        timeout=1.5,
    )
    assert run(tracker, clock=clock, fetcher=fetcher).outcomes[0].status == "new"
    first = tracker.store.latest_version("test/terms")
    before = files_under(tracker.store.root / "test")

    pages["now"] = html(STUCK_CHALLENGE)  # a 200: it looks like a page
    clock.advance(hours=1)
    failed = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert (failed.status, failed.error_kind, failed.http_status) == ("failed", "bot_wall", 200)
    assert failed.error == (
        "a Cloudflare challenge page ('Just a moment...') instead of the document (HTTP 200)"
        " (in the browser, still there after 1.5 s); the plain fetch had: a Cloudflare"
        " challenge page ('Just a moment...') instead of the document (HTTP 200)"
    )
    assert files_under(tracker.store.root / "test") == before
    assert tracker.store.latest_version("test/terms") == first
    errors = tracker.index.dump()["fetch_errors"]
    assert [e["kind"] for e in errors] == ["bot_wall"]

    pages["now"] = html(REAL_PAGE.format(text="Version two."))
    clock.advance(hours=1)
    changed = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert changed.status == "changed"
    assert changed.change is not None and changed.change.before == first
    assert meta_of(tracker, "test/terms")["via"] == "http"
    assert_reindex_gives_the_same_index(tracker)


def test_a_redirect_to_a_login_page_is_a_login_wall(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    httpserver.expect_request("/private").respond_with_data(
        "", status=302, headers={"Location": "/login?next=/private"}
    )
    httpserver.expect_request("/login").respond_with_handler(lambda r: html(LOGIN_PAGE))
    url = httpserver.url_for("/private")
    tracker, fetcher = browsing(
        [
            document_entry("test/plain", url),
            document_entry("test/rendered", url, browser=True),
        ]
    )
    outcomes = {o.document: o for o in run(tracker, clock=clock, fetcher=fetcher).outcomes}
    login = httpserver.url_for("/login") + "?next=/private"
    assert (outcomes["test/plain"].error_kind, outcomes["test/plain"].error) == (
        "login_wall",
        f"redirected to a login page ({login})",
    )
    assert (outcomes["test/rendered"].error_kind, outcomes["test/rendered"].error) == (
        "login_wall",
        f"redirected to a login page ({login}) (in the browser)",
    )
    assert tracker.store.documents() == []
    assert fetcher.browser.launches == 1  # a login wall is not worth a fallback


def test_a_selector_that_never_appears_times_out_naming_it(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    httpserver.expect_request("/js").respond_with_handler(lambda r: html(JS_PAGE))
    url = httpserver.url_for("/js")
    tracker, fetcher = browsing(
        [
            document_entry("test/one", url, select=["#terms"], browser=True),
            document_entry("test/two", url, select=["#terms", "article"], browser=True),
        ],
        timeout=1.5,
    )
    outcomes = {o.document: o for o in run(tracker, clock=clock, fetcher=fetcher).outcomes}
    assert (outcomes["test/one"].error_kind, outcomes["test/one"].error) == (
        "timeout",
        "selector '#terms' did not appear within 1.5 s",
    )
    assert outcomes["test/two"].error == (
        "none of the selectors '#terms', 'article' appeared within 1.5 s"
    )
    assert tracker.store.documents() == []


def test_other_hosts_are_blocked_and_never_asked(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    # "localhost" is this very server under another name: a request would show in its log.
    external = f"http://localhost:{httpserver.port}/external.js"
    page = (
        "<!doctype html><html><head><title>T</title>"
        f"<script src='{external}'></script></head><body><main><p>Local text.</p></main>"
        "<img src='https://cdn.example.invalid/pixel.png'></body></html>"
    )
    httpserver.expect_request("/page").respond_with_handler(lambda r: html(page))
    httpserver.expect_request("/external.js").respond_with_data(
        "document.querySelector('main').textContent = 'EXTERNAL SCRIPT RAN';",
        content_type="text/javascript",
    )
    tracker, fetcher = browsing(
        [document_entry("test/page", httpserver.url_for("/page"), select=["main"], browser=True)]
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert outcome.status == "new", outcome.error
    assert text_of(tracker, "test/page") == "Local text.\n"
    assert sorted(fetcher.browser.blocked) == [external, "https://cdn.example.invalid/pixel.png"]
    assert [r.path for r, _ in httpserver.log] == ["/page"]


def test_a_page_on_a_host_not_allowed_is_not_opened(browsing, clock: Clock) -> None:
    tracker, fetcher = browsing(
        [document_entry("test/far", "https://example.invalid/terms", browser=True)]
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert (outcome.error_kind, outcome.error) == (
        "blocked",
        "host 'example.invalid' is not in [fetch] browser_allow_hosts (['127.0.0.1'])",
    )
    assert fetcher.browser.launches == 0


def test_one_browser_per_run_for_many_pages_on_one_host(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    for n in range(4):
        httpserver.expect_request(f"/p{n}").respond_with_handler(
            lambda r, n=n: html(REAL_PAGE.format(text=f"Page {n}."))
        )
    tracker, fetcher = browsing(
        [
            document_entry(f"test/p{n}", httpserver.url_for(f"/p{n}"), browser=True)
            for n in range(4)
        ],
        workers=4,
        per_host=2,
    )
    for _ in range(2):
        summary = run(tracker, clock=clock, fetcher=fetcher)
        assert summary.failed == 0
        clock.advance(hours=1)
    assert [o.status for o in summary.outcomes] == ["unchanged"] * 4
    assert fetcher.browser.launches == 2  # started by each run, closed at its end
    assert text_of(tracker, "test/p3") == "# Usage policies\n\nPage 3.\n"


def test_a_rendered_page_over_the_size_cap_is_refused(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    grow = (
        "<!doctype html><html><body><main><p>Short.</p></main>"
        "<script>document.querySelector('main').textContent = 'x'.repeat(5000);</script>"
        "</body></html>"
    )
    httpserver.expect_request("/big").respond_with_handler(lambda r: html(grow))
    tracker, fetcher = browsing(
        [document_entry("test/big", httpserver.url_for("/big"), browser=True)], max_bytes=4000
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert outcome.error_kind == "too_large"
    assert outcome.error is not None and "exceeds the 4000 byte cap" in outcome.error


# --- without a browser ---------------------------------------------------------------


def test_no_browser_available_is_a_clear_error(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    httpserver.expect_request("/js").respond_with_handler(lambda r: html(JS_PAGE))
    tracker = make_tracker(
        [document_entry("test/js", httpserver.url_for("/js"), select=["main"], browser=True)],
        browser_path="/nonexistent/chromium",
    )
    outcome = run(tracker, clock=clock).outcomes[0]
    assert (outcome.status, outcome.error_kind) == ("failed", "browser")
    assert outcome.error == (
        "no browser available: no Chromium at '/nonexistent/chromium' ([fetch] browser_path); "
        + INSTALL_HINT
    )
    assert tracker.store.documents() == []
    assert len(httpserver.log) == 0
    journal = json.loads(
        next((tracker.store.root / "_runs").glob("*.json")).read_text(encoding="utf-8")
    )
    assert journal["outcomes"][0]["error_kind"] == "browser"


# --- configuration -------------------------------------------------------------------

DOC = """
[[documents]]
id = "openai/usage-policies"
service = "OpenAI"
title = "Usage policies"
url = "https://openai.com/policies/usage-policies/"
"""


def parse(text: str):
    return parse_config(text, name="tracker.toml", root=Path("/srv/t"))


def test_browser_keys_parse_with_their_defaults() -> None:
    plain = parse(DOC).sources[0]
    assert (plain.browser, plain.browser_fallback) == (False, True)
    config = parse(
        '[fetch]\nbrowser_path = "bin/chromium"\nbrowser_allow_hosts = ["127.0.0.1", "CDN.test"]\n'
        + DOC
        + "browser = true\nbrowser_fallback = false\n"
    )
    assert (config.sources[0].browser, config.sources[0].browser_fallback) == (True, False)
    assert config.fetch.browser_path == "/srv/t/bin/chromium"
    assert config.fetch.browser_allow_hosts == ("127.0.0.1", "cdn.test")
    assert parse('[fetch]\nbrowser_path = "chromium"\n').fetch.browser_path == "chromium"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            DOC + 'browser = "yes"\n',
            "tracker.toml: document 'openai/usage-policies': key 'browser' must be true or false,"
            " got 'yes'",
        ),
        (
            DOC + "browser_fallback = 1\n",
            "tracker.toml: document 'openai/usage-policies': key 'browser_fallback' must be true"
            " or false, got 1",
        ),
        (
            '[fetch]\nbrowser_allow_hosts = "127.0.0.1"\n',
            "tracker.toml: [fetch] key 'browser_allow_hosts' must be a list of host names such as"
            " [\"127.0.0.1\"], got '127.0.0.1'",
        ),
        (
            '[fetch]\nbrowser_path = ""\n',
            "tracker.toml: [fetch] key 'browser_path' must not be empty",
        ),
    ],
)
def test_browser_key_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value) == message
