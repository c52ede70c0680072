"""Replay a folder of real captures as live runs and as an import, and compare the two.

    python bench/replay.py ../shared/corpus/real-web [--document ID]… [--json] [--keep DIR]
                           [--cloudflare-emails]

The folder has the real-web layout: a `manifest.json` listing documents (`id`, `url`,
`select`, `remove`, and `captures`: `file`, `captured_at`; without `captures`, the files of
the document's folder named by time) and one folder per document id holding the captures
(`*.html.gz` or `*.html`). Each document is replayed twice, in two
fresh stores:

- **live**: a real HTTP server on 127.0.0.1 serves capture *i* on run *i*; the document's
  URL in a temporary `tracker.toml` points at it (with the manifest's selectors), and one
  `run` per capture goes through the whole pipeline with the capture's time as the clock.
- **import**: `tos-tracker import` of the document's folder, as a user would backfill it.

`--cloudflare-emails` serves every capture as a site behind Cloudflare's email obfuscation
does: each address re-encoded on each load with a fresh random key (`cloudflare_obfuscate`),
in live runs and in the imported files alike, so a document's per-load link noise can be
replayed on any set of real captures.

Why: an alert must mean the terms changed, whichever way a capture came in. The table says,
per document and per mode, how many captures, versions, changes, alerting (non-cosmetic)
changes and flagged changes the store ends with, and the failures by kind; `agree` says
whether live and import gave the same versions, changes and flags, and `verify` whether the
index was consistent with the files after each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
import shutil
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tracker.app.importer import folder_items, import_items, kind_of  # noqa: E402
from tracker.app.pipeline import Tracker, run  # noqa: E402
from tracker.config.settings import load_config  # noqa: E402
from tracker.core.times import parse_iso  # noqa: E402
from tracker.storage.verify import check  # noqa: E402

FETCH = {
    # As the tests do: no robots.txt on the loopback server, no spacing between requests,
    # one attempt per run (a replayed capture does not change on retry). The plausibility
    # guards keep their defaults: they are part of what is measured.
    "timeout": 10,
    "retries": 0,
    "backoff": 0,
    "robots": False,
    "host_delay": 0,
}


@dataclass
class Outcome:
    """What one mode left in its store for one document."""

    captures: int = 0
    versions: int = 0
    changes: int = 0
    alerting: int = 0
    flagged: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    verify_ok: bool = False
    versions_at: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # "<to time> <topic>", sorted

    def same_history(self, other: Outcome) -> bool:
        return (
            self.versions_at == other.versions_at
            and (self.changes, self.alerting, self.flagged)
            == (other.changes, other.alerting, other.flagged)
            and self.flags == other.flags
        )


@dataclass
class DocumentReplay:
    document: str
    captures: int
    live: Outcome
    imported: Outcome

    @property
    def agree(self) -> bool:
        return self.live.same_history(self.imported)

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "captures": self.captures,
            "live": asdict(self.live),
            "import": asdict(self.imported),
            "agree": self.agree,
        }


class _Pages:
    """The bytes the loopback server answers with, swapped between runs."""

    def __init__(self) -> None:
        self.body = b""
        self.lock = threading.Lock()


@contextmanager
def serve(pages: _Pages) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering every GET with the current capture."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with pages.lock:
                body = pages.body
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def load_manifest(folder: Path) -> list[dict[str, Any]]:
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    documents = data["documents"] if isinstance(data, dict) else data
    return list(documents)


def captures_of(folder: Path, entry: dict[str, Any]) -> list[tuple[datetime, Path]]:
    """(capture time, file) of one document, oldest first: the manifest's list, or when it
    has none, the files of the document's folder named by time (as `import` reads them)."""
    base = folder / entry["id"]
    if "captures" not in entry:
        found, _ignored = folder_items(base)
        return [(item.captured_at, Path(item.imported["file"])) for item in found]
    out = [(parse_iso(c["captured_at"]), base / c["file"]) for c in entry["captures"]]
    return sorted(out)


def read_capture(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


# --- Cloudflare's email obfuscation, as a site behind it serves each load ------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MAILTO = re.compile(r'<a([^>]*?)href="mailto:([^"]+)"([^>]*)>(.*?)</a>', re.S)
_TEXT_RUN = re.compile(r">([^<]+)<")
CF_SCRIPT = (
    '<script src="/cdn-cgi/scripts/5c5dd728/cloudflare-static/email-decode.min.js"></script>'
)


def cf_encode(address: str, key: int) -> str:
    """Cloudflare's encoding: the key byte, then each UTF-8 byte of the address XOR it."""
    return f"{key:02x}" + "".join(f"{byte ^ key:02x}" for byte in address.encode())


def cf_span(address: str, key: int) -> str:
    """An address shown inside a mailto link: an encoded element."""
    return (
        f'<span class="__cf_email__" data-cfemail="{cf_encode(address, key)}">'
        "[email&#160;protected]</span>"
    )


def cf_plain(address: str, key: int) -> str:
    """An address in the text: Cloudflare makes it a link to the protection page."""
    return (
        f'<a href="/cdn-cgi/l/email-protection" class="__cf_email__" '
        f'data-cfemail="{cf_encode(address, key)}">[email&#160;protected]</a>'
    )


def cloudflare_obfuscate(html: str, rng: random.Random) -> str:
    """The page as Cloudflare's email obfuscation serves it: a new key for every address.

    Mailto links point at the protection page with the encoded address as fragment, and
    an address shown in their text becomes an encoded span; an address elsewhere in the
    text becomes an encoded link to the protection page; the decoding script is added.
    """

    def anchor(match: re.Match[str]) -> str:
        before, target, after, inner = match.groups()
        hexed = cf_encode(target, rng.randrange(256))
        inner = _EMAIL.sub(lambda e: cf_span(e[0], rng.randrange(256)), inner)
        return f'<a{before}href="/cdn-cgi/l/email-protection#{hexed}"{after}>{inner}</a>'

    html = _MAILTO.sub(anchor, html)
    html = _TEXT_RUN.sub(
        lambda m: ">" + _EMAIL.sub(lambda e: cf_plain(e[0], rng.randrange(256)), m[1]) + "<",
        html,
    )
    return html.replace("</body>", CF_SCRIPT + "</body>", 1)


def served(body: bytes, load: int, cloudflare_emails: bool) -> bytes:
    """What the site answers on its `load`-th load: the capture, obfuscated if asked."""
    if not cloudflare_emails:
        return body
    html = body.decode("utf-8", "replace")
    return cloudflare_obfuscate(html, random.Random(load)).encode("utf-8")


def write_tracker_config(workdir: Path, entry: dict[str, Any], url: str) -> Path:
    """A tracker.toml for one document: the manifest's selectors, the replay's URL."""
    doc = {
        "id": entry["id"],
        "service": entry.get("service", entry["id"].split("/")[0]),
        "title": entry.get("title", entry["id"]),
        "url": url,
        "browser_fallback": False,
    }
    if entry.get("select"):
        doc["select"] = list(entry["select"])
    if entry.get("remove"):
        doc["remove"] = list(entry["remove"])
    lines = (
        ["[fetch]"] + [f"{k} = {json.dumps(v)}" for k, v in FETCH.items()] + ["", "[[documents]]"]
    )
    lines += [f"{k} = {json.dumps(v)}" for k, v in doc.items()]
    path = workdir / "tracker.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def summarize(tracker: Tracker, document: str, captures: int, failures: Counter[str]) -> Outcome:
    """Versions, changes and flags as the index holds them, and verify's verdict."""
    index = tracker.index
    versions = list(
        index.db.query(
            "select captured_at from versions where document = ? order by captured_at", [document]
        )
    )
    changes = list(
        index.db.query(
            "select to_captured_at, cosmetic from changes where document = ?", [document]
        )
    )
    flags = list(
        index.db.query("select to_captured_at, topic from flags where document = ?", [document])
    )
    flagged_at = {f["to_captured_at"] for f in flags}
    index.commit()
    verdict = check(tracker.store, tracker.config)
    return Outcome(
        captures=captures,
        versions=len(versions),
        changes=len(changes),
        alerting=sum(1 for c in changes if not c["cosmetic"]),
        flagged=len(flagged_at),
        failures=dict(sorted(failures.items())),
        verify_ok=verdict.ok,
        versions_at=[v["captured_at"] for v in versions],
        flags=sorted({f"{f['to_captured_at']} {f['topic']}" for f in flags}),
    )


def replay_live(
    folder: Path, entry: dict[str, Any], workdir: Path, cloudflare_emails: bool = False
) -> Outcome:
    """One `run` per capture against a loopback server, at the capture's time."""
    items = captures_of(folder, entry)
    pages = _Pages()
    failures: Counter[str] = Counter()
    with serve(pages) as base:
        config = load_config(write_tracker_config(workdir, entry, f"{base}/{entry['id']}"))
        with Tracker.open(config) as tracker:
            for load, (when, path) in enumerate(items):
                with pages.lock:
                    pages.body = served(read_capture(path), load, cloudflare_emails)
                summary = run(tracker, clock=lambda when=when: when)
                for outcome in summary.outcomes:
                    if outcome.status == "failed":
                        failures[outcome.error_kind or "error"] += 1
            return summarize(tracker, entry["id"], len(items), failures)


def replay_import(
    folder: Path, entry: dict[str, Any], workdir: Path, cloudflare_emails: bool = False
) -> Outcome:
    """`import` of the document's folder into a fresh store."""
    items = captures_of(folder, entry)
    source = folder / entry["id"]
    if kind_of("x.html.gz") is None or cloudflare_emails:
        # Import copies named by the same capture times: decompressed for a tracker that
        # cannot read gzipped captures (before .html.gz support), or as served live.
        staged = workdir / "staged"
        staged.mkdir()
        for load, (when, path) in enumerate(items):
            body = served(read_capture(path), load, cloudflare_emails)
            (staged / (when.strftime("%Y%m%dT%H%M%SZ") + ".html")).write_bytes(body)
        source = staged
    config = load_config(write_tracker_config(workdir, entry, entry["url"]))
    failures: Counter[str] = Counter()
    with Tracker.open(config) as tracker:
        found, _ignored = folder_items(source)
        try:
            report = import_items(tracker, entry["id"], found)
        except Exception as exc:  # the tracker before issue 14 stopped on the first failure
            failures[f"stopped: {type(exc).__name__}"] += 1
        else:
            for kind, count in getattr(report, "failures", {}).items():
                failures[kind] += count
        return summarize(tracker, entry["id"], len(items), failures)


def replay(
    folder: Path,
    only: Sequence[str] = (),
    keep: Path | None = None,
    cloudflare_emails: bool = False,
) -> list[DocumentReplay]:
    """Replay every document of `folder` (or those in `only`) both ways."""
    results = []
    for entry in load_manifest(folder):
        if only and entry["id"] not in only:
            continue
        scratch = Path(tempfile.mkdtemp(prefix="replay-", dir=keep))
        try:
            live_dir, import_dir = scratch / "live", scratch / "import"
            live_dir.mkdir()
            import_dir.mkdir()
            live = replay_live(folder, entry, live_dir, cloudflare_emails)
            imported = replay_import(folder, entry, import_dir, cloudflare_emails)
        finally:
            if keep is None:
                shutil.rmtree(scratch, ignore_errors=True)
        results.append(DocumentReplay(entry["id"], live.captures, live, imported))
    return results


def _failures(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def table(results: Sequence[DocumentReplay]) -> str:
    """A markdown table: one row per document and mode."""
    head = (
        "| document | mode | captures | versions | changes | alerting | flagged"
        " | failures | verify | agree |"
    )
    rows = [head, "|" + "---|" * 10]
    for r in results:
        for mode, o in (("live", r.live), ("import", r.imported)):
            rows.append(
                f"| {r.document} | {mode} | {o.captures} | {o.versions} | {o.changes}"
                f" | {o.alerting} | {o.flagged} | {_failures(o.failures)}"
                f" | {'ok' if o.verify_ok else 'FAIL'} | {'yes' if r.agree else 'NO'} |"
            )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="manifest.json + one folder per document")
    parser.add_argument("--document", action="append", default=[], help="only this document")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--keep", type=Path, help="keep the replay stores under this folder")
    parser.add_argument(
        "--cloudflare-emails",
        action="store_true",
        help="serve every load with Cloudflare's email obfuscation (fresh keys each time)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # failures are counted in the table
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    results = replay(args.folder, args.document, args.keep, args.cloudflare_emails)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=1))
    else:
        print(table(results))
    return 0 if all(r.agree and r.live.verify_ok and r.imported.verify_ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
