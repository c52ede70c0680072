"""The offline demo: the real pipeline against bundled history served on 127.0.0.1.

A small HTTP server plays the part of the providers' websites, serving each
bundled capture in date order (with ETags, so unchanged pages answer 304). The
tracker fetches it over real HTTP with its clock set to each capture's date, so
the store, the history and the reports carry the real dates of the real changes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from tracker.app.history import change_for
from tracker.app.importer import ImportItem, import_items
from tracker.app.outcomes import DocumentOutcome
from tracker.app.pipeline import Tracker, run
from tracker.config.settings import load_config
from tracker.core.errors import TrackerError
from tracker.core.times import iso, parse_iso
from tracker.publish.report import terminal_diff, write_report
from tracker.publish.site import build_site

MARKER = ".tos-tracker-demo"

DEMO_DOCUMENTS = {
    "azure-openai/code-of-conduct": {
        "service": "Azure OpenAI",
        "title": "Code of conduct for Azure OpenAI Service (labelled reconstruction)",
        "select": ["main .content"],
        "remove": ["nav", "form", "button", ".feedback"],
    },
    "openai/usage-policies": {
        "service": "OpenAI",
        "title": "Usage policies",
        "select": ["main", "#content"],
        "remove": ['select[name="Locale Select"]', "main .sr-only"],
    },
}


@dataclass(frozen=True)
class DemoCapture:
    document: str
    captured_at: datetime
    body: bytes
    origin: dict[str, Any]
    file: str = ""  # its name in tracker/demo_data


def bundled_captures() -> list[DemoCapture]:
    """The bundled history, oldest first."""
    folder = resources.files("tracker").joinpath("demo_data")
    manifest = json.loads(folder.joinpath("manifest.json").read_text(encoding="utf-8"))
    captures = []
    for entry in manifest["captures"]:
        body = gzip.decompress(folder.joinpath(entry["file"]).read_bytes())
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise TrackerError(f"bundled demo file {entry['file']} does not match its sha256")
        captures.append(
            DemoCapture(
                entry["document"],
                parse_iso(entry["captured_at"]),
                body,
                entry["origin"],
                entry["file"],
            )
        )
    return sorted(captures, key=lambda c: c.captured_at)


class _Site:
    """What the pretend websites currently serve: path -> body."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        self.requests = 0
        self.not_modified = 0


def _handler(site: _Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/robots.txt":  # asked once per run; allows everything
                rules = b"User-agent: *\nAllow: /\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(rules)))
                self.end_headers()
                self.wfile.write(rules)
                return
            site.requests += 1
            body = site.pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                site.not_modified += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(site: _Site) -> Iterator[str]:
    """Serve `site` on 127.0.0.1 on a free port; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def demo_config(base_url: str) -> str:
    lines = [
        "# Written by `tos-tracker demo`: the bundled history, served on 127.0.0.1.",
        "[fetch]",
        "timeout = 10",
        "retries = 1",
        "backoff = 0.2",
        "host_delay = 0  # one local server; a real site gets the default 1 s between requests",
        "",
    ]
    for doc_id, spec in DEMO_DOCUMENTS.items():
        lines += [
            "[[documents]]",
            f'id = "{doc_id}"',
            f'service = "{spec["service"]}"',
            f'title = "{spec["title"]}"',
            f'url = "{base_url}/{doc_id}"',
            f"select = {json.dumps(spec['select'])}",
            f"remove = {json.dumps(spec['remove'])}",
            "",
        ]
    return "\n".join(lines)


def prepare(workdir: Path) -> None:
    if workdir.exists():
        if not (workdir / MARKER).exists():
            raise TrackerError(f"{workdir} exists and was not made by the demo; pick another --dir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by tos-tracker demo; deleted and rebuilt on each run\n")


IMPORT_BEFORE = datetime(2024, 3, 1, tzinfo=UTC)


def _import_item(capture: DemoCapture) -> ImportItem:
    origin = {k: v for k, v in capture.origin.items() if v}
    return ImportItem(
        capture.captured_at,
        capture.body,
        "html",
        {"source": "folder", "file": f"tracker/demo_data/{capture.file}", "manifest": origin},
        capture.origin.get("original_url"),
    )


def _fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def run_demo(
    workdir: Path,
    *,
    echo: Callable[[str], None] = print,
    line: Callable[[DocumentOutcome], str] | None = None,
) -> Path:
    """Run the demo in `workdir`; return the report's index page."""
    workdir = workdir.resolve()
    prepare(workdir)
    captures = bundled_captures()
    # The past is backfilled with `import`; what comes after is fetched live.
    backfill = [c for c in captures if c.captured_at < IMPORT_BEFORE]
    replay = [c for c in captures if c.captured_at >= IMPORT_BEFORE]
    site = _Site()
    with serve(site) as base_url:
        (workdir / "tracker.toml").write_text(demo_config(base_url), encoding="utf-8")
        config = load_config(workdir / "tracker.toml")
        live: list[str] = []
        with Tracker.open(config) as tracker:
            for document in dict.fromkeys(c.document for c in backfill):
                mine = [c for c in backfill if c.document == document]
                report = import_items(tracker, document, [_import_item(c) for c in mine])
                echo(f"Imported the bundled history: {report.line()}")
                site.pages[f"/{document}"] = mine[-1].body
                live.append(document)
            echo(
                f"\nServing {len(replay)} later bundled captures of {len(DEMO_DOCUMENTS)}"
                f" documents on {base_url}"
            )
            for capture in replay:
                site.pages[f"/{capture.document}"] = capture.body
                if capture.document not in live:
                    live.append(capture.document)
                moment = capture.captured_at
                echo(f"\nRun at {iso(moment)} (the capture date; clock set for the demo)")
                summary = run(tracker, only=live, clock=_fixed(moment))
                for outcome in summary.outcomes:
                    echo("  " + (line(outcome) if line else f"{outcome.status} {outcome.document}"))
                if summary.failed:
                    raise TrackerError("the demo run failed; see the lines above")
            index, pages = write_report(tracker, workdir / "report")
            built = build_site(tracker, workdir / "site")
            azure = change_for(tracker, "azure-openai/code-of-conduct")
            if azure is not None:
                echo("\nThe May 2024 change to the Azure OpenAI code of conduct:\n")
                echo(terminal_diff(azure, color=False))
    echo(f"{site.requests} HTTP requests, {site.not_modified} answered 304 Not Modified.")
    echo(f"Store: {config.store_path} · index: {config.index_path}")
    echo(f"Wrote {len(pages)} change reports. Open {index.as_uri()}")
    echo(f"Built the report site ({built.written} files in {built.seconds:.2f} s).")
    echo(f"Open {(built.out / 'index.html').as_uri()}")
    echo(f"  or preview it over HTTP: cd {workdir} && {sys.executable} -m tracker site serve")
    # The interpreter that ran the demo has tos-tracker installed, on PATH or not.
    echo(f"Explore: cd {workdir} && {sys.executable} -m tracker history openai/usage-policies")
    return index
