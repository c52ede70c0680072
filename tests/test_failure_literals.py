"""Failure kinds are declared once (`tracker.core.failures`): no module makes a
`FetchError` or a browser `Refused` with a kind written out as a string, so a new kind
cannot appear in journals and JSON without being declared (and documented)."""

from __future__ import annotations

import ast
from pathlib import Path

TRACKER = Path(__file__).resolve().parents[1] / "tracker"


def test_failures_are_made_with_declared_kinds() -> None:
    written_out = []
    for path in sorted(TRACKER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            first = node.args[0]
            if name in ("FetchError", "Refused") and isinstance(first, ast.Constant):
                written_out.append(f"{path.relative_to(TRACKER.parent)}:{node.lineno}")
    assert written_out == [], "kinds written as strings, not from core.failures"
