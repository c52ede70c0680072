"""Rendering pages in headless Chromium: the system's browser, driven by Playwright.

For documents that are built by JavaScript (`browser = true`) and as a fallback when
a plain fetch meets a bot wall. The browser is the system Chromium (the Debian
package `chromium`), never one downloaded by Playwright; Playwright for Python is
the optional extra `tos-tracker[browser]`.

Playwright's sync API must be used from the thread that started it, while the
fetcher runs documents on a thread pool. So one dedicated thread owns Playwright
and the browser: fetches from any thread are queued to it and wait for their
result. The browser starts on the first fetch of a run and is closed at its end;
each page gets a fresh context (no cookies, cache or storage carried over).

Pages are untrusted, so the browser is confined twice over:

- Chromium's own sandbox stays on wherever it can run. Chromium refuses to start
  sandboxed as root (and where it finds no usable sandbox); that failure is detected
  on the first launch, the browser is started again with `--no-sandbox`, and a
  warning says so once per process.
- Every connection the browser makes goes through `Gate` (`gate.py`), a forward proxy on
  127.0.0.1 inside this process, which refuses loopback, private, link-local,
  unique-local, multicast, reserved and unspecified destinations (unless the
  document's own host is one) and hosts outside `browser_allow_hosts`. It judges
  the address it then connects to, so it also covers redirects, WebSockets,
  service workers and names that resolve differently the second time, which
  Playwright's request routing does not see.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tracker import __version__
from tracker.config.settings import PROJECT_URL, FetchSettings
from tracker.core import failures
from tracker.core.errors import FetchError
from tracker.core.models import FetchResult, Source, Validators
from tracker.fetch import walls
from tracker.fetch.gate import Gate, Refused

log = logging.getLogger("tracker.browser")  # the name log lines have always shown

CHROMIUM_ARGS = (
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # WebRTC may not send UDP outside a proxy, i.e. at all: its packets would bypass the Gate.
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Names are resolved by the Gate alone; Chromium itself resolves none (no DNS prefetch)
    # but the Gate's own address.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)
# What Chromium (or Playwright reading its output) says when it cannot start sandboxed.
SANDBOX_FAILURES = (
    "sandboxing failed",
    "without --no-sandbox",
    "no usable sandbox",
    "setuid sandbox",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = "install tos-tracker[browser] and the Debian chromium package"
# Schemes that never leave the machine: not subject to `browser_allow_hosts`.
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
CAPTURE_STATUSES = frozenset({200, 203})  # as for a plain fetch
POLL_MS = 100

# True once one of the selectors matches an element with text in it. An invalid
# selector (soupsieve accepts a few that browsers do not) is skipped, not fatal.
_HAS_CONTENT = """
selectors => selectors.some(selector => {
  let found;
  try { found = document.querySelectorAll(selector); } catch (e) { return false; }
  return Array.from(found).some(e => (e.textContent || "").trim().length > 0);
})
"""

# Chromium's network errors, by what they mean for a fetch.
_NET_ERRORS = (
    ("ERR_NAME_NOT_RESOLVED", failures.DNS),
    ("ERR_NAME_RESOLUTION_FAILED", failures.DNS),
    ("ERR_TIMED_OUT", failures.TIMEOUT),
    ("ERR_CONNECTION_TIMED_OUT", failures.TIMEOUT),
    ("ERR_TOO_MANY_REDIRECTS", failures.REDIRECTS),
    ("ERR_CONNECTION", failures.CONNECTION),
    ("ERR_EMPTY_RESPONSE", failures.CONNECTION),
    ("ERR_ADDRESS_UNREACHABLE", failures.CONNECTION),
    ("ERR_INTERNET_DISCONNECTED", failures.CONNECTION),
    ("ERR_CERT_", failures.CONNECTION),
    ("ERR_SSL_", failures.CONNECTION),
)


def find_chromium(configured: str | None = None) -> tuple[str | None, str]:
    """The Chromium to launch and, when there is none, why.

    `[fetch] browser_path` wins, then the environment variable TOS_TRACKER_CHROMIUM,
    then `chromium` or `chromium-browser` on PATH.
    """
    if configured:
        found = configured if "/" in configured else shutil.which(configured)
        if found and os.path.isfile(found) and os.access(found, os.X_OK):
            return found, ""
        return None, f"no Chromium at {configured!r} ([fetch] browser_path)"
    from_env = os.environ.get("TOS_TRACKER_CHROMIUM")
    if from_env:
        if os.path.isfile(from_env) and os.access(from_env, os.X_OK):
            return from_env, ""
        return None, f"no Chromium at {from_env!r} (TOS_TRACKER_CHROMIUM)"
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found, ""
    return None, "no Chromium found on PATH (chromium, chromium-browser)"


# Executables that would not start sandboxed in this process, with why: learned on the
# first launch of each, so later launches skip the failing attempt and warn no more.
_UNSANDBOXED: dict[str, str] = {}
_UNSANDBOXED_LOCK = threading.Lock()


class BrowserFetcher:
    """Renders sources in headless Chromium on one dedicated thread."""

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or FetchSettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.blocked: list[str] = []  # requests refused (`browser_allow_hosts`, private hosts)
        self.launches = 0
        self.launch_seconds = 0.0
        self.sandboxed: bool | None = None  # whether the last browser started in its sandbox
        self.launch_args: list[str] = []  # the arguments it was started with
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # Owned by the browser thread only:
        self._playwright: Any = None
        self._browser: Any = None
        self._user_agent: str | None = None
        self._launch_error: str | None = None
        self._gate: Gate | None = None  # pages' requests go through it
        self._wall: Gate | None = None  # the browser's own requests go nowhere

    # --- from any thread -------------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why no browser can be used (Playwright or Chromium missing), or None."""
        if self._launch_error:
            return self._launch_error
        if importlib.util.find_spec("playwright") is None:
            return "Playwright for Python is not installed"
        _, reason = find_chromium(self.settings.browser_path)
        return reason or None

    def fetch(self, source: Source, cancelled: threading.Event | None = None) -> FetchResult:
        """Render `source` and return the page's HTML; raise `FetchError` when it fails."""
        reason = self.unavailable()
        if reason:
            raise FetchError(failures.BROWSER, f"no browser available: {reason}; {INSTALL_HINT}")
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")
            executor = self._executor
        return executor.submit(self._render, source, cancelled).result()

    def close(self) -> None:
        """Close the browser and its thread; the next fetch starts a new one."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._launch_error = None  # a browser that failed to start is tried again next run
        if executor is not None:
            executor.submit(self._stop).result()
            executor.shutdown(wait=True)

    # --- on the browser thread -------------------------------------------------------

    def _start(self) -> Any:
        if self._browser is not None:
            return self._browser
        executable, reason = find_chromium(self.settings.browser_path)
        if executable is None:
            raise FetchError(failures.BROWSER, f"no browser available: {reason}; {INSTALL_HINT}")
        started = time.perf_counter()
        try:
            from playwright.sync_api import sync_playwright

            self._gate = Gate(
                self.settings.timeout, self.settings.browser_allow_hosts, self.blocked
            )
            self._wall = Gate(self.settings.timeout, deny_all=True)
            self._playwright = sync_playwright().start()
            self._browser = self._launch(executable)
            self._user_agent = self.settings.user_agent or self._default_user_agent()
        except Exception as exc:
            self._stop()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._launch_error = f"Chromium at {executable!r} did not start: {first}"
            raise FetchError(
                failures.BROWSER, f"no browser available: {self._launch_error}; {INSTALL_HINT}"
            ) from None
        self.launches += 1
        self.launch_seconds += time.perf_counter() - started
        log.info(
            "started %s in %.2f s%s",
            executable,
            time.perf_counter() - started,
            "" if self.sandboxed else " (without its sandbox)",
        )
        return self._browser

    def _launch(self, executable: str) -> Any:
        """Start Chromium in its sandbox; where it cannot be, without, and say so once.

        Whether the sandbox works is found out, not guessed: the first launch of an
        executable in this process tries it, and only the failure Chromium reports for a
        missing sandbox (as root, or without user namespaces or a setuid helper) leads to
        `--no-sandbox`, remembered for the rest of the process.
        """
        assert self._wall is not None
        # Outside a page (component updates, sign-in checks) Chromium gets nowhere; pages
        # get their own proxy, the Gate, per context. Loopback goes through both.
        proxy = {"server": self._wall.url, "bypass": "<-loopback>"}
        timeout = max(self.settings.timeout, 30) * 1000
        with _UNSANDBOXED_LOCK:
            why = _UNSANDBOXED.get(executable)
        if why is None:
            self.launch_args = list(CHROMIUM_ARGS)
            try:
                browser = self._playwright.chromium.launch(
                    executable_path=executable,
                    args=self.launch_args,
                    chromium_sandbox=True,
                    proxy=proxy,
                    timeout=timeout,
                )
            except Exception as exc:
                if not any(marker in str(exc).lower() for marker in SANDBOX_FAILURES):
                    raise
                why = "running as root" if os.geteuid() == 0 else "no usable sandbox"
                with _UNSANDBOXED_LOCK:
                    first = executable not in _UNSANDBOXED
                    _UNSANDBOXED[executable] = why
                if first:
                    log.warning(
                        "Chromium cannot use its sandbox here (%s): pages are rendered with"
                        " --no-sandbox, confined by the network rules alone; run tos-tracker"
                        " as an ordinary user to keep the sandbox",
                        why,
                    )
            else:
                self.sandboxed = True
                return browser
        self.launch_args = [*CHROMIUM_ARGS, "--no-sandbox"]
        self.sandboxed = False
        return self._playwright.chromium.launch(
            executable_path=executable,
            args=self.launch_args,
            chromium_sandbox=True,  # Playwright adds nothing; --no-sandbox is ours, above
            proxy=proxy,
            timeout=timeout,
        )

    def _default_user_agent(self) -> str:
        """Chromium's own User-Agent, naming this tool at the end (it is who is asking)."""
        page = self._browser.new_page()
        try:
            agent = str(page.evaluate("navigator.userAgent"))
        finally:
            page.close()
        return f"{agent} tos-tracker/{__version__} (+{PROJECT_URL})"

    def _stop(self) -> None:
        for closing in (self._browser, self._playwright):
            if closing is None:
                continue
            try:
                closing.close() if closing is self._browser else closing.stop()
            except Exception as exc:  # already gone; nothing to keep
                log.debug("closing the browser: %s", exc)
        self._browser = self._playwright = None
        for gate in (self._gate, self._wall):
            if gate is not None:
                gate.close()
        self._gate = self._wall = None

    def _render(self, source: Source, cancelled: threading.Event | None) -> FetchResult:
        if cancelled is not None and cancelled.is_set():
            raise FetchError(failures.CANCELLED, "the run was stopped before this fetch began")
        allow = self.settings.browser_allow_hosts
        host = (urlsplit(source.url).hostname or "").lower()
        if allow and host not in allow:
            raise FetchError(
                failures.BLOCKED,
                f"host {host!r} is not in [fetch] browser_allow_hosts ({list(allow)})",
            )
        browser = self._start()
        assert self._gate is not None
        self._gate.begin(source.url)
        started = time.perf_counter()
        try:
            # Service workers are blocked: their requests would bypass the routes below.
            context = browser.new_context(
                user_agent=self._user_agent,
                service_workers="block",
                proxy={"server": self._gate.url, "bypass": "<-loopback>"},
            )
        except Exception as exc:  # the browser died since the last page: start afresh next time
            self._stop()
            raise FetchError(failures.BROWSER, f"the browser failed: {_first_line(exc)}") from None
        try:
            if allow:
                context.route("**/*", self._router(allow))
            page = context.new_page()
            return self._load(page, source, started, self._gate)
        finally:
            try:
                context.close()
            except Exception as exc:  # the browser died; the next fetch restarts it
                log.debug("closing a browser context: %s", exc)
                self._stop()

    def _router(self, allow: tuple[str, ...]) -> Callable[[Any], None]:
        def route(route: Any) -> None:
            parts = urlsplit(route.request.url)
            if parts.scheme in LOCAL_SCHEMES or (parts.hostname or "").lower() in allow:
                route.continue_()
            else:
                self.blocked.append(route.request.url)
                route.abort("blockedbyclient")

        return route

    def _load(self, page: Any, source: Source, started: float, gate: Gate) -> FetchResult:
        """Open the page, get past a challenge that lets a browser through, wait for content."""
        from playwright.sync_api import Error, TimeoutError

        timeout = self.settings.timeout
        deadline = time.monotonic() + timeout
        documents: list[Any] = []  # the main frame's document responses, newest last

        def on_response(response: Any) -> None:
            try:
                if response.request.is_navigation_request() and response.frame == page.main_frame:
                    documents.append(response)
            except Error:
                pass

        page.on("response", on_response)
        try:
            first = page.goto(source.url, wait_until="load", timeout=_ms(deadline))
        except TimeoutError:
            raise FetchError(
                failures.TIMEOUT, f"the page did not load within {timeout:g} s"
            ) from None
        except Error as exc:
            refused = gate.failure(page.url if page.url != "about:blank" else source.url)
            raise _navigation_error(exc, refused) from None
        if first is None:
            raise FetchError(failures.ERROR, "the browser got no response for the page")
        selectors = list(source.select) or ["body"]
        ready = False
        while True:
            seen = len(documents)  # what this check is about; a reload may land meanwhile
            response = documents[-1] if documents else first
            html = self._content(page, deadline)
            wall = walls.detect(
                response.status, response.headers, html.encode("utf-8"), page.url, source.url
            )
            if wall is not None:
                if wall.kind == failures.LOGIN_WALL or not _wait_for_navigation(
                    page, documents, seen, deadline
                ):
                    raise FetchError(
                        wall.kind,
                        f"{wall} (in the browser, still there after {timeout:g} s)"
                        if wall.kind == failures.BOT_WALL
                        else f"{wall} (in the browser)",
                        status=wall.status,
                    )
                log.info("%s: %s; the page moved on (%d)", source.id, wall, seen)
                ready = False
                continue
            refused = gate.failure(response.url)
            if refused is not None:  # the Gate answered for a host it would not reach
                raise _refused_error(response.url, refused)
            if response.status not in CAPTURE_STATUSES:
                raise FetchError(
                    failures.HTTP,
                    f"HTTP {response.status} {response.status_text} (in the browser)".rstrip(),
                    status=response.status,
                )
            if ready:
                break
            try:
                page.wait_for_function(
                    _HAS_CONTENT, arg=selectors, timeout=_ms(deadline), polling=POLL_MS
                )
            except TimeoutError:
                raise FetchError(
                    failures.TIMEOUT, _selector_timeout(source.select, timeout)
                ) from None
            except Error as exc:
                if _navigated(exc):
                    continue
                raise FetchError(
                    failures.ERROR, f"the browser failed: {_first_line(exc)}"
                ) from None
            ready = True  # check the status and walls once more on what is there now
        body = html.encode("utf-8")
        if len(body) > self.settings.max_bytes:
            raise FetchError(
                failures.TOO_LARGE,
                f"rendered page of {len(body)} bytes exceeds the"
                f" {self.settings.max_bytes} byte cap",
            )
        return FetchResult(
            source_id=source.id,
            url=source.url,
            final_url=page.url,
            status=response.status,
            fetched_at=self.clock(),
            body=body,
            content_type="text/html; charset=utf-8",
            encoding="utf-8",
            validators=Validators(),
            elapsed=time.perf_counter() - started,
            via="browser",
        )

    def _content(self, page: Any, deadline: float) -> str:
        """The page's HTML now, waiting out a navigation under way."""
        from playwright.sync_api import Error

        while True:
            try:
                return str(page.content())
            except Error as exc:
                if not _navigated(exc) or time.monotonic() > deadline:
                    raise FetchError(
                        failures.ERROR, f"the browser failed: {_first_line(exc)}"
                    ) from None
                page.wait_for_timeout(POLL_MS)


def _wait_for_navigation(page: Any, documents: list[Any], seen: int, deadline: float) -> bool:
    """Wait until the main frame has a document past the first `seen` (a challenge passed).

    `seen` is counted before the page was checked, so a reload that landed during the
    check counts; counting here would wait for a third document that never comes.
    """
    from playwright.sync_api import Error

    while len(documents) <= seen:
        if time.monotonic() >= deadline:
            return False
        page.wait_for_timeout(POLL_MS)
    try:
        page.wait_for_load_state("load", timeout=_ms(deadline))
    except Error:
        return False
    return True


def _ms(deadline: float) -> float:
    """Milliseconds left before `deadline`, at least 1 (0 would mean no timeout)."""
    return max(1.0, (deadline - time.monotonic()) * 1000)


def _selector_timeout(select: tuple[str, ...], timeout: float) -> str:
    if not select:
        return f"the page showed no text within {timeout:g} s"
    if len(select) == 1:
        return f"selector {select[0]!r} did not appear within {timeout:g} s"
    shown = ", ".join(repr(s) for s in select)
    return f"none of the selectors {shown} appeared within {timeout:g} s"


def _navigated(exc: Exception) -> bool:
    text = str(exc)
    return "context was destroyed" in text or "navigating" in text or "navigation" in text


def _navigation_error(exc: Exception, refused: Refused | None = None) -> FetchError:
    line = _first_line(exc)
    if refused is not None:
        return _refused_error(line, refused)
    for code, kind in _NET_ERRORS:
        if code in line:
            prefix = "timed out" if kind == failures.TIMEOUT else "could not connect"
            return FetchError(kind, f"{prefix}: {line}")
    if "ERR_BLOCKED_BY_CLIENT" in line:
        return FetchError(failures.BLOCKED, f"the browser blocked the page: {line}")
    return FetchError(failures.ERROR, f"the browser could not open the page: {line}")


def _refused_error(where: str, refused: Refused) -> FetchError:
    """The page's own document was refused by the Gate: a failure of its kind."""
    if refused.kind == failures.BLOCKED:
        return FetchError(failures.BLOCKED, f"the browser may not open the page: {refused}")
    prefix = "timed out" if refused.kind == failures.TIMEOUT else "could not connect"
    return FetchError(refused.kind, f"{prefix}: {refused}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."
