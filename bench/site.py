"""Site build times: the demo, and a generated store of many documents and versions.

    python bench/site.py                      # 200 documents x 20 versions
    python bench/site.py --documents 50 --versions 10 --json out.json

Prints, for each store: a full build into an empty folder, a rebuild with nothing
new, and a rebuild after one new version of one document. The generated store is
made through the real import path (extraction, store, index); making it is timed
separately and not part of the build figures.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.app.importer import ImportItem, import_items  # noqa: E402
from tracker.app.pipeline import Tracker  # noqa: E402
from tracker.config.settings import load_config  # noqa: E402
from tracker.ops.demo import run_demo  # noqa: E402
from tracker.publish.site import build_site  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from compare import sentence  # noqa: E402

RISKY = (
    "You may not use the service for facial recognition by or for a police department.",
    "You may not use the service for military and warfare purposes.",
    "We may use your content to train our models unless you opt out.",
)


def page(sections: list[tuple[str, list[str], list[str]]], title: str) -> bytes:
    body = [f"<h1>{title}</h1>"]
    for heading, paragraphs, items in sections:
        body.append(f"<h2>{heading}</h2>")
        body.extend(f"<p>{p}</p>" for p in paragraphs)
        if items:
            body.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    html = "<html><head><title>t</title></head><body><main>" + "".join(body) + "</main></body>"
    return (html + "</html>").encode()


def generate(tracker: Tracker, documents: int, versions: int, seed: int = 7) -> int:
    """Import `versions` evolving versions of `documents` policy-like pages; return bytes."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    total = 0
    for number in range(documents):
        sections = [
            (
                f"{n + 1}. {sentence(rng)[:40]}",
                [" ".join(sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(3)],
                [sentence(rng) for _ in range(rng.randint(0, 6))],
            )
            for n in range(12)
        ]
        items = []
        for version in range(versions):
            if version:
                for _ in range(rng.randint(1, 4)):
                    _, paragraphs, _ = rng.choice(sections)
                    paragraphs[rng.randrange(len(paragraphs))] = sentence(rng)
                if rng.random() < 0.3:
                    rng.choice(sections)[2].append(rng.choice(RISKY))
                if rng.random() < 0.2:
                    bullets = rng.choice(sections)[2]
                    if bullets:
                        bullets.pop(rng.randrange(len(bullets)))
            body = page(sections, f"Terms of service {number}")
            total += len(body)
            items.append(
                ImportItem(
                    captured_at=start + timedelta(days=30 * version, minutes=number),
                    body=body,
                    kind="html",
                    imported={"source": "folder", "file": f"bench-{number}-{version}.html"},
                )
            )
        import_items(tracker, f"bench/doc-{number:04d}", items)
    return total


def timed_builds(tracker: Tracker, out: Path, document: str, new_body: bytes) -> dict[str, float]:
    started = time.perf_counter()
    first = build_site(tracker, out)
    full = time.perf_counter() - started
    started = time.perf_counter()
    again = build_site(tracker, out)
    noop = time.perf_counter() - started
    last = tracker.store.versions(document)[-1].captured_at
    import_items(
        tracker,
        document,
        [
            ImportItem(
                last + timedelta(days=1), new_body, "html", {"source": "folder", "file": "new"}
            )
        ],
    )
    started = time.perf_counter()
    after = build_site(tracker, out)
    one = time.perf_counter() - started
    return {
        "full_seconds": full,
        "full_files_written": first.written,
        "full_changes_computed": first.computed,
        "noop_seconds": noop,
        "noop_files_written": again.written,
        "one_new_change_seconds": one,
        "one_new_change_computed": after.computed,
        "one_new_change_files_written": after.written,
        "changes": after.changes,
        "documents": after.documents,
        "site_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
    }


def bench_demo(folder: Path) -> dict[str, float]:
    run_demo(folder / "demo", echo=lambda _: None)
    config = load_config(folder / "demo" / "tracker.toml")
    with Tracker.open(config) as tracker:
        document = "azure-openai/code-of-conduct"
        body = tracker.store.read_snapshot(tracker.store.versions(document)[-1].snapshot_path or "")
        body = body.replace(b"police department", b"police force or sheriff", 1)
        return timed_builds(tracker, folder / "demo-site", document, body)


def bench_generated(folder: Path, documents: int, versions: int) -> dict[str, float]:
    (folder / "gen").mkdir()
    entries = [
        f'[[documents]]\nid = "bench/doc-{n:04d}"\nservice = "Service {n % 17}"\n'
        f'title = "Terms of service {n}"\nurl = "http://127.0.0.1:9/doc-{n}"\nselect = ["main"]\n'
        for n in range(documents)
    ]
    (folder / "gen" / "tracker.toml").write_text("\n".join(entries), encoding="utf-8")
    config = load_config(folder / "gen" / "tracker.toml")
    with Tracker.open(config) as tracker:
        started = time.perf_counter()
        raw = generate(tracker, documents, versions)
        made = time.perf_counter() - started
        document = "bench/doc-0000"
        body = tracker.store.read_snapshot(tracker.store.versions(document)[-1].snapshot_path or "")
        body = body.replace(b"</main>", b"<p>" + RISKY[0].encode() + b"</p></main>")
        result = timed_builds(tracker, folder / "gen-site", document, body)
    return {**result, "generate_seconds": made, "raw_bytes": raw}


def show(label: str, r: dict[str, float]) -> None:
    print(
        f"{label}: {int(r['documents'])} documents, {int(r['changes'])} changes,"
        f" site {r['site_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"  full build      {r['full_seconds']:8.2f} s"
        f"  ({int(r['full_changes_computed'])} changes computed,"
        f" {int(r['full_files_written'])} files)"
    )
    print(f"  nothing new     {r['noop_seconds']:8.2f} s  ({int(r['noop_files_written'])} files)")
    print(
        f"  one new change  {r['one_new_change_seconds']:8.2f} s"
        f"  ({int(r['one_new_change_computed'])} changes computed,"
        f" {int(r['one_new_change_files_written'])} files)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tos-bench-site-") as temp:
        folder = Path(temp)
        results = {"demo": bench_demo(folder)}
        show("Demo site", results["demo"])
        generated = bench_generated(folder, args.documents, args.versions)
        results["generated"] = generated
        show(f"Generated store ({args.documents} x {args.versions})", generated)
        print(
            f"  (making the store: {generated['generate_seconds']:.1f} s through import,"
            f" {generated['raw_bytes'] / 1e6:.1f} MB of HTML)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Peak RSS of this process: {peak:.0f} MiB")
    results["peak_rss_mib"] = peak  # type: ignore[assignment]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
