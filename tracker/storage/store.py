"""Dated files under `snapshots/`: the source of truth that the index is rebuilt from.

Layout, one folder per document id (`azure-openai/code-of-conduct/`):

    20240502T120000Z.html.gz   the raw response, gzip (kept when it differs from the last)
    20240502T120000Z.md        the extracted text (kept when it differs from the last version)
    20240502T120000Z.json      how it was fetched; written last, so it marks the capture complete

and `_runs/<run id>.json` for the run journal, `_imports/<doc>/` for imports (the journal
of one under way, the progress of a backfill), `_digests/<id>.json` for what each digest
has sent. This module is the only writer under the store folder. Every file is written to
a temporary name and renamed into place, so a crash leaves either the old state or the new
one.
A capture whose `.json` is missing is incomplete and ignored.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tracker.core.errors import StoreError
from tracker.core.files import atomic_write, fsync_dir, read_bytes, safe_relative
from tracker.core.hashes import sha256_hex
from tracker.core.models import FetchResult, Version
from tracker.core.times import STEM_LENGTH, iso, parse_stem, stem_for
from tracker.storage.captures import (
    UNREAD,
    Capture,
    DamagedFileError,
    DocumentState,
    Unread,
    capture_of,
    is_capture_file,
    json_bytes,
    raw_suffix,
    run_order,
)
from tracker.storage.lock import hold_lock

log = logging.getLogger("tracker.store")  # the name log lines have always shown

RUNS_DIR = "_runs"
IMPORTS_DIR = "_imports"
DIGESTS_DIR = "_digests"
# Written when an import of a document starts, removed when its index rows are in line
# with its files: one left behind names an import that was killed (SIGKILL, power).
IMPORT_JOURNAL = "importing.json"


PENDING = ".pending.json"  # a dot-file: never read as a capture
# Level 1 takes 0.2 ms for a 40 KB page where 6 took 0.9 ms (as long as extracting its
# text), for raw snapshots ~20% bigger (17% vs 14% of the HTML on the corpus's pages).
RAW_GZIP_LEVEL = 1


class Store:
    """Reads and writes one store folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._real_root: str | None = None

    # --- paths -------------------------------------------------------------------------

    def resolve_inside(self, rel: str, what: str = "path") -> Path:
        """`root/rel`, when `rel` (read from a stored file, or a document id) stays inside.

        Stores are shared (committed from CI, copied between machines), so a path in a
        capture's metadata is data, not trust: an absolute path, a `..`, or a symbolic
        link that leads out of the store is refused with a `StoreError` rather than read,
        published or deleted. Checked when used, as the links may change after loading.
        """
        where = safe_relative(rel)
        if where is None:
            raise StoreError(f"{what} {rel!r} is not a relative path inside the store")
        path = self.root.joinpath(*where)
        real = os.path.realpath(path)
        root = self._root_real()
        if real != root and not real.startswith(root + os.sep):
            raise StoreError(
                f"{what} {rel!r} leads outside the store {self.root} (to {real},"
                " through a symbolic link); refused"
            )
        return path

    def _root_real(self) -> str:
        if self._real_root is not None:
            return self._real_root
        real = os.path.realpath(self.root)
        if os.path.isdir(real):
            self._real_root = real  # the store's own place does not move under a command
        return real

    def document_dir(self, document: str) -> Path:
        """The document's folder; a `StoreError` for an id that would leave its place
        (`..`, absolute, `_runs`) or a folder that is a link out of the store."""
        parts = safe_relative(document)
        if parts is None or parts[0].startswith(("_", ".")):
            raise StoreError(f"{document!r} is not a document id (see [[documents]] id)")
        return self.resolve_inside(document, "document folder")

    # --- reading ---------------------------------------------------------------------

    def documents(self) -> list[str]:
        """Ids of every document with at least one capture on disk."""
        if not self.root.exists():
            return []
        found = set()
        for meta in self.root.rglob("*.json"):
            rel = meta.parent.relative_to(self.root)
            # `_runs`, `_imports`, `_digests`, `_quarantine`: the store's own records, and
            # `.git` and the like: ids never start with `_` or `.` (see `document_dir`).
            if rel.parts and rel.parts[0][:1] not in "_." and not meta.name.startswith("."):
                found.add("/".join(rel.parts))
        return sorted(found)

    def captures(self, document: str) -> list[Capture]:
        return [self._load_capture(document, p) for p in self._meta_files(document)]

    def latest_capture(self, document: str) -> Capture | None:
        files = self._meta_files(document)
        return self._load_capture(document, files[-1]) if files else None

    def capture_times(self, document: str) -> list[str]:
        """ISO times of the completed captures, from file names alone (cheap)."""
        return [iso(parse_stem(p.stem)) for p in self._meta_files(document)]

    def versions(self, document: str) -> list[Version]:
        return [c.version for c in self.captures(document) if c.version is not None]

    def latest_version(self, document: str) -> Version | None:
        for meta in reversed(self._meta_files(document)):
            capture = self._load_capture(document, meta)
            if capture.version is not None:
                return capture.version
        return None

    def current_version(
        self, document: str, latest: Capture | Unread | None = UNREAD
    ) -> Version | None:
        """The document's current version: most often that of its latest capture, which
        a caller that has just read it passes (None: the document has no capture)."""
        if not isinstance(latest, Unread):
            if latest is None:
                return None
            if latest.version is not None:
                return latest.version
        return self.latest_version(document)

    def state(self, document: str, window: int = 1) -> DocumentState:
        """The document's stored state before a check, read once: the folder listed, the
        latest capture's metadata read, and, when first asked for, the pending shrink
        state and the last `window` versions (at least one; earlier metadata is read
        going back from the latest only until they are found) and the current text."""
        files = self._meta_files(document)
        latest = self._load_capture(document, files[-1]) if files else None

        def versions() -> list[Version]:
            found: list[Version] = []
            for i, meta in enumerate(reversed(files)):
                capture = latest if i == 0 and latest is not None else None
                capture = capture or self._load_capture(document, meta)
                if capture.version is not None:
                    found.append(capture.version)
                    if len(found) >= max(window, 1):
                        break
            return found[::-1]

        return DocumentState(
            document, latest, lambda: self.pending(document), versions, self.read_text
        )

    def read_text(self, version: Version) -> str:
        """A version's text; a `StoreError` naming the file when it is damaged."""
        path = self.resolve_inside(version.path, f"{version.document} text")
        try:
            text = read_bytes(path).decode("utf-8")
        except OSError as exc:
            raise DamagedFileError(path, f"cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            problem = f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
            raise DamagedFileError(path, problem) from None
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text

    def read_snapshot(self, snapshot_path: str) -> bytes:
        """A raw snapshot, decompressed; a `StoreError` naming the file when it is damaged."""
        path = self.resolve_inside(snapshot_path, "raw snapshot")
        try:
            return gzip.decompress(read_bytes(path))
        except OSError as exc:
            if exc.errno is None:  # gzip's BadGzipFile
                raise DamagedFileError(path, f"does not decompress ({exc})") from None
            raise DamagedFileError(path, f"cannot be read: {exc.strerror or exc}") from None
        except (EOFError, zlib.error) as exc:
            raise DamagedFileError(path, f"does not decompress ({exc})") from None

    def _meta_files(self, document: str) -> list[Path]:
        folder = self.document_dir(document)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [folder / n for n in sorted(names) if n.endswith(".json") and n[:1] != "."]

    def _load_capture(self, document: str, meta_path: Path) -> Capture:
        try:
            meta = json.loads(read_bytes(meta_path, follow=False))
            return capture_of(document, meta)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            if isinstance(exc, KeyError):
                reason = f"no {exc} in it"
            raise DamagedFileError(meta_path, f"unreadable capture metadata: {reason}") from None

    # --- writing ---------------------------------------------------------------------

    def record(
        self,
        document: str,
        fetched: FetchResult,
        text: str,
        *,
        extraction: str | None = None,
        describe: dict[str, str] | None = None,
        new_version: bool = True,
        latest: Capture | Unread | None = UNREAD,
        state: DocumentState | None = None,
    ) -> tuple[Capture | None, Version | None]:
        """Store a fetch unless its raw bytes (and extraction settings) equal the last ones.

        Returns the new capture (or None when nothing was written) and the version that
        is now current for the document (new, or the previous one when the text is the
        same). Write order is raw, text, metadata: the metadata file commits the capture.
        Identical raw bytes fetched again after the extraction settings changed reuse the
        stored snapshot file rather than storing it twice. `new_version=False` stores
        the capture without a version even when its text differs (a page flipping back
        to an earlier text, see `tracker.noise`). `latest` is the document's latest
        capture when the caller has just read it; `state`, the document's state the
        check read (`Store.state`), which nothing is read again from.
        """
        if state is not None:
            previous, current = state.before, state.current
        else:
            previous = self.latest_capture(document) if isinstance(latest, Unread) else latest
            current = self.current_version(document, previous)
        raw_sha = sha256_hex(fetched.body)
        same_raw = previous is not None and previous.snapshot.sha256 == raw_sha
        if same_raw and previous is not None and previous.meta.get("extraction") == extraction:
            return None, current
        moment = fetched.fetched_at.astimezone(UTC).replace(microsecond=0)
        if previous is not None and moment <= previous.captured_at:
            log.warning(
                "%s: clock is at or before the last capture (%s); recording 1 s after it",
                document,
                iso(previous.captured_at),
            )
            moment = previous.captured_at + timedelta(seconds=1)
        capture = self._write_capture(
            document,
            moment,
            fetched,
            text,
            current=current,
            extraction=extraction,
            raw_sha=raw_sha,
            reuse=previous if same_raw else None,
            extra=describe or {},
            new_version=new_version,
        )
        return capture, capture.version or current

    def record_check(
        self,
        state: DocumentState,
        fetched: FetchResult,
        text: str | None,
        *,
        pending: dict[str, Any],
        extraction: str,
        describe: dict[str, str],
        new_version: bool,
    ) -> tuple[Capture | None, Version | None] | None:
        """Write what one check of a document decided, in one call, from the `state` it
        read (nothing is read again): the shrink guard's state when it changed (`pending`,
        {} for none), then, when there is `text`, the capture (see `record`). None when
        there was no text to store (a failure, or the bytes of the last capture)."""
        if pending != state.pending:
            self.set_pending(state.document, pending or None)
        if text is None:
            return None
        return self.record(
            state.document,
            fetched,
            text,
            extraction=extraction,
            describe=describe,
            new_version=new_version,
            state=state,
        )

    def record_import(
        self,
        document: str,
        fetched: FetchResult,
        text: str,
        *,
        extraction: str,
        imported: dict[str, Any],
        describe: dict[str, str] | None = None,
        new_version: bool = True,
    ) -> Capture | None:
        """Insert a capture at its own (past) time: the backfill path.

        Nothing is written when a capture at that time already holds the same bytes
        (re-importing adds nothing), or when the capture just before it in time has
        the same bytes and extraction (the page had not changed). `new_version=False`
        stores it without a version (a flip, as in `record`).
        """
        moment = fetched.fetched_at.astimezone(UTC).replace(microsecond=0)
        raw_sha = sha256_hex(fetched.body)
        captures = self.captures(document)
        before = [c for c in captures if c.captured_at < moment]
        same_time = [c for c in captures if c.captured_at == moment]
        if any(c.snapshot.sha256 == raw_sha for c in same_time):
            return None
        previous = before[-1] if before else None
        if (
            previous is not None
            and previous.snapshot.sha256 == raw_sha
            and previous.meta.get("extraction") == extraction
        ):
            return None
        current = next((c.version for c in reversed(before) if c.version is not None), None)
        return self._write_capture(
            document,
            moment,
            fetched,
            text,
            current=current,
            extraction=extraction,
            raw_sha=raw_sha,
            reuse=None,
            extra={"imported": imported, **(describe or {})},
            new_version=new_version,
        )

    def _write_capture(
        self,
        document: str,
        moment: datetime,
        fetched: FetchResult,
        text: str,
        *,
        current: Version | None,
        extraction: str | None,
        raw_sha: str,
        reuse: Capture | None,
        extra: dict[str, Any],
        new_version: bool = True,
    ) -> Capture:
        """Write one capture at the first free second from `moment`: raw, text, metadata.

        `reuse` names an earlier capture with the same raw bytes, whose snapshot file is
        referenced instead of stored again. The text is written when it differs from
        `current` (or was made with other extraction settings). The metadata file is
        written last: it commits the capture.
        """
        folder = self.document_dir(document)
        stem = stem_for(moment)
        try:
            taken = {name.split(".", 1)[0] for name in os.listdir(folder) if name[:1] != "."}
        except FileNotFoundError:
            taken = set()
        while stem in taken:
            moment += timedelta(seconds=1)
            stem = stem_for(moment)
        rel = "/".join((*document.split("/"), stem))
        written: list[Path] = []

        if reuse is not None:
            raw_path = reuse.snapshot.path
            stored_bytes = reuse.meta["snapshot"].get("stored_bytes", 0)
        else:
            raw_name = f"{stem}{raw_suffix(fetched.content_type)}.gz"
            compressed = gzip.compress(fetched.body, compresslevel=RAW_GZIP_LEVEL, mtime=0)
            self._write(folder / raw_name, compressed, written, sync_dir=False)
            raw_path = "/".join((*document.split("/"), raw_name))
            stored_bytes = len(compressed)

        text_bytes = text.encode("utf-8")
        text_sha = sha256_hex(text_bytes)
        version_meta = None
        changed = current is None or current.sha256 != text_sha or current.extraction != extraction
        if new_version and changed:
            self._write(folder / f"{stem}.md", text_bytes, written, sync_dir=False)
            version_meta = {"sha256": text_sha, "path": f"{rel}.md", "bytes": len(text_bytes)}

        meta = {
            "document": document,
            "captured_at": iso(moment),
            "url": fetched.url,
            "final_url": fetched.final_url,
            "status": fetched.status,
            "content_type": fetched.content_type,
            "encoding": fetched.encoding,
            "etag": fetched.validators.etag,
            "last_modified": fetched.validators.last_modified,
            "snapshot": {
                "sha256": raw_sha,
                "path": raw_path,
                "bytes": len(fetched.body),
                "stored_bytes": stored_bytes,
            },
            "version": version_meta,
            "extraction": extraction,
            **({"redirects": list(fetched.redirects)} if fetched.redirects else {}),
            **extra,
        }
        if written:
            # One folder fsync makes the raw and text renames durable before the
            # metadata that names them is written (and synced with its own).
            fsync_dir(folder)
        self._write(folder / f"{stem}.json", json_bytes(meta), written)
        return capture_of(document, meta)

    # --- suspect fetches awaiting confirmation ----------------------------------------

    def pending(self, document: str) -> dict[str, Any]:
        """What the last fetches of `document` were held back for (e.g. a big shrink)."""
        path = self.document_dir(document) / PENDING
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set_pending(self, document: str, data: dict[str, Any] | None) -> None:
        path = self.document_dir(document) / PENDING
        if data:
            self._write(path, json_bytes(data))
        else:
            path.unlink(missing_ok=True)

    def _write(
        self, path: Path, data: bytes, written: list[Path] | None = None, *, sync_dir: bool = True
    ) -> None:
        """`atomic_write`, with an OS error said plainly as a `StoreError`.

        `written` collects the files of one capture so far; when a later one fails
        they are removed too, so a failed capture leaves no file behind at all.
        """
        try:
            atomic_write(path, data, sync_dir=sync_dir)
        except OSError as exc:
            for done in written or ():
                with contextlib.suppress(OSError):
                    done.unlink()
            raise StoreError(f"could not write {path}: {self._reason(exc)}") from exc
        if written is not None:
            written.append(path)

    def _reason(self, exc: OSError) -> str:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{reason} (free some space and run again)"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"{reason} (the store {self.root} is read-only for this user)"
        return reason

    # --- imports -------------------------------------------------------------------------

    def begin_import(self, document: str, started_at: datetime) -> None:
        """Journal an import of `document` before its first write (see `IMPORT_JOURNAL`)."""
        record = {"document": document, "started_at": iso(started_at), "pid": os.getpid()}
        atomic_write(self.imports_dir(document) / IMPORT_JOURNAL, json_bytes(record))

    def end_import(self, document: str) -> None:
        (self.imports_dir(document) / IMPORT_JOURNAL).unlink(missing_ok=True)

    def imports_dir(self, document: str) -> Path:
        """`_imports/<document>/`, for a valid id only (see `document_dir`)."""
        self.document_dir(document)
        return self.resolve_inside(f"{IMPORTS_DIR}/{document}", "import records")

    def interrupted_imports(self) -> list[str]:
        """Documents whose import was killed before it finished. Call it holding the lock,
        so no import is under way."""
        base = self.root / IMPORTS_DIR
        if not base.is_dir():
            return []
        found = []
        for journal in base.rglob(IMPORT_JOURNAL):
            document = "/".join(journal.parent.relative_to(base).parts)
            parts = safe_relative(document)
            if parts is None or parts[0].startswith(("_", ".")):
                log.warning("%s: ignoring an import journal of no document id", journal)
                continue
            found.append(document)
        return sorted(found)

    def drop_repeated_versions(self, document: str, now: datetime) -> list[str]:
        """A stored version whose text equals the version just before it is no longer one.

        That happens when an import goes before a stored capture with the text it already
        had (a backfill ending where live runs began): the change is dated by the earlier,
        imported capture, and the later capture stays as evidence, without a version. Its
        metadata keeps the version it lost (`superseded`), rewritten atomically; its text
        file, the same text as the earlier version's, is then removed (as `reextract` does).
        """
        previous: Version | None = None
        dropped = []
        for capture in self.captures(document):
            version = capture.version
            if version is None:
                continue
            if (
                previous is None
                or previous.sha256 != version.sha256
                or previous.extraction != version.extraction
            ):
                previous = version
                continue
            meta = dict(capture.meta)
            meta["superseded"] = {
                "at": iso(now),
                "version": meta["version"],
                "by": iso(previous.captured_at),
                "why": "an imported capture before it has the same text",
            }
            meta["version"] = None
            self.rewrite_capture_meta(document, capture.captured_at, meta)
            self.remove_text(document, version.path)
            dropped.append(iso(capture.captured_at))
        return dropped

    def import_progress(self, document: str, source: str) -> set[str]:
        """What a resumable import from `source` (`wayback`) has done for `document`:
        `_imports/<document>/<source>.json`, empty before its first item."""
        path = self.imports_dir(document) / f"{source}.json"
        if not path.exists():
            return set()
        return set(json.loads(path.read_text(encoding="utf-8")).get("done", []))

    def save_import_progress(self, document: str, source: str, done: Iterable[str]) -> None:
        path = self.imports_dir(document) / f"{source}.json"
        atomic_write(path, json.dumps({"done": sorted(done)}, indent=1).encode())

    # --- rewriting captures (re-extraction, dropped versions) -----------------------------

    def write_capture_text(self, document: str, captured_at: datetime, text: str) -> None:
        """(Re)write the text file of the capture at `captured_at` (`<stem>.md`); its
        metadata, rewritten after it with `rewrite_capture_meta`, is what names it."""
        folder = self.document_dir(document)
        atomic_write(folder / f"{stem_for(captured_at)}.md", text.encode("utf-8"))

    def rewrite_capture_meta(
        self, document: str, captured_at: datetime, meta: dict[str, Any]
    ) -> None:
        """Replace the metadata of the capture at `captured_at`, atomically."""
        folder = self.document_dir(document)
        atomic_write(folder / f"{stem_for(captured_at)}.json", json_bytes(meta))

    def remove_text(self, document: str, path: str) -> None:
        """Delete a text file no metadata names any more (derived data, never a raw one)."""
        self.resolve_inside(path, f"{document} text").unlink(missing_ok=True)

    def remove_leftovers(
        self, documents: Iterable[str], *, beside_metadata: bool = False
    ) -> list[Path]:
        """Delete what interrupted writes left in these documents' folders (and `_runs/`).

        That is temporary files, and raw or text files that no committed metadata
        names (a capture killed before its `.json`). With `beside_metadata`, also such
        files next to a metadata file of their stem: what a version dropped part-way
        leaves (its metadata rewritten, its text file not yet removed). Call it holding
        the lock, so no write is under way. Nothing is deleted beside metadata that does
        not parse.
        """
        removed = []
        folders = [self.document_dir(d) for d in documents] + [self.root / RUNS_DIR]
        for folder in folders:
            if not folder.is_dir():
                continue
            files = [p for p in folder.iterdir() if p.is_file()]
            stale = [p for p in files if p.name.startswith(".") and p.name.endswith(".tmp")]
            committed = {p.name[:STEM_LENGTH] for p in files if p.suffix == ".json"}
            candidates = [
                p
                for p in files
                if is_capture_file(p.name)
                and p.suffix != ".json"
                and (beside_metadata or p.name[:STEM_LENGTH] not in committed)
            ]
            if candidates and folder.name != RUNS_DIR:
                named = self._named_files(folder)
                stale += [p for p in candidates if named is not None and p not in named]
            for path in stale:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(path)
        if removed:
            log.warning("removed %d leftovers of interrupted writes", len(removed))
        return removed

    def _named_files(self, folder: Path) -> set[Path] | None:
        """Every file the folder's metadata names, or None if some metadata is unreadable."""
        named = set()
        for meta_path in folder.glob("*.json"):
            try:
                meta = json.loads(read_bytes(meta_path, follow=False))
                named.add(self.resolve_inside(meta["snapshot"]["path"]))
                if meta.get("version"):
                    named.add(self.resolve_inside(meta["version"]["path"]))
            except (OSError, ValueError, KeyError, TypeError, StoreError):
                return None
        return named

    # --- run journal -------------------------------------------------------------------

    def write_run(self, record: dict[str, Any]) -> None:
        self._write(self.root / RUNS_DIR / f"{record['id']}.json", json_bytes(record))

    def run_ids(self) -> list[str]:
        """Run ids in the order the runs started (`…Z-2` after `…Z`, `-10` after `-9`)."""
        folder = self.root / RUNS_DIR
        if not folder.is_dir():
            return []
        ids = [p.stem for p in folder.glob("*.json") if not p.name.startswith(".")]
        return sorted(ids, key=run_order)

    def runs(self, only: set[str] | None = None) -> Iterator[dict[str, Any]]:
        folder = self.root / RUNS_DIR
        for run_id in self.run_ids():
            if only is not None and run_id not in only:
                continue
            path = folder / f"{run_id}.json"
            if path.name.startswith("."):
                continue
            try:
                yield json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("%s: skipping unreadable run record: %s", path, exc)

    def new_run_id(self, started_at: datetime) -> str:
        base = stem_for(started_at)
        candidate, n = base, 1
        while (self.root / RUNS_DIR / f"{candidate}.json").exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    # --- digest ledgers ----------------------------------------------------------------

    def digest_ledger_path(self, digest_id: str) -> Path:
        """`_digests/<id>.json` (ids are flat slugs, checked by the configuration)."""
        return self.root / DIGESTS_DIR / f"{digest_id}.json"

    def digest_ledger(self, digest_id: str) -> Any:
        """The digest's ledger as stored (parsed JSON), or None before its first run.
        An unreadable one raises `OSError` or `ValueError`."""
        path = self.digest_ledger_path(digest_id)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def write_digest_ledger(self, digest_id: str, data: dict[str, Any]) -> None:
        """Replace the digest's ledger, atomically (indented: people read it)."""
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        atomic_write(self.digest_ledger_path(digest_id), text.encode("utf-8"))

    @contextlib.contextmanager
    def lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the store's lock: one run (or reindex) at a time on one store.

        Waits up to `wait` seconds for another holder, then raises `LockedError`.
        """
        with hold_lock(self.root, wait, self._reason):
            yield
