"""Rebuilding the SQLite index from the files in the store alone (`tos-tracker reindex`)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracker.config.settings import Config
from tracker.storage.index import Index
from tracker.storage.store import Store


@dataclass
class Reindexed:
    counts: dict[str, int]
    seconds: float
    skipped: list[str] = field(default_factory=list)  # damaged documents left out


def reindex(config: Config, on_set_aside: Callable[[str], None] = lambda line: None) -> Reindexed:
    """Rebuild config.index_path under the store's lock. An index SQLite cannot read is
    moved aside to `<name>.damaged` first (with its -wal and -shm), said through
    `on_set_aside`."""
    started = time.perf_counter()
    store = Store(config.store_path)
    skipped: list[str] = []
    with store.lock():
        try:
            index = Index(config.index_path, config.topics)
        except sqlite3.DatabaseError as exc:
            # Rebuilt from the files alone, so an index SQLite cannot read is set aside.
            aside = config.index_path.with_name(config.index_path.name + ".damaged")
            for suffix in ("", "-wal", "-shm"):
                damaged = Path(f"{config.index_path}{suffix}")
                if damaged.exists():
                    damaged.replace(Path(f"{aside}{suffix}"))
            on_set_aside(f"{config.index_path} was unreadable ({exc}); moved to {aside}")
            index = Index(config.index_path, config.topics)
        try:
            counts = index.rebuild(store, config.sources, skipped)
        finally:
            index.close()
    return Reindexed(counts, time.perf_counter() - started, skipped)
