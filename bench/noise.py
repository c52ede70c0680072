#!/usr/bin/env python3
"""What cosmetic churn costs on real history: the EU usage-policies set, imported whole.

python bench/noise.py [--json FILE]    # needs ../shared/corpus beside the repository

Imports every dated file of `openai-usage-policies-combined-eu` (54 captures from
2025-11 to 2026-08, most only "Updated: N days ago" apart) into a fresh store with
the real `import` path, then counts what the index holds: versions kept, changes,
cosmetic changes, changes that would alert a reader (not cosmetic), flagged changes,
and lists every alerting change so a reader can check it is a real edit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.app.importer import folder_items, import_items  # noqa: E402
from tracker.app.pipeline import Tracker  # noqa: E402
from tracker.config.settings import load_config  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
EU = "openai-usage-policies-combined-eu"
DOCUMENT = "openai/usage-policies-combined-eu"
CONFIG = f"""
[[documents]]
id = "{DOCUMENT}"
service = "OpenAI"
title = "Usage policies (combined, EU)"
url = "https://openai.com/policies/usage-policies/"
"""


def measure(folder: Path) -> dict[str, Any]:
    """Import `folder` into a fresh store and count versions, changes and flags."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "tracker.toml"
        config_path.write_text(CONFIG, encoding="utf-8")
        items, _ = folder_items(folder)
        with Tracker.open(load_config(config_path)) as tracker:
            import_items(tracker, DOCUMENT, items)
            versions = tracker.store.versions(DOCUMENT)
            changes = sorted(tracker.index.changes(DOCUMENT), key=lambda c: c["to_captured_at"])
    alerting = [c for c in changes if not c["cosmetic"]]
    return {
        "corpus": EU,
        "versions_in": len(items),
        "versions_kept": len(versions),
        "changes_out": len(changes),
        "cosmetic_changes": sum(1 for c in changes if c["cosmetic"]),
        "alerting_changes": len(alerting),
        "flagged_changes": sum(1 for c in changes if c["flagged_topics"]),
        "flagged_cosmetic_changes": sum(
            1 for c in changes if c["cosmetic"] and c["flagged_topics"]
        ),
        "alerting": [
            {
                "to": c["to_captured_at"],
                "summary": c["summary"],
                "flagged_topics": c["flagged_topics"],
            }
            for c in alerting
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="Also write the numbers as JSON here.")
    args = parser.parse_args()
    if not (CORPUS / EU).is_dir():
        print(f"no corpus at {CORPUS / EU}", file=sys.stderr)
        return 1
    result = measure(CORPUS / EU)
    rows = [
        ("versions in (files imported)", result["versions_in"]),
        ("versions kept", result["versions_kept"]),
        ("changes out", result["changes_out"]),
        ("  cosmetic (no alert)", result["cosmetic_changes"]),
        ("  alerting (not cosmetic)", result["alerting_changes"]),
        ("flagged changes out", result["flagged_changes"]),
        ("flagged changes that are cosmetic", result["flagged_cosmetic_changes"]),
    ]
    print(f"{EU}\n")
    for label, value in rows:
        print(f"{label:<36} {value:>4}")
    print("\nalerting changes:")
    for change in result["alerting"]:
        topics = ", ".join(change["flagged_topics"]) or "no flag"
        print(f"  {change['to']}  [{topics}]  {change['summary']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
