"""Watched topics: patterns as data, and the flags they raise on clause changes.

A flag says: this clause change (added, removed, modified) touches a topic people
watch, and which words matched. Losing a ban is flagged as much as gaining one.

A keyword is not a topic: "opt out" of analytics cookies is not about training data,
"biometric" in a list of sensitive data categories is not about facial recognition.
So a topic may carry context rules (`[[topics.context]]` in topics.toml): patterns
that count only with certain words near them (`near`), or never with others
(`not_near`). Words only in link targets or table-of-contents anchors never count.
"""

from __future__ import annotations

import bisect
import functools
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from tracker.analysis.clauses import ClauseChange
from tracker.analysis.diff import edits
from tracker.analysis.segments import clean_inline, cosmetic_key
from tracker.core.errors import ConfigError, check_keys

TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TOPIC_KEYS = {"id", "label", "patterns"}
OPTIONAL_TOPIC_KEYS = {"context"}
CONTEXT_KEYS = {"patterns", "near", "not_near", "window"}
DEFAULT_WINDOW = 12
# Topics read a clause's first SCAN_CHARS characters: a real clause is at most a few
# thousand (the corpus's longest is 1,491), a pathological one (a 5 MB line with no
# sentence end) is not read further. Context windows read WORD_CHARS of each word.
SCAN_CHARS = 50_000
WORD_CHARS = 100
_NON_SPACE = re.compile(r"\S+")
_SEPARATOR = r"[\s\-–—/]+"


@dataclass(frozen=True)
class Context:
    """Patterns that count only in context: with one of `near` within `window` words
    on either side, and with none of `not_near` there. Why: many topic words are
    topical in one setting and boilerplate in another ("prosecution" of a crime vs
    "prosecution of fraud" by the company itself)."""

    patterns: tuple[str, ...]
    near: tuple[str, ...] = ()
    not_near: tuple[str, ...] = ()
    window: int = DEFAULT_WINDOW

    def accepts(self, text: str, start: int, end: int, spans: _Spans | None = None) -> bool:
        """Whether the match text[start:end] is in context: `window` words either side.

        The words are found from `spans` (the text's word offsets, computed once for
        all its matches: splitting the text before each match was quadratic), and read
        up to `WORD_CHARS` characters a word, so a pathological run without spaces
        costs no more than a long word.
        """
        spans = spans or _Spans(text)
        around = " ".join(
            [*spans.before(start, self.window), text[start:end], *spans.after(end, self.window)]
        )
        if self.near and not _compiled(self.near).search(around):
            return False
        return not (self.not_near and _compiled(self.not_near).search(around))


class _Spans:
    """Where the words (runs of non-space) of a text start and end, found once."""

    def __init__(self, text: str) -> None:
        self.text = text
        found = [(m.start(), m.end()) for m in _NON_SPACE.finditer(text)]
        self.starts = [a for a, _ in found]
        self.ends = [b for _, b in found]

    def before(self, at: int, count: int) -> list[str]:
        """The last `count` words of text[:at] (a word cut at `at` counts, cut)."""
        k = bisect.bisect_left(self.starts, at)  # words starting before `at`
        return [
            self.text[self.starts[n] : min(self.ends[n], at)][-WORD_CHARS:]
            for n in range(max(0, k - count), k)
        ]

    def after(self, at: int, count: int) -> list[str]:
        """The first `count` words of text[at:] (a word cut at `at` counts, cut)."""
        k = bisect.bisect_right(self.ends, at)  # words ending at or before `at`
        return [
            self.text[max(self.starts[n], at) : self.ends[n]][:WORD_CHARS]
            for n in range(k, min(len(self.starts), k + count))
        ]


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    patterns: tuple[str, ...]
    context: tuple[Context, ...] = ()

    @property
    def all_patterns(self) -> tuple[str, ...]:
        """The plain patterns and those of the context rules."""
        return self.patterns + tuple(p for c in self.context for p in c.patterns)

    @property
    def regex(self) -> re.Pattern[str]:
        """Every candidate: the plain patterns and those of the context rules."""
        return _compiled(self.all_patterns)

    def matches(self, text: str) -> list[str]:
        """The words in `text` that match, in order, each once (case-insensitive):
        every match of `patterns`, and the matches of a context rule's patterns
        that its context accepts."""
        text = text[:SCAN_CHARS]
        hits = [(m.start(), m.group(0)) for m in _compiled(self.patterns).finditer(text)]
        spans = _Spans(text) if self.context else None
        for rule in self.context:
            hits += [
                (m.start(), m.group(0))
                for m in _compiled(rule.patterns).finditer(text)
                if rule.accepts(text, m.start(), m.end(), spans)
            ]
        found: dict[str, str] = {}
        for _, word in sorted(hits, key=lambda hit: hit[0]):
            found.setdefault(word.lower(), word)
        return list(found.values())

    def find(self, clause_text: str) -> list[str]:
        """The words a flag on this clause would report: matched in what a reader
        reads (link targets dropped), and nothing in a table-of-contents entry."""
        return self.matches(_Readable.of(clause_text).text)


@dataclass(frozen=True)
class _Readable:
    """A clause as topics read it: its first `SCAN_CHARS` characters, links as their
    text, emphasis dropped; empty for a table-of-contents entry. Made once a clause,
    whatever the number of topics."""

    text: str
    norm: str  # cosmetic_key, lower case, single spaces (of a contents entry too)

    @classmethod
    def of(cls, clause_text: str) -> _Readable:
        clause_text = clause_text[:SCAN_CHARS]
        text = clean_inline(clause_text)
        return cls("" if is_anchor_list(clause_text) else text, _norm(text))


_ANCHOR_LINK = re.compile(r"\[[^\]]*\]\(#[^)]*\)")


def is_anchor_list(text: str) -> bool:
    """A clause that is nothing but links to anchors in the same page: a table of
    contents entry, which repeats a heading that is flagged where it stands."""
    if not _ANCHOR_LINK.search(text):
        return False
    rest = _ANCHOR_LINK.sub(" ", text)
    return not re.search(r"\w{2,}", re.sub(r"^\s*(?:\d+[.)]|[ivx]+[.)])", "", rest))


@dataclass(frozen=True)
class Flag:
    topic: str
    label: str
    kind: str
    text: str
    matched: tuple[str, ...]
    section: tuple[str, ...] = ()
    ops: tuple[tuple[int, str], ...] = ()  # the clause's word diff, when it was modified

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "label": self.label,
            "kind": self.kind,
            "text": self.text,
            "matched": list(self.matched),
            "section": list(self.section),
        }


def flags_for(changes: Sequence[ClauseChange], topics: Sequence[Topic]) -> list[Flag]:
    """Flags for the real (not cosmetic, not merely moved) clause changes.

    An added or removed clause is flagged when it mentions a topic anywhere; a
    modified clause only when a match touches the words that were inserted or
    deleted (a reworded sentence that merely mentions "biometric data" in an
    unchanged part is not news about biometrics). A clause is read once for all
    topics, and only its first `SCAN_CHARS` characters.
    """
    flags: list[Flag] = []
    anything = _any_of(tuple(topics))
    for change in changes:
        if change.cosmetic or change.kind == "moved":
            continue
        sides = _sides(change)
        texts = [sides.text] if isinstance(sides, _Readable) else [s.text for s in sides]
        if anything is not None and not any(anything.search(text) for text in texts):
            continue  # no topic's pattern occurs at all: one search, not one per topic
        for topic in topics:
            matched: list[str] = []
            for word in _matches_of_change(change, sides, topic):
                if word.lower() not in (m.lower() for m in matched):
                    matched.append(word)
            if matched:
                flags.append(
                    Flag(
                        topic.id,
                        topic.label,
                        change.kind,
                        change.text,
                        tuple(matched),
                        change.section,
                        change.ops,
                    )
                )
    return flags


@functools.lru_cache(maxsize=8)
def _any_of(topics: tuple[Topic, ...]) -> re.Pattern[str] | None:
    """One expression matching wherever any topic's pattern does (None if they do not
    combine, e.g. two topics name a group alike): most clauses match none."""
    patterns = tuple(p for topic in topics for p in topic.all_patterns)
    try:
        return _compiled(patterns) if patterns else None
    except re.error:
        return None


@dataclass
class _Side:
    """One version of a modified clause, read for topics: its text, what a reader reads
    of it and of the other version, and the spans the word diff edited in it."""

    text: str
    readable: _Readable
    other: _Readable
    starts: list[int]
    ends: list[int]
    seen: dict[str, bool]  # words: whether they read the same in the other version

    def edited(self, start: int, end: int) -> bool:
        """Whether an edited span overlaps text[start:end] (spans are sorted, apart)."""
        k = bisect.bisect_right(self.ends, start)
        return k < len(self.starts) and self.starts[k] < end

    def in_other(self, words: str) -> bool:
        if words not in self.seen:
            self.seen[words] = _has_words(self.other.norm, words)
        return self.seen[words]


def _sides(change: ClauseChange) -> list[_Side] | _Readable:
    """What reading a change for topics needs, computed once for all topics: the
    readable clause of an added or removed one; both sides of a modified one."""
    if change.kind != "modified":
        return _Readable.of(change.text)
    if change.before is None or change.after is None:
        return []
    edited = edits(change.ops)
    before, after = _Readable.of(change.before.text), _Readable.of(change.after.text)
    sides = []
    for op, clause, readable, other in (
        (-1, change.before, before, after),
        (1, change.after, after, before),
    ):
        spans = [(start, end) for kind, start, end in edited if kind == op]
        sides.append(
            _Side(
                clause.text[:SCAN_CHARS],
                readable,
                other,
                [start for start, _ in spans],
                [end for _, end in spans],
                {},
            )
        )
    return sides


def _matches_of_change(
    change: ClauseChange, sides: list[_Side] | _Readable, topic: Topic
) -> list[str]:
    if isinstance(sides, _Readable):
        return topic.matches(sides.text) if sides.text else []
    found = []
    for side in sides:
        accepted: set[str] | None = None
        for match in topic.regex.finditer(side.text):
            if not side.edited(match.start(), match.end()):
                continue
            words = _norm(match.group(0))
            if accepted is None:
                matches = topic.matches(side.readable.text) if side.readable.text else []
                accepted = {_norm(word) for word in matches}
            # Not news when the same words read the same in the other version (a quote
            # or emphasis edit), nor when they sit only in a link target (a URL slug),
            # nor when their context says they are not about the topic.
            if (
                words not in accepted
                or side.in_other(words)
                or not _has_words(side.readable.norm, words)
            ):
                continue
            found.append(match.group(0))
    if not found and _polarity(sides[0].text) != _polarity(sides[1].text):
        # "We do not train our models on your content" → "We train our models on your
        # content": the topic's words read the same, and the clause now says the opposite.
        # (The same negations and modals, recased or moved, are no such edit.)
        for side in sides:
            if not found:
                spans = list(zip(side.starts, side.ends, strict=True))
                found = _reversed_matches(side.text, spans, topic)
    return found


def _polarity(text: str) -> Counter[str]:
    return Counter(m.group(0).casefold().replace("’", "'") for m in _POLARITY.finditer(text))


def _reversed_matches(text: str, spans: Sequence[tuple[int, int]], topic: Topic) -> list[str]:
    """The topic's words that an edited negation or modal ("not", "may", "only") governs:
    in the same sentence, at most `POLARITY_REACH` words from it, in `text`'s `spans`.
    Only the nearest edited word on each side of a match is looked at: linear in matches."""
    turns = sorted(m.span() for a, b in spans for m in _POLARITY.finditer(text, a, b))
    if not turns:
        return []
    ends = [end for _, end in turns]
    accepted = {_norm(word) for word in topic.find(text)}
    found = []
    for match in topic.regex.finditer(text):
        if _norm(match.group(0)) not in accepted:
            continue
        k = bisect.bisect_right(ends, match.start())
        # Before the words ("may not use it for military") or after them ("police may
        # never receive"), with no sentence break between.
        near = []
        if k > 0:
            near.append(text[turns[k - 1][1] : match.start()])
        if k < len(turns) and turns[k][0] >= match.end():
            near.append(text[match.end() : turns[k][0]])
        if any(
            len(between.split()) <= POLARITY_REACH and not _SENTENCE_BREAK.search(between)
            for between in near
        ):
            found.append(match.group(0))
    return found


POLARITY_REACH = 4  # words from "not" to what it negates: "do not [use it for] military"
_SENTENCE_BREAK = re.compile(r"[.;:!?]\s")


# Words whose insertion or removal can reverse what a clause allows or forbids.
_POLARITY = re.compile(
    r"\b(?:not|no|never|nor|cannot|can't|can’t|don't|don’t|doesn't|doesn’t|won't|won’t|"
    r"shall|must|may|only|except|unless|without|prohibit\w*|forbid\w*|allow\w*|permit\w*|"
    r"requir\w*|ban\w*|restrict\w*)\b",
    re.IGNORECASE,
)


def _has_words(text: str, words: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(words) + r"(?!\w)", text) is not None


def _norm(text: str) -> str:
    return " ".join(cosmetic_key(text).lower().split())


@functools.lru_cache(maxsize=1)
def default_topics() -> tuple[Topic, ...]:
    """The built-in topics. Their patterns are compiled when first used, not here: they
    are ours and tested, and a run with no change never needs them (~50 ms saved)."""
    text = resources.files("tracker").joinpath("topics.toml").read_text(encoding="utf-8")
    return parse_topics(tomllib.loads(text).get("topics", []), "(built-in topics)", check=False)


def parse_topics(entries: Iterable[object], name: str, *, check: bool = True) -> tuple[Topic, ...]:
    topics: list[Topic] = []
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{name}: topics entry #{position} must be a table")
        label = (
            f"topic '{entry['id']}'" if isinstance(entry.get("id"), str) else f"topic #{position}"
        )
        where = f"{name}: {label}"
        check_keys(entry, TOPIC_KEYS | OPTIONAL_TOPIC_KEYS, where)
        for key in TOPIC_KEYS:
            if key not in entry:
                raise ConfigError(f"{where}: missing required key '{key}'")
        if not isinstance(entry["id"], str) or not TOPIC_ID.match(entry["id"]):
            raise ConfigError(
                f"{where}: key 'id' must be a lowercase slug such as 'law-enforcement'"
            )
        if not isinstance(entry["label"], str) or not entry["label"].strip():
            raise ConfigError(f"{where}: key 'label' must be a non-empty string")
        patterns = entry["patterns"]
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and p.strip() for p in patterns)
        ):
            raise ConfigError(f"{where}: key 'patterns' must be a non-empty list of strings")
        for pattern in patterns if check else ():
            try:
                re.compile(pattern_regex(pattern))
            except re.error as exc:
                raise ConfigError(
                    f"{where}: key 'patterns': invalid pattern {pattern!r}: {exc}"
                ) from None
        try:
            if check:
                _compiled(tuple(patterns))
        except re.error as exc:
            raise ConfigError(
                f"{where}: key 'patterns' do not combine into one expression ({exc});"
                " inline flags such as (?x) must be scoped, e.g. (?x:...)"
            ) from None
        context = _parse_context(entry.get("context", []), where, check)
        topics.append(Topic(entry["id"], entry["label"].strip(), tuple(patterns), context))
    return tuple(topics)


def _parse_context(entries: object, where: str, check: bool) -> tuple[Context, ...]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: key 'context' must be an array of tables ([[topics.context]])")
    rules = []
    for position, entry in enumerate(entries, start=1):
        here = f"{where}: context rule #{position}"
        check_keys(entry, CONTEXT_KEYS, here)
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("patterns", "near", "not_near"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(
                isinstance(p, str) and p.strip() for p in value
            ):
                raise ConfigError(f"{here}: key '{key}' must be a list of non-empty strings")
            for pattern in value if check else ():
                try:
                    re.compile(pattern_regex(pattern))
                except re.error as exc:
                    raise ConfigError(
                        f"{here}: key '{key}': invalid pattern {pattern!r}: {exc}"
                    ) from None
            lists[key] = tuple(value)
        if not lists["patterns"]:
            raise ConfigError(f"{here}: key 'patterns' must be a non-empty list of strings")
        if not lists["near"] and not lists["not_near"]:
            raise ConfigError(f"{here}: give 'near' or 'not_near' (or both)")
        window = entry.get("window", DEFAULT_WINDOW)
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 100:
            raise ConfigError(f"{here}: key 'window' must be a whole number of words, 1 to 100")
        rules.append(Context(lists["patterns"], lists["near"], lists["not_near"], window))
    return tuple(rules)


def merge_topics(base: Sequence[Topic], extra: Sequence[Topic]) -> tuple[Topic, ...]:
    """Topics of `extra` replace those of `base` with the same id and add the others."""
    by_id = {t.id: t for t in base}
    for topic in extra:
        by_id[topic.id] = topic
    return tuple(by_id.values())


def pattern_regex(pattern: str) -> str:
    """A pattern as a regular expression: phrases get word boundaries and inflections."""
    if pattern.startswith("re:"):
        return pattern[3:]
    parts = []
    for word in pattern.split():
        if word.endswith("*"):
            parts.append(_escape(word[:-1]) + r"[\w’'-]*")
        elif word[-1:].lower() == "y" and len(word) > 3:
            parts.append(_escape(word[:-1]) + r"(?:y[’']s|ies|ys|y)")  # longest first
        elif word[-1:].isalnum():
            parts.append(_escape(word) + r"(?:[’']s|es|s)?")
        else:
            parts.append(_escape(word))
    body = _SEPARATOR.join(parts)
    # Word boundaries only where the pattern starts or ends with a word character, so
    # "U.S." and "(CSAM)" can match at all.
    start = r"\b" if pattern[:1].isalnum() else ""
    end = r"\b" if pattern.rstrip("*")[-1:].isalnum() or pattern.endswith("*") else ""
    return start + body + end


def _escape(word: str) -> str:
    """Escaped for a regex, with either apostrophe matching either."""
    return re.sub("['’]", lambda _: "['’]", re.escape(word))


_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    regex = _CACHE.get(patterns)
    if regex is None:
        regex = re.compile("|".join(f"(?:{pattern_regex(p)})" for p in patterns), re.IGNORECASE)
        _CACHE[patterns] = regex
    return regex
