"""Frozen dataclasses handed from one pipeline stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracker.analysis.clauses import ClauseChange
    from tracker.analysis.topics import Flag


# Said of a change whose clause analysis reached its bound: clauses it had not paired
# yet are listed as added and removed, so the reader knows to look at the word diff.
COARSE_NOTE = "coarse: too large to match every clause; the rest listed as added and removed"


@dataclass(frozen=True)
class NoiseFilters:
    """Configured noise filters, applied inside extraction and part of its identity.

    `replace` holds (regular expression, replacement) pairs run in order over the
    extracted text; `remove` CSS selectors dropped before extraction; `drop_params`
    globs of query parameters dropped from link targets.
    """

    replace: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    drop_params: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.replace or self.remove or self.drop_params)

    def plus(self, other: NoiseFilters) -> NoiseFilters:
        """These filters, then `other`'s (the global ones, then a document's own)."""
        return NoiseFilters(
            self.replace + other.replace,
            self.remove + other.remove,
            self.drop_params + other.drop_params,
        )

    def spec(self) -> dict[str, Any]:
        return {
            "replace": [list(pair) for pair in self.replace],
            "remove": list(self.remove),
            "drop_params": list(self.drop_params),
        }


@dataclass(frozen=True)
class Source:
    """One tracked document as configured."""

    id: str
    service: str
    title: str
    url: str
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    robots: bool | None = None  # None: [fetch] robots decides; False: the operator may check it
    allow_hosts: tuple[str, ...] = ()  # other sites a redirect may lead to
    min_chars: int | None = None  # overrides [fetch] min_chars
    max_shrink: float | None = None  # overrides [fetch] max_shrink
    noise: NoiseFilters = NoiseFilters()  # global [noise] filters plus the document's own
    browser: bool = False  # render in headless Chromium instead of a plain HTTP fetch
    browser_fallback: bool = True  # render in the browser when the plain fetch is blocked


@dataclass(frozen=True)
class Validators:
    """What the server said about its copy, echoed back for conditional requests."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """A successful HTTP exchange (or browser render): new bytes, or `not_modified` for a 304."""

    source_id: str
    url: str
    final_url: str
    status: int
    fetched_at: datetime
    body: bytes
    content_type: str | None
    encoding: str | None
    validators: Validators
    not_modified: bool = False
    attempts: int = 1
    elapsed: float = 0.0
    redirects: tuple[str, ...] = ()  # the addresses passed through before final_url
    via: str = "http"  # "http" or "browser"
    fallback_from: str | None = None  # the plain fetch's error kind when the browser took over


@dataclass(frozen=True)
class Snapshot:
    """A stored raw response (gzip on disk) and what we know about how it was fetched."""

    document: str
    captured_at: datetime
    sha256: str
    path: str
    bytes: int
    url: str
    final_url: str
    status: int
    content_type: str | None
    encoding: str | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Version:
    """A stored extracted text; `snapshot_sha256` names the raw response it came from."""

    document: str
    captured_at: datetime
    sha256: str
    path: str
    bytes: int
    snapshot_sha256: str | None
    snapshot_path: str | None
    extraction: str | None = None  # key of the select/remove settings that made this text
    imported: dict[str, Any] | None = field(default=None, hash=False)  # backfill source


@dataclass(frozen=True)
class DiffResult:
    """A word diff of two texts, as (op, text) runs with op -1, 0 or +1."""

    ops: tuple[tuple[int, str], ...]
    added_words: int
    removed_words: int
    sections: tuple[str, ...]
    coarse: bool = False
    seconds: float = 0.0

    @property
    def inserted(self) -> list[str]:
        return [text for op, text in self.ops if op == 1]

    @property
    def deleted(self) -> list[str]:
        return [text for op, text in self.ops if op == -1]


@dataclass(frozen=True)
class Change:
    """Two consecutive versions of one document and the diff between them."""

    document: str
    before: Version
    after: Version
    diff: DiffResult
    clauses: tuple[ClauseChange, ...] = ()
    flags: tuple[Flag, ...] = ()
    clauses_coarse: bool = False  # clause matching reached a bound (see clauses.compare)

    @property
    def cosmetic(self) -> bool:
        """Only cosmetic things changed: dates, counters, whitespace or quote style, link
        targets, numbering, heading level or case, list nesting (ranked last, never flagged)."""
        return all(c.cosmetic for c in self.clauses)

    @property
    def cosmetic_reason(self) -> str | None:
        """What a cosmetic change changed ("only link targets changed"); None when the
        change is not cosmetic. Without clause changes, the texts differ in whitespace or
        in markup alone ("##### Title" became "## Title")."""
        from tracker.analysis.clauses import NOISE, RESTRUCTURED, cosmetic_reason

        if not self.cosmetic:
            return None
        if self.clauses:
            return cosmetic_reason(self.clauses)
        deleted, inserted = (
            "".join("".join(self.diff.deleted).split()),
            "".join("".join(self.diff.inserted).split()),
        )
        return NOISE if deleted == inserted else RESTRUCTURED

    @property
    def clause_summary(self) -> str:
        from tracker.analysis.clauses import summarize

        return summarize(self.clauses)

    @property
    def extraction_changed(self) -> bool:
        """True when the two texts came from different select/remove settings."""
        return (
            self.before.extraction is not None
            and self.after.extraction is not None
            and self.before.extraction != self.after.extraction
        )

    @property
    def summary(self) -> str:
        """'2 clauses added, 1 modified in 'Rules' (+80/−15 words)'."""
        note = " (after the extraction settings changed)" if self.extraction_changed else ""
        if self.clauses_coarse:
            note += f" ({COARSE_NOTE})"
        if self.clauses:
            counts = f"+{self.diff.added_words}/−{self.diff.removed_words} words"
            return f"{self.clause_summary} ({counts}){note}"
        parts = []
        if self.diff.added_words:
            parts.append(f"{self.diff.added_words} words added")
        if self.diff.removed_words:
            parts.append(f"{self.diff.removed_words} words removed")
        if not parts:
            from tracker.analysis.clauses import RESTRUCTURED

            restructured = self.cosmetic_reason == RESTRUCTURED
            parts.append(RESTRUCTURED if restructured else "whitespace or formatting only")
        where = ""
        if self.diff.sections:
            shown = ", ".join(f"'{s}'" for s in self.diff.sections[:3])
            more = len(self.diff.sections) - 3
            where = f" in {shown}" + (f" and {more} more sections" if more > 0 else "")
        return ", ".join(parts) + where + note


@dataclass(frozen=True)
class DocumentOutcome:
    """What one run did for one document: status is new, changed, unchanged or failed."""

    document: str
    status: str
    checked_at: datetime
    version: Version | None = None
    change: Change | None = None
    error_kind: str | None = None
    error: str | None = None
    http_status: int | None = None
    validators: Validators = field(default_factory=Validators)
    snapshot_stored: bool = False
    note: str | None = None  # e.g. why a new text was not a change (the page flips)


@dataclass(frozen=True)
class RunSummary:
    """One run over the configured documents.

    An outcome's `change` here keeps only the inserted and deleted runs of its word
    diff, not the unchanged text between them: the progress callback sees the whole
    diff as each document is recorded (see `pipeline._kept`).
    """

    id: str
    started_at: datetime
    ended_at: datetime
    outcomes: tuple[DocumentOutcome, ...]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")
