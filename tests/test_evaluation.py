"""Flags on real history: labelled cases from ../shared/corpus (precision and recall)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tracker.clauses import compare, segment
from tracker.evaluation import load_cases, run_case, score
from tracker.topics import default_topics, flags_for

CASES = Path(__file__).parent / "cases" / "flags.json"


@pytest.mark.parametrize("case", load_cases(CASES), ids=lambda c: c.name)
def test_labelled_case(corpus: Path, case) -> None:
    result = run_case(corpus, case, default_topics())
    assert result.missed == [], f"expected flags not raised: {result.missed}"
    assert [(f.topic, f.kind, f.text[:60]) for f in result.extra] == [], "unexpected flags"
    if case.cosmetic is not None:
        assert result.cosmetic == case.cosmetic


def test_the_headline_changes_are_flagged(corpus: Path) -> None:
    by_name = {c.name: c for c in load_cases(CASES)}
    azure = run_case(corpus, by_name["azure-police-and-facial-recognition"], default_topics())
    assert {(f.topic, f.kind) for f in azure.flags} >= {
        ("law-enforcement", "added"),
        ("facial-recognition", "added"),
    }
    military = run_case(corpus, by_name["usage-policies-military-removed"], default_topics())
    assert ("military", "removed", "Military and warfare") in {
        (f.topic, f.kind, f.text) for f in military.flags
    }


def test_precision_and_recall(corpus: Path) -> None:
    numbers = score([run_case(corpus, c, default_topics()) for c in load_cases(CASES)])
    print(numbers)
    assert numbers["expected_flags"] >= 70
    assert numbers["precision"] >= 0.95 and numbers["recall"] >= 0.95
    assert numbers["cosmetic_correct"] == numbers["cosmetic_cases"]


def test_eu_daily_churn_raises_no_flag(corpus: Path) -> None:
    """The EU usage-policies set changes almost daily with 'Updated N days ago' noise."""
    files = sorted((corpus / "openai-usage-policies-combined-eu").glob("2026-0[678]-*.md"))
    assert len(files) > 40
    cosmetic = flagged = 0
    for old, new in itertools.pairwise(files):
        changes = compare(segment(old.read_text()), segment(new.read_text()))
        cosmetic += all(c.cosmetic for c in changes)
        flagged += bool(flags_for(changes, default_topics()))
    assert flagged == 0
    assert cosmetic >= len(files) - 5  # the rest are real edits (a removed heading, new sections)
