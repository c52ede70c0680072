"""The search index of the static site: every distinct clause of every version, once.

Readers search "all versions" without a server, so the index ships as a script the
search page loads. Storing each clause once with the span of versions that held it
keeps the index near the size of one version per document, not twenty.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from tracker.analysis.segments import clean_inline, segment

MAX_CLAUSE_CHARS = 2000

# (first version, last version, section, text); version numbers count from 0.
Span = tuple[int, int, str, str]


def clause_spans(texts: Iterable[str]) -> list[Span]:
    """Each clause with the run of consecutive versions it appeared in.

    A clause that goes away and comes back gets two spans, so a reader sees both
    the removal and the return.
    """
    open_spans: dict[tuple[str, str], int] = {}
    spans: list[Span] = []
    count = 0
    for number, text in enumerate(texts):
        count = number + 1
        present: dict[tuple[str, str], None] = {}
        for clause in segment(text):
            body = clean_inline(clause.text).strip()
            if body:
                section = clause.section[-1] if clause.section else ""
                present[(section, body[:MAX_CLAUSE_CHARS])] = None
        for key in [k for k in open_spans if k not in present]:
            spans.append((open_spans.pop(key), number - 1, *key))
        for key in present:
            open_spans.setdefault(key, number)
    spans.extend((first, count - 1, *key) for key, first in open_spans.items())
    spans.sort(key=lambda s: (s[0], s[1]))
    return spans


def index_script(documents: Sequence[dict[str, Any]], spans: Sequence[Sequence[Span]]) -> str:
    """`window.TOS_SEARCH = {...}`: a script, so the page also works opened from disk."""
    clauses = [
        [number, first, last, section, text]
        for number, document_spans in enumerate(spans)
        for first, last, section, text in document_spans
    ]
    data = json.dumps(
        {"documents": list(documents), "clauses": clauses},
        ensure_ascii=True,  # escapes U+2028/2029 too, which would end a JS string
        separators=(",", ":"),
    )
    return "window.TOS_SEARCH = " + data.replace("</", "<\\/") + ";\n"
