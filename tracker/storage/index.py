"""The SQLite index (sqlite-utils): fast answers for the CLI and reports.

Everything here can be rebuilt from the store's files (`rebuild`), and the
pipeline keeps it up to date incrementally. Both paths go through the same
row-building functions (`index_rows`), so a rebuilt index equals an incrementally built
one. The tables themselves are declared in `index_schema`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from tracker.analysis.change import Change
from tracker.analysis.topics import Topic, default_topics
from tracker.core.errors import StoreError
from tracker.core.models import Source, Validators
from tracker.core.statuses import FAILED, OUTCOMES
from tracker.core.times import iso
from tracker.storage.captures import Capture
from tracker.storage.index_rows import (
    analysis_stamp,
    change_row,
    compute_change,
    decode_change,
    described,
    snapshot_row,
    version_row,
)
from tracker.storage.index_schema import TABLES, create_schema
from tracker.storage.store import Store

log = logging.getLogger("tracker.index")  # the name log lines have always shown


class Index:
    def __init__(self, path: Path | str, topics: Sequence[Topic] | None = None) -> None:
        self.path = Path(path)
        self.topics = tuple(default_topics() if topics is None else topics)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        create_schema(self.db)
        self._batch: _Batch | None = None
        unstamped = self.db.execute("select 1 from meta where key = 'analysis'").fetchone() is None
        if unstamped and self.analysis_current():  # a new, empty index: today's rules
            self._stamp()

    def close(self) -> None:
        if self._batch is not None and self.db.conn.in_transaction:
            self.db.conn.execute("COMMIT")
        self._batch = None
        self.db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction that takes SQLite's write lock at BEGIN.

        A deferred BEGIN that reads and then writes fails at once with "database is
        locked" when another process wrote in between (no busy wait can help then);
        BEGIN IMMEDIATE waits for the lock up front, up to busy_timeout. Nested uses
        become savepoints.
        """
        batch = self._batch
        if batch is not None:
            if not self.db.conn.in_transaction:
                self.db.conn.execute("BEGIN IMMEDIATE")
                batch.opened = time.monotonic()
            batch.depth += 1
            try:
                with self.db.atomic():
                    yield
            finally:
                batch.depth -= 1
            batch.writes += 1
            if batch.due():
                self.commit()
            return
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.conn.rollback()
            raise
        self.db.conn.execute("COMMIT")

    @contextlib.contextmanager
    def batched(self, *, seconds: float = 0.5, writes: int = 500) -> Iterator[None]:
        """Group the writes made inside into few transactions: one commit (one fsync)
        per `writes` writes or `seconds` at most, or sooner at `commit()`, which the
        run calls whenever it would wait for the network, so SQLite's write lock is
        never held across a wait (other processes' writers only wait for busy stretches).

        Each write still is its own savepoint, so a failing one undoes only itself. A
        crash loses at most the uncommitted group; the files hold it, and the next
        run's `sync` rebuilds those documents' rows (the index is never ahead of them).
        """
        if self._batch is not None:
            yield
            return
        self._batch = _Batch(seconds, writes)
        try:
            yield
        finally:
            self._batch = None
            if self.db.conn.in_transaction:
                self.db.conn.execute("COMMIT")

    def commit(self) -> None:
        """End the current group of `batched` writes now (never inside one of them)."""
        batch = self._batch
        if batch is not None and batch.depth == 0 and self.db.conn.in_transaction:
            self.db.conn.execute("COMMIT")
            batch.writes = 0

    # --- writing -------------------------------------------------------------------------

    def upsert_sources(self, sources: Iterable[Source], store: Store) -> None:
        """Configured documents from the config; the others as their latest capture says."""
        sources = list(sources)
        configured = {s.id for s in sources}
        with self._transaction():
            # Plain SQL, one statement for all: this runs at every start, over every document.
            self.db.conn.executemany(
                "insert into documents (id, service, title, url, configured)"
                " values (?, ?, ?, ?, 1) on conflict (id) do update set service = excluded.service,"
                " title = excluded.title, url = excluded.url, configured = 1",
                [(s.id, s.service, s.title, s.url) for s in sources],
            )
            others = [
                r["id"]
                for r in self.db.query("select id from documents where configured = 1")
                if r["id"] not in configured
            ]
            for document in others:
                self.db.table("documents").update(document, described(store, document))

    def add_capture(self, capture: Capture, change: Change | None) -> None:
        """Record a new capture (and the change it makes) in one transaction."""
        with self._transaction():
            self._put("snapshots", snapshot_row(capture))
            if capture.version is not None:
                self._put("versions", version_row(capture.version))
            if change is not None:
                self._insert_change(change)
            self._refresh_document(capture.document)

    def _put(self, table: str, row: dict[str, Any]) -> None:
        """Insert or replace one whole row: plain SQL, as this runs once per capture.

        (sqlite-utils' upsert inspects the table on every call, several queries each.)
        """
        columns = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        self.db.conn.execute(
            f"insert or replace into [{table}] ({columns}) values ({marks})", list(row.values())
        )

    def apply_run(self, record: dict[str, Any]) -> None:
        """Record a finished run, its errors and each document's last check."""
        with self._transaction():
            self._apply_run(record)

    def _apply_run(self, record: dict[str, Any]) -> None:
        outcomes = record.get("outcomes", [])
        self._put(
            "runs",
            {
                "id": record["id"],
                "started_at": record["started_at"],
                "ended_at": record.get("ended_at"),
                "documents": len(outcomes),
                **{s: sum(1 for o in outcomes if o["status"] == s) for s in _STATUSES},
            },
        )
        # Plain SQL in bulk: a run over thousands of documents ends with this.
        conn = self.db.conn
        conn.executemany(
            "insert or ignore into documents (id, configured) values (?, 0)",
            [(o["document"],) for o in outcomes],
        )
        ok = [o for o in outcomes if o["status"] != FAILED]
        failed = [o for o in outcomes if o["status"] == FAILED]
        conn.executemany(
            "update documents set last_checked = ?, last_status = ?, last_error_kind = ?,"
            " last_error = ?, etag = ?, last_modified = ?, last_ok = ?, failing_since = null"
            " where id = ?",
            [
                (
                    o["checked_at"],
                    o["status"],
                    o.get("error_kind"),
                    o.get("error"),
                    o.get("etag"),
                    o.get("last_modified"),
                    o["checked_at"],
                    o["document"],
                )
                for o in ok
            ],
        )
        conn.executemany(
            "update documents set last_checked = ?, last_status = ?, last_error_kind = ?,"
            " last_error = ?, failing_since = coalesce(failing_since, ?) where id = ?",
            [
                (
                    o["checked_at"],
                    o["status"],
                    o.get("error_kind"),
                    o.get("error"),
                    o["checked_at"],
                    o["document"],
                )
                for o in failed
            ],
        )
        conn.executemany(
            "insert or replace into fetch_errors (run_id, document, at, kind, message,"
            " http_status) values (?, ?, ?, ?, ?, ?)",
            [
                (
                    record["id"],
                    o["document"],
                    o["checked_at"],
                    o.get("error_kind"),
                    o.get("error"),
                    o.get("http_status"),
                )
                for o in failed
            ],
        )

    def _refresh_document(self, document: str) -> None:
        conn = self.db.conn
        conn.execute("insert or ignore into documents (id, configured) values (?, 0)", [document])
        conn.execute(
            "update documents set"
            " versions = (select count(*) from versions where document = ?1),"
            " first_captured = (select min(captured_at) from versions where document = ?1),"
            " last_version = (select max(captured_at) from versions where document = ?1),"
            " changes = (select count(*) from changes where document = ?1),"
            " last_changed = (select max(to_captured_at) from changes where document = ?1)"
            " where id = ?1",
            [document],
        )

    # --- the rules the rows were derived with -------------------------------------------

    def analysis_current(self) -> bool:
        """Whether the changes, clause changes and flags were derived with today's rules
        and topics. An empty index is current; one from before the stamp existed is not."""
        row = self.db.execute("select value from meta where key = 'analysis'").fetchone()
        if row is not None:
            return bool(row[0] == analysis_stamp(self.topics))
        return not self.db.execute("select 1 from changes limit 1").fetchone()

    def reanalyse(self, store: Store) -> list[str]:
        """Derive every document's changes again, after an upgrade or a change of topics.

        The captures and versions are the files'; only what was derived from them is
        replaced, in one transaction, and the stamp is set with it.
        """
        documents = store.documents()
        with self._transaction():
            for document in documents:
                try:
                    self.rebuild_document(store, document)
                except StoreError as exc:  # one damaged document never stops the others
                    log.warning("%s: left as it was: %s", document, exc)
            self._stamp()
        return documents

    def recover_imports(self, store: Store) -> list[str]:
        """Finish the clean-up of imports that were killed; call it holding the lock.

        Every capture a killed import stored is whole (metadata is written last), but its
        index rows, and the versions it made repeat, may not be in line yet: the same
        clean-up the import does when it ends, then the journal goes.
        """
        recovered = store.interrupted_imports()
        done = []
        for document in recovered:
            log.warning("%s: an import was interrupted; finishing its clean-up", document)
            try:
                store.drop_repeated_versions(document, datetime.now(UTC))
                store.remove_leftovers([document], beside_metadata=True)
                self.rebuild_document(store, document)
            except StoreError as exc:  # damaged: the journal stays, verify names the files
                log.warning("%s: could not finish it: %s", document, exc)
                continue
            store.end_import(document)
            done.append(document)
        return done

    def _stamp(self) -> None:
        self.db.execute(
            "insert or replace into meta (key, value) values ('analysis', ?)",
            [analysis_stamp(self.topics)],
        )

    # --- rebuilding ------------------------------------------------------------------------

    def rebuild(
        self, store: Store, sources: Iterable[Source], skipped: list[str] | None = None
    ) -> dict[str, int]:
        """Drop every row and rebuild from the store's files alone.

        One transaction: readers see the old index until it commits, and a rebuild
        that is killed or fails leaves the old index as it was. With `skipped`, a
        document whose files are damaged is left out ("<document>: <why>" is added
        there) and the others are rebuilt; without it, the damage is raised.
        """
        with self._transaction():
            for table in TABLES:
                self.db.execute(f"delete from {table}")
            sources = list(sources)
            self.upsert_sources(sources, store)
            configured = {s.id for s in sources}
            for document in store.documents():
                if document not in configured:
                    self.db.table("documents").upsert(
                        {"id": document, **described(store, document)}, pk="id"
                    )
                try:
                    self.rebuild_document(store, document)
                except StoreError as exc:
                    if skipped is None:
                        raise
                    skipped.append(f"{document}: {exc}")
            for record in store.runs():
                self._apply_run(record)
            self._stamp()
        return {table: self.db.table(table).count for table in TABLES}

    def rebuild_document(self, store: Store, document: str) -> None:
        """Replace every row of one document with rows derived from its files."""
        self._derive_rows(store, document, reuse=False)

    def catch_up(self, store: Store, document: str) -> None:
        """`rebuild_document`, deriving only the changes the index lacks (or holds between
        other versions): after a crash, that is the last capture's, not the history's."""
        self._derive_rows(store, document, reuse=True)

    def _derive_rows(self, store: Store, document: str, *, reuse: bool) -> None:
        captures = store.captures(document)
        rows_snap = [snapshot_row(c) for c in captures]
        rows_ver = [version_row(c.version) for c in captures if c.version is not None]
        versions = [c.version for c in captures if c.version is not None]
        have: dict[str, tuple[str, str, str]] = {}
        if reuse:
            rows = self.db.execute(
                "select to_captured_at, from_captured_at, from_sha256, to_sha256 from changes"
                " where document = ?",
                [document],
            )
            have = {to: (since, old, new) for to, since, old, new in rows}
        pairs = list(itertools.pairwise(versions))
        keep = {
            iso(after.captured_at)
            for before, after in pairs
            if have.get(iso(after.captured_at))
            == (iso(before.captured_at), before.sha256, after.sha256)
        }
        # Derived before the write transaction: SQLite's write lock is not held meanwhile.
        changes = [
            compute_change(store, before, after, self.topics)
            for before, after in pairs
            if iso(after.captured_at) not in keep
        ]
        with self._transaction():
            for table in ("snapshots", "versions"):
                self.db.execute(f"delete from {table} where document = ?", [document])
            for table in ("changes", "clause_changes", "flags"):
                if not keep:
                    self.db.execute(f"delete from {table} where document = ?", [document])
                    continue
                self.db.conn.executemany(
                    f"delete from {table} where document = ? and to_captured_at = ?",
                    [(document, when) for when in have if when not in keep],
                )
            self.db.table("snapshots").insert_all(rows_snap, pk=("document", "captured_at"))
            self.db.table("versions").insert_all(rows_ver, pk=("document", "captured_at"))
            for change in changes:
                self._insert_change(change)
            self._refresh_document(document)

    def _insert_change(self, change: Change) -> None:
        """The change, its clause changes and its flags (call inside a transaction)."""
        document, when = change.document, iso(change.after.captured_at)
        key = {"document": document, "to_captured_at": when}
        for table in ("clause_changes", "flags"):
            self.db.execute(
                f"delete from {table} where document = ? and to_captured_at = ?", [document, when]
            )
        self._put("changes", change_row(change))
        self.db.table("clause_changes").insert_all(
            [
                {
                    **key,
                    "position": n,
                    "kind": c.kind,
                    "section": json.dumps(list(c.section), ensure_ascii=False),
                    "before": c.before.text if c.before else None,
                    "after": c.after.text if c.after else None,
                    "cosmetic": int(c.cosmetic),
                }
                for n, c in enumerate(change.clauses)
            ],
            pk=("document", "to_captured_at", "position"),
        )
        self.db.table("flags").insert_all(
            [
                {
                    **key,
                    "position": n,
                    "topic": f.topic,
                    "kind": f.kind,
                    "text": f.text,
                    "matched": json.dumps(list(f.matched), ensure_ascii=False),
                    "section": json.dumps(list(f.section), ensure_ascii=False),
                }
                for n, f in enumerate(change.flags)
            ],
            pk=("document", "to_captured_at", "position"),
        )

    def sync(self, store: Store, documents: Iterable[str], *, defer: bool = False) -> list[str]:
        """Bring the index back in line with files written before a crash.

        Run journals that were written but never applied are applied, in order, and so
        are journals that were finished after the index saw them started (a run killed
        in between). Documents whose captures are not all indexed are caught up
        (`catch_up`); with `defer`, they are only returned, for the caller to catch up
        when it suits: a run does after its checks, so that deriving one huge change
        never holds up checking the other documents.
        """
        ended = {r["id"]: r["ended_at"] for r in self.db.query("select id, ended_at from runs")}
        stale = {i for i in store.run_ids() if ended.get(i) is None}
        behind = [
            record
            for record in store.runs(only=stale)
            if record["id"] not in ended or record.get("ended_at") is not None
        ]
        if behind:
            log.warning("index was missing %d run records; applying them", len(behind))
            with self._transaction():
                for record in behind:
                    self._apply_run(record)
        lagging = [document for document in documents if self.is_behind(store, document)]
        if not defer:
            self.catch_up_all(store, lagging)
        return lagging

    def catch_up_all(self, store: Store, documents: Iterable[str]) -> None:
        """`catch_up` each document; one damaged document never stops the others."""
        for document in documents:
            log.warning("%s: index was behind the files; deriving its missing rows", document)
            try:
                self.catch_up(store, document)
            except StoreError as exc:
                log.warning("%s: left as it was: %s", document, exc)

    def is_behind(self, store: Store, document: str) -> bool:
        """Whether the document's files hold captures its index rows do not."""
        on_disk = store.capture_times(document)
        indexed = [
            r[0]
            for r in self.db.execute(
                "select captured_at from snapshots where document = ? order by captured_at",
                [document],
            )
        ]
        return bool(on_disk != indexed)

    # --- reading ---------------------------------------------------------------------------

    def all_validators(self) -> dict[str, Validators]:
        """Each document's last ETag and Last-Modified, in one query (asked once a run)."""
        rows = self.db.conn.execute("select id, etag, last_modified from documents")
        return {doc: Validators(etag=etag, last_modified=modified) for doc, etag, modified in rows}

    def _has(self, document: str) -> bool:
        return bool(self.db.table("documents").count_where("id = ?", [document]))

    def document(self, document: str) -> dict[str, Any] | None:
        return self.db.table("documents").get(document) if self._has(document) else None

    def changes(self, document: str | None = None) -> list[dict[str, Any]]:
        sql = "select * from changes"
        params: list[Any] = []
        if document:
            sql += " where document = ?"
            params.append(document)
        sql += " order by to_captured_at desc, document"
        return [decode_change(r) for r in self.db.query(sql, params)]

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        return list(
            self.db.query("select * from runs order by started_at desc, id desc limit ?", [limit])
        )

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table in a stable order, for comparing two indexes."""
        out = {}
        for table in TABLES:
            pks = self.db.table(table).pks
            order = ", ".join(pks)
            out[table] = list(self.db.query(f"select * from {table} order by {order}"))
        return out


_STATUSES = OUTCOMES


@dataclass
class _Batch:
    seconds: float
    max_writes: int
    writes: int = 0
    opened: float = 0.0
    depth: int = 0  # writes under way: a nested one must not commit its outer one

    def due(self) -> bool:
        return self.writes >= self.max_writes or time.monotonic() - self.opened >= self.seconds
