"""Running unattended: the scheduler as a real process, locking, status for monitors."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import document_entry, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.cli import cli
from tracker.config.cron import cron_day_of_week, parse_cron
from tracker.config.settings import load_config
from tracker.core.errors import ConfigError
from tracker.storage.index import Index
from tracker.storage.store import Store


@pytest.mark.parametrize(
    ("cron", "names"),
    [
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("fri-mon", "sun,mon,fri,sat"),
        ("sat,sun", "sun,sat"),
        ("*", "*"),
    ],
)
def test_weekdays_mean_what_cron_users_expect(cron: str, names: str) -> None:
    assert cron_day_of_week(cron) == names


def test_monday_is_monday() -> None:
    tuesday = datetime(2026, 11, 24, tzinfo=UTC)
    fire = parse_cron("0 9 * * 1").get_next_fire_time(None, tuesday)
    assert fire.strftime("%A %Y-%m-%d %H:%M") == "Monday 2026-11-30 09:00"
    six_fields = parse_cron("*/10 * * * * *").get_next_fire_time(None, tuesday)
    assert six_fields.second == 0 and six_fields.minute == 0


def test_bad_schedule_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "tracker.toml").write_text('[schedule]\nrun = "0 25 * * *"\n')
    with pytest.raises(
        ConfigError, match=r"\[schedule\] key 'run': '0 25 \* \* \*' is not a valid"
    ):
        load_config(tmp_path / "tracker.toml")


def slow_site(httpserver: HTTPServer, delay: float, count: int) -> list[dict[str, object]]:
    def handler(request: Request) -> Response:
        time.sleep(delay)
        return Response(f"<p>page {request.path} {time.time_ns()}</p>", content_type="text/html")

    docs = []
    for n in range(count):
        httpserver.expect_request(f"/d{n}").respond_with_handler(handler)
        docs.append(document_entry(f"slow/d{n}", httpserver.url_for(f"/d{n}")))
    return docs


def cli_process(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tracker", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def journals(folder: Path) -> list[dict[str, object]]:
    return list(Store(folder / "snapshots").runs())


def assert_consistent(folder: Path) -> None:
    """The index equals one rebuilt from the files alone."""
    config = load_config(folder / "tracker.toml")
    live = Index(config.index_path, config.topics)
    rebuilt = Index(folder / "rebuilt.db", config.topics)
    rebuilt.rebuild(Store(config.store_path), config.sources)
    assert rebuilt.dump() == live.dump()
    live.close()
    rebuilt.close()


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.timeout(120)
def test_scheduler_runs_jobs_and_stops_cleanly_on_sigterm(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    docs = slow_site(httpserver, 0.05, 2)
    write_config(tmp_path, docs)
    with (tmp_path / "tracker.toml").open("a") as handle:
        handle.write('\n[schedule]\nrun = "*/1 * * * * *"\n')
    proc = cli_process(tmp_path, "schedule")
    try:
        assert wait_for(lambda: len(journals(tmp_path)) >= 3, 60), proc.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "scheduled run" in err and "received SIGTERM" in err
    runs = journals(tmp_path)
    assert all(r["counts"]["failed"] == 0 for r in runs)  # type: ignore[index]
    assert_consistent(tmp_path)


@pytest.mark.timeout(120)
def test_sigterm_mid_run_stops_after_the_current_document(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    docs = slow_site(httpserver, 1.0, 6)  # one host, one at a time: a run takes ~6 s
    write_config(tmp_path, docs, fetch={"per_host": 1, "timeout": 10})
    with (tmp_path / "tracker.toml").open("a") as handle:
        handle.write('\n[schedule]\nrun = "*/1 * * * * *"\n')
    proc = cli_process(tmp_path, "schedule")
    assert wait_for(lambda: len(httpserver.log) >= 1, 30)
    proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - stopped_at < 4  # not the ~5 s the rest of the run would take
    (run,) = journals(tmp_path)
    assert run["interrupted"] is True
    assert 1 <= len(run["outcomes"]) < 6  # type: ignore[arg-type]
    assert_consistent(tmp_path)


@pytest.mark.timeout(120)
def test_concurrent_runs_never_interleave(httpserver: HTTPServer, tmp_path: Path) -> None:
    docs = slow_site(httpserver, 0.3, 4)
    write_config(tmp_path, docs, fetch={"per_host": 1})
    first = cli_process(tmp_path, "run")
    assert wait_for(lambda: len(httpserver.log) >= 1, 30)
    second = cli_process(tmp_path, "run")
    _out2, err2 = second.communicate(timeout=60)
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert second.returncode == 3 and "is in use by pid" in err2
    # Two runs that wait for each other both complete, one after the other.
    pair = [cli_process(tmp_path, "run", "--wait", "60") for _ in range(2)]
    for proc in pair:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
    runs = journals(tmp_path)
    assert len(runs) == 3
    spans = sorted((r["started_at"], r["ended_at"]) for r in runs)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert_consistent(tmp_path)


def test_status_alerts_on_a_document_failing_too_long(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    httpserver.expect_request("/ok").respond_with_data("<p>fine</p>", content_type="text/html")
    httpserver.expect_request("/bad").respond_with_data("no", status=503)
    write_config(
        tmp_path,
        [
            document_entry("t/ok", httpserver.url_for("/ok")),
            document_entry("t/bad", httpserver.url_for("/bad")),
        ],
        fetch={"retries": 0},
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["run"]).exit_code == 1
    assert runner.invoke(cli, ["run"]).exit_code == 1
    calm = runner.invoke(cli, ["status"])
    assert calm.exit_code == 0  # failing, but for less than the default 24h
    result = runner.invoke(cli, ["status", "--json", "--max-failing", "0s"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    docs = {d["id"]: d for d in payload["documents"]}
    first_run = payload["runs"][-1]["started_at"]
    assert docs["t/bad"]["last_ok"] is None
    assert docs["t/bad"]["failing_since"] == first_run
    assert docs["t/bad"]["last_error"] == {"kind": "http", "message": "HTTP 503 (after 1 attempts)"}
    assert docs["t/ok"]["failing_since"] is None and docs["t/ok"]["last_ok"] is not None
    assert docs["t/ok"]["last_error"] is None
    text = runner.invoke(cli, ["status", "--max-failing", "0s"])
    assert "t/bad" in text.output and "failing since" in text.output.lower()
    assert_consistent(tmp_path)  # last_ok and failing_since rebuild from the journals


def test_status_alerts_when_checks_have_stopped(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron job that silently stopped leaves every document 'ok': max_stale catches it."""
    from datetime import timedelta

    from tracker.app.pipeline import Tracker, run

    httpserver.expect_request("/ok").respond_with_data("<p>fine</p>", content_type="text/html")
    path = write_config(tmp_path, [document_entry("t/ok", httpserver.url_for("/ok"))])
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    with Tracker.open(load_config(path)) as tracker:
        assert run(tracker, clock=lambda: three_days_ago).failed == 0
    runner = CliRunner()
    os.chdir(tmp_path)
    result = runner.invoke(cli, ["status"])
    assert result.exit_code == 1
    assert (
        "STALE" in result.output and "is the cron job or scheduler still running?" in result.output
    )
    payload = json.loads(runner.invoke(cli, ["status", "--json"]).output)
    assert payload["documents"][0]["stale"] is True and payload["alert"] is True
    assert runner.invoke(cli, ["status", "--max-stale", "4d"]).exit_code == 0


@pytest.mark.parametrize(
    ("cron", "names"),
    [
        ("0-7", "sun,mon,tue,wed,thu,fri,sat"),
        ("sun-7", "sun,mon,tue,wed,thu,fri,sat"),
        ("0-7/2", "sun,tue,thu,sat"),
    ],
)
def test_seven_at_the_top_of_a_range(cron: str, names: str) -> None:
    assert cron_day_of_week(cron) == names


def test_day_of_month_and_weekday_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="cron reads as either"):
        parse_cron("0 0 1 * mon")


@pytest.mark.timeout(120)
def test_scheduler_builds_the_site_and_sends_the_digest(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Every job of the unattended setup in one scheduler: run, site, digest over SMTP."""
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.received: list[bytes] = []

        async def handle_DATA(self, server, session, envelope) -> str:
            self.received.append(envelope.content)
            return "250 OK"

    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    pages = iter(range(1000))
    httpserver.expect_request("/t").respond_with_handler(
        lambda _: Response(
            f"<main><p>Police may ask {next(pages)} times.</p></main>", content_type="text/html"
        )
    )
    write_config(tmp_path, [document_entry("acme/terms", httpserver.url_for("/t"))])
    with (tmp_path / "tracker.toml").open("a") as handle:
        handle.write(
            '\n[schedule]\nrun = "*/1 * * * * *"\nsite = "*/2 * * * * *"\n'
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'sender = "tracker@example.org"\n'
            '\n[[digests]]\nid = "now"\nto = ["reader@example.org"]\nschedule = "*/3 * * * * *"\n'
        )
    proc = cli_process(tmp_path, "schedule")
    try:
        assert wait_for(lambda: len(inbox.received) >= 1, 60), proc.stderr
        assert wait_for(lambda: (tmp_path / "site" / "changes.json").is_file(), 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        controller.stop()
    assert proc.returncode == 0, err
    for job in ("run", "site", "digest:now"):
        assert f"scheduled {job}" in err, err
    assert "digest now: sent" in err
    ledger = tmp_path / "snapshots" / "_digests" / "now.json"
    assert ledger.is_file()
    assert b"Police may ask" in inbox.received[0]
    assert_consistent(tmp_path)


def test_digests_are_scheduled_by_period_unless_they_say(tmp_path: Path) -> None:
    path = write_config(tmp_path, [])
    with path.open("a") as handle:
        handle.write(
            '\n[[digests]]\nid = "d"\nto = ["a@example.org"]\n'
            '\n[[digests]]\nid = "w"\nto = ["a@example.org"]\nperiod = "weekly"\n'
            '\n[[digests]]\nid = "x"\nto = ["a@example.org"]\nschedule = "30 18 * * fri"\n'
        )
    crons = {d.id: d.cron for d in load_config(path).digests}
    assert crons == {"d": "0 7 * * *", "w": "0 7 * * 1", "x": "30 18 * * fri"}
    with path.open("a") as handle:
        handle.write('\n[[digests]]\nid = "bad"\nto = ["a@example.org"]\nschedule = "61 * * * *"\n')
    with pytest.raises(ConfigError, match=r"\[\[digests\]\] 'bad': key 'schedule'"):
        load_config(path)


def test_jobs_are_built_by_the_library_without_click(tmp_path: Path) -> None:
    """The default [schedule] is one run every 6 hours; a digest without [smtp] is left
    out (with a warning), one with [smtp] is its own job."""
    from tracker.config.settings import load_config
    from tracker.ops.schedule import build_jobs

    path = write_config(tmp_path, [document_entry("t/a", "http://127.0.0.1:9/a")])
    assert list(build_jobs(load_config(path))) == ["run"]
    with path.open("a", encoding="utf-8") as handle:
        handle.write('\n[[digests]]\nid = "daily"\nto = ["reader@example.org"]\n')
    assert list(build_jobs(load_config(path))) == ["run"]
    with path.open("a", encoding="utf-8") as handle:
        handle.write('\n[smtp]\nhost = "127.0.0.1"\nsender = "t@example.org"\n')
    jobs = build_jobs(load_config(path))
    assert list(jobs) == ["run", "digest:daily"]
    assert all(callable(function) for _, function in jobs.values())
