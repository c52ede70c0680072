"""Backfilling: dated folders, git history and a Wayback CDX server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Clock, document_entry, invoke, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.analysis.segments import clean_inline
from tracker.app.evaluation import load_cases
from tracker.app.importer import time_from_name, wayback_items
from tracker.app.pipeline import Tracker, run
from tracker.cli import cli
from tracker.config.settings import load_config
from tracker.storage.index import Index
from tracker.storage.store import Store

CASES = Path(__file__).parent / "cases" / "flags.json"
UP = {"select": ["main", "#content"], "remove": ['select[name="Locale Select"]', "main .sr-only"]}


@pytest.mark.parametrize(
    ("name", "iso"),
    [
        ("2024-05-02.html", "2024-05-02T00:00:00"),
        ("2024-05-02T12-30-05Z.md", "2024-05-02T12:30:05"),
        ("2024-05-02T12:30:05Z.txt", "2024-05-02T12:30:05"),
        ("20240502T123005Z.html", "2024-05-02T12:30:05"),
        ("20240502123005.html", "2024-05-02T12:30:05"),
    ],
)
def test_times_from_file_names(name: str, iso: str) -> None:
    when = time_from_name(name)
    assert when is not None and when.strftime("%Y-%m-%dT%H:%M:%S") == iso


def test_folder_import_in_date_order_and_again_adds_nothing(workdir: Path) -> None:
    folder = workdir / "history"
    folder.mkdir()
    (folder / "2024-03-01.md").write_text("# Terms\n\n- No military use.\n")
    (folder / "2024-01-01.md").write_text("# Terms\n\n- No military use.\n- Be kind.\n")
    (folder / "2024-02-01T08-00-00Z.md").write_text("# Terms\n\n- No military use.\n- Be kind.\n")
    (folder / "notes.txt").write_text("not dated")
    write_config(workdir, [document_entry("acme/terms", "https://acme.test/terms")])
    first = invoke("import", "acme/terms", str(folder))
    assert first.exit_code == 0
    assert (
        "3 found, 2 captures added (2 new versions), 1 already present or unchanged" in first.output
    )
    assert "skipped notes.txt" in first.output
    again = invoke("import", "acme/terms", str(folder))
    assert "3 found, 0 captures added" in again.output
    rows = json.loads(invoke("history", "acme/terms", "--json").output)
    assert [r["captured_at"] for r in rows] == ["2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z"]
    change = json.loads(invoke("diff", "acme/terms", "--json").output)
    assert (
        change["clauses"][0]["kind"] == "removed" and change["clauses"][0]["before"] == "Be kind."
    )


def test_imported_versions_are_marked_in_store_index_and_report(workdir: Path) -> None:
    folder = workdir / "h"
    folder.mkdir()
    (folder / "2024-01-01.md").write_text("One.\n")
    (folder / "2024-02-01.md").write_text("Two.\n")
    write_config(workdir, [document_entry("acme/terms", "https://acme.test/terms")])
    invoke("import", "acme/terms", str(folder))
    meta = json.loads((workdir / "snapshots/acme/terms/20240101T000000Z.json").read_text())
    assert meta["imported"]["source"] == "folder"
    assert meta["imported"]["file"] == str((folder / "2024-01-01.md").resolve())
    config = load_config(workdir / "tracker.toml")
    index = Index(config.index_path)
    assert [
        json.loads(r["imported"])["source"] for r in index.db.query("select imported from versions")
    ] == [
        "folder",
        "folder",
    ]
    index.close()
    invoke("report", "--out", "report")
    (page,) = (workdir / "report/acme/terms").glob("*.html")
    assert "imported from folder" in page.read_text()


def import_corpus(workdir: Path, corpus: Path, folder: str, doc: str, **extra: object) -> None:
    write_config(
        workdir, [document_entry(doc, "https://openai.com/policies/usage-policies/", **extra)]
    )
    result = invoke("import", doc, str(corpus / folder))
    assert result.exit_code == 0, result.output


def test_importing_the_corpus_gives_the_evaluated_flags(workdir: Path, corpus: Path) -> None:
    """Markdown versions and raw HTML both give the military removal of January 2024."""
    for folder, extra in (("openai-usage-policies", {}), ("openai-usage-policies-html", UP)):
        for leftover in ("snapshots", "tracker.db"):
            subprocess.run(["rm", "-rf", str(workdir / leftover)], check=True)
        import_corpus(workdir, corpus, folder, "openai/usage-policies", **extra)
        change = json.loads(
            invoke("diff", "openai/usage-policies", "--from", "1", "--to", "2", "--json").output
        )
        assert change["from"]["captured_at"] == "2024-01-10T12:30:38Z"  # the manifest's time
        assert change["to"]["captured_at"] == "2024-01-10T18:30:37Z"
        flags = {(f["topic"], f["kind"], f["text"]) for f in change["flags"]}
        assert ("military", "removed", "Military and warfare") in flags
        if folder == "openai-usage-policies":  # the very pair the clause evaluation labelled
            (case,) = [c for c in load_cases(CASES) if c.name == "usage-policies-military-removed"]
            got = [(t, k, clean_inline(text)) for t, k, text in flags]
            for topic, kind, piece in case.expected:
                assert any(t == topic and k == kind and piece in x for t, k, x in got), piece
            assert len(change["flags"]) == len(case.expected)
        assert ("law-enforcement", "removed", "Law enforcement and criminal justice") in flags
        meta = json.loads(
            next(
                (workdir / "snapshots/openai/usage-policies").glob("20240110T123038Z.json")
            ).read_text()
        )
        assert meta["imported"]["manifest"]["source_repo"].startswith("OpenTermsArchive/")
        assert meta["imported"]["manifest"]["date"] == "2023-03-23"  # the page's stated date


def git(repo: Path, *args: str, when: str | None = None) -> None:
    names = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
    env = {**os.environ, **{name: "t" for name in names}}
    if when:
        env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def test_git_import_dates_versions_by_commit_time(workdir: Path) -> None:
    repo = workdir / "archive"
    repo.mkdir()
    git(repo, "init", "-q")
    path = repo / "OpenAI" / "Usage Policies.md"
    path.parent.mkdir()
    for n, (when, text) in enumerate(
        [
            ("2023-03-23T10:00:00+00:00", "- Weapons development\n- Military and warfare\n"),
            ("2023-06-01T10:00:00+00:00", "- Weapons development\n- Military and warfare\n"),
            ("2024-01-10T18:30:37+00:00", "- Weapons development\n"),
        ]
    ):
        path.write_text(text)
        (repo / "other.txt").write_text(str(n))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"version {n}", when=when)
    write_config(workdir, [document_entry("openai/usage-policies", "https://openai.com/p")])
    result = invoke(
        "import", "openai/usage-policies", "--git", str(repo), "--path", "OpenAI/Usage Policies.md"
    )
    assert (
        "2 found, 2 captures added" in result.output
    )  # the commit that only touched other.txt is not listed
    events = json.loads(
        invoke("blame", "openai/usage-policies", "Military and warfare", "--json").output
    )
    assert [(e["event"], e["captured_at"]) for e in events] == [
        ("appeared", "2023-03-23T10:00:00Z"),
        ("disappeared", "2024-01-10T18:30:37Z"),
    ]
    meta = json.loads(
        (workdir / "snapshots/openai/usage-policies/20240110T183037Z.json").read_text()
    )
    assert meta["imported"]["source"] == "git" and len(meta["imported"]["commit"]) == 40


def cdx_server(httpserver: HTTPServer, pages: dict[str, str], url: str) -> list[str]:
    """The CDX API's JSON output and id_ captures, as web.archive.org serves them."""
    fetched: list[str] = []

    def cdx(request: Request) -> Response:
        assert request.args["url"] == url and request.args["output"] == "json"
        rows = [["timestamp", "original", "statuscode", "digest", "mimetype"]]
        rows += [[ts, url, "200", f"D{ts}", "text/html"] for ts in sorted(pages)]
        return Response(json.dumps(rows), content_type="application/json")

    def capture(request: Request) -> Response:
        stamp = request.path.split("/")[2].removesuffix("id_")
        fetched.append(stamp)
        return Response(pages[stamp], content_type="text/html")

    httpserver.expect_request("/cdx/search/cdx").respond_with_handler(cdx)
    for stamp in pages:
        httpserver.expect_request(f"/web/{stamp}id_/{url}").respond_with_handler(capture)
    return fetched


def test_wayback_import_is_polite_and_resumable(httpserver: HTTPServer, workdir: Path) -> None:
    url = "https://openai.com/policies/usage-policies"
    pages = {
        "20230323103000": "<main><ul><li>Military and warfare</li></ul></main>",
        "20240110183037": "<main><ul><li>Weapons</li></ul></main>",
        "20240601000000": "<main><ul><li>Weapons</li><li>Elections</li></ul></main>",
    }
    fetched = cdx_server(httpserver, pages, url)
    write_config(workdir, [document_entry("openai/up", url, select=["main"])], fetch={"retries": 0})
    config = load_config(workdir / "tracker.toml")
    sleeps: list[float] = []
    from tracker.app.importer import import_items

    with Tracker.open(config) as tracker:
        items = wayback_items(
            tracker,
            "openai/up",
            base=httpserver.url_for("/"),
            limit=2,
            delay=1.5,
            sleep=sleeps.append,
        )
        first = import_items(tracker, "openai/up", items)
        assert (first.added, sleeps) == (2, [1.5])  # spaced out, and stopped at the limit
        rest = import_items(
            tracker,
            "openai/up",
            wayback_items(tracker, "openai/up", base=httpserver.url_for("/"), delay=0),
        )
        assert rest.added == 1
        assert fetched == sorted(pages)  # resumed: no capture fetched twice
        assert [v.captured_at.year for v in tracker.store.versions("openai/up")] == [
            2023,
            2024,
            2024,
        ]
        meta = tracker.store.captures("openai/up")[0].meta
        assert meta["imported"]["source"] == "wayback"
        assert meta["imported"]["timestamp"] == "20230323103000"
        assert meta["final_url"] == url


def test_html_import_needs_a_configured_document(workdir: Path) -> None:
    folder = workdir / "h"
    folder.mkdir()
    (folder / "2024-01-01.html").write_text("<p>x</p>")
    write_config(workdir, [])
    result = CliRunner().invoke(cli, ["import", "acme/unknown", str(folder)])
    assert result.exit_code == 1 and "is not configured" in result.output
    assert not (workdir / "snapshots" / "acme").exists()


def test_import_then_live_runs_continue_the_history(httpserver: HTTPServer, workdir: Path) -> None:
    folder = workdir / "h"
    folder.mkdir()
    (folder / "2020-01-01.html").write_text("<main><p>Old terms.</p></main>")
    httpserver.expect_request("/t").respond_with_data(
        "<main><p>New terms.</p></main>", content_type="text/html"
    )
    write_config(workdir, [document_entry("acme/t", httpserver.url_for("/t"), select=["main"])])
    invoke("import", "acme/t", str(folder))
    assert invoke("run", "--no-quiet").exit_code == 0
    rows = json.loads(invoke("history", "acme/t", "--json").output)
    assert rows[0]["captured_at"] == "2020-01-01T00:00:00Z" and len(rows) == 2
    store = Store(workdir / "snapshots")
    assert store.captures("acme/t")[1].meta.get("imported") is None


# --- one path for every capture: imports judged as live runs -------------------------------

SENTENCE = "The provider may change these terms of service after giving notice to users. "
POLICY = "<html><head><title>Terms</title></head><body><main><h1>Terms</h1>{}</main></body></html>"


def policy(paragraphs: int, extra: str = "") -> str:
    """A page whose text is about `paragraphs` × 77 characters long."""
    body = "".join(f"<p>{n}. {SENTENCE}</p>" for n in range(paragraphs))
    return POLICY.format(body + (f"<p>{extra}</p>" if extra else ""))


WALL = (
    "<html><head><title>Just a moment...</title></head><body><main>"
    "<p>Checking your browser before accessing the site.</p></main></body></html>"
)
GUARDED = {"min_chars": 100, "max_shrink": 0.5, "confirm_shrink": 3}


def guarded_config(workdir: Path) -> None:
    doc = document_entry("acme/t", "https://acme.test/terms", select=["main"])
    write_config(workdir, [doc], fetch=GUARDED)


def write_pages(folder: Path, pages: list[tuple[str, str | bytes]]) -> None:
    folder.mkdir(exist_ok=True)
    for name, page in pages:
        data = page.encode() if isinstance(page, str) else page
        (folder / name).write_bytes(data)


def test_import_skips_what_is_not_the_document_by_kind_and_goes_on(workdir: Path) -> None:
    """Each kind of bad capture is skipped, counted and named; the ones after it still
    come in, the import exits 1, and the index matches the files."""
    guarded_config(workdir)
    folder = workdir / "h"
    write_pages(
        folder,
        [
            ("2024-01-01.html", policy(10)),
            ("2024-01-02.html", "<html><body><div>No main element here.</div></body></html>"),
            ("2024-01-03.html", WALL),
            ("2024-01-04.html", "<html><body><main><p>Terms.</p></main></body></html>"),
            ("2024-01-05.html", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
            ("2024-01-06.html", policy(3)),  # shrank by 70%, seen once: held back
            ("2024-01-07.html", policy(10, "A new clause about notice.")),
        ],
    )
    result = invoke("import", "acme/t", str(folder))
    assert result.exit_code == 1, result.output
    assert (
        "acme/t: 7 found, 2 captures added (2 new versions), 0 already present or unchanged,"
        " 5 failed (bot_wall 1, content_type 1, selector 1, shrank 1, too_short 1)"
    ) in result.output
    for when, kind in (
        ("2024-01-02T00:00:00Z", "selector"),
        ("2024-01-03T00:00:00Z", "bot_wall"),
        ("2024-01-04T00:00:00Z", "too_short"),
        ("2024-01-05T00:00:00Z", "content_type"),
        ("2024-01-06T00:00:00Z", "shrank"),
    ):
        assert f"{when}  failed ({kind}): " in result.output
    # A saved page has no HTTP status of its own: the wall is named as an imported capture.
    assert "instead of the document (an imported capture)" in result.output
    assert "(HTTP 200)" not in result.output
    rows = json.loads(invoke("history", "acme/t", "--json").output)
    assert [r["captured_at"] for r in rows] == ["2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"]
    assert invoke("verify").exit_code == 0
    again = invoke("import", "acme/t", str(folder))  # nothing new; the same five skipped
    assert again.exit_code == 1 and "0 captures added" in again.output
    assert "5 failed" in again.output


def test_a_shrink_seen_confirm_shrink_times_in_a_row_is_believed_as_in_live_runs(
    workdir: Path,
) -> None:
    guarded_config(workdir)
    folder = workdir / "h"
    short = policy(3)
    write_pages(
        folder,
        [("2024-01-01.html", policy(10))]
        + [
            (f"2024-01-0{d}.html", short.replace("</main>", f"<!-- {d} --></main>"))
            for d in (2, 3, 4)
        ],
    )
    result = invoke("-v", "import", "acme/t", str(folder), "-v")
    assert result.exit_code == 1
    assert "2 failed (shrank 2)" in result.output
    assert "2024-01-04T00:00:00Z  new version" in result.output
    rows = json.loads(invoke("history", "acme/t", "--json").output)
    assert [r["captured_at"] for r in rows] == ["2024-01-01T00:00:00Z", "2024-01-04T00:00:00Z"]


def test_flip_rule_applies_to_imports(workdir: Path) -> None:
    """A page alternating between two variants: two versions and one change, as live."""
    guarded_config(workdir)
    folder = workdir / "h"
    a, b = policy(10), policy(10, "A banner that comes and goes.")
    write_pages(folder, [(f"2024-01-0{d}.html", (a, b)[d % 2]) for d in range(1, 7)])
    result = invoke("import", "acme/t", str(folder), "-v")
    assert result.exit_code == 0, result.output
    assert "6 captures added (2 new versions)" in result.output
    # A B A B A B: each A after the first is a flip back; each B equals the latest version.
    assert "2 flips back to a recent version" in result.output
    assert result.output.count("flip: capture stored, no version") == 2
    assert len(json.loads(invoke("history", "acme/t", "--json").output)) == 2
    store = Store(workdir / "snapshots")
    flips = [c.meta.get("flip_of") for c in store.captures("acme/t")]
    assert flips == [None, None, *["2024-01-01T00:00:00Z", None] * 2]
    assert invoke("verify").exit_code == 0


def test_gzipped_captures_are_imported_and_a_broken_one_is_skipped(workdir: Path) -> None:
    guarded_config(workdir)
    folder = workdir / "h"
    write_pages(
        folder,
        [
            ("20240101T000000Z.html.gz", gzip.compress(policy(10).encode())),
            ("20240102T000000Z.html.gz", b"not gzip at all"),
            ("20240103T000000Z.html.gz", gzip.compress(policy(10, "Added.").encode())),
        ],
    )
    result = invoke("import", "acme/t", str(folder))
    assert result.exit_code == 1
    assert "2 captures added (2 new versions)" in result.output
    assert "1 failed (unreadable 1)" in result.output
    store = Store(workdir / "snapshots")
    (first, _) = store.captures("acme/t")
    assert store.read_snapshot(first.snapshot.path) == policy(10).encode()  # stored as served
    again = CliRunner().invoke(cli, ["import", "acme/t", str(folder), "--json"])
    report = json.loads(again.stdout)
    assert (again.exit_code, report["added"], report["unchanged"]) == (1, 0, 2)
    assert report["failures"] == {"unreadable": 1}
    assert report["failed_captures"][0]["captured_at"] == "2024-01-02T00:00:00Z"


def test_an_import_before_stored_captures_is_judged_as_of_its_time(workdir: Path) -> None:
    """Items going before a stored capture are judged against the history before them,
    the index is rebuilt, and verify agrees."""
    guarded_config(workdir)
    later, earlier = workdir / "later", workdir / "earlier"
    write_pages(later, [("2024-03-01.html", policy(10)), ("2024-04-01.html", policy(10, "New."))])
    assert invoke("import", "acme/t", str(later)).exit_code == 0
    # Before: a long page, then a short one (shrank against the January page, not March's).
    write_pages(earlier, [("2024-01-01.html", policy(20)), ("2024-02-01.html", policy(8))])
    result = invoke("import", "acme/t", str(earlier), "-v")
    assert "2024-02-01T00:00:00Z  failed (shrank)" in result.output
    rows = json.loads(invoke("history", "acme/t", "--json").output)
    assert [r["captured_at"][:10] for r in rows] == ["2024-01-01", "2024-03-01", "2024-04-01"]
    assert invoke("verify").exit_code == 0


def import_process(workdir: Path, folder: Path) -> subprocess.Popen[str]:
    """`tos-tracker import -v` as a real process, running this worktree's code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.Popen(
        [sys.executable, "-m", "tracker", "import", "acme/t", str(folder), "-v"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def many_pages(folder: Path, count: int) -> None:
    """Long pages, each with new text, some not the document: slow enough to interrupt."""
    pages: list[tuple[str, str | bytes]] = []
    for n in range(count):
        when = f"2024-01-01T{n // 60:02d}-{n % 60:02d}-00Z.html"
        pages.append((when, WALL if n % 7 == 3 else policy(200, f"Revision {n}.")))
    write_pages(folder, pages)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_import_leaves_a_store_verify_accepts(
    workdir: Path, how: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM mid-import: the index matches the files at once. SIGKILL cannot
    be caught: the import's journal tells verify (or the next import or run) to finish
    its clean-up, so verify accepts the store at once, whichever way it was stopped."""
    guarded_config(workdir)
    folder = workdir / "h"
    many_pages(folder, 60)
    proc = import_process(workdir, folder)
    assert proc.stderr is not None
    for _ in range(8):  # mid-import: some captures done, most not
        assert proc.stderr.readline()
    proc.send_signal(how)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    stored = len(Store(workdir / "snapshots").captures("acme/t"))
    assert 0 < stored < 60 - 60 // 7
    checked = invoke("verify")
    assert checked.exit_code == 0, checked.output
    assert not list((workdir / "snapshots" / "_imports").rglob("importing.json"))
    again = invoke("import", "acme/t", str(folder))
    assert again.exit_code == 1  # the walls are still skipped
    assert f"{60 - 9 - stored} captures added" in again.output
    checked = invoke("verify")
    assert checked.exit_code == 0, checked.output
    assert len(Store(workdir / "snapshots").captures("acme/t")) == 60 - 9


def test_a_wayback_capture_that_cannot_be_fetched_is_counted_and_retried_next_time(
    httpserver: HTTPServer, workdir: Path
) -> None:
    url = "https://acme.test/terms"
    good = {"20240101000000": policy(10), "20240301000000": policy(10, "New clause.")}
    fetched = cdx_server(httpserver, {**good, "20240201000000": WALL}, url)
    doc = document_entry("acme/t", url, select=["main"], browser_fallback=False)
    write_config(workdir, [doc], fetch={**GUARDED, "retries": 0})
    result = invoke("import", "acme/t", "--wayback", "--wayback-url", httpserver.url_for("/"))
    assert result.exit_code == 1
    assert "3 found, 2 captures added (2 new versions)" in result.output
    assert "1 failed (bot_wall 1)" in result.output
    assert "2024-02-01T00:00:00Z  failed (bot_wall)" in result.output
    assert sorted(fetched) == ["20240101000000", "20240201000000", "20240301000000"]
    # A download that fails is counted by kind and not marked done: the next import asks
    # for it again (this archive lists a capture it cannot serve).
    httpserver.clear()
    rows = [["timestamp", "original", "statuscode", "digest", "mimetype"]]
    rows.append(["20240401000000", url, "200", "D", "text/html"])
    httpserver.expect_request("/cdx/search/cdx").respond_with_json(rows)
    httpserver.expect_request("/web/20240401000000id_/" + url).respond_with_data("", status=404)
    for _ in range(2):
        again = invoke("import", "acme/t", "--wayback", "--wayback-url", httpserver.url_for("/"))
        assert again.exit_code == 1 and "1 found, 0 captures added" in again.output
        assert "1 failed (http 1)" in again.output
    assert invoke("verify").exit_code == 0


def test_a_backfill_ending_where_live_runs_began_dates_the_change_by_the_import(
    httpserver: HTTPServer, workdir: Path, clock: Clock
) -> None:
    """Live runs saw A then B; an older capture of B is imported between them. The change
    A → B is dated by the import, and the live capture of B stays, without a version, so
    no two versions in a row have the same text."""
    a, b = policy(10), policy(10, "No military use.")
    served = [a]
    httpserver.expect_request("/t").respond_with_handler(
        lambda request: Response(served[-1], content_type="text/html")
    )
    doc = document_entry("acme/t", httpserver.url_for("/t"), select=["main"])
    write_config(workdir, [doc], fetch=GUARDED)
    config = load_config(workdir / "tracker.toml")
    with Tracker.open(config) as tracker:
        run(tracker, clock=clock)  # 2024-05-01T12:00:00Z: A
        served.append(b)
        run(tracker, clock=clock.advance(days=30) and clock)  # 2024-05-31: B
    folder = workdir / "h"
    write_pages(folder, [("2024-05-10.html", b)])
    result = invoke("import", "acme/t", str(folder))
    assert result.exit_code == 0, result.output
    rows = json.loads(invoke("history", "acme/t", "--json").output)
    assert [r["captured_at"] for r in rows] == ["2024-05-01T12:00:00Z", "2024-05-10T00:00:00Z"]
    store = Store(workdir / "snapshots")
    live_b = store.captures("acme/t")[-1]
    assert live_b.version is None
    assert live_b.meta["superseded"]["by"] == "2024-05-10T00:00:00Z"
    assert store.read_snapshot(live_b.snapshot.path) == b.encode()  # the evidence stays
    change = json.loads(invoke("diff", "acme/t", "--json").output)
    assert change["to"]["captured_at"] == "2024-05-10T00:00:00Z"
    assert invoke("verify").exit_code == 0
    # A kill inside that clean-up, between the metadata's rewrite and the text file's
    # removal, leaves the text file and the journal: verify finishes the clean-up.
    text_file = store.root / live_b.meta["superseded"]["version"]["path"]
    text_file.write_bytes(b"the dropped version's text")
    store.begin_import("acme/t", datetime(2024, 6, 1, tzinfo=UTC))
    checked = invoke("verify")
    assert checked.exit_code == 0, checked.output
    assert "recovered  acme/t" in checked.output and not text_file.exists()


@pytest.mark.timeout(240)
def test_imports_killed_at_many_points_leave_a_store_verify_accepts_at_once(
    workdir: Path,
) -> None:
    """SIGKILL after 1 to 40 captures (between a capture's files and its index row, or
    inside the clean-up): verify exits 0 straight away, every time."""
    guarded_config(workdir)
    folder = workdir / "h"
    many_pages(folder, 60)
    recovered = 0
    for lines in (1, 3, 6, 10, 15, 22, 30, 40):
        proc = import_process(workdir, folder)
        assert proc.stderr is not None
        for _ in range(lines):
            if not proc.stderr.readline():
                break
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        checked = invoke("verify")
        assert checked.exit_code == 0, (lines, checked.output)
        recovered += "recovered  acme/t" in checked.output
        assert not list((workdir / "snapshots" / "_imports").rglob("importing.json"))
    assert recovered >= 4  # most kills landed mid-import, with the journal standing
    assert invoke("import", "acme/t", str(folder)).exit_code == 1  # the walls, skipped
    assert len(Store(workdir / "snapshots").captures("acme/t")) == 60 - 9
    assert invoke("verify").exit_code == 0


def test_a_journal_left_by_a_killed_import_is_finished_by_verify(workdir: Path) -> None:
    """The state a kill leaves between a capture's files and its index rows, made by
    hand: verify finishes the clean-up, says so, and exits 0; without the journal the
    same lag is a problem verify reports."""
    guarded_config(workdir)
    folder = workdir / "h"
    write_pages(folder, [("2024-01-01.html", policy(10)), ("2024-02-01.html", policy(10, "New."))])
    assert invoke("import", "acme/t", str(folder)).exit_code == 0
    db = sqlite3.connect(workdir / "tracker.db")
    db.execute("delete from snapshots where captured_at like '2024-02%'")
    db.execute("delete from versions where captured_at like '2024-02%'")
    db.execute("delete from changes")
    db.commit()
    db.close()
    assert invoke("verify").exit_code == 1  # no journal: a real inconsistency
    Store(workdir / "snapshots").begin_import("acme/t", datetime(2024, 3, 1, tzinfo=UTC))
    checked = invoke("verify")
    assert checked.exit_code == 0, checked.output
    assert "recovered  acme/t: an interrupted import's clean-up finished" in checked.output
    rows = json.loads(invoke("history", "acme/t", "--json").output)
    assert [r["captured_at"][:10] for r in rows] == ["2024-01-01", "2024-02-01"]


def test_reimporting_two_captures_of_one_second_adds_nothing(workdir: Path) -> None:
    """Two files name the same second: the store keeps the second one a second later.
    Importing the folder again recognises both, however often."""
    guarded_config(workdir)
    folder = workdir / "h"
    folder.mkdir()
    (folder / "2024-05-02.md").write_text("# Terms\n\n" + "We keep logs for a week. " * 8)
    (folder / "2024-05-02T00-00-00Z.md").write_text("# Terms\n\n" + "We keep logs a month. " * 8)
    first = invoke("import", "acme/t", str(folder))
    assert "2 captures added" in first.output, first.output
    for _ in range(2):
        again = invoke("import", "acme/t", str(folder))
        assert "0 captures added" in again.output, again.output
    assert len(Store(workdir / "snapshots").captures("acme/t")) == 2
    assert invoke("verify").exit_code == 0
