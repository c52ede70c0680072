"""A hostile web: every way a fetch goes wrong, between good versions, over real HTTP.

A fault-injecting server on 127.0.0.1 answers each run differently. After the whole
sequence the history must hold exactly the good versions, with no false change, and
every failure must be recorded with the right kind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Clock, document_entry, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.app.pipeline import Tracker, run
from tracker.config.settings import load_config
from tracker.storage.index import Index
from tracker.storage.store import Store

PARAGRAPH = (
    "You may not use the service for facial recognition by or for a police department. "
    "We keep logs for thirty days and delete them afterwards unless the law requires more. "
)
V1 = f"<html><body><main><h1>Terms</h1><p>{PARAGRAPH * 4}</p></main></body></html>"
V2 = V1.replace("thirty days", "ninety days")


def html(body: str, status: int = 200, content_type: str = "text/html; charset=utf-8"):
    return lambda request: Response(body, status=status, content_type=content_type)


def drip(request: Request) -> Response:
    def chunks() -> Iterator[bytes]:
        yield V1[:100].encode()
        for _ in range(40):
            time.sleep(0.1)
            yield b" "

    return Response(chunks(), content_type="text/html")


def sleepy(request: Request) -> Response:
    time.sleep(1.5)
    return Response(V1, content_type="text/html")


@pytest.fixture
def second_site() -> Iterator[HTTPServer]:
    """Another site on another loopback address, for redirects that leave the site."""
    server = HTTPServer(host="127.0.0.2", port=0)
    server.start()
    server.expect_request("/elsewhere").respond_with_data(V2, content_type="text/html")
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_each_failure_is_recorded_and_only_good_versions_are_kept(
    httpserver: HTTPServer, second_site: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    redirects = {"n": 0}

    def loop(request: Request) -> Response:
        redirects["n"] += 1
        return Response("", status=302, headers={"Location": f"/doc?hop={redirects['n']}"})

    # (what the server does, the kind the run must record or the status it must report)
    steps: list[tuple[Callable[[Request], Response] | None, str]] = [
        (html(V1), "new"),
        (html("oops", status=500), "http"),
        (
            html(
                "<html><head><title>Just a moment...</title></head><body>"
                "<p>Checking if the site connection is secure.</p></body></html>",
                status=403,
            ),
            "bot_wall",
        ),
        (
            html(
                "<html><head><title>Just a moment...</title></head><body>"
                "<p>Checking if the site connection is secure.</p></body></html>"
            ),
            "bot_wall",  # a challenge page answered with 200 is never the terms
        ),
        (
            lambda r: Response("", status=302, headers={"Location": "/users/sign-in?next=/doc"}),
            "login_wall",
        ),
        (html("gone", status=404), "http"),
        (sleepy, "timeout"),
        (drip, "timeout"),
        (html("%PDF-1.7 ...", content_type="application/pdf"), "content_type"),
        (lambda r: Response(bytes(range(256)) * 40, content_type="text/html"), "content_type"),
        (html(V1 + "<!--" + "x" * 120_000 + "-->"), "too_large"),
        (html(""), "empty"),
        (html("<html><body><div>No main element at all here.</div></body></html>"), "selector"),
        (html("<main><p>Terms.</p></main>"), "too_short"),
        (html(f"<main><h1>Terms</h1><p>{PARAGRAPH} Only this is left of it.</p></main>"), "shrank"),
        (
            lambda r: Response(
                "", status=302, headers={"Location": second_site.url_for("/elsewhere")}
            ),
            "offsite_redirect",
        ),
        (loop, "redirects"),
        (None, "robots"),  # the robots.txt of this run forbids /doc
        # Malformed markup and a wrong charset label around the same text: no change.
        (
            html(
                V1.replace("<main>", "<main><table><p>").replace("</main>", "</b></i></main>"),
                content_type="text/html; charset=iso-8859-1",
            ),
            "unchanged",
        ),
        (html(V2), "changed"),
    ]
    path = write_config(
        tmp_path,
        # No browser fallback here: tests/test_browser.py covers it.
        [
            document_entry(
                "acme/terms", httpserver.url_for("/doc"), select=["main"], browser_fallback=False
            )
        ],
        fetch={
            "timeout": 1,
            "retries": 0,
            "max_bytes": 100_000,
            "robots": True,
            "min_chars": 200,
            "max_shrink": 0.5,
        },
    )
    seen: list[str] = []
    with Tracker.open(load_config(path)) as tracker:
        for handler, _ in steps:
            httpserver.clear_all_handlers()
            rules = "Disallow: /doc" if handler is None else "Allow: /"
            httpserver.expect_request("/robots.txt").respond_with_data(
                f"User-agent: *\n{rules}\n", content_type="text/plain"
            )
            httpserver.expect_request("/doc").respond_with_handler(handler or html(V1))
            httpserver.expect_request("/users/sign-in").respond_with_data(
                '<form><input type="password" name="p"></form>', content_type="text/html"
            )
            summary = run(tracker, clock=clock)
            (outcome,) = summary.outcomes
            seen.append(outcome.error_kind if outcome.status == "failed" else outcome.status)
            clock.advance(hours=6)
        assert seen == [expected for _, expected in steps]
        versions = tracker.store.versions("acme/terms")
        texts = [tracker.store.read_text(v) for v in versions]
        assert len(versions) == 2 and "thirty days" in texts[0] and "ninety days" in texts[1]
        changes = tracker.index.changes("acme/terms")
        assert len(changes) == 1 and changes[0]["added_words"] == 4  # "ninety", 4 times
        errors = list(tracker.index.db.query("select kind from fetch_errors order by run_id"))
        failures = [e for _, e in steps if e not in ("new", "unchanged", "changed")]
        assert [e["kind"] for e in errors] == failures
    # Everything the runs recorded is reproduced from the files alone.
    config = load_config(path)
    rebuilt = Index(tmp_path / "rebuilt.db", config.topics)
    rebuilt.rebuild(Store(config.store_path), config.sources)
    live = Index(config.index_path, config.topics)
    assert rebuilt.dump() == live.dump()
    rebuilt.close()
    live.close()
    journal = [
        json.loads(p.read_text()) for p in sorted((tmp_path / "snapshots" / "_runs").glob("*.json"))
    ]
    assert len(journal) == len(steps)


def test_a_big_shrink_is_believed_once_it_persists(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    short = f"<main><h1>Terms</h1><p>{PARAGRAPH} Only this is left of it.</p></main>"
    other = short.replace("Only this", "Just this")
    bodies = [V1, short, other, other, other, other]
    for body in bodies:
        httpserver.expect_ordered_request("/doc").respond_with_data(body, content_type="text/html")
    path = write_config(
        tmp_path,
        [document_entry("acme/terms", httpserver.url_for("/doc"), select=["main"])],
        fetch={"min_chars": 100, "max_shrink": 0.5, "confirm_shrink": 3},
    )
    with Tracker.open(load_config(path)) as tracker:
        kinds = []
        for _ in bodies:
            (outcome,) = run(tracker, clock=clock).outcomes
            kinds.append(outcome.error_kind or outcome.status)
            clock.advance(hours=6)
        # A different shrunken text starts the count again; the third same one is kept.
        assert kinds == ["new", "shrank", "shrank", "shrank", "changed", "unchanged"]
        assert len(tracker.store.versions("acme/terms")) == 2
        assert tracker.store.pending("acme/terms") == {}


def test_redirects_are_recorded_and_allowed_hosts_followed(
    httpserver: HTTPServer, second_site: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": second_site.url_for("/elsewhere")}
    )
    entry = document_entry(
        "acme/terms", httpserver.url_for("/old"), select=["main"], allow_hosts=["127.0.0.2"]
    )
    path = write_config(tmp_path, [entry])
    with Tracker.open(load_config(path)) as tracker:
        (outcome,) = run(tracker, clock=clock).outcomes
        assert outcome.status == "new", outcome.error
        capture = tracker.store.latest_capture("acme/terms")
    assert capture is not None
    assert capture.meta["redirects"] == [httpserver.url_for("/old")]
    assert capture.meta["final_url"] == second_site.url_for("/elsewhere")
