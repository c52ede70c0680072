"""tos-tracker against urlwatch on generated policy pages served on 127.0.0.1.

Used by `bench/run.py`; runs alone too:

    python bench/compare.py [--pages 300] [--json out.json]

Generates N policy-like pages (seeded, 35-50 KB each: headings, paragraphs, lists inside
`<main>`), serves them from a thread of this process with stable ETag and Last-Modified
headers and 304 answers, and times three runs of each tool as a subprocess: the first
(every page new), an unchanged one, and one with 10% of pages changed. Each tool is
started by a small launcher process that times it and reads its `ru_maxrss` from
`os.wait4`, so the peak RSS is the tool's own, not this process's pages (see `timed`).
urlwatch is installed by this script into its own virtual environment under
`bench/.cache/` (one `pip install urlwatch html2text`, needs the network once).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
URLWATCH_VENV = CACHE / "venv-urlwatch"
WORKERS = 4  # tos-tracker's default; urlwatch uses its fixed pool of 10 threads

WORDS = [
    "service",
    "user",
    "content",
    "data",
    "account",
    "policy",
    "provider",
    "terms",
    "agreement",
    "use",
    "access",
    "rights",
    "information",
    "law",
    "request",
    "security",
    "personal",
    "customer",
    "model",
    "output",
    "input",
    "license",
    "fee",
    "payment",
    "period",
    "notice",
    "third",
    "party",
    "processing",
    "purpose",
    "consent",
    "retention",
    "transfer",
    "subscription",
    "feature",
    "api",
    "developer",
    "organization",
    "liability",
    "warranty",
    "dispute",
    "court",
    "termination",
    "suspension",
    "breach",
    "obligation",
    "confidential",
    "disclose",
    "safeguard",
]


def sentence(rng: random.Random) -> str:
    """A policy-like sentence of 8-22 words; bench/site.py builds its pages from it too."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    return " ".join(words).capitalize() + "."


def page_html(number: int, revision: int) -> bytes:
    """Page `number` at `revision`: 35-50 KB, the same bytes for the same arguments.

    A revision rewrites one paragraph and adds one list item, so a change is small
    and somewhere in the middle, like most real policy edits.
    """
    rng = random.Random(number)
    target = rng.randint(35_000, 48_000)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Policy {number}</title></head><body>",
        "<header><nav><a href='/'>Home</a> <a href='/legal'>Legal</a></nav></header>",
        f"<main><h1>Terms of Service {number}</h1>",
    ]
    size, section = 0, 0
    blocks: list[str] = []
    while size < target - 600:
        section += 1
        block = [f"<h2>{section}. {sentence(rng)[:40]}</h2>"]
        for _ in range(rng.randint(2, 4)):
            sentences = " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))
            block.append(f"<p>{sentences}</p>")
        if rng.random() < 0.6:
            items = "".join(f"<li>{sentence(rng)}</li>" for _ in range(rng.randint(3, 6)))
            block.append(f"<ul>{items}</ul>")
        text = "".join(block)
        blocks.append(text)
        size += len(text)
    if revision:
        edit = random.Random(number * 1000 + revision)
        at = len(blocks) // 2
        new = " ".join(sentence(edit) for _ in range(4))
        blocks[at] = re.sub("<p>.*?</p>", f"<p>{new}</p>", blocks[at], count=1)
        blocks[at] += f"<ul><li>Revision {revision}: {sentence(edit)}</li></ul>"
    parts += blocks
    parts.append("</main><footer><p>&copy; Example Corp</p></footer></body></html>")
    return "\n".join(parts).encode()


class Site:
    """The pages being served: path -> (body, etag, last-modified), changed by the bench."""

    def __init__(self, pages: int) -> None:
        self.pages: dict[str, tuple[bytes, str, str]] = {}
        self.revisions = dict.fromkeys(range(pages), 0)
        self.requests = 0
        self.not_modified = 0
        self.lock = threading.Lock()
        for n in range(pages):
            self.set(n, 0)

    def set(self, number: int, revision: int) -> None:
        body = page_html(number, revision)
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        # Stable per content: a fixed date moved on by the revision, never the clock.
        modified = formatdate(1_700_000_000 + revision * 86_400, usegmt=True)
        self.revisions[number] = revision
        self.pages[f"/p/{number:05d}"] = (body, etag, modified)

    def change(self, fraction: float) -> list[int]:
        count = max(1, round(len(self.revisions) * fraction))
        chosen = random.Random(len(self.revisions)).sample(sorted(self.revisions), count)
        for n in chosen:
            self.set(n, self.revisions[n] + 1)
        return sorted(chosen)


@contextmanager
def serve(site: Site) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; without TCP_NODELAY, Nagle's algorithm
        # holds the body until the client's delayed ACK (40 ms) on a kept-alive
        # connection, which real servers avoid. Both tools see the same server.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            with site.lock:
                site.requests += 1
            if self.path == "/robots.txt":
                self._send(200, b"User-agent: *\nAllow: /\n", "text/plain", {})
                return
            page = site.pages.get(self.path)
            if page is None:
                self._send(404, b"not found", "text/plain", {})
                return
            body, etag, modified = page
            headers = {"ETag": etag, "Last-Modified": modified}
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if (inm is not None and inm == etag) or (inm is None and ims == modified):
                with site.lock:
                    site.not_modified += 1
                self._send(304, b"", None, headers)
                return
            self._send(200, body, "text/html; charset=utf-8", headers)

        def _send(
            self, status: int, body: bytes, kind: str | None, headers: dict[str, str]
        ) -> None:
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Runs the measured command in a fresh, small process and reports on it. Linux keeps in a
# child's ru_maxrss the peak of the memory it had before exec, i.e. a fork of this process,
# which holds every generated page (120 MB at 3,000 pages): measured directly, each tool
# would be charged for the benchmark's own memory. The launcher is a few MB, so the
# figure is the tool's own peak. Wall time is taken in the launcher, around the tool only.
_LAUNCHER = """
import json, os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as handle:
    json.dump({"seconds": wall, "maxrss_kib": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime,
               "exit": os.waitstatus_to_exitcode(status)}, handle)
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`; its wall time, peak RSS (its own, from the OS) and output."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as report,
    ):
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, report.name, *cmd]
        subprocess.run(launcher, cwd=cwd, env=env, stdout=out, stderr=err, check=False)
        measured = json.loads(Path(report.name).read_text() or "{}")
        out.seek(0)
        err.seek(0)
        return {
            "seconds": measured.get("seconds", float("nan")),
            "peak_rss_mib": measured.get("maxrss_kib", 0) / 1024,  # KiB on Linux
            "cpu_seconds": measured.get("cpu", float("nan")),
            "exit": measured.get("exit", -1),
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace")[-2000:],
        }


def ensure_urlwatch() -> Path:
    exe = URLWATCH_VENV / "bin" / "urlwatch"
    if not exe.exists():
        print(f"Installing urlwatch into {URLWATCH_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(URLWATCH_VENV)], check=True)
        pip = URLWATCH_VENV / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", "urlwatch", "html2text"], check=True)
    return exe


class TosTracker:
    name = "tos-tracker"

    def __init__(self, work: Path, base: str, numbers: list[int], profile: Path | None) -> None:
        self.work = work / "tos-tracker"
        self.work.mkdir()
        self.profile = profile
        lines = [
            "[fetch]",
            f"workers = {WORKERS}",
            f"per_host = {WORKERS}",
            "host_delay = 0  # one local server; politeness, not speed, spaces real hosts",
            "timeout = 30",
            "",
        ]
        for n in numbers:
            lines += [
                "[[documents]]",
                f'id = "bench/p{n:05d}"',
                'service = "Bench"',
                f'title = "Policy {n}"',
                f'url = "{base}/p/{n:05d}"',
                'select = ["main"]',
                "",
            ]
        (self.work / "tracker.toml").write_text("\n".join(lines))

    def run(self, phase: str) -> dict[str, Any]:
        cmd = [sys.executable]
        if self.profile is not None:
            self.profile.mkdir(parents=True, exist_ok=True)
            out = self.profile / f"tos-tracker-{phase}.prof"
            cmd += [str(ROOT / "bench" / "profile_threads.py"), str(out), "run", "--json"]
        else:
            cmd += ["-m", "tracker", "run", "--json"]
        result = timed(cmd, self.work, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            counts = json.loads(result["stdout"])["counts"]
        except (ValueError, KeyError):
            counts = {}
        result["detected"] = {k: counts.get(k, 0) for k in ("new", "changed", "failed")}
        return result

    def store_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.work / "snapshots").rglob("*") if p.is_file())


class Urlwatch:
    name = "urlwatch"

    def __init__(self, work: Path, base: str, numbers: list[int]) -> None:
        self.exe = ensure_urlwatch()
        self.work = work / "urlwatch"
        self.work.mkdir()
        jobs = [
            json.dumps(
                {
                    "name": f"p{n:05d}",
                    "url": f"{base}/p/{n:05d}",
                    "filter": [{"css": "main"}, "html2text"],
                }
            )
            for n in numbers
        ]
        # JSON is YAML: one document per job.
        (self.work / "urls.yaml").write_text("\n---\n".join(jobs) + "\n")
        config = {
            "display": {"new": True, "error": True, "unchanged": False},
            "report": {
                "text": {"details": True, "footer": False, "minimal": False},
                "stdout": {"enabled": True, "color": False},
                "email": {"enabled": False},
                "html": {"diff": "unified"},
            },
        }
        (self.work / "urlwatch.yaml").write_text(json.dumps(config))

    def run(self, phase: str) -> dict[str, Any]:
        w = self.work
        cmd = [str(self.exe), "--urls", str(w / "urls.yaml"), "--config", str(w / "urlwatch.yaml")]
        cmd += ["--cache", str(w / "cache.db"), "--hooks", str(w / "hooks.py")]
        env = {**os.environ, "HOME": str(w), "XDG_CONFIG_HOME": str(w), "XDG_CACHE_HOME": str(w)}
        env.pop("PYTHONPATH", None)
        result = timed(cmd, w, env=env)
        out = result["stdout"]
        result["detected"] = {
            "new": len(re.findall(r"^\d+\. NEW: ", out, re.MULTILINE)),
            "changed": len(re.findall(r"^\d+\. CHANGED: ", out, re.MULTILINE)),
            "failed": len(re.findall(r"^\d+\. ERROR: ", out, re.MULTILINE)),
        }
        return result

    def store_bytes(self) -> int:
        return (self.work / "cache.db").stat().st_size


PHASES = ("first", "unchanged", "changed")


def compare(pages: int, work: Path, *, profile: Path | None = None) -> dict[str, Any]:
    """Both tools through the three phases over the same server; numbers per phase."""
    t0 = time.perf_counter()
    site = Site(pages)
    generated = time.perf_counter() - t0
    sizes = [len(b) for b, _, _ in site.pages.values()]
    numbers = sorted(site.revisions)
    results: dict[str, Any] = {
        "pages": pages,
        "page_bytes": {"min": min(sizes), "max": max(sizes), "total": sum(sizes)},
        "generate_seconds": generated,
        "workers": {"tos-tracker": WORKERS, "urlwatch": 10},
        "phases": {},
    }
    with serve(site) as base:
        tools = [TosTracker(work, base, numbers, profile), Urlwatch(work, base, numbers)]
        expected = {"first": pages, "unchanged": 0}
        for phase in PHASES:
            if phase == "changed":
                expected["changed"] = len(site.change(0.10))
            entry: dict[str, Any] = {"expected": expected[phase]}
            for tool in tools:
                before = site.requests
                outcome = tool.run(phase)
                outcome["requests"] = site.requests - before
                if outcome["exit"] != 0:
                    print(f"{tool.name} {phase}: exit {outcome['exit']}\n{outcome['stderr']}")
                outcome.pop("stdout")
                entry[tool.name] = outcome
            a, b = entry["tos-tracker"], entry["urlwatch"]
            entry["ratio_seconds"] = a["seconds"] / b["seconds"]
            entry["ratio_rss"] = a["peak_rss_mib"] / b["peak_rss_mib"]
            results["phases"][phase] = entry
        results["store_bytes"] = {t.name: t.store_bytes() for t in tools}
    results["tos_tracker_dir"] = str(tools[0].work)
    return results


def detected(entry: dict[str, Any], phase: str) -> int:
    d = entry["detected"]
    return int(d["new"] if phase == "first" else d["changed"])


def print_table(results: dict[str, Any]) -> None:
    pb = results["page_bytes"]
    print(
        f"tos-tracker vs urlwatch: {results['pages']} pages of {pb['min'] // 1000}-"
        f"{pb['max'] // 1000} KB ({pb['total'] / 1e6:.1f} MB) on 127.0.0.1,"
        f" {os.cpu_count()} CPUs; workers: tos-tracker {WORKERS}, urlwatch 10"
    )
    head = (
        f"{'phase':<10} {'tos-tracker':>12} {'urlwatch':>10} {'ratio':>6}"
        f"  {'tt MiB':>7} {'uw MiB':>7} {'ratio':>6}  {'detected tt/uw/expected':>24}"
    )
    print(head)
    print("-" * len(head))
    for phase, entry in results["phases"].items():
        a, b = entry["tos-tracker"], entry["urlwatch"]
        found = f"{detected(a, phase)}/{detected(b, phase)}/{entry['expected']}"
        if a["detected"]["failed"] or b["detected"]["failed"]:
            found += f" (failed {a['detected']['failed']}/{b['detected']['failed']})"
        print(
            f"{phase:<10} {a['seconds']:>10.2f} s {b['seconds']:>8.2f} s"
            f" {entry['ratio_seconds']:>5.2f}x"
            f"  {a['peak_rss_mib']:>7.1f} {b['peak_rss_mib']:>7.1f} {entry['ratio_rss']:>5.2f}x"
            f"  {found:>24}"
        )
    sb = results["store_bytes"]
    print(
        f"on disk: tos-tracker store {sb['tos-tracker']:,} bytes"
        f" (raw gzip + text + metadata), urlwatch cache {sb['urlwatch']:,} bytes"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile tos-tracker's runs into this folder (every thread with yappi installed)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = compare(args.pages, Path(tmp), profile=args.profile)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
