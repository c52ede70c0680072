"""The change view: two consecutive versions of one document, their word diff, clause
changes and topic flags. The report, the site and the digest all read a change through it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.analysis.clauses import NOISE, RESTRUCTURED, ClauseChange, compare_clauses, summarize
from tracker.analysis.clauses import cosmetic_reason as clause_cosmetic_reason
from tracker.analysis.diff import word_diff
from tracker.analysis.segments import segment
from tracker.analysis.topics import Flag, Topic, default_topics, flags_for
from tracker.core.models import COARSE_NOTE, DiffResult, Version


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
        if not self.cosmetic:
            return None
        if self.clauses:
            return clause_cosmetic_reason(self.clauses)
        deleted, inserted = (
            "".join("".join(self.diff.deleted).split()),
            "".join("".join(self.diff.inserted).split()),
        )
        return NOISE if deleted == inserted else RESTRUCTURED

    @property
    def clause_summary(self) -> str:
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
            restructured = self.cosmetic_reason == RESTRUCTURED
            parts.append(RESTRUCTURED if restructured else "whitespace or formatting only")
        where = ""
        if self.diff.sections:
            shown = ", ".join(f"'{s}'" for s in self.diff.sections[:3])
            more = len(self.diff.sections) - 3
            where = f" in {shown}" + (f" and {more} more sections" if more > 0 else "")
        return ", ".join(parts) + where + note


def derive_change(
    before: Version, after: Version, old: str, new: str, topics: Sequence[Topic] | None = None
) -> Change:
    """The word diff, the clause changes and the topic flags between two versions' texts
    (`old`, `new`), read by the caller: from the store, or kept from the check that wrote
    `after`."""
    diff = word_diff(old, new)
    comparison = compare_clauses(segment(old), segment(new))
    clauses = tuple(comparison.changes)
    flags = tuple(flags_for(clauses, default_topics() if topics is None else topics))
    return Change(after.document, before, after, diff, clauses, flags, comparison.coarse)
