"""Clauses of one version: segmentation along the text's own structure (headings give a
section path; list items, table rows and the sentences of long paragraphs are clauses), and
the keys that say two clauses are the same text, the same up to structure, or the same up
to cosmetic things (dates, counters, whitespace, quote style). `clauses` matches them
across versions.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

LONG_PARAGRAPH = 300  # characters; longer paragraphs are split into sentences

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
# An outline number ("1.2", "1.2.3.") that pages write by hand instead of nesting lists:
# with a closing dot, or before a capitalised title ("1.2 Eligibility"). Not a decimal
# quantity ("2.5 GB", "99.9 monthly availability", "1.5 Million users"): the substance.
_UNITS = (
    r"(?i:[kmgtp]i?b|bytes?|usd|eur|gbp|dollars?|euros?|million|billion|thousand|percent"
    r"|per|times|x|seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b"
)
_OUTLINE = (
    r"[0-9]{1,3}(?:\.[0-9]{1,3})+"
    rf"(?:\.(?=\s)|(?=\s+[\"“(\[]?(?-i:[A-Z]))(?!\s+[\"“(\[]?{_UNITS}))"
)
# A list item: a bullet, or an enumerator ("3.", "(b)", "iv)", an outline number).
_ITEM = re.compile(
    rf"^(\s*)(?:[-*+•]|\(?[0-9]{{1,3}}[.)]|{_OUTLINE}|\(?[a-zA-Z][.)]"
    r"|\(?[ivxlcdm]{1,6}[.)])\s+(.*)$"
)
_ROW = re.compile(r"^\s*\|.*\|\s*$")
_ROW_RULE = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"“(\[]?[A-Z0-9])")
_EMPHASIS = re.compile(r"(\*\*|__|(?<!\w)[*_]|[*_](?!\w))")
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
        """Equal for the same clause unchanged, whatever its numbering (and, for a
        heading, its letter case: a heading's case is typography, not terms).

        Kept on the clause once known (a pure function of kind and text): a version's
        clauses are compared twice in a walk over a history, and a huge version holds
        more clauses than `match_key`'s cache.
        """
        known: str | None = self.__dict__.get("_key")
        if known is None:
            known = heading_key(self.text) if self.kind == "heading" else match_key(self.text)
            object.__setattr__(self, "_key", known)
        return known

    @property
    def loose_key(self) -> str:
        """Equal for the same words whatever their case: identity across recasing."""
        return self.key.casefold()

    @property
    def section_title(self) -> str:
        return self.section[-1] if self.section else ""


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
            if inner := _ATX.match(match.group(2)):
                # "1. ## Eligibility": a numbered heading, written as a list of headings.
                heading(len(inner.group(1)), inner.group(2))
            else:
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
    text = drop_link_targets(text)
    text = _EMPHASIS.sub("", text)
    return " ".join(text.split())


def drop_link_targets(text: str) -> str:
    """`[text](target)` links as their text alone.

    A scan over matched brackets, not a regular expression: link text may hold brackets
    ("[Terms [PDF]](…)") and targets parentheses ("…/wiki/Foo_(bar)"), and extraction
    escapes neither. Brackets and parentheses are paired once (linear, whatever the text).
    """
    return _links(text)[0]


def _link_targets(text: str) -> list[str]:
    return _links(text)[1]


def _links(text: str) -> tuple[str, list[str]]:
    """The text with links as their text alone, and the targets taken out, in order."""
    if "](" not in text:
        return text, []
    brackets = _pairs(text, "[", "]")
    parens = _pairs(text, "(", ")")
    out: list[str] = []
    targets: list[str] = []
    i = 0
    for start in sorted(brackets):
        if start < i:
            continue  # inside a link already taken
        close = brackets[start]
        end = parens.get(close + 1)
        if end is None:
            continue  # brackets, not a link
        image = start > i and text[start - 1] == "!"
        out.append(text[i : start - 1 if image else start])
        inner, inner_targets = _links(text[start + 1 : close])  # an image inside a link
        out.append(inner)
        targets.extend(inner_targets)
        targets.append(text[close + 2 : end])
        i = end + 1
    out.append(text[i:])
    return "".join(out), targets


def _pairs(text: str, opening: str, closing: str) -> dict[int, int]:
    """Offsets of each `opening` character and of the `closing` one that balances it."""
    found: dict[int, int] = {}
    stack: list[int] = []
    for at, char in enumerate(text):
        if char == opening:
            stack.append(at)
        elif char == closing and stack:
            found[stack.pop()] = at
    return found


@functools.lru_cache(maxsize=1 << 14)  # ~6 MB at most
def match_key(text: str) -> str:
    """What must be equal for two clauses to be the same clause, unchanged.

    Cached: consecutive versions share most clauses, and each version is compared
    twice (as the newer, then as the older side), so the same texts come back.
    """
    readable = clean_inline(text)
    key = cosmetic_key(readable)
    if _DATELINE_LABEL.match(key) and _NOISE_RE.search(readable.translate(_QUOTES)):
        # "Last Revised on June 4th, 2024" and "Last updated: June 4th, 2024" are one
        # dateline: its date is noise already, and so is the wording of its label.
        return _DATELINE
    return key


@functools.lru_cache(maxsize=1 << 12)
def heading_key(text: str) -> str:
    """`match_key` for a heading: without its number ("Section 3", "2.1") or letter case."""
    return _HEADING_NUMBER.sub("", match_key(text)).casefold()


_DATELINE = "(dateline)"


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
# A leading enumerator, one or more ("1. (a) "): "3.", "(b)", "iv)", outline numbers
# ("1.2", "1.2.3."), and "Section 3." / "Article 3:" / "§ 3 -" (with a separator: "Section 9
# contains…" is a sentence).
_ENUMERATOR = re.compile(
    rf"^(?:(?:\(?(?:[0-9]{{1,3}}|[a-z]|[ivxlcdm]{{1,6}})\\?[.)]|{_OUTLINE})\s+"
    r"|(?:section|article|clause|§)\s*[0-9]{1,3}(?:\.[0-9]{1,3})*\s*[.:)-]\s*)+",
    re.IGNORECASE,
)
# A heading's number: after "Section"/"Article"/"Part"/"§" it needs no separator
# ("Section 3 Eligibility"); alone it needs one ("3. Eligibility", "IV) Eligibility"), the
# outline form ("2.1 Eligibility") or a capitalised title after it ("3 Eligibility"). A
# number before a unit or a lower-case word is the heading's substance ("30 Day Refund
# Policy", "18 Years or Older", "18 and older"); a bare roman numeral may be a word ("Civil").
_HEADING_NUMBER = re.compile(
    r"^(?:(?i:section|article|clause|part|chapter|§)\s*[0-9]{1,3}(?:\.[0-9]{1,3})*\.?"
    rf"|[0-9]{{1,3}}[.)]|{_OUTLINE}"
    rf"|[0-9]{{1,3}}(?=\s+[\"“(\[]?[A-Z])(?!\s+[\"“(\[]?{_UNITS})"
    r"|(?i:[ivxlcdm]{1,6})[.)])\s+(?=\w)",
)
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
# What a pattern with a digit needs besides: a month (any of `_MONTH`'s spellings begins
# so), a digit, a separator and a digit ("2024-05", "05/02", "2.5.2024", "10:30"), or a
# counter ("3 contributors", "5 min read"; "3 days ago" holds "ago").
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DIGIT_NOISE = re.compile(r"[0-9][-/.:][0-9]|[0-9]\s+(?:contributor|min)")
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
    under IGNORECASE a few non-ASCII letters match ASCII ones, and \\d any digit).

    With a digit, every pattern needs a month name, a digit beside "-/.:" and another,
    or a counter's word: a clause numbered "Item 12:" need not be searched (the search
    costs ~100 µs a sentence, and a huge list has hundreds of thousands).
    """
    if not text.isascii():
        return True
    lowered = text.lower()
    if any(word in lowered for word in _NOISE_WORDS):
        return True
    if not _ASCII_DIGIT.search(text):
        return False
    return any(month in lowered for month in _MONTHS) or bool(_DIGIT_NOISE.search(lowered))


# --- matching ------------------------------------------------------------------------------


# What a cosmetic change changed, in words a reader sees next to it.
