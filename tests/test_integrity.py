"""Crash safety and integrity: `verify`, runs killed with SIGKILL, a full or read-only disk."""

from __future__ import annotations

import errno
import gzip
import hashlib
import itertools
import json
import os
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import document_entry, files_under, invoke, write_config
from pytest_httpserver import HTTPServer
from test_schedule import assert_consistent, cli_process
from werkzeug import Request, Response

from tracker.app.pipeline import Tracker
from tracker.config.settings import load_config
from tracker.core.errors import StoreError
from tracker.storage.index import Index
from tracker.storage.store import Store

CLAUSES = [
    "We may use your content to improve the service.",
    "You may opt out of training at any time.",
    "Disputes are settled by binding arbitration.",
    "We keep logs for thirty days.",
]


class Site:
    """Documents on a local server whose text moves on each `advance()`.

    Each document cycles through a few texts at its own pace, so a run finds some
    new, some changed, some unchanged, and texts come back after others. Even
    documents send an ETag and answer 304 to it.
    """

    def __init__(
        self, httpserver: HTTPServer, count: int, delay: float = 0.0, bulk: int = 0
    ) -> None:
        self.generation = 0
        self.delay = delay
        self.bulk = "".join(
            f"<p>Section {k}: the service is provided as is.</p>" for k in range(bulk)
        )
        self.docs = []
        for n in range(count):
            httpserver.expect_request(f"/d{n}").respond_with_handler(self.handler(n))
            self.docs.append(document_entry(f"site/d{n}", httpserver.url_for(f"/d{n}")))

    def text(self, n: int) -> str:
        variant = (self.generation // (n % 3 + 1) + n) % len(CLAUSES)
        clause = CLAUSES[variant]
        return f"<main><h1>Terms {n}</h1><p>{clause}</p>{self.bulk}<p>Doc {n}.</p></main>"

    def handler(self, n: int):  # a werkzeug handler
        def respond(request: Request) -> Response:
            time.sleep(self.delay)
            body = self.text(n)
            etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
            if n % 2 == 0 and request.headers.get("If-None-Match") == etag:
                return Response(status=304, headers={"ETag": etag})
            headers = {"ETag": etag} if n % 2 == 0 else {}
            return Response(body, content_type="text/html; charset=utf-8", headers=headers)

        return respond

    def advance(self) -> None:
        self.generation += 1


def verify_json(*args: str) -> tuple[int, dict]:
    result = invoke("verify", "--json", *args)
    return result.exit_code, json.loads(result.output)


def kinds(payload: dict) -> Counter[str]:
    return Counter(p["kind"] for p in payload["problems"])


@pytest.fixture
def site(httpserver: HTTPServer, workdir: Path) -> Site:
    site = Site(httpserver, 4)
    write_config(workdir, site.docs)
    for _ in range(3):
        assert invoke("run").exit_code == 0
        site.advance()
    return site


def store_files(workdir: Path, suffix: str) -> list[Path]:
    return sorted((workdir / "snapshots" / "site").rglob(f"*{suffix}"))


# --- verify ------------------------------------------------------------------------------


def test_verify_is_clean_after_runs(site: Site, workdir: Path) -> None:
    code, payload = verify_json()
    assert code == 0, payload
    assert payload["ok"] is True and payload["problems"] == []
    counts = payload["counts"]
    assert counts["documents"] == 4 and counts["journals"] == 3 and counts["unfinished"] == 0
    assert counts["captures"] >= 4 and counts["texts"] >= 4
    text = invoke("verify")
    assert text.exit_code == 0
    assert text.output.endswith("and the index: consistent.\n")


def test_a_changed_byte_in_a_text_is_named_and_not_repairable(site: Site, workdir: Path) -> None:
    target = store_files(workdir, ".md")[-1]
    original = target.read_bytes()
    expected = hashlib.sha256(original).hexdigest()
    damaged = original.replace(b"Terms", b"Terns", 1)
    target.write_bytes(damaged)
    result = invoke("verify")
    assert result.exit_code == 1
    assert str(target) in result.output and "hash differs" in result.output
    assert f"expected sha256 {expected}" in result.output
    assert f"actual   sha256 {hashlib.sha256(damaged).hexdigest()}" in result.output
    meta = json.loads(target.with_suffix(".json").read_text())
    code, payload = verify_json("--repair")
    assert code == 1
    (corrupt,) = [p for p in payload["problems"] if p["kind"] == "corrupt"]
    assert corrupt["document"] == meta["document"]
    assert corrupt["captured_at"] == meta["captured_at"]
    assert target.read_bytes() == damaged  # never rewritten
    target.write_bytes(original)  # restored from a backup
    assert invoke("verify").exit_code == 0


def test_a_corrupt_raw_snapshot_is_reported(site: Site, workdir: Path) -> None:
    target = store_files(workdir, ".html.gz")[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    code, payload = verify_json()
    assert code == 1
    (problem,) = [p for p in payload["problems"] if p["path"] == str(target)]
    assert problem["kind"] == "corrupt" and problem["repairable"] is False
    # Raw bytes that decompress but are not what was fetched are caught by the hash.
    target.write_bytes(gzip.compress(b"<p>something else</p>"))
    result = invoke("verify")
    assert result.exit_code == 1 and "hash differs" in result.output
    target.unlink()
    result = invoke("verify")
    assert result.exit_code == 1
    assert f"{target}: " in result.output and "is missing" in result.output


def test_index_rows_missing_or_bogus_are_repaired(site: Site, workdir: Path) -> None:
    db = sqlite3.connect(workdir / "tracker.db")
    (doc, when) = db.execute("select document, captured_at from versions limit 1").fetchone()
    db.execute("delete from versions where document = ? and captured_at = ?", [doc, when])
    db.execute(
        "insert into snapshots (document, captured_at, sha256, path) values (?, ?, ?, ?)",
        ["site/d0", "2030-01-01T00:00:00Z", "0" * 64, "site/d0/nope.html.gz"],
    )
    db.execute("update documents set last_checked = null where id = 'site/d1'")
    db.commit()
    db.close()
    result = invoke("verify")
    assert result.exit_code == 1
    assert f"table versions: 1 row [{doc} {when}] missing" in result.output
    assert "table snapshots: 1 row [site/d0 2030-01-01T00:00:00Z] that the files do not have" in (
        result.output
    )
    assert "table documents: 1 row [site/d1] different (columns last_checked)" in result.output
    repaired = invoke("verify", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "repaired   rebuilt the index" in repaired.output
    assert invoke("verify").exit_code == 0
    assert_consistent(workdir)


def test_leftovers_of_interrupted_writes_are_removed_but_never_a_named_file(
    site: Site, workdir: Path
) -> None:
    folder = workdir / "snapshots" / "site" / "d1"
    before = files_under(workdir / "snapshots")
    leftovers = [
        folder / ".20300101T000000Z.md.k2j3h4.tmp",
        workdir / "snapshots" / "_runs" / ".20300101T000000Z.json.abc.tmp",
        folder / "20300101T000000Z.html.gz",  # raw written, killed before the metadata
        folder / "20300101T000001Z.md",
        workdir / "snapshots" / "site" / "d9" / "20300101T000000Z.html.gz",  # a first capture
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    code, payload = verify_json()
    assert code == 1
    assert sorted(p["path"] for p in payload["problems"]) == sorted(map(str, leftovers))
    assert all(p["kind"] == "leftover" and p["repairable"] for p in payload["problems"])
    code, payload = verify_json("--repair")
    assert code == 0, payload
    assert sorted(payload["repaired"]) == sorted(f"removed {p}" for p in leftovers)
    assert files_under(workdir / "snapshots") == before


def test_leftovers_beside_unreadable_metadata_are_kept(site: Site, workdir: Path) -> None:
    folder = workdir / "snapshots" / "site" / "d2"
    meta = sorted(folder.glob("*.json"))[0]
    meta.write_text("{ not json")
    orphan = folder / "20300101T000000Z.html.gz"
    orphan.write_bytes(b"maybe named by the damaged metadata")
    code, payload = verify_json("--repair")
    assert code == 1
    assert kinds(payload)["unreadable"] == 1
    # The orphan, and the files the damaged metadata named: none is removed.
    left = [p for p in payload["problems"] if p["kind"] == "leftover"]
    assert str(orphan) in [p["path"] for p in left]
    assert all(not p["repairable"] and "unreadable metadata" in p["message"] for p in left)
    assert all(Path(p["path"]).exists() for p in left)
    # Nothing was repaired: the index cannot even be compared with damaged files.
    assert payload["repaired"] == []
    (index,) = [p for p in payload["problems"] if p["kind"] == "index"]
    assert "rebuilding it failed" in index["message"] and not index["repairable"]


def test_verify_waits_for_the_store_lock_and_exits_3(site: Site, workdir: Path) -> None:
    store = Store(workdir / "snapshots")
    with store.lock():
        result = invoke("verify")
    assert result.exit_code == 3 and "is in use" in result.output


# --- the index follows the files after a crash ----------------------------------------------


def test_index_writes_are_transactions(site: Site, workdir: Path, monkeypatch) -> None:
    """A capture half-recorded in the index is not recorded at all (SQLite rolls back)."""
    config = load_config(workdir / "tracker.toml")
    with Tracker.open(config) as tracker:
        capture = tracker.store.captures("site/d0")[-1]
        tracker.index.db.execute("delete from snapshots where document = 'site/d0'")
        tracker.index.db.execute("delete from versions where document = 'site/d0'")

        def crash(document: str) -> None:
            raise KeyboardInterrupt  # as good as a kill between two statements

        monkeypatch.setattr(tracker.index, "_refresh_document", crash)
        with pytest.raises(KeyboardInterrupt):
            tracker.index.add_capture(capture, None)
        rows = tracker.index.db.execute("select count(*) from snapshots where document = 'site/d0'")
        assert rows.fetchone()[0] == 0


def test_sync_catches_up_with_files_and_journals_ahead_of_the_index(
    site: Site, workdir: Path
) -> None:
    config = load_config(workdir / "tracker.toml")
    db = sqlite3.connect(workdir / "tracker.db")
    # As if killed after committing a capture, before indexing it...
    last = db.execute("select max(captured_at) from snapshots where document = 'site/d3'")
    db.execute(
        "delete from snapshots where document = 'site/d3' and captured_at = ?", last.fetchone()
    )
    # ...and after finishing a journal that the index only saw started.
    (run_id,) = db.execute("select max(id) from runs").fetchone()
    db.execute("update runs set ended_at = null where id = ?", [run_id])
    db.execute("update documents set last_checked = null")
    db.commit()
    db.close()
    with Tracker.open(config) as tracker:
        repaired = tracker.index.sync(tracker.store, [s.id for s in config.sources])
    assert repaired == ["site/d3"]
    assert_consistent(workdir)
    assert invoke("verify").exit_code == 0


# --- SIGKILL at many points -------------------------------------------------------------------


def versions_are_a_history(workdir: Path) -> None:
    store = Store(workdir / "snapshots")
    for document in store.documents():
        shas = [v.sha256 for v in store.versions(document)]
        assert all(a != b for a, b in itertools.pairwise(shas)), document
        times = [v.captured_at for v in store.versions(document)]
        assert times == sorted(times) and len(set(times)) == len(times)


def state_after_kill(workdir: Path, runs_before: int) -> str:
    """What a kill left behind, before the next run repairs it (for the test's report)."""
    store = Store(workdir / "snapshots")
    journals = list(store.runs())
    if len(journals) == runs_before:
        return "killed before starting"
    names = ["journal started" if journals[-1]["ended_at"] is None else "journal finished"]
    files = [p for p in store.root.rglob("*") if p.is_file() and "_runs" not in p.parts]
    stems = {p.name[:16] for p in files if p.suffix == ".json"}
    if any(p.name.endswith(".tmp") for p in files):
        names.append("temporary file")
    if any(p.suffix != ".json" and p.name[:16] not in stems for p in files if p.name[0] == "2"):
        names.append("capture without metadata")
    db = sqlite3.connect(workdir / "tracker.db")
    for document in store.documents():
        rows = db.execute(
            "select captured_at from snapshots where document = ? order by 1", [document]
        )
        if [r[0] for r in rows] != store.capture_times(document):
            names.append("index behind the files")
            break
    db.close()
    return ", ".join(names)


@pytest.mark.timeout(180)
def test_runs_killed_at_any_point_leave_a_store_the_next_run_and_verify_accept(
    httpserver: HTTPServer, workdir: Path
) -> None:
    # Long pages, so a good share of each run is spent extracting, writing and indexing.
    site = Site(httpserver, 8, delay=0.04, bulk=300)
    write_config(workdir, site.docs, fetch={"timeout": 5})
    assert invoke("run").exit_code == 0
    site.advance()
    # Complete runs as subprocesses, to learn when a run starts working and ends: the
    # fastest of three, so one slow start on a busy machine does not push every kill
    # past the end of the run.
    totals = []
    for _ in range(3):
        start = time.monotonic()
        first = cli_process(workdir, "run")
        first.communicate(timeout=60)
        assert first.returncode == 0
        totals.append(time.monotonic() - start)
        site.advance()
    total = min(totals)
    working = total - site.delay * 8  # start-up, before the first request
    iterations = 24
    states: Counter[str] = Counter()
    for i in range(iterations):
        site.advance()
        # Kill points spread from just before the first request to past the end.
        delay = max(0.05, working - 0.1 + (total - working + 0.2) * i / (iterations - 1))
        runs_before = len(list(Store(workdir / "snapshots").runs()))
        proc = cli_process(workdir, "run")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        state = "finished" if proc.returncode == 0 else state_after_kill(workdir, runs_before)
        states[state] += 1
        result = invoke("run")
        assert result.exit_code == 0, (i, delay, result.output)
        check_result = invoke("verify")
        assert check_result.exit_code == 0, (i, delay, state, check_result.output)
    versions_are_a_history(workdir)
    assert_consistent(workdir)
    print(f"\nfull run {total:.2f} s (start-up {working:.2f} s); states after a kill: {states}")
    killed_mid_run = sum(n for s, n in states.items() if "journal started" in s)
    assert killed_mid_run >= iterations // 4, states
    status = invoke("status", "--runs", "100")
    assert "not finished: still running, or killed" in status.output


@pytest.mark.timeout(120)
def test_a_killed_reindex_leaves_the_old_index(httpserver: HTTPServer, workdir: Path) -> None:
    site = Site(httpserver, 8)
    write_config(workdir, site.docs)
    for _ in range(4):
        invoke("run")
        site.advance()
    for i in range(6):
        proc = cli_process(workdir, "reindex")
        time.sleep(0.2 + 0.1 * i)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        result = invoke("verify")
        assert result.exit_code == 0, (i, result.output)


# --- a full or read-only disk --------------------------------------------------------------


def test_a_full_disk_fails_one_document_and_leaves_nothing_half_written(
    httpserver: HTTPServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(httpserver, 3)
    write_config(workdir, site.docs)
    real_fsync = os.fsync
    full = workdir / "snapshots" / "site" / "d1"

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(str(full)) and name.endswith(".tmp") and ".md." in name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = invoke("run", "--no-quiet")
    assert result.exit_code == 1
    assert "failed    site/d1  store: could not write" in result.output
    assert "No space left on device (free some space and run again)" in result.output
    assert "new       site/d0" in result.output and "new       site/d2" in result.output
    assert not full.exists() or files_under(full) == []  # the raw file written first is gone
    assert not [p for p in (workdir / "snapshots").rglob("*.tmp")]
    (journal,) = Store(workdir / "snapshots").runs()
    (outcome,) = [o for o in journal["outcomes"] if o["document"] == "site/d1"]
    assert outcome["error_kind"] == "store"
    assert invoke("verify").exit_code == 0
    monkeypatch.setattr(os, "fsync", real_fsync)
    again = invoke("run", "--no-quiet")
    assert again.exit_code == 0 and "new       site/d1" in again.output
    assert invoke("verify").exit_code == 0


def test_a_read_only_store_is_one_clear_error(
    httpserver: HTTPServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(httpserver, 3)
    write_config(workdir, site.docs)
    assert invoke("run").exit_code == 0
    before = files_under(workdir / "snapshots")
    requests = len(httpserver.log)
    site.advance()
    real_open = os.open
    store = workdir / "snapshots"

    def open_(path, flags, *args, **kwargs):  # creating a file there fails, as on a RO disk
        if str(path).startswith(str(store)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    result = invoke("run")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: could not write "), result.output
    assert f"Read-only file system (the store {store} is read-only for this user)" in lines[0]
    assert len(httpserver.log) == requests  # it stopped before fetching anything
    assert files_under(store) == before


def test_a_store_that_cannot_be_locked_is_a_clear_error(workdir: Path) -> None:
    write_config(workdir, [document_entry("a/b", "http://127.0.0.1:9/")])
    (workdir / "snapshots" / ".lock").mkdir(parents=True)  # open() fails, as on a read-only disk
    result = invoke("run")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot lock the store at {workdir}/snapshots/.lock:")


def test_a_failed_rebuild_leaves_the_old_index(site: Site, workdir: Path) -> None:
    """`Index.rebuild` is one transaction: what it leaves is the old index or the new one."""
    config = load_config(workdir / "tracker.toml")
    index = Index(config.index_path, config.topics)
    store = Store(config.store_path)
    broken = store.captures("site/d3")[-1].version
    assert broken is not None
    (store.root / broken.path).unlink()
    with pytest.raises(StoreError, match="cannot be read: No such file"):
        index.rebuild(store, config.sources)
    index.close()
    db = sqlite3.connect(config.index_path)
    assert db.execute("select count(*) from runs").fetchone()[0] == 3


def test_the_next_run_removes_leftovers_of_a_killed_one(site: Site, workdir: Path) -> None:
    folder = workdir / "snapshots" / "site" / "d0"
    named = files_under(workdir / "snapshots")
    leftovers = [
        folder / "20300101T000000Z.html.gz",
        folder / "20300101T000000Z.md",
        folder / ".20300101T000000Z.json.x1y2.tmp",
        workdir / "snapshots" / "_runs" / ".20300101T000000Z.json.x1y2.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"partial")
    assert invoke("verify").exit_code == 1
    assert invoke("run").exit_code == 0
    assert not any(path.exists() for path in leftovers)
    assert set(named) <= set(files_under(workdir / "snapshots"))  # nothing named was touched
    assert invoke("verify").exit_code == 0


# --- the rules the index was derived with ----------------------------------------------------


def test_new_topics_flag_the_past_on_the_next_run_and_verify_says_why_until_then(
    site: Site, workdir: Path
) -> None:
    def arbitration_flags() -> set[str]:
        db = sqlite3.connect(workdir / "tracker.db")
        rows = db.execute("select to_captured_at from flags where topic = 'arbitration'")
        found = {r[0] for r in rows}
        db.close()
        return found

    db = sqlite3.connect(workdir / "tracker.db")
    past = {r[0] for r in db.execute("select to_captured_at from changes")}
    db.close()
    assert past and not arbitration_flags()
    config = workdir / "tracker.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[topics]]\nid = "arbitration"\nlabel = "arbitration"\npatterns = ["arbitration"]\n',
        encoding="utf-8",
    )
    code, payload = verify_json()
    assert code == 1
    messages = [p["message"] for p in payload["problems"]]
    assert any("other analysis rules or topics" in m for m in messages), messages
    assert invoke("run").exit_code == 0
    assert verify_json()[0] == 0
    # Changes recorded before the topic existed are flagged now ("binding arbitration").
    assert arbitration_flags() & past


def test_an_index_derived_by_an_older_analysis_is_derived_again(site: Site, workdir: Path) -> None:
    db = sqlite3.connect(workdir / "tracker.db")
    db.execute("update meta set value = '1:old' where key = 'analysis'")
    db.execute("update changes set cosmetic_reason = 'stale'")
    db.commit()
    db.close()
    code, payload = verify_json()
    assert code == 1 and all(p["repairable"] for p in payload["problems"])
    repaired, payload = verify_json("--repair")
    assert repaired == 0, payload
    db = sqlite3.connect(workdir / "tracker.db")
    stale = db.execute("select count(*) from changes where cosmetic_reason = 'stale'")
    assert stale.fetchone()[0] == 0
    assert db.execute("select value from meta where key = 'analysis'").fetchone()[0] != "1:old"
    db.close()
