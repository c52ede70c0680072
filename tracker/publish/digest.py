"""Email digests: which changes each digest has not sent yet, the message, the sent ledger.

Exactly once is kept by files, like everything else in the store: each digest's
ledger (`snapshots/_digests/<id>.json`) lists the changes it has mailed. The order
is build → send → record, so a server that refuses or is down leaves nothing
marked and the next run sends it all; a crash after the server accepted the
message but before the ledger was written sends it again next time (a
duplicate, never a loss).
"""

from __future__ import annotations

import dataclasses
import logging
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Any

from tracker.analysis.change import Change
from tracker.analysis.segments import clean_inline
from tracker.app.pipeline import Tracker
from tracker.config.settings import DigestSettings
from tracker.core.errors import ConfigError, StoreError
from tracker.core.files import atomic_write
from tracker.core.statuses import FAILED, NOTHING, SENT
from tracker.core.times import iso, parse_iso, stem_for
from tracker.publish import site_layout
from tracker.publish.report import flag_views, human_time, imported_label, template_env
from tracker.storage.index_rows import compute_change

log = logging.getLogger("tracker.digest")  # the name log lines have always shown

MAX_FLAGS = 10  # flagged clauses shown per change; the change page has them all
MAX_CLAUSES = 15  # other clause changes listed per change
MAX_SUBJECT_TOPICS = 3
DEFAULT_SENDER = "tos-tracker <tos-tracker@localhost>"  # for --dry-run/--outbox without [smtp]
WRAP = 76


@dataclass(frozen=True)
class ChangeKey:
    """What identifies a change for a digest: the same pair of texts at the same time."""

    document: str
    from_sha256: str
    to_sha256: str
    to_captured_at: str  # ISO 8601, as the index and the ledger write it

    @classmethod
    def of(cls, change: Change) -> ChangeKey:
        return cls(
            change.document,
            change.before.sha256,
            change.after.sha256,
            iso(change.after.captured_at),
        )

    def to_json(self) -> dict[str, str]:
        return {
            "document": self.document,
            "from_sha256": self.from_sha256,
            "to_sha256": self.to_sha256,
            "to_captured_at": self.to_captured_at,
        }


@dataclass
class Ledger:
    """What one digest has sent, and where its history starts.

    `window_start` is fixed on the digest's first run (the start of its first period),
    so a store backfilled with years of history does not arrive as one huge mail;
    `--all` reaches past it.
    """

    digest: str
    started_at: str
    window_start: str | None
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sent_keys(self) -> set[ChangeKey]:
        return {ChangeKey(**{k: e[k] for k in ChangeKey.__dataclass_fields__}) for e in self.sent}

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "started_at": self.started_at,
            "window_start": self.window_start,
            "sent": self.sent,
        }


def ledger_path(tracker: Tracker, digest_id: str) -> Path:
    return tracker.store.digest_ledger_path(digest_id)


def load_ledger(tracker: Tracker, digest_id: str) -> Ledger | None:
    try:
        data = tracker.store.digest_ledger(digest_id)
        if data is None:
            return None
        return Ledger(data["digest"], data["started_at"], data["window_start"], data["sent"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{ledger_path(tracker, digest_id)}: unreadable digest ledger ({exc}); fix or"
            " remove it (removing it starts the digest afresh)"
        ) from None


def save_ledger(tracker: Tracker, ledger: Ledger) -> None:
    tracker.store.write_digest_ledger(ledger.digest, ledger.to_json())


def new_ledger(settings: DigestSettings, now: datetime, *, include_all: bool) -> Ledger:
    start = None if include_all else iso(now - settings.window)
    return Ledger(settings.id, iso(now), start)


# --- which changes ---------------------------------------------------------------------------


def pending(
    tracker: Tracker,
    settings: DigestSettings,
    ledger: Ledger,
    *,
    include_all: bool = False,
    damaged: dict[str, str] | None = None,
) -> list[Change]:
    """Changes this digest has not sent and whose filters they pass, flagged first, newest first.

    The index lists the candidates cheaply; only those that pass are diffed again
    (with the configured topics, so the flags shown are today's). A document whose
    stored files are damaged is left out (its changes stay unsent, for the digest
    after it is repaired), named in `damaged` with why.
    """
    damaged = {} if damaged is None else damaged
    sent = ledger.sent_keys
    since = None if include_all else ledger.window_start
    wanted_topics = set(settings.topics)
    changes: list[Change] = []
    versions: dict[str, dict[str, Any]] = {}
    for row in tracker.index.changes():
        key = ChangeKey(
            row["document"], row["from_sha256"], row["to_sha256"], row["to_captured_at"]
        )
        if key in sent or (since is not None and key.to_captured_at < since):
            continue
        if settings.documents and key.document not in settings.documents:
            continue
        if row["cosmetic"] and not settings.cosmetic:
            continue
        if wanted_topics and not wanted_topics & set(row["flagged_topics"]):
            continue
        if key.document in damaged:
            continue
        try:
            change = _pending_change(tracker, key, row, versions)
        except StoreError as exc:
            damaged[key.document] = str(exc)
            continue
        if change is None:
            continue
        if wanted_topics and not any(f.topic in wanted_topics for f in change.flags):
            continue
        changes.append(change)
    changes.sort(key=lambda c: (c.after.captured_at, c.document), reverse=True)
    changes.sort(key=lambda c: not c.flags)
    return changes


def _pending_change(
    tracker: Tracker,
    key: ChangeKey,
    row: dict[str, Any],
    versions: dict[str, dict[str, Any]],
) -> Change | None:
    """The change an index row names, diffed again; None when the index is behind."""
    if key.document not in versions:
        versions[key.document] = {
            iso(v.captured_at): v for v in tracker.store.versions(key.document)
        }
    before = versions[key.document].get(row["from_captured_at"])
    after = versions[key.document].get(key.to_captured_at)
    if (
        before is None
        or after is None
        or (before.sha256, after.sha256)
        != (
            key.from_sha256,
            key.to_sha256,
        )
    ):
        log.warning("%s: the index is behind the store; skipping %s", key.document, key)
        return None
    return compute_change(tracker.store, before, after, tracker.config.topics)


# --- the message -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """A built digest, ready to send, print or file."""

    settings: DigestSettings
    changes: tuple[Change, ...]
    subject: str
    text: str
    html: str
    message: EmailMessage

    @property
    def keys(self) -> list[ChangeKey]:
        return [ChangeKey.of(c) for c in self.changes]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


def subject(settings: DigestSettings, changes: Sequence[Change]) -> str:
    """'tos-tracker daily digest: 3 policy changes, 1 flagged: law enforcement'."""
    count = len(changes)
    line = f"tos-tracker {settings.period} digest: {count} policy change{'s' if count != 1 else ''}"
    flagged = [c for c in changes if c.flags]
    if flagged:
        labels = list(dict.fromkeys(f.label for c in flagged for f in c.flags))
        shown = ", ".join(labels[:MAX_SUBJECT_TOPICS]) + (
            ", …" if len(labels) > MAX_SUBJECT_TOPICS else ""
        )
        line += f", {len(flagged)} flagged: {shown}"
    return line


def build(
    tracker: Tracker,
    settings: DigestSettings,
    changes: Sequence[Change],
    *,
    now: datetime,
    previous: str | None = None,
    window_start: str | None = None,
) -> Digest:
    """Render both parts from the same views and wrap them in a multipart/alternative mail."""
    html_env = template_env(tracker.config.templates)
    text_env = html_env.overlay(autoescape=False)  # plain text: nothing to escape
    text_env.filters["wrap"] = _wrap
    views = [change_view(tracker, c) for c in changes]
    title = subject(settings, changes)
    context = {
        "digest": settings,
        "subject": title,
        "changes": views,
        "flagged": sum(1 for c in changes if c.flags),
        "previous": parse_iso(previous) if previous else None,
        "window_start": parse_iso(window_start) if window_start else None,
        "now": now,
        "site_url": tracker.config.site.site_url,
        "site_title": tracker.config.site.title,
    }
    text = text_env.get_template("digest.txt").render(**context)
    html = html_env.get_template("digest.html").render(**context)
    sender = tracker.config.smtp.sender if tracker.config.smtp else DEFAULT_SENDER
    message = EmailMessage()
    message["Subject"] = title
    message["From"] = sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = formatdate(now.timestamp(), usegmt=True)
    # An explicit domain: without one make_msgid asks DNS for this host's name.
    domain = getaddresses([sender])[0][1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"digest.{settings.id}", domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return Digest(settings, tuple(changes), title, text, html, message)


def change_view(tracker: Tracker, change: Change) -> dict[str, Any]:
    """What both templates show of one change; the text forms are made here, once."""
    config = tracker.config
    source = config.source(change.document)
    flags = flag_views(change, config.topics)
    flagged = {(f.kind, f.text, f.section) for f in change.flags}
    # A mail lists what was said differently; moves and cosmetic edits are only counted.
    others = [
        c
        for c in change.clauses
        if not c.cosmetic and c.kind != "moved" and (c.kind, c.text, c.section) not in flagged
    ]
    moved = sum(1 for c in change.clauses if c.kind == "moved" and not c.cosmetic)
    cosmetic = sum(1 for c in change.clauses if c.cosmetic)
    unlisted = [
        f"{n} {what} clause{'s' if n != 1 else ''}"
        for n, what in ((moved, "moved"), (cosmetic, "cosmetically changed"))
        if n
    ]
    page = site_layout.change_page(change.document, change.after.captured_at)
    root = tracker.store.root
    return {
        "change": change,
        "document": change.document,
        "title": source.title if source else change.document,
        "service": source.service if source else None,
        "source_url": source.url if source else None,
        "before": _end(change.before, root),
        "after": _end(change.after, root),
        "link": site_layout.absolute(config.site.site_url, page),
        "flags": [{**v, "plain": _plain_parts(v["parts"])} for v in flags[:MAX_FLAGS]],
        "more_flags": max(0, len(flags) - MAX_FLAGS),
        "clauses": [
            {
                "kind": c.kind,
                "section": c.section,
                "ops": c.ops,
                "text": clean_inline(c.text),
                "plain": _plain_clause(c.kind, c.ops, c.text),
            }
            for c in others[:MAX_CLAUSES]
        ],
        "more_clauses": max(0, len(others) - MAX_CLAUSES),
        "unlisted": ", ".join(unlisted) if not change.cosmetic else "",
    }


def _end(version: Any, root: Path) -> dict[str, Any]:
    return {
        "when": version.captured_at,
        "iso": iso(version.captured_at),
        "human": human_time(version.captured_at),
        "sha256": version.sha256,
        "text_path": str(root / version.path),
        "imported": imported_label(version.imported),
    }


def _plain_parts(parts: list[tuple[int, list[tuple[str, str | None]]]]) -> str:
    """A flagged clause as text: [-deleted-] and {+inserted+}, like `tos-tracker diff`."""
    out = []
    for op, runs in parts:
        text = "".join(t for t, _ in runs)
        out.append("{+" + text + "+}" if op == 1 else "[-" + text + "-]" if op == -1 else text)
    return " ".join("".join(out).split())


def _plain_clause(kind: str, ops: tuple[tuple[int, str], ...], text: str) -> str:
    if kind == "modified" and ops:
        return _plain_parts([(op, [(t, None)]) for op, t in ops])
    return clean_inline(text)


def _wrap(text: str, indent: int = 0, width: int = WRAP) -> str:
    """Wrap a paragraph for the plain-text part, every line indented; words never broken."""
    pad = " " * indent
    return textwrap.fill(
        text,
        width=width,
        initial_indent=pad,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )


# --- running the digests ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What `digest` did for one configured digest."""

    digest: str
    status: str  # SENT, NOTHING, DRY_RUN, OUTBOX or FAILED (the modes keep their name)
    changes: tuple[ChangeKey, ...] = ()
    subject: str | None = None
    message_id: str | None = None
    recipients: tuple[str, ...] = ()
    path: Path | None = None
    error: str | None = None
    first_run: bool = False
    built: Digest | None = None
    # "<document>: <why>" for documents left out because a stored file is damaged
    skipped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "status": self.status,
            "subject": self.subject,
            "message_id": self.message_id,
            "recipients": list(self.recipients),
            "path": str(self.path) if self.path else None,
            "error": self.error,
            "first_run": self.first_run,
            "changes": [k.to_json() for k in self.changes],
            "skipped": list(self.skipped),
        }


Sender = Callable[[EmailMessage], Any]


def select_digests(tracker: Tracker, ids: Sequence[str] | None) -> list[DigestSettings]:
    configured = tracker.config.digests
    if not configured:
        raise ConfigError("no digests configured: add a [[digests]] table (id, to) to tracker.toml")
    if not ids:
        return list(configured)
    by_id = {d.id: d for d in configured}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ConfigError(f"unknown digest {unknown[0]!r}; configured: {', '.join(by_id)}")
    return [by_id[i] for i in dict.fromkeys(ids)]


def run_digests(
    tracker: Tracker,
    ids: Sequence[str] | None = None,
    *,
    mode: str = "send",
    outbox: Path | None = None,
    include_all: bool = False,
    now: datetime | None = None,
    send: Sender | None = None,
    wait: float = 0.0,
) -> list[Outcome]:
    """Build every chosen digest that has something new and send it, print it or file it.

    `mode` is "send", "dry-run" or "outbox"; only "send" writes ledgers. The store's
    lock is held throughout, so two digests (or a run) never interleave with the
    ledger. A failed send is an outcome, not an exception, so one digest's refusal
    never stops the others.
    """
    chosen = select_digests(tracker, ids)
    now = now or datetime.now(UTC)
    if mode not in ("send", "dry-run", "outbox") or (mode == "outbox") != (outbox is not None):
        raise ValueError(f"mode {mode!r} with outbox {outbox!r}")
    if mode == "send" and send is None:
        smtp = tracker.config.smtp
        if smtp is None:
            raise ConfigError(
                "no [smtp] table in the configuration: add one to send digests"
                " (or use --dry-run or --outbox DIR)"
            )
        from tracker.publish.mail import password
        from tracker.publish.mail import send as smtp_send

        password(smtp)  # a missing password is a configuration error, before any work

        def through_smtp(message: EmailMessage) -> Any:
            return smtp_send(message, smtp)

        send = through_smtp

    outcomes = []
    with tracker.store.lock(wait):
        tracker.index.sync(tracker.store, tracker.known_documents())
        for settings in chosen:
            outcomes.append(_one(tracker, settings, mode, outbox, include_all, now, send))
    return outcomes


def _one(
    tracker: Tracker,
    settings: DigestSettings,
    mode: str,
    outbox: Path | None,
    include_all: bool,
    now: datetime,
    send: Sender | None,
) -> Outcome:
    ledger = load_ledger(tracker, settings.id)
    first = ledger is None
    if ledger is None:
        ledger = new_ledger(settings, now, include_all=include_all)
        if mode == "send":
            # Fix the first window now, so a failed first send is retried with the same one.
            save_ledger(tracker, ledger)
    damaged: dict[str, str] = {}
    changes = pending(tracker, settings, ledger, include_all=include_all, damaged=damaged)
    for document, why in damaged.items():
        log.warning("digest %s: left out %s: %s", settings.id, document, why)
    skipped = tuple(f"{d}: {why}" for d, why in damaged.items())
    if not changes:
        return Outcome(settings.id, NOTHING, first_run=first, skipped=skipped)
    previous = max((e["sent_at"] for e in ledger.sent), default=None)
    window_start = None if include_all or previous else ledger.window_start
    digest = build(
        tracker, settings, changes, now=now, previous=previous, window_start=window_start
    )
    base = Outcome(
        settings.id,
        mode,
        tuple(digest.keys),
        digest.subject,
        digest.message_id,
        settings.to,
        first_run=first,
        built=digest,
        skipped=skipped,
    )
    if mode == "dry-run":
        return base
    if mode == "outbox":
        assert outbox is not None
        path = _outbox_path(outbox, settings.id, now)
        atomic_write(path, bytes(digest.message))
        return dataclasses.replace(base, path=path)
    assert send is not None
    from tracker.publish.mail import SendError

    try:
        send(digest.message)
    except SendError as exc:
        return dataclasses.replace(base, status=FAILED, error=str(exc))
    sent_at = iso(now)
    ledger.sent.extend(
        {**k.to_json(), "sent_at": sent_at, "message_id": digest.message_id} for k in digest.keys
    )
    save_ledger(tracker, ledger)
    return dataclasses.replace(base, status=SENT)


def _outbox_path(folder: Path, digest_id: str, now: datetime) -> Path:
    stem = f"{digest_id}-{stem_for(now)}"
    path, n = folder / f"{stem}.eml", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.eml"
    return path
