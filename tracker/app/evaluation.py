"""Evaluate clause flags against labelled cases from the real corpus.

A case names two dated files of one document in the corpus and the flags a
careful reader expects (topic, kind, and a piece of the clause's text). In a
"complete" case every other flag counts as a false positive; in an incomplete
one (a large rewrite labelled only in part) extra flags are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.analysis.clauses import compare
from tracker.analysis.segments import clean_inline, segment
from tracker.analysis.topics import Flag, Topic, flags_for
from tracker.extract.engine import extract_text


@dataclass(frozen=True)
class Case:
    name: str
    folder: str
    before: str
    after: str
    expected: tuple[tuple[str, str, str], ...]
    complete: bool = True
    cosmetic: bool | None = None
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass
class Result:
    case: Case
    flags: list[Flag]
    cosmetic: bool
    found: list[tuple[str, str, str]] = field(default_factory=list)
    missed: list[tuple[str, str, str]] = field(default_factory=list)
    extra: list[Flag] = field(default_factory=list)


def load_cases(path: Path) -> list[Case]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        Case(
            name=c["name"],
            folder=c["folder"],
            before=c["before"],
            after=c["after"],
            expected=tuple((e[0], e[1], e[2]) for e in c.get("expected", [])),
            complete=c.get("complete", True),
            cosmetic=c.get("cosmetic"),
            select=tuple(c.get("select", [])),
            remove=tuple(c.get("remove", [])),
        )
        for c in raw
    ]


def version_text(path: Path, case: Case) -> str:
    if path.suffix == ".html":
        return extract_text(path.read_bytes(), select=case.select, remove=case.remove)
    return path.read_text(encoding="utf-8")


def run_case(corpus: Path, case: Case, topics: Sequence[Topic]) -> Result:
    folder = corpus / case.folder
    old = version_text(folder / case.before, case)
    new = version_text(folder / case.after, case)
    changes = compare(segment(old), segment(new))
    flags = flags_for(changes, topics)
    result = Result(case, flags, all(c.cosmetic for c in changes))
    unused = list(flags)
    for topic, kind, piece in case.expected:
        hit = next(
            (
                f
                for f in unused
                if f.topic == topic and f.kind == kind and piece in clean_inline(f.text)
            ),
            None,
        )
        if hit is None:
            result.missed.append((topic, kind, piece))
        else:
            result.found.append((topic, kind, piece))
            unused.remove(hit)
    if case.complete:
        result.extra = unused
    return result


def score(results: Sequence[Result]) -> dict[str, Any]:
    """Precision over complete cases, recall over every expected flag."""
    tp_all = sum(len(r.found) for r in results)
    expected = tp_all + sum(len(r.missed) for r in results)
    complete = [r for r in results if r.case.complete]
    tp = sum(len(r.found) for r in complete)
    fp = sum(len(r.extra) for r in complete)
    cosmetic_cases = [r for r in results if r.case.cosmetic is not None]
    return {
        "cases": len(results),
        "expected_flags": expected,
        "true_positives": tp_all,
        "false_positives": fp,
        "false_negatives": expected - tp_all,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp_all / expected if expected else 1.0,
        "cosmetic_cases": len(cosmetic_cases),
        "cosmetic_correct": sum(r.cosmetic == r.case.cosmetic for r in cosmetic_cases),
    }


# --- topic labels on single clauses --------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """One hand-judged (clause, topic) pair: is the clause about the topic?"""

    document: str
    split: str
    topic: str
    about: bool
    text: str
    note: str = ""


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    errors: list[tuple[Label, tuple[str, ...]]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def labels(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def load_labels(path: Path) -> list[Label]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        Label(x["document"], x["split"], x["topic"], bool(x["about"]), x["text"], x.get("note", ""))
        for x in raw["labels"]
    ]


def score_labels(labels: Sequence[Label], topics: Sequence[Topic]) -> dict[str, dict[str, Counts]]:
    """Counts per split ("tuning", "held-out", "all") and per topic id (and "all").

    A pair is predicted "about" when the topic finds words in the clause the way a
    flag on an added or removed clause would (`Topic.find`).
    """
    by_id = {t.id: t for t in topics}
    table: dict[str, dict[str, Counts]] = {}
    for label in labels:
        topic = by_id.get(label.topic)
        if topic is None:
            continue
        found = tuple(topic.find(label.text))
        for split in (label.split, "all"):
            for key in (label.topic, "all"):
                counts = table.setdefault(split, {}).setdefault(key, Counts())
                if found and label.about:
                    counts.tp += 1
                elif found:
                    counts.fp += 1
                    counts.errors.append((label, found))
                elif label.about:
                    counts.fn += 1
                    counts.errors.append((label, found))
                else:
                    counts.tn += 1
    return table
