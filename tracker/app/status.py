"""Health of an unattended tracker: the last runs, and which documents fail since when.

`status` is meant for a monitor: it exits non-zero when a document has been
failing for longer than `max_failing`, so cron mail or an uptime check can alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tracker.core.times import parse_iso

if TYPE_CHECKING:
    from tracker.app.pipeline import Tracker


@dataclass(frozen=True)
class DocumentHealth:
    id: str
    configured: bool
    last_checked: str | None
    last_ok: str | None
    failing_since: str | None
    last_error: dict[str, str | None] | None
    alert: bool
    stale: bool = False  # configured, checked before, but not within max_stale

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "configured": self.configured,
            "last_checked": self.last_checked,
            "last_ok": self.last_ok,
            "failing_since": self.failing_since,
            "last_error": self.last_error,
            "alert": self.alert,
            "stale": self.stale,
        }


def health(
    tracker: Tracker,
    now: datetime,
    max_failing: timedelta,
    max_stale: timedelta | None = None,
) -> list[DocumentHealth]:
    """Every configured (and stored) document's health.

    A document alerts when it has failed for longer than `max_failing`, or when it
    is configured but has not been checked for longer than `max_stale`: a tracker
    whose cron job silently stopped looks healthy otherwise.
    """
    out = []
    for doc_id in tracker.known_documents():
        row = tracker.index.document(doc_id) or {}
        failing = row.get("failing_since")
        error = None
        if row.get("last_status") == "failed":
            error = {"kind": row.get("last_error_kind"), "message": row.get("last_error")}
        checked = row.get("last_checked")
        configured = tracker.config.source(doc_id) is not None
        stale = bool(
            max_stale is not None
            and configured
            and checked
            and now - parse_iso(checked) > max_stale
        )
        alert = stale or (failing is not None and now - parse_iso(failing) > max_failing)
        out.append(
            DocumentHealth(
                id=doc_id,
                configured=configured,
                last_checked=checked,
                last_ok=row.get("last_ok"),
                failing_since=failing,
                last_error=error,
                alert=alert,
                stale=stale,
            )
        )
    return out
