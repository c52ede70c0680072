#!/usr/bin/env python3
"""Seconds to analyse pathological changes: the word diff, clause matching and topic flags.

python bench/analysis.py                 # every case, each with a 300 s wall
python bench/analysis.py list-20000 line-5mb --timeout 60

Each case is one change between two generated texts, analysed as a run does it
(`index.compute_change`: word diff, segmenting, `clauses.compare`, `topics.flags_for`),
in a child process so a case that never ends is cut at the wall and reported as such:

- list-N: a list of N items, every tenth reworded (N = 20,000, 40,000, 200,000);
- line-5mb: one 5 MB line (no sentence end, so one clause) full of topic words, 50 places
  reworded.

Prints seconds per stage, the clause changes and flags found, and which stage's result was
coarse (reached its bound: the word diff's time limit, clause matching's work or time).
On 2 quiet cores, before the bounds → after: list-20000 7.9 s → 0.9 s, list-40000 27.6 s →
1.8 s, list-200000 over 300 s → 11.0 s, line-5mb over 300 s → 4.5 s (issue 15 measured 8 s,
44 s, over 300 s, and 115 s for its own 5 MB line).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = ("list-20000", "list-40000", "list-200000", "line-5mb")
UNIT = "we may use your content to train our models and share it with law enforcement, "


def texts(case: str) -> tuple[str, str]:
    """The two versions of a case."""
    if case.startswith("list-"):
        n = int(case.split("-")[1])

        def version(changed: bool) -> str:
            lines = ["# Terms", ""]
            for k in range(n):
                word = "revised" if changed and k % 10 == 0 else "original"
                lines.append(f"- Item {k}: the {word} rule number {k} applies to accounts {k * 7}.")
            return "\n".join(lines) + "\n"

        return version(False), version(True)
    if case == "line-5mb":
        old = "# Terms\n\n" + UNIT * (5_000_000 // len(UNIT)) + "\n"
        return old, old.replace("train our models", "improve the service", 50)
    raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")


def measure(case: str) -> dict[str, object]:
    """Analyse one case in this process, stage by stage."""
    from tracker.analysis.clauses import compare_clauses
    from tracker.analysis.diff import word_diff
    from tracker.analysis.segments import segment
    from tracker.analysis.topics import default_topics, flags_for

    old, new = texts(case)
    started = time.perf_counter()
    diff = word_diff(old, new)
    diffed = time.perf_counter()
    comparison = compare_clauses(segment(old), segment(new))
    compared = time.perf_counter()
    flags = flags_for(comparison.changes, default_topics())
    flagged = time.perf_counter()
    return {
        "case": case,
        "diff": round(diffed - started, 2),
        "clauses": round(compared - diffed, 2),
        "flags": round(flagged - compared, 2),
        "total": round(flagged - started, 2),
        "clause_changes": len(comparison.changes),
        "flagged": len(flags),
        "coarse": [name for name, c in (("diff", diff), ("clauses", comparison)) if c.coarse],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES))
    parser.add_argument("--timeout", type=float, default=300.0, help="wall per case, seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.cases[0])))
        return 0
    print(f"{'case':<14}{'diff':>8}{'clauses':>9}{'flags':>8}{'total':>8}  result")
    for case in args.cases:
        command = [sys.executable, __file__, "--child", case]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=args.timeout, check=True
            )
        except subprocess.TimeoutExpired:
            print(f"{case:<14}{'':>33}  did not finish in {args.timeout:.0f} s")
            continue
        except subprocess.CalledProcessError as error:
            print(f"{case:<14}  failed: {error.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout)
        coarse = f", coarse: {' and '.join(r['coarse'])}" if r["coarse"] else ""
        print(
            f"{case:<14}{r['diff']:>8}{r['clauses']:>9}{r['flags']:>8}{r['total']:>8}"
            f"  {r['clause_changes']} clause changes, {r['flagged']} flags{coarse}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
