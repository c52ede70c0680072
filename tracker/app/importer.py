"""Backfilling history: dated files, a git repository's commits, or the Wayback Machine.

Imported captures go through the same decision as live fetches (`pipeline.judge`:
failures by kind, walls, plausibility guards, flip rule), the same store and diff, at
their own past times, and carry an `imported` record (source, where exactly, original
capture time) in their metadata, the index and the reports. A capture that is not the
document is skipped and counted by kind; it never stops the import.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from tracker.app.pipeline import TEXT_EXTRACTION, DocumentState, Tracker, judge
from tracker.config.values import document_id_problem as config_id_problem
from tracker.config.values import nested_in
from tracker.core import failures
from tracker.core.errors import ArgumentError, ConfigError, FetchError, TrackerError
from tracker.core.files import read_bytes
from tracker.core.models import FetchResult, Source, Validators, Version
from tracker.core.statuses import FAILED, FLIP, NEW, PRESENT, UNCHANGED
from tracker.core.times import iso, parse_iso
from tracker.extract.engine import extraction_key
from tracker.fetch.http import Fetcher, utcnow
from tracker.storage.captures import Capture
from tracker.storage.index_rows import compute_change

LABELS = {NEW: "new version", FLIP: "flip: capture stored, no version"}
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones differ; a day ahead is not that
__all__ = ["TEXT_EXTRACTION", "ImportItem", "ImportReport", "import_items"]

log = logging.getLogger("tracker.importer")  # the name log lines have always shown

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
    error: FetchError | None = None  # could not be read at all (a bad gzip, a failed download)


@dataclass
class ImportReport:
    """What an import did; `failures` counts the captures skipped as not the document."""

    document: str
    seen: int = 0
    added: int = 0
    versions: int = 0
    skipped: int = 0
    failed: int = 0
    flips: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    failed_captures: list[tuple[str, str, str]] = field(default_factory=list)  # time, kind, why

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.failures.items()))
        return (
            f"{self.document}: {self.seen} found, {self.added} captures added"
            f" ({self.versions} new versions), {self.skipped} already present or unchanged"
            + (f", {self.flips} flips back to a recent version" if self.flips else "")
            + (f", {self.failed} failed ({kinds})" if self.failed else "")
        )

    def fail(self, item: ImportItem, error: FetchError) -> None:
        self.failed += 1
        self.failures[error.kind] = self.failures.get(error.kind, 0) + 1
        self.failed_captures.append((iso(item.captured_at), error.kind, str(error)))

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "found": self.seen,
            "added": self.added,
            "versions": self.versions,
            UNCHANGED: self.skipped,
            "flips": self.flips,
            FAILED: self.failed,
            "failures": dict(sorted(self.failures.items())),
            "failed_captures": [
                {"captured_at": t, "kind": k, "error": e} for t, k, e in self.failed_captures
            ],
        }


def document_id_problem(document: str) -> str | None:
    """Why `document` cannot be imported into, by the rule ids in tracker.toml follow
    (`config.document_id_problem`), or None."""
    problem = config_id_problem(document)
    return None if problem is None else f"{document!r} is not a document id: it {problem}"


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
    """html or text by the file's suffix (under a `.gz`, which is read decompressed)."""
    suffix = Path(name.removesuffix(".gz").removesuffix(".GZ")).suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def folder_items(
    folder: Path, links: list[str] | None = None
) -> tuple[list[ImportItem], list[str]]:
    """Dated files in `folder`, oldest first, and the names that were not understood.

    A `manifest.json` in the folder or its parent (the corpus layout: a list of
    entries with `file` and `captured_at`) gives the true capture time and source.
    Symbolic links in the folder are never followed (a link to a secret would be
    imported and published): their names go to `links`, for the caller to report.
    """
    if not folder.is_dir():
        raise TrackerError(f"{folder}: not a folder")
    manifest = _manifest_entries(folder)
    items, ignored = [], []
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            if links is not None:
                links.append(path.name)
            else:
                log.warning("%s: a symbolic link; not imported (links are never followed)", path)
            continue
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
        try:
            data = read_bytes(path, follow=False)
        except OSError as exc:  # replaced by a link since it was listed, or unreadable
            raise TrackerError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        body, error = _read(path.name, data)
        items.append(
            ImportItem(
                when, body, kind, imported, entry.get("original_url") if entry else None, error
            )
        )
    items.sort(key=lambda i: i.captured_at)
    return items, ignored


def _read(name: str, data: bytes) -> tuple[bytes, FetchError | None]:
    """A file's bytes, decompressed when it is gzipped; an error when that fails."""
    if not name.lower().endswith(".gz"):
        return data, None
    try:
        return gzip.decompress(data), None
    except (OSError, EOFError, ValueError) as exc:
        return b"", FetchError(failures.UNREADABLE, f"{name}: not a readable gzip file: {exc}")


def _manifest_entries(folder: Path) -> dict[str, dict[str, Any]]:
    for candidate in (folder / "manifest.json", folder.parent / "manifest.json"):
        if not candidate.is_file() or candidate.is_symlink():
            continue
        try:
            data = json.loads(read_bytes(candidate, follow=False))
        except (OSError, ValueError, RecursionError):
            continue
        entries = data.get("captures", data) if isinstance(data, dict) else data
        out = {}
        for position, entry in enumerate(entries if isinstance(entries, list) else [], start=1):
            if not isinstance(entry, dict):
                raise TrackerError(
                    f"{candidate}: entry #{position} is {type(entry).__name__}, not an object"
                    ' such as {"file": "2024-05-02.html", "captured_at": "2024-05-02T12:00:00Z"}'
                )
            file = str(entry.get("file", ""))
            if Path(file).parent.name in ("", folder.name) or candidate.parent == folder:
                _check_manifest_entry(candidate, position, entry)
                out[Path(file).name] = entry
        if out:
            return out
    return {}


def _check_manifest_entry(manifest: Path, position: int, entry: dict[str, Any]) -> None:
    """Refuse, in one line, an entry whose values the import would trip over later: a
    `captured_at` that is not an ISO time, a `file` or `original_url` that is not text."""
    where = f"{manifest}: entry #{position}"
    for key in ("file", "original_url"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise TrackerError(f"{where}: '{key}' must be a string, got {entry[key]!r:.80}")
    when = entry.get("captured_at")
    if when in (None, ""):
        return
    try:
        parse_iso(when)
    except (ValueError, TypeError, AttributeError, OverflowError):
        raise TrackerError(
            f"{where}: 'captured_at' must be an ISO 8601 time such as"
            f" '2024-05-02T12:00:00Z', got {when!r:.80}"
        ) from None


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
        body, error = _read(path, shown.stdout)
        items.append(
            ImportItem(
                datetime.fromtimestamp(int(stamp), UTC),
                body,
                kind,
                {
                    "source": "git",
                    "repository": str(repo.resolve()),
                    "commit": commit,
                    "path": path,
                },
                None,
                error,
            )
        )
    return items


def wayback_captures(
    fetcher: Fetcher, base: str, url: str, since: str | None = None, until: str | None = None
) -> list[tuple[str, str, str]]:
    """(timestamp, original URL, mimetype) of distinct 200 captures, oldest first (CDX API)."""
    try:  # `--wayback-url http://[::1` raised ValueError deep in the fetcher: a traceback
        parts = urlsplit(base)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok:
        raise ArgumentError(
            f"--wayback-url must be an http(s) URL with a host such as"
            f" 'https://web.archive.org', got {base[:200]!r}"
        )
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
    except (ValueError, RecursionError):
        raise TrackerError(f"the CDX API at {base} did not answer JSON") from None
    if not rows:
        return []
    # The answer is a table: a header row naming the columns, then one row per capture,
    # every cell a string. Anything else (another API, a proxy's page) is said in one line.
    wrong = f"the CDX API at {base} answered JSON that is not its table of captures"
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and all(isinstance(c, str) for c in r) for r in rows
    ):
        raise TrackerError(f"{wrong}: expected a list of rows of strings")
    header, *data = rows
    columns = ("timestamp", "original", "mimetype")
    missing = [name for name in columns if name not in header]
    if missing:
        raise TrackerError(f"{wrong}: its header has no {', '.join(missing)} column")
    at = {name: header.index(name) for name in columns}
    for number, row in enumerate(data, start=2):
        if len(row) != len(header):
            raise TrackerError(
                f"{wrong}: row {number} has {len(row)} cells, the header {len(header)}"
            )
    return [(r[at["timestamp"]], r[at["original"]], r[at["mimetype"]]) for r in data]


def import_items(
    tracker: Tracker,
    document: str,
    items: Iterable[ImportItem],
    *,
    progress: Callable[[ImportItem, str], None] | None = None,
) -> ImportReport:
    """Judge and store `items` in `document`'s history, in capture-time order; safe to rerun.

    Each item is judged as a live run at its time would judge it: against the capture
    and versions before it in the store (`DocumentState`), with its own count of shrunk
    texts awaiting confirmation. One that is not the document is counted by kind and
    skipped. Captures added after every stored one are indexed as they are stored; when
    any went before a stored capture, the document's rows are rebuilt at the end. Either
    way the index matches the files when the import ends, is interrupted (Ctrl-C,
    SIGTERM), or fails. A journal (`Store.begin_import`) stands while it works: after a
    SIGKILL, the next import, run or verify finds it and finishes the import's clean-up
    (`Index.recover_imports`).
    """
    if problem := document_id_problem(document):
        raise ConfigError(problem)
    others = set(tracker.known_documents()) - {document}
    if clash := nested_in(document, others):
        raise ConfigError(
            f"{document!r} cannot be imported: it and the document {clash!r} would be"
            " folders of each other in the store and the site; choose another id"
        )
    source = tracker.config.source(document)
    report = ImportReport(document)
    store, index = tracker.store, tracker.index
    if isinstance(items, list | tuple):
        items = sorted(items, key=lambda i: i.captured_at)
    with store.lock():
        index.recover_imports(store)  # of an import that was killed
        store.remove_leftovers([document])  # of an import or run that was killed
        index.sync(store, [document])
        if not index.analysis_current():
            index.reanalyse(store)
        captures = store.captures(document)
        pending: dict[str, Any] = {}
        rebuild = False
        store.begin_import(document, utcnow())
        try:
            for item in items:
                report.seen += 1
                status, capture, error, pending = _import_one(
                    tracker, document, source, item, captures, pending
                )
                if error is not None:
                    report.fail(item, error)
                    label = f"{FAILED} ({error.kind}): {error}"
                elif capture is None:
                    report.skipped += 1
                    label = "already present" if status == PRESENT else UNCHANGED
                else:
                    report.added += 1
                    report.versions += capture.version is not None
                    report.flips += status == FLIP
                    label = LABELS.get(status, "capture stored, same text")
                    rebuild = _index_capture(tracker, captures, capture) or rebuild
                if progress:
                    progress(item, label)
        finally:
            if rebuild:
                store.drop_repeated_versions(document, utcnow())
                store.remove_leftovers([document])
                index.rebuild_document(store, document)
            else:
                index.sync(store, [document])
            store.end_import(document)
    return report


def _index_capture(tracker: Tracker, captures: list[Capture], capture: Capture) -> bool:
    """Add `capture` to the in-memory history and the index; True when the document's
    rows must be rebuilt instead (it went before a capture already stored)."""
    at = bisect.bisect_right([c.captured_at for c in captures], capture.captured_at)
    captures.insert(at, capture)
    if at < len(captures) - 1:
        return True
    change = None
    if capture.version is not None:
        previous = next((c.version for c in reversed(captures[:at]) if c.version), None)
        if previous is not None:
            change = compute_change(tracker.store, previous, capture.version, tracker.config.topics)
    tracker.index.add_capture(capture, change)
    return False


def _same_capture(capture: Capture, moment: datetime, raw_sha: str) -> bool:
    """Whether `capture` holds these bytes from this moment: stored at it, or, when two
    items fell in one second and the store moved one to the next, imported from it."""
    if capture.snapshot.sha256 != raw_sha:
        return False
    if capture.captured_at == moment:
        return True
    imported = capture.meta.get("imported")
    return isinstance(imported, dict) and imported.get("captured_at") == iso(moment)


def _import_one(
    tracker: Tracker,
    document: str,
    source: Source | None,
    item: ImportItem,
    captures: list[Capture],
    pending: dict[str, Any],
) -> tuple[str, Capture | None, FetchError | None, dict[str, Any]]:
    """Judge one item against the history before its time, and store it if it is one.

    Returns what it is ("new", "unchanged", "flip", "present" or "failed"), the
    capture written (if any), the error that made it fail, and the shrink guard's
    state after it.
    """
    if item.kind == "html":
        if source is None:
            raise TrackerError(
                f"{document} is not configured: add it to tracker.toml (with its select and"
                " remove selectors) before importing HTML"
            )
        extraction = extraction_key(source.select, source.remove, source.noise)
        content_type = "text/html"
    else:
        extraction = TEXT_EXTRACTION
        content_type = "text/markdown; charset=utf-8"
    if item.error is not None:
        return FAILED, None, item.error, pending
    if item.captured_at > utcnow() + FUTURE_SLACK:
        # A capture dated ahead would stay the latest version for years, and every live
        # run until then would be judged against it: refused, as not the document.
        ahead = FetchError(
            failures.FUTURE,
            f"dated {iso(item.captured_at)}, more than a day ahead of now:"
            " check the file name, manifest.json or the archive's timestamp",
        )
        return FAILED, None, ahead, pending
    url = source.url if source else (item.original_url or item.imported.get("file", ""))
    judged = source or Source(document, "", "", url)
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
    moment = item.captured_at.astimezone(UTC).replace(microsecond=0)
    raw_sha = hashlib.sha256(item.body).hexdigest()
    if any(_same_capture(c, moment, raw_sha) for c in captures):
        return PRESENT, None, None, pending  # imported before: adds nothing, judged then
    before = [c for c in captures if c.captured_at < moment]
    versions: list[Version] = [c.version for c in before if c.version is not None]
    state = DocumentState(
        document,
        before[-1] if before else None,
        lambda: pending,
        lambda: versions,
        tracker.store.read_text,
    )
    # Where the archive found it is no redirect of ours: no offsite or login-redirect check.
    asked = replace(fetched, final_url=url)
    verdict = judge(tracker, judged, asked, state, extraction=extraction, walls_checked=False)
    if verdict.status == FAILED:
        assert verdict.error is not None
        return FAILED, None, verdict.error, verdict.pending
    if verdict.text is None:
        return UNCHANGED, None, None, verdict.pending
    imported = {**item.imported, "captured_at": iso(item.captured_at)}
    describe = {"service": source.service, "title": source.title} if source else {}
    if verdict.flip is not None:
        describe["flip_of"] = iso(verdict.flip.captured_at)
    capture = tracker.store.record_import(
        document,
        fetched,
        verdict.text,
        extraction=extraction,
        imported=imported,
        describe=describe,
        new_version=verdict.status != FLIP,
    )
    return verdict.status, capture, None, verdict.pending


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
    done = tracker.store.import_progress(document, "wayback")
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
            # Counted as failed by the import, and not marked done: the next one retries.
            log.warning("%s: wayback capture %s failed: %s", document, stamp, exc)
            when = time_from_name(stamp)
            if when is not None:
                where = {"source": "wayback", "timestamp": stamp, "archive_url": raw_url}
                yield ImportItem(when, b"", "html", where, original, exc)
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
        tracker.store.save_import_progress(document, "wayback", done)
