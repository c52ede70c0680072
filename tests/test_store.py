"""The store: atomic writes, content addressing and honest timestamps."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracker.core.files import atomic_write
from tracker.core.hashes import sha256_hex
from tracker.core.models import FetchResult, Validators
from tracker.storage.store import Store


def fetched(body: bytes, when: datetime, etag: str | None = None) -> FetchResult:
    return FetchResult(
        source_id="acme/terms",
        url="https://acme.test/terms",
        final_url="https://acme.test/terms",
        status=200,
        fetched_at=when,
        body=body,
        content_type="text/html; charset=utf-8",
        encoding="utf-8",
        validators=Validators(etag=etag),
    )


T1 = datetime(2024, 5, 2, 8, 30, 15, 123456, tzinfo=UTC)


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.txt"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["file.txt"]


def test_atomic_write_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.txt"
    atomic_write(target, b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_record_writes_raw_text_and_metadata(tmp_path: Path) -> None:
    store = Store(tmp_path)
    capture, current = store.record("acme/terms", fetched(b"<p>Hi</p>", T1, '"e1"'), "Hi\n")
    assert capture is not None and current == capture.version
    folder = tmp_path / "acme" / "terms"
    assert sorted(os.listdir(folder)) == [
        "20240502T083015Z.html.gz",
        "20240502T083015Z.json",
        "20240502T083015Z.md",
    ]
    assert gzip.decompress((folder / "20240502T083015Z.html.gz").read_bytes()) == b"<p>Hi</p>"
    meta = json.loads((folder / "20240502T083015Z.json").read_text())
    assert meta["captured_at"] == "2024-05-02T08:30:15Z"
    assert meta["etag"] == '"e1"'
    assert meta["snapshot"]["sha256"] == sha256_hex(b"<p>Hi</p>")
    assert meta["version"]["sha256"] == sha256_hex(b"Hi\n")


def test_identical_raw_bytes_write_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record("acme/terms", fetched(b"<p>Hi</p>", T1), "Hi\n")
    before = sorted(os.listdir(tmp_path / "acme" / "terms"))
    later = T1.replace(hour=14)
    capture, current = store.record("acme/terms", fetched(b"<p>Hi</p>", later), "Hi\n")
    assert capture is None and current is not None
    assert sorted(os.listdir(tmp_path / "acme" / "terms")) == before


def test_a_clock_behind_the_last_capture_never_reorders_history(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record("acme/terms", fetched(b"<p>1</p>", T1), "1\n")
    earlier = T1.replace(hour=1)
    capture, _ = store.record("acme/terms", fetched(b"<p>2</p>", earlier), "2\n")
    assert capture is not None
    assert capture.captured_at == datetime(2024, 5, 2, 8, 30, 16, tzinfo=UTC)
    assert [v.captured_at.second for v in store.versions("acme/terms")] == [15, 16]


def test_raw_compression_is_deterministic(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    for store in (a, b):
        store.record("acme/terms", fetched(b"<p>Same</p>" * 100, T1), "Same\n")
    name = "acme/terms/20240502T083015Z.html.gz"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_stores_own_records_are_not_documents(tmp_path: Path) -> None:
    # Run journals, Wayback import progress and digest ledgers all live in `_` folders
    # beside the documents; none of them is a document (ids never start with `_`).
    store = Store(tmp_path)
    store.record("acme/terms", fetched(b"<p>Terms</p>", T1), "Terms\n")
    for record in ("_runs/x.json", "_imports/acme/terms/wayback.json", "_digests/daily.json"):
        atomic_write(tmp_path / record, b"{}")
    assert store.documents() == ["acme/terms"]


def test_the_stores_own_records_round_trip_byte_for_byte(tmp_path: Path) -> None:
    # Digest ledgers and import progress go through the store, in the bytes they always had.
    store = Store(tmp_path)
    assert store.digest_ledger("daily") is None
    ledger = {"digest": "daily", "started_at": "x", "window_start": None, "sent": []}
    store.write_digest_ledger("daily", ledger)
    written = (tmp_path / "_digests" / "daily.json").read_bytes()
    assert written == (json.dumps(ledger, indent=2, sort_keys=True) + "\n").encode()
    assert store.digest_ledger("daily") == ledger
    assert store.import_progress("acme/terms", "wayback") == set()
    store.save_import_progress("acme/terms", "wayback", {"2024", "2023"})
    progress = tmp_path / "_imports" / "acme" / "terms" / "wayback.json"
    assert progress.read_bytes() == json.dumps({"done": ["2023", "2024"]}, indent=1).encode()
    assert store.import_progress("acme/terms", "wayback") == {"2023", "2024"}


def test_only_storage_uses_the_stores_private_functions() -> None:
    # One owner for the store folder: other packages go through `Store`'s methods.
    root = Path(__file__).resolve().parent.parent / "tracker"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.parent.name != "storage"
        and (
            "tracker.storage.store import _" in (text := path.read_text(encoding="utf-8"))
            or "store._" in text
        )
    ]
    assert offenders == []
