"""The index's rows, derived from the store's records: the change between two versions
(`compute_change`), a row for each snapshot, version and change, and the stamp of the
analysis rules the derived rows were made with.

Both the incremental path and `Index.rebuild` build rows here, so a rebuilt index
equals an incrementally built one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tracker.analysis.change import Change, derive_change
from tracker.analysis.topics import Topic
from tracker.core.errors import StoreError
from tracker.core.models import Version
from tracker.core.times import iso
from tracker.storage.captures import Capture
from tracker.storage.store import Store

# The rules that derive changes, clause changes and flags from two texts (clause
# identity, cosmetic reasons, topic matching). Bump it when they change, so an index
# derived by an older version is derived again (see `Index.analysis_current`).
ANALYSIS_VERSION = 3  # 3: bounded clause and topic matching (coarse past the bounds)


def compute_change(
    store: Store, before: Version, after: Version, topics: Sequence[Topic] | None = None
) -> Change:
    """The word diff, the clause changes and the topic flags between two versions."""
    return derive_change(before, after, store.read_text(before), store.read_text(after), topics)


def snapshot_row(capture: Capture) -> dict[str, Any]:
    s = capture.snapshot
    return {
        "document": s.document,
        "captured_at": iso(s.captured_at),
        "sha256": s.sha256,
        "path": s.path,
        "bytes": s.bytes,
        "url": s.url,
        "final_url": s.final_url,
        "status": s.status,
        "content_type": s.content_type,
        "encoding": s.encoding,
        "etag": s.etag,
        "last_modified": s.last_modified,
    }


def version_row(version: Version) -> dict[str, Any]:
    return {
        "document": version.document,
        "captured_at": iso(version.captured_at),
        "sha256": version.sha256,
        "path": version.path,
        "bytes": version.bytes,
        "snapshot_sha256": version.snapshot_sha256,
        "snapshot_path": version.snapshot_path,
        "imported": json.dumps(version.imported, sort_keys=True) if version.imported else None,
    }


def change_row(change: Change) -> dict[str, Any]:
    return {
        "document": change.document,
        "to_captured_at": iso(change.after.captured_at),
        "from_captured_at": iso(change.before.captured_at),
        "from_sha256": change.before.sha256,
        "to_sha256": change.after.sha256,
        "added_words": change.diff.added_words,
        "removed_words": change.diff.removed_words,
        "sections": json.dumps(list(change.diff.sections), ensure_ascii=False),
        "summary": change.summary,
        "extraction_changed": int(change.extraction_changed),
        "cosmetic": int(change.cosmetic),
        "cosmetic_reason": change.cosmetic_reason,
        "flagged_topics": json.dumps(sorted({f.topic for f in change.flags})),
    }


def analysis_stamp(topics: Sequence[Topic]) -> str:
    """What the derived rows depend on besides the files: the analysis rules' version and
    the watched topics (a topic added in tracker.toml must flag the past too)."""
    data = repr((ANALYSIS_VERSION, tuple(topics))).encode("utf-8")
    return f"{ANALYSIS_VERSION}:{hashlib.sha256(data).hexdigest()[:16]}"


def decode_change(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["sections"] = json.loads(row["sections"] or "[]")
    row["extraction_changed"] = bool(row["extraction_changed"])
    row["cosmetic"] = bool(row["cosmetic"])
    row["flagged_topics"] = json.loads(row["flagged_topics"] or "[]")
    return row


def described(store: Store, document: str) -> dict[str, Any]:
    """A document no longer configured, described by its latest capture."""
    try:
        latest = store.latest_capture(document)
    except StoreError:
        latest = None  # damaged: `verify` names it; the document is still listed
    meta = latest.meta if latest else {}
    return {
        "configured": 0,
        "service": meta.get("service"),
        "title": meta.get("title"),
        "url": meta.get("url"),
    }
