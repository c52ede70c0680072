#!/usr/bin/env python3
"""Clause changes and flags over the consecutive distinct texts of a real-web document.

python bench/restructure.py [document-id] [-v]   # needs ../shared/corpus/real-web

Counts each kind of clause change (cosmetic apart) and the flags raised, so a change
to clause matching can be measured on a real restructure (Perplexity's terms of
service, April–July 2025: renumbering, heading case, list nesting, few word changes).
"""

from __future__ import annotations

import gzip
import itertools
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.analysis.clauses import compare, cosmetic_reason  # noqa: E402
from tracker.analysis.segments import segment  # noqa: E402
from tracker.analysis.topics import default_topics, flags_for  # noqa: E402
from tracker.extract.engine import extract_text  # noqa: E402

REAL_WEB = ROOT.parent / "shared" / "corpus" / "real-web"


def texts(document: str) -> list[tuple[str, str]]:
    """(capture file, extracted text) for each capture whose text differs from the one before."""
    manifest = json.loads((REAL_WEB / "manifest.json").read_text(encoding="utf-8"))
    entry = next(d for d in manifest["documents"] if d["id"] == document)
    out: list[tuple[str, str]] = []
    for capture in entry["captures"]:
        body = gzip.decompress((REAL_WEB / document / capture["file"]).read_bytes())
        try:
            text = extract_text(body, select=entry["select"], remove=entry["remove"])
        except Exception as error:
            print(f"{capture['file']}: {error}", file=sys.stderr)
            continue
        if not out or out[-1][1] != text:
            out.append((capture["file"], text))
    return out


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv
    document = args[0] if args else "perplexity/terms-of-service"
    if not REAL_WEB.is_dir():
        print(f"no real-web corpus at {REAL_WEB}", file=sys.stderr)
        return 1
    versions = texts(document)
    topics = default_topics()
    total: Counter[str] = Counter()
    flags_total = 0
    for (_, old), (name, new) in itertools.pairwise(versions):
        changes = compare(segment(old), segment(new))
        flags = flags_for(changes, topics)
        kinds = Counter(c.kind + (" (cosmetic)" if c.cosmetic else "") for c in changes)
        total.update(kinds)
        flags_total += len(flags)
        shown = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        why = cosmetic_reason(changes) if changes else None
        print(
            f"{name}: {shown or 'no clause change'}; {len(flags)} flags"
            + (f" [{why}]" if why else "")
        )
        for flag in flags:
            print(f"    flag {flag.topic} {flag.kind}: {flag.text[:90]}")
        if verbose:
            for c in changes:
                if not c.cosmetic:
                    print(f"    {c.kind}: {(c.before.text if c.before else '')[:80]!r}")
                    print(f"        -> {(c.after.text if c.after else '')[:80]!r}")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(total.items()))
    print(f"{len(versions)} distinct texts; {kinds}")
    print(f"{flags_total} flags")
    return 0


if __name__ == "__main__":
    sys.exit(main())
