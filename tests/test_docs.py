"""The docs beside the code: generated pages in step with the code, examples that load,
links and paths that exist, and a site that builds.

The generated pages (docs/reference/) come from the command line only (docs/gen.py), so
these tests hold whatever the modules behind it are called.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tracker.config.settings import parse_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
# Written on the branch that splits tracker/ into packages; until it is merged here, the
# links to it and the site's nav entry are the only things allowed to point at nothing.

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
CONSTANT = re.compile(r"`(\w+)\.(_?[A-Z][A-Z0-9_]+)`")
CODE_PATH = re.compile(r"`((?:tracker|bench|tests|templates)/[\w./-]*\.\w+)`")


def blocks(lang: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            if m.group("lang") == lang:
                line = text[: m.start()].count("\n") + 1
                where = f"{page.relative_to(ROOT)}:{line}"
                found.append((where, textwrap.dedent(m.group("body"))))
    return found


def test_generated_pages_match_the_code() -> None:
    """docs/reference/ is `--help` and the index schema as the code makes them today."""
    out = subprocess.run(
        [sys.executable, str(DOCS / "gen.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr + out.stdout


def test_the_reference_covers_every_command() -> None:
    reference = (DOCS / "reference" / "commands.md").read_text()
    top = subprocess.run(
        [sys.executable, "-m", "tracker", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    names = re.findall(r"^  (\w+) ", top.split("Commands:")[1], re.M)
    assert len(names) >= 15
    for name in names:
        assert f"## tos-tracker {name}\n" in reference, name


def test_every_toml_example_is_a_configuration_that_loads() -> None:
    examples = blocks("toml")
    assert len(examples) >= 6, "the TOML examples were not found"
    for where, text in examples:
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            pytest.fail(f"{where}: not TOML: {error}")
        parse_config(text, name=where, root=Path("/srv/tos-tracker"))


def test_readme_is_short_and_keeps_the_quick_start() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 200
    assert "python3 dev.py demo" in text and "python3 dev.py test" in text


def test_links_between_pages_lead_somewhere() -> None:
    for page in PAGES:
        prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))
        for m in LINK.finditer(prose):
            target = m.group("target")
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_files_the_docs_name_exist() -> None:
    """`tracker/…`, `bench/…` paths in the docs follow the code when it moves."""
    for page in PAGES:
        if page.parent.name == "reference":
            continue
        for name in CODE_PATH.findall(page.read_text()):
            assert (ROOT / name).exists(), f"{page.relative_to(ROOT)} names {name}, which is gone"


def test_constants_the_docs_name_exist() -> None:
    """`topics.SCAN_CHARS` and the like: the constant is still defined somewhere in tracker/."""
    source = "\n".join(p.read_text() for p in (ROOT / "tracker").rglob("*.py"))
    for page in PAGES:
        for module, name in CONSTANT.findall(page.read_text()):
            assert re.search(rf"^\s*{name}\b\s*(?::[^=\n]*)?=", source, re.M), (
                f"{page.relative_to(ROOT)} names {module}.{name}, which tracker/ no longer defines"
            )


def test_every_page_is_in_the_site_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert f" {page.relative_to(DOCS).as_posix()}\n" in nav, f"{page.name} is not in the nav"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s" / "reference" / "index-schema.html").exists()
