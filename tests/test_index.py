"""The index against a real store: caught up after a kill, and never held up by one document."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from conftest import Clock, document_entry
from pytest_httpserver import HTTPServer
from test_schedule import assert_consistent
from werkzeug import Request, Response

from tracker.app.pipeline import run

SMALL = "<html><body><main><h1>Policy</h1><p>{}</p></main></body></html>"


def huge_page(changed: bool, n: int = 20_000) -> str:
    """The issue's case: a list of 20,000 items, every tenth reworded in the new version."""
    items = "".join(
        f"<li>Item {k}: the {'revised' if changed and k % 10 == 0 else 'original'} rule {k}"
        f" applies to accounts {k * 7}.</li>"
        for k in range(n)
    )
    return f"<html><body><main><h1>Terms</h1><ul>{items}</ul></main></body></html>"


class Pages:
    """Pages served as set, always whole (no validators): each run fetches each page."""

    def __init__(self, server: HTTPServer, pages: dict[str, str]) -> None:
        self.pages = pages
        for path in pages:
            server.expect_request(path).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        return Response(self.pages[request.path], content_type="text/html; charset=utf-8")


class Events(logging.Handler):
    """Log records and checked documents, in the order they happened."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def forget_latest(db_path: Path, document: str) -> str:
    """Drop the index rows of a document's latest capture, as a run killed after writing
    its files and before indexing them leaves the index."""
    db = sqlite3.connect(db_path)
    (last,) = db.execute(
        "select max(captured_at) from snapshots where document = ?", [document]
    ).fetchone()
    for table, column in (("snapshots", "captured_at"), ("versions", "captured_at")):
        db.execute(f"delete from {table} where document = ? and {column} = ?", [document, last])
    for table in ("changes", "clause_changes", "flags"):
        db.execute(
            f"delete from {table} where document = ? and to_captured_at = ?", [document, last]
        )
    db.commit()
    db.close()
    return str(last)


@pytest.mark.timeout(120)
def test_a_huge_change_a_kill_left_unindexed_does_not_hold_up_the_next_runs_checks(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    site = Pages(httpserver, {"/huge": huge_page(False), "/ok": SMALL.format("First.")})
    tracker = make_tracker(
        [
            document_entry("t/huge", httpserver.url_for("/huge"), select=["main"]),
            document_entry("t/ok", httpserver.url_for("/ok"), select=["main"]),
        ]
    )
    run(tracker, clock=clock)
    site.pages["/huge"] = huge_page(True)
    clock.advance(hours=1)
    assert [o.status for o in run(tracker, clock=clock).outcomes] == ["changed", "unchanged"]
    last = forget_latest(tracker.config.index_path, "t/huge")
    assert tracker.index.is_behind(tracker.store, "t/huge")

    events = Events()
    logging.getLogger("tracker").addHandler(events)
    try:
        site.pages["/ok"] = SMALL.format("Second.")
        clock.advance(hours=1)
        summary = run(
            tracker, clock=clock, progress=lambda o: events.seen.append(f"checked {o.document}")
        )
    finally:
        logging.getLogger("tracker").removeHandler(events)
    assert [o.status for o in summary.outcomes] == ["unchanged", "changed"]
    behind = "t/huge: index was behind the files; deriving its missing rows"
    # Both documents were checked before the huge change was derived again, after them.
    assert events.seen.index("checked t/ok") < events.seen.index(behind)
    assert events.seen.index("checked t/huge") < events.seen.index(behind)
    assert not tracker.index.is_behind(tracker.store, "t/huge")
    [change] = [c for c in tracker.index.changes("t/huge") if c["to_captured_at"] == last]
    assert change["summary"].startswith("2000 clauses modified in 'Terms'")
    tracker.close()
    assert_consistent(tmp_path)


def test_catching_up_derives_only_the_changes_the_index_lacks(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    site = Pages(httpserver, {"/a": SMALL.format("We keep your data for one year.")})
    tracker = make_tracker([document_entry("t/a", httpserver.url_for("/a"), select=["main"])])
    for text in ("two years", "three years"):
        run(tracker, clock=clock)
        site.pages["/a"] = SMALL.format(f"We keep your data for {text}.")
        clock.advance(hours=1)
    run(tracker, clock=clock)
    db = sqlite3.connect(tracker.config.index_path)
    first = db.execute("select min(to_captured_at) from changes").fetchone()[0]
    db.execute("update changes set summary = 'kept' where to_captured_at = ?", [first])
    db.commit()
    forget_latest(tracker.config.index_path, "t/a")

    assert tracker.index.sync(tracker.store, ["t/a"]) == ["t/a"]
    rows = db.execute("select summary from changes order by to_captured_at").fetchall()
    assert [r[0] for r in rows] == ["kept", "1 clause modified in 'Policy' (+1/−1 words)"]
    tracker.index.rebuild_document(tracker.store, "t/a")  # derives every change again
    rows = db.execute("select summary from changes order by to_captured_at").fetchall()
    assert rows[0][0] == "1 clause modified in 'Policy' (+2/−2 words)"
    db.close()
    tracker.close()
    assert_consistent(tmp_path)
