"""What a run did: one outcome per document, and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tracker.analysis.change import Change
from tracker.core.models import Validators, Version
from tracker.core.statuses import FAILED


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
        return self.count(FAILED)
