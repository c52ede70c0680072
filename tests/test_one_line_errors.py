"""What used to end in a traceback ends in one line and the right exit code (issue 15).

A full or read-only disk under `site build`, `report` and `digest --outbox` (a real
tmpfs of 64 KB when this runs as root, else a folder it may not write), `site serve` on
a port out of range or in use, and malformed `manifest.json` or CDX answers to import.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from tracker.app.importer import ImportItem, import_items
from tracker.app.pipeline import Tracker
from tracker.cli import cli
from tracker.config.settings import load_config

ROOT = Path(__file__).resolve().parents[1]
TEXT = "These are the terms of the service, and they are long enough to be kept.\n"


def cli_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, as cron runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A working folder with two versions of one document and a digest to write out."""
    doc = '[[documents]]\nid = "acme/terms"\nservice = "Acme"\ntitle = "Terms"\n'
    doc += 'url = "https://acme.example/terms"\n'
    digest = '[[digests]]\nid = "daily"\nto = "reader@example.org"\n'
    (tmp_path / "tracker.toml").write_text(doc + digest, encoding="utf-8")
    with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
        items = [
            ImportItem(datetime(2024, m, 1, tzinfo=UTC), body.encode(), "text", {"source": "t"})
            for m, body in ((1, TEXT * 40), (2, TEXT * 40 + "A new clause on data retention.\n"))
        ]
        assert import_items(tracker, "acme/terms", items).versions == 2
    return tmp_path


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 64 KB tmpfs with 60 KB used, or None where mounting is not allowed."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        (mount / "filler").write_bytes(b"x" * 60 * 1024)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


COMMANDS = {
    "site build": ["site", "build", "--out", "{}/site"],
    "report": ["report", "--out", "{}/report"],
    "digest": ["digest", "--all", "--outbox", "{}/outbox"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_full_disk_is_one_line_exit_1(name: str, store: Path, full_disk: Path | None) -> None:
    if full_disk is not None:
        args = [a.format(full_disk) for a in COMMANDS[name]]
        written = args[-1]
        reason = "No space left on device (the disk is full: free some space and run again)"
        beginning = f"Error: tos-tracker {name}: could not write {written}"
    else:  # not root: no tmpfs, and root would ignore permissions; a folder it cannot write
        locked = store / "locked"
        locked.mkdir(mode=0o555)
        args = [a.format(locked) for a in COMMANDS[name]]
        written = args[-1]
        reason = "Permission denied (check the permissions of the file and its folder)"
        beginning = f"Error: tos-tracker {name}: {written}"
    done = cli_run(store, *args)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(beginning)
    assert line.endswith(reason)


def test_a_read_only_disk_is_one_line_exit_1(store: Path, full_disk: Path | None) -> None:
    if full_disk is None:
        pytest.skip("remounting read-only needs root; the file-size test covers the handler")
    (full_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(full_disk)], check=True)
    done = cli_run(store, "site", "build", "--out", str(full_disk / "site"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"Error: tos-tracker site build: could not write {full_disk / 'site'}:"
        " Read-only file system (choose a folder on a writable file system)"
    )


def test_any_os_error_names_the_file(store: Path) -> None:
    """A folder path through a file: whatever the OS says, one line naming the path."""
    (store / "taken").write_text("a file, not a folder")
    done = cli_run(store, "report", "--out", str(store / "taken" / "report"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"Error: tos-tracker report: {store / 'taken' / 'report'}: Not a directory"
    )


def test_site_serve_refuses_a_bad_or_busy_port_in_one_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>built</p>")
    (tmp_path / "tracker.toml").write_text("", encoding="utf-8")
    done = cli_run(tmp_path, "site", "serve", "--no-build", "--out", str(site), "--port", "99999")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Error: Invalid value for '--port': 99999 is not in the range 0<=x<=65535." in (
        done.stderr
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli_run(
            tmp_path, "site", "serve", "--no-build", "--out", str(site), "--port", str(port)
        )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
        " (choose another --port or --bind; --port 0 takes any free port)"
    )


# --- malformed import sources ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("[1, 2]", "manifest.json: entry #1 is int, not an object such as"),
        ('{"captures": ["2024-01-01.txt"]}', "manifest.json: entry #1 is str, not an object"),
        (
            '[{"file": "2024-01-01.txt", "captured_at": "last tuesday"}]',
            "manifest.json: entry #1: 'captured_at' must be an ISO 8601 time such as"
            " '2024-05-02T12:00:00Z', got 'last tuesday'",
        ),
        (
            '[{"file": "2024-01-01.txt", "captured_at": 1704067200}]',
            "manifest.json: entry #1: 'captured_at' must be an ISO 8601 time",
        ),
        (
            '[{"file": "2024-01-01.txt", "original_url": {"a": 1}}]',
            "manifest.json: entry #1: 'original_url' must be a string, got {'a': 1}",
        ),
        ('[{"file": ["2024-01-01.txt"]}]', "manifest.json: entry #1: 'file' must be a string"),
    ],
)
def test_a_malformed_manifest_is_one_line(tmp_path: Path, manifest: str, message: str) -> None:
    doc = '[[documents]]\nid = "a"\nservice = "S"\ntitle = "T"\nurl = "https://example.org/"\n'
    (tmp_path / "tracker.toml").write_text(doc, encoding="utf-8")
    folder = tmp_path / "history"
    folder.mkdir()
    (folder / "2024-01-01.txt").write_text(TEXT * 3, encoding="utf-8")
    (folder / "manifest.json").write_text(manifest, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "tracker.toml"), "import", "a", str(folder)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: {folder / message}")
    assert not (tmp_path / "snapshots" / "a").exists()  # refused before anything was stored


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"timestamp": "20240101000000"}, "expected a list of rows of strings"),
        ([["timestamp", "original", "mimetype"], "20240101000000"], "expected a list of rows"),
        ([["timestamp", "original", "mimetype"], ["20240101000000", 7, "x"]], "a list of rows"),
        ([["timestamp", "statuscode"], ["20240101000000", "200"]], "has no original, mimetype"),
        (
            [["timestamp", "original", "mimetype"], ["20240101000000", "u"]],
            "row 2 has 2 cells, the header 3",
        ),
        ("[" * 100_000 + "]" * 100_000, "did not answer JSON"),
        ("<html>Service unavailable</html>", "did not answer JSON"),
    ],
)
def test_a_malformed_cdx_answer_is_one_line(
    httpserver: HTTPServer, tmp_path: Path, answer: object, message: str
) -> None:
    body = answer if isinstance(answer, str) else json.dumps(answer)
    httpserver.expect_request("/cdx/search/cdx").respond_with_data(
        body, content_type="application/json"
    )
    doc = '[[documents]]\nid = "a"\nservice = "S"\ntitle = "T"\nurl = "https://example.org/"\n'
    (tmp_path / "tracker.toml").write_text(
        "[fetch]\nrobots = false\nretries = 0\nhost_delay = 0\n" + doc, encoding="utf-8"
    )
    base = httpserver.url_for("/").rstrip("/")
    config = str(tmp_path / "tracker.toml")
    args = ["--config", config, "import", "a", "--wayback", "--wayback-url", base, "--delay", "0"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: the CDX API at {base} ")
    assert message in line


def test_a_reader_that_leaves_early_gets_no_error(tmp_path: Path) -> None:
    """`documents | head -1`: a closed pipe is not a failure to report (as before the
    handler for OS errors), so the OS error handler lets click end it quietly."""
    entries = [
        f'[[documents]]\nid = "p/d{n}"\nservice = "S"\ntitle = "T"\nurl = "https://e.org/{n}"\n'
        for n in range(3000)  # ~300 KB of listing: more than a pipe holds
    ]
    (tmp_path / "tracker.toml").write_text("\n".join(entries), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracker", "documents"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"p/d0 ")
    proc.stdout.close()
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert error == ""


def test_an_unreadable_index_is_one_line_and_reindex_sets_it_aside(store: Path) -> None:
    (store / "tracker.db").write_bytes(b"not SQLite at all, " * 500)
    for suffix in ("-wal", "-shm"):
        (store / f"tracker.db{suffix}").unlink(missing_ok=True)
    done = cli_run(store, "documents")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "Error: tos-tracker documents: the index: file is not a database"
        " (`tos-tracker reindex` rebuilds it from the store, setting it aside)"
    )
    done = cli_run(store, "reindex")
    assert done.returncode == 0, done.stderr
    assert f"{store / 'tracker.db'} was unreadable (file is not a database)" in done.stderr
    assert (store / "tracker.db.damaged").read_bytes().startswith(b"not SQLite")
    listed = cli_run(store, "documents")
    assert listed.returncode == 0 and listed.stdout.split()[:2] == ["acme/terms", "2"]


@pytest.mark.parametrize("base", ["http://[::1", "http://archive.test:99999", "ftp://archive.test"])
def test_a_malformed_wayback_url_is_one_line_exit_2(tmp_path: Path, base: str) -> None:
    doc = '[[documents]]\nid = "a"\nservice = "S"\ntitle = "T"\nurl = "https://example.org/"\n'
    (tmp_path / "tracker.toml").write_text(doc, encoding="utf-8")
    config = str(tmp_path / "tracker.toml")
    args = ["--config", config, "import", "a", "--wayback", "--wayback-url", base, "--delay", "0"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output == (
        "Error: --wayback-url must be an http(s) URL with a host such as"
        f" 'https://web.archive.org', got {base!r}\n"
    )
    verified = CliRunner().invoke(cli, ["--config", config, "verify"], catch_exceptions=False)
    assert verified.exit_code == 0, verified.output  # no journal or leftover stays behind
