"""Rendering changes for people: HTML change reports (Jinja2) and terminal diffs.

Everything that comes from a tracked page is untrusted, so the environment
autoescapes every template, including user templates searched first.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import click
import jinja2

from tracker import __version__
from tracker.analysis.change import Change
from tracker.analysis.clauses import cosmetic_reason
from tracker.analysis.segments import clean_inline
from tracker.analysis.topics import Topic
from tracker.app.pipeline import Tracker
from tracker.core.errors import StoreError
from tracker.core.files import atomic_write
from tracker.core.models import Source
from tracker.core.times import iso, stem_for
from tracker.storage.index_rows import compute_change

log = logging.getLogger("tracker.report")  # the name log lines have always shown

CONTEXT_LINES = 3


def packaged_templates() -> Path:
    """Templates inside the installed package, or the repository's `templates/` folder."""
    inside = Path(str(resources.files("tracker"))) / "templates"
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parents[2] / "templates"


def template_env(user_dir: Path | None = None) -> jinja2.Environment:
    search = [str(user_dir)] if user_dir else []
    search.append(str(packaged_templates()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["version"] = __version__
    env.filters["when"] = human_time
    return env


def human_time(moment: datetime) -> str:
    """'2 May 2024, 12:00 UTC': for people; machine-readable ISO goes in datetime=""."""
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


@dataclass(frozen=True)
class Segment:
    """A run of the diff as shown: equal, inserted, deleted, or skipped unchanged lines."""

    kind: str
    text: str
    lines: int = 0


def diff_segments(ops: tuple[tuple[int, str], ...], context: int = CONTEXT_LINES) -> list[Segment]:
    """Turn diff runs into display segments, folding long unchanged stretches."""
    segments: list[Segment] = []
    last = len(ops) - 1
    for position, (op, text) in enumerate(ops):
        if op in (1, -1):
            segments.extend(_edit(text, "ins" if op == 1 else "del"))
        else:
            segments.extend(_fold(text, context, first=position == 0, final=position == last))
    return segments


def _edit(text: str, kind: str) -> list[Segment]:
    """An insertion or deletion, with line breaks at its edges shown outside the mark."""
    core = text.strip("\n")
    if not core:
        return [Segment(kind, text)]
    start = text.index(core)
    lead, trail = text[:start], text[start + len(core) :]
    out = [Segment("eq", lead)] if lead else []
    out.append(Segment(kind, core))
    if trail:
        out.append(Segment("eq", trail))
    return out


def _fold(text: str, context: int, *, first: bool, final: bool) -> list[Segment]:
    lines = text.split("\n")
    keep_head = 0 if first else context + 1
    keep_tail = 0 if final else context + 1
    if len(lines) <= keep_head + keep_tail + 2:
        return [Segment("eq", text)]
    head = "\n".join(lines[:keep_head])
    tail = "\n".join(lines[len(lines) - keep_tail :])
    hidden = lines[keep_head : len(lines) - keep_tail]
    out = []
    if keep_head:
        out.append(Segment("eq", head + "\n"))
    out.append(Segment("skip", "\n".join(hidden), lines=len(hidden)))
    if keep_tail:
        out.append(Segment("eq", "\n" + tail))
    return out


Run = tuple[int, str]  # (op, text): 0 unchanged, 1 inserted, -1 deleted


@dataclass(frozen=True)
class Row:
    """One row of the side-by-side view; a side is None where the other has an extra line."""

    left: tuple[Run, ...] | None
    right: tuple[Run, ...] | None
    skipped: int = 0  # > 0: a fold standing for this many unchanged lines
    left_no: int | None = None  # line numbers in the old and new text
    right_no: int | None = None

    @property
    def changed(self) -> bool:
        if self.left is None or self.right is None:
            return True
        if any(op for op, _ in self.left) or any(op for op, _ in self.right):
            return True
        return "".join(t for _, t in self.left) != "".join(t for _, t in self.right)


def side_by_side(ops: tuple[tuple[int, str], ...], context: int = CONTEXT_LINES) -> list[Row]:
    """Old and new text in two aligned columns, unchanged stretches folded.

    Lines end together at an unchanged line break; lines ended by deleted or inserted
    breaks before it are extra lines of one side, shown against a blank.
    """
    rows: list[Row] = []
    left: list[Run] = []
    right: list[Run] = []
    extra_left: list[tuple[Run, ...]] = []
    extra_right: list[tuple[Run, ...]] = []
    numbers = [0, 0]

    def add(old: tuple[Run, ...] | None, new: tuple[Run, ...] | None) -> None:
        numbers[0] += old is not None
        numbers[1] += new is not None
        rows.append(
            Row(
                old,
                new,
                left_no=numbers[0] if old is not None else None,
                right_no=numbers[1] if new is not None else None,
            )
        )

    def flush() -> None:
        for index in range(max(len(extra_left), len(extra_right))):
            add(
                extra_left[index] if index < len(extra_left) else None,
                extra_right[index] if index < len(extra_right) else None,
            )
        extra_left.clear()
        extra_right.clear()

    for op, text in ops:
        for number, part in enumerate(text.split("\n")):
            if number:
                if op == 0:
                    flush()
                    add(tuple(left), tuple(right))
                    left, right = [], []
                elif op == -1:
                    extra_left.append(tuple(left))
                    left = []
                else:
                    extra_right.append(tuple(right))
                    right = []
            if part:
                if op == 0 and not left and not right:
                    flush()  # unchanged text starts a line: one side's extra lines end here
                if op <= 0:
                    left.append((op, part))
                if op >= 0:
                    right.append((op, part))
    if left:
        extra_left.append(tuple(left))
    if right:
        extra_right.append(tuple(right))
    flush()
    return _fold_rows(rows, context)


def _fold_rows(rows: list[Row], context: int) -> list[Row]:
    near = [False] * len(rows)
    for position, row in enumerate(rows):
        if row.changed:
            for close in range(max(0, position - context), min(len(rows), position + context + 1)):
                near[close] = True
    out: list[Row] = []
    hidden = 0
    for row, keep in zip(rows, near, strict=True):
        if keep:
            if hidden:
                out.append(Row(None, None, skipped=hidden))
                hidden = 0
            out.append(row)
        else:
            hidden += 1
    if hidden:
        out.append(Row(None, None, skipped=hidden))
    return out


# --- HTML report ---------------------------------------------------------------------------


def highlight(text: str, topics: Sequence[Topic]) -> list[tuple[str, str | None]]:
    """Split `text` into runs, each marked with the topic whose pattern it matches (or None)."""
    spans: list[tuple[int, int, str]] = []
    for topic in topics:
        spans.extend((m.start(), m.end(), topic.id) for m in topic.regex.finditer(text))
    spans.sort(key=lambda s: (s[0], -s[1]))
    runs: list[tuple[str, str | None]] = []
    at = 0
    for start, end, topic_id in spans:
        if start < at:
            continue  # overlaps a longer match already marked
        if start > at:
            runs.append((text[at:start], None))
        runs.append((text[start:end], topic_id))
        at = end
    if at < len(text):
        runs.append((text[at:], None))
    return runs


def change_views(change: Change, topics: Sequence[Topic]) -> dict[str, Any]:
    """What a change page shows of a change's clauses, the same in the report and the
    site: flags first, the real clause changes with topics marked, and the cosmetic ones
    counted with the reason they are cosmetic."""
    cosmetic = [c for c in change.clauses if c.cosmetic]
    return {
        "flags": flag_views(change, topics),
        "clauses": [
            {"change": c, "runs": highlight(clean_inline(c.text), topics)}
            for c in change.clauses
            if not c.cosmetic
        ],
        "cosmetic_clauses": len(cosmetic),
        "cosmetic_why": cosmetic_reason(cosmetic),
    }


def flag_views(change: Change, topics: Sequence[Topic]) -> list[dict[str, Any]]:
    """Flags grouped by clause, as the templates show them: labels, kind, marked runs.

    A modified clause is shown as its word diff, so the deleted words that raised the
    flag are visible; each run is marked with the topics that match inside it.
    """
    by_id = {t.id: t for t in topics}
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for flag in change.flags:
        group = groups.setdefault(
            (flag.kind, flag.text, flag.section, flag.ops),
            {
                "kind": flag.kind,
                "section": flag.section,
                "text": flag.text,
                "ops": flag.ops,
                "labels": [],
                "topics": [],
            },
        )
        if flag.label not in group["labels"]:
            group["labels"].append(flag.label)
        if flag.topic in by_id and by_id[flag.topic] not in group["topics"]:
            group["topics"].append(by_id[flag.topic])
    views = []
    for group in groups.values():
        if group["kind"] == "modified" and group["ops"]:
            parts = [(op, highlight(text, group["topics"])) for op, text in group["ops"]]
        else:
            parts = [(0, highlight(clean_inline(group["text"]), group["topics"]))]
        views.append({**group, "parts": parts})
    return views


def change_page_name(change: Change) -> str:
    return "/".join((*change.document.split("/"), stem_for(change.after.captured_at) + ".html"))


def write_report(
    tracker: Tracker, out_dir: Path, documents: list[str] | None = None
) -> tuple[Path, list[Path]]:
    """Write one HTML page per change and an index; return the index and the change pages."""
    env = template_env(tracker.config.templates)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = documents or tracker.known_documents()
    pages: list[Path] = []
    listing: list[dict[str, Any]] = []
    for document in docs:
        source = tracker.config.source(document)
        try:
            versions = tracker.store.versions(document)
            changes = [
                compute_change(tracker.store, before, after, tracker.config.topics)
                for before, after in itertools.pairwise(versions)
            ]
        except StoreError as exc:  # one damaged document never stops the report
            log.warning("report: left out %s: %s", document, exc)
            continue
        entries: list[dict[str, Any]] = []
        for change in changes:
            name = change_page_name(change)
            page = out_dir / name
            html = env.get_template("change.html").render(
                **change_context(change, source, tracker, page.parent)
            )
            atomic_write(page, html.encode("utf-8"))
            pages.append(page)
            entries.append({"change": change, "href": name})
        entries.reverse()
        # Real changes first, newest first; cosmetic ones (dates, counters) ranked last.
        entries.sort(key=lambda e: e["change"].cosmetic)
        listing.append(
            {
                "id": document,
                "source": source,
                "versions": versions,
                "entries": entries,
                "current_href": _rel(tracker.store.root / versions[-1].path, out_dir)
                if versions
                else None,
            }
        )
    index = out_dir / "index.html"
    html = env.get_template("report_index.html").render(documents=listing, iso=iso)
    atomic_write(index, html.encode("utf-8"))
    return index, pages


def change_context(
    change: Change, source: Source | None, tracker: Tracker, page_dir: Path
) -> dict[str, Any]:
    store_root = tracker.store.root

    def link(path: str | None) -> str | None:
        return _rel(store_root / path, page_dir) if path else None

    depth = len(change.document.split("/"))
    topics = tracker.config.topics
    return {
        "change": change,
        **change_views(change, topics),
        "source": source,
        "title": source.title if source else change.document,
        "segments": diff_segments(change.diff.ops),
        "before": {
            "when": iso(change.before.captured_at),
            "text": link(change.before.path),
            "snapshot": link(change.before.snapshot_path),
            "sha256": change.before.sha256,
            "imported": imported_label(change.before.imported),
        },
        "after": {
            "when": iso(change.after.captured_at),
            "text": link(change.after.path),
            "snapshot": link(change.after.snapshot_path),
            "sha256": change.after.sha256,
            "imported": imported_label(change.after.imported),
        },
        "home": "../" * depth + "index.html",
    }


def imported_label(imported: dict[str, Any] | None) -> str | None:
    """'imported from git (commit 1a2b3c4d5e6f)' for a backfilled version, else None."""
    if not imported:
        return None
    source = imported.get("source", "an archive")
    detail = {
        "git": f"commit {str(imported.get('commit', ''))[:12]}",
        "wayback": f"Wayback Machine capture {imported.get('timestamp', '')}",
        "folder": Path(str(imported.get("file", ""))).name,
    }.get(source, "")
    origin = (imported.get("manifest") or {}).get("source_repo")
    extra = f"; originally {origin}" if origin else ""
    return f"imported from {source}" + (f" ({detail}{extra})" if detail else "")


def public_imported(imported: dict[str, Any] | None) -> dict[str, Any] | None:
    """An `imported` record as published (site, JSON): the same fields, but a local
    file or repository by its name alone, never the absolute path it was imported from
    on the machine that ran the import."""
    if not imported:
        return imported
    public = dict(imported)
    for key in ("file", "repository"):
        if isinstance(public.get(key), str):
            public[key] = PurePosixPath(public[key].replace("\\", "/")).name
    return public


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


# --- terminal ------------------------------------------------------------------------------


def terminal_diff(change: Change, *, color: bool, context: int = 1) -> str:
    """A word diff for the terminal: [-deleted-]{+inserted+}, changed lines with context."""
    head = [
        f"{change.document}: {iso(change.before.captured_at)} → {iso(change.after.captured_at)}",
        f"{change.summary}" + (" [cosmetic]" if change.cosmetic and change.clauses else ""),
    ]
    for flag in change.flags:
        line = f"Flagged: {flag.label} — {flag.kind}: {_shorten(clean_inline(flag.text))}"
        head.append(click.style(line, fg="magenta", bold=True) if color else line)
    head.append("")
    body: list[str] = []
    for segment in diff_segments(change.diff.ops, context=context):
        if segment.kind == "eq":
            body.append(segment.text)
        elif segment.kind == "skip":
            body.append(f"… {segment.lines} unchanged lines …")
        elif segment.kind == "ins":
            marked = "{+" + segment.text + "+}"
            body.append(click.style(marked, fg="green", bold=True) if color else marked)
        else:
            marked = "[-" + segment.text + "-]"
            body.append(click.style(marked, fg="red", strikethrough=True) if color else marked)
    return "\n".join(head) + "".join(body).rstrip("\n") + "\n"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
