"""Clauses: segmentation along the document's structure, identity, cosmetic changes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tracker.analysis.clauses import compare, summarize
from tracker.analysis.segments import cosmetic_key, segment

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


# Texts with digits that the prefilter clears or must not clear: numbered clauses, and a
# digit beside each thing a digit pattern needs (a month, "-/.:" and a digit, a counter).
DIGITS = [
    "Item 12: the rule applies to accounts 861.",
    "You must be 13 years of age or older.",
    "Section 4 applies; see clause 12 (b).",
    "Up to 10 requests per minute, 3 per second.",
    "On 2 May 2024",
    "MARCH 3, 2024",
    "Sept 2024",
    "dated 2024-05-02",
    "dated 05/02/24",
    "dated 2.5.2024",
    "at 10:30",
    "4 Contributors",
    "5 MIN READ",
]


def corpus_clauses() -> list[str]:
    """Real clauses: ../shared/corpus when present, else the set shipped in tests/cases."""
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    if corpus.is_dir():
        return [
            c.text
            for path in sorted(corpus.rglob("*.md"))
            for c in segment(path.read_text(encoding="utf-8"))
        ]
    shipped = Path(__file__).parent / "cases" / "corpus_clauses.json"
    return list(json.loads(shipped.read_text(encoding="utf-8"))["texts"])


def test_noise_prefilter_never_skips_a_match() -> None:
    """`cosmetic_key` skips the noise search for texts the prefilter clears; the
    search must find nothing in every such text (real clauses and crafted ones)."""
    from tracker.analysis.segments import _NOISE_RE, _may_hold_noise

    texts = [*NOISY, *DIGITS, *corpus_clauses()]
    texts += [w.upper() + " x" for w in ("ago", "today", "contents", "jump to")]
    cleared = [t for t in texts if not _may_hold_noise(t)]
    assert cleared, "the prefilter must clear plain sentences"
    assert any(char.isdigit() for t in cleared for char in t), "and some with numbers"
    assert [t for t in cleared if _NOISE_RE.search(t)] == []
    assert all(_may_hold_noise(t) for t in NOISY)
    assert all(_NOISE_RE.search(t) for t in NOISY[:-2])
    assert [t for t in DIGITS if _NOISE_RE.search(t) and not _may_hold_noise(t)] == []
    assert [t for t in DIGITS[:4] if _may_hold_noise(t)] == []


def test_the_shipped_clauses_are_real_corpus_clauses() -> None:
    """tests/cases/corpus_clauses.json stands in for ../shared: it must stay a sample of it."""
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    if not corpus.is_dir():
        pytest.skip(f"the shared corpus is not at {corpus}; the shipped sample is used as is")
    shipped = json.loads((Path(__file__).parent / "cases" / "corpus_clauses.json").read_text())
    assert set(shipped["texts"]) <= set(corpus_clauses())
    assert len(shipped["texts"]) >= 200


# --- restructuring: numbering, heading level and case, list nesting, links -----------------

OUTLINE = """# PERPLEXITY TERMS OF SERVICE

Last Revised on June 4th, 2024

1. ##### The Services
   1.1 Input and Output.
   1. As a part of the Services, you can input information.
   2. You may not direct the Services to generate unlawful Output.
   1.2 Eligibility. You must be 13 years of age or older to use the Services. Children under the age of 13 are not permitted to use the Services.
2. ##### User Accounts
   2.1 Creating your Account. You must provide accurate information.
9. ARBITRATION AND CLASS ACTION WAIVER
   9.1 Informal Process First. You and the Company agree to try to resolve a dispute.
"""  # noqa: E501

RENESTED = """# Perplexity Terms of Service

Last updated: June 4th, 2024

1. ## THE SERVICES
   1. Input and Output.
      1. As a part of the Services, you can input information.
      2. You may not direct the Services to generate unlawful Output.
   2. Eligibility. You must be 13 years of age or older to use the Services. Children under the age of 13 are not permitted to use the Services.
2. ## USER ACCOUNTS
   1. Creating your Account. You must provide accurate information.
9. ## ARBITRATION AND CLASS ACTION WAIVER
   1. Informal Process First. You and the Company agree to try to resolve a dispute.
"""  # noqa: E501


def test_a_renumbered_renested_recased_document_is_one_cosmetic_restructure() -> None:
    from tracker.analysis.clauses import RESTRUCTURED, cosmetic_reason
    from tracker.analysis.topics import default_topics, flags_for

    changes = compare(segment(OUTLINE), segment(RENESTED))
    assert changes, "the headings' case changed: that is recorded"
    assert [c.kind for c in changes if not c.cosmetic] == []
    assert {c.kind for c in changes} == {"modified"}  # nothing added, removed or moved
    assert flags_for(changes, default_topics()) == []
    assert RESTRUCTURED in (cosmetic_reason(changes) or "")
    assert summarize(changes).startswith("cosmetic: restructured only")


def test_outline_numbers_are_list_items_and_numbered_headings_are_headings() -> None:
    clauses = segment(OUTLINE)
    eligibility = next(c for c in clauses if "Eligibility" in c.text)
    assert eligibility.kind == "item"
    assert eligibility.text.startswith("Eligibility. You must be 13")  # not glued to an item
    assert eligibility.section == ("PERPLEXITY TERMS OF SERVICE", "The Services")
    assert [c.text for c in clauses if c.kind == "heading"][1:] == ["The Services", "User Accounts"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("1.2 Eligibility. You must be 13.", "2. Eligibility. You must be 13."),
        ("Section 3. Eligibility. You must be 13.", "Article 4: Eligibility. You must be 13."),
        ("(a) You must be 13.", "a. You must be 13."),
        ("i. You must be 13.", "(iv) You must be 13."),
        ("1. (a) You must be 13.", "You must be 13."),
    ],
)
def test_numbering_does_not_make_a_clause_new(old: str, new: str) -> None:
    changes = compare(segment(f"# T\n\nIntro.\n\n{old}\n"), segment(f"# T\n\nIntro.\n\n{new}\n"))
    assert all(c.cosmetic and c.kind == "modified" for c in changes), changes


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ("## 3 Eligibility", "## 4. ELIGIBILITY", True),
        ("## Section 3 Eligibility", "## Article 7: Eligibility", True),
        ("## IV. Eligibility", "## v) Eligibility", True),
        ("## Civil Liability", "## Liability", False),  # "Civil" is a word, not a numeral
        ("## Mix and match", "## And match", False),
    ],
)
def test_heading_numbers(old: str, new: str, same: bool) -> None:
    changes = compare(segment(f"# T\n\n{old}\n\nText.\n"), segment(f"# T\n\n{new}\n\nText.\n"))
    assert all(c.cosmetic for c in changes) is same


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("2.5 GB of storage is included.", "3.5 GB of storage is included."),
        ("1.5 million users may join.", "2.5 million users may join."),
        ("2.5 hours of support a month.", "1.5 hours of support a month."),
    ],
)
def test_a_decimal_quantity_is_not_an_outline_number(old: str, new: str) -> None:
    changes = compare(segment(f"# T\n\nIntro.\n\n{old}\n"), segment(f"# T\n\nIntro.\n\n{new}\n"))
    assert [(c.kind, c.cosmetic) for c in changes] == [("modified", False)]


def test_heading_level_and_case_keep_the_clauses_below_in_place() -> None:
    from tracker.analysis.clauses import RESTRUCTURED

    body = "- You must keep your password safe.\n- You are responsible for your Account.\n"
    old = f"# Terms\n\nIntro.\n\n##### User Accounts\n\n{body}"
    new = f"# Terms\n\nIntro.\n\n## USER ACCOUNTS\n\n{body}"
    changes = compare(segment(old), segment(new))
    assert [(c.kind, c.cosmetic, c.cosmetic_reason) for c in changes] == [
        ("modified", True, RESTRUCTURED)
    ]


def test_a_heading_that_was_a_list_item_does_not_move_its_clauses() -> None:
    old = "# T\n\n8. Something else.\n9. ARBITRATION\n   1. You agree to arbitrate.\n"
    new = "# T\n\n8. Something else.\n9. ## ARBITRATION\n   1. You agree to arbitrate.\n"
    changes = compare(segment(old), segment(new))
    assert [(c.kind, c.cosmetic) for c in changes] == [("modified", True)]


def test_bold_paragraphs_that_became_headings_keep_their_clauses_in_place() -> None:
    from tracker.analysis.clauses import RESTRUCTURED

    body = "**1. Eligibility**\n\nYou must be 13.\n\n**2. Accounts**\n\nKeep your password.\n"
    new_body = "## 1. Eligibility\n\nYou must be 13.\n\n## 2. ACCOUNTS\n\nKeep your password.\n"
    changes = compare(segment(f"# T\n\nIntro.\n\n{body}"), segment(f"# T\n\nIntro.\n\n{new_body}"))
    assert [(c.kind, c.cosmetic_reason) for c in changes] == [("modified", RESTRUCTURED)] * 2


def test_a_real_word_change_shows_through_a_restructure() -> None:
    from tracker.analysis.topics import default_topics, flags_for

    reworded = RENESTED.replace("Children under the age of 13", "Teens under the age of 16")
    changes = compare(segment(OUTLINE), segment(reworded))
    real = [c for c in changes if not c.cosmetic]
    assert [(c.kind, c.before and c.before.text[:12]) for c in real] == [
        ("modified", "Eligibility.")
    ]
    assert [f.topic for f in flags_for(changes, default_topics())] == ["children"]


def test_recased_running_text_is_the_same_clause_but_still_a_change() -> None:
    """Capitals in running text can be legal emphasis (a conspicuous disclaimer): the
    clause keeps its identity (modified, not removed and added) and is not cosmetic."""
    from tracker.analysis.topics import default_topics, flags_for

    old = "# T\n\nIntro.\n\nWe are not liable for children's data.\n"
    new = "# T\n\nIntro.\n\nWE ARE NOT LIABLE FOR CHILDREN'S DATA.\n"
    changes = compare(segment(old), segment(new))
    assert [(c.kind, c.cosmetic) for c in changes] == [("modified", False)]
    assert flags_for(changes, default_topics()) == []


def test_clauses_split_or_joined_without_a_word_changed_are_cosmetic() -> None:
    from tracker.analysis.clauses import RESTRUCTURED

    said = "If you believe your work was copied, tell us."
    old = f"# T\n\nIntro.\n\n- Notice of Infringement\n- {said}\n\nEnd.\n"
    new = f"# T\n\nIntro.\n\n- Notice of Infringement. {said}\n\nEnd.\n"
    changes = compare(segment(old), segment(new))
    assert changes and all(c.cosmetic and c.cosmetic_reason == RESTRUCTURED for c in changes)
    # With a word changed, the same split is a real change.
    changes = compare(segment(old), segment(new.replace("tell us", "email us")))
    assert not all(c.cosmetic for c in changes)


def test_an_inline_list_that_became_a_bulleted_one_is_a_restructure() -> None:
    old = "# T\n\nIntro.\n\nYou may not: (a) sell it; (b) copy it; or (iv) lend it.\n\nEnd.\n"
    new = "# T\n\nIntro.\n\nYou may not:\n\n- sell it;\n- copy it; or\n- lend it.\n\nEnd.\n"
    changes = compare(segment(old), segment(new))
    assert changes and all(c.cosmetic for c in changes)
    # A number in parentheses that is not an enumerator still counts.
    changes = compare(segment(old), segment(new.replace("lend it", "lend it (13)")))
    assert not all(c.cosmetic for c in changes)
    changes = compare(segment(old), segment(new.replace("copy it", "share it")))
    assert not all(c.cosmetic for c in changes)


def test_a_datelines_label_is_noise_like_its_date() -> None:
    changes = compare(
        segment("# T\n\nLast Revised on June 4th, 2024\n"),
        segment("# T\n\nLast updated: June 5th, 2024\n"),
    )
    assert [(c.kind, c.cosmetic) for c in changes] == [("modified", True)]


# --- link targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "readable"),
    [
        ("See [Terms [PDF]](https://x.example/t.pdf) now.", "See Terms [PDF] now."),
        ("[Foo](https://en.wikipedia.org/wiki/Foo_(bar)) ends.", "Foo ends."),
        ("A [bracket] (and a parenthesis) stay.", "A [bracket] (and a parenthesis) stay."),
        ("[![logo](logo.png)](https://x.example/) home", "logo home"),
        ("Unclosed [link](https://x.example", "Unclosed [link](https://x.example"),
        ("(see [policy](https://x.example/p) here)", "(see policy here)"),
    ],
)
def test_link_targets_are_dropped_whatever_the_brackets(text: str, readable: str) -> None:
    from tracker.analysis.segments import clean_inline

    assert clean_inline(text) == readable


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "Email [us](/cdn-cgi/l/email-protection#a1b2) today.",
            "Email [us](/cdn-cgi/l/email-protection#c3d4) today.",
        ),
        (
            "Read [Terms [PDF]](https://x.example/a_(1).pdf).",
            "Read [Terms [PDF]](https://x.example/a_(2).pdf).",
        ),
        (
            "See [www.perplexity.ai](https://www.perplexity.ai).",
            "See [www.perplexity.ai](https://www.perplexity.ai/).",
        ),
    ],
)
def test_a_link_only_change_is_cosmetic_and_says_so(old: str, new: str) -> None:
    from tracker.analysis.clauses import LINKS, cosmetic_reason
    from tracker.analysis.topics import default_topics, flags_for

    changes = compare(segment(f"# T\n\n{old}\n"), segment(f"# T\n\n{new}\n"))
    assert [(c.kind, c.cosmetic, c.cosmetic_reason) for c in changes] == [("modified", True, LINKS)]
    assert changes[0].to_json()["cosmetic_reason"] == "only link targets changed"
    assert cosmetic_reason(changes) == LINKS
    assert summarize(changes) == "cosmetic: only link targets changed"
    assert flags_for(changes, default_topics()) == []


def test_a_link_text_change_is_not_cosmetic() -> None:
    changes = compare(
        segment("# T\n\nSee [our policy](https://x.example/p).\n"),
        segment("# T\n\nSee [our weapons policy](https://x.example/p).\n"),
    )
    assert [(c.kind, c.cosmetic, c.cosmetic_reason) for c in changes] == [("modified", False, None)]


def test_a_change_says_why_it_is_cosmetic_even_without_clause_changes() -> None:
    """Only a heading's level changed: no clause changed, the markup did."""
    from datetime import UTC, datetime

    from tracker.analysis.change import Change
    from tracker.analysis.clauses import NOISE, RESTRUCTURED
    from tracker.analysis.diff import word_diff
    from tracker.core.models import Version

    def change(old: str, new: str) -> Change:
        when = datetime(2025, 1, 1, tzinfo=UTC)
        v1 = Version("d", when, "a", "p", 1, None, None)
        v2 = Version("d", when, "b", "p", 1, None, None)
        return Change("d", v1, v2, word_diff(old, new), tuple(compare(segment(old), segment(new))))

    level = change("# T\n\n##### Accounts\n\nText.\n", "# T\n\n## Accounts\n\nText.\n")
    assert level.clauses == () and level.cosmetic and level.cosmetic_reason == RESTRUCTURED
    assert level.summary.startswith(RESTRUCTURED)
    spaces = change("# T\n\nText here.\n", "# T\n\n\nText  here.\n")
    assert spaces.cosmetic_reason == NOISE
    real = change("# T\n\nText.\n", "# T\n\nOther words.\n")
    assert not real.cosmetic and real.cosmetic_reason is None


# --- the real Perplexity restructure (Open Terms Archive captures, April-July 2025) ---------


def perplexity_texts(corpus: Path) -> list[tuple[str, str]]:
    """(capture file, extracted text) for each capture whose text differs from the last."""
    import gzip
    import json

    from tracker.extract.engine import extract_text

    real_web = corpus / "real-web"
    if not (real_web / "manifest.json").is_file():
        pytest.skip(f"no real-web captures at {real_web}; these tests need ../shared")
    manifest = json.loads((real_web / "manifest.json").read_text(encoding="utf-8"))
    entry = next(d for d in manifest["documents"] if d["id"] == "perplexity/terms-of-service")
    out: list[tuple[str, str]] = []
    for capture in entry["captures"]:
        body = gzip.decompress((real_web / entry["id"] / capture["file"]).read_bytes())
        text = extract_text(body, select=entry["select"], remove=entry["remove"])
        if not out or out[-1][1] != text:
            out.append((capture["file"], text))
    return out


def test_the_real_perplexity_restructure_raises_no_flag(corpus: Path) -> None:
    from tracker.analysis.clauses import LINKS, RESTRUCTURED, cosmetic_reason
    from tracker.analysis.topics import default_topics, flags_for

    texts = perplexity_texts(corpus)
    assert [name for name, _ in texts][:2] == [
        "20250419T003339Z.html.gz",
        "20250605T003349Z.html.gz",
    ]
    changes = compare(segment(texts[0][1]), segment(texts[1][1]))
    # June 2025: numbering "1.2" became nested lists, "##### User Accounts" became
    # "## USER ACCOUNTS", link targets gained a slash. Not a word changed.
    assert changes and all(c.cosmetic for c in changes)
    reason = cosmetic_reason(changes) or ""
    assert RESTRUCTURED in reason and LINKS in reason
    for (_, old), (_, new) in itertools.pairwise(texts):
        assert flags_for(compare(segment(old), segment(new)), default_topics()) == []


def test_the_real_perplexity_rewording_still_shows(corpus: Path) -> None:
    texts = perplexity_texts(corpus)
    july = next(text for name, text in texts if name.startswith("20250710"))
    before = texts[texts.index(next(t for t in texts if t[1] == july)) - 1][1]
    real = [c for c in compare(segment(before), segment(july)) if not c.cosmetic]
    said = {(c.kind, (c.after or c.before).text[:28]) for c in real}  # type: ignore[union-attr]
    assert ("modified", "Shop With Pro. If you are a ") in said  # "PROSHOP." was renamed
    assert ("added", "SHOPPING WITH PERPLEXITY PRO") in said
    assert not any(c.kind == "moved" for c in real)  # clauses under the renamed heading


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A number that is the clause's substance, not its numbering: a real change.
        ("99.9 monthly availability target.", "95.0 monthly availability target."),
        ("2.5 requests per second per key.", "25.5 requests per second per key."),
        ("1.5 Million users may join.", "2.5 Million users may join."),
        ("## 30 Day Refund Policy", "## 14 Day Refund Policy"),
        ("## 18 Years or Older", "## 13 Years or Older"),
        ("## 18 and older", "## 13 and older"),
        ("## 50 percent discount", "## 20 percent discount"),
        ("## 1.5 Million Users", "## 2.5 Million Users"),
    ],
)
def test_a_changed_quantity_is_never_numbering(old: str, new: str) -> None:
    changes = compare(segment(f"# T\n\nIntro.\n\n{old}\n"), segment(f"# T\n\nIntro.\n\n{new}\n"))
    assert changes and not all(c.cosmetic for c in changes), changes


# --- bounds: near-linear matching, a coarse result past a limit ------------------------------


def numbered_list(n: int, changed: set[int] | None = None, order: list[int] | None = None) -> str:
    """A list of `n` items; those in `changed` reworded, in `order` if given."""
    changed = changed or set()
    word = {k: "revised" if k in changed else "original" for k in range(n)}
    lines = [f"- Item {k}: the {word[k]} rule {k} applies to accounts {k * 7}." for k in range(n)]
    return "# Terms\n\n" + "".join(lines[k] + "\n" for k in (order or range(n)))


def test_a_list_longer_than_difflib_aligns_at_once_is_matched_exactly() -> None:
    """Every tenth item of 2,500 reworded: 5,000 clauses, past `SMALL_MATCH`, so the
    anchored alignment runs (difflib alone took 8 s for 20,000 items, 44 s for 40,000)."""
    from tracker.analysis.clauses import SMALL_MATCH, compare_clauses

    n = 2_500
    assert 2 * n > SMALL_MATCH
    changed = set(range(0, n, 10))
    result = compare_clauses(segment(numbered_list(n)), segment(numbered_list(n, changed)))
    assert not result.coarse
    assert [(c.kind, c.after and c.after.position) for c in result.changes] == [
        ("modified", k + 1) for k in sorted(changed)
    ]
    assert all("revised" in c.text for c in result.changes)


@pytest.mark.parametrize("n", [300, 2_500])  # difflib's size, and past it
def test_moves_additions_and_removals_read_the_same_in_a_short_and_a_long_list(n: int) -> None:
    order = [k for k in range(n) if k not in (5, n // 2)] + [5]  # 5 moved last, n/2 gone
    new = numbered_list(n, order=order).replace(
        f"- Item {n // 3}:", f"- A new clause about dogs.\n- Item {n // 3}:"
    )
    changes = compare(segment(numbered_list(n)), segment(new))
    assert sorted((c.kind, c.text.split(":")[0]) for c in changes) == [
        ("added", "A new clause about dogs."),
        ("moved", "Item 5"),
        ("removed", f"Item {n // 2}"),
    ]


def test_a_long_list_reworded_throughout_is_paired_clause_by_clause() -> None:
    """No key is shared: nothing anchors the alignment, and the similar clauses are
    paired among a few candidates each (a stretch without an anchor once looped)."""
    from tracker.analysis.clauses import SMALL_MATCH, compare_clauses

    n = 2_100
    assert 2 * n > SMALL_MATCH
    new = numbered_list(n).replace("- Item", "- Entry").replace("the original", "a changed")
    result = compare_clauses(segment(numbered_list(n)), segment(new))
    assert not result.coarse
    assert {c.kind for c in result.changes} == {"modified"} and len(result.changes) == n


@pytest.mark.timeout(60)
def test_thousands_of_identical_clauses_are_matched_without_a_quadratic_search() -> None:
    old = "# T\n\n" + "- You may not use the service to train models.\n" * 5_000
    new = old.replace("\n- You", "\n- You must not use it.\n- You", 500)
    changes = compare(segment(old), segment(new))
    assert [c.kind for c in changes] == ["added"] * 500


def test_past_the_time_limit_the_rest_is_coarse_and_the_change_says_so() -> None:
    from datetime import UTC, datetime

    from tracker.analysis.change import Change
    from tracker.analysis.clauses import compare_clauses
    from tracker.analysis.diff import word_diff
    from tracker.core.models import COARSE_NOTE, Version

    old = "# T\n\n- We may share your data with partners.\n- Keep this.\n"
    new = "# T\n\n- We may share your data with our partners.\n- Keep this.\n"
    fine = compare_clauses(segment(old), segment(new))
    assert [c.kind for c in fine.changes] == ["modified"] and not fine.coarse
    coarse = compare_clauses(segment(old), segment(new), timeout=1e-9)
    assert coarse.coarse
    assert sorted(c.kind for c in coarse.changes) == ["added", "removed"]
    when = datetime(2025, 1, 1, tzinfo=UTC)
    v1 = Version("d", when, "a", "p", 1, None, None)
    v2 = Version("d", when, "b", "p", 1, None, None)
    diff = word_diff(old, new)
    said = Change("d", v1, v2, diff, tuple(coarse.changes), (), coarse.coarse).summary
    assert said == f"1 clause added, 1 removed in 'T' (+1/−0 words) ({COARSE_NOTE})"
    assert COARSE_NOTE not in Change("d", v1, v2, diff, tuple(fine.changes)).summary


def test_a_modified_clause_past_the_time_limit_is_shown_replaced_whole() -> None:
    from tracker.analysis.clauses import _Budget, _clause_ops
    from tracker.analysis.segments import Clause

    a, b = Clause((), "item", "one two three", 0), Clause((), "item", "one two four", 0)
    assert _clause_ops(a, b, _Budget(5.0)) == ((0, "one two "), (-1, "three"), (1, "four"))
    spent = _Budget(1e-9)
    assert _clause_ops(a, b, spent) == ((-1, "one two three"), (1, "one two four"))
    assert spent.coarse


@pytest.mark.timeout(60)
def test_a_huge_line_is_one_clause_analysed_in_bounded_time() -> None:
    """A 1 MB line without a sentence end (the issue's was 5 MB: 115 s before the bounds)."""
    from tracker.analysis.topics import default_topics, flags_for

    unit = "we may use your content to train our models and share it with law enforcement, "
    old = "# Terms\n\n" + unit * (1_000_000 // len(unit)) + "\n"
    new = old.replace("train our models", "improve the service", 20)
    changes = compare(segment(old), segment(new))
    assert [c.kind for c in changes] == ["modified"]
    assert flags_for(changes, default_topics()) == []  # the other mentions still read the same
