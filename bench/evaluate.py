#!/usr/bin/env python3
"""Precision and recall of topic flags on the labelled cases in tests/cases/flags.json.

python bench/evaluate.py        # needs ../shared/corpus beside the repository
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.evaluation import load_cases, run_case, score  # noqa: E402
from tracker.topics import default_topics  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def main() -> int:
    if not CORPUS.is_dir():
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return 1
    results = [
        run_case(CORPUS, c, default_topics()) for c in load_cases(ROOT / "tests/cases/flags.json")
    ]
    for r in results:
        status = "ok" if not r.missed and not r.extra else "MISMATCH"
        print(f"{r.case.name:<40} {len(r.flags):>3} flags  {status}")
        for m in r.missed:
            print(f"    missed: {m}")
        for f in r.extra:
            print(f"    unexpected: {f.topic} {f.kind} {f.text[:70]}")
    n = score(results)
    summary = (
        f"{n['cases']} cases, {n['expected_flags']} labelled flags:"
        f" precision {n['precision']:.3f}, recall {n['recall']:.3f}"
        f" ({n['false_positives']} false positives, {n['false_negatives']} missed);"
        f" cosmetic labels {n['cosmetic_correct']}/{n['cosmetic_cases']}"
    )
    print("\n" + summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
