"""HTTP fetching: one session, explicit timeouts, polite retries, conditional requests.

Retries cover connection errors, 429 and 5xx, waiting what the server's
`Retry-After` asks (up to a cap) or an exponential backoff. Documents are fetched
concurrently, but never more than `per_host` at once from one host.

Every response is checked for a bot wall or login wall (`walls.py`), so a challenge
page is never recorded as the document. Documents with `browser = true` are
rendered in headless Chromium (`browser.py`), and a plain fetch that meets a bot
wall (or a 403/406) falls back to the browser when the document allows it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import requests

from tracker import __version__
from tracker.config.settings import PROJECT_URL, FetchSettings
from tracker.core import failures
from tracker.core.errors import FetchError, connection_kind, printable, short_error
from tracker.core.models import FetchResult, Source, Validators
from tracker.fetch import transport, walls
from tracker.fetch.browser import BrowserFetcher
from tracker.fetch.responses import (
    BrokenBody,
    Clock,
    NoFollowSession,
    body_chunks,
    judge_redirect,
    parse_retry_after,
    read_capped,
    redirect_url,
)
from tracker.fetch.robots import MAX_ROBOTS_BYTES, RobotsRules

log = logging.getLogger("tracker.fetch")  # the name log lines have always shown

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CAPTURE_STATUSES = frozenset({200, 203})
# A plain fetch failing with one of these (or as a bot wall) is retried in the browser.
FALLBACK_STATUSES = frozenset({403, 406})
# Error pages are read this far, to tell a bot wall from a plain error.
ERROR_BODY_BYTES = 512 * 1024
USER_AGENT = f"tos-tracker/{__version__} (+{PROJECT_URL})"
MAX_REDIRECTS = 30  # as requests and browsers: more is a loop
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)

T = TypeVar("T")


def environment_matters() -> bool:
    """Whether requests could take any setting from the environment on this machine."""
    if sys.platform in ("darwin", "win32"):
        return True  # proxies come from the system's settings there, not only variables
    names = {name.lower() for name in os.environ}
    if any(name.endswith("_proxy") for name in names):
        return True
    if "netrc" in names:
        return True
    home = Path(os.path.expanduser("~"))  # "~" itself when there is no home: no netrc
    return (home / ".netrc").exists() or (home / "_netrc").exists()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Fetcher:
    """Fetches sources with one shared `requests.Session`."""

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = utcnow,
        browser: BrowserFetcher | None = None,
        resolve: transport.Resolver | None = None,
    ) -> None:
        self.settings = settings or FetchSettings()
        # Name resolution for the destination checks (tests map names to addresses).
        self.resolve = resolve or transport.resolve
        self.session = session or self._new_session()
        self.sleep = sleep
        self.clock = clock
        self.browser = browser or BrowserFetcher(self.settings, clock=clock)
        self._host_limits: dict[str, threading.Semaphore] = {}
        self._host_last: dict[str, float] = {}  # monotonic time each host was last asked
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self.robots = RobotsRules(self._get_robots)

    def _get_robots(self, url: str) -> tuple[int, bytes]:
        """robots.txt's status and body, under the same rules as a page: each redirect
        judged before it is followed, `timeout` for the whole answer, the body capped.

        A timeout is raised as requests' `Timeout`, so robots.py words it as one.
        """
        self._space(url)
        with transport.attempt(url, self.settings.timeout, self.resolve) as guard:
            try:
                response, _ = self._open(url, {}, guard, None)
                with response:
                    status = response.status_code
                    body = b""
                    if status < 400:
                        body = read_capped(response, MAX_ROBOTS_BYTES, guard)
            except requests.exceptions.RequestException:
                if guard.fired:
                    raise requests.exceptions.Timeout(str(guard.timeout_error())) from None
                raise
            if guard.fired:
                raise requests.exceptions.Timeout(str(guard.timeout_error()))
            return status, body

    def _open(
        self,
        url: str,
        headers: dict[str, str],
        guard: transport.Attempt,
        source: Source | None,
    ) -> tuple[requests.Response, list[str]]:
        """GET `url`, following redirects one at a time: each judged before it is asked.

        A redirect's body is never read (the response is closed), so a gzip bomb or an
        endless body behind a 302 costs nothing. For a document (`source`), a redirect
        to another site is refused unless `allow_hosts` lists it; every hop's address is
        judged by `transport` as it connects. Returns the last response and the
        addresses passed through before it.
        """
        hops: list[str] = []
        current = url
        while True:
            response = self.session.get(
                current,
                headers=headers,
                timeout=min(self.settings.timeout, guard.remaining()),
                stream=True,
                allow_redirects=False,
            )
            if guard.fired:  # the headers were cut short at the deadline
                response.close()
                raise guard.timeout_error("the headers were not complete")
            target = NoFollowSession.location(response) if response.is_redirect else None
            if target is None:
                return response, hops
            response.close()  # the redirect's body is never read
            following = redirect_url(response.url or current, target)
            hops.append(current)
            if len(hops) > MAX_REDIRECTS:
                raise FetchError(
                    failures.REDIRECTS,
                    f"more than {MAX_REDIRECTS} redirects (the last to {following})",
                )
            judge_redirect(url, following, source, response.status_code)
            current = following

    def _space(self, url: str) -> None:
        """Wait until `host_delay` has passed since the last request to the same host."""
        host = (urlsplit(url).hostname or "").lower()
        delay = self.settings.host_delay
        with self._lock:
            now = time.monotonic()
            ready = max(now, self._host_last.get(host, -delay) + delay)
            self._host_last[host] = ready  # claim the slot, so two threads never share it
        if ready > now:
            self.sleep(ready - now)

    def _new_session(self) -> requests.Session:
        session = NoFollowSession()
        session.headers["User-Agent"] = self.settings.user_agent or USER_AGENT
        session.headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
        adapter = transport.GuardedAdapter(
            pool_connections=max(4, self.settings.workers),
            pool_maxsize=max(4, self.settings.workers),
            max_retries=0,  # retries are ours, so Retry-After and logging are consistent
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # requests re-reads the environment (proxies, NO_PROXY, CA bundle, netrc) for
        # every request, walking all of os.environ twice: ~0.5 ms a request, more than a
        # local 304 takes. The CA bundle is read here once, as requests would; proxies
        # and netrc keep requests' own per-request handling when they are set.
        session.trust_env = environment_matters()
        if not session.trust_env:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                session.verify = bundle
        return session

    def close(self) -> None:
        self.session.close()
        self.browser.close()

    def fetch_all(
        self,
        sources: Iterable[Source],
        validators: Callable[[Source], Validators | None],
    ) -> Iterator[tuple[Source, FetchResult | FetchError]]:
        """Fetch concurrently; yield each source with its result as soon as it is done."""
        return self.map(sources, lambda source: self.fetch_one(source, validators(source)))

    def map(
        self,
        sources: Iterable[Source],
        work: Callable[[Source], T],
        *,
        idle: Callable[[], None] | None = None,
    ) -> Iterator[tuple[Source, T]]:
        """Run `work` for each source on the fetch threads; yield each as it finishes.

        `work` normally fetches (`fetch_one`) and then processes the page, so parsing,
        compressing and writing one page overlap the network waits of the others.
        Only a window of `workers` × 2 sources is in flight at once, so a run over
        thousands of documents holds a few pages in memory, never all of them.
        `cancel()` makes the fetches not yet begun end at once as "cancelled".
        `idle` is called each time no result is ready, before waiting for one.
        """
        self._cancelled.clear()
        pending = iter(sources)
        window = max(1, self.settings.workers) * 2
        pool = ThreadPoolExecutor(max_workers=self.settings.workers)
        running: dict[Future[T], Source] = {}

        def submit(count: int) -> None:
            if self._cancelled.is_set():
                return  # the rest never begin
            for source in itertools.islice(pending, count):
                running[pool.submit(work, source)] = source

        try:
            submit(window)
            while running:
                done, _ = wait(running, timeout=0, return_when=FIRST_COMPLETED)
                if not done:
                    if idle is not None:
                        idle()
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    source = running.pop(future)
                    submit(1)
                    yield source, future.result()
        finally:
            # When the caller stops early, fetches not yet begun, or still waiting for
            # their host, are cancelled; those under way finish and are discarded.
            self._cancelled.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self.browser.close()  # one browser per run, started by the first page that needs it

    def cancel(self) -> None:
        """End the run's remaining fetches as "cancelled"; those under way finish."""
        self._cancelled.set()

    def fetch_one(
        self, source: Source, validators: Validators | None = None
    ) -> FetchResult | FetchError:
        """`fetch` within the host's limits and robots.txt; an error is returned, not raised."""
        try:
            return self._fetch_limited(source, validators)
        except FetchError as exc:
            return exc
        except Exception as exc:  # a bug or an odd library error: one document only
            log.exception("%s: unexpected error while fetching", source.id)
            return FetchError(failures.ERROR, f"{type(exc).__name__}: {exc}")

    def _fetch_limited(self, source: Source, validators: Validators | None) -> FetchResult:
        host = (urlsplit(source.url).hostname or "").lower()
        with self._lock:
            limit = self._host_limits.setdefault(host, threading.Semaphore(self.settings.per_host))
        with limit:
            if self._cancelled.is_set():
                raise FetchError(failures.CANCELLED, "the run was stopped before this fetch began")
            if self.settings.robots if source.robots is None else source.robots:
                refused = self.robots.check(source.url)
                if refused is not None:
                    raise refused
            return self.fetch(source, validators)

    def fetch(self, source: Source, validators: Validators | None = None) -> FetchResult:
        """Fetch one source; raise `FetchError` when it fails.

        `browser = true` renders it in the browser; otherwise a plain HTTP fetch, which
        falls back to the browser when it meets a bot wall, a 403 or a 406 (unless the
        document says `browser_fallback = false`).
        """
        if source.browser:
            return self.browser.fetch(source, self._cancelled)
        try:
            return self._fetch_http(source, validators)
        except FetchError as error:
            blocked = error.kind == failures.BOT_WALL or (
                error.kind == failures.HTTP and error.status in FALLBACK_STATUSES
            )
            if not (blocked and source.browser_fallback):
                raise
            return self._fall_back(source, error)

    def _fall_back(self, source: Source, error: FetchError) -> FetchResult:
        """Render a blocked page in the browser; the plain error stays when that fails."""
        reason = self.browser.unavailable()
        if reason:
            raise FetchError(
                error.kind,
                f"{error} (no browser available for a fallback: {reason};"
                " install tos-tracker[browser] and the Debian chromium package)",
                status=error.status,
            ) from None
        log.info("%s: %s; trying the browser", source.id, error)
        try:
            result = self.browser.fetch(source, self._cancelled)
        except FetchError as again:
            if again.kind in (failures.BOT_WALL, failures.LOGIN_WALL, failures.CANCELLED):
                raise FetchError(
                    again.kind, f"{again}; the plain fetch had: {error}", status=again.status
                ) from None
            raise FetchError(
                error.kind,
                f"{error}; the browser fallback failed too: {again}",
                status=error.status,
            ) from None
        return replace(result, fallback_from=error.kind)

    def _fetch_http(self, source: Source, validators: Validators | None) -> FetchResult:
        """One source over HTTP, retrying transient failures."""
        settings = self.settings
        headers = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        started = time.perf_counter()
        last_error: FetchError | None = None
        wall_attempts = 0
        for attempt in range(1, settings.retries + 2):
            wait = settings.backoff * (2 ** (attempt - 1))
            self._space(source.url)
            with transport.attempt(source.url, settings.timeout, self.resolve) as guard:
                try:
                    outcome = self._attempt(source, headers, guard, attempt, started)
                except requests.exceptions.RequestException as exc:
                    if not guard.fired:
                        raise
                    outcome = guard.timeout_error()
                    log.debug("%s: cut at the deadline: %s", source.id, short_error(exc))
                except BrokenBody as exc:
                    outcome = exc.error
                    if guard.fired:
                        outcome = guard.timeout_error("the body was not complete")
            if isinstance(outcome, FetchResult):
                return outcome
            if isinstance(outcome, tuple):
                last_error, retry_after = outcome
                wall_attempts += last_error.kind == failures.BOT_WALL
                if retry_after is not None:
                    wait = retry_after
            else:
                last_error = outcome
            if attempt <= settings.retries:
                log.info("%s: %s; retry %d in %.1f s", source.id, last_error, attempt, wait)
                self.sleep(wait)
        assert last_error is not None
        kind = last_error.kind
        if kind == failures.BOT_WALL and wall_attempts < settings.retries + 1:
            kind = failures.HTTP  # a wall only when every attempt was one
        raise FetchError(
            kind,
            f"{last_error} (after {settings.retries + 1} attempts)",
            status=last_error.status,
        )

    def _attempt(
        self,
        source: Source,
        headers: dict[str, str],
        guard: transport.Attempt,
        attempt: int,
        started: float,
    ) -> FetchResult | FetchError | tuple[FetchError, float | None]:
        """One attempt: the result, a retryable error (with a 429/5xx's Retry-After), or
        a raised `FetchError` when retrying cannot help."""
        settings = self.settings
        try:
            response, hops = self._open(source.url, headers, guard, source)
        except requests.exceptions.Timeout as exc:
            if guard.fired:
                raise
            return FetchError(failures.TIMEOUT, f"timed out after {settings.timeout:g} s: {exc}")
        except requests.exceptions.ConnectionError as exc:
            if guard.fired:
                raise
            return FetchError(connection_kind(exc), f"could not connect: {short_error(exc)}")
        except requests.exceptions.RequestException as exc:
            if guard.fired:
                raise
            raise FetchError(failures.ERROR, f"request failed: {short_error(exc)}") from None
        with response:
            status = response.status_code
            if status in RETRY_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock)
                wall = self._wall(source, response)
                error = wall or FetchError(failures.HTTP, f"HTTP {status}", status=status)
                if retry_after is not None and retry_after > settings.max_retry_after:
                    raise FetchError(
                        error.kind,
                        f"{error}; server asked to retry after {retry_after:.0f} s (more"
                        f" than max_retry_after {settings.max_retry_after:.0f} s)",
                        status=status,
                    )
                return error, retry_after
            reason = printable(response.reason or "", 80)
            if status == 304:
                return self._result(source, response, b"", attempt, started, True, hops)
            if status >= 400:
                raise self._wall(source, response) or FetchError(
                    failures.HTTP, f"HTTP {status} {reason}".rstrip(), status=status
                )
            if status not in CAPTURE_STATUSES:
                # 202 is how some bot walls answer; a 3xx here had no usable Location.
                raise self._wall(source, response) or FetchError(
                    failures.HTTP, f"HTTP {status} {reason}: not a page to record", status=status
                )
            body = self._read_body(response, guard)
            if guard.fired:  # the body ended because the deadline shut the socket
                raise BrokenBody(guard.timeout_error("the body was not complete"))
            # A challenge or login page served as a 200 is not the document.
            wall = walls.detect(status, response.headers, body, response.url, source.url)
            if wall is not None:
                raise wall
            return self._result(source, response, body, attempt, started, False, hops)

    def _wall(self, source: Source, response: requests.Response) -> FetchError | None:
        """A bot or login wall error when this error response is one (its body read, capped)."""
        body = b""
        try:
            for chunk in body_chunks(response):
                body += chunk
                if len(body) >= ERROR_BODY_BYTES:
                    break
        except requests.exceptions.RequestException as exc:
            log.debug("%s: error page unreadable: %s", source.id, exc)
        return walls.detect(response.status_code, response.headers, body, response.url, source.url)

    def _read_body(self, response: requests.Response, guard: transport.Attempt) -> bytes:
        """The body, within the size cap and within the attempt's deadline.

        requests' timeout bounds each read, so a server dripping a byte at a time could
        otherwise hold a run for ever; the watchdog ends a read blocked at the deadline,
        and the deadline is checked between reads. The cap counts decoded bytes, read a
        chunk at a time (urllib3 >= 2.6 inflates no more than it is asked for), so a gzip
        bomb stops at the cap. Transient failures raise `BrokenBody` (retried).
        """
        settings = self.settings
        cap = settings.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise FetchError(
                failures.TOO_LARGE, f"body of {declared} bytes exceeds the {cap} byte cap"
            )
        deadline = guard.deadline
        chunks, size = [], 0
        try:
            for chunk in body_chunks(response):
                size += len(chunk)
                if size > cap:
                    raise FetchError(failures.TOO_LARGE, f"body exceeds the {cap} byte cap")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise BrokenBody(
                        FetchError(
                            failures.TIMEOUT,
                            f"body not complete after {settings.timeout:g} s ({size} bytes)",
                        )
                    )
        except requests.exceptions.Timeout as exc:
            raise BrokenBody(
                FetchError(failures.TIMEOUT, f"timed out reading: {short_error(exc)}")
            ) from None
        except requests.exceptions.RequestException as exc:
            raise BrokenBody(
                FetchError(
                    failures.CONNECTION, f"connection broke while reading: {short_error(exc)}"
                )
            ) from None
        return b"".join(chunks)

    def _result(
        self,
        source: Source,
        response: requests.Response,
        body: bytes,
        attempts: int,
        started: float,
        not_modified: bool,
        hops: list[str],
    ) -> FetchResult:
        content_type = response.headers.get("Content-Type")
        match = _CHARSET.search(content_type or "")
        return FetchResult(
            source_id=source.id,
            url=source.url,
            final_url=response.url or source.url,
            status=response.status_code,
            fetched_at=self.clock(),
            body=body,
            content_type=content_type,
            encoding=match.group(1) if match else None,
            validators=Validators(
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            ),
            not_modified=not_modified,
            attempts=attempts,
            elapsed=time.perf_counter() - started,
            redirects=tuple(hops),
        )
