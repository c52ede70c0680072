"""The `tos-tracker` command: parses options, calls the library, reports.

Exit codes, for cron: 0 all documents fetched (changed or not), 1 at least one
document failed (the others are still recorded) or a file could not be written or
read (a full disk: one line, no traceback), 2 usage or configuration error, 3
another run holds the store's lock.
"""

from __future__ import annotations

# Each module registers its commands on the group as it is imported; none imports the
# library at the top, so `--help` and `--version` stay fast.
from tracker.cli import checks, publish, setup, store, versions  # noqa: F401
from tracker.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="tos-tracker")
