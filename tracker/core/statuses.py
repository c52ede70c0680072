"""What one run did for one document, declared once: the outcome statuses the pipeline
records, the index counts, `run --json` prints and the CLI colours."""

from __future__ import annotations

NEW = "new"  # the first version of a document
CHANGED = "changed"  # a new version, and the change from the one before
UNCHANGED = "unchanged"  # fetched (or 304 Not Modified), same text
FAILED = "failed"  # not fetched or not extracted; the error is recorded

OUTCOMES = (NEW, CHANGED, UNCHANGED, FAILED)  # in the order counts are shown
