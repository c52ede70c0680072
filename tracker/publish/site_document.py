"""One document on the report site: its page, its versions' files and a page and a JSON
file for each of its changes (`DocumentData` is what the site's other pages read of it).

`site.build_site` builds every document here, then the pages across documents.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jinja2

from tracker.analysis.change import Change
from tracker.app.history import change_json
from tracker.app.pipeline import Tracker
from tracker.core.models import Source, Version
from tracker.core.times import iso
from tracker.publish import site_layout as layout
from tracker.publish.report import (
    change_views,
    diff_segments,
    imported_label,
    side_by_side,
)
from tracker.publish.search_index import Span, clause_spans
from tracker.publish.site_files import BUILD_DIR, SiteWriter
from tracker.storage.index_rows import compute_change

NO_STATUS: dict[str, Any] = dict.fromkeys(
    ("last_checked", "last_ok", "failing_since", "last_error", "last_error_kind")
)


@dataclass
class DocumentData:
    """One document as the site shows it: its versions, its changes and its health."""

    id: str
    source: Source | None
    title: str
    service: str
    url: str | None
    versions: list[Version]
    status: dict[str, Any]
    changes: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    @property
    def source_url(self) -> str | None:
        """The configured address, as `diff --json` reports it (None once unconfigured)."""
        return self.source.url if self.source else None

    spans: list[Span] = field(default_factory=list)

    @property
    def page(self) -> str:
        return layout.document_page(self.id)

    @property
    def latest_change(self) -> dict[str, Any] | None:
        return self.changes[-1] if self.changes else None

    @property
    def open_flags(self) -> list[dict[str, Any]]:
        """Flags of the latest change: what a reader should look at on this document now."""
        latest = self.latest_change
        return latest["flags"] if latest else []


def web_url(url: str | None) -> str | None:
    """`url` if it is an http(s) address, else None: never a `javascript:` link."""
    if not url or urlsplit(url).scheme not in ("http", "https"):
        return None
    return url


def build_document(
    tracker: Tracker, env: jinja2.Environment, writer: SiteWriter, document: str
) -> DocumentData:
    source = tracker.config.source(document)
    # A document the index does not list yet (a stored, unconfigured one after the index
    # was deleted) is shown as never checked rather than failing the templates.
    row = {**NO_STATUS, **(tracker.index.document(document) or {})}
    versions = tracker.store.versions(document)
    data = DocumentData(
        id=document,
        source=source,
        title=source.title if source else row.get("title") or document,
        service=source.service if source else row.get("service") or "",
        url=web_url(source.url if source else row.get("url")),
        versions=versions,
        status=row,
    )
    for version in versions:
        _copy_version(tracker, writer, version)
    pages = [layout.change_page(document, v.captured_at) for v in versions]
    for number in range(1, len(versions)):
        before, after = versions[number - 1], versions[number]
        neighbours = (
            pages[number - 1] if number > 1 else None,
            pages[number + 1] if number + 1 < len(versions) else None,
        )
        data.changes.append(_change(tracker, env, writer, data, before, after, neighbours))
    data.spans = _spans(tracker, writer, data)
    page = env.get_template("site/document.html").render(
        page=data.page,
        document=data,
        timeline=_timeline(data),
        current_text=tracker.store.read_text(versions[-1]) if versions else "",
    )
    writer.write(data.page, page)
    return data


def _copy_version(tracker: Tracker, writer: SiteWriter, version: Version) -> None:
    store = tracker.store
    writer.copy(
        layout.version_text(version.document, version.captured_at),
        store.resolve_inside(version.path, f"{version.document} text"),
        version.sha256,
    )
    if version.snapshot_path:
        raw = store.resolve_inside(version.snapshot_path, f"{version.document} raw snapshot")
        if raw.exists():
            writer.copy(
                layout.version_raw(version.document, version.captured_at),
                raw,
                version.snapshot_sha256 or version.snapshot_path,
            )


def _change(
    tracker: Tracker,
    env: jinja2.Environment,
    writer: SiteWriter,
    document: DocumentData,
    before: Version,
    after: Version,
    neighbours: tuple[str | None, str | None],
) -> dict[str, Any]:
    page = layout.change_page(document.id, after.captured_at)
    data_path = layout.change_data(document.id, after.captured_at)
    key = hashlib.sha256(
        json.dumps(
            [
                _version_key(before),
                _version_key(after),
                neighbours,
                document.title,
                document.service,
                document.url,
                document.source_url,
            ],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    if writer.is_fresh(page, key) and writer.is_fresh(data_path, key):
        with contextlib.suppress(ValueError, OSError, TypeError):
            entry = dict(json.loads(writer.read(data_path)))
            writer.fresh(page, key)
            writer.fresh(data_path, key)
            return entry
    change = compute_change(tracker.store, before, after, tracker.config.topics)
    writer.stats.computed += 1
    entry = change_entry(change, document)
    html = env.get_template("site/change.html").render(
        **change_page_context(change, document, tracker, neighbours)
    )
    writer.write(page, html, key)
    writer.write(data_path, json.dumps(entry, ensure_ascii=False, indent=1) + "\n", key)
    return entry


def _version_key(version: Version) -> list[Any]:
    return [
        iso(version.captured_at),
        version.sha256,
        version.path,
        version.snapshot_path,
        version.snapshot_sha256,
        version.imported,
        version.extraction,
    ]


def change_entry(change: Change, document: DocumentData) -> dict[str, Any]:
    """The `diff --json` object plus where it lives on the site and what it is about."""
    entry = change_json(change, document.source_url)
    topics = sorted({f.topic for f in change.flags})
    labels = list(dict.fromkeys(f.label for f in change.flags))
    entry.update(
        {
            "url": layout.change_page(change.document, change.after.captured_at),
            "json": layout.change_data(change.document, change.after.captured_at),
            "title": document.title,
            "service": document.service,
            "topics": topics,
            "topic_labels": labels,
        }
    )
    entry["from"]["text_url"] = layout.version_text(change.document, change.before.captured_at)
    entry["to"]["text_url"] = layout.version_text(change.document, change.after.captured_at)
    return entry


def change_page_context(
    change: Change,
    document: DocumentData,
    tracker: Tracker,
    neighbours: tuple[str | None, str | None],
) -> dict[str, Any]:
    topics = tracker.config.topics

    def end(version: Version) -> dict[str, Any]:
        raw = layout.version_raw(change.document, version.captured_at)
        return {
            "when": iso(version.captured_at),
            "at": version.captured_at,
            "text": layout.version_text(change.document, version.captured_at),
            "raw": raw if version.snapshot_path else None,
            "sha256": version.sha256,
            "imported": imported_label(version.imported),
        }

    return {
        "page": layout.change_page(change.document, change.after.captured_at),
        "change": change,
        "document": document,
        **change_views(change, topics),
        "segments": diff_segments(change.diff.ops),
        "rows": side_by_side(change.diff.ops),
        "before": end(change.before),
        "after": end(change.after),
        "previous": neighbours[0],
        "next": neighbours[1],
        "data": layout.change_data(change.document, change.after.captured_at),
    }


def _spans(tracker: Tracker, writer: SiteWriter, document: DocumentData) -> list[Span]:
    """The document's clause spans for search, cached by the list of its versions."""
    key = hashlib.sha256(json.dumps([v.sha256 for v in document.versions]).encode()).hexdigest()
    cache = f"{BUILD_DIR}/search/{document.id}.json"
    if writer.is_fresh(cache, key):
        with contextlib.suppress(ValueError, OSError, TypeError):
            stored = json.loads(writer.read(cache))
            spans = [(int(a), int(b), str(c), str(d)) for a, b, c, d in stored]
            writer.fresh(cache, key)
            return spans
    spans = clause_spans(tracker.store.read_text(v) for v in document.versions)
    writer.write(cache, json.dumps(spans, ensure_ascii=False), key)
    return spans


def _timeline(document: DocumentData) -> list[dict[str, Any]]:
    """Versions newest first, each with the change that led to it."""
    changes = {c["to"]["captured_at"]: c for c in document.changes}
    rows = []
    for version in reversed(document.versions):
        when = iso(version.captured_at)
        rows.append(
            {
                "version": version,
                "when": when,
                "text": layout.version_text(document.id, version.captured_at),
                "raw": layout.version_raw(document.id, version.captured_at)
                if version.snapshot_path
                else None,
                "imported": imported_label(version.imported),
                "change": changes.get(when),
            }
        )
    return rows
