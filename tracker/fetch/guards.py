"""Checks that stop a bad fetch from becoming a version.

A tracker that records an error page, a PDF or half a page as "the terms changed"
is worse than none. Each check returns a `FetchError` whose kind names the failure;
the pipeline records it, and the last good version stays current.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tracker.core import failures
from tracker.core.errors import FetchError
from tracker.core.models import FetchResult, Source

# What a policy page may be served as; anything else is not a page of terms.
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
SNIFF_BYTES = 2048


@dataclass(frozen=True)
class GuardSettings:
    """Thresholds for plausibility, from `[fetch]` and per-document overrides."""

    min_chars: int = 100  # a text shorter than this is no policy
    max_shrink: float = 0.5  # fail when the text loses more than this share at once
    confirm_shrink: int = 3  # ...unless the same shrunken text comes back this many times


def check_response(source: Source, fetched: FetchResult) -> FetchError | None:
    """Before extraction: is this a page of text, from the site we asked?"""
    if fetched.not_modified:
        return None
    if not fetched.body.strip():
        return FetchError(failures.EMPTY, "the server sent an empty body", fetched.status)
    declared = (fetched.content_type or "").split(";")[0].strip().lower()
    if declared and declared not in TEXT_TYPES:
        return FetchError(
            failures.CONTENT_TYPE, f"the server sent {declared!r}, not a web page", fetched.status
        )
    if looks_binary(fetched.body):
        label = declared or "no content type"
        return FetchError(
            failures.CONTENT_TYPE,
            f"the body is binary data ({label}), not a web page",
            fetched.status,
        )
    asked, landed = site_of(fetched.url), site_of(fetched.final_url)
    if asked and landed and asked != landed and landed not in source.allow_hosts:
        return FetchError(
            failures.OFFSITE_REDIRECT,
            f"redirected to another site: {fetched.final_url}"
            f" (add {landed!r} to the document's allow_hosts if that is expected)",
            fetched.status,
        )
    return None


def check_text(
    text: str,
    previous: str | None,
    settings: GuardSettings,
    *,
    repeats: int = 0,
) -> FetchError | None:
    """After extraction: is this text plausible as the document, next to its last version?

    `repeats` counts the earlier consecutive fetches that shrank to this same text: a
    provider that really cut its terms in half is believed once it keeps saying so.
    """
    size = len(text.strip())
    if size < settings.min_chars:
        return FetchError(
            failures.TOO_SHORT,
            f"only {size} characters of text (fewer than min_chars {settings.min_chars})",
        )
    if previous is None:
        return None
    before = len(previous.strip())
    if before and size < before * (1 - settings.max_shrink):
        if repeats + 1 >= settings.confirm_shrink:
            return None
        lost = 1 - size / before
        return FetchError(
            failures.SHRANK,
            f"the text shrank by {lost:.0%} ({before} → {size} characters), more than"
            f" max_shrink {settings.max_shrink:.0%}; accepted if the next"
            f" {settings.confirm_shrink - repeats - 1} fetch(es) say the same",
        )
    return None


def looks_binary(body: bytes) -> bool:
    """NUL bytes or mostly control bytes at the start: an image, PDF, archive…"""
    head = body[:SNIFF_BYTES]
    if not head:
        return False
    if b"\x00" in head and not (head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        return True
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control > len(head) * 0.1


def site_of(url: str) -> str:
    """The host, without a leading 'www.': www.openai.com and openai.com are one site."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")
