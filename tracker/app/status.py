"""Health of an unattended tracker: the last runs, and which documents fail since when.

`status` is meant for a monitor: it exits non-zero when a document has been
failing for longer than `max_failing`, so cron mail or an uptime check can alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tracker.core.statuses import FAILED
from tracker.core.times import format_duration, parse_iso

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
        if row.get("last_status") == FAILED:
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


@dataclass(frozen=True)
class StatusReport:
    """What `status` shows: the last runs and every document's health at `checked_at`."""

    checked_at: datetime
    max_failing: timedelta
    max_stale: timedelta
    runs: list[dict[str, Any]]
    documents: list[DocumentHealth]

    @property
    def alerting(self) -> list[DocumentHealth]:
        return [d for d in self.documents if d.alert]

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_failing_seconds": int(self.max_failing.total_seconds()),
            "max_stale_seconds": int(self.max_stale.total_seconds()),
            "alert": bool(self.alerting),
            "runs": self.runs,
            "documents": [d.to_json() for d in self.documents],
        }

    def lines(self, alarm: Callable[[str], str] = str) -> list[str]:
        """The page as text; `alarm` styles FAILING and STALE (red on a terminal)."""
        out = ["Last runs:" if self.runs else "No runs recorded yet."]
        for r in self.runs:
            if r["ended_at"] is None:
                out.append(f"  {r['started_at']}  not finished: still running, or killed")
                continue
            out.append(
                f"  {r['started_at']}  {r['documents']} documents: {r['new']} new,"
                f" {r['changed']} changed, {r['unchanged']} unchanged, {r['failed']} failed"
            )
        out.append("Documents:")
        stale = format_duration(self.max_stale)
        for d in self.documents:
            if d.failing_since:
                state = alarm("FAILING") if d.alert else "failing"
                kind = (d.last_error or {}).get("kind")
                message = (d.last_error or {}).get("message")
                detail = f"{state} since {d.failing_since} ({kind}: {message})"
            elif d.stale:
                state = alarm("STALE")
                detail = f"{state}: not checked since {d.last_checked} (longer than {stale})"
            elif d.last_ok:
                detail = f"ok, last checked {d.last_checked}"
            else:
                detail = "never checked"
            out.append(f"  {d.id:<36} {detail}")
        return out

    def warnings(self) -> list[str]:
        """One line per kind of alert, for stderr."""
        out = []
        failing_for, stale = format_duration(self.max_failing), format_duration(self.max_stale)
        failing = [d.id for d in self.alerting if not d.stale]
        if failing:
            out.append(
                f"{len(failing)} document(s) failing for longer than {failing_for}: "
                + ", ".join(failing)
            )
        late = [d.id for d in self.alerting if d.stale]
        if late:
            out.append(
                f"{len(late)} document(s) not checked for longer than {stale}"
                " (is the cron job or scheduler still running?): " + ", ".join(late)
            )
        return out


def status_report(
    tracker: Tracker, now: datetime, max_failing: timedelta, max_stale: timedelta, runs: int
) -> StatusReport:
    """The last `runs` runs and the health of every document, as `status` shows them."""
    recent = tracker.index.recent_runs(runs)
    documents = health(tracker, now, max_failing, max_stale)
    return StatusReport(now, max_failing, max_stale, recent, documents)
