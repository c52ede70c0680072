"""The offline demo: real HTTP on 127.0.0.1, real store, real reports, from bundled history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tracker.core.errors import TrackerError
from tracker.ops.demo import bundled_captures, prepare


def test_demo_runs_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    out = subprocess.run(
        [sys.executable, "-m", "tracker", "demo", "--dir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Imported the bundled history: openai/usage-policies: 2 found, 2 captures added" in (
        out.stdout
    )
    assert "Serving 4 later bundled captures of 2 documents on http://127.0.0.1:" in out.stdout
    assert "by or for a police department in the United States" in out.stdout
    assert "8 HTTP requests, 3 answered 304 Not Modified" in out.stdout
    index = workdir / "report" / "index.html"
    assert index.as_uri() in out.stdout
    assert f"{sys.executable} -m tracker history openai/usage-policies" in out.stdout
    pages = sorted((workdir / "report").rglob("2*.html"))
    assert len(pages) == 4

    # The history is queryable afterwards with the demo's own configuration.
    history = subprocess.run(
        [sys.executable, "-m", "tracker", "history", "openai/usage-policies", "--json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(history.stdout)
    assert [r["captured_at"] for r in rows] == [
        "2024-01-10T12:30:38Z",
        "2024-01-10T18:30:37Z",
        "2025-09-13T00:31:24Z",
        "2025-09-29T12:31:19Z",
    ]
    military = workdir / "report" / "openai" / "usage-policies" / "20240110T183037Z.html"
    soup = BeautifulSoup(military.read_text(), "lxml")
    assert any("Military and warfare" in d.get_text() for d in soup.find_all("del"))


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(TrackerError, match="was not made by the demo"):
        prepare(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_bundled_history_matches_its_manifest() -> None:
    captures = bundled_captures()
    assert [c.captured_at for c in captures] == sorted(c.captured_at for c in captures)
    assert {c.document for c in captures} == {
        "azure-openai/code-of-conduct",
        "openai/usage-policies",
    }
    assert all(c.origin.get("original_url") for c in captures)
