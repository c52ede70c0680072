"""Commands stay linear in the number of documents (issue 15: `documents` took 42 s at 40,000)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from conftest import invoke

from tracker.app.importer import ImportItem, import_items
from tracker.app.pipeline import Tracker
from tracker.config.settings import Config, load_config
from tracker.core.models import Source


def test_config_source_is_a_lookup_not_a_scan() -> None:
    """40,000 lookups took 37 s as a scan per lookup; a dict answers them in milliseconds."""
    sources = tuple(Source(f"p/d{n}", "S", "T", f"https://example.org/{n}") for n in range(40_000))
    config = Config(path=None, sources=sources, store_path=Path("s"), index_path=Path("i"))
    started = time.perf_counter()
    found = [config.source(s.id) for s in sources]
    assert time.perf_counter() - started < 1.0
    assert found == list(sources)
    assert config.source("p/nope") is None


def test_documents_lists_twenty_thousand_quickly(workdir: Path) -> None:
    """A configured document, a stored one and one no longer configured, among 20,000."""
    entries = [
        f'[[documents]]\nid = "p{n // 100}/d{n}"\nservice = "S"\ntitle = "Doc {n}"\n'
        f'url = "https://example.org/{n}"\n'
        for n in range(20_000)
    ]
    (workdir / "tracker.toml").write_text("\n".join(entries), encoding="utf-8")
    body = b"These are the terms of the service, and they are long enough to keep.\n" * 5
    when = datetime(2024, 1, 1, tzinfo=UTC)
    with Tracker.open(load_config(workdir / "tracker.toml")) as tracker:
        for doc in ("p199/d19999", "old/gone"):
            import_items(tracker, doc, [ImportItem(when, body, "text", {"source": "test"})])
    # Reading the configuration is linear work, timed on this machine under its present
    # load; the listing may cost a few times that, not the 5-10 times a scan per document took.
    started = time.perf_counter()
    load_config(workdir / "tracker.toml")
    reading = time.perf_counter() - started
    started = time.perf_counter()
    result = invoke("documents")
    seconds = time.perf_counter() - started
    lines = result.output.splitlines()
    assert len(lines) == 20_001
    assert lines[0].split()[:2] == ["p0/d0", "0"]
    stored = next(line for line in lines if line.startswith("p199/d19999 "))
    assert stored.split()[1] == "1" and "Doc 19999" in stored
    assert lines[-1].startswith("old/gone ") and "(no longer configured)" in lines[-1]
    assert seconds < 3 * reading + 1, f"documents: {seconds:.1f} s, reading: {reading:.1f} s"
