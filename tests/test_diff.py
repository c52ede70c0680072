"""Tests for tracker.diff: the word diff behind every reported change."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import diff_match_patch
import fast_diff_match_patch
import pytest

from tracker.analysis import diff
from tracker.analysis.diff import TOP_SECTION, backend, sections_touched, tokenize, word_diff
from tracker.core.models import DiffResult

BACKENDS = ["fast", "python"]


def use_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    if name == "python":
        monkeypatch.setenv("TOS_TRACKER_DIFF", "python")
    else:
        monkeypatch.delenv("TOS_TRACKER_DIFF", raising=False)
    assert backend() == name


@pytest.fixture(params=BACKENDS)
def each_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_backend(monkeypatch, request.param)
    return request.param


def old_side(result: DiffResult) -> str:
    return "".join(text for op, text in result.ops if op in (0, -1))


def new_side(result: DiffResult) -> str:
    return "".join(text for op, text in result.ops if op in (0, 1))


def check_invariants(old: str, new: str, result: DiffResult) -> None:
    """What every diff must satisfy, whatever the backend and whatever the timeout."""
    assert old_side(result) == old
    assert new_side(result) == new
    assert all(op in (-1, 0, 1) for op, _ in result.ops)
    assert all(text for _, text in result.ops), "no empty runs"
    assert all(a[0] != b[0] for a, b in zip(result.ops, result.ops[1:], strict=False)), (
        "adjacent runs with the same op are merged"
    )
    assert result.added_words == sum(len(diff.words(t)) for t in result.inserted)
    assert result.removed_words == sum(len(diff.words(t)) for t in result.deleted)
    if old == new:
        assert result.inserted == [] and result.deleted == []
        assert result.added_words == result.removed_words == 0
        assert result.sections == ()


# --- reconstruction ---------------------------------------------------------------------

FIXED_PAIRS = [
    ("", ""),
    ("", "Brand new text.\n"),
    ("Text that goes away.\n", ""),
    ("same text\n", "same text\n"),
    ("# Terms\n\nUnchanged.\n\n## Use\n\nSame.\n", "# Terms\n\nUnchanged.\n\n## Use\n\nSame.\n"),
    ("The quick brown fox", "The quick red fox jumps"),
    ("Données personnelles — naïve café", "Données personnelles – naïf café ☕"),
    ("日本語の利用規約です。", "日本語の新しい利用規約です。"),
    ("emoji 😀 here 🎉", "emoji 🎉 there 😀"),
    ("a\r\nb\r\n", "a\nb\n"),
    ("no newline at end", "no newline at end\n"),
    ("line one\n\n\n\nline two\n", "line one\nline two\n"),
    ("a  b\tc", "a b c"),
    ("- item one\n- item two\n", "- item two\n- item one\n- item three\n"),
    ("| a | b |\n| --- | --- |\n| 1 | 2 |\n", "| a | b |\n| --- | --- |\n| 1 | 3 |\n"),
]


@pytest.mark.parametrize(("old", "new"), FIXED_PAIRS)
def test_reconstruction_fixed_inputs(each_backend: str, old: str, new: str) -> None:
    """Both texts can be rebuilt from the ops: nothing is lost or invented by the diff."""
    check_invariants(old, new, word_diff(old, new))


def test_identical_texts_give_one_equal_run() -> None:
    """Unchanged documents produce no edits and no words."""
    text = "# Terms\n\nYou may not misuse the service.\n"
    result = word_diff(text, text)
    assert result.ops == ((0, text),)
    assert (result.added_words, result.removed_words, result.sections) == (0, 0, ())
    assert result.coarse is False


def test_empty_inputs() -> None:
    """Empty on either side is a pure insertion, a pure deletion, or nothing at all."""
    assert word_diff("", "").ops == ()
    created = word_diff("", "hello world")
    assert created.ops == ((1, "hello world"),)
    assert (created.added_words, created.removed_words) == (2, 0)
    emptied = word_diff("hello world", "")
    assert emptied.ops == ((-1, "hello world"),)
    assert (emptied.added_words, emptied.removed_words) == (0, 2)


RANDOM_VOCAB = [
    "the",
    "provider",
    "may",
    "terminate",
    "your",
    "account",
    "données",
    "naïve",
    "日本語",
    "😀",
    "—",
    ",",
    ".",
    "(a)",
    "\n",
    "\n\n",
    "\n\n# Terms\n\n",
    "\n\n## Use\n\n",
    "- ",
    "\t",
    "  ",
]


def random_words(rng: random.Random, count: int) -> list[str]:
    words = []
    for _ in range(count):
        words.append(rng.choice(RANDOM_VOCAB))
        if rng.random() < 0.7:
            words.append(" ")
    return words


def random_edit(rng: random.Random, words: list[str]) -> list[str]:
    words = list(words)
    for _ in range(rng.randint(0, 8)):
        kind = rng.random()
        if kind < 0.33 and words:
            start = rng.randrange(len(words))
            del words[start : start + rng.randint(1, 4)]
        elif kind < 0.66:
            at = rng.randint(0, len(words))
            words[at:at] = random_words(rng, rng.randint(1, 4))
        elif words:
            words[rng.randrange(len(words))] = rng.choice(RANDOM_VOCAB)
    return words


@pytest.mark.parametrize("seed", range(50))
def test_reconstruction_randomized(each_backend: str, seed: int) -> None:
    """Seeded random edits (deletes, inserts, replacements, unicode) keep the invariant."""
    rng = random.Random(seed)
    old_words = random_words(rng, rng.randint(0, 120))
    new_words = random_edit(rng, old_words)
    old, new = "".join(old_words), "".join(new_words)
    result = word_diff(old, new)
    check_invariants(old, new, result)
    assert result.coarse is False


# --- exact word counts ------------------------------------------------------------------


def test_simple_sentence_edit_exact(each_backend: str) -> None:
    """One word replaced and one appended: exactly what a reader would mark up."""
    result = word_diff("The quick brown fox", "The quick red fox jumps")
    assert result.ops == (
        (0, "The quick "),
        (-1, "brown"),
        (1, "red"),
        (0, " fox"),
        (1, " jumps"),
    )
    assert result.inserted == ["red", " jumps"]
    assert result.deleted == ["brown"]
    assert (result.added_words, result.removed_words) == (2, 1)
    assert result.sections == (TOP_SECTION,)
    assert result.coarse is False
    assert result.seconds >= 0


def test_whitespace_only_change_counts_no_words() -> None:
    """A reflowed space is an edit in the ops but not in the word counts or sections."""
    result = word_diff("Alpha one two.\n", "Alpha one  two.\n")
    check_invariants("Alpha one two.\n", "Alpha one  two.\n", result)
    assert (result.added_words, result.removed_words, result.sections) == (0, 0, ())


def test_unchanged_paragraph_between_edits_stays_unchanged() -> None:
    """Line-first diffing keeps an untouched paragraph out of the neighbouring edits."""
    old = "First clause is old.\n\nMiddle.\n\nLast clause is old.\n"
    new = "First clause is new.\n\nMiddle.\n\nLast clause is new.\n"
    result = word_diff(old, new)
    assert result.deleted == ["old", "old"]
    assert result.inserted == ["new", "new"]
    assert (0, ".\n\nMiddle.\n\nLast clause is ") in result.ops


def test_words_with_combining_marks_count_as_one_word() -> None:
    """Indic scripts write vowels as combining marks; they are part of the word."""
    assert word_diff("", "नमस्ते दुनिया").added_words == 2
    result = word_diff("हिन्दी भाषा", "हिन्दू भाषा")
    assert result.deleted == ["हिन्दी"]
    assert result.inserted == ["हिन्दू"]
    assert (result.added_words, result.removed_words) == (1, 1)


# --- sections ---------------------------------------------------------------------------

DOC = "# A\n\nAlpha one two three.\n\n## B\n\nBeta four five six.\n"


@pytest.mark.parametrize(
    ("new", "sections"),
    [
        # deletion under A, insertion under B
        ("# A\n\nAlpha one three.\n\n## B\n\nBeta four five six seven.\n", ("A", "B")),
        # insertion under A, deletion under B: still in order of appearance
        ("# A\n\nAlpha one two three four.\n\n## B\n\nBeta five six.\n", ("A", "B")),
        # only B changes
        ("# A\n\nAlpha one two three.\n\n## B\n\nBeta four six.\n", ("B",)),
        # text before any heading
        ("Preface.\n\n" + DOC, (TOP_SECTION,)),
        # a new section is named by its own heading
        (DOC + "\n## C\n\nGamma clause.\n", ("C",)),
        # a removed section is named by its heading in the old text
        ("# A\n\nAlpha one two three.\n", ("B",)),
        # a renamed heading: old name for the deletion, new name for the insertion
        ("# A\n\nAlpha one two three.\n\n## Bee\n\nBeta four five six.\n", ("B", "Bee")),
        # whitespace only: no section touched
        ("# A\n\nAlpha one  two three.\n\n## B\n\nBeta four five six.\n", ()),
    ],
    ids=[
        "delete-A-insert-B",
        "insert-A-delete-B",
        "only-B",
        "beginning",
        "new-section",
        "removed-section",
        "renamed-heading",
        "whitespace-only",
    ],
)
def test_sections(each_backend: str, new: str, sections: tuple[str, ...]) -> None:
    """Sections name the nearest heading above each edit, once each, in order of appearance."""
    result = word_diff(DOC, new)
    check_invariants(DOC, new, result)
    assert result.sections == sections


def test_sections_delete_under_a_insert_under_b_exact_ops() -> None:
    """The edit positions the section names are derived from."""
    new = "# A\n\nAlpha one three.\n\n## B\n\nBeta four five six seven.\n"
    result = word_diff(DOC, new)
    assert result.deleted == ["two "]
    assert result.inserted == [" seven"]
    assert (result.added_words, result.removed_words) == (1, 1)


def test_sections_touched_directly() -> None:
    """Insertions map through new-text offsets, deletions through old-text offsets."""
    old = "intro\n# H1\nbody\n## H2\nmore\n"
    new = "intro\n# H1\nbody\n## H2\nmore text\n"
    ops = [(0, "intro\n# H1\nbody\n## H2\nmore"), (1, " text"), (0, "\n")]
    assert sections_touched(old, new, ops) == ["H2"]
    ops = [(-1, "intro\n"), (0, "# H1\nbody\n## H2\nmore"), (1, " text"), (0, "\n")]
    assert sections_touched(old, "# H1\nbody\n## H2\nmore text\n", ops) == [TOP_SECTION, "H2"]
    # whitespace-only runs name no section; a title is listed once
    ops = [(0, "intro\n# H1\nbody"), (1, "   "), (0, "\n## H2\nmore\n")]
    assert sections_touched(old, "intro\n# H1\nbody   \n## H2\nmore\n", ops) == []
    assert sections_touched("", "x y", [(1, "x"), (0, " "), (1, "y")]) == [TOP_SECTION]


# --- backends ---------------------------------------------------------------------------


def spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Count calls to owner.name while still running the real function."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[int]]]:
    yield {
        "fast": spy(monkeypatch, fast_diff_match_patch, "diff"),
        "python": spy(monkeypatch, diff_match_patch.diff_match_patch, "diff_main"),
    }


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_selected_by_environment(
    monkeypatch: pytest.MonkeyPatch, spies: dict[str, list[int]], name: str
) -> None:
    """TOS_TRACKER_DIFF=python forces the pure build; unset means the C++ build really runs."""
    use_backend(monkeypatch, name)
    old = "Users must be 18.\n\nData is kept for 30 days.\n"
    new = "Users must be 16.\n\nData is kept for 90 days or less.\n"
    result = word_diff(old, new)
    check_invariants(old, new, result)
    other = "python" if name == "fast" else "fast"
    assert spies[name], f"the {name} backend was not called"
    assert not spies[other], f"the {other} backend was called"


def test_backend_env_value_is_case_and_space_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 'python' (any case) switches builds; anything else keeps the default."""
    monkeypatch.setenv("TOS_TRACKER_DIFF", "  Python ")
    assert backend() == "python"
    monkeypatch.setenv("TOS_TRACKER_DIFF", "fast")
    assert backend() == "fast"


@pytest.mark.parametrize(("old", "new"), FIXED_PAIRS[5:])
def test_backends_agree_on_counts(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """Switching builds must not change what a run reports."""
    results = {}
    for name in BACKENDS:
        use_backend(monkeypatch, name)
        results[name] = word_diff(old, new)
        check_invariants(old, new, results[name])
    fast, python = results["fast"], results["python"]
    assert (fast.added_words, fast.removed_words) == (python.added_words, python.removed_words)
    assert fast.sections == python.sections


# --- time bound -------------------------------------------------------------------------


def large_text(seed: int, words: int, per_line: int) -> str:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    chosen = [rng.choice(vocab) for _ in range(words)]
    lines = [" ".join(chosen[i : i + per_line]) for i in range(0, words, per_line)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("per_line", [60_000, 12], ids=["one-paragraph", "short-lines"])
def test_time_bound_degrades_to_coarse(each_backend: str, per_line: int) -> None:
    """A huge unrelated rewrite returns promptly with a coarse but still lossless diff."""
    old = large_text(1, 60_000, per_line)
    new = large_text(2, 60_000, per_line)
    started = time.perf_counter()
    result = word_diff(old, new, timeout=0.05)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, "generous sanity bound only"
    assert result.coarse is True
    assert old_side(result) == old
    assert new_side(result) == new
    assert result.added_words > 0 and result.removed_words > 0


def test_no_timeout_is_not_coarse() -> None:
    """timeout=0 means unbounded, and a small diff is never marked coarse."""
    result = word_diff("The quick brown fox", "The quick red fox jumps", timeout=0)
    check_invariants("The quick brown fox", "The quick red fox jumps", result)
    assert result.coarse is False
    assert (result.added_words, result.removed_words) == (2, 1)


# --- tokenize ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("word", ["word"]),
        ("Hello, world!", ["Hello", ",", " ", "world", "!"]),
        ("a  b\t\nc", ["a", "  ", "b", "\t\n", "c"]),
        ("It's 3.5%", ["It", "'", "s", " ", "3", ".", "5", "%"]),
        ("(a)—b", ["(", "a", ")", "—", "b"]),
        ("snake_case x2", ["snake_case", " ", "x2"]),
        ("naïve 日本語", ["naïve", " ", "日本語"]),
        ("...", [".", ".", "."]),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    """Words, runs of whitespace and single punctuation marks are separate tokens."""
    assert tokenize(text) == tokens
    assert "".join(tokens) == text
