"""The command line: output contracts (JSON fields), exit codes and help for every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import document_entry, invoke, write_config
from pytest_httpserver import HTTPServer

from tracker.cli import cli

V1 = "<main><h2>Rules</h2><p>Do not use it for military purposes.</p><p>Be kind.</p></main>"
V2 = "<main><h2>Rules</h2><p>Be kind.</p><p>Report abuse to us.</p></main>"


@pytest.fixture
def two_versions(httpserver: HTTPServer, workdir: Path) -> Path:
    httpserver.expect_ordered_request("/p").respond_with_data(V1, content_type="text/html")
    httpserver.expect_ordered_request("/p").respond_with_data(V2, content_type="text/html")
    write_config(workdir, [document_entry("acme/policy", httpserver.url_for("/p"))])
    assert invoke("run").exit_code == 0
    assert invoke("run").exit_code == 0
    return workdir


def test_run_prints_a_line_per_document_and_a_count(httpserver: HTTPServer, workdir: Path) -> None:
    httpserver.expect_request("/p").respond_with_data(V1, content_type="text/html")
    httpserver.expect_request("/x").respond_with_data("no", status=404)
    write_config(
        workdir,
        [
            document_entry("acme/policy", httpserver.url_for("/p")),
            document_entry("acme/missing", httpserver.url_for("/x")),
        ],
    )
    result = invoke("run", "--no-quiet")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("new       acme/policy")
    assert lines[1].startswith("failed    acme/missing  http: HTTP 404")
    assert lines[2].startswith("2 documents: 1 new, 0 changed, 0 unchanged, 1 failed")


def test_run_json_summary(httpserver: HTTPServer, workdir: Path) -> None:
    httpserver.expect_request("/p").respond_with_data(V1, content_type="text/html")
    write_config(workdir, [document_entry("acme/policy", httpserver.url_for("/p"))])
    result = invoke("run", "--json")
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["counts"] == {"new": 1, "changed": 0, "unchanged": 0, "failed": 0}
    assert payload["outcomes"][0]["document"] == "acme/policy"


def test_history_json_lists_versions_oldest_first(two_versions: Path) -> None:
    result = invoke("history", "acme/policy", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert len(rows) == 2
    assert rows[0]["captured_at"] < rows[1]["captured_at"]
    for row in rows:
        assert row["captured_at"].endswith("Z") and len(row["captured_at"]) == 20
        text = (two_versions / "snapshots" / row["path"]).read_bytes()
        import hashlib

        assert row["sha256"] == hashlib.sha256(text).hexdigest()
    assert rows[1]["added_words"] == 4 and rows[0]["added_words"] is None


def test_history_plain(two_versions: Path) -> None:
    lines = invoke("history", "acme/policy").output.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("first version")
    assert "1 clause added, 1 removed in 'Rules' (+4/−7 words)" in lines[1]


def test_diff_json_contract(two_versions: Path) -> None:
    result = invoke("diff", "acme/policy", "--json")
    payload = json.loads(result.output)
    assert {"document", "from", "to", "added_words", "removed_words", "inserted", "deleted"} <= set(
        payload
    )
    assert payload["document"] == "acme/policy"
    assert set(payload["from"]) >= {"captured_at", "sha256"}
    assert payload["from"]["captured_at"] < payload["to"]["captured_at"]
    assert payload["deleted"] == ["\nDo not use it for military purposes.\n"]
    assert payload["inserted"] == ["\nReport abuse to us.\n"]
    assert (payload["added_words"], payload["removed_words"]) == (4, 7)


def test_diff_json_is_null_before_any_change(httpserver: HTTPServer, workdir: Path) -> None:
    httpserver.expect_request("/p").respond_with_data(V1, content_type="text/html")
    write_config(workdir, [document_entry("acme/policy", httpserver.url_for("/p"))])
    invoke("run")
    result = invoke("diff", "acme/policy", "--json")
    assert result.exit_code == 0 and json.loads(result.output) is None


def test_diff_picks_versions_by_number_and_hash(two_versions: Path) -> None:
    rows = json.loads(invoke("history", "acme/policy", "--json").output)
    by_number = json.loads(
        invoke("diff", "acme/policy", "--from", "1", "--to", "2", "--json").output
    )
    by_hash = json.loads(
        invoke(
            "diff",
            "acme/policy",
            "--from",
            rows[0]["sha256"][:10],
            "--to",
            rows[1]["sha256"][:10],
            "--json",
        ).output
    )
    assert by_number == by_hash
    backwards = json.loads(
        invoke("diff", "acme/policy", "--from", "2", "--to", "1", "--json").output
    )
    assert (backwards["added_words"], backwards["removed_words"]) == (7, 4)
    assert "".join(backwards["inserted"]) == "".join(by_number["deleted"])


def test_terminal_diff_marks_words(two_versions: Path) -> None:
    result = invoke("diff", "acme/policy", "--no-color")
    assert "## Rules\n\n[-Do not use it for military purposes.-]\n\nBe kind.\n\n" in result.output
    assert "\n\nBe kind.\n\n{+Report abuse to us.+}\n" in result.output
    assert "\x1b[" not in result.output
    coloured = invoke("diff", "acme/policy", "--color")
    assert "\x1b[" in coloured.output


def test_show_prints_the_text_as_stored_and_at_a_date(two_versions: Path) -> None:
    rows = json.loads(invoke("history", "acme/policy", "--json").output)
    current = invoke("show", "acme/policy").output
    assert current == (two_versions / "snapshots" / rows[1]["path"]).read_text()
    first = invoke("show", "acme/policy", "--at", rows[0]["captured_at"]).output
    assert "military purposes" in first
    early = invoke("show", "acme/policy", "--at", "2000-01-01")
    assert early.exit_code == 2 and "no version at or before" in early.output


def test_report_writes_change_pages(two_versions: Path) -> None:
    result = invoke("report", "--out", "out")
    assert result.exit_code == 0
    pages = sorted((two_versions / "out" / "acme" / "policy").glob("*.html"))
    assert len(pages) == 1
    html = pages[0].read_text()
    assert "<del>Do not use it for military purposes.</del>" in html
    assert (two_versions / "out" / "index.html").exists()


def test_reindex_rebuilds_from_files(two_versions: Path) -> None:
    (two_versions / "tracker.db").unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"tracker.db{suffix}").unlink(missing_ok=True)
    result = invoke("reindex")
    assert result.exit_code == 0
    assert "2 versions, 1 changes" in result.output
    assert json.loads(invoke("diff", "acme/policy", "--json").output)["removed_words"] == 7


def test_unknown_document_is_a_usage_error(two_versions: Path) -> None:
    result = invoke("history", "acme/nope")
    assert result.exit_code == 2
    assert "unknown document 'acme/nope'" in result.output and "acme/policy" in result.output


def test_config_error_exits_2_with_the_message(workdir: Path) -> None:
    (workdir / "tracker.toml").write_text(
        '[[documents]]\nid = "a"\nservice = "s"\ntitle = "t"\nurl = "nope"\n'
    )
    result = invoke("run")
    assert result.exit_code == 2
    assert "tracker.toml: document 'a': key 'url' must be an http(s) URL" in result.output


def test_explicit_missing_config_exits_2(workdir: Path) -> None:
    result = invoke("--config", "missing.toml", "run")
    assert result.exit_code == 2 and "configuration file not found" in result.output


def test_init_writes_the_default_config(workdir: Path) -> None:
    assert invoke("init").exit_code == 0
    assert "openai/usage-policies" in (workdir / "tracker.toml").read_text()
    assert invoke("init").exit_code == 2  # refuses to overwrite: a usage error


def test_every_command_is_documented() -> None:
    for name, command in cli.commands.items():
        assert command.help and len(command.help.strip()) > 20, f"{name} lacks a docstring"
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in cli.commands:
        assert f"tos-tracker {name}" in readme, f"README does not mention `tos-tracker {name}`"


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracker", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("tos-tracker, version ")


def test_version_zero_is_an_error_not_the_first(two_versions: Path) -> None:
    result = invoke("show", "acme/policy", "--version", "0")
    assert result.exit_code == 2 and "no version number 0" in result.output


def test_a_time_ref_means_the_version_current_then(two_versions: Path) -> None:
    rows = json.loads(invoke("history", "acme/policy", "--json").output)
    later = "2999-01-01T00:00:00Z"
    payload = json.loads(
        invoke(
            "diff", "acme/policy", "--from", rows[0]["captured_at"], "--to", later, "--json"
        ).output
    )
    assert payload["to"]["sha256"] == rows[1]["sha256"]
    early = invoke("diff", "acme/policy", "--from", "2000-01-01T00:00:00Z", "--json")
    assert early.exit_code == 2 and "no version at or before" in early.output


def test_run_exits_3_while_another_run_holds_the_store(two_versions: Path) -> None:
    from tracker.storage.store import Store

    with Store(two_versions / "snapshots").lock():
        result = invoke("run")
    assert result.exit_code == 3
    assert "is in use by pid" in result.output


@pytest.fixture
def military(httpserver: HTTPServer, workdir: Path, bundled) -> Path:
    """The OpenAI usage policies before and after January 2024, fetched over HTTP."""
    for body in bundled["openai/usage-policies"][:2]:
        httpserver.expect_ordered_request("/up").respond_with_data(body, content_type="text/html")
    write_config(
        workdir,
        [
            document_entry(
                "openai/usage-policies", httpserver.url_for("/up"), select=["main", "#content"]
            )
        ],
    )
    assert invoke("run").exit_code == 0
    assert invoke("run").exit_code == 0
    return workdir


def test_diff_json_has_cosmetic_clauses_and_flags(military: Path) -> None:
    payload = json.loads(invoke("diff", "openai/usage-policies", "--json").output)
    assert payload["cosmetic"] is False
    assert payload["cosmetic_reason"] is None
    assert "cosmetic_reason" in payload["clauses"][0]
    assert {"kind", "section", "before", "after"} <= set(payload["clauses"][0])
    flag = next(f for f in payload["flags"] if f["text"] == "Military and warfare")
    assert (flag["topic"], flag["kind"], flag["matched"]) == (
        "military",
        "removed",
        ["Military", "warfare"],
    )
    assert {f["topic"] for f in payload["flags"]} >= {
        "military",
        "law-enforcement",
        "facial-recognition",
    }


def test_terminal_diff_shows_flags_first(military: Path) -> None:
    lines = invoke("diff", "openai/usage-policies", "--no-color").output.splitlines()
    flagged = [i for i, line in enumerate(lines) if line.startswith("Flagged: ")]
    assert "Flagged: military and weapons — removed: Military and warfare" in lines
    assert flagged and flagged[0] == 2  # right after the title and summary lines


def test_blame_says_when_military_and_warfare_was_last_present(military: Path) -> None:
    events = json.loads(
        invoke("blame", "openai/usage-policies", "Military and warfare", "--json").output
    )
    assert [e["event"] for e in events] == ["appeared", "disappeared"]
    assert events[0]["first_version"] is True
    assert events[1]["last_present"] == events[0]["captured_at"]
    assert events[1]["clauses"] == ["Military and warfare"]
    text = invoke("blame", "openai/usage-policies", "military AND warfare").output
    assert f"disappeared (last present {events[0]['captured_at']})" in text
    assert "present in the first stored version (it may be older)" in text
    assert "no stored version" in invoke("blame", "openai/usage-policies", "no such clause").output


def test_run_is_quiet_under_cron_except_for_failures(httpserver: HTTPServer, workdir: Path) -> None:
    """stdout is not a terminal here, as under cron: success prints nothing."""
    httpserver.expect_request("/p").respond_with_data(V1, content_type="text/html")
    httpserver.expect_request("/x").respond_with_data("no", status=404)
    write_config(workdir, [document_entry("acme/policy", httpserver.url_for("/p"))])
    ok = CliRunner().invoke(cli, ["run"])
    assert (ok.exit_code, ok.output) == (0, "")
    write_config(
        workdir,
        [
            document_entry("acme/policy", httpserver.url_for("/p")),
            document_entry("acme/missing", httpserver.url_for("/x")),
        ],
    )
    failing = CliRunner().invoke(cli, ["run"])
    assert failing.exit_code == 1
    assert failing.output.strip().startswith("failed    acme/missing  http: HTTP 404")


def test_a_held_back_failure_line_is_printed_when_the_run_is_interrupted(
    httpserver: HTTPServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines wait for the documents before them; an interrupted run still prints them."""
    import time

    from werkzeug import Request, Response

    from tracker.storage.index import Index

    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response(V1, content_type="text/html")

    httpserver.expect_request("/p").respond_with_handler(slow)
    httpserver.expect_request("/x").respond_with_data("no", status=404)
    write_config(
        workdir,
        [
            document_entry("acme/policy", httpserver.url_for("/p")),
            document_entry("acme/missing", httpserver.url_for("/x")),
        ],
    )

    def interrupted(self: Index, capture: object, change: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Index, "add_capture", interrupted)
    result = invoke("run", "--quiet")
    assert isinstance(result.exception, KeyboardInterrupt) or result.exit_code != 0
    assert "acme/missing" in result.stderr


def test_a_link_only_change_is_recorded_as_cosmetic_and_says_why(
    httpserver: HTTPServer, workdir: Path
) -> None:
    """The evidence stays (a new version, a change) but it is cosmetic, with its reason,
    in `diff --json`, the index and the terminal diff."""
    page = (
        "<html><body><main><h1>Terms</h1><p>Users under 13 may not use the service."
        " Write to <a href='/contact?{}'>our team [support]</a> with questions.</p>"
        "</main></body></html>"
    )
    for query in ("a=1", "a=2"):
        httpserver.expect_ordered_request("/t").respond_with_data(
            page.format(query), content_type="text/html"
        )
    write_config(workdir, [document_entry("acme/terms", httpserver.url_for("/t"))])
    assert invoke("run").exit_code == 0
    assert invoke("run").exit_code == 0
    payload = json.loads(invoke("diff", "acme/terms", "--json").output)
    assert payload["cosmetic"] is True
    assert payload["cosmetic_reason"] == "only link targets changed"
    assert payload["flags"] == []
    assert [c["cosmetic_reason"] for c in payload["clauses"]] == ["only link targets changed"]
    assert "cosmetic: only link targets changed" in invoke("diff", "acme/terms").output
    assert invoke("report", "--out", "report").exit_code == 0
    assert invoke("site", "build", "--out", "site").exit_code == 0
    for folder in ("report", "site"):
        pages = [p.read_text("utf-8") for p in (workdir / folder).rglob("*.html")]
        assert any("Cosmetic: only link targets changed." in p for p in pages), folder
    (changes_json,) = (workdir / "site").rglob("changes.json")
    (entry,) = json.loads(changes_json.read_text("utf-8"))
    assert entry["cosmetic_reason"] == "only link targets changed"
    from tracker.config.settings import load_config
    from tracker.storage.index import Index

    assert invoke("verify").exit_code == 0
    index = Index(load_config(workdir / "tracker.toml").index_path)
    try:
        rows = [r["cosmetic_reason"] for r in index.changes("acme/terms")]
    finally:
        index.close()
    assert rows == ["only link targets changed"]


def test_an_index_made_before_cosmetic_reasons_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    from tracker.storage.index import Index

    path = tmp_path / "tracker.db"
    with sqlite3.connect(path) as db:  # the changes table as older versions made it
        db.execute(
            "create table changes (document text, to_captured_at text, from_captured_at text,"
            " from_sha256 text, to_sha256 text, added_words integer, removed_words integer,"
            " sections text, summary text, extraction_changed integer, cosmetic integer,"
            " flagged_topics text, primary key (document, to_captured_at))"
        )
        db.execute("insert into changes (document, to_captured_at, cosmetic) values ('d', 't', 1)")
    db.close()
    for _ in range(2):  # twice: the second open finds the column there
        index = Index(path)
        assert "cosmetic_reason" in index.db.table("changes").columns_dict
        assert [r["cosmetic_reason"] for r in index.db.query("select * from changes")] == [None]
        index.close()


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(flag: str) -> None:
    """`--help` and `--version` load click and the command modules only: no pipeline,
    HTTP, HTML parser or SQLite wrapper (they took 0.2 s before the CLI was split)."""
    probe = (
        "import sys\n"
        "from tracker.cli import main\n"
        f"sys.argv = ['tos-tracker', '{flag}']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('requests', 'lxml', 'bs4', 'sqlite_utils', 'tracker.app', 'tracker.fetch',\n"
        "         'tracker.storage', 'tracker.publish', 'tracker.analysis')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("written", "shown"),
    [("2d", "2d"), ("24h", "1d"), ("90m", "1h 30m"), ("45", "45s"), ("1w", "1w")],
)
def test_durations_are_shown_as_a_user_writes_them(written: str, shown: str) -> None:
    from tracker.core.times import format_duration, parse_duration

    assert format_duration(parse_duration(written)) == shown
    assert parse_duration(format_duration(parse_duration(written)).split()[0]) <= parse_duration(
        written
    )
