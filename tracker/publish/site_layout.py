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
