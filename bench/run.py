#!/usr/bin/env python3
"""Benchmarks that print numbers: tos-tracker against urlwatch, diff time, bytes on disk.

    python bench/run.py [--pages N] [--quick] [--repeat N] [--json out.json]

Measures, on this machine:
  * the main table: tos-tracker and urlwatch as subprocesses over N generated policy
    pages (default 300) served on 127.0.0.1 (`bench/compare.py`): first run, unchanged
    run, 10% of pages changed; wall time, peak RSS and the ratio tos-tracker / urlwatch;
    then a site build over the store that made, and the store's bytes on disk;
  * a full run of the pipeline over the bundled demo history (6 captures, 2 documents,
    real HTTP on 127.0.0.1), per run and in total;
  * the word diff of the largest real document in ../shared/corpus (when present)
    against its neighbouring version, and of a ~150 KB policy built from it, with both
    builds of diff-match-patch (C++ `fast-diff-match-patch` and pure Python);
  * the bytes the demo's store takes on disk (raw snapshots, texts, metadata, index).
Speed targets live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compare import compare, print_table  # noqa: E402

from tracker.analysis.diff import word_diff  # noqa: E402
from tracker.app.pipeline import Tracker, run  # noqa: E402
from tracker.config.settings import load_config  # noqa: E402
from tracker.ops.demo import _Site, bundled_captures, demo_config, serve  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def bench_site(work: Path) -> dict[str, object]:
    from tracker.publish.site import build_site

    config = load_config(work / "tracker.toml")
    with Tracker.open(config) as tracker:
        t0 = time.perf_counter()
        built = build_site(tracker, work / "site")
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "documents": built.documents, "written": built.written}


def bench_demo_runs(repeat: int) -> dict[str, object]:
    totals, per_run = [], []
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            site = _Site()
            captures = bundled_captures()
            with serve(site) as base:
                (work / "tracker.toml").write_text(demo_config(base))
                config = load_config(work / "tracker.toml")
                started = time.perf_counter()
                live: list[str] = []
                with Tracker.open(config) as tracker:
                    for capture in captures:
                        site.pages[f"/{capture.document}"] = capture.body
                        if capture.document not in live:
                            live.append(capture.document)
                        t0 = time.perf_counter()
                        run(tracker, only=live, clock=lambda m=capture.captured_at: m)
                        per_run.append(time.perf_counter() - t0)
                totals.append(time.perf_counter() - started)
            sizes = store_sizes(config.store_path, config.index_path)
    return {
        "captures": len(bundled_captures()),
        "runs": len(per_run) // repeat,
        "total_seconds_median": statistics.median(totals),
        "per_run_seconds_median": statistics.median(per_run),
        "per_run_seconds_max": max(per_run),
        "store": sizes,
    }


def store_sizes(store: Path, index: Path) -> dict[str, int]:
    out = {"raw_gz": 0, "raw_uncompressed": 0, "text": 0, "metadata": 0, "runs": 0}
    for path in store.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        if "_runs" in path.parts:
            out["runs"] += size
        elif path.name.endswith(".gz"):
            out["raw_gz"] += size
            meta = json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
            out["raw_uncompressed"] += meta["snapshot"]["bytes"]
        elif path.suffix == ".md":
            out["text"] += size
        elif path.suffix == ".json":
            out["metadata"] += size
    out["files_total"] = out["raw_gz"] + out["text"] + out["metadata"] + out["runs"]
    out["index"] = sum(p.stat().st_size for p in index.parent.glob(index.name + "*"))
    return out


def timed_diff(old: str, new: str, backend: str, repeat: int) -> dict[str, float]:
    os.environ["TOS_TRACKER_DIFF"] = backend
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = word_diff(old, new)
        times.append(time.perf_counter() - t0)
    os.environ.pop("TOS_TRACKER_DIFF", None)
    assert result is not None
    return {
        "seconds_median": statistics.median(times),
        "added_words": result.added_words,
        "removed_words": result.removed_words,
    }


def bench_diff(repeat: int) -> dict[str, object]:
    if not CORPUS.is_dir():
        return {"skipped": f"no corpus at {CORPUS}"}
    texts = sorted(CORPUS.rglob("*.md"), key=lambda p: p.stat().st_size)
    texts = [p for p in texts if p.name[:4].isdigit()]
    largest = texts[-1]
    siblings = sorted(p for p in largest.parent.glob("*.md") if p != largest)
    neighbour = min(siblings, key=lambda p: abs(p.stat().st_size - largest.stat().st_size))
    old, new = neighbour.read_text(), largest.read_text()
    # A ~150 KB policy: the largest document six times over, each copy edited a little.
    big_old = "\n\n".join(f"## Part {i}\n\n{old}" for i in range(6))
    big_new = "\n\n".join(f"## Part {i}\n\n{new if i % 2 else old}" for i in range(6))
    out: dict[str, object] = {
        "largest": {
            "file": str(largest.relative_to(CORPUS)),
            "other": neighbour.name,
            "bytes": len(new.encode()),
        },
        "synthetic_150k": {"bytes": len(big_new.encode())},
    }
    for label, (a, b) in {"largest": (old, new), "synthetic_150k": (big_old, big_new)}.items():
        entry = out[label]
        assert isinstance(entry, dict)
        for backend in ("fast", "python"):
            entry[backend] = timed_diff(a, b, backend, repeat if backend == "fast" else 1)
    return out


def bench_extract(repeat: int) -> dict[str, object]:
    """Extraction of the largest raw HTML page in the corpus (OpenAI's, 2025-01-30)."""
    from tracker.extract.engine import extract_text

    pages = (
        sorted(CORPUS.rglob("*.html"), key=lambda p: p.stat().st_size) if CORPUS.is_dir() else []
    )
    if not pages:
        return {"skipped": f"no corpus at {CORPUS}"}
    page = pages[-1]
    body = page.read_bytes()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        text = extract_text(body, select=["main", "#content"], remove=["main .sr-only"])
        times.append(time.perf_counter() - t0)
    return {
        "file": str(page.relative_to(CORPUS)),
        "bytes": len(body),
        "text_bytes": len(text.encode()),
        "seconds_median": statistics.median(times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="generated pages (300)")
    parser.add_argument("--quick", action="store_true", help="60 pages, one repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if args.quick:
        args.pages, args.repeat = min(args.pages, 60), 1
    with tempfile.TemporaryDirectory() as tmp:
        versus = compare(args.pages, Path(tmp))
        print_table(versus)
        versus["site"] = bench_site(Path(versus["tos_tracker_dir"]))
        print(f"Site build over that store: {versus['site']['seconds']:.2f} s")
    results: dict[str, object] = {
        "versus_urlwatch": versus,
        "demo": bench_demo_runs(args.repeat),
        "diff": bench_diff(args.repeat),
        "extract": bench_extract(args.repeat),
    }
    demo = results["demo"]
    assert isinstance(demo, dict)
    print(f"Demo: {demo['runs']} runs over {demo['captures']} captures (real HTTP on 127.0.0.1)")
    print(
        f"  total {demo['total_seconds_median']:.3f} s (median of {args.repeat}),"
        f" per run median {demo['per_run_seconds_median'] * 1000:.1f} ms,"
        f" max {demo['per_run_seconds_max'] * 1000:.1f} ms"
    )
    sizes = demo["store"]
    print(
        f"  store on disk: {sizes['files_total']:,} bytes in files"
        f" (raw gzip {sizes['raw_gz']:,} of {sizes['raw_uncompressed']:,} uncompressed,"
        f" text {sizes['text']:,}, metadata {sizes['metadata']:,}, run journal {sizes['runs']:,})"
        f" + index {sizes['index']:,}"
    )
    diff = results["diff"]
    if "skipped" in diff:
        print(f"Diff: skipped ({diff['skipped']})")
    else:
        for label in ("largest", "synthetic_150k"):
            entry = diff[label]
            name = entry.get("file", "6 edited copies of it")
            print(
                f"Diff {label} ({name}, {entry['bytes']:,} bytes):"
                f" fast {entry['fast']['seconds_median'] * 1000:.1f} ms,"
                f" pure Python {entry['python']['seconds_median'] * 1000:.1f} ms"
                f" (+{entry['fast']['added_words']}/-{entry['fast']['removed_words']} words)"
            )
    extract = results["extract"]
    if "skipped" not in extract:
        print(
            f"Extract largest raw page ({extract['file']}, {extract['bytes']:,} bytes"
            f" -> {extract['text_bytes']:,} bytes of text):"
            f" {extract['seconds_median'] * 1000:.1f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
