"""Shared fixtures: a local HTTP server, a working directory with a config, a clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracker.app.pipeline import Tracker
from tracker.cli import cli
from tracker.config.settings import load_config
from tracker.ops.demo import bundled_captures

SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    # Loopback by address, never "localhost", so no test depends on name resolution.
    return ("127.0.0.1", 0)


class Clock:
    """A clock the test moves by hand; the pipeline and fetcher read it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder as the current directory, as a user's working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> Result:
    """Run the CLI in-process; exceptions propagate so a test sees the real traceback."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def document_entry(doc_id: str, url: str, **extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": doc_id,
        "service": "Test",
        "title": f"Title of {doc_id}",
        "url": url,
    }
    entry.update(extra)
    return entry


def toml_value(value: object) -> str:
    return json.dumps(value)  # JSON strings, numbers and lists are valid TOML values


def write_config(
    folder: Path, documents: list[dict[str, object]], fetch: dict[str, object] | None = None
) -> Path:
    """Write a tracker.toml with fast retries, for tests.

    Test pages are a sentence long and change wholesale, and the local server has no
    robots.txt handler: the plausibility guards, robots.txt and the spacing between
    requests are off here, and on in the tests that are about them.
    """
    fetch = {
        "timeout": 3,
        "retries": 2,
        "backoff": 0.01,
        "workers": 4,
        "robots": False,
        "host_delay": 0,
        "min_chars": 0,
        "max_shrink": 1,
        **(fetch or {}),
    }
    lines = ["[fetch]"] + [f"{k} = {toml_value(v)}" for k, v in fetch.items()] + [""]
    for entry in documents:
        lines.append("[[documents]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
        lines.append("")
    path = folder / "tracker.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def make_tracker(tmp_path: Path) -> Callable[..., Tracker]:
    opened: list[Tracker] = []

    def make(documents: list[dict[str, object]], **fetch: object) -> Tracker:
        path = write_config(tmp_path, documents, fetch)
        tracker = Tracker.open(load_config(path))
        opened.append(tracker)
        return tracker

    yield make
    for tracker in opened:
        tracker.close()


@pytest.fixture(scope="session")
def bundled() -> dict[str, list[bytes]]:
    """The demo's bundled real history, by document id, oldest first."""
    out: dict[str, list[bytes]] = {}
    for capture in bundled_captures():
        out.setdefault(capture.document, []).append(capture.body)
    return out


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {SHARED_CORPUS}; these tests need ../shared")
    return SHARED_CORPUS


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
