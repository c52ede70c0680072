"""The wheel carries what an installed tracker needs: templates, default config, demo data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_wheel_contains_templates_default_config_and_demo_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tos_tracker-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(
        p.relative_to(ROOT / "templates").as_posix()
        for p in (ROOT / "templates").rglob("*")
        if p.is_file()
    )
    assert "site/feed.atom" in templates and "site/search.js" in templates
    assert "digest.txt" in templates and "digest.html" in templates
    for template in templates:
        assert f"tracker/templates/{template}" in names
    assert "tracker/default.toml" in names
    assert "tracker/py.typed" in names
    assert "tracker/demo_data/manifest.json" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "tos-tracker = tracker.cli:main" in text
