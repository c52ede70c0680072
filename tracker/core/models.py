"""Frozen dataclasses handed from one pipeline stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Said of a change whose clause analysis reached its bound: clauses it had not paired
# yet are listed as added and removed, so the reader knows to look at the word diff.
COARSE_NOTE = "coarse: too large to match every clause; the rest listed as added and removed"


@dataclass(frozen=True)
class NoiseFilters:
    """Configured noise filters, applied inside extraction and part of its identity.

    `replace` holds (regular expression, replacement) pairs run in order over the
    extracted text; `remove` CSS selectors dropped before extraction; `drop_params`
    globs of query parameters dropped from link targets.
    """

    replace: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    drop_params: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.replace or self.remove or self.drop_params)

    def plus(self, other: NoiseFilters) -> NoiseFilters:
        """These filters, then `other`'s (the global ones, then a document's own)."""
        return NoiseFilters(
            self.replace + other.replace,
            self.remove + other.remove,
            self.drop_params + other.drop_params,
        )

    def spec(self) -> dict[str, Any]:
        return {
            "replace": [list(pair) for pair in self.replace],
            "remove": list(self.remove),
            "drop_params": list(self.drop_params),
        }


@dataclass(frozen=True)
class Source:
    """One tracked document as configured."""

    id: str
    service: str
    title: str
    url: str
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    robots: bool | None = None  # None: [fetch] robots decides; False: the operator may check it
    allow_hosts: tuple[str, ...] = ()  # other sites a redirect may lead to
    min_chars: int | None = None  # overrides [fetch] min_chars
    max_shrink: float | None = None  # overrides [fetch] max_shrink
    noise: NoiseFilters = NoiseFilters()  # global [noise] filters plus the document's own
    browser: bool = False  # render in headless Chromium instead of a plain HTTP fetch
    browser_fallback: bool = True  # render in the browser when the plain fetch is blocked


@dataclass(frozen=True)
class Validators:
    """What the server said about its copy, echoed back for conditional requests."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """A successful HTTP exchange (or browser render): new bytes, or `not_modified` for a 304."""

    source_id: str
    url: str
    final_url: str
    status: int
    fetched_at: datetime
    body: bytes
    content_type: str | None
    encoding: str | None
    validators: Validators
    not_modified: bool = False
    attempts: int = 1
    elapsed: float = 0.0
    redirects: tuple[str, ...] = ()  # the addresses passed through before final_url
    via: str = "http"  # "http" or "browser"
    fallback_from: str | None = None  # the plain fetch's error kind when the browser took over


@dataclass(frozen=True)
class Snapshot:
    """A stored raw response (gzip on disk) and what we know about how it was fetched."""

    document: str
    captured_at: datetime
    sha256: str
    path: str
    bytes: int
    url: str
    final_url: str
    status: int
    content_type: str | None
    encoding: str | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Version:
    """A stored extracted text; `snapshot_sha256` names the raw response it came from."""

    document: str
    captured_at: datetime
    sha256: str
    path: str
    bytes: int
    snapshot_sha256: str | None
    snapshot_path: str | None
    extraction: str | None = None  # key of the select/remove settings that made this text
    imported: dict[str, Any] | None = field(default=None, hash=False)  # backfill source


@dataclass(frozen=True)
class DiffResult:
    """A word diff of two texts, as (op, text) runs with op -1, 0 or +1."""

    ops: tuple[tuple[int, str], ...]
    added_words: int
    removed_words: int
    sections: tuple[str, ...]
    coarse: bool = False
    seconds: float = 0.0

    @property
    def inserted(self) -> list[str]:
        return [text for op, text in self.ops if op == 1]

    @property
    def deleted(self) -> list[str]:
        return [text for op, text in self.ops if op == -1]
