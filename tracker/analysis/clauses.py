"""Documents as clauses: segmentation, identity across versions, and cosmetic changes.

A reader asks "which clause was added?", not "which words". A version's text is
split along its own structure (headings give a section path; list items, table
rows and the sentences of long paragraphs are clauses), and the clauses of two
versions are matched: same text is the same clause (moved if its order or
section changed), similar text is the same clause reworded (modified), the rest
is added or removed. A change that only touches dates, relative times, counters,
whitespace or quote style is cosmetic, and so is one that only touches link targets or
the document's structure (numbering, heading level or case, list nesting, clauses split
or joined): each cosmetic change says which (`cosmetic_reason`).
"""

from __future__ import annotations

import bisect
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from tracker.analysis.diff import DEFAULT_TIMEOUT as DIFF_TIMEOUT
from tracker.analysis.diff import word_diff, words
from tracker.analysis.segments import (
    _EMPHASIS,
    _ENUMERATOR,
    _HEADING_NUMBER,
    Clause,
    _link_targets,
    clean_inline,
    cosmetic_key,
    drop_link_targets,
    heading_key,
)

SIMILAR = 0.5  # Dice overlap of word sets for a clause to count as reworded
MAX_FUZZY_PAIRS = 250_000  # all-pairs fallback only for clauses made of common words
COMMON_WORD_MIN = 50  # a word in more clauses than this (or 5%) does not make a candidate
COMMON_WORD_MAX = 500  # ... nor, however long the document, one in more than this
MAX_CANDIDATES = 200  # similar clauses compared with each clause at most (the nearest)
SMALL_MATCH = 4_000  # clauses on both sides: difflib aligns up to this many at once
MAX_WORK = 20_000_000  # work units of one comparison before the rest is coarse
DEFAULT_TIMEOUT = 5.0  # seconds of clause matching before the rest is coarse


@dataclass(frozen=True)
class ClauseChange:
    """What happened to one clause between two versions."""

    kind: str  # added, removed, modified, moved
    section: tuple[str, ...]
    before: Clause | None
    after: Clause | None
    ops: tuple[tuple[int, str], ...] = ()
    cosmetic: bool = False
    cosmetic_reason: str | None = None  # what changed, when only cosmetic things did

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
            "cosmetic_reason": self.cosmetic_reason,
            "inserted": [t for op, t in self.ops if op == 1],
            "deleted": [t for op, t in self.ops if op == -1],
        }


LINKS = "only link targets changed"
RESTRUCTURED = "restructured only (numbering, heading level or case, list nesting)"
NOISE = "dates, counters, whitespace or quote style"
_REASONS = (RESTRUCTURED, LINKS, NOISE)


@dataclass(frozen=True)
class Comparison:
    """Clause changes, and whether a bound cut the matching short (`coarse`): then the
    clauses not yet paired when it was reached are reported as added and removed, and
    word diffs past the time limit as whole clauses replaced."""

    changes: list[ClauseChange]
    coarse: bool = False


class _Budget:
    """The bounds of one comparison: a count of work units, and a deadline. The count
    is the bound meant to bind (a huge input then comes out the same on a fast machine
    and a loaded one, so a rebuilt index equals the live one); the deadline is the last
    resort, as in the word diff."""

    def __init__(self, timeout: float, work: int = MAX_WORK) -> None:
        self.deadline = time.perf_counter() + timeout if timeout > 0 else None
        self.work = work
        self.coarse = False

    def spend(self, units: int) -> bool:
        """Count `units` of work; False (and coarse from then on) once a bound is reached."""
        self.work -= units
        if self.work < 0 or self.left() <= 0:
            self.coarse = True
        return not self.coarse

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.perf_counter()


def compare(
    old: Sequence[Clause], new: Sequence[Clause], *, timeout: float = DEFAULT_TIMEOUT
) -> list[ClauseChange]:
    """Clause changes from `old` to `new`, in the order of the new document."""
    return compare_clauses(old, new, timeout=timeout).changes


def compare_clauses(
    old: Sequence[Clause], new: Sequence[Clause], *, timeout: float = DEFAULT_TIMEOUT
) -> Comparison:
    """`compare`, saying whether the result is coarse.

    Bounded like the word diff: matching is near-linear (equal clauses by hashing,
    similar ones among a bounded set of candidates each, the in-order set in
    O(n log n)), and past `MAX_WORK` units or `timeout` seconds (0: no time limit) the
    clauses not yet paired are added and removed, and the word diffs not yet made show
    each clause replaced whole.
    """
    old_keys, new_keys = _keys(old, new)
    # The keys are linear work that any answer needs; the bounds are for what follows.
    budget = _Budget(timeout)
    old_loose, new_loose = [k.casefold() for k in old_keys], [k.casefold() for k in new_keys]
    pairs = _match(old, new, old_keys, new_keys, old_loose, new_loose, budget)
    matched_old = {i for i, _ in pairs}
    matched_new = {j for _, j in pairs}
    in_order = _longest_increasing(sorted(pairs))
    regrouped_old, regrouped_new = _regrouped(old, new, in_order, old_loose, new_loose)
    # Headings matched to each other (renamed, recased) name the same section, and so do
    # a heading and the list item it was written as before ("9. ARBITRATION" became
    # "## ARBITRATION"): the clauses below it stay where they were.
    # A section can become several ("**1. Eligibility**" paragraphs became headings).
    renamed: dict[str, set[str]] = defaultdict(set)
    for i, j in pairs:
        a, b = old[i], new[j]
        if a.kind == "heading" and b.kind == "heading":
            renamed[_title(a.text)].add(_title(b.text))
        elif b.kind == "heading":
            renamed[_title(a.section_title)].add(_title(b.text))
        elif a.kind == "heading":
            renamed[_title(a.text)].add(_title(b.section_title))
    # A heading removed and one added in its place: the clauses below it did not move.
    gone = {
        _title(c.text) for i, c in enumerate(old) if c.kind == "heading" and i not in matched_old
    }
    came = {
        _title(c.text) for j, c in enumerate(new) if c.kind == "heading" and j not in matched_new
    }
    changes: list[tuple[float, ClauseChange]] = []
    for i, j in pairs:
        a, b = old[i], new[j]
        # Moved means out of order, or under another heading; a renamed or removed
        # parent heading higher up does not move every clause below it.
        before, after = _title(a.section_title), _title(b.section_title)
        # A heading promoted from a list item or demoted to one changed its own place.
        promoted = (a.kind == "heading") != (b.kind == "heading")
        same_section = (
            before == after
            or after in renamed.get(before, ())
            or (before in gone and after in came)
            or promoted
        )
        same_place = same_section and (i, j) in in_order
        if a.text == b.text and not promoted and same_place:
            continue  # a paragraph grown into sentences is still the same sentence
        same_words = old_keys[i] == new_keys[j] or (
            old_loose[i] == new_loose[j] and "heading" in (a.kind, b.kind)
        )
        if same_words and same_place:
            ops = _clause_ops(a, b, budget)
            reason = _reason(a, b)
            changes.append((j, ClauseChange("modified", b.section, a, b, ops, True, reason)))
            continue
        if same_words:
            changes.append((j, ClauseChange("moved", b.section, a, b)))
            continue
        ops = _clause_ops(a, b, budget)
        if i in regrouped_old and j in regrouped_new:
            changes.append((j, ClauseChange("modified", b.section, a, b, ops, True, RESTRUCTURED)))
        else:
            changes.append((j, ClauseChange("modified", b.section, a, b, ops)))
    for j, b in enumerate(new):
        if j not in matched_new:
            why = _unmatched_reason(b, j in regrouped_new)
            changes.append((j, ClauseChange("added", b.section, None, b, (), bool(why), why)))
    # A removed clause sits where its old neighbours went in the new version: after the
    # furthest new position of the clauses before it (a running maximum, not a scan each).
    furthest = [-1] * (len(old) + 1)
    for i, j in pairs:
        furthest[i + 1] = max(furthest[i + 1], j)
    for k in range(1, len(furthest)):
        furthest[k] = max(furthest[k], furthest[k - 1])
    for i, a in enumerate(old):
        if i not in matched_old:
            anchor = furthest[i] + 0.5
            why = _unmatched_reason(a, i in regrouped_old)
            changes.append(
                (anchor, ClauseChange("removed", a.section, a, None, (), bool(why), why))
            )
    changes.sort(key=lambda item: item[0])
    return Comparison([change for _, change in changes], budget.coarse)


def _keys(old: Sequence[Clause], new: Sequence[Clause]) -> tuple[list[str], list[str]]:
    """Both sides' keys, each distinct text's computed once: most clauses of the new
    side read as they did in the old one."""
    old_keys = [c.key for c in old]
    known = {(c.kind == "heading", c.text): key for c, key in zip(old, old_keys, strict=True)}
    for clause in new:
        key = known.get((clause.kind == "heading", clause.text))
        if key is not None and "_key" not in clause.__dict__:
            object.__setattr__(clause, "_key", key)
    return old_keys, [c.key for c in new]


def _clause_ops(a: Clause, b: Clause, budget: _Budget) -> tuple[tuple[int, str], ...]:
    """The word diff of a modified clause, within what is left of the time limit; once it
    is spent, the clause as replaced whole (coarse, and no slower than reading it)."""
    left = budget.left()
    if left <= 0:
        budget.coarse = True
        return ((-1, a.text), (1, b.text))
    diff = word_diff(a.text, b.text, timeout=min(left, DIFF_TIMEOUT))
    if diff.coarse:
        budget.coarse = True
    return diff.ops


def _unmatched_reason(clause: Clause, regrouped: bool) -> str | None:
    """Why an added or removed clause is cosmetic, or None: it reads as nothing (a
    dateline's date, a table-of-contents label), or its words are still there, split
    or joined differently."""
    if not cosmetic_key(clean_inline(clause.text)):
        return NOISE
    return RESTRUCTURED if regrouped else None


def _regrouped(
    old: Sequence[Clause],
    new: Sequence[Clause],
    in_order: set[tuple[int, int]],
    old_loose: Sequence[str],
    new_loose: Sequence[str],
) -> tuple[set[int], set[int]]:
    """Clauses split or joined without a word changed, old side and new side.

    Between two clauses that stayed in place, the old clauses and the new ones say the
    same words in the same order, but in a different number of clauses (a heading
    folded into its first item, a list item split in two). Linear: each clause lies
    between one pair of neighbours.
    """
    anchors = sorted((i, j) for i, j in in_order if old_loose[i] == new_loose[j])
    out_old: set[int] = set()
    out_new: set[int] = set()
    previous = (-1, -1)
    for i1, j1 in [*anchors, (len(old), len(new))]:
        i0, j0 = previous
        previous = (i1, j1)
        olds, news = range(i0 + 1, i1), range(j0 + 1, j1)
        if not olds or not news or len(olds) == len(news):
            continue
        old_words = [w for i in olds for w in _running_words(old[i])]
        if old_words and old_words == [w for j in news for w in _running_words(new[j])]:
            out_old.update(olds)
            out_new.update(news)
    return out_old, out_new


# Enumerators inside running text: "(a)", "(iv)", "(2)", "b)" (not "(13)", a number). An
# inline list that became a bulleted one loses them.
_INLINE_ENUMERATOR = re.compile(
    r"(?<![\w(])\((?:[a-z]|[ivx]{1,5}|[0-9])\)|(?<![\w.(])(?:[a-z]|[ivx]{1,5})\)"
)


def _running_words(clause: Clause) -> list[str]:
    """A clause's words, case and inline enumerators aside, to compare splits and joins."""
    return words(_INLINE_ENUMERATOR.sub(" ", clause.loose_key))


def _reason(a: Clause, b: Clause) -> str:
    """What differs between two clauses with the same words: the reasons, most telling first."""
    heading = "heading" in (a.kind, b.kind)
    promoted = (a.kind == "heading") != (b.kind == "heading")
    # A bold paragraph that became a heading lost its emphasis with its old role.
    a_text, b_text = (_EMPHASIS.sub("", t) if promoted else t for t in (a.text, b.text))
    a_number, a_rest = _numbering(a_text, heading)
    b_number, b_rest = _numbering(b_text, heading)
    found: list[str] = []
    recased = heading and a_rest != b_rest and a_rest.casefold() == b_rest.casefold()
    if promoted or a_number != b_number or recased:
        found.append(RESTRUCTURED)
    if _link_targets(a.text) != _link_targets(b.text):
        found.append(LINKS)
    if heading:
        a_rest, b_rest = a_rest.casefold(), b_rest.casefold()
    if a_rest != b_rest or not found:
        found.append(NOISE)
    return "; ".join(found)


def _numbering(text: str, heading: bool) -> tuple[str, str]:
    """A clause's leading numbers ("2.1", "Section 3") and the readable text after them."""
    readable = " ".join(drop_link_targets(text).split())
    match = _ENUMERATOR.match(readable)
    prefix = match.group(0) if match else ""
    rest = readable[len(prefix) :]
    if heading and (number := _HEADING_NUMBER.match(rest)):
        prefix += number.group(0)
        rest = rest[len(number.group(0)) :]
    return " ".join(prefix.split()), rest


def cosmetic_reason(changes: Sequence[ClauseChange]) -> str | None:
    """Why a set of clause changes is cosmetic ("only link targets changed"), or None when
    one of them is not cosmetic."""
    if not changes:
        return NOISE
    if not all(c.cosmetic for c in changes):
        return None
    found = {part for c in changes for part in (c.cosmetic_reason or NOISE).split("; ")}
    return "; ".join(r for r in _REASONS if r in found)


def _title(text: str) -> str:
    return heading_key(text)


def _match(
    old: Sequence[Clause],
    new: Sequence[Clause],
    old_keys: Sequence[str],
    new_keys: Sequence[str],
    old_loose: Sequence[str],
    new_loose: Sequence[str],
    budget: _Budget,
) -> list[tuple[int, int]]:
    """Pairs (i, j): equal words first (in order), then the most similar of the rest."""
    # Equal clauses in order first (a longest common subsequence), so a duplicated
    # clause inserted before its twin is one "added", not "moved" plus "added". Letter
    # case aside: a recased clause is the same clause (whether that is cosmetic is
    # decided by its key).
    pairs = _equal_in_order(old_loose, new_loose, budget)
    taken_old = {i for i, _ in pairs}
    taken_new = {j for _, j in pairs}
    # Then equal clauses out of order (moves), nearest first: linear, so done even
    # past a bound (a bisection finds the nearest, as a scan of each key's list would).
    by_key: dict[str, list[int]] = defaultdict(list)
    for j, key in enumerate(new_loose):
        if j not in taken_new:
            by_key[key].append(j)
    rest_old: list[int] = []
    for i, key in enumerate(old_loose):
        if i in taken_old:
            continue
        candidates = by_key.get(key)
        if candidates:
            at = bisect.bisect_left(candidates, i)
            if at == len(candidates) or (at and i - candidates[at - 1] <= candidates[at] - i):
                at -= 1
            j = candidates.pop(at)
            pairs.append((i, j))
            taken_new.add(j)
        else:
            rest_old.append(i)
    rest_new = [j for j in range(len(new)) if j not in taken_new]
    if rest_old and rest_new and not budget.coarse:
        pairs += _similar_pairs(old, new, old_keys, new_keys, rest_old, rest_new, budget)
    return pairs


def _similar_pairs(
    old: Sequence[Clause],
    new: Sequence[Clause],
    old_keys: Sequence[str],
    new_keys: Sequence[str],
    rest_old: list[int],
    rest_new: list[int],
    budget: _Budget,
) -> list[tuple[int, int]]:
    """Reworded clauses: pairs of unmatched clauses sharing at least `SIMILAR` of their
    words, the most similar first. Each old clause is compared with at most
    `MAX_CANDIDATES` new ones (the nearest of those sharing an uncommon word), and all
    of it counts against the budget; past it, the rest stay unpaired."""
    old_words = {i: set(words(old_keys[i].lower())) for i in rest_old}
    new_words = {j: set(words(new_keys[j].lower())) for j in rest_new}
    # Candidates share at least one word that is not everywhere: an inverted index
    # keeps this near-linear where comparing every pair would be quadratic.
    postings: dict[str, list[int]] = defaultdict(list)
    for j in rest_new:
        for word in new_words[j]:
            postings[word].append(j)
    common = min(max(COMMON_WORD_MIN, len(rest_new) // 20), COMMON_WORD_MAX)
    scored = []
    for i in rest_old:
        a = old_words[i]
        if not a:
            continue
        near: set[int] = set()
        touched = 0
        for word in a:
            hits = postings.get(word, [])
            if len(hits) <= common:
                near.update(hits)
                touched += len(hits)
                if touched > budget.work:
                    break  # one huge clause alone would pass the bound: coarse below
        if not near and len(rest_new) * len(rest_old) <= MAX_FUZZY_PAIRS:
            near = set(rest_new)  # only common words: compare with every clause
        candidates = sorted(near)
        if len(candidates) > MAX_CANDIDATES:
            candidates = sorted(sorted(near, key=lambda j: (abs(i - j), j))[:MAX_CANDIDATES])
        if not budget.spend(len(a) + touched + len(candidates)):
            break
        for j in candidates:
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
    pairs: list[tuple[int, int]] = []
    used_old: set[int] = set()
    used_new: set[int] = set()
    for _, _, i, j in scored:
        if i not in used_old and j not in used_new:
            pairs.append((i, j))
            used_old.add(i)
            used_new.add(j)
    return pairs


def _equal_in_order(a: Sequence[str], b: Sequence[str], budget: _Budget) -> list[tuple[int, int]]:
    """Pairs of equal keys in order: difflib's matching blocks for documents of usual
    size (as ever), and for larger ones a patience-style alignment, near-linear.

    difflib rescans the rest of both lists for each matching block, quadratic when a
    long document changes in many places. Here the keys shared by both sides (minus
    common ends) and unique on each are paired, their longest in-order run kept as
    anchors (O(n log n)), and each stretch between two anchors aligned the same way,
    by difflib once it is of usual size. A stretch without a unique key is left to the
    move step, which pairs equal clauses nearest first.
    """
    if len(a) + len(b) <= SMALL_MATCH:
        return _difflib_pairs(a, b, 0, len(a), 0, len(b))
    pairs: list[tuple[int, int]] = []
    stretches = [(0, len(a), 0, len(b))]
    while stretches:
        alo, ahi, blo, bhi = stretches.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            pairs.append((alo, blo))
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            pairs.append((ahi, bhi))
        if alo == ahi or blo == bhi:
            continue
        if not budget.spend(ahi - alo + bhi - blo):
            break
        if ahi - alo + bhi - blo <= SMALL_MATCH:
            pairs += _difflib_pairs(a, b, alo, ahi, blo, bhi)
            continue
        anchors = _unique_anchors(a, b, alo, ahi, blo, bhi)
        if not anchors:
            continue  # nothing unique on both sides: for the move step
        previous_i, previous_j = alo - 1, blo - 1
        for i, j in [*anchors, (ahi, bhi)]:
            if i < ahi:
                pairs.append((i, j))
            if i - previous_i > 1 and j - previous_j > 1:
                stretches.append((previous_i + 1, i, previous_j + 1, j))
            previous_i, previous_j = i, j
    return pairs


def _difflib_pairs(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Pairs from difflib's matching blocks of a[alo:ahi] and b[blo:bhi]."""
    matcher = SequenceMatcher(None, a[alo:ahi], b[blo:bhi])
    return [
        (alo + block.a + k, blo + block.b + k)
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    ]


def _unique_anchors(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """The longest in-order run of keys that occur once in a[alo:ahi] and once in
    b[blo:bhi], as (i, j) pairs sorted by i."""
    seen: dict[str, int] = {}
    for i in range(alo, ahi):
        seen[a[i]] = -1 if a[i] in seen else i
    in_b: dict[str, int] = {}
    for j in range(blo, bhi):
        key = b[j]
        if seen.get(key, -1) >= 0:
            in_b[key] = -1 if key in in_b else j
    candidates = [(seen[key], j) for key, j in in_b.items() if j >= 0]
    return sorted(_longest_increasing(sorted(candidates)))


def _longest_increasing(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The largest set of pairs whose new positions keep the old order (patience sort,
    O(n log n))."""
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
    """'3 clauses added, 1 removed in 'Disallowed usage'' (cosmetic ones noted apart), or
    what a cosmetic change changed ("cosmetic: only link targets changed")."""
    real = [c for c in changes if not c.cosmetic]
    if not real:
        if not changes:
            return "no clause changed"
        reason = cosmetic_reason(changes)
        return f"cosmetic only ({reason})" if reason == NOISE else f"cosmetic: {reason}"
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
