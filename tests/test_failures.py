"""Failure kinds are declared once (`tracker.core.failures`) and documented once."""

from __future__ import annotations

import re
from pathlib import Path

from tracker.core import failures

DOCS = Path(__file__).resolve().parent.parent / "docs" / "fetching.md"


def documented_kinds() -> list[str]:
    """The kinds the failure table of docs/fetching.md lists (its first table)."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("| kind | what happened |", 1)[1].split("\n\n", 1)[0]
    kinds = []
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        kinds += re.findall(r"`([a-z_]+)`", first_cell)
    return kinds


def test_every_documented_kind_is_declared_and_every_recorded_kind_documented() -> None:
    documented = documented_kinds()
    assert len(documented) == len(set(documented))
    assert set(documented) == set(failures.RECORDED)


def test_kinds_are_declared_once_with_their_recorded_values() -> None:
    # The values are in run journals, the index and JSON output: they never change.
    assert len(failures.KINDS) == len(set(failures.KINDS))
    assert failures.CANCELLED not in failures.RECORDED
    for name in ("TIMEOUT", "BOT_WALL", "OFFSITE_REDIRECT", "BLOCKED_DESTINATION", "TOO_LARGE"):
        assert getattr(failures, name) == name.lower()
    declared = {v for k, v in vars(failures).items() if k.isupper() and isinstance(v, str)}
    assert declared == set(failures.KINDS)
