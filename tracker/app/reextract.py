"""Re-derive a document's versions from its stored raw snapshots, without fetching.

After a selector, noise filter or extractor change, `reextract` runs the current
extraction over every stored raw snapshot, oldest first, and decides each capture's
version again exactly as a live run would (a new version when the text differs from
the current one, none when it is the same or a flip back to a recent text).

Raw snapshots are the evidence and are never touched. Texts are derived data: a
capture whose text changed gets its `.md` rewritten in place and its metadata
rewritten last (each file atomically), and the metadata keeps what it replaced
under `reextracted` (the previous text's sha256 and extraction key). Text that was
imported as text (`import` of .md/.txt files) was not extracted by us and is kept.
Then the document's index rows are rebuilt from the files.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracker.analysis.clauses import compare
from tracker.analysis.noise import flip_of
from tracker.analysis.segments import segment
from tracker.analysis.topics import flags_for
from tracker.app.importer import TEXT_EXTRACTION
from tracker.app.pipeline import Tracker
from tracker.core.errors import FetchError, StoreError
from tracker.core.hashes import sha256_hex
from tracker.core.models import Source, Version
from tracker.core.times import iso, stem_for
from tracker.extract.engine import extract_text, extraction_key
from tracker.fetch.http import utcnow
from tracker.storage.captures import Capture

log = logging.getLogger("tracker.reextract")  # the name log lines have always shown


@dataclass(frozen=True)
class TextChange:
    """A capture whose version changed: new text, or gained or lost its version."""

    captured_at: str
    before: str | None  # sha256 of the old version's text; None: was not a version
    after: str | None  # sha256 of the new text; None: no longer a version
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "captured_at": self.captured_at,
            "before": self.before,
            "after": self.after,
            "note": self.note,
        }


@dataclass
class ReextractReport:
    """What re-extraction did (or, with dry_run, would do) to one document."""

    document: str
    dry_run: bool
    captures: int = 0
    reextracted: int = 0
    versions_before: int = 0
    versions_after: int = 0
    changes_before: int = 0
    changes_after: int = 0
    flagged_before: int = 0
    flagged_after: int = 0
    text_changed: list[TextChange] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # "<time>: why it was kept as it was"
    files_written: int = 0
    error: str | None = None  # a damaged stored file: the document was left as it was

    def line(self) -> str:
        if self.error is not None:
            return f"{self.document}: skipped, left as it was: {self.error}"
        verb = "would re-extract" if self.dry_run else "re-extracted"
        text = (
            f"{self.document}: {verb} {self.reextracted} of {self.captures} captures;"
            f" versions {self.versions_before} → {self.versions_after},"
            f" changes {self.changes_before} → {self.changes_after},"
            f" flagged changes {self.flagged_before} → {self.flagged_after}"
        )
        if not self.text_changed:
            return text + "; no version's text changed"
        shown = ", ".join(f"{c.captured_at} ({c.note})" for c in self.text_changed[:10])
        more = len(self.text_changed) - 10
        return text + f"; text changed: {shown}" + (f" and {more} more" if more > 0 else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "dry_run": self.dry_run,
            "captures": self.captures,
            "reextracted": self.reextracted,
            "versions": {"before": self.versions_before, "after": self.versions_after},
            "changes": {"before": self.changes_before, "after": self.changes_after},
            "flagged_changes": {"before": self.flagged_before, "after": self.flagged_after},
            "text_changed": [c.to_json() for c in self.text_changed],
            "kept": self.kept,
            "files_written": self.files_written,
            "error": self.error,
        }


@dataclass
class _Plan:
    """One capture as re-extraction leaves it."""

    capture: Capture
    version: Version | None
    text: str | None  # the new text, when it was re-extracted
    extraction: str | None
    flip: str | None = None  # time of the version this text equals (a flip)


def reextract(
    tracker: Tracker,
    documents: Sequence[str] = (),
    *,
    dry_run: bool = False,
    wait: float = 0.0,
    clock: Callable[[], datetime] = utcnow,
) -> list[ReextractReport]:
    """Re-run extraction over every stored raw snapshot of `documents` (default: all).

    Holds the store's lock. With `dry_run`, computes and reports without writing.
    A document whose stored files are damaged is reported (`error`) and left as it
    was before anything of it is written; the others go on.
    """
    for document in documents:
        tracker.require_document(document)
    chosen = list(documents) or [
        d for d in tracker.known_documents() if tracker.store.capture_times(d)
    ]
    reports = []
    with tracker.store.lock(wait):
        tracker.index.sync(tracker.store, chosen)
        for document in chosen:
            try:
                reports.append(_reextract_document(tracker, document, dry_run, clock))
            except StoreError as exc:
                reports.append(ReextractReport(document, dry_run, error=str(exc)))
    return reports


def _reextract_document(
    tracker: Tracker, document: str, dry_run: bool, clock: Callable[[], datetime]
) -> ReextractReport:
    store = tracker.store
    captures = store.captures(document)
    report = ReextractReport(document, dry_run, captures=len(captures))
    old_versions = [c.version for c in captures if c.version is not None]
    report.versions_before = len(old_versions)
    report.changes_before = max(len(old_versions) - 1, 0)
    report.flagged_before = _flagged_in_index(tracker, document)
    source = tracker.config.source(document)
    plans = _plan(tracker, document, source, captures, report)
    new_versions = [p.version for p in plans if p.version is not None]
    report.versions_after = len(new_versions)
    report.changes_after = max(len(new_versions) - 1, 0)
    texts = {p.capture.captured_at: p.text for p in plans if p.text is not None}
    report.flagged_after = _count_flagged(tracker, new_versions, texts)
    for plan in plans:
        old, new = plan.capture.version, plan.version
        if (old.sha256 if old else None) != (new.sha256 if new else None):
            if old is None:
                note = "now a version"
            elif new is None:
                note = (
                    f"no longer a version: same as {plan.flip}, a flip"
                    if plan.flip
                    else "no longer a version: same text as the version before it"
                )
            else:
                note = "new text"
            report.text_changed.append(
                TextChange(
                    iso(plan.capture.captured_at),
                    old.sha256 if old else None,
                    new.sha256 if new else None,
                    note,
                )
            )
    if not dry_run:
        report.files_written = _write(tracker, document, plans, clock)
        tracker.index.rebuild_document(store, document)
    return report


def _plan(
    tracker: Tracker,
    document: str,
    source: Source | None,
    captures: list[Capture],
    report: ReextractReport,
) -> list[_Plan]:
    """Each capture's version as the current settings make it, oldest first."""
    store, window = tracker.store, tracker.config.flip_window
    key = extraction_key(source.select, source.remove, source.noise) if source else None
    versions: list[Version] = []
    plans: list[_Plan] = []
    for capture in captures:
        when = iso(capture.captured_at)
        extraction = capture.meta.get("extraction")
        reason = None
        if source is None:
            reason = "not configured, so no selectors to extract with"
        elif extraction == TEXT_EXTRACTION:
            reason = "imported as text"
        text = None
        if reason is None and source is not None:
            raw = store.read_snapshot(capture.snapshot.path)
            try:
                text = extract_text(
                    raw,
                    encoding=capture.snapshot.encoding,
                    select=source.select,
                    remove=source.remove,
                    noise=source.noise,
                )
            except FetchError as exc:
                reason = f"cannot re-extract ({exc})"
            else:
                if not text.strip():
                    reason, text = "cannot re-extract (no readable text)", None
        if reason is not None or text is None:
            report.kept.append(f"{when}: {reason}")
            plans.append(_Plan(capture, capture.version, None, extraction, None))
            if capture.version is not None:
                versions.append(capture.version)
            continue
        report.reextracted += 1
        sha = sha256_hex(text.encode("utf-8"))
        current = versions[-1] if versions else None
        if current is not None and current.sha256 == sha and current.extraction == key:
            plans.append(_Plan(capture, None, text, key))
            continue
        flip = flip_of(versions[-window:], sha, key, window) if window else None
        if flip is not None:
            plans.append(_Plan(capture, None, text, key, iso(flip.captured_at)))
            continue
        stem = stem_for(capture.captured_at)
        version = Version(
            document=document,
            captured_at=capture.captured_at,
            sha256=sha,
            path="/".join((*document.split("/"), f"{stem}.md")),
            bytes=len(text.encode("utf-8")),
            snapshot_sha256=capture.snapshot.sha256,
            snapshot_path=capture.snapshot.path,
            extraction=key,
            imported=capture.meta.get("imported"),
        )
        plans.append(_Plan(capture, version, text, key))
        versions.append(version)
    return plans


def _write(
    tracker: Tracker, document: str, plans: list[_Plan], clock: Callable[[], datetime]
) -> int:
    """Rewrite what changed: the text first, then the metadata that commits it."""
    store = tracker.store
    written = 0
    for plan in plans:
        capture, version = plan.capture, plan.version
        meta = dict(capture.meta)
        old = meta.get("version")
        new = (
            {"sha256": version.sha256, "path": version.path, "bytes": version.bytes}
            if version is not None
            else None
        )
        if plan.text is None:
            continue  # kept as it was
        changed = old != new or meta.get("extraction") != plan.extraction
        changed = changed or meta.get("flip_of") != plan.flip
        if not changed:
            continue
        if version is not None and plan.text is not None and old != new:
            store.write_capture_text(document, capture.captured_at, plan.text)
            written += 1
        history = list(meta.get("reextracted", []))
        history.append({"at": iso(clock()), "version": old, "extraction": meta.get("extraction")})
        meta.update({"version": new, "extraction": plan.extraction, "reextracted": history})
        if plan.flip:
            meta["flip_of"] = plan.flip
        else:
            meta.pop("flip_of", None)
        store.rewrite_capture_meta(document, capture.captured_at, meta)
        written += 1
        if new is None and old is not None:
            # The text file is derived data no metadata names any more.
            store.remove_text(document, old["path"])
    return written


def _flagged_in_index(tracker: Tracker, document: str) -> int:
    row = next(
        tracker.index.db.query(
            "select count(*) n from changes where document = ? and flagged_topics != '[]'",
            [document],
        )
    )
    return int(row["n"])


def _count_flagged(tracker: Tracker, versions: list[Version], texts: dict[datetime, str]) -> int:
    """Changes with at least one flag between consecutive versions (texts from memory)."""

    def text_of(version: Version) -> str:
        text = texts.get(version.captured_at)
        return text if text is not None else tracker.store.read_text(version)

    flagged = 0
    for before, after in itertools.pairwise(versions):
        clauses = compare(segment(text_of(before)), segment(text_of(after)))
        flagged += bool(flags_for(clauses, tracker.config.topics))
    return flagged
