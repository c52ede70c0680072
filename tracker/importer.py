"""Backfilling history: dated files, a git repository's commits, or the Wayback Machine.

Imported captures go through the same extraction, store and diff as live fetches,
at their own past times, and carry an `imported` record (source, where exactly,
original capture time) in their metadata, the index and the reports.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import FetchError, TrackerError
from .extract import extract_text, extraction_key, normalize_text
from .fetch import Fetcher
from .models import FetchResult, Source, Validators
from .pipeline import Tracker
from .store import atomic_write, iso, parse_iso

log = logging.getLogger(__name__)

TEXT_EXTRACTION = "text-import"  # versions imported as text, not extracted by us
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
_NAME_TIME = [
    (re.compile(r"^(\d{4})(\d{2})(\d{2})T?(\d{2})(\d{2})(\d{2})Z?$"), "compact"),
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T_ ](\d{2})[:-]?(\d{2})[:-]?(\d{2})Z?$"), "iso"),
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), "date"),
]


@dataclass(frozen=True)
class ImportItem:
    """One past version to import: its bytes, kind, time and provenance."""

    captured_at: datetime
    body: bytes
    kind: str  # html or text
    imported: dict[str, Any]
    original_url: str | None = None


@dataclass
class ImportReport:
    document: str
    seen: int = 0
    added: int = 0
    versions: int = 0
    skipped: int = 0
    failed: int = 0

    def line(self) -> str:
        return (
            f"{self.document}: {self.seen} found, {self.added} captures added"
            f" ({self.versions} new versions), {self.skipped} already present or unchanged"
            + (f", {self.failed} failed" if self.failed else "")
        )


def time_from_name(name: str) -> datetime | None:
    """The UTC time a file name gives: 2024-05-02, 2024-05-02T12-00-00Z, 20240502T120000Z…"""
    stem = name.split(".")[0]
    for pattern, _ in _NAME_TIME:
        match = pattern.match(stem)
        if match:
            y, mo, d, h, mi, s = ([int(p) for p in match.groups()] + [0, 0, 0])[:6]
            try:
                return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
            except ValueError:
                return None
    return None


def kind_of(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def folder_items(folder: Path) -> tuple[list[ImportItem], list[str]]:
    """Dated files in `folder`, oldest first, and the names that were not understood.

    A `manifest.json` in the folder or its parent (the corpus layout: a list of
    entries with `file` and `captured_at`) gives the true capture time and source.
    """
    if not folder.is_dir():
        raise TrackerError(f"{folder}: not a folder")
    manifest = _manifest_entries(folder)
    items, ignored = [], []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name == "manifest.json":
            continue
        kind = kind_of(path.name)
        entry = manifest.get(path.name)
        when = parse_iso(entry["captured_at"]) if entry and entry.get("captured_at") else None
        when = when or time_from_name(path.name)
        if kind is None or when is None:
            ignored.append(path.name)
            continue
        imported: dict[str, Any] = {"source": "folder", "file": str(path.resolve())}
        if entry:
            keep = (
                "source_repo",
                "source_commit",
                "source_path",
                "original_url",
                "date",
                "date_basis",
                "stated_date",
                "note",
            )
            imported["manifest"] = {k: entry[k] for k in keep if entry.get(k)}
        items.append(
            ImportItem(
                when,
                path.read_bytes(),
                kind,
                imported,
                entry.get("original_url") if entry else None,
            )
        )
    items.sort(key=lambda i: i.captured_at)
    return items, ignored


def _manifest_entries(folder: Path) -> dict[str, dict[str, Any]]:
    for candidate in (folder / "manifest.json", folder.parent / "manifest.json"):
        if not candidate.is_file():
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except ValueError:
            continue
        entries = data.get("captures", data) if isinstance(data, dict) else data
        out = {}
        for entry in entries if isinstance(entries, list) else []:
            file = str(entry.get("file", ""))
            if Path(file).parent.name in ("", folder.name) or candidate.parent == folder:
                out[Path(file).name] = entry
        if out:
            return out
    return {}


def git_items(repo: Path, path: str) -> list[ImportItem]:
    """Every committed version of one file, dated by commit time, oldest first."""
    try:
        log_out = subprocess.run(
            ["git", "-C", str(repo), "log", "--reverse", "--format=%H %ct", "--", path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise TrackerError(f"{repo}: cannot read git history of {path}: {detail.strip()}") from None
    kind = kind_of(path)
    if kind is None:
        raise TrackerError(f"{path}: import needs .html, .md or .txt files")
    items = []
    for line in log_out.splitlines():
        commit, stamp = line.split()
        shown = subprocess.run(
            ["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, check=False
        )
        if shown.returncode != 0:
            continue  # the file was deleted in this commit
        items.append(
            ImportItem(
                datetime.fromtimestamp(int(stamp), UTC),
                shown.stdout,
                kind,
                {
                    "source": "git",
                    "repository": str(repo.resolve()),
                    "commit": commit,
                    "path": path,
                },
            )
        )
    return items


def wayback_captures(
    fetcher: Fetcher, base: str, url: str, since: str | None = None, until: str | None = None
) -> list[tuple[str, str, str]]:
    """(timestamp, original URL, mimetype) of distinct 200 captures, oldest first (CDX API)."""
    query = (
        f"{base.rstrip('/')}/cdx/search/cdx?url={quote(url, safe='')}&output=json"
        "&fl=timestamp,original,statuscode,digest,mimetype&filter=statuscode:200&collapse=digest"
    )
    if since:
        query += f"&from={since}"
    if until:
        query += f"&to={until}"
    result = fetcher.fetch(Source("wayback/cdx", "", "", query, browser_fallback=False))
    try:
        rows = json.loads(result.body or b"[]")
    except ValueError:
        raise TrackerError(f"the CDX API at {base} did not answer JSON") from None
    if not rows:
        return []
    header, *data = rows
    at = {name: header.index(name) for name in ("timestamp", "original", "mimetype")}
    return [(r[at["timestamp"]], r[at["original"]], r[at["mimetype"]]) for r in data]


def import_items(
    tracker: Tracker,
    document: str,
    items: Iterable[ImportItem],
    *,
    progress: Callable[[ImportItem, str], None] | None = None,
) -> ImportReport:
    """Store `items` in `document`'s history and re-index it; safe to run again."""
    source = tracker.config.source(document)
    report = ImportReport(document)
    with tracker.store.lock():
        for item in items:
            report.seen += 1
            outcome = _import_one(tracker, document, source, item)
            if outcome == "added-version":
                report.added += 1
                report.versions += 1
            elif outcome == "added":
                report.added += 1
            else:
                report.skipped += 1
            if progress:
                progress(item, outcome)
        tracker.index.rebuild_document(tracker.store, document)
    return report


def _import_one(tracker: Tracker, document: str, source: Source | None, item: ImportItem) -> str:
    if item.kind == "html":
        if source is None:
            raise TrackerError(
                f"{document} is not configured: add it to tracker.toml (with its select and"
                " remove selectors) before importing HTML"
            )
        text = extract_text(
            item.body, select=source.select, remove=source.remove, noise=source.noise
        )
        extraction = extraction_key(source.select, source.remove, source.noise)
        content_type = "text/html"
    else:
        text = normalize_text(item.body.decode("utf-8", errors="replace"))
        extraction = TEXT_EXTRACTION
        content_type = "text/markdown; charset=utf-8"
    url = source.url if source else (item.original_url or item.imported.get("file", ""))
    fetched = FetchResult(
        source_id=document,
        url=url,
        final_url=item.original_url or url,
        status=200,
        fetched_at=item.captured_at,
        body=item.body,
        content_type=content_type,
        encoding=None,
        validators=Validators(),
    )
    imported = {**item.imported, "captured_at": iso(item.captured_at)}
    describe = {"service": source.service, "title": source.title} if source else None
    capture = tracker.store.record_import(
        document, fetched, text, extraction=extraction, imported=imported, describe=describe
    )
    if capture is None:
        return "skipped"
    return "added-version" if capture.version is not None else "added"


def wayback_items(
    tracker: Tracker,
    document: str,
    *,
    base: str = "https://web.archive.org",
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    delay: float = 2.0,
    fetcher: Fetcher | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[ImportItem]:
    """Archived captures of the document's URL, fetched politely, skipping those done.

    Progress is kept in `_imports/<document>/wayback.json`, so an interrupted
    backfill resumes where it stopped.
    """
    source = tracker.config.source(document)
    if source is None:
        raise TrackerError(
            f"{document} is not configured; its URL is what the archive is asked for"
        )
    fetcher = fetcher or Fetcher(tracker.config.fetch)
    state_path = tracker.store.root / "_imports" / document / "wayback.json"
    done: set[str] = set()
    if state_path.exists():
        done = set(json.loads(state_path.read_text(encoding="utf-8")).get("done", []))
    captures = wayback_captures(fetcher, base, source.url, since, until)
    todo = [c for c in captures if c[0] not in done]
    if limit is not None:
        todo = todo[:limit]
    for n, (stamp, original, mimetype) in enumerate(todo):
        if n:
            sleep(delay)
        raw_url = f"{base.rstrip('/')}/web/{stamp}id_/{original}"
        try:
            result = fetcher.fetch(Source(document, "", "", raw_url, browser_fallback=False))
        except FetchError as exc:
            log.warning("%s: wayback capture %s failed: %s", document, stamp, exc)
            continue
        when = time_from_name(stamp)
        if when is None:
            continue
        yield ImportItem(
            when,
            result.body,
            "html" if "html" in (mimetype or "html") else "text",
            {"source": "wayback", "timestamp": stamp, "archive_url": raw_url},
            original,
        )
        done.add(stamp)
        atomic_write(state_path, json.dumps({"done": sorted(done)}, indent=1).encode())
