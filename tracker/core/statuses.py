"""What one run did for one document, declared once: the outcome statuses the pipeline
records, the index counts, `run --json` prints and the CLI colours."""

from __future__ import annotations

NEW = "new"  # the first version of a document
CHANGED = "changed"  # a new version, and the change from the one before
UNCHANGED = "unchanged"  # fetched (or 304 Not Modified), same text
FAILED = "failed"  # not fetched or not extracted; the error is recorded

OUTCOMES = (NEW, CHANGED, UNCHANGED, FAILED)  # in the order counts are shown

# What judging one fetched page decides, besides the outcomes above (`app.pipeline.judge`,
# `app.importer`): a flip is stored as a capture without a version (`analysis.noise`), and
# an imported item already in the store is present.
FLIP = "flip"
PRESENT = "present"

# What one digest did (`publish.digest.Outcome.status`); it failed as FAILED.
SENT = "sent"  # mailed, and recorded in its ledger
NOTHING = "nothing"  # no change to send
DRY_RUN = "dry-run"  # built and printed, not sent (also the mode of that name)
OUTBOX = "outbox"  # written to the outbox folder, not sent (also the mode of that name)
