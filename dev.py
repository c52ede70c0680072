#!/usr/bin/env python3
"""Bootstrap for the Quick start: create or reuse .venv, install, then run.

    python3 dev.py demo     # the offline demo
    python3 dev.py test     # lint, type check, layer contract and the test suite (what CI runs)
    python3 dev.py docs     # regenerate docs/reference/, build the docs site into site-docs/

Only the standard library is used here, so it works on a fresh Python 3.11+.
The virtual environment is reinstalled when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("TOS_TRACKER_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LINTED = ("tracker", "tests", "bench", "docs/gen.py", "dev.py")  # ruff checks and formats these


def ensure_venv(extras: str) -> None:
    stamp = VENV / f".installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    print(f"Installing tos-tracker{f'[{extras}]' if extras else ''} into {VENV}", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-U", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "install", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def run(*args: str) -> int:
    print("$ " + " ".join(args), flush=True)
    return subprocess.run(list(args), cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    rest = argv[1:]
    if command == "demo":
        ensure_venv("")
        return run(str(BIN / "tos-tracker"), "demo", *rest)
    if command == "test":
        ensure_venv("test")
        steps = [
            (str(BIN / "ruff"), "check", *LINTED),
            (str(BIN / "ruff"), "format", "--check", *LINTED),
            (str(BIN / "mypy"), "tracker"),
            (str(BIN / "lint-imports"),),  # the layer contract in pyproject.toml: no cycles
        ]
        if not rest:  # a full run lints first; `dev.py test -k x` goes straight to pytest
            for step in steps:
                if run(*step) != 0:
                    return 1
        return run(str(PYTHON), "-m", "pytest", *rest)
    if command == "docs":
        ensure_venv("docs")
        if run(str(PYTHON), "docs/gen.py") != 0:
            return 1
        return run(str(PYTHON), "-m", "mkdocs", "build", "--strict", "-d", "site-docs", *rest)
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
