"""Pages that flip between variants: a text seen a few versions ago is not news.

Some pages serve two variants at random (an A/B test, two caches behind a load
balancer, a banner that comes and goes). Recording each swap as a change would
alert on every run. A new text that equals one of the last `window` versions,
but not the latest, is a flip: its raw capture is stored (it is evidence), no
version is made, and the capture's metadata names the version it equals.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracker.core.models import Version
from tracker.core.times import iso


def flip_of(
    recent: Sequence[Version], sha256: str, extraction: str | None, window: int
) -> Version | None:
    """The earlier version a new text equals, when that makes it a flip; else None.

    `recent` holds the document's versions, oldest first (only the last `window`
    are looked at). Never a flip: the first text, a text equal to the latest (that
    is simply unchanged), a window below 2, or texts made with other extraction
    settings than the new one (a settings change must show what it did).
    """
    if window < 2 or not recent:
        return None
    last = list(recent)[-window:]
    latest = last[-1]
    if latest.sha256 == sha256 or latest.extraction != extraction:
        return None
    for version in reversed(last[:-1]):
        if version.sha256 == sha256 and version.extraction == extraction:
            return version
    return None


def flip_note(version: Version) -> str:
    return f"same as the version of {iso(version.captured_at)}: the page flips between variants"
