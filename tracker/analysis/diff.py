"""Word diff of two extracted texts, with a time bound.

Lines are diffed first, so unchanged paragraphs stay unchanged; inside each
changed stretch, words (and the whitespace and punctuation between them) are
mapped to single characters so diff-match-patch compares words rather than
letters, and its semantic cleanup merges tiny equalities into readable edits. A time limit makes a
huge rewrite degrade to a coarser diff instead of hanging a run.

Two builds of the same library are supported: `fast-diff-match-patch` (C++) and
`diff-match-patch` (pure Python). The C++ build is the default because it is
about 20x faster on real policies (see bench/); set TOS_TRACKER_DIFF=python to
force the pure one.
"""

from __future__ import annotations

import bisect
import os
import re
import time
import unicodedata
from collections.abc import Sequence

from tracker.core.models import DiffResult

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
_SIMPLE_WORD = re.compile(r"\w+")
# Characters that might be combining marks: not word, not space, at or above U+0300.
_MAYBE_MARK = re.compile(r"[^\w\s\u0000-\u02ff]")


def _has_marks(text: str) -> bool:
    return any(unicodedata.category(c)[0] == "M" for c in set(_MAYBE_MARK.findall(text)))


HEADING = re.compile(r"^(#{1,6}) +(.+)$", re.MULTILINE)
DEFAULT_TIMEOUT = 5.0
TOP_SECTION = "(beginning)"

# Code points used to stand for tokens: skip controls and the surrogate block.
_FIRST_CODE = 0x100
_SURROGATES = range(0xD800, 0xE000)


def tokenize(text: str) -> list[str]:
    """Words, runs of whitespace, and single punctuation characters.

    Python's `\\w` leaves out combining marks, which are parts of words in Indic and
    other scripts (the vowel sign in "हिन्दी"); they are joined back to their word.
    """
    if not _has_marks(text):
        return _TOKEN.findall(text)
    tokens: list[str] = []
    joining = False  # the last token is a word that a mark or word may continue
    for token in _TOKEN.findall(text):
        if len(token) == 1 and not token.isspace() and unicodedata.category(token)[0] == "M":
            if tokens and joining:
                tokens[-1] += token
            else:
                tokens.append(token)
            joining = True
        elif joining and _is_word(token):
            tokens[-1] += token
        else:
            tokens.append(token)
            joining = _is_word(token)
    return tokens


def _is_word(token: str) -> bool:
    first = token[0]
    return first.isalnum() or first == "_" or unicodedata.category(first)[0] == "M"


def words(text: str) -> list[str]:
    if not _has_marks(text):
        return _SIMPLE_WORD.findall(text)
    return [t for t in tokenize(text) if _is_word(t)]


def word_diff(old: str, new: str, *, timeout: float = DEFAULT_TIMEOUT) -> DiffResult:
    """Diff two texts: lines first, then words inside each changed stretch of lines.

    Diffing lines first keeps unchanged paragraphs and list items unchanged (a
    word-level semantic cleanup alone would fold a short unchanged paragraph
    between two edits into them). Blank lines travel with the line after them,
    so they cannot be matched on their own and misalign a paragraph.
    `ops` are (-1 | 0 | 1, text) runs.
    """
    started = time.perf_counter()
    deadline = started + timeout if timeout > 0 else None
    old_lines, new_lines = units(old), units(new)
    line_counts = _diff_counts(*_encode(old_lines, new_lines), timeout, semantic=False)
    ops: list[tuple[int, str]] = []
    coarse = False
    deleted: list[str] = []
    inserted: list[str] = []

    def flush() -> None:
        nonlocal coarse
        if deleted and inserted:
            left = 0.0 if deadline is None else deadline - time.perf_counter()
            if deadline is not None and left <= 0:
                coarse = True
                _append(ops, -1, "".join(deleted))
                _append(ops, 1, "".join(inserted))
            else:
                for op, text in _hunk_ops(deleted, inserted, deadline):
                    _append(ops, op, text)
        elif deleted:
            _append(ops, -1, "".join(deleted))
        elif inserted:
            _append(ops, 1, "".join(inserted))
        deleted.clear()
        inserted.clear()

    i = j = 0
    for op, length in line_counts:
        if op == 0:
            flush()
            _append(ops, 0, "".join(old_lines[i : i + length]))
            i += length
            j += length
        elif op == -1:
            deleted.extend(old_lines[i : i + length])
            i += length
        else:
            inserted.extend(new_lines[j : j + length])
            j += length
    flush()
    elapsed = time.perf_counter() - started
    added = sum(len(words(text)) for op, text in ops if op == 1)
    removed = sum(len(words(text)) for op, text in ops if op == -1)
    return DiffResult(
        ops=tuple(ops),
        added_words=added,
        removed_words=removed,
        sections=tuple(sections_touched(old, new, ops)),
        coarse=coarse or (deadline is not None and elapsed >= timeout),
        seconds=elapsed,
    )


def units(text: str) -> list[str]:
    """Lines, each carrying the blank lines before it, so blank lines never anchor a match."""
    out: list[str] = []
    blank = ""
    for line in text.splitlines(keepends=True):
        if line.strip():
            out.append(blank + line)
            blank = ""
        else:
            blank += line
    if blank:
        out.append(blank)
    return out


def _hunk_ops(
    deleted: list[str], inserted: list[str], deadline: float | None
) -> list[tuple[int, str]]:
    """Ops for a stretch of changed lines: similar lines are word-diffed, others shown whole.

    Word-diffing a whole rewritten stretch at once leaves stray one-word matches ("of",
    "the") that chop both texts into confetti. Pairing each old line with a similar new
    line (in order) keeps a reworded clause inline and a new clause whole.
    """
    pairs = _pair_lines(deleted, inserted)
    if pairs is None:  # too large to align line by line: one word diff over the stretch
        return _word_ops("".join(deleted), "".join(inserted), _left(deadline))
    ops: list[tuple[int, str]] = []
    i = j = 0
    for a, b in [*pairs, (len(deleted), len(inserted))]:
        _append(ops, -1, "".join(deleted[i:a]))
        _append(ops, 1, "".join(inserted[j:b]))
        if a < len(deleted) and b < len(inserted):
            for op, text in _word_ops(deleted[a], inserted[b], _left(deadline)):
                _append(ops, op, text)
        i, j = a + 1, b + 1
    return ops


SIMILAR = 0.5  # Dice overlap of word sets for two lines to count as one clause reworded
MAX_ALIGN_CELLS = 250_000


def _pair_lines(old: list[str], new: list[str]) -> list[tuple[int, int]] | None:
    """In-order pairs (i, j) of similar lines, maximising total similarity (weighted LCS)."""
    if len(old) * len(new) > MAX_ALIGN_CELLS:
        return None
    old_words = [set(words(line.lower())) for line in old]
    new_words = [set(words(line.lower())) for line in new]
    n, m = len(old), len(new)
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        a = old_words[i]
        row, below = score[i], score[i + 1]
        for j in range(m - 1, -1, -1):
            best = below[j] if below[j] >= row[j + 1] else row[j + 1]
            b = new_words[j]
            if a and b:
                shared = len(a & b)
                if shared:
                    similarity = 2 * shared / (len(a) + len(b))  # Dice
                    if similarity >= SIMILAR and below[j + 1] + similarity > best:
                        best = below[j + 1] + similarity
            elif not a and not b and old[i].strip() == new[j].strip():
                best = max(best, below[j + 1] + 1.0)
            row[j] = best
    pairs = []
    i = j = 0
    while i < n and j < m:
        if score[i][j] == score[i + 1][j]:
            i += 1
        elif score[i][j] == score[i][j + 1]:
            j += 1
        else:
            pairs.append((i, j))
            i += 1
            j += 1
    return pairs


def _left(deadline: float | None) -> float:
    return 0.0 if deadline is None else max(deadline - time.perf_counter(), 0.001)


def _word_ops(old: str, new: str, timeout: float) -> list[tuple[int, str]]:
    old_tokens, new_tokens = tokenize(old), tokenize(new)
    counts = _diff_counts(*_encode(old_tokens, new_tokens), timeout, semantic=True)
    return _decode(counts, old_tokens, new_tokens)


def _append(ops: list[tuple[int, str]], op: int, text: str) -> None:
    if not text:
        return
    if ops and ops[-1][0] == op:
        ops[-1] = (op, ops[-1][1] + text)
    else:
        ops.append((op, text))


def backend() -> str:
    choice = os.environ.get("TOS_TRACKER_DIFF", "").strip().lower()
    if choice == "python":
        return "python"
    try:
        import fast_diff_match_patch  # noqa: F401
    except ImportError:  # pragma: no cover - declared dependency, but wheels may be missing
        return "python"
    return "fast"


def _encode(old_tokens: Sequence[str], new_tokens: Sequence[str]) -> tuple[str, str]:
    table: dict[str, str] = {}
    code = _FIRST_CODE

    def encode(tokens: Sequence[str]) -> str:
        nonlocal code
        out = []
        for token in tokens:
            char = table.get(token)
            if char is None:
                if code in _SURROGATES:
                    code = _SURROGATES.stop
                char = chr(code)
                code += 1
                table[token] = char
            out.append(char)
        return "".join(out)

    return encode(old_tokens), encode(new_tokens)


def _diff_counts(old: str, new: str, timeout: float, *, semantic: bool) -> list[tuple[int, int]]:
    """(op, length in tokens) runs from whichever library build is in use."""
    if backend() == "fast":
        import fast_diff_match_patch

        signs = {"=": 0, "+": 1, "-": -1}
        raw = fast_diff_match_patch.diff(
            old,
            new,
            timelimit=timeout,
            checklines=False,
            cleanup="Semantic" if semantic else "No",
        )
        return [(signs[op], length) for op, length in raw]
    import diff_match_patch

    dmp = diff_match_patch.diff_match_patch()
    dmp.Diff_Timeout = timeout
    diffs = dmp.diff_main(old, new, False)
    if semantic:
        dmp.diff_cleanupSemantic(diffs)
    return [(op, len(text)) for op, text in diffs]


def _decode(
    counts: Sequence[tuple[int, int]], old_tokens: Sequence[str], new_tokens: Sequence[str]
) -> list[tuple[int, str]]:
    ops: list[tuple[int, str]] = []
    i = j = 0
    for op, length in counts:
        if op == 1:
            text = "".join(new_tokens[j : j + length])
            j += length
        else:
            text = "".join(old_tokens[i : i + length])
            i += length
            if op == 0:
                j += length
        _append(ops, op, text)
    return ops


def headings(text: str) -> tuple[list[int], list[str]]:
    """Offsets and titles of markdown headings, for mapping positions to sections."""
    offsets, titles = [], []
    for match in HEADING.finditer(text):
        offsets.append(match.start())
        titles.append(match.group(2).strip())
    return offsets, titles


def sections_touched(old: str, new: str, ops: Sequence[tuple[int, str]]) -> list[str]:
    """Titles of the headings under which text was inserted or deleted, in order."""
    old_offsets, old_titles = headings(old)
    new_offsets, new_titles = headings(new)
    found: list[str] = []

    def note(offsets: list[int], titles: list[str], position: int) -> None:
        index = bisect.bisect_right(offsets, position) - 1
        title = titles[index] if index >= 0 else TOP_SECTION
        if title not in found:
            found.append(title)

    for op, start, end in edits(ops):
        text = (old if op == -1 else new)[start:end]
        if text.strip():
            offsets, titles = (old_offsets, old_titles) if op == -1 else (new_offsets, new_titles)
            note(offsets, titles, start + len(text) - len(text.lstrip()))
    return found


def edits(ops: Sequence[tuple[int, str]]) -> list[tuple[int, int, int]]:
    """(op, start, end) of each deletion (offsets in the old text) and insertion (in the
    new text), in diff order."""
    out: list[tuple[int, int, int]] = []
    i = j = 0
    for op, text in ops:
        if op == 0:
            i += len(text)
            j += len(text)
        elif op == -1:
            out.append((op, i, i + len(text)))
            i += len(text)
        else:
            out.append((op, j, j + len(text)))
            j += len(text)
    return out
