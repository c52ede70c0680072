"""Documents as clauses: segmentation, identity across versions, and cosmetic changes.

A reader asks "which clause was added?", not "which words". A version's text is
split along its own structure (headings give a section path; list items, table
rows and the sentences of long paragraphs are clauses), and the clauses of two
versions are matched: same text is the same clause (moved if its order or
section changed), similar text is the same clause reworded (modified), the rest
is added or removed. A change that only touches dates, relative times, counters,
whitespace or quote style is cosmetic.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from .diff import word_diff, words

LONG_PARAGRAPH = 300  # characters; longer paragraphs are split into sentences
SIMILAR = 0.5  # Dice overlap of word sets for a clause to count as reworded
MAX_FUZZY_PAIRS = 250_000  # all-pairs fallback only for clauses made of common words
COMMON_WORD_MIN = 50  # a word in more clauses than this (or 5%) does not make a candidate

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_ITEM = re.compile(
    r"^(\s*)(?:[-*+•]|\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)]|\(?[ivxlcdm]{1,6}[.)])\s+(.*)$"
)
_ROW = re.compile(r"^\s*\|.*\|\s*$")
_ROW_RULE = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"“(\[]?[A-Z0-9])")
_EMPHASIS = re.compile(r"(\*\*|__|(?<!\w)[*_]|[*_](?!\w))")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


@dataclass(frozen=True)
class Clause:
    """One clause: where it sits, what kind it is, and its text as the document shows it."""

    section: tuple[str, ...]
    kind: str  # heading, item, row, paragraph, sentence, code
    text: str
    position: int

    @property
    def key(self) -> str:
        return match_key(self.text)

    @property
    def section_title(self) -> str:
        return self.section[-1] if self.section else ""


@dataclass(frozen=True)
class ClauseChange:
    """What happened to one clause between two versions."""

    kind: str  # added, removed, modified, moved
    section: tuple[str, ...]
    before: Clause | None
    after: Clause | None
    ops: tuple[tuple[int, str], ...] = ()
    cosmetic: bool = False

    @property
    def text(self) -> str:
        """The clause as it reads now (as it read, for a removed clause)."""
        clause = self.after or self.before
        assert clause is not None
        return clause.text

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "section": list(self.section),
            "before": self.before.text if self.before else None,
            "after": self.after.text if self.after else None,
            "from_section": list(self.before.section) if self.before else None,
            "cosmetic": self.cosmetic,
            "inserted": [t for op, t in self.ops if op == 1],
            "deleted": [t for op, t in self.ops if op == -1],
        }


# --- segmentation --------------------------------------------------------------------------


def segment(text: str) -> list[Clause]:
    """Split a version's text into clauses, in document order."""
    return list(_segment(text))


@functools.lru_cache(maxsize=8)
def _segment(text: str) -> tuple[Clause, ...]:
    # Cached for the walk over a history: each version is segmented as the newer side
    # of one change and the older side of the next. Clauses are frozen, so sharing is safe.
    lines = text.replace("\r\n", "\n").split("\n")
    clauses: list[Clause] = []
    section: list[tuple[int, str]] = []
    paragraph: list[str] = []
    item: list[str] = []

    def path() -> tuple[str, ...]:
        return tuple(title for _, title in section)

    def add(kind: str, body: str) -> None:
        body = " ".join(body.split())
        if body:
            clauses.append(Clause(path(), kind, body, len(clauses)))

    def flush() -> None:
        if item:
            add("item", " ".join(item))
            item.clear()
        if paragraph:
            body = " ".join(" ".join(paragraph).split())
            paragraph.clear()
            if len(body) > LONG_PARAGRAPH:
                for sentence in _SENTENCE_END.split(body):
                    add("sentence", sentence)
            else:
                add("paragraph", body)

    def heading(level: int, title: str) -> None:
        flush()
        title = clean_inline(title)
        if not title:
            return
        while section and section[-1][0] >= level:
            section.pop()
        add("heading", title)
        section.append((level, title))

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _FENCE.match(line):
            flush()
            body = []
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                body.append(lines[i])
                i += 1
            add("code", "\n".join(body))
        elif not stripped:
            flush()
        elif match := _ATX.match(line):
            heading(len(match.group(1)), match.group(2))
        elif (
            i + 1 < len(lines)
            and _SETEXT.match(lines[i + 1])
            and not paragraph
            and not item
            and not _ITEM.match(line)
        ):
            heading(1 if lines[i + 1].strip().startswith("=") else 2, stripped)
            i += 1
        elif _ROW.match(line):
            flush()
            if not _ROW_RULE.match(line):
                cells = [c.strip() for c in stripped.strip("|").split("|")]
                add("row", " | ".join(c for c in cells if c))
        elif match := _ITEM.match(line):
            flush()
            item.append(match.group(2))
        elif item and (line.startswith((" ", "\t"))):
            item.append(stripped)  # a continuation line of the item
        else:
            if item:
                flush()
            paragraph.append(stripped)
        i += 1
    flush()
    return tuple(clauses)


def clean_inline(text: str) -> str:
    """Text without markdown emphasis, link targets or list markers: what a reader reads."""
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    return " ".join(text.split())


@functools.lru_cache(maxsize=1 << 14)  # ~6 MB at most
def match_key(text: str) -> str:
    """What must be equal for two clauses to be the same clause, unchanged.

    Cached: consecutive versions share most clauses, and each version is compared
    twice (as the newer, then as the older side), so the same texts come back.
    """
    return cosmetic_key(clean_inline(text))


# --- cosmetic changes --------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_NOISE = [
    # Dates in the usual forms: May 2, 2024 / 2 May 2024 / 2024-05-02 / 05/02/2024 / May 2024.
    rf"(?:\b|(?<=updated)|(?<=effective)){_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}\b",
    rf"\b{_MONTH}\s+\d{{4}}\b",
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
    r"\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    r"\b\d{1,2}\.\d{1,2}\.\d{4}\b",
    r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?|utc|gmt)?\b",
    # Relative times and counters that change on every load.
    r"\b(?:\d+|an?|one|few)\s+(?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
    r"\s+ago\b",
    r"\b(?:yesterday|today|just now|last (?:week|month|year))\b",
    r"\b\d+\s+(?:contributors?|min(?:ute)?s?\s+read)\b",
    # Screen-reader labels that some extractions leave in link text.
    r"\(opens in a new (?:window|tab)\)",
    # Page furniture that comes and goes with a redesign: a clause that is only the
    # label of a table of contents or a skip link (never a sentence that mentions one).
    r"^\W*(?:table of contents|contents|on this page|in this article|jump to|"
    r"skip to (?:main )?content|back to top)\W*$",
]
_DATELINE_LABEL = re.compile(
    r"^\W*(?:(?:this|the)\s+\w+\s+(?:was|is)\s+)?(?:last\s+)?(?:updated|modified|revised|"
    r"effective|published|posted|article|date|version|as of)(?:\s+(?:on|from|as of))?[\W_]*$",
    re.IGNORECASE,
)
_ENUMERATOR = re.compile(r"^\(?(?:[0-9]{1,3}|[a-z]|[ivxlcdm]{1,6})\\?[.)]\s+", re.IGNORECASE)
_DASHES = re.compile(r"\s*-\s*")
_NOISE_RE = re.compile("|".join(f"(?:{p})" for p in _NOISE), re.IGNORECASE)
# Every pattern above needs a digit or one of these words: an ASCII text with none of
# them cannot match, and most clauses are such texts (the full search costs ~25 µs).
_NOISE_WORDS = (
    "ago", "yesterday", "today", "just now", "last week", "last month", "last year",
    "(opens in a new ", "contents", "on this page", "in this article", "jump to",
    "skip to ", "back to top",
)  # fmt: skip
_ASCII_DIGIT = re.compile("[0-9]")
_QUOTES = str.maketrans(
    {"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'",
     "–": "-", "—": "-", "‐": "-", "‑": "-", "\u00a0": " "}
)  # fmt: skip


@functools.lru_cache(maxsize=1 << 14)  # ~6 MB at most
def cosmetic_key(text: str) -> str:
    """The text with everything a cosmetic change may touch taken out.

    Dates, relative times and counters go from short datelines; quotes and dashes take
    one style everywhere (a spaced
    en dash and a closed em dash read the same); a list enumerator ("c.") goes, as
    inserting an item renumbers the ones after it.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = _INVISIBLE.sub("", text)
    without_noise = _NOISE_RE.sub(" ", text) if _may_hold_noise(text) else text
    # Dates, times and counters are noise only in a dateline ("Last updated: May 2, 2024",
    # "Article • 05/02/2024 • 3 contributors"). Inside a sentence ("accounts created
    # before January 1, 2024", "up to 10 comments per day") they are the substance.
    rest = without_noise.split()
    if without_noise != text and (len(rest) <= 3 or _DATELINE_LABEL.match(without_noise)):
        text = without_noise
    text = _DASHES.sub("-", " ".join(text.split()))
    return _ENUMERATOR.sub("", text)


def _may_hold_noise(text: str) -> bool:
    """False only when `_NOISE_RE` surely finds nothing (non-ASCII text is searched:
    under IGNORECASE a few non-ASCII letters match ASCII ones, and \\d any digit)."""
    if not text.isascii() or _ASCII_DIGIT.search(text):
        return True
    lowered = text.lower()
    return any(word in lowered for word in _NOISE_WORDS)


# --- matching ------------------------------------------------------------------------------


def compare(old: Sequence[Clause], new: Sequence[Clause]) -> list[ClauseChange]:
    """Clause changes from `old` to `new`, in the order of the new document."""
    pairs = _match(old, new)
    matched_old = {i for i, _ in pairs}
    matched_new = {j for _, j in pairs}
    in_order = _longest_increasing(sorted(pairs))
    # Headings matched to each other (renamed, recased) name the same section.
    renamed = {
        _title(old[i].text): _title(new[j].text)
        for i, j in pairs
        if old[i].kind == "heading" and new[j].kind == "heading"
    }
    changes: list[tuple[float, ClauseChange]] = []
    for i, j in pairs:
        a, b = old[i], new[j]
        # Moved means out of order, or under another heading; a renamed or removed
        # parent heading higher up does not move every clause below it.
        before, after = _title(a.section_title), _title(b.section_title)
        same_section = before == after or renamed.get(before) == after
        same_place = same_section and (i, j) in in_order
        if a.text == b.text and same_place:
            continue
        if a.key == b.key and a.text != b.text and same_place:
            ops = word_diff(a.text, b.text).ops
            changes.append((j, ClauseChange("modified", b.section, a, b, ops, cosmetic=True)))
            continue
        if a.key == b.key:
            changes.append((j, ClauseChange("moved", b.section, a, b)))
            continue
        ops = word_diff(a.text, b.text).ops
        changes.append((j, ClauseChange("modified", b.section, a, b, ops)))
    for j, b in enumerate(new):
        if j not in matched_new:
            cosmetic = not cosmetic_key(clean_inline(b.text))
            changes.append((j, ClauseChange("added", b.section, None, b, cosmetic=cosmetic)))
    for i, a in enumerate(old):
        if i not in matched_old:
            # A removed clause sits where its old neighbours went in the new version.
            anchor = max((jj for ii, jj in pairs if ii < i), default=-1) + 0.5
            cosmetic = not cosmetic_key(clean_inline(a.text))
            changes.append((anchor, ClauseChange("removed", a.section, a, None, cosmetic=cosmetic)))
    changes.sort(key=lambda item: item[0])
    return [change for _, change in changes]


def _title(text: str) -> str:
    return match_key(text).casefold()


def _match(old: Sequence[Clause], new: Sequence[Clause]) -> list[tuple[int, int]]:
    """Pairs (i, j): equal keys first (in order), then the most similar of the rest."""
    # Equal clauses in order first (a longest common subsequence), so a duplicated
    # clause inserted before its twin is one "added", not "moved" plus "added".
    old_keys, new_keys = [c.key for c in old], [c.key for c in new]
    pairs: list[tuple[int, int]] = []
    for block in SequenceMatcher(None, old_keys, new_keys).get_matching_blocks():
        pairs.extend((block.a + k, block.b + k) for k in range(block.size))
    taken_old = {i for i, _ in pairs}
    taken_new = {j for _, j in pairs}
    # Then equal clauses out of order (moves), nearest first.
    by_key: dict[str, list[int]] = defaultdict(list)
    for j, key in enumerate(new_keys):
        if j not in taken_new:
            by_key[key].append(j)
    rest_old: list[int] = []
    for i, key in enumerate(old_keys):
        if i in taken_old:
            continue
        candidates = by_key.get(key)
        if candidates:
            j = min(candidates, key=lambda jj: abs(jj - i))
            candidates.remove(j)
            pairs.append((i, j))
            taken_new.add(j)
        else:
            rest_old.append(i)
    rest_new = [j for j in range(len(new)) if j not in taken_new]
    if rest_old and rest_new:
        old_words = {i: set(words(old[i].key.lower())) for i in rest_old}
        new_words = {j: set(words(new[j].key.lower())) for j in rest_new}
        # Candidates share at least one word that is not everywhere: an inverted index
        # keeps this near-linear where comparing every pair would be quadratic.
        postings: dict[str, list[int]] = defaultdict(list)
        for j in rest_new:
            for word in new_words[j]:
                postings[word].append(j)
        common = max(COMMON_WORD_MIN, len(rest_new) // 20)
        scored = []
        for i in rest_old:
            a = old_words[i]
            if not a:
                continue
            near: set[int] = set()
            for word in a:
                hits = postings.get(word, [])
                if len(hits) <= common:
                    near.update(hits)
            if not near and len(rest_new) * len(rest_old) <= MAX_FUZZY_PAIRS:
                near = set(rest_new)  # only common words: compare with every clause
            for j in sorted(near):
                if (old[i].kind == "heading") != (new[j].kind == "heading"):
                    continue
                b = new_words[j]
                shared = len(a & b)
                if shared:
                    score = 2 * shared / (len(a) + len(b))
                    if score >= SIMILAR:
                        # Prefer the nearer clause between equally similar ones.
                        scored.append((-score, abs(i - j), i, j))
        scored.sort()
        used_old: set[int] = set()
        for _, _, i, j in scored:
            if i not in used_old and j not in taken_new:
                pairs.append((i, j))
                used_old.add(i)
                taken_new.add(j)
    return pairs


def _longest_increasing(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The largest set of pairs whose new positions keep the old order (patience sort)."""
    import bisect

    tails: list[int] = []
    tail_index: list[int] = []
    previous: list[int] = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        at = bisect.bisect_left(tails, j)
        if at == len(tails):
            tails.append(j)
            tail_index.append(k)
        else:
            tails[at] = j
            tail_index[at] = k
        previous[k] = tail_index[at - 1] if at else -1
    keep: set[tuple[int, int]] = set()
    k = tail_index[-1] if tail_index else -1
    while k >= 0:
        keep.add(pairs[k])
        k = previous[k]
    return keep


def summarize(changes: Sequence[ClauseChange]) -> str:
    """'3 clauses added, 1 removed in 'Disallowed usage'' (cosmetic ones noted apart)."""
    real = [c for c in changes if not c.cosmetic]
    if not real:
        return (
            "cosmetic only (dates, counters, whitespace or quote style)"
            if changes
            else ("no clause changed")
        )
    counts: dict[str, int] = defaultdict(int)
    sections: dict[str, int] = defaultdict(int)
    for change in real:
        counts[change.kind] += 1
        sections[change.section[-1] if change.section else "(beginning)"] += 1
    parts = []
    for kind in ("added", "removed", "modified", "moved"):
        if counts[kind]:
            parts.append(f"{counts[kind]} {kind}")
    total = sum(counts.values())
    first = f"{parts[0].split()[0]} clause{'s' if int(parts[0].split()[0]) != 1 else ''} "
    head = first + parts[0].split(" ", 1)[1]
    text = ", ".join([head, *parts[1:]])
    top = sorted(sections.items(), key=lambda kv: -kv[1])
    where = ", ".join(f"'{name}'" for name, _ in top[:2])
    more = f" and {len(top) - 2} more sections" if len(top) > 2 else ""
    if total and top:
        text += f" in {where}{more}"
    return text
