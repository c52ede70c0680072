"""Clauses: segmentation along the document's structure, identity, cosmetic changes."""

from __future__ import annotations

import pytest

from tracker.clauses import compare, cosmetic_key, segment, summarize

DOC = """# Usage policies

Updated: 5 days ago

## Disallowed usage

We don't allow:

- Weapons development
- Military and warfare
  including for defence ministries
1. First numbered

| Use | Allowed |
| --- | --- |
| Police | No |

Setext heading
--------------

A short paragraph.
"""


def test_segments_follow_headings_items_rows_and_paragraphs() -> None:
    clauses = segment(DOC)
    assert [(c.kind, c.text) for c in clauses] == [
        ("heading", "Usage policies"),
        ("paragraph", "Updated: 5 days ago"),
        ("heading", "Disallowed usage"),
        ("paragraph", "We don't allow:"),
        ("item", "Weapons development"),
        ("item", "Military and warfare including for defence ministries"),
        ("item", "First numbered"),
        ("row", "Use | Allowed"),
        ("row", "Police | No"),
        ("heading", "Setext heading"),
        ("paragraph", "A short paragraph."),
    ]
    assert clauses[4].section == ("Usage policies", "Disallowed usage")
    assert clauses[-1].section == ("Usage policies", "Setext heading")


def test_long_paragraphs_split_into_sentences() -> None:
    sentence = "We may use your content to train our models unless you opt out of it. "
    clauses = segment(sentence * 6)
    assert [c.kind for c in clauses] == ["sentence"] * 6


def kinds(old: str, new: str) -> list[tuple[str, str, bool]]:
    return [(c.kind, c.text, c.cosmetic) for c in compare(segment(old), segment(new))]


def test_added_removed_modified_and_moved() -> None:
    old = (
        "## A\n\n- one rule here\n- two rule here\n- three rule here\n\n## B\n\n"
        "- banned use of police data\n"
    )
    new = (
        "## A\n\n- three rule here\n- one rule here\n- two rules here now\n\n## B\n\n"
        "- a brand new clause\n"
    )
    assert kinds(old, new) == [
        ("moved", "three rule here", False),
        ("modified", "two rules here now", False),
        ("removed", "banned use of police data", False),  # where it was, before what replaced it
        ("added", "a brand new clause", False),
    ]


def test_a_clause_moved_to_another_section_is_moved() -> None:
    old = "## A\n\n- keep this clause\n\n## B\n\n- other\n"
    new = "## A\n\n## B\n\n- other\n- keep this clause\n"
    (change,) = compare(segment(old), segment(new))
    assert change.kind == "moved" and change.before.section == ("A",) and change.section == ("B",)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Updated: 5 days ago", "Updated: 6 days ago"),
        ("Updated: 2 hours ago", "Updated: yesterday"),
        ("Last updated: October 24, 2025", "Last updated: November 19, 2025"),
        ("Effective: October 29, 2025", "Effective: 29 October 2025"),
        ("Article • 04/15/2024 • 3 contributors", "Article • 05/02/2024 • 4 contributors"),
        ('Don\'t do "this" – ever', "Don’t do “this”—ever"),
        ("c. Facilitating spyware", "Facilitating spyware"),
        ("See [this article⁠(opens in a new window)](https://x)", "See [this article](https://y)"),
    ],
)
def test_cosmetic_changes(old: str, new: str) -> None:
    assert cosmetic_key(
        old.replace("[", "").replace("](https://x)", "").replace("](https://y)", "")
    ) == (
        cosmetic_key(new.replace("[", "").replace("](https://x)", "").replace("](https://y)", ""))
    )
    changes = compare(segment(f"# T\n\n{old}\n"), segment(f"# T\n\n{new}\n"))
    assert all(c.cosmetic for c in changes)  # no change at all counts too (a list marker)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("You may not use it for weapons.", "You may use it for weapons."),
        (
            "Effective: October 29, 2025. No military use.",
            "Effective: October 29, 2025. Military use.",
        ),
        ("Users must be 13 or older.", "Users must be 18 or older."),
    ],
)
def test_real_changes_are_not_cosmetic(old: str, new: str) -> None:
    changes = compare(segment(old), segment(new))
    assert changes and not any(c.cosmetic for c in changes)


def test_summary_line() -> None:
    old = "## Disallowed usage\n\n- a\n- b clause text\n"
    new = "## Disallowed usage\n\n- a\n- new one\n- another new\n- third new\n"
    assert summarize(compare(segment(old), segment(new))) == (
        "3 clauses added, 1 removed in 'Disallowed usage'"
    )
    assert summarize(compare(segment("Updated: 1 day ago"), segment("Updated: 2 days ago"))) == (
        "cosmetic only (dates, counters, whitespace or quote style)"
    )


# --- regressions found in review --------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("You may post up to 10 comments per day.", "You may post up to 50 comments per day."),
        ("See Section 3.1.12 for details.", "See Section 3.1.14 for details."),
        (
            "This applies to accounts created before January 1, 2024.",
            "This applies to accounts created before January 1, 2026.",
        ),
        ("We keep logs for 30 days from March 2024.", "We keep logs for 30 days from March 2025."),
        ("Content you create today is yours.", "Content you create is yours."),
        (
            "Fees apply after 12:00 hours of usage per day.",
            "Fees apply after 24:00 hours of usage per day.",
        ),
    ],
)
def test_dates_and_numbers_inside_sentences_are_substance(old: str, new: str) -> None:
    changes = compare(segment(old), segment(new))
    assert [c.cosmetic for c in changes] == [False]


def test_cosmetic_edges() -> None:
    # An escaped enumerator ("1\\.") renumbered, as in Open Terms Archive markdown.
    assert all(
        c.cosmetic for c in compare(segment("1\\. Misleading\n"), segment("2\\. Misleading\n"))
    )
    # A date-only line is cosmetic whether it appears or goes.
    added = compare(segment("Intro text.\n"), segment("Intro text.\n\nMay 2, 2024\n"))
    removed = compare(segment("Intro text.\n\nMay 2, 2024\n"), segment("Intro text.\n"))
    assert [(c.kind, c.cosmetic) for c in added + removed] == [("added", True), ("removed", True)]


def test_a_heading_in_another_quote_style_does_not_move_its_clauses() -> None:
    changes = compare(
        segment("## Don't do this\n\n- Do not build weapons.\n"),
        segment("## Don’t do this\n\n- Do not build weapons.\n"),
    )
    assert [(c.kind, c.cosmetic) for c in changes] == [("modified", True)]


def test_many_reworded_clauses_are_still_matched() -> None:
    """Past 500 x 500 unmatched clauses, candidates come from an inverted index."""
    base = [f"- Rule {n} about topic{n} and subject{n * 7} in detail.\n" for n in range(700)]
    reworded = [line.replace("in detail", "in more detail") for line in base]
    changes = compare(segment("".join(base)), segment("".join(reworded)))
    assert {c.kind for c in changes} == {"modified"} and len(changes) == 700


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "As of January 1, 2026, we no longer allow military use.",
            "As of January 1, 2027, we no longer allow military use.",
        ),
        (
            "Effective March 1, 2025, users must be 18.",
            "Effective March 1, 2026, users must be 18.",
        ),
    ],
)
def test_a_sentence_that_starts_like_a_dateline_is_still_substance(old: str, new: str) -> None:
    assert [c.cosmetic for c in compare(segment(old), segment(new))] == [False]


def test_this_policy_was_last_updated_is_a_dateline() -> None:
    changes = compare(
        segment("This policy was last updated on May 2, 2024."),
        segment("This policy was last updated on June 3, 2024."),
    )
    assert [c.cosmetic for c in changes] == [True]


def test_a_renamed_or_recased_heading_keeps_its_clauses_in_place() -> None:
    old = "## Universal Policies\n\n- Comply with laws.\n- Do not harm.\n"
    for heading in ("## Universal policies", "## Universal usage policies"):
        changes = compare(segment(old), segment(old.replace("## Universal Policies", heading)))
        assert [c.kind for c in changes] == ["modified"], heading


def test_a_duplicate_inserted_before_its_twin_is_one_addition() -> None:
    changes = compare(segment("- Yes\n- No\n- Yes\n"), segment("- Yes\n- Yes\n- No\n- Yes\n"))
    assert [(c.kind, c.text) for c in changes] == [("added", "Yes")]
    old = "## A\n\n- None.\n\n## B\n\n- None.\n"
    new = "## Z\n\n- None.\n\n" + old
    assert [(c.kind, c.text) for c in compare(segment(old), segment(new))] == [
        ("added", "Z"),
        ("added", "None."),
    ]


NOISY = [
    "Last updated: May 2, 2024",
    "Updated 3 days ago",
    "a few minutes ago",
    "Edited yesterday",
    "TODAY",
    "posted just now",
    "Revised last month",
    "Privacy (opens in a new tab)",
    "Table of Contents",
    "On this page",
    "In this article",
    "Jump to",
    "Skip to main content",
    "Back to top",
    "Article • 05/02/2024 • 3 contributors",
    "2024-05-02T10:00:00Z",
    "10:30 am UTC",
    "Last updated: ２０２４年",  # full-width digits are \d too
    "Edited yeſterday",  # non-ASCII: always searched
]


def test_noise_prefilter_never_skips_a_match() -> None:
    """`cosmetic_key` skips the noise search for texts the prefilter clears; the
    search must find nothing in every such text (corpus clauses and crafted ones)."""
    from pathlib import Path

    from tracker.clauses import _NOISE_RE, _may_hold_noise

    texts = list(NOISY)
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    for path in sorted(corpus.rglob("*.md")) if corpus.is_dir() else []:
        texts += [c.text for c in segment(path.read_text(encoding="utf-8"))]
    texts += [w.upper() + " x" for w in ("ago", "today", "contents", "jump to")]
    cleared = [t for t in texts if not _may_hold_noise(t)]
    assert cleared, "the prefilter must clear plain sentences"
    assert [t for t in cleared if _NOISE_RE.search(t)] == []
    assert all(_may_hold_noise(t) for t in NOISY)
    assert all(_NOISE_RE.search(t) for t in NOISY[:-2])
