"""Where a request may connect, and how long a whole answer may take.

Two defences sit under requests, in the connections urllib3 opens:

- **Destinations.** A host name is resolved once, every address it resolves to is
  judged, and only those addresses are connected to (so a second, different DNS answer
  cannot slip in between the check and the connection). By default no loopback,
  private, link-local, multicast, reserved or unspecified address is reached, unless the
  document's own host resolves to one of the same kind: a document on 127.0.0.1 may be
  redirected to 127.0.0.2 (if `allow_hosts` lets it), one on the public web may not be
  redirected into the intranet or to 169.254.169.254. A reused keep-alive connection
  has its peer address judged again before each request.
- **Deadlines.** requests' timeout bounds each socket read, not the whole answer: a
  server sending a header byte a second holds a run for as long as it likes. Every
  socket of a fetch attempt is registered with one watchdog thread, which shuts the
  sockets down when the attempt's deadline passes; the blocked read then ends, and
  `Attempt.fired` tells the caller it was a timeout, not a broken connection.

Requests through a proxy are not judged by address (the proxy resolves the names), only
by the redirect rules in `fetch.py`.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from tracker.core import failures
from tracker.core.errors import FetchError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[tuple[Any, ...]]]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses inside IPv6, translated


def address_kind(address: Address) -> str | None:
    """None for a public address; else what kind of non-public address it is.

    The one rule for plain fetches and the browser's gate. IPv4 inside IPv6 (mapped
    `::ffff:a.b.c.d`, 6to4, Teredo, NAT64) is judged as the IPv4 address it carries, so
    `::ffff:169.254.169.254` is link-local like the original.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo is not None:
            inner = address.teredo[1]
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return address_kind(inner)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:  # before private: Python counts 240.0.0.0/4 as both
        return "reserved"
    if address.is_private:
        return "private"
    return None if address.is_global else "non-public"  # e.g. carrier-grade NAT


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


class Attempt:
    """One fetch attempt (every hop and the body): its deadline and destination rule."""

    def __init__(self, origin: str, timeout: float, resolve: Resolver = resolve) -> None:
        self.origin = (urlsplit(origin).hostname or "").lower()
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.fired = False  # the deadline passed and the sockets were shut down
        self._resolve = resolve
        self._allowed: frozenset[str] | None = None
        self._sockets: list[socket.socket] = []
        self._done = False
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    def allowed(self) -> frozenset[str]:
        """The non-public kinds this attempt may reach: those of the document's own host."""
        if self._allowed is None:
            try:
                kinds = {_kind_of(info[4][0]) for info in self._resolve(self.origin, 80)}
            except OSError:
                kinds = set()
            self._allowed = frozenset(kind for kind in kinds if kind is not None)
        return self._allowed

    def judge(self, host: str, address: str) -> None:
        """Raise `blocked_destination` when `host` at `address` may not be reached."""
        kind = _kind_of(address)
        if kind is None or host.lower().strip("[]") == self.origin:
            return
        if kind in self.allowed():
            return
        raise FetchError(
            failures.BLOCKED_DESTINATION,
            f"refused to connect to {host} ({address}): {_article(kind)} {kind} address, and"
            " the document's own host is not one",
        )

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down when the deadline passes (at once when it has passed)."""
        with self._lock:
            if self._done:
                return
            if self.fired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def expire(self) -> None:
        """The watchdog's call at the deadline: end every read still waiting."""
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> None:
        """The attempt is over: its sockets (maybe back in the pool) are left alone."""
        with self._lock:
            self._done = True
            self._sockets.clear()

    def timeout_error(self, what: str = "the answer was not complete") -> FetchError:
        return FetchError(failures.TIMEOUT, f"timed out after {self.timeout:g} s ({what})")


def _kind_of(address: str) -> str | None:
    try:
        return address_kind(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return "reserved"  # not an address at all: never a public one


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the plain socket's, under TLS too: wakes a read
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """One thread that expires attempts at their deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Attempt]] = []
        self._count = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, attempt: Attempt) -> None:
        with self._wake:
            heapq.heappush(self._heap, (attempt.deadline, next(self._count), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fetch-deadlines", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._heap:
                    self._wake.wait(timeout=30)
                    if not self._heap:  # idle: `arm` starts a new thread when needed
                        self._thread = None
                        return
                deadline, _, attempt = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._wake.wait(timeout=deadline - now)
                    continue
                heapq.heappop(self._heap)
            attempt.expire()


WATCHDOG = Watchdog()
_current = threading.local()


@contextmanager
def attempt(origin: str, timeout: float, resolve: Resolver = resolve) -> Iterator[Attempt]:
    """Run a fetch attempt on this thread: its connections are judged and watched."""
    current = Attempt(origin, timeout, resolve)
    previous = getattr(_current, "attempt", None)
    _current.attempt = current
    WATCHDOG.arm(current)
    try:
        yield current
    finally:
        current.finish()
        _current.attempt = previous


def current_attempt() -> Attempt | None:
    found: Attempt | None = getattr(_current, "attempt", None)
    return found


def _connect(conn: HTTPConnection, attempt: Attempt) -> socket.socket:
    """Resolve once, judge every address, then connect only to those addresses."""
    host, port = conn._dns_host, conn.port
    try:
        infos = attempt._resolve(host, port)
    except socket.gaierror as exc:
        from urllib3.exceptions import NameResolutionError

        raise NameResolutionError(conn.host, conn, exc) from exc
    for info in infos:
        attempt.judge(conn.host, info[4][0])
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            if conn.source_address:
                sock.bind(conn.source_address)
            timeout = conn.timeout if isinstance(conn.timeout, int | float) else None
            sock.settimeout(min(timeout or attempt.timeout, attempt.remaining()))
            sock.connect(address)
            sock.settimeout(timeout)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        attempt.watch(sock)
        return sock
    if isinstance(error, TimeoutError):
        from urllib3.exceptions import ConnectTimeoutError

        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from error
    from urllib3.exceptions import NewConnectionError

    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


class _Guarded:
    """Mixin for urllib3 connections: judged and watched inside an `attempt`."""

    def _new_conn(self) -> socket.socket:
        current = current_attempt()
        if current is None:
            return super()._new_conn()  # type: ignore[misc]
        return _connect(self, current)  # type: ignore[arg-type]

    def request(self, *args: Any, **kwargs: Any) -> None:
        current = current_attempt()
        sock: socket.socket | None = getattr(self, "sock", None)
        if current is not None and sock is not None:  # a kept-alive connection
            try:
                peer = sock.getpeername()[0]
            except OSError:
                peer = None
            if peer is not None:
                current.judge(self.host, peer)  # type: ignore[attr-defined]
            current.watch(sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with the guarded connections (direct ones; proxies are not)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPPool,
            "https": GuardedHTTPSPool,
        }
