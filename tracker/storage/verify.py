"""`tos-tracker verify`: every stored file against its hash, and the index against the files.

The files are the source of truth, so the checks run one way. A capture's metadata
must parse and name files whose hashes match it; leftovers of interrupted writes
(temporary files, raw or text files no committed metadata names) are harmless and
removable; the index must equal one rebuilt from the files. Only the leftovers and
the index can be repaired: a stored file whose hash is wrong is reported, for a human
to restore from a backup, and never rewritten. With `quarantine`, the captures whose
files are damaged (or whose metadata names a path outside the store) are moved,
whole, to `_quarantine/<time>/` in the store: kept for a human to restore, never
deleted, and out of the way so that every other command sees a consistent store.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracker.config.settings import Config
from tracker.core.errors import StoreError
from tracker.core.hashes import sha256_hex
from tracker.core.times import STEM_LENGTH, iso, parse_stem, stem_for
from tracker.storage.captures import is_capture_file
from tracker.storage.index import TABLES, Index
from tracker.storage.store import RUNS_DIR, Store

SHOWN = 3  # rows named per index table before "and N more"
# What no repair can undo ("outside": metadata naming a path that leaves the store).
DAMAGE = ("corrupt", "missing", "unreadable", "journal", "outside")
QUARANTINE_DIR = "_quarantine"


@dataclass(frozen=True)
class Problem:
    """One inconsistency; `repairable` when `verify --repair` can fix it."""

    kind: str  # corrupt, missing, unreadable, leftover, journal, index
    path: str | None
    message: str
    repairable: bool = False
    document: str | None = None
    captured_at: str | None = None
    expected: str | None = None
    actual: str | None = None

    def line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        text = f"{self.kind:<10} {where}{self.message}"
        if self.expected or self.actual:
            pad = " " * 11
            text += f"\n{pad}expected sha256 {self.expected}\n{pad}actual   sha256 {self.actual}"
        return text

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Verification:
    store: Path
    index: Path
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # documents of killed imports

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        c = self.counts
        checked = (
            f"Checked {c.get('documents', 0)} documents: {c.get('captures', 0)} captures,"
            f" {c.get('snapshots', 0)} raw files, {c.get('texts', 0)} text files,"
            f" {c.get('journals', 0)} run journals ({c.get('unfinished', 0)} not finished),"
            " and the index"
        )
        if self.ok:
            return f"{checked}: consistent."
        fixable = sum(p.repairable for p in self.problems)
        hint = f" ({fixable} can be repaired with --repair)" if fixable else ""
        return f"{checked}: {len(self.problems)} problems{hint}."

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": str(self.store),
            "index": str(self.index),
            "counts": self.counts,
            "problems": [p.to_json() for p in self.problems],
            "repaired": self.repaired,
            "recovered_imports": self.recovered,
        }


def verify(
    config: Config, *, repair: bool = False, wait: float = 0.0, quarantine: bool = False
) -> Verification:
    """Check the store and the index under the store's lock; `repair` fixes what it can.

    `quarantine` (with `repair`) first moves the damaged captures aside (see the module
    docstring), so the index can then be rebuilt from what is left. After repairing,
    everything is checked again: what remains is what is returned.
    """
    store = Store(config.store_path)
    with store.lock(wait):
        recovered = _recover_imports(store, config)
        result = check(store, config)
        done: list[str] = []
        if repair and quarantine and any(p.kind in CAPTURE_DAMAGE for p in result.problems):
            done = quarantine_captures(store, result.problems, datetime.now(UTC))
            result = check(store, config)
        if repair and any(p.repairable for p in result.problems):
            done += _repair(store, config, result.problems)
            result = check(store, config)
        if done:
            result.repaired = done
        result.recovered = recovered
    return result


def _recover_imports(store: Store, config: Config) -> list[str]:
    """Finish what killed imports left undone, as the next run or import would: their
    journal says the index may lag behind their files, which is no damage."""
    if not store.interrupted_imports():
        return []
    try:
        index = Index(config.index_path, config.topics)
    except sqlite3.DatabaseError:
        return []  # check_index reports the index that does not open
    try:
        return index.recover_imports(store)
    finally:
        index.close()


def check(store: Store, config: Config) -> Verification:
    result = Verification(store.root, config.index_path)
    referenced, unsure = _check_captures(store, result)
    _check_leftovers(store, referenced, unsure, result)
    _check_journals(store, result)
    result.problems += check_index(store, config)
    return result


def _check_captures(store: Store, result: Verification) -> tuple[set[Path], set[Path]]:
    """Each capture's metadata and the files it names; returns the files named and
    the folders whose metadata did not parse (their leftovers may not be leftovers)."""
    referenced: set[Path] = set()
    unsure: set[Path] = set()
    seen: dict[Path, bool] = {}  # a snapshot file reused by several captures is read once
    documents = store.documents()
    result.counts["documents"] = len(documents)
    for key in ("captures", "snapshots", "texts"):
        result.counts[key] = 0
    for document in documents:
        for meta_path in store._meta_files(document):
            try:
                capture = store._load_capture(document, meta_path)
            except (StoreError, KeyError, TypeError, ValueError) as exc:
                reason = str(exc) if isinstance(exc, StoreError) else f"missing or bad {exc}"
                result.problems.append(
                    Problem(
                        "unreadable",
                        str(meta_path),
                        f"capture metadata: {reason}",
                        document=document,
                        captured_at=_stem_time(meta_path.name),
                    )
                )
                unsure.add(meta_path.parent)
                continue
            result.counts["captures"] += 1
            when = iso(capture.captured_at)
            snap = capture.snapshot
            try:
                raw = store.resolve_inside(snap.path, "raw snapshot")
                text_path = (
                    store.resolve_inside(capture.version.path, "text")
                    if capture.version is not None
                    else None
                )
            except StoreError as exc:
                result.problems.append(
                    Problem(
                        "outside",
                        str(meta_path),
                        f"{document} capture {when}: {exc}; not read (a shared store is"
                        " never trusted to point elsewhere)",
                        document=document,
                        captured_at=when,
                    )
                )
                unsure.add(meta_path.parent)
                continue
            referenced.add(raw)
            if raw not in seen:
                result.counts["snapshots"] += 1
                problem = _check_file(raw, snap.sha256, snap.bytes, compressed=True)
                seen[raw] = problem is None
                if problem is not None:
                    result.problems.append(_about(problem, document, when, "raw snapshot"))
            if capture.version is not None and text_path is not None:
                text = text_path
                referenced.add(text)
                result.counts["texts"] += 1
                problem = _check_file(text, capture.version.sha256, capture.version.bytes)
                if problem is not None:
                    result.problems.append(_about(problem, document, when, "text"))
    return referenced, unsure


def _stem_time(name: str) -> str | None:
    try:
        return iso(parse_stem(name[:STEM_LENGTH]))
    except ValueError:
        return None


def _check_file(
    path: Path, sha256: str, size: int | None, compressed: bool = False
) -> Problem | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Problem("missing", str(path), "is missing")
    except OSError as exc:
        return Problem("unreadable", str(path), f"cannot be read: {exc.strerror or exc}")
    if compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            return Problem("corrupt", str(path), f"does not decompress ({exc})")
    actual = sha256_hex(data)
    if actual != sha256:
        return Problem("corrupt", str(path), "hash differs", expected=sha256, actual=actual)
    if size is not None and len(data) != size:
        return Problem("corrupt", str(path), f"is {len(data)} bytes, the metadata says {size}")
    return None


def _about(problem: Problem, document: str, when: str, what: str) -> Problem:
    hint = (
        "; restore it from a backup (verify cannot repair a stored file;"
        " --repair --quarantine moves the capture aside)"
    )
    return Problem(
        problem.kind,
        problem.path,
        f"{document} {what} captured {when} {problem.message}{hint}",
        document=document,
        captured_at=when,
        expected=problem.expected,
        actual=problem.actual,
    )


def _check_leftovers(
    store: Store, referenced: set[Path], unsure: set[Path], result: Verification
) -> None:
    """Temporary files, and capture files that no committed metadata names."""
    if not store.root.is_dir():
        return
    for path in sorted(p for p in store.root.rglob("*") if p.is_file()):
        rel = path.relative_to(store.root)
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            # Every writer into the store holds its lock, which verify holds now:
            # no write is under way, so a temporary file is an interrupted one.
            result.problems.append(
                Problem(
                    "leftover",
                    str(path),
                    "temporary file of an interrupted write (--repair removes it)",
                    repairable=True,
                )
            )
        elif rel.parts[0].startswith(("_", ".")) or name.startswith(".") or name.endswith(".json"):
            continue
        elif is_capture_file(name) and path not in referenced:
            keep = path.parent in unsure
            why = (
                "kept: a capture in this folder has unreadable metadata and may name it"
                if keep
                else "--repair removes it"
            )
            result.problems.append(
                Problem(
                    "leftover",
                    str(path),
                    f"written by a capture that never completed; no metadata names it ({why})",
                    repairable=not keep,
                )
            )


def _check_journals(store: Store, result: Verification) -> None:
    folder = store.root / RUNS_DIR
    paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    result.counts["journals"] = len(paths)
    result.counts["unfinished"] = 0
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if record.get("id") != path.stem:
                raise ValueError(f"its id {record.get('id')!r} is not its file name")
            if not isinstance(record.get("started_at"), str):
                raise ValueError("no started_at")
            if not isinstance(record.get("outcomes", []), list):
                raise ValueError("outcomes is not a list")
        except (OSError, ValueError) as exc:
            result.problems.append(
                Problem("journal", str(path), f"run journal does not parse: {exc}")
            )
            continue
        if record.get("ended_at") is None:
            result.counts["unfinished"] += 1


def check_index(store: Store, config: Config) -> list[Problem]:
    """The live index against one rebuilt from the files in a temporary folder."""
    where = str(config.index_path)
    try:
        live = Index(config.index_path, config.topics)
    except sqlite3.DatabaseError as exc:
        return [Problem("index", where, f"does not open ({exc}); move it aside and reindex")]
    try:
        live.upsert_sources(config.sources, store)  # as every command does on opening
        with tempfile.TemporaryDirectory(prefix="tos-tracker-verify-") as tmp:
            fresh = Index(Path(tmp) / "rebuilt.db", config.topics)
            try:
                fresh.rebuild(store, config.sources)
                expected = fresh.dump()
            except Exception as exc:  # a damaged file; reported above, one line here
                why = str(exc) if isinstance(exc, StoreError) else repr(exc)
                return [Problem("index", where, f"cannot be compared: rebuilding it failed: {why}")]
            finally:
                fresh.close()
        actual = live.dump()
        pks = {table: live.db.table(table).pks for table in TABLES}
        current = live.analysis_current()
    finally:
        live.close()
    problems = []
    if not current:
        problems.append(
            Problem(
                "index",
                where,
                "its changes and flags were derived with other analysis rules or topics"
                " (an upgrade, or [[topics]] changed); the next run or import derives them"
                " again, or --repair now",
                repairable=True,
            )
        )
    return problems + [
        Problem("index", where, message, repairable=True)
        for message in compare_dumps(expected, actual, pks)
    ]


def compare_dumps(
    expected: dict[str, list[dict[str, Any]]],
    actual: dict[str, list[dict[str, Any]]],
    pks: dict[str, list[str]],
) -> list[str]:
    """One line per table that differs: which rows are missing, extra or different."""
    lines = []
    for table in TABLES:

        def key(row: dict[str, Any], table: str = table) -> tuple[Any, ...]:
            return tuple(row[k] for k in pks[table])

        want = {key(r): r for r in expected.get(table, [])}
        have = {key(r): r for r in actual.get(table, [])}
        missing = [k for k in want if k not in have]
        extra = [k for k in have if k not in want]
        differ = [k for k in want if k in have and want[k] != have[k]]
        parts = []
        if missing:
            parts.append(f"{_rows(missing)} missing")
        if extra:
            parts.append(f"{_rows(extra)} that the files do not have")
        if differ:
            columns = sorted({c for k in differ for c in want[k] if want[k][c] != have[k].get(c)})
            parts.append(f"{_rows(differ)} different (columns {', '.join(columns)})")
        if parts:
            lines.append(f"table {table}: " + "; ".join(parts) + " (--repair rebuilds the index)")
    return lines


def _rows(keys: list[tuple[Any, ...]]) -> str:
    named = ", ".join(" ".join(str(v) for v in k) for k in keys[:SHOWN])
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return f"{len(keys)} row{'s' if len(keys) != 1 else ''} [{named}{more}]"


def _repair(store: Store, config: Config, problems: list[Problem]) -> list[str]:
    """Remove leftovers of interrupted writes and rebuild the index from the files."""
    done = []
    for problem in problems:
        if problem.kind == "leftover" and problem.repairable and problem.path:
            Path(problem.path).unlink(missing_ok=True)
            done.append(f"removed {problem.path}")
    damaged = [p for p in problems if p.kind in DAMAGE]
    if damaged and any(p.kind == "index" for p in problems):
        # Rebuilt from damaged files, the index would lose what it still knows.
        done.append("did not rebuild the index: restore the damaged files first")
    elif any(p.kind == "index" and p.repairable for p in problems):
        index = Index(config.index_path, config.topics)
        try:
            index.rebuild(store, config.sources)
        finally:
            index.close()
        done.append(f"rebuilt the index {config.index_path} from the files")
    return done


# A capture's own damage, which quarantine moves aside (a run journal is not a capture).
CAPTURE_DAMAGE = ("corrupt", "missing", "unreadable", "outside")


def quarantine_captures(store: Store, problems: list[Problem], now: datetime) -> list[str]:
    """Move each damaged capture, whole, to `_quarantine/<now>/<document>/`: its metadata
    and every file of the same time stem in its folder. Nothing is deleted; the same
    relative names are kept, so putting a capture back is moving its files back.

    A raw snapshot shared by later captures (same bytes fetched again) stays where it
    is when only a later capture is damaged; when it is itself damaged, the captures
    that reuse it are found missing by the next check and quarantined by the next
    `--repair --quarantine`.
    """
    base = store.root / QUARANTINE_DIR / stem_for(now)
    moved: list[str] = []
    done: set[tuple[str, str]] = set()
    for problem in problems:
        if problem.kind not in CAPTURE_DAMAGE or not problem.document or not problem.captured_at:
            continue
        key = (problem.document, problem.captured_at)
        if key in done:
            continue
        done.add(key)
        try:
            folder = store.document_dir(problem.document)
        except StoreError:
            continue
        stem = stem_for(datetime.fromisoformat(problem.captured_at.replace("Z", "+00:00")))
        try:
            names = sorted(n for n in os.listdir(folder) if n.startswith(stem + "."))
        except OSError:
            continue
        for name in names:
            source = folder / name
            target = base.joinpath(*problem.document.split("/"), name)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)  # same file system: a rename, never a copy
            moved.append(f"quarantined {source} → {target}")
    return moved
