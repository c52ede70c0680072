"""The static report site: pages, Atom feeds and JSON, as a folder of files.

The site is rebuilt after runs, so it is built incrementally: a manifest in
`.build/` remembers what each output was made from, change pages whose versions and
neighbours are the same are not recomputed, and a file whose bytes did not change is
not rewritten. Everything from tracked pages goes through Jinja2's autoescape.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from tracker import __version__
from tracker.analysis.segments import clean_inline
from tracker.app.pipeline import Tracker
from tracker.config.settings import Config
from tracker.core.errors import StoreError
from tracker.core.times import iso
from tracker.publish import site_layout as layout
from tracker.publish.report import human_time, packaged_templates, public_imported
from tracker.publish.report import template_env as base_env
from tracker.publish.search_index import index_script
from tracker.publish.site_document import DocumentData, build_document
from tracker.publish.site_files import (
    BUILD_DIR,
    BuildStats,
    SiteError,
    SiteWriter,
    _check_out,
    _made_outputs,
    _read_manifest,
    _write_manifest,
)
from tracker.storage.lock import open_lock

log = logging.getLogger("tracker.site")  # the name log lines have always shown

HOME_CHANGES = 30
FEED_ENTRIES = 50


# Characters XML 1.0 forbids: escaping cannot help, so they are dropped from feeds.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def site_env(config: Config) -> jinja2.Environment:
    env = base_env(config.templates)
    env.globals["site_title"] = config.site.title
    env.filters["rel"] = layout.relative
    env.filters["inline"] = clean_inline
    env.filters["day"] = lambda value: _moment(value).strftime("%-d %b %Y")
    env.filters["stamp"] = lambda value: human_time(_moment(value))
    return env


def _moment(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def default_out(config: Config) -> Path:
    return config.site.out or config.store_path.parent / "site"


def build_site(
    tracker: Tracker,
    out: Path | None = None,
    *,
    full: bool = False,
    now: datetime | None = None,
    force: bool = False,
) -> BuildStats:
    """Build (or bring up to date) the site in `out`; return what was done.

    `out` must be new, empty or a previous build (`force` builds in any folder). A
    document whose stored files are damaged is left out, named in `stats.skipped`,
    and its pages from earlier builds are kept; the others are built.
    """
    import time

    started = time.perf_counter()
    config = tracker.config
    out = Path(out or default_out(config)).resolve()
    store_root = tracker.store.root.resolve()
    if out == store_root or store_root in out.parents:
        raise SiteError(f"the site folder {out} must not be inside the store {store_root}")
    _check_out(out, force)
    out.mkdir(parents=True, exist_ok=True)
    stats = BuildStats(out=out)
    with _build_lock(out):
        env = site_env(config)
        fingerprint = _fingerprint(config, env)
        manifest = _read_manifest(out)
        made = _made_outputs(manifest)
        # Keys are trusted only from a build that finished with the same templates,
        # topics and settings; the list of files made is always kept, so whatever a
        # previous build wrote and this one does not is still deleted.
        trusted = manifest.get("complete") and manifest.get("fingerprint") == fingerprint
        previous = made if trusted and not full else {}
        _write_manifest(out, {"fingerprint": fingerprint, "outputs": made, "complete": False})
        writer = SiteWriter(out, previous, stats, made)
        documents = []
        for document in tracker.known_documents():
            try:
                documents.append(build_document(tracker, env, writer, document))
            except StoreError as exc:
                stats.skipped.append(f"{document}: {exc}")
                log.debug("site: left out %s: %s", document, exc)
                _keep_pages(writer, document)
        stats.documents = len(documents)
        stats.changes = sum(len(d.changes) for d in documents)
        _write_aggregates(tracker, env, writer, documents, now or datetime.now(UTC))
        writer.finish(fingerprint)
    stats.seconds = time.perf_counter() - started
    return stats


def _keep_pages(writer: SiteWriter, document: str) -> None:
    """Keep what earlier builds made for a document left out this time (not deleted)."""
    own = (
        f"{layout.document_dir(document)}/",
        layout.feed("documents", document),
        f"{BUILD_DIR}/search/{document}.json",
    )
    for path, key in writer.made.items():
        if path.startswith(own[0]) or path in own[1:]:
            writer.current.setdefault(path, key)


@contextlib.contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    folder = out / BUILD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise SiteError(f"{folder} is a symbolic link; refusing to build there")
    try:
        handle = open_lock(folder / "lock")
    except OSError as exc:
        raise SiteError(f"cannot lock {folder / 'lock'}: {exc.strerror or exc}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _fingerprint(config: Config, env: jinja2.Environment) -> str:
    """Whatever, if changed, changes every page: code, templates, topics, site settings."""
    digest = hashlib.sha256(__version__.encode())
    loader = env.loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    for name in sorted(env.list_templates()):
        source, _, _ = loader.get_source(env, name)
        digest.update(name.encode() + b"\0" + source.encode())
    for topic in config.topics:
        digest.update(repr(topic).encode())
    digest.update(repr(config.site).encode())
    return digest.hexdigest()


def _asset_bytes(name: str) -> bytes:
    return (packaged_templates() / "site" / name).read_bytes()


# --- pages across documents ------------------------------------------------------------------


def _write_aggregates(
    tracker: Tracker,
    env: jinja2.Environment,
    writer: SiteWriter,
    documents: list[DocumentData],
    now: datetime,
) -> None:
    config = tracker.config
    everything = sorted(
        (c for d in documents for c in d.changes),
        key=lambda c: (c["to"]["captured_at"], c["document"]),
        reverse=True,
    )
    topics: list[dict[str, Any]] = [
        {
            "topic": topic,
            "page": layout.topic_page(topic.id),
            "feed": layout.feed("topics", topic.id),
            "changes": [c for c in everything if topic.id in c["topics"]],
        }
        for topic in config.topics
    ]
    home = env.get_template("site/home.html").render(
        page=layout.HOME,
        documents=sorted(documents, key=lambda d: (d.service.casefold(), d.title.casefold())),
        latest=everything[:HOME_CHANGES],
        total=len(everything),
        topics=topics,
        last_check=max((d.status.get("last_checked") or "" for d in documents), default=""),
    )
    writer.write(layout.HOME, home)
    writer.write(
        layout.ALL_CHANGES,
        env.get_template("site/changes.html").render(page=layout.ALL_CHANGES, changes=everything),
    )
    for topic in topics:
        writer.write(
            topic["page"],
            env.get_template("site/topic.html").render(**topic),
        )
    writer.write(layout.SEARCH, env.get_template("site/search.html").render(page=layout.SEARCH))
    writer.write(layout.STYLESHEET, _asset_bytes("site.css"))
    writer.write(layout.SEARCH_SCRIPT, _asset_bytes("search.js"))
    writer.write(
        layout.SEARCH_INDEX,
        index_script([_search_document(d) for d in documents], [d.spans for d in documents]),
    )
    _write_feeds(config, env, writer, documents, everything, topics, now)
    writer.write(
        layout.CHANGES_JSON,
        json.dumps(everything, ensure_ascii=False, indent=1) + "\n",
    )
    writer.write(
        layout.DOCUMENTS_JSON,
        json.dumps([_document_json(d) for d in documents], ensure_ascii=False, indent=1) + "\n",
    )


def _search_document(document: DocumentData) -> dict[str, Any]:
    changes = {c["to"]["captured_at"]: c["url"] for c in document.changes}
    return {
        "id": document.id,
        "title": document.title,
        "service": document.service,
        "page": document.page,
        "versions": [
            {
                "at": iso(v.captured_at),
                "text": layout.version_text(document.id, v.captured_at),
                "change": changes.get(iso(v.captured_at)),
            }
            for v in document.versions
        ],
    }


def _document_json(document: DocumentData) -> dict[str, Any]:
    status = document.status
    error = None
    if status.get("failing_since"):
        error = {"kind": status.get("last_error_kind"), "message": status.get("last_error")}
    latest = document.versions[-1] if document.versions else None
    return {
        "id": document.id,
        "service": document.service,
        "title": document.title,
        "url": document.url,
        "page": document.page,
        "feed": layout.feed("documents", document.id),
        "configured": document.source is not None,
        "version_count": len(document.versions),
        "change_count": len(document.changes),
        "first_captured": iso(document.versions[0].captured_at) if document.versions else None,
        "current": {
            "captured_at": iso(latest.captured_at),
            "sha256": latest.sha256,
            "text_url": layout.version_text(document.id, latest.captured_at),
        }
        if latest
        else None,
        "last_changed": document.changes[-1]["to"]["captured_at"] if document.changes else None,
        "last_checked": status.get("last_checked"),
        "last_ok": status.get("last_ok"),
        "failing_since": status.get("failing_since"),
        "last_error": error,
        "open_flags": [
            {"topic": f["topic"], "label": f["label"], "kind": f["kind"]}
            for f in document.open_flags
        ],
        "versions": [
            {
                "captured_at": iso(v.captured_at),
                "sha256": v.sha256,
                "bytes": v.bytes,
                "text_url": layout.version_text(document.id, v.captured_at),
                "raw_url": layout.version_raw(document.id, v.captured_at)
                if v.snapshot_path
                else None,
                "imported": public_imported(v.imported),
            }
            for v in document.versions
        ],
    }


# --- feeds -----------------------------------------------------------------------------------


def _write_feeds(
    config: Config,
    env: jinja2.Environment,
    writer: SiteWriter,
    documents: list[DocumentData],
    everything: list[dict[str, Any]],
    topics: list[dict[str, Any]],
    now: datetime,
) -> None:
    # An empty feed still needs a stable <updated>, or every build would rewrite it.
    newest = [iso(d.versions[-1].captured_at) for d in documents if d.versions]
    quiet = max(newest) if newest else iso(now)
    template = env.get_template("site/feed.atom")
    entry_template = env.get_template("site/entry.html")

    def content(entry: dict[str, Any], feed_path: str) -> str:
        link = layout.absolute(config.site.site_url, entry["url"]) or layout.relative(
            feed_path, entry["url"]
        )
        return entry_template.render(e=entry, link=link)

    feeds = [(layout.feed("all"), f"{config.site.title}: all changes", everything)]
    for document in documents:
        feeds.append(
            (
                layout.feed("documents", document.id),
                f"{config.site.title}: {document.title}",
                sorted(document.changes, key=lambda c: c["to"]["captured_at"], reverse=True),
            )
        )
    for topic in topics:
        feeds.append(
            (
                topic["feed"],
                f"{config.site.title}: changes flagged {topic['topic'].label}",
                topic["changes"],
            )
        )
    for path, title, entries in feeds:
        entries = entries[:FEED_ENTRIES]
        updated = entries[0]["to"]["captured_at"] if entries else quiet
        xml = template.render(
            page=path,
            title=title,
            feed_id=_feed_id(config, path),
            entries=[{**e, "id": _entry_id(e), "content": content(e, path)} for e in entries],
            updated=updated,
            site_url=config.site.site_url,
            self_url=layout.absolute(config.site.site_url, path),
        )
        writer.write(path, _NOT_XML.sub("", xml))


def _feed_id(config: Config, path: str) -> str:
    base = config.site.site_url or f"tos-tracker:{config.site.title}:"
    return uuid.uuid5(uuid.NAMESPACE_URL, base + path).urn


def _entry_id(entry: dict[str, Any]) -> str:
    """Stable per change, whatever the site's address: document and the two versions."""
    before, after = entry["from"], entry["to"]
    name = "|".join((entry["document"], before["sha256"], after["sha256"], after["captured_at"]))
    return uuid.uuid5(uuid.NAMESPACE_URL, "tos-tracker:change:" + name).urn


# --- preview server --------------------------------------------------------------------------


def serve(out: Path, bind: str, port: int, ready: Callable[[str], None] | None = None) -> None:
    """A static file server over the built folder, for previewing; not for production."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    if not (out / layout.HOME).is_file():
        raise SiteError(f"{out} holds no built site; run `tos-tracker site build` first")

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Handler, directory=str(out))
    with ThreadingHTTPServer((bind, port), handler) as server:
        if ready:
            ready(f"http://{bind}:{server.server_port}/")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
