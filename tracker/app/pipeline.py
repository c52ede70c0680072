"""One run: fetch → extract → store → diff → index, with errors kept per document.

A failing document never stops the others and never touches its history: the
error is recorded on the run and the last good version stays current.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tracker.analysis.change import Change, derive_change
from tracker.analysis.noise import flip_note, flip_of
from tracker.app.outcomes import DocumentOutcome, RunSummary
from tracker.config.settings import Config
from tracker.core import failures
from tracker.core.errors import FetchError, StoreError, UnknownDocumentError
from tracker.core.hashes import sha256_hex
from tracker.core.models import FetchResult, Source, Validators, Version
from tracker.core.statuses import CHANGED, FAILED, FLIP, NEW, OUTCOMES, UNCHANGED
from tracker.core.times import iso
from tracker.extract.engine import extract_text, extraction_key, normalize_text
from tracker.fetch import walls
from tracker.fetch.guards import GuardSettings, check_response, check_text
from tracker.fetch.http import Clock, Fetcher, utcnow
from tracker.storage.captures import Capture, DocumentState
from tracker.storage.index import Index
from tracker.storage.store import Store

log = logging.getLogger("tracker.pipeline")  # the name log lines have always shown

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
        configured = set(ids)  # a set: a list here made the check quadratic in documents
        return ids + [d for d in self.store.documents() if d not in configured]

    def require_document(self, document: str) -> None:
        if document not in self.known_documents():
            known = ", ".join(self.known_documents()) or "(none)"
            raise UnknownDocumentError(
                f"unknown document {document!r}; configured or stored: {known}"
            )


def select_sources(config: Config, only: Sequence[str] | None) -> list[Source]:
    """The documents a run checks, each once: two threads must never record one document."""
    if not only:
        return list(config.sources)
    chosen: dict[str, Source] = {}
    for doc_id in only:
        source = config.source(doc_id)
        if source is None:
            known = ", ".join(s.id for s in config.sources)
            raise UnknownDocumentError(f"unknown document {doc_id!r}; configured: {known}")
        chosen.setdefault(source.id, source)
    return list(chosen.values())


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
    index.recover_imports(store)  # of an import that was killed
    store.remove_leftovers(s.id for s in sources)  # of a run that was killed
    # Rows the index lacks (a run killed while recording) and rows derived by other rules
    # are derived after the checks: one huge change must not hold up checking the rest.
    lagging = index.sync(store, [s.id for s in sources], defer=True)
    started = clock()
    run_id = store.new_run_id(started)
    # Journaled before anything else is written, so a run killed part-way still shows
    # (as not ended), and a read-only or full store fails here, once, with nothing done.
    opening = started_record(run_id, started, sources)
    store.write_run(opening)
    index.apply_run(opening)
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher(tracker.config.fetch, clock=clock)
    sent = index.all_validators()  # one query; the fetch threads never touch SQLite

    def check(source: Source) -> Recorded | None:
        """Fetch and record one document, on a fetch thread; None when cancelled."""
        try:
            # Read once: every later stage takes it (or what it read) and reads no more.
            state = store.state(source.id, tracker.config.flip_window)
            extraction = extraction_key(source.select, source.remove, source.noise)
            comparable = _comparable(source, state.before, extraction)
            validators = sent.get(source.id) if comparable else None
            result = fetcher.fetch_one(source, validators)
            if isinstance(result, FetchError):
                if result.kind == failures.CANCELLED:
                    return None
                return Recorded(_failed(source, result, clock))
            sent_validators = validators or Validators()
            return _record(tracker, source, result, state, sent_validators, extraction)
        except StoreError as exc:  # disk full, an unreadable capture: not kept
            return Recorded(_failed(source, FetchError(failures.STORE, str(exc)), clock))
        except Exception as exc:  # one odd page must never stop the run
            log.exception("%s: could not record the fetched page", source.id)
            error = FetchError(failures.ERROR, f"could not process the page: {exc!r}"[:500])
            return Recorded(_failed(source, error, clock))

    outcomes: dict[str, DocumentOutcome] = {}
    stopping = False
    try:
        with index.batched():
            for source, recorded in fetcher.map(sources, check, idle=index.commit):
                if recorded is None:
                    continue
                if recorded.capture is not None:
                    try:
                        index.add_capture(recorded.capture, recorded.change)
                    except Exception as exc:  # one document's row: never the whole run
                        # The files stand; the next run's sync indexes them again.
                        log.exception("%s: could not index the new capture", source.id)
                        error = FetchError(
                            failures.ERROR, f"could not index the page: {exc!r}"[:500]
                        )
                        recorded = Recorded(_failed(source, error, clock))
                if progress:
                    progress(recorded.outcome)
                outcomes[source.id] = _kept(recorded.outcome)
                if stop is not None and stop.is_set() and not stopping:
                    # The checks under way finish and are recorded; the rest never begin.
                    log.warning("stop requested: ending the run after %s", source.id)
                    fetcher.cancel()
                    stopping = True
    finally:
        if own_fetcher:
            fetcher.close()
    ordered = tuple(outcomes[s.id] for s in sources if s.id in outcomes)
    summary = RunSummary(id=run_id, started_at=started, ended_at=clock(), outcomes=ordered)
    record = run_record(summary)
    record["status"] = "finished"
    record["interrupted"] = len(ordered) < len(sources)
    store.write_run(record)
    index.apply_run(record)
    _derive_deferred(index, store, lagging)
    return summary


def _derive_deferred(index: Index, store: Store, lagging: list[str]) -> None:
    """Derive what the index lacked when the run began, now that every document is checked:
    the rows of documents whose files were ahead of it, or, if it was derived with other
    analysis rules or topics, all of it (which covers those documents too)."""
    if not index.analysis_current():
        log.warning("the index was derived with other analysis rules or topics; deriving it again")
        index.reanalyse(store)
        return
    index.catch_up_all(store, lagging)


def _kept(outcome: DocumentOutcome) -> DocumentOutcome:
    """The outcome as the run's summary keeps it: without the word diff's unchanged text.

    The equal runs hold the whole text of the document; a run over thousands of
    documents would keep them all until it ends. What was inserted and deleted, counts,
    sections, clause changes and flags stay; the full diff is one `history.change_for`
    (or `tos-tracker diff`) away.
    """
    change = outcome.change
    if change is None or all(op for op, _ in change.diff.ops):
        return outcome
    edits = tuple((op, text) for op, text in change.diff.ops if op)
    return replace(outcome, change=replace(change, diff=replace(change.diff, ops=edits)))


@dataclass(frozen=True)
class Recorded:
    """What checking one document gave: its outcome, and the capture to index, if any."""

    outcome: DocumentOutcome
    capture: Capture | None = None
    change: Change | None = None


def _comparable(source: Source, latest: Capture | None, extraction: str) -> bool:
    """Whether to ask "has it changed?": only about the same URL, held in a copy made
    with the same extraction settings (`extraction`, their key); otherwise the body is
    needed."""
    return (
        latest is not None
        and latest.meta.get("url") == source.url
        and latest.meta.get("extraction") == extraction
    )


def _record(
    tracker: Tracker,
    source: Source,
    fetched: FetchResult,
    state: DocumentState,
    sent: Validators,
    extraction: str,
) -> Recorded:
    """Judge and store one fetched page against the document's `state`; runs on a fetch
    thread. The state read before the fetch is the only read of the document's
    metadata: judging, writing and the change all take it (or the verdict's text).

    Touches only this document's files (each document is checked by one thread);
    the index is written by the caller, on the run's own thread.
    """
    store = tracker.store
    base = DocumentOutcome(
        document=source.id,
        status=UNCHANGED,
        checked_at=fetched.fetched_at,
        http_status=fetched.status,
        validators=fetched.validators,
    )
    if fetched.not_modified:
        # A 304 may omit the validators; keep the ones we sent for next time.
        base = replace(
            base,
            validators=Validators(
                etag=fetched.validators.etag or sent.etag,
                last_modified=fetched.validators.last_modified or sent.last_modified,
            ),
        )
        current = state.current
        if current is None:
            return Recorded(
                replace(
                    base,
                    status=FAILED,
                    error_kind=failures.HTTP,
                    error="HTTP 304 but no stored copy to compare with",
                )
            )
        return Recorded(replace(base, version=current))
    # The fetcher has looked for walls already, with the response's headers.
    verdict = judge(tracker, source, fetched, state, extraction=extraction, walls_checked=True)
    describe = {"service": source.service, "title": source.title}
    if verdict.flip is not None:
        describe["flip_of"] = iso(verdict.flip.captured_at)
    written = store.record_check(
        state,
        fetched,
        verdict.text,
        pending=verdict.pending,
        extraction=extraction,
        describe={**describe, **_how(fetched)},
        new_version=verdict.flip is None,
    )
    return _outcome(tracker, base, state, verdict, written)


def _outcome(
    tracker: Tracker,
    base: DocumentOutcome,
    state: DocumentState,
    verdict: Verdict,
    written: tuple[Capture | None, Version | None] | None,
) -> Recorded:
    """What the check gave, from what it judged and wrote: the outcome, and the capture
    and change for the index (the change from the texts in hand, none read again)."""
    if verdict.status == FAILED:
        assert verdict.error is not None
        error = verdict.error
        return Recorded(replace(base, status=FAILED, error_kind=error.kind, error=str(error)))
    if written is None or verdict.text is None:
        # The bytes of the last capture: its text and history stand.
        return Recorded(replace(base, version=state.current))
    capture, current = written
    previous, flip = state.previous, verdict.flip
    change: Change | None = None
    if capture is not None and capture.version is not None and previous is not None:
        # The two texts as the store reads them back, without reading either again.
        old, new = state.previous_text or "", _as_read(verdict.text)
        change = derive_change(previous, capture.version, old, new, tracker.config.topics)
    if capture is None or capture.version is None:
        status = UNCHANGED
    elif previous is None:
        status = NEW
    else:
        status = CHANGED
    outcome = replace(
        base,
        status=status,
        version=current,
        change=change,
        snapshot_stored=capture is not None,
        note=flip_note(flip) if flip is not None and capture is not None else None,
    )
    return Recorded(outcome, capture, change)


def _as_read(text: str) -> str:
    """A text as `Store.read_text` gives it back once written (line ends as `\n`)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


@dataclass(frozen=True)
class Verdict:
    """What one capture is: failed (by kind), unchanged, a flip, or a new version.

    `text` is None when the bytes equal the capture before (nothing to extract or
    store); `pending` is the shrink guard's state after this capture ({} for none).
    """

    status: str  # "failed", "unchanged", "flip" or "new"
    pending: dict[str, Any]
    error: FetchError | None = None
    text: str | None = None
    flip: Version | None = None


TEXT_EXTRACTION = "text-import"  # versions imported as text, not extracted by us


def judge(
    tracker: Tracker,
    source: Source,
    fetched: FetchResult,
    state: DocumentState,
    *,
    extraction: str,
    walls_checked: bool,
) -> Verdict:
    """Decide what one capture is, the same way for live runs and every kind of import.

    In order: is it a page of text from the site asked (`check_response`); a bot or
    login wall (unless the fetcher has looked already, `walls_checked`); the bytes of
    the capture before (unchanged, nothing parsed); does extraction succeed and leave
    text that is not a site's error page (`error_page`); is the text plausible
    (`too_short`, or `shrank` until the same text is seen `confirm_shrink` times in a
    row); a flip back to a recent version; unchanged; new.
    Reads the store (the previous text) but writes nothing: the caller stores.
    """
    refused = check_response(source, fetched)
    if refused is None and not walls_checked and extraction != TEXT_EXTRACTION:
        refused = walls.detect(
            fetched.status, {}, fetched.body, fetched.final_url, source.url, archived=True
        )
    if refused is not None:
        return Verdict(FAILED, state.pending, refused)
    before = state.before
    if (
        before is not None
        and before.snapshot.sha256 == sha256_hex(fetched.body)
        and before.meta.get("extraction") == extraction
    ):
        # The bytes of the last capture, read the same way: its text, checks and
        # history stand. Whatever was held back is not confirmed by it.
        return Verdict(UNCHANGED, {})
    try:
        if extraction == TEXT_EXTRACTION:
            text = normalize_text(fetched.body.decode("utf-8", errors="replace"))
        else:
            text = extract_text(
                fetched.body,
                encoding=fetched.encoding,
                select=source.select,
                remove=source.remove,
                noise=source.noise,
            )
    except FetchError as exc:
        return Verdict(FAILED, state.pending, exc)
    if not text.strip():
        error = FetchError(
            failures.EMPTY, "the page has no readable text (is it rendered by JavaScript?)"
        )
        return Verdict(FAILED, state.pending, error)
    if extraction != TEXT_EXTRACTION:
        # A site's own error page served as a page ("This page isn't available"):
        # recorded, it would read as the terms deleted, then restored.
        error_page = walls.error_page(text)
        if error_page is not None:
            return Verdict(FAILED, state.pending, error_page)
    previous = state.previous
    settings = guard_settings(tracker, source)
    digest = sha256_hex(text.encode("utf-8"))
    pending = state.pending
    repeats = int(pending.get("count", 0)) if pending.get("sha256") == digest else 0
    suspect = check_text(text, state.previous_text, settings, repeats=repeats)
    if suspect is not None:
        held = {"kind": "shrank", "sha256": digest, "count": repeats + 1}
        return Verdict(FAILED, held if suspect.kind == failures.SHRANK else {}, suspect)
    flip = flip_of(state.recent, digest, extraction, tracker.config.flip_window)
    if flip is not None:
        return Verdict(FLIP, {}, text=text, flip=flip)
    if previous is not None and previous.sha256 == digest and previous.extraction == extraction:
        return Verdict(UNCHANGED, {}, text=text)
    return Verdict(NEW, {}, text=text)


def guard_settings(tracker: Tracker, source: Source) -> GuardSettings:
    """The plausibility thresholds of one document: its own, or `[fetch]`'s."""
    fetch = tracker.config.fetch
    return GuardSettings(
        min_chars=fetch.min_chars if source.min_chars is None else source.min_chars,
        max_shrink=fetch.max_shrink if source.max_shrink is None else source.max_shrink,
        confirm_shrink=fetch.confirm_shrink,
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
        status=FAILED,
        checked_at=clock(),
        error_kind=error.kind,
        error=str(error),
        http_status=error.status,
    )


def started_record(run_id: str, started: datetime, sources: list[Source]) -> dict[str, Any]:
    """The journal of a run that has begun; the finished record replaces it."""
    return {
        "id": run_id,
        "started_at": iso(started),
        "ended_at": None,
        "status": "started",
        "interrupted": True,
        "documents": [s.id for s in sources],
        "counts": dict.fromkeys(OUTCOMES, 0),
        "outcomes": [],
    }


def run_record(summary: RunSummary) -> dict[str, Any]:
    """The run as it is journaled under `_runs/` and printed by `run --json`."""
    return {
        "id": summary.id,
        "started_at": iso(summary.started_at),
        "ended_at": iso(summary.ended_at),
        "counts": {s: summary.count(s) for s in OUTCOMES},
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
                "note": o.note,
            }
            for o in summary.outcomes
        ],
    }
