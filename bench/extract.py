#!/usr/bin/env python3
"""What extraction costs per page: the lxml engine against the BeautifulSoup one.

python bench/extract.py [--pages 300] [--repeat 5] [--json FILE]

Times `extract_text`'s two engines (tracker/extract_lxml.py, what runs, and
tracker/extract_soup.py, the reference and fallback) on the benchmark's generated
pages (`bench/compare.py`'s `page_html`, with its `select = ["main"]`) and on the
HTML captures of ../shared/corpus (with their document's selectors from
tracker/default.toml). Prints milliseconds per page, the best of `--repeat`
rounds, and checks on the way that both engines give the same text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compare import page_html  # noqa: E402

from tracker.extract import lxml_engine as extract_lxml  # noqa: E402
from tracker.extract import soup_engine as extract_soup  # noqa: E402
from tracker.extract.engine import Engine, extract_with  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"

# (body, select, remove) for one page.
Page = tuple[bytes, Sequence[str], Sequence[str]]


def generated_pages(count: int) -> list[Page]:
    return [(page_html(n, 0), ["main"], []) for n in range(count)]


# Which tracked document each corpus folder of HTML captures is (the address changed).
CORPUS_DOCUMENTS = {
    "openai-usage-policies-html": "openai/usage-policies",
    "azure-openai-code-of-conduct-reconstructed": "azure-openai/code-of-conduct",
}


def corpus_pages() -> list[Page]:
    """The corpus's HTML captures, each with its document's selectors from default.toml."""
    if not (CORPUS / "manifest.json").is_file():
        return []
    documents = tomllib.loads((ROOT / "tracker" / "default.toml").read_text())["documents"]
    by_id = {d["id"]: (d.get("select", []), d.get("remove", [])) for d in documents}
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    pages = []
    for entry in manifest:
        if entry.get("format") == "html":
            folder = entry["file"].split("/")[0]
            select, remove = by_id.get(CORPUS_DOCUMENTS.get(folder, ""), ([], []))
            pages.append(((CORPUS / entry["file"]).read_bytes(), select, remove))
    return pages


def lxml_only(
    body: bytes | str, encoding: str | None, select: Sequence[str], remove: Sequence[str]
) -> list[str] | None:
    """The lxml engine, with what it hands over counted (and done by BeautifulSoup)."""
    try:
        return extract_lxml.render(body, encoding, select, remove)
    except extract_lxml.Unsupported:
        handed_over.append(body)
        return extract_soup.render(body, encoding, select, remove)


handed_over: list[bytes | str] = []


def best_ms(engine: Engine, pages: list[Page], repeat: int) -> tuple[float, list[str]]:
    """Best milliseconds per page over `repeat` rounds, and the texts of the last one."""
    best = float("inf")
    texts: list[str] = []
    for _ in range(repeat):
        start = time.perf_counter()
        texts = [extract_with(engine, body, None, s, r, None) for body, s, r in pages]
        best = min(best, (time.perf_counter() - start) / len(pages) * 1000)
    return best, texts


def measure(name: str, pages: list[Page], repeat: int) -> dict[str, Any]:
    handed_over.clear()
    lxml_ms, lxml_texts = best_ms(lxml_only, pages, repeat)
    fallbacks = len(handed_over) // repeat
    soup_ms, soup_texts = best_ms(extract_soup.render, pages, repeat)
    return {
        "set": name,
        "pages": len(pages),
        "kb_per_page": round(sum(len(p[0]) for p in pages) / len(pages) / 1024, 1),
        "lxml_ms": round(lxml_ms, 3),
        "bs4_ms": round(soup_ms, 3),
        "speedup": round(soup_ms / lxml_ms, 1),
        "fallbacks": fallbacks,
        "different_texts": sum(a != b for a, b in zip(lxml_texts, soup_texts, strict=True)),
    }


def print_table(rows: list[dict[str, Any]], say: Callable[[str], None] = print) -> None:
    say(f"{'':24}{'pages':>6}{'KB/page':>9}{'lxml ms':>9}{'bs4 ms':>9}{'speed-up':>10}")
    for row in rows:
        say(
            f"{row['set']:24}{row['pages']:>6}{row['kb_per_page']:>9}{row['lxml_ms']:>9.3f}"
            f"{row['bs4_ms']:>9.3f}{row['speedup']:>9.1f}x"
            + (f"  ({row['fallbacks']} handed to bs4)" if row["fallbacks"] else "")
            + (f"  {row['different_texts']} TEXTS DIFFER" if row["different_texts"] else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="generated pages (300)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best counts (5)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    rows = [measure("generated (page_html)", generated_pages(args.pages), args.repeat)]
    corpus = corpus_pages()
    if corpus:
        rows.append(measure("corpus HTML", corpus, args.repeat))
    else:
        print(f"(no corpus at {CORPUS}: generated pages only)")
    print("extract_text per page, best of", args.repeat, "rounds")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 1 if any(row["different_texts"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
