"""Questions about a document's past: which versions, which one at a date, what changed."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from tracker.analysis.change import Change
from tracker.app.pipeline import Tracker
from tracker.core.errors import VersionNotFoundError
from tracker.core.models import Version
from tracker.core.times import iso
from tracker.storage.index_rows import compute_change


def versions(tracker: Tracker, document: str) -> list[Version]:
    tracker.require_document(document)
    return tracker.store.versions(document)


def parse_when(text: str) -> datetime:
    """A date (end of that UTC day) or an ISO 8601 time (UTC unless it says otherwise)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise VersionNotFoundError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def find_version(
    tracker: Tracker, document: str, ref: str | None = None, *, at: str | None = None
) -> Version:
    """The version named by `ref` (sha256 prefix, number like -1, or time), or current at `at`."""
    found = versions(tracker, document)
    if not found:
        raise VersionNotFoundError(f"{document}: no version stored yet; run `tos-tracker run`")
    if at is not None:
        moment = parse_when(at)
        earlier = [v for v in found if v.captured_at <= moment]
        if not earlier:
            raise VersionNotFoundError(
                f"{document}: no version at or before {iso(moment)}; "
                f"the first is from {iso(found[0].captured_at)}"
            )
        return earlier[-1]
    if ref is None:
        return found[-1]
    return _resolve(found, document, ref)


def _resolve(found: list[Version], document: str, ref: str) -> Version:
    ref = ref.strip()
    if ref.lstrip("-").isdigit() and len(ref) < 6:
        position = int(ref)
        try:
            if position == 0:
                raise IndexError
            return found[position - 1 if position > 0 else position]
        except IndexError:
            raise VersionNotFoundError(
                f"{document}: no version number {ref} (there are {len(found)};"
                " 1 is the first, -1 the latest)"
            ) from None
    matches = [v for v in found if v.sha256.startswith(ref.lower())]
    if len(matches) == 1 or (matches and len({v.sha256 for v in matches}) == 1):
        return matches[-1]
    if len(matches) > 1:
        raise VersionNotFoundError(f"{document}: {ref!r} matches several versions; give more")
    if "-" in ref or ":" in ref:
        moment = parse_when(ref)
        exact = [v for v in found if v.captured_at == moment]
        if exact:
            return exact[0]
        earlier = [v for v in found if v.captured_at <= moment]
        if earlier:
            return earlier[-1]  # the version current at that time
        raise VersionNotFoundError(
            f"{document}: no version at or before {iso(moment)}; "
            f"the first is from {iso(found[0].captured_at)}"
        )
    raise VersionNotFoundError(
        f"{document}: no version matches {ref!r} (give a sha256 prefix, a number, or a time)"
    )


def change_for(
    tracker: Tracker, document: str, *, before: str | None = None, after: str | None = None
) -> Change | None:
    """The change into `after` (default: latest version) from `before` (default: the one before)."""
    found = versions(tracker, document)
    if len(found) < 2 and before is None:
        return None
    to_version = find_version(tracker, document, after) if after else found[-1]
    if before:
        from_version = find_version(tracker, document, before)
    else:
        earlier = [v for v in found if v.captured_at < to_version.captured_at]
        if not earlier:
            return None
        from_version = earlier[-1]
    return compute_change(tracker.store, from_version, to_version, tracker.config.topics)


def version_json(version: Version, previous: Version | None = None) -> dict[str, Any]:
    return {
        "captured_at": iso(version.captured_at),
        "sha256": version.sha256,
        "bytes": version.bytes,
        "path": version.path,
        "snapshot": version.snapshot_path,
        "snapshot_sha256": version.snapshot_sha256,
        "previous": iso(previous.captured_at) if previous else None,
    }


def change_json(change: Change, source_url: str | None = None) -> dict[str, Any]:
    """The object `diff --json` prints; later outputs (site, digests) reuse it."""
    return {
        "document": change.document,
        "document_url": source_url,
        "from": _end(change.before),
        "to": _end(change.after),
        "added_words": change.diff.added_words,
        "removed_words": change.diff.removed_words,
        "sections": list(change.diff.sections),
        "summary": change.summary,
        "coarse": change.diff.coarse,
        "clauses_coarse": change.clauses_coarse,
        "extraction_changed": change.extraction_changed,
        "cosmetic": change.cosmetic,
        "cosmetic_reason": change.cosmetic_reason,
        "clause_summary": change.clause_summary,
        "clauses": [c.to_json() for c in change.clauses],
        "flags": [f.to_json() for f in change.flags],
        "inserted": change.diff.inserted,
        "deleted": change.diff.deleted,
    }


def _end(version: Version) -> dict[str, Any]:
    return {
        "captured_at": iso(version.captured_at),
        "sha256": version.sha256,
        "path": version.path,
        "snapshot": version.snapshot_path,
    }


def blame(tracker: Tracker, document: str, needle: str) -> list[dict[str, Any]]:
    """When a clause containing `needle` appeared, each time it changed, and when it went.

    Matching ignores case, whitespace and markdown emphasis. Each event carries the
    version's time, hashes and the paths of its text and raw snapshot.
    """
    from tracker.analysis.segments import clean_inline, cosmetic_key, segment

    def norm(text: str) -> str:
        return " ".join(cosmetic_key(clean_inline(text)).split()).casefold()

    key = norm(needle)
    if not key:
        raise VersionNotFoundError("give the text of a clause to look for")
    events: list[dict[str, Any]] = []
    previous: tuple[str, ...] = ()
    previous_version: Version | None = None
    for version in versions(tracker, document):
        text = tracker.store.read_text(version)
        hits = tuple(c.text for c in segment(text) if key in norm(c.text))
        event = None
        if hits and not previous:
            event = "appeared"
        elif hits and hits != previous:
            event = "changed"
        elif not hits and previous:
            event = "disappeared"
        if event:
            events.append(
                {
                    "event": event,
                    **_end(version),
                    "clauses": list(hits or previous),
                    "last_present": iso(previous_version.captured_at)
                    if event == "disappeared" and previous_version
                    else None,
                    "first_version": previous_version is None,
                }
            )
        previous, previous_version = hits, version
    return events
