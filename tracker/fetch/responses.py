"""Reading one HTTP response for `http.Fetcher`: the redirect it names (followed by the
fetcher itself, judged before it is requested), its body within a cap and a deadline, and
how long its Retry-After asks to wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.utils import requote_uri

from tracker.core import failures
from tracker.core.errors import FetchError, printable
from tracker.core.models import Source
from tracker.fetch import transport, walls
from tracker.fetch.guards import site_of

SCHEMES = ("http", "https")

Clock = Callable[[], datetime]


class NoFollowSession(requests.Session):
    """A session that never follows a redirect, nor reads its body to look for one.

    Even with `allow_redirects=False` requests prepares the next hop, and first reads
    the redirect's whole body (`resp.content`): a gzip bomb or an endless body behind a
    302. Fetcher follows redirects itself, so here there is never a next hop.
    """

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None

    @staticmethod
    def location(response: requests.Response) -> str | None:
        """The redirect's target, decoded as requests decodes it."""
        return requests.Session.get_redirect_target(requests.Session, response)  # type: ignore[arg-type]


def redirect_url(base: str, target: str) -> str:
    """Where a redirect leads, resolved as requests resolves it."""
    if target.startswith("//"):
        target = f"{urlsplit(base).scheme}:{target}"
    if not urlsplit(target).netloc:
        return urljoin(base, requote_uri(target))
    return str(requote_uri(target))


def judge_redirect(url: str, following: str, source: Source | None, status: int) -> None:
    """Refuse a redirect before it is requested: another scheme, or (for a document)
    another site not in `allow_hosts`; a sign-in host is a login wall, as it would be."""
    scheme = urlsplit(following).scheme.lower()
    if scheme not in SCHEMES:
        raise FetchError(
            failures.BLOCKED_DESTINATION,
            f"refused a redirect to a {scheme or 'schemeless'} address: {printable(following)}",
            status=status,
        )
    if source is None:
        return
    asked, landed = site_of(url), site_of(following)
    if asked and landed and asked != landed and landed not in source.allow_hosts:
        login = walls.login_redirect(url, following)
        if login:
            raise FetchError(
                failures.LOGIN_WALL, f"{login} ({printable(following)})", status=status
            )
        raise FetchError(
            failures.OFFSITE_REDIRECT,
            f"redirected to another site: {printable(following)} (not requested; add"
            f" {printable(landed)!r} to the document's allow_hosts if that is expected)",
            status=status,
        )


def read_capped(response: requests.Response, cap: int, guard: transport.Attempt) -> bytes:
    """At most `cap` decoded bytes of the body (the rest unread), within the deadline."""
    chunks, size = [], 0
    for chunk in body_chunks(response):
        chunks.append(chunk)
        size += len(chunk)
        if size >= cap or guard.fired:
            break
    return b"".join(chunks)[:cap]


def body_chunks(response: requests.Response) -> Iterator[bytes]:
    """Body bytes as they arrive (decompressed), so a deadline is checked between reads."""
    raw = response.raw
    if not hasattr(raw, "read1"):  # pragma: no cover - urllib3 < 2
        yield from response.iter_content(16 * 1024)
        return
    try:
        while chunk := raw.read1(64 * 1024, decode_content=True):
            yield chunk
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError) as exc:
        raise requests.exceptions.ConnectionError(exc) from None


class BrokenBody(Exception):
    """The body could not be read in full: retried like a connection error."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(str(error))
        self.error = error


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock()).total_seconds())
