"""robots.txt, read once per site per run and honoured unless a document opts out.

Follows RFC 9309: a missing robots.txt (4xx) allows everything; an unavailable one
(5xx) means "disallow everything" for now, reported as such. A host that cannot be
reached at all (no DNS answer, connection refused, timeout) is not a robots.txt
answer: it is reported as the document's `dns`, `connection` or `timeout` failure, the
words a fetch of the page itself would have given, so "no network" reads as that.
"""

from __future__ import annotations

import threading
import urllib.robotparser
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import requests

from tracker.core import failures
from tracker.core.errors import FetchError, connection_kind, short_error

AGENT = "tos-tracker"
MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB


class RobotsRules:
    """robots.txt answers, cached per scheme and host for the life of one Fetcher."""

    def __init__(self, get: Callable[[str], tuple[int, bytes]]) -> None:
        """`get` answers a robots.txt URL with its status and (capped) body; the fetcher
        reads it under the same redirect rules, deadline and size cap as a page."""
        self._get = get
        self._cache: dict[str, urllib.robotparser.RobotFileParser | FetchError] = {}
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}

    def check(self, url: str) -> FetchError | None:
        """None when `url` may be fetched; else a FetchError of kind "robots"."""
        parts = urlsplit(url)
        site = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        with self._lock:
            host_lock = self._host_locks.setdefault(site, threading.Lock())
        with host_lock:  # one robots.txt request per site, however many documents
            if site not in self._cache:
                self._cache[site] = self._load(site)
        rules = self._cache[site]
        if isinstance(rules, FetchError):
            return rules
        if rules.can_fetch(AGENT, url):
            return None
        return FetchError(
            failures.ROBOTS, f"{site}/robots.txt disallows {parts.path or '/'} for {AGENT}"
        )

    def _load(self, site: str) -> urllib.robotparser.RobotFileParser | FetchError:
        parser = urllib.robotparser.RobotFileParser(site + "/robots.txt")
        try:
            status, body = self._get(site + "/robots.txt")
        except FetchError as exc:  # a redirect refused, or too many of them
            return exc
        except requests.exceptions.Timeout as exc:
            return FetchError(failures.TIMEOUT, f"{site}/robots.txt timed out: {short_error(exc)}")
        except requests.exceptions.ConnectionError as exc:
            return FetchError(
                connection_kind(exc),
                f"could not connect to {site} for robots.txt: {short_error(exc)}",
            )
        except requests.exceptions.RequestException as exc:
            return FetchError(
                failures.ROBOTS,
                f"{site}/robots.txt could not be read ({type(exc).__name__});"
                " treated as disallowing everything (RFC 9309)",
            )
        if 400 <= status < 500:
            parser.parse([])  # no robots.txt: everything is allowed
            return parser
        if status >= 500:
            return FetchError(
                failures.ROBOTS,
                f"{site}/robots.txt answered HTTP {status}; treated as disallowing"
                " everything until it can be read (RFC 9309)",
                status=status,
            )
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        return parser
