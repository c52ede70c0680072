"""Where each thing lives in the static site, relative to its root.

One module owns the layout so the site builder, the feeds, `changes.json` and the
email digest's links can never disagree about a page's address.
"""

from __future__ import annotations

import posixpath
from datetime import datetime

from tracker.core.times import stem_for


def document_dir(document: str) -> str:
    return f"documents/{document}"


def document_page(document: str) -> str:
    return f"{document_dir(document)}/index.html"


def change_page(document: str, after_captured_at: datetime) -> str:
    """A change is named by its document and the time of the version it led to."""
    return f"{document_dir(document)}/changes/{stem_for(after_captured_at)}.html"


def change_data(document: str, after_captured_at: datetime) -> str:
    """The change as JSON: the object `diff --json` prints, plus its page's `url`."""
    return f"{document_dir(document)}/changes/{stem_for(after_captured_at)}.json"


def version_text(document: str, captured_at: datetime) -> str:
    """The extracted text of a version, served as plain text."""
    return f"{document_dir(document)}/versions/{stem_for(captured_at)}.txt"


def version_raw(document: str, captured_at: datetime) -> str:
    """The raw response, gzipped; the name carries no `.html` so no server renders it."""
    return f"{document_dir(document)}/versions/{stem_for(captured_at)}.raw.gz"


HOME = "index.html"
ALL_CHANGES = "changes.html"
SEARCH = "search.html"
CHANGES_JSON = "changes.json"
DOCUMENTS_JSON = "documents.json"
STYLESHEET = "assets/site.css"
SEARCH_SCRIPT = "assets/search.js"
SEARCH_INDEX = "assets/search-index.js"


def relative(from_page: str, to_path: str) -> str:
    """A link from one site path to another that survives hosting under any prefix."""
    start = posixpath.dirname(from_page) or "."
    return posixpath.relpath(to_path, start)


def topic_page(topic: str) -> str:
    return f"topics/{topic}.html"


def feed(kind: str, name: str | None = None) -> str:
    """`feeds/all.atom`, `feeds/documents/<doc>.atom`, `feeds/topics/<topic>.atom`."""
    if kind == "all":
        return "feeds/all.atom"
    return f"feeds/{kind}/{name}.atom"


def absolute(site_url: str | None, path: str) -> str | None:
    """The public address of `path` when the site's base URL is configured."""
    if not site_url:
        return None
    return site_url.rstrip("/") + "/" + path


# Where a build writes: the top-level pages and data, the folders below, and its own
# cache (`.build/search/`). A site folder is shared (a gh-pages checkout, a CNAME beside
# it), so a path a manifest names anywhere else (`.git/config`) is never the build's to
# delete.
TOP_FILES = frozenset({HOME, ALL_CHANGES, SEARCH, CHANGES_JSON, DOCUMENTS_JSON})
TOP_FOLDERS = frozenset({"assets", "documents", "feeds", "topics"})
BUILD_CACHE = ".build/search/"


def is_output_path(path: str) -> bool:
    """Whether `path` (relative, with '/') is somewhere a build writes."""
    if path.startswith(BUILD_CACHE):
        path = path[len(BUILD_CACHE) :]
        return bool(path) and not any(p.startswith(".") or not p for p in path.split("/"))
    parts = path.split("/")
    if any(part.startswith(".") or not part for part in parts):
        return False
    return path in TOP_FILES if len(parts) == 1 else parts[0] in TOP_FOLDERS
