"""`tos-tracker documents` over a large configuration: the time of one listing.

    python bench/documents.py                  # 40,000 documents, 200 of them stored
    python bench/documents.py --documents 5000 --stored 50

Writes a tracker.toml of N documents (and imports a version of a few, so both the
configured and the stored paths are taken), then times the real command in a
subprocess, start-up and config loading included, and prints the seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.app.importer import ImportItem, import_items  # noqa: E402
from tracker.app.pipeline import Tracker  # noqa: E402
from tracker.config.settings import load_config  # noqa: E402


def write_config(folder: Path, documents: int) -> Path:
    """A configuration of `documents` entries under two-level ids, as a big org might."""
    lines = ['[store]\npath = "snapshots"\n']
    for n in range(documents):
        lines.append(
            f'[[documents]]\nid = "provider-{n // 100}/terms-{n}"\n'
            f'service = "Provider {n // 100}"\ntitle = "Terms {n}"\nurl = "https://example.org/{n}"\n'
        )
    path = folder / "tracker.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tracker", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=40_000)
    parser.add_argument("--stored", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, args.documents)
        step = max(1, args.documents // max(1, args.stored))
        body = "<html><body><main>" + "<p>These are the terms.</p>" * 20 + "</main></body></html>"
        with Tracker.open(load_config(config)) as tracker:
            for n in range(0, args.documents, step)[: args.stored]:
                item = ImportItem(
                    datetime(2024, 1, 1, tzinfo=UTC), body.encode(), "html", {"source": "bench"}
                )
                import_items(tracker, f"provider-{n // 100}/terms-{n}", [item])
        started = time.perf_counter()
        listed = cli(config, "documents")
        seconds = time.perf_counter() - started
        if listed.returncode != 0:
            sys.exit(f"documents failed: {listed.stderr.strip()}")
        rows = len(listed.stdout.splitlines())
        print(f"documents: {rows} rows from {args.documents} configured in {seconds:.2f} s")


if __name__ == "__main__":
    main()
