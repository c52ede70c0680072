"""The whole pipeline against a real HTTP server on 127.0.0.1, a real store and real SQLite."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import Clock, document_entry, files_under, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.app.pipeline import run
from tracker.storage.index import Index
from tracker.storage.store import Store

PAGE_V1 = """<html><body><nav>menu</nav><main><h1>Policy</h1>
<h2>Disallowed usage</h2><ul><li>Weapons development</li><li>Military and warfare</li></ul>
</main><footer>© 2024</footer></body></html>"""
PAGE_V2 = PAGE_V1.replace("<li>Military and warfare</li>", "")


class Site:
    """Pages served with ETags; 304 when the client already has the current one."""

    def __init__(self, server: HTTPServer) -> None:
        self.pages: dict[str, str] = {}
        self.server = server
        self.statuses: list[int] = []
        server.expect_request("/fail").respond_with_data("broken", status=500)
        for path in ("/a", "/b"):
            server.expect_request(path).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        body = self.pages[request.path]
        etag = '"' + hashlib.md5(body.encode()).hexdigest() + '"'
        if request.headers.get("If-None-Match") == etag:
            self.statuses.append(304)
            return Response(status=304, headers={"ETag": etag})
        self.statuses.append(200)
        return Response(body, content_type="text/html; charset=utf-8", headers={"ETag": etag})


def test_first_unchanged_and_changed_fetches(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"), select=["main"])])
    store_root = tracker.store.root

    first = run(tracker, clock=clock)
    assert [o.status for o in first.outcomes] == ["new"]
    after_first = files_under(store_root / "test")
    assert after_first == [
        "a/20240501T120000Z.html.gz",
        "a/20240501T120000Z.json",
        "a/20240501T120000Z.md",
    ]
    assert (store_root / "test/a/20240501T120000Z.md").read_text() == (
        "# Policy\n\n## Disallowed usage\n\n- Weapons development\n- Military and warfare\n"
    )

    clock.advance(hours=6)
    second = run(tracker, clock=clock)
    assert [o.status for o in second.outcomes] == ["unchanged"]
    assert site.statuses == [200, 304]  # the second fetch was conditional
    assert files_under(store_root / "test") == after_first  # nothing new written

    clock.advance(hours=6)
    site.pages["/a"] = PAGE_V2
    third = run(tracker, clock=clock)
    outcome = third.outcomes[0]
    assert outcome.status == "changed"
    assert outcome.change is not None
    assert outcome.change.diff.deleted == ["- Military and warfare\n"]
    assert outcome.change.diff.removed_words == 3
    assert outcome.change.diff.sections == ("Disallowed usage",)
    assert len(files_under(store_root / "test")) == 6
    changes = tracker.index.changes("test/a")
    assert [(c["from_captured_at"], c["to_captured_at"], c["removed_words"]) for c in changes] == [
        ("2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z", 3)
    ]
    runs = list(tracker.index.db.query("select * from runs order by id"))
    assert [(r["new"], r["unchanged"], r["changed"]) for r in runs] == [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
    ]


def test_same_text_from_different_bytes_keeps_raw_but_adds_no_version(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    httpserver.expect_ordered_request("/t").respond_with_data(
        "<main><p>Terms</p><!-- token 1 --></main>", content_type="text/html"
    )
    httpserver.expect_ordered_request("/t").respond_with_data(
        "<main><p>Terms</p><!-- token 2 --></main>", content_type="text/html"
    )
    tracker = make_tracker([document_entry("test/t", httpserver.url_for("/t"))])
    run(tracker, clock=clock)
    clock.advance(hours=1)
    summary = run(tracker, clock=clock)
    assert summary.outcomes[0].status == "unchanged"
    assert summary.outcomes[0].snapshot_stored
    names = files_under(tracker.store.root / "test")
    assert sum(n.endswith(".md") for n in names) == 1
    assert sum(n.endswith(".html.gz") for n in names) == 2
    assert len(tracker.store.versions("test/t")) == 1


def test_retry_after_503_inside_a_run(httpserver: HTTPServer, make_tracker, clock: Clock) -> None:
    httpserver.expect_ordered_request("/r").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/r").respond_with_data(
        "<p>Back</p>", content_type="text/html"
    )
    tracker = make_tracker([document_entry("test/r", httpserver.url_for("/r"))])
    summary = run(tracker, clock=clock)
    assert [o.status for o in summary.outcomes] == ["new"]
    assert tracker.store.read_text(tracker.store.versions("test/r")[0]) == "Back\n"


def test_a_failing_document_does_not_stop_the_others(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    site.pages["/b"] = PAGE_V2
    tracker = make_tracker(
        [
            document_entry("test/a", httpserver.url_for("/a")),
            document_entry("test/broken", httpserver.url_for("/fail")),
            document_entry("test/b", httpserver.url_for("/b")),
        ]
    )
    summary = run(tracker, clock=clock)
    assert [(o.document, o.status) for o in summary.outcomes] == [
        ("test/a", "new"),
        ("test/broken", "failed"),
        ("test/b", "new"),
    ]
    failed = summary.outcomes[1]
    assert (failed.error_kind, failed.http_status) == ("http", 500)
    errors = list(tracker.index.db.query("select document, kind, http_status from fetch_errors"))
    assert errors == [{"document": "test/broken", "kind": "http", "http_status": 500}]
    assert not (tracker.store.root / "test" / "broken").exists()
    assert tracker.index.document("test/broken")["last_status"] == "failed"


def test_failed_fetch_never_touches_history(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    httpserver.expect_ordered_request("/h").respond_with_data("<main><p>One</p></main>")
    httpserver.expect_ordered_request("/h").respond_with_data("<div>bot check</div>")
    httpserver.expect_ordered_request("/h").respond_with_data("oops", status=404)
    tracker = make_tracker([document_entry("test/h", httpserver.url_for("/h"), select=["main"])])
    run(tracker, clock=clock)
    before = files_under(tracker.store.root / "test")
    for expected_kind in ("selector", "http"):
        clock.advance(hours=1)
        outcome = run(tracker, clock=clock).outcomes[0]
        assert (outcome.status, outcome.error_kind) == ("failed", expected_kind)
    assert files_under(tracker.store.root / "test") == before
    assert tracker.store.read_text(tracker.store.latest_version("test/h")) == "One\n"


def test_reindex_gives_the_same_index(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled
) -> None:
    """Build an index run by run, rebuild one from the files alone, compare every row."""
    site = Site(httpserver)
    tracker = make_tracker(
        [
            document_entry("azure/coc", httpserver.url_for("/a"), select=["main .content"]),
            document_entry("openai/up", httpserver.url_for("/b"), select=["main", "#content"]),
            document_entry("test/broken", httpserver.url_for("/fail")),
        ]
    )
    azure, openai = bundled["azure-openai/code-of-conduct"], bundled["openai/usage-policies"]
    for step in range(4):
        site.pages["/a"] = azure[min(step, len(azure) - 1)].decode()
        site.pages["/b"] = openai[step].decode()
        run(tracker, clock=clock)
        clock.advance(days=3)
    incremental = tracker.index.dump()
    assert len(incremental["changes"]) == 1 + 3
    assert len(incremental["fetch_errors"]) == 4

    rebuilt_path = Path(tracker.config.index_path).with_name("rebuilt.db")
    rebuilt = Index(rebuilt_path)
    rebuilt.rebuild(Store(tracker.config.store_path), tracker.config.sources)
    assert rebuilt.dump() == incremental
    rebuilt.close()


def test_index_behind_the_files_is_repaired_on_the_next_run(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    """A crash after the files were written but before the index was: the next run catches up."""
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"))])
    run(tracker, clock=clock)
    clock.advance(hours=1)
    site.pages["/a"] = PAGE_V2
    run(tracker, clock=clock)
    expected = tracker.index.dump()
    with tracker.index.db.conn:
        tracker.index.db.execute("delete from versions")
        tracker.index.db.execute("delete from snapshots")
        tracker.index.db.execute("delete from changes")
    clock.advance(hours=1)
    run(tracker, clock=clock)
    repaired = tracker.index.dump()
    for table in ("snapshots", "versions", "changes"):
        assert repaired[table] == expected[table]


def test_incomplete_capture_without_metadata_is_ignored(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"))])
    run(tracker, clock=clock)
    folder = tracker.store.root / "test" / "a"
    # What a crash between writing the text and the metadata leaves behind.
    (folder / "20240501T130000Z.md").write_text("half written\n")
    assert [v.path for v in tracker.store.versions("test/a")] == ["test/a/20240501T120000Z.md"]
    clock.advance(hours=2)
    assert run(tracker, clock=clock).outcomes[0].status == "unchanged"


def test_run_journal_records_every_outcome(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    tracker = make_tracker(
        [
            document_entry("test/a", httpserver.url_for("/a")),
            document_entry("test/broken", httpserver.url_for("/fail")),
        ]
    )
    summary = run(tracker, clock=clock)
    journal = json.loads((tracker.store.root / "_runs" / f"{summary.id}.json").read_text())
    assert journal["counts"] == {"new": 1, "changed": 0, "unchanged": 0, "failed": 1}
    assert [(o["document"], o["status"], o["error_kind"]) for o in journal["outcomes"]] == [
        ("test/a", "new", None),
        ("test/broken", "failed", "http"),
    ]


def test_a_new_url_is_fetched_in_full_not_conditionally(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    """The old URL's validators mean nothing to the new one: a 304 there would hide it."""
    from tracker.app.pipeline import Tracker
    from tracker.config.settings import load_config

    def old(request: Request) -> Response:
        return Response("<p>Old place</p>", headers={"ETag": '"same"'})

    def new(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"same"':
            return Response(status=304, headers={"ETag": '"same"'})
        return Response("<p>New place</p>", headers={"ETag": '"same"'})

    httpserver.expect_request("/old").respond_with_handler(old)
    httpserver.expect_request("/new").respond_with_handler(new)
    for path, expected in (("/old", "new"), ("/new", "changed")):
        write_config(tmp_path, [document_entry("test/moved", httpserver.url_for(path))])
        with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
            assert run(tracker, clock=clock).outcomes[0].status == expected
            clock.advance(hours=1)
    with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
        assert tracker.store.read_text(tracker.store.latest_version("test/moved")) == "New place\n"


def test_new_extraction_settings_re_extract_the_same_bytes(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    """A selector fix takes effect at once, and is labelled as ours, not the provider's."""
    from tracker.app.pipeline import Tracker
    from tracker.config.settings import load_config

    page = "<div id='cookie'>We use cookies.</div><main><p>Terms.</p></main>"
    httpserver.expect_request("/p").respond_with_data(page, content_type="text/html")
    outcomes = []
    for select in (["#cookie"], ["main"], ["main"]):
        write_config(tmp_path, [document_entry("test/p", httpserver.url_for("/p"), select=select)])
        with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
            outcomes.append(run(tracker, clock=clock).outcomes[0])
            clock.advance(hours=1)
    assert [o.status for o in outcomes] == ["new", "changed", "unchanged"]
    change = outcomes[1].change
    assert change is not None and change.extraction_changed
    assert change.summary.endswith("(after the extraction settings changed)")
    raws = [n for n in files_under(tmp_path / "snapshots") if n.endswith(".gz")]
    assert len(raws) == 1  # the same bytes are stored once


def test_one_pathological_page_does_not_abort_the_run(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    deep = "<p>start</p>" + "<font>" * 600 + "deep text" + "<div>" * 3000 + "deeper"
    httpserver.expect_request("/deep").respond_with_data(deep, content_type="text/html")
    httpserver.expect_request("/ok").respond_with_data("<p>fine</p>", content_type="text/html")
    tracker = make_tracker(
        [
            document_entry("test/deep", httpserver.url_for("/deep")),
            document_entry("test/ok", httpserver.url_for("/ok")),
        ]
    )
    summary = run(tracker, clock=clock)
    assert [o.status for o in summary.outcomes] == ["new", "new"]
    text = tracker.store.read_text(tracker.store.latest_version("test/deep"))
    assert text == "start\n\ndeep text deeper\n"  # flattened past 150 levels, words kept apart


def test_runs_in_the_same_second_replay_in_order(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    """Run ids …Z, …Z-2 … …Z-10 sort by when they ran, so reindex ends in the same state."""
    httpserver.expect_ordered_request("/f").respond_with_data("gone", status=404)
    for _ in range(10):
        httpserver.expect_ordered_request("/f").respond_with_data("<p>back</p>")
    tracker = make_tracker([document_entry("test/f", httpserver.url_for("/f"))], retries=0)
    statuses = [run(tracker, clock=clock).outcomes[0].status for _ in range(11)]
    assert statuses == ["failed", "new"] + ["unchanged"] * 9
    assert tracker.store.run_ids()[:3] == [
        "20240501T120000Z",
        "20240501T120000Z-2",
        "20240501T120000Z-3",
    ]
    assert tracker.store.run_ids()[-1] == "20240501T120000Z-11"
    before = tracker.index.dump()
    rebuilt = Index(tracker.config.index_path.with_name("rebuilt.db"))
    rebuilt.rebuild(tracker.store, tracker.config.sources)
    assert rebuilt.dump() == before
    assert rebuilt.document("test/f")["last_status"] == "unchanged"
    rebuilt.close()


def test_an_unconfigured_document_reindexes_the_same(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    from tracker.app.pipeline import Tracker
    from tracker.config.settings import load_config

    httpserver.expect_request("/a").respond_with_data("<p>A</p>")
    httpserver.expect_request("/b").respond_with_data("<p>B</p>")
    docs = [
        document_entry("test/a", httpserver.url_for("/a")),
        document_entry("test/b", httpserver.url_for("/b")),
    ]
    write_config(tmp_path, docs)
    with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
        run(tracker, clock=clock)
    write_config(tmp_path, docs[:1])  # test/b is no longer tracked; its history stays
    config = load_config(tmp_path / "tracker.toml")
    with Tracker.open(config) as tracker:
        incremental = tracker.index.dump()
        row = tracker.index.document("test/b")
        assert (row["configured"], row["title"]) == (0, "Title of test/b")
        rebuilt = Index(tmp_path / "rebuilt.db")
        rebuilt.rebuild(tracker.store, config.sources)
        assert rebuilt.dump() == incremental
        rebuilt.close()


def test_a_journal_written_but_never_indexed_is_applied_next_time(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    httpserver.expect_request("/a").respond_with_data("<p>A</p>")
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"))])
    run(tracker, clock=clock)
    with tracker.index.db.conn:
        tracker.index.db.execute("delete from runs")  # as if it crashed before apply_run
    clock.advance(hours=1)
    run(tracker, clock=clock)
    ids = [r["id"] for r in tracker.index.db.query("select id from runs order by id")]
    assert ids == tracker.store.run_ids() and len(ids) == 2


def test_a_second_run_on_the_same_store_is_refused(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    import pytest

    from tracker.core.errors import LockedError

    httpserver.expect_request("/a").respond_with_data("<p>A</p>")
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"))])
    with tracker.store.lock(), pytest.raises(LockedError, match="in use by pid"):
        run(tracker, clock=clock, wait=0.3)
    assert run(tracker, clock=clock).outcomes[0].status == "new"


def test_the_same_bytes_without_validators_are_not_extracted_again(
    httpserver: HTTPServer, make_tracker, clock: Clock, monkeypatch
) -> None:
    httpserver.expect_request("/plain").respond_with_data(
        PAGE_V1, content_type="text/html; charset=utf-8"
    )
    url = httpserver.url_for("/plain")
    tracker = make_tracker([document_entry("test/plain", url, select=["main"])])
    first = run(tracker, clock=clock)
    assert [o.status for o in first.outcomes] == ["new"]
    before = files_under(tracker.store.root / "test")

    def no_extract(*args: object, **kwargs: object) -> str:
        raise AssertionError("identical bytes were extracted again")

    monkeypatch.setattr("tracker.app.pipeline.extract_text", no_extract)
    clock.advance(hours=1)
    (outcome,) = run(tracker, clock=clock).outcomes
    assert outcome.status == "unchanged" and outcome.http_status == 200
    assert outcome.version == first.outcomes[0].version
    assert not outcome.snapshot_stored
    assert files_under(tracker.store.root / "test") == before


def test_the_summary_keeps_a_change_s_edits_not_the_whole_text(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    """Progress sees the whole diff; the summary, held until the run ends, only the edits."""
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"), select=["main"])])
    run(tracker, clock=clock)
    clock.advance(hours=6)
    site.pages["/a"] = PAGE_V2
    seen = []
    summary = run(tracker, clock=clock, progress=seen.append)
    live, kept = seen[0].change, summary.outcomes[0].change
    assert live is not None and kept is not None
    assert any(op == 0 for op, _ in live.diff.ops)
    assert all(op != 0 for op, _ in kept.diff.ops)
    assert kept.diff.deleted == live.diff.deleted == ["- Military and warfare\n"]
    assert kept.summary == live.summary and kept.flags == live.flags


def test_a_document_named_twice_is_checked_once(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    """Documents are recorded on fetch threads; one named twice must not race itself."""
    site = Site(httpserver)
    site.pages["/a"] = PAGE_V1
    tracker = make_tracker([document_entry("test/a", httpserver.url_for("/a"), select=["main"])])
    summary = run(tracker, clock=clock, only=["test/a", "test/a"])
    assert [o.document for o in summary.outcomes] == ["test/a"]
    assert site.statuses == [200]
    assert len(files_under(tracker.store.root / "test")) == 3


def test_an_index_error_on_one_document_fails_that_document_only(
    httpserver: HTTPServer, make_tracker, clock: Clock, monkeypatch
) -> None:
    """Index rows are written on the run's thread; a failing one (a full disk under the
    index, say) fails its document, the others go on, and the next run indexes it."""
    import sqlite3

    httpserver.expect_request("/a").respond_with_data("<p>alpha text</p>", content_type="text/html")
    httpserver.expect_request("/b").respond_with_data("<p>beta text</p>", content_type="text/html")
    tracker = make_tracker(
        [
            document_entry("test/a", httpserver.url_for("/a")),
            document_entry("test/b", httpserver.url_for("/b")),
        ],
        workers=1,
    )
    real = Index._refresh_document

    def broken(self: Index, doc: str) -> None:
        if doc == "test/a":
            raise sqlite3.OperationalError("database or disk is full")
        real(self, doc)

    monkeypatch.setattr(Index, "_refresh_document", broken)
    summary = run(tracker, clock=clock)
    outcomes = {o.document: o for o in summary.outcomes}
    assert outcomes["test/b"].status == "new"
    assert outcomes["test/a"].status == "failed"
    assert "could not index" in (outcomes["test/a"].error or "")
    assert [r["document"] for r in tracker.index.db.query("select document from snapshots")] == [
        "test/b"
    ]
    monkeypatch.setattr(Index, "_refresh_document", real)
    clock.advance(hours=1)
    run(tracker, clock=clock)  # sync finds the files ahead of the index and repairs them
    rows = tracker.index.db.query("select document from snapshots order by document")
    assert [r["document"] for r in rows] == ["test/a", "test/b"]


def test_an_unreadable_capture_fails_its_document_only(
    httpserver: HTTPServer, make_tracker, clock: Clock
) -> None:
    """Each document is read and recorded on a fetch thread; a corrupt metadata file
    there is that document's failure, never the run's."""
    httpserver.expect_request("/a").respond_with_data("<p>alpha text</p>", content_type="text/html")
    httpserver.expect_request("/b").respond_with_data("<p>beta text</p>", content_type="text/html")
    tracker = make_tracker(
        [
            document_entry("test/a", httpserver.url_for("/a")),
            document_entry("test/b", httpserver.url_for("/b")),
        ]
    )
    run(tracker, clock=clock)
    (meta,) = (tracker.store.root / "test" / "a").glob("*.json")
    meta.write_text("{not json")
    clock.advance(hours=1)
    outcomes = {o.document: o for o in run(tracker, clock=clock).outcomes}
    assert outcomes["test/a"].status == "failed" and outcomes["test/a"].error_kind == "store"
    assert "unreadable capture metadata" in (outcomes["test/a"].error or "")
    assert outcomes["test/b"].status == "unchanged"


def test_a_batched_write_inside_another_never_commits_the_outer_one(tmp_path: Path) -> None:
    """A group's commit comes only between writes: a nested write that finds the group
    due must not commit while the write around it is still open."""
    import pytest

    index = Index(tmp_path / "index.db")
    with index.batched(seconds=0):  # every write finds the group due
        with index._transaction():
            index.db.conn.execute("insert into runs (id) values ('a')")
            with index._transaction():
                index.db.conn.execute("insert into runs (id) values ('b')")
        with pytest.raises(RuntimeError), index._transaction():
            index.db.conn.execute("insert into runs (id) values ('c')")
            with index._transaction():
                index.db.conn.execute("insert into runs (id) values ('d')")
            raise RuntimeError("the outer write fails after the inner one")
    assert [r["id"] for r in index.db.query("select id from runs order by id")] == ["a", "b"]
    index.close()
