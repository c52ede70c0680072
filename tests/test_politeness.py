"""robots.txt and spacing between requests, against a real server on 127.0.0.1."""

from __future__ import annotations

import itertools
import socket
import time
from pathlib import Path

from conftest import Clock, document_entry, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.app.pipeline import Tracker, run
from tracker.config.settings import load_config

PAGE = "<main><p>Terms of use for this service.</p></main>"


def tracker_for(tmp_path: Path, documents: list[dict[str, object]], **fetch: object) -> Tracker:
    path = write_config(tmp_path, documents, fetch={"robots": True, **fetch})
    return Tracker.open(load_config(path))


def test_robots_txt_is_read_once_per_site_and_honoured(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private\n", content_type="text/plain"
    )
    for name in ("public", "private", "also-public"):
        httpserver.expect_request(f"/{name}").respond_with_data(PAGE, content_type="text/html")
    docs = [
        document_entry(f"acme/{name}", httpserver.url_for(f"/{name}"))
        for name in ("public", "private", "also-public")
    ]
    with tracker_for(tmp_path, docs) as tracker:
        outcomes = {o.document: o for o in run(tracker, clock=clock).outcomes}
    assert outcomes["acme/private"].error_kind == "robots"
    assert "disallows /private" in outcomes["acme/private"].error
    assert outcomes["acme/public"].status == "new"
    assert outcomes["acme/also-public"].status == "new"
    paths = [request.path for request, _ in httpserver.log]
    assert paths.count("/robots.txt") == 1
    assert "/private" not in paths


def test_a_document_may_opt_out_of_robots_txt(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /\n", content_type="text/plain"
    )
    httpserver.expect_request("/terms").respond_with_data(PAGE, content_type="text/html")
    doc = document_entry("acme/terms", httpserver.url_for("/terms"), robots=False)
    with tracker_for(tmp_path, [doc]) as tracker:
        (outcome,) = run(tracker, clock=clock).outcomes
    assert outcome.status == "new"
    assert "/robots.txt" not in [request.path for request, _ in httpserver.log]


def test_missing_robots_allows_and_a_failing_one_forbids(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    httpserver.expect_request("/terms").respond_with_data(PAGE, content_type="text/html")
    doc = document_entry("acme/terms", httpserver.url_for("/terms"))
    answers = iter([404, 503])
    httpserver.expect_request("/robots.txt").respond_with_handler(
        lambda request: Response("", status=next(answers))
    )
    with tracker_for(tmp_path, [doc]) as tracker:
        (first,) = run(tracker, clock=clock).outcomes
        (second,) = run(tracker, clock=clock.advance(hours=1) and clock).outcomes
    assert first.status == "new", first.error
    assert second.error_kind == "robots" and "HTTP 503" in second.error
    assert second.error.endswith("(RFC 9309)")


def test_requests_to_one_host_are_spaced(httpserver: HTTPServer, tmp_path: Path) -> None:
    arrivals: list[float] = []

    def handler(request: Request) -> Response:
        arrivals.append(time.monotonic())
        return Response(PAGE, content_type="text/html")

    docs = []
    for n in range(3):
        httpserver.expect_request(f"/d{n}").respond_with_handler(handler)
        docs.append(document_entry(f"acme/d{n}", httpserver.url_for(f"/d{n}")))
    with tracker_for(tmp_path, docs, robots=False, host_delay=0.3, per_host=3) as tracker:
        summary = run(tracker)
    assert summary.failed == 0
    arrivals.sort()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 2 and min(gaps) >= 0.28, gaps


def test_guard_and_politeness_settings_are_checked(tmp_path: Path) -> None:
    import pytest

    from tracker.core.errors import ConfigError

    cases = [
        ("[fetch]\nmax_shrink = 1.5\n", "[fetch] key 'max_shrink' must be a share between 0 and 1"),
        ("[fetch]\nrobots = 1\n", "[fetch] key 'robots' must be true or false"),
        ("[fetch]\nhost_delay = -1\n", "[fetch] key 'host_delay' must be a number >= 0"),
        ("[fetch]\nconfirm_shrink = 0\n", "[fetch] key 'confirm_shrink' must be an integer >= 1"),
        (
            '[[documents]]\nid = "a/b"\nservice = "S"\ntitle = "T"\nurl = "https://x.org/"\n'
            "allow_hosts = [1]\n",
            "document 'a/b': key 'allow_hosts' must be a list of host names",
        ),
        (
            '[[documents]]\nid = "a/b"\nservice = "S"\ntitle = "T"\nurl = "https://x.org/"\n'
            'robots = "no"\n',
            "document 'a/b': key 'robots' must be true or false",
        ),
    ]
    for text, message in cases:
        path = tmp_path / "tracker.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert message in str(caught.value), str(caught.value)


def test_an_unreachable_host_is_a_connection_failure_not_a_robots_refusal(
    tmp_path: Path, clock: Clock
) -> None:
    """No network is said as such: robots.txt that cannot be fetched because nothing
    listens is the document's `connection` failure, not "robots disallow everything"."""
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    doc = document_entry("acme/terms", f"http://127.0.0.1:{port}/terms")
    with tracker_for(tmp_path, [doc], retries=0) as tracker:
        (outcome,) = run(tracker, clock=clock).outcomes
    assert outcome.status == "failed"
    assert outcome.error_kind == "connection", outcome.error
    assert "robots.txt" in outcome.error and "disallow" not in outcome.error
