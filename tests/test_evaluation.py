"""Flags on real history: labelled cases from ../shared/corpus (precision and recall)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tracker.analysis.clauses import compare
from tracker.analysis.segments import segment
from tracker.analysis.topics import Topic, default_topics, flags_for
from tracker.app.evaluation import load_cases, load_labels, run_case, score, score_labels

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


# --- labelled clauses: is the clause about the topic? (tests/cases/topic_labels.json) ------

LABELS = Path(__file__).parent / "cases" / "topic_labels.json"


def test_the_labelled_clauses_are_split_by_document_as_recorded() -> None:
    """The split is by whole document, fixed before tuning: a document is in one part."""
    splits = json.loads(LABELS.read_text(encoding="utf-8"))["splits"]
    labels = load_labels(LABELS)
    assert len(labels) >= 250
    assert not set(splits["tuning"]) & set(splits["held-out"])
    assert all(label.document in splits[label.split] for label in labels)
    topic_ids = {t.id for t in default_topics()}
    for split in ("tuning", "held-out"):
        part = [label for label in labels if label.split == split]
        assert len(part) >= 100
        assert {label.about for label in part} == {True, False}
        assert {label.topic for label in part} == topic_ids
    assert all(label.text.strip() for label in labels)


@pytest.mark.parametrize(("split", "minimum"), [("tuning", 0.95), ("held-out", 0.9)])
def test_flags_a_reader_would_agree_with(split: str, minimum: float) -> None:
    counts = score_labels(load_labels(LABELS), default_topics())[split]["all"]
    wrong = [(label.topic, found, label.text[:80]) for label, found in counts.errors]
    assert counts.precision >= minimum, wrong
    assert counts.recall >= minimum, wrong


def test_keywords_alone_do_not_reach_the_bar() -> None:
    """The same words with every context rule dropped (each match counts): the labelled
    set tells the difference, so the thresholds above measure the context rules."""
    keywords_only = tuple(
        Topic(t.id, t.label, t.patterns + tuple(p for rule in t.context for p in rule.patterns))
        for t in default_topics()
    )
    counts = score_labels(load_labels(LABELS), keywords_only)["tuning"]["all"]
    assert counts.precision < 0.95
