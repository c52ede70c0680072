"""What a store holds, as records: a capture, a document's state before a capture, and
the one-line JSON and file names they are stored as. `store.Store` reads and writes
them; nothing here touches the disk."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from tracker.core.errors import StoreError
from tracker.core.files import safe_relative
from tracker.core.models import Snapshot, Version
from tracker.core.times import STEM_LENGTH, parse_iso, parse_stem, stem_for


class DamagedFileError(StoreError):
    """A stored file that cannot be read as what it is: named, so a whole-store command
    can skip its document, say which file to restore, and go on with the others."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class Unread:
    """Says that a caller did not pass the latest capture (None means there is none)."""


UNREAD = Unread()


@dataclass(frozen=True)
class Capture:
    """One completed capture: the metadata file plus the snapshot and version it names."""

    document: str
    captured_at: datetime
    meta: dict[str, Any]
    snapshot: Snapshot
    version: Version | None


@dataclass
class DocumentState:
    """A document as it stood just before one capture: what that capture is judged by,
    and what writing it starts from. Each part is read at most once, when first needed.

    For a live run that is the store's latest state (`Store.state`); for an import, the
    state as of the capture's own time (the capture and versions before it), so a
    backfill is judged the way a live run at that moment would have judged it.
    """

    document: str
    before: Capture | None  # the capture just before this one
    load_pending: Callable[[], dict[str, Any]] = field(repr=False)
    load_versions: Callable[[], Sequence[Version]] = field(repr=False)  # oldest first
    read_text: Callable[[Version], str] = field(repr=False)

    @cached_property
    def pending(self) -> dict[str, Any]:
        """What the last captures were held back for (the shrink guard; {} for nothing)."""
        return self.load_pending()

    @cached_property
    def recent(self) -> Sequence[Version]:
        """The versions before this capture, oldest first: at least the last of them, and
        as many as the flip window looks at. Read only when the bytes are new."""
        return self.load_versions()

    @property
    def previous(self) -> Version | None:
        """The version current just before this capture."""
        return self.recent[-1] if self.recent else None

    @property
    def current(self) -> Version | None:
        """The same version, from the capture before when it has one (no versions read)."""
        if self.before is None:
            return None
        return self.before.version if self.before.version is not None else self.previous

    @cached_property
    def previous_text(self) -> str | None:
        """The text of `previous`, read once: for the guards, then for the change."""
        previous = self.previous
        return self.read_text(previous) if previous is not None else None


def is_capture_file(name: str) -> bool:
    """Whether a file name starts with a capture's time stem (`20240502T120000Z.`)."""
    if len(name) <= STEM_LENGTH or name[STEM_LENGTH] != ".":
        return False
    try:
        parse_stem(name[:STEM_LENGTH])
    except ValueError:
        return False
    return True


def run_order(run_id: str) -> tuple[str, int]:
    base, _, counter = run_id.partition("-")
    return base, int(counter) if counter.isdigit() else 1


def raw_suffix(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml", ""):
        return ".html"
    if kind == "text/plain":
        return ".txt"
    if kind == "text/markdown":
        return ".md.txt"
    if kind == "application/pdf":
        return ".pdf"
    return ".bin"


def json_bytes(data: dict[str, Any]) -> bytes:
    """One line of sorted keys: the C encoder (json's `indent` runs in pure Python, ~4x
    slower), for a metadata file per capture and a run journal of thousands of outcomes."""
    return (json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def capture_of(document: str, meta: dict[str, Any]) -> Capture:
    """The capture a metadata file describes."""
    captured_at = parse_iso(meta["captured_at"])
    snap = meta["snapshot"]
    for named in (snap, meta.get("version") or {}):
        if "path" in named and safe_relative(named["path"]) is None:
            raise ValueError(f"it names {named['path']!r}, which is not a path inside the store")
    # A capture names files of its own document only (a raw snapshot may be an earlier
    # capture's, when the bytes were the same; the text is always its own `<stem>.md`):
    # a hand-edited metadata file must not make `reextract` delete, or `site build`
    # publish, another document's files.
    folder = document + "/"
    own_text = f"{folder}{stem_for(captured_at)}.md"
    raw = str(snap.get("path", ""))
    if not raw.startswith(folder) or "/" in raw[len(folder) :]:
        raise ValueError(f"it names {raw!r}, which is not a file of {document}")
    text_path = (meta.get("version") or {}).get("path")
    if text_path is not None and text_path != own_text:
        raise ValueError(f"it names {text_path!r} as its text, not {own_text!r}")
    snapshot = Snapshot(
        document=document,
        captured_at=captured_at,
        sha256=snap["sha256"],
        path=snap["path"],
        bytes=snap["bytes"],
        url=meta["url"],
        final_url=meta.get("final_url") or meta["url"],
        status=meta.get("status", 200),
        content_type=meta.get("content_type"),
        encoding=meta.get("encoding"),
        etag=meta.get("etag"),
        last_modified=meta.get("last_modified"),
    )
    version = None
    if meta.get("version"):
        ver = meta["version"]
        version = Version(
            document=document,
            captured_at=captured_at,
            sha256=ver["sha256"],
            path=ver["path"],
            bytes=ver["bytes"],
            snapshot_sha256=snapshot.sha256,
            snapshot_path=snapshot.path,
            extraction=meta.get("extraction"),
            imported=meta.get("imported"),
        )
    return Capture(document, captured_at, meta, snapshot, version)
