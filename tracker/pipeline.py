"""One run: fetch → extract → store → diff → index, with errors kept per document.

A failing document never stops the others and never touches its history: the
error is recorded on the run and the last good version stays current.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .config import Config
from .errors import FetchError, UnknownDocumentError
from .extract import extract_text, extraction_key
from .fetch import Clock, Fetcher, utcnow
from .index import Index, compute_change
from .models import Change, DocumentOutcome, FetchResult, RunSummary, Source, Validators
from .store import Store, iso

log = logging.getLogger(__name__)

Progress = Callable[[DocumentOutcome], None]


@dataclass
class Tracker:
    """The store, the index and the configuration of one working directory."""

    config: Config
    store: Store
    index: Index

    @classmethod
    def open(cls, config: Config) -> Tracker:
        store = Store(config.store_path)
        tracker = cls(config, store, Index(config.index_path, config.topics))
        tracker.index.upsert_sources(config.sources, store)
        return tracker

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def known_documents(self) -> list[str]:
        ids = [s.id for s in self.config.sources]
        return ids + [d for d in self.store.documents() if d not in ids]

    def require_document(self, document: str) -> None:
        if document not in self.known_documents():
            known = ", ".join(self.known_documents()) or "(none)"
            raise UnknownDocumentError(
                f"unknown document {document!r}; configured or stored: {known}"
            )


def select_sources(config: Config, only: Sequence[str] | None) -> list[Source]:
    if not only:
        return list(config.sources)
    chosen = []
    for doc_id in only:
        source = config.source(doc_id)
        if source is None:
            known = ", ".join(s.id for s in config.sources)
            raise UnknownDocumentError(f"unknown document {doc_id!r}; configured: {known}")
        chosen.append(source)
    return chosen


def run(
    tracker: Tracker,
    *,
    only: Sequence[str] | None = None,
    clock: Clock = utcnow,
    fetcher: Fetcher | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Fetch every selected document once and record what changed.

    Holds the store's lock for the whole run (waiting up to `wait` seconds for
    another run to finish), so two runs never interleave their writes. When `stop`
    is set the run ends after the document it is recording; the rest are not checked.
    """
    sources = select_sources(tracker.config, only)
    with tracker.store.lock(wait):
        return _run_locked(tracker, sources, clock, fetcher, progress, stop)


def _run_locked(
    tracker: Tracker,
    sources: list[Source],
    clock: Clock,
    fetcher: Fetcher | None,
    progress: Progress | None,
    stop: threading.Event | None = None,
) -> RunSummary:
    store, index = tracker.store, tracker.index
    index.sync(store, [s.id for s in sources])
    started = clock()
    run_id = store.new_run_id(started)
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher(tracker.config.fetch, clock=clock)

    def validators_for(source: Source) -> Validators | None:
        # Only ask "has it changed?" about the same URL, when we hold a copy of it made
        # with the same extraction settings; otherwise we need the body.
        latest = store.latest_capture(source.id)
        if latest is None or latest.meta.get("url") != source.url:
            return None
        if latest.meta.get("extraction") != extraction_key(source.select, source.remove):
            return None
        return index.validators(source.id)

    outcomes: dict[str, DocumentOutcome] = {}
    try:
        for source, result in fetcher.fetch_all(sources, validators_for):
            if isinstance(result, FetchError):
                outcome = _failed(source, result, clock)
            else:
                try:
                    outcome = _record(tracker, source, result)
                except Exception as exc:  # one odd page must never stop the run
                    log.exception("%s: could not record the fetched page", source.id)
                    error = FetchError("error", f"could not process the page: {exc!r}"[:500])
                    outcome = _failed(source, error, clock)
            outcomes[source.id] = outcome
            if progress:
                progress(outcome)
            if stop is not None and stop.is_set():
                log.warning("stop requested: ending the run after %s", source.id)
                break
    finally:
        if own_fetcher:
            fetcher.close()
    ordered = tuple(outcomes[s.id] for s in sources if s.id in outcomes)
    summary = RunSummary(id=run_id, started_at=started, ended_at=clock(), outcomes=ordered)
    record = run_record(summary)
    record["interrupted"] = len(ordered) < len(sources)
    store.write_run(record)
    index.apply_run(record)
    return summary


def _record(tracker: Tracker, source: Source, fetched: FetchResult) -> DocumentOutcome:
    store, index = tracker.store, tracker.index
    base = DocumentOutcome(
        document=source.id,
        status="unchanged",
        checked_at=fetched.fetched_at,
        http_status=fetched.status,
        validators=fetched.validators,
    )
    if fetched.not_modified:
        # A 304 may omit the validators; keep the ones we sent for next time.
        sent = index.validators(source.id)
        base = replace(
            base,
            validators=Validators(
                etag=fetched.validators.etag or sent.etag,
                last_modified=fetched.validators.last_modified or sent.last_modified,
            ),
        )
        current = store.latest_version(source.id)
        if current is None:
            return replace(
                base,
                status="failed",
                error_kind="http",
                error="HTTP 304 but no stored copy to compare with",
            )
        return replace(base, version=current)
    try:
        text = extract_text(
            fetched.body, encoding=fetched.encoding, select=source.select, remove=source.remove
        )
    except FetchError as exc:
        return replace(base, status="failed", error_kind=exc.kind, error=str(exc))
    if not text.strip():
        return replace(
            base,
            status="failed",
            error_kind="empty",
            error="the page has no readable text (is it rendered by JavaScript?)",
        )
    previous = store.latest_version(source.id)
    capture, current = store.record(
        source.id,
        fetched,
        text,
        extraction=extraction_key(source.select, source.remove),
        describe={"service": source.service, "title": source.title, **_how(fetched)},
    )
    change: Change | None = None
    if capture is not None and capture.version is not None and previous is not None:
        change = compute_change(store, previous, capture.version, tracker.config.topics)
    if capture is not None:
        index.add_capture(capture, change)
    if capture is None or capture.version is None:
        status = "unchanged"
    elif previous is None:
        status = "new"
    else:
        status = "changed"
    return replace(
        base, status=status, version=current, change=change, snapshot_stored=capture is not None
    )


def _how(fetched: FetchResult) -> dict[str, str]:
    """How the page was fetched, for the capture's metadata: via http or browser."""
    how = {"via": fetched.via}
    if fetched.fallback_from:
        how["fallback_from"] = fetched.fallback_from
    return how


def _failed(source: Source, error: FetchError, clock: Clock) -> DocumentOutcome:
    log.warning("%s: %s", source.id, error)
    return DocumentOutcome(
        document=source.id,
        status="failed",
        checked_at=clock(),
        error_kind=error.kind,
        error=str(error),
        http_status=error.status,
    )


def run_record(summary: RunSummary) -> dict[str, Any]:
    """The run as it is journaled under `_runs/` and printed by `run --json`."""
    return {
        "id": summary.id,
        "started_at": iso(summary.started_at),
        "ended_at": iso(summary.ended_at),
        "counts": {s: summary.count(s) for s in ("new", "changed", "unchanged", "failed")},
        "outcomes": [
            {
                "document": o.document,
                "status": o.status,
                "checked_at": iso(o.checked_at),
                "http_status": o.http_status,
                "etag": o.validators.etag,
                "last_modified": o.validators.last_modified,
                "version": iso(o.version.captured_at) if o.version else None,
                "sha256": o.version.sha256 if o.version else None,
                "snapshot_stored": o.snapshot_stored,
                "added_words": o.change.diff.added_words if o.change else None,
                "removed_words": o.change.diff.removed_words if o.change else None,
                "error_kind": o.error_kind,
                "error": o.error,
            }
            for o in summary.outcomes
        ],
    }
