"""Fetching against a real HTTP server on 127.0.0.1: retries, 304s, timeouts, limits."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.config.settings import FetchSettings
from tracker.core.errors import FetchError
from tracker.core.models import Source, Validators
from tracker.fetch.http import USER_AGENT, Fetcher

# No spacing between requests and no robots.txt here; tests/test_politeness.py covers them.
QUIET = {"host_delay": 0, "robots": False}
FAST = FetchSettings(timeout=2, retries=2, backoff=0.01, max_retry_after=5, **QUIET)


def source(url: str, doc_id: str = "test/doc") -> Source:
    return Source(id=doc_id, service="Test", title="Doc", url=url)


class Sleeps(list[float]):
    """Records how long the fetcher asked to sleep instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_user_agent_names_the_tool_and_project(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p").respond_with_data("<p>hi</p>", content_type="text/html")
    Fetcher(FAST).fetch(source(httpserver.url_for("/p")))
    request, _ = httpserver.log[0]
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("tos-tracker/") and "https://" in USER_AGENT


def test_charset_from_content_type(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p").respond_with_data(
        "<p>café</p>".encode("windows-1252"), content_type="text/html; charset=windows-1252"
    )
    result = Fetcher(FAST).fetch(source(httpserver.url_for("/p")))
    assert result.encoding == "windows-1252"
    assert result.body == "<p>café</p>".encode("windows-1252")


def test_retries_after_503_then_succeeds(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/flaky")
    httpserver.expect_ordered_request("/flaky").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_data("<p>ok</p>", status=200)
    sleeps = Sleeps()
    result = Fetcher(FAST, sleep=sleeps).fetch(source(url))
    assert result.status == 200 and result.body == b"<p>ok</p>"
    assert result.attempts == 2
    assert sleeps == [0.01]  # the first backoff step
    httpserver.check_assertions()


def test_retry_after_header_is_honoured(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/limited")
    httpserver.expect_ordered_request("/limited").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request("/limited").respond_with_data("<p>ok</p>")
    sleeps = Sleeps()
    result = Fetcher(FAST, sleep=sleeps).fetch(source(url))
    assert result.status == 200
    assert sleeps == [3.0]


def test_retry_after_longer_than_the_cap_gives_up_without_sleeping(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/down").respond_with_data(
        "maintenance", status=503, headers={"Retry-After": "3600"}
    )
    sleeps = Sleeps()
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=sleeps).fetch(source(httpserver.url_for("/down")))
    assert info.value.kind == "http" and info.value.status == 503
    assert "3600" in str(info.value)
    assert sleeps == []


def test_gives_up_after_retries_with_backoff(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    sleeps = Sleeps()
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=sleeps).fetch(source(httpserver.url_for("/broken")))
    assert info.value.status == 500
    assert "after 3 attempts" in str(info.value)
    assert sleeps == [0.01, 0.02]
    assert len(httpserver.log) == 3


def test_client_errors_are_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(source(httpserver.url_for("/gone")))
    assert (info.value.kind, info.value.status) == ("http", 404)
    assert len(httpserver.log) == 1


def test_conditional_request_sends_the_servers_validators(httpserver: HTTPServer) -> None:
    etag, modified = '"v1"', "Wed, 01 May 2024 10:00:00 GMT"

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response("<p>x</p>", headers={"ETag": etag, "Last-Modified": modified})

    httpserver.expect_request("/c").respond_with_handler(handler)
    fetcher = Fetcher(FAST)
    first = fetcher.fetch(source(httpserver.url_for("/c")))
    assert first.validators == Validators(etag=etag, last_modified=modified)
    second = fetcher.fetch(source(httpserver.url_for("/c")), first.validators)
    assert second.not_modified and second.status == 304 and second.body == b""
    request, _ = httpserver.log[1]
    assert request.headers["If-None-Match"] == etag
    assert request.headers["If-Modified-Since"] == modified


def test_timeout_is_explicit_and_reported(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("<p>late</p>")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    settings = FetchSettings(timeout=0.2, retries=0, backoff=0, **QUIET)
    with pytest.raises(FetchError) as info:
        Fetcher(settings).fetch(source(httpserver.url_for("/slow")))
    assert info.value.kind == "timeout"


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=sleeps).fetch(source(f"http://127.0.0.1:{port}/"))
    assert info.value.kind == "connection"
    assert len(sleeps) == 2  # retried like any transient failure


def test_body_over_the_size_cap_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with pytest.raises(FetchError) as info:
        Fetcher(FetchSettings(max_bytes=1000, retries=0, **QUIET)).fetch(
            source(httpserver.url_for("/big"))
        )
    assert info.value.kind == "too_large"


@pytest.fixture
def counting_server() -> Iterator[tuple[int, dict[str, int]]]:
    """A threaded server that records the most requests in flight at once, per Host."""
    active: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = self.headers["Host"].split(":")[0]
            with lock:
                active[host] += 1
                peak[host] = max(peak[host], active[host])
            time.sleep(0.15)
            with lock:
                active[host] -= 1
            body = b"<p>page</p>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], peak
    server.shutdown()
    server.server_close()


def test_concurrent_but_never_more_than_per_host(
    counting_server: tuple[int, dict[str, int]],
) -> None:
    port, peak = counting_server
    # Two host names for the same loopback server: 127.0.0.1 and localhost (from /etc/hosts).
    sources = [source(f"http://127.0.0.1:{port}/a{i}", f"a/{i}") for i in range(4)]
    sources += [source(f"http://localhost:{port}/b{i}", f"b/{i}") for i in range(4)]
    fetcher = Fetcher(FetchSettings(workers=8, per_host=1, retries=0, **QUIET))
    started = time.perf_counter()
    results = list(fetcher.fetch_all(sources, lambda s: None))
    elapsed = time.perf_counter() - started
    assert len(results) == 8 and all(not isinstance(r, FetchError) for _, r in results)
    assert dict(peak) == {"127.0.0.1": 1, "localhost": 1}
    # The two hosts were served side by side: about 4 x 0.15 s, not 8 x 0.15 s.
    assert elapsed < 8 * 0.15


def test_per_host_limit_of_two(counting_server: tuple[int, dict[str, int]]) -> None:
    port, peak = counting_server
    sources = [source(f"http://127.0.0.1:{port}/a{i}", f"a/{i}") for i in range(6)]
    list(
        Fetcher(FetchSettings(workers=6, per_host=2, retries=0, **QUIET)).fetch_all(
            sources, lambda s: None
        )
    )
    assert peak["127.0.0.1"] == 2


@pytest.mark.parametrize("status", [202, 204, 302])
def test_only_200_and_203_are_pages_to_record(httpserver: HTTPServer, status: int) -> None:
    """A 202 is how some bot walls answer; it must never become a version."""
    httpserver.expect_request("/odd").respond_with_data("challenge", status=status)
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(source(httpserver.url_for("/odd")))
    assert (info.value.kind, info.value.status) == ("http", status)


@pytest.fixture
def drip_server() -> Iterator[tuple[int, list[str]]]:
    """Serves /drip a byte every 0.2 s, and /cut a body shorter than its Content-Length once."""
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append(self.path)
            if self.path == "/cut" and log.count("/cut") == 1:
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"<p>only part")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = b"<p>" + b"x" * 30 + b"</p>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path == "/drip":
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            else:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], log
    server.shutdown()
    server.server_close()


def test_a_slow_drip_body_times_out_as_a_whole(drip_server: tuple[int, list[str]]) -> None:
    port, _ = drip_server
    settings = FetchSettings(timeout=1, retries=0, **QUIET)
    started = time.perf_counter()
    with pytest.raises(FetchError) as info:
        Fetcher(settings).fetch(source(f"http://127.0.0.1:{port}/drip"))
    assert info.value.kind == "timeout"
    assert time.perf_counter() - started < 4  # the 37-byte body would take 7.4 s


def test_a_body_cut_short_is_retried(drip_server: tuple[int, list[str]]) -> None:
    port, log = drip_server
    result = Fetcher(FAST, sleep=Sleeps()).fetch(source(f"http://127.0.0.1:{port}/cut"))
    assert result.body.startswith(b"<p>xxx")
    assert log == ["/cut", "/cut"]


def test_gzip_encoded_bodies_are_decoded(httpserver: HTTPServer) -> None:
    import gzip

    httpserver.expect_request("/z").respond_with_data(
        gzip.compress(b"<p>compressed</p>"),
        headers={"Content-Encoding": "gzip"},
        content_type="text/html",
    )
    assert Fetcher(FAST).fetch(source(httpserver.url_for("/z"))).body == b"<p>compressed</p>"


# --- bot walls and login walls on the plain path ------------------------------------

CHALLENGE = (
    "<html><head><title>Just a moment...</title></head><body><p>Verifying you are human."
    "</p><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)
NO_BROWSER = FetchSettings(
    timeout=2, retries=2, backoff=0.01, max_retry_after=5, browser_path="/nonexistent/chromium"
)


def plain(url: str) -> Source:
    """A source that never falls back to the browser: the plain path alone."""
    return Source(id="test/doc", service="Test", title="Doc", url=url, browser_fallback=False)


@pytest.mark.parametrize("status", [403, 406])
def test_a_challenge_with_a_block_status_is_a_bot_wall_and_not_retried(
    httpserver: HTTPServer, status: int
) -> None:
    httpserver.expect_request("/w").respond_with_data(
        CHALLENGE, status=status, content_type="text/html"
    )
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(plain(httpserver.url_for("/w")))
    assert (info.value.kind, info.value.status) == ("bot_wall", status)
    assert str(info.value) == (
        f"HTTP {status} with a Cloudflare challenge page ('Just a moment...')"
    )
    assert len(httpserver.log) == 1


def test_a_challenge_page_served_with_200_is_never_a_result(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/w").respond_with_data(CHALLENGE, content_type="text/html")
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(plain(httpserver.url_for("/w")))
    assert (info.value.kind, info.value.status) == ("bot_wall", 200)
    assert "instead of the document (HTTP 200)" in str(info.value)


def test_a_plain_403_stays_an_http_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f").respond_with_data("Forbidden", status=403)
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(plain(httpserver.url_for("/f")))
    assert (info.value.kind, info.value.status, str(info.value)) == (
        "http",
        403,
        "HTTP 403 FORBIDDEN",
    )


def test_429_walls_keep_retry_after_and_end_as_a_bot_wall(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/w").respond_with_data(
        CHALLENGE, status=429, headers={"Retry-After": "2"}, content_type="text/html"
    )
    sleeps = Sleeps()
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=sleeps).fetch(plain(httpserver.url_for("/w")))
    assert sleeps == [2.0, 2.0]
    assert (info.value.kind, info.value.status) == ("bot_wall", 429)
    assert str(info.value) == (
        "HTTP 429 with a Cloudflare challenge page ('Just a moment...') (after 3 attempts)"
    )


def test_503_that_is_a_wall_only_sometimes_ends_as_http(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/w").respond_with_data("busy", status=503)
    for _ in range(2):
        httpserver.expect_ordered_request("/w").respond_with_data(
            CHALLENGE, status=503, content_type="text/html"
        )
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(plain(httpserver.url_for("/w")))
    assert (info.value.kind, info.value.status) == ("http", 503)
    assert "Cloudflare" in str(info.value)  # what the last attempt saw is still said


def test_a_redirect_to_a_login_page_is_a_login_wall(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/terms").respond_with_data(
        "", status=302, headers={"Location": "/account/login?next=/terms"}
    )
    httpserver.expect_request("/account/login").respond_with_data(
        "<html><body><h1>Welcome</h1><p>Sign in to continue.</p></body></html>",
        content_type="text/html",
    )
    with pytest.raises(FetchError) as info:
        Fetcher(FAST, sleep=Sleeps()).fetch(source(httpserver.url_for("/terms")))
    assert (info.value.kind, info.value.status) == ("login_wall", 200)
    assert str(info.value) == (
        f"redirected to a login page ({httpserver.url_for('/account/login')}?next=/terms)"
    )


def test_no_browser_for_a_fallback_keeps_the_plain_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/w").respond_with_data(
        CHALLENGE, status=403, content_type="text/html"
    )
    with pytest.raises(FetchError) as info:
        Fetcher(NO_BROWSER, sleep=Sleeps()).fetch(source(httpserver.url_for("/w")))
    assert (info.value.kind, info.value.status) == ("bot_wall", 403)
    assert str(info.value) == (
        "HTTP 403 with a Cloudflare challenge page ('Just a moment...') (no browser available"
        " for a fallback: no Chromium at '/nonexistent/chromium' ([fetch] browser_path);"
        " install tos-tracker[browser] and the Debian chromium package)"
    )
    assert len(httpserver.log) == 1


def test_requests_reads_the_environment_only_when_something_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tracker.fetch.http import environment_matters

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.lower() in (
            "requests_ca_bundle",
            "curl_ca_bundle",
            "netrc",
        ):
            monkeypatch.delenv(name)
    assert environment_matters() is False
    assert Fetcher(FetchSettings()).session.trust_env is False
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    assert environment_matters() is True
    assert Fetcher(FetchSettings()).session.trust_env is True
    monkeypatch.delenv("https_proxy")
    # A CA bundle is read once, as requests would read it on each request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    assert environment_matters() is False
    assert Fetcher(FetchSettings()).session.verify == str(tmp_path / "ca.pem")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "curl.pem"))
    assert Fetcher(FetchSettings()).session.verify == str(tmp_path / "curl.pem")
    monkeypatch.delenv("CURL_CA_BUNDLE")
    assert Fetcher(FetchSettings()).session.verify is True
    (tmp_path / ".netrc").write_text("machine example.com login a password b\n")
    assert environment_matters() is True


def test_a_fetcher_starts_without_a_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cron or container user with no HOME and no passwd entry: no netrc, no crash."""
    import pwd

    from tracker.fetch.http import environment_matters

    monkeypatch.delenv("HOME", raising=False)

    def no_entry(uid: int) -> None:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert isinstance(environment_matters(), bool)
    Fetcher(FetchSettings()).close()
