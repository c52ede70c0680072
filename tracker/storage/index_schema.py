"""The index's tables: created when missing, columns added to an index an older version made.

The rows in them are built by `index_rows`; `index.Index` writes and reads them.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

TABLES = (
    "documents",
    "snapshots",
    "versions",
    "changes",
    "clause_changes",
    "flags",
    "runs",
    "fetch_errors",
)


def create_schema(db: sqlite_utils.Database) -> None:
    db.table("documents").create(
        {
            "id": str,
            "service": str,
            "title": str,
            "url": str,
            "configured": int,
            "versions": int,
            "changes": int,
            "first_captured": str,
            "last_version": str,
            "last_changed": str,
            "last_checked": str,
            "last_status": str,
            "last_ok": str,
            "failing_since": str,
            "last_error_kind": str,
            "last_error": str,
            "etag": str,
            "last_modified": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("snapshots").create(
        {
            "document": str,
            "captured_at": str,
            "sha256": str,
            "path": str,
            "bytes": int,
            "url": str,
            "final_url": str,
            "status": int,
            "content_type": str,
            "encoding": str,
            "etag": str,
            "last_modified": str,
        },
        pk=("document", "captured_at"),
        if_not_exists=True,
    )
    db.table("versions").create(
        {
            "document": str,
            "captured_at": str,
            "sha256": str,
            "path": str,
            "bytes": int,
            "snapshot_sha256": str,
            "snapshot_path": str,
            "imported": str,
        },
        pk=("document", "captured_at"),
        if_not_exists=True,
    )
    db.table("changes").create(
        {
            "document": str,
            "to_captured_at": str,
            "from_captured_at": str,
            "from_sha256": str,
            "to_sha256": str,
            "added_words": int,
            "removed_words": int,
            "sections": str,
            "summary": str,
            "extraction_changed": int,
            "cosmetic": int,
            "flagged_topics": str,
            "cosmetic_reason": str,
        },
        pk=("document", "to_captured_at"),
        if_not_exists=True,
    )
    add_column(db.table("changes"), "cosmetic_reason", str)
    db.table("clause_changes").create(
        {
            "document": str,
            "to_captured_at": str,
            "position": int,
            "kind": str,
            "section": str,
            "before": str,
            "after": str,
            "cosmetic": int,
        },
        pk=("document", "to_captured_at", "position"),
        if_not_exists=True,
    )
    db.table("flags").create(
        {
            "document": str,
            "to_captured_at": str,
            "position": int,
            "topic": str,
            "kind": str,
            "text": str,
            "matched": str,
            "section": str,
        },
        pk=("document", "to_captured_at", "position"),
        if_not_exists=True,
    )
    db.table("runs").create(
        {
            "id": str,
            "started_at": str,
            "ended_at": str,
            "documents": int,
            "new": int,
            "changed": int,
            "unchanged": int,
            "failed": int,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("fetch_errors").create(
        {
            "run_id": str,
            "document": str,
            "at": str,
            "kind": str,
            "message": str,
            "http_status": int,
        },
        pk=("run_id", "document"),
        if_not_exists=True,
    )
    db.table("versions").create_index(["document", "sha256"], if_not_exists=True)
    db.table("changes").create_index(["to_captured_at"], if_not_exists=True)
    # Not in TABLES: what the rows were derived with, not rows of the store.
    db.execute("create table if not exists meta (key text primary key, value text)")


def add_column(table: sqlite_utils.db.Table, name: str, kind: type) -> None:
    """Add a column that a newer version writes to an index an older one made (empty in
    old rows until `verify --repair` or a rebuild). Another process may add it first."""
    if name in table.columns_dict:
        return
    try:
        table.add_column(name, kind)
    except sqlite3.OperationalError as error:
        if "duplicate column" not in str(error):
            raise
