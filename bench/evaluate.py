#!/usr/bin/env python3
"""Precision and recall of topic flags, on two labelled sets.

1. Changes: the labelled cases in tests/cases/flags.json (pairs of dated versions in
   ../shared/corpus, the flags a reader expects on each change).
2. Clauses: tests/cases/topic_labels.json (real clauses, each judged about a topic or
   not), reported per split (tuning / held-out) and per topic. Needs no corpus.

python bench/evaluate.py                      # the built-in topics
python bench/evaluate.py --topics old.toml    # another topics file, e.g. to compare
python bench/evaluate.py --errors held-out    # also list the misjudged clauses
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.analysis.topics import Topic, default_topics, parse_topics  # noqa: E402
from tracker.app.evaluation import load_cases, load_labels, run_case, score, score_labels  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
LABELS = ROOT / "tests/cases/topic_labels.json"


def changes(topics: tuple[Topic, ...]) -> bool:
    """The corpus cases; False when the corpus is absent."""
    if not CORPUS.is_dir():
        print(f"no corpus at {CORPUS}: change cases skipped", file=sys.stderr)
        return False
    results = [run_case(CORPUS, c, topics) for c in load_cases(ROOT / "tests/cases/flags.json")]
    for r in results:
        status = "ok" if not r.missed and not r.extra else "MISMATCH"
        print(f"{r.case.name:<40} {len(r.flags):>3} flags  {status}")
        for m in r.missed:
            print(f"    missed: {m}")
        for f in r.extra:
            print(f"    unexpected: {f.topic} {f.kind} {f.text[:70]}")
    n = score(results)
    print(
        f"\nchanges: {n['cases']} cases, {n['expected_flags']} labelled flags:"
        f" precision {n['precision']:.3f}, recall {n['recall']:.3f}"
        f" ({n['false_positives']} false positives, {n['false_negatives']} missed);"
        f" cosmetic labels {n['cosmetic_correct']}/{n['cosmetic_cases']}"
    )
    return True


def clauses(topics: tuple[Topic, ...], errors: str | None) -> None:
    labels = load_labels(LABELS)
    table = score_labels(labels, topics)
    print(f"\nclauses: {len(labels)} labelled clause/topic pairs ({LABELS.name})")
    header = f"{'split':<9} {'topic':<20} {'labels':>6} {'tp':>4} {'fp':>4} {'fn':>4}"
    print(header + "  precision  recall")
    for split in ("tuning", "held-out", "all"):
        for key in sorted(table.get(split, {}), key=lambda k: (k != "all", k)):
            c = table[split][key]
            print(
                f"{split:<9} {key:<20} {c.labels:>6} {c.tp:>4} {c.fp:>4} {c.fn:>4}"
                f"  {c.precision:>9.2f}  {c.recall:>6.2f}"
            )
    if errors and errors in table:
        for label, found in table[errors]["all"].errors:
            kind = "false positive" if found else "missed"
            print(f"  {kind}: {label.document} {label.topic} {list(found)}: {label.text[:150]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topics", type=Path, help="a topics file ([[topics]]) instead of ours")
    parser.add_argument("--errors", choices=("tuning", "held-out", "all"), help="list errors")
    args = parser.parse_args()
    topics = default_topics()
    if args.topics:
        text = args.topics.read_text(encoding="utf-8")
        topics = parse_topics(tomllib.loads(text).get("topics", []), str(args.topics))
    changes(topics)
    clauses(topics, args.errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
