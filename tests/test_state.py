"""`Store.state`: one document's stored state, read once, as a check needs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_store import fetched

from tracker.storage.store import Store


def history(store: Store, texts: list[str]) -> None:
    """One capture per text, an hour apart; equal texts make captures without a version."""
    when = datetime(2024, 5, 1, tzinfo=UTC)
    for n, text in enumerate(texts):
        store.record("t/doc", fetched(f"<p>{n}</p>".encode(), when + timedelta(hours=n)), text)


def test_state_reads_the_latest_capture_and_only_the_window_of_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    history(store, ["a\n", "b\n", "c\n", "d\n", "e\n", "e\n"])  # the last: no version
    everything = store.versions("t/doc")
    loads: list[str] = []
    load = store._load_capture
    monkeypatch.setattr(store, "_load_capture", lambda d, p: loads.append(p.name) or load(d, p))

    state = store.state("t/doc", window=3)
    assert state.before is not None and state.before.version is None
    assert len(loads) == 1  # the latest capture's metadata, nothing more yet
    assert list(state.recent) == everything[-3:]
    assert state.previous == state.current == everything[-1]
    assert len(loads) == 4  # back from the latest until 3 versions were found
    assert state.previous_text == "e\n"
    assert state.pending == {}
    assert state.recent[-1] == everything[-1] and state.previous_text == "e\n"  # cached
    assert len(loads) == 4


def test_state_of_a_document_with_no_capture(tmp_path: Path) -> None:
    state = Store(tmp_path).state("t/none", window=5)
    assert state.before is None and state.current is None and state.previous is None
    assert list(state.recent) == [] and state.previous_text is None and state.pending == {}
