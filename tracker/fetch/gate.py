"""The Gate: the forward proxy on 127.0.0.1 that is headless Chromium's only way out.

Every connection the browser makes (`browser.py`) goes through it. It refuses
loopback, private, link-local, unique-local, multicast, reserved and unspecified
destinations (unless the document's own host is one) and hosts outside
`browser_allow_hosts`. It judges the address it then connects to, so it also covers
redirects, WebSockets, service workers and names that resolve differently the second
time, which Playwright's request routing does not see.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from urllib.parse import urlsplit

from tracker.core import failures
from tracker.fetch.transport import address_kind

log = logging.getLogger("tracker.browser")  # the name log lines have always shown


def private_address(address: str) -> str | None:
    """What kind of non-public address this is (for example 'loopback'), or None.

    A page in the browser must not reach these unless the document itself is on one:
    the same rule as plain fetches (`transport.address_kind`), for a written address
    (a zone id such as `%eth0` is ignored; what does not parse is 'malformed').
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "malformed"
    return address_kind(ip)


class Refused(Exception):
    """The Gate would not connect: `kind` is a fetch failure kind ('blocked', 'dns'...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Gate:
    """A forward proxy on 127.0.0.1 that is the browser's only way out.

    Chromium is launched with it as its proxy for every scheme, loopback included, and
    resolves no names itself; so each connection a page makes (a script, an XHR, an
    iframe, a redirect hop, a WebSocket, a service worker's fetch) arrives here as a
    CONNECT or an absolute-URL request naming its host. The Gate resolves the host,
    judges the addresses and connects to the very address it judged, so a name that
    resolves to a public address once and to 127.0.0.1 the next time gets nowhere.
    """

    def __init__(
        self,
        timeout: float,
        allow: tuple[str, ...] = (),
        refused: list[str] | None = None,
        *,
        deny_all: bool = False,
    ) -> None:
        self.timeout = timeout
        self.allow = allow
        self.deny_all = deny_all  # Chromium's own traffic (updates, sign-in): none of it goes out
        self.own_host = ""  # the page's host, when it is itself non-public: not refused for it
        self.refused = [] if refused is None else refused  # "host:port" or URLs refused
        self._failures: dict[str, Refused] = {}  # "host:port" → why, for the current page
        self._addresses: dict[tuple[str, int], list[str]] = {}
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.5)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="browser-gate", daemon=True).start()

    def begin(self, url: str) -> None:
        """A new page; earlier pages' failures are forgotten.

        A document that is itself on a loopback, private or link-local host (an intranet
        page, a test server) may load from that host, on any port. A document on a public
        host gets no such leave: were its name to resolve to 127.0.0.1 later, that
        connection is refused like any other.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        with self._lock:
            self.own_host = ""
            self._failures.clear()
        try:
            addresses = self._resolve(host, parts.port or 80)
        except Refused:  # the page itself will fail to load
            return
        if any(private_address(address) for address in addresses):
            with self._lock:
                self.own_host = host

    def failure(self, url: str) -> Refused | None:
        """Why the Gate did not connect to `url`'s host and port for this page, if it did not."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        with self._lock:
            return self._failures.get(f"{(parts.hostname or '').lower()}:{port}")

    def close(self) -> None:
        """Stop listening and cut every connection still open."""
        self._closed.set()
        with self._lock:
            sockets, self._open = set(self._open), set()
        for sock in (self._listener, *sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def judge(self, host: str, port: int) -> list[str]:
        """The addresses `host` may be reached at; raise `Refused` when it may not be."""
        host = host.strip("[]").lower()
        if self.deny_all:
            raise Refused(failures.BLOCKED, "the browser's own requests are not let out")
        if self.allow and host not in self.allow:
            raise Refused(failures.BLOCKED, f"host {host!r} is not in [fetch] browser_allow_hosts")
        addresses = self._resolve(host, port)
        if host != self.own_host:
            for address in addresses:
                kind = private_address(address)
                if kind:
                    shown = host if host == address else f"{host} ({address})"
                    raise Refused(failures.BLOCKED, f"{shown} is a {kind} address")
        return addresses

    def _resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, looked up once per browser (that is, per run)."""
        key = (host, port)
        with self._lock:
            addresses = self._addresses.get(key)
        if addresses is None:
            try:
                found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise Refused(failures.DNS, f"could not resolve {host!r}: {exc}") from None
            addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
            with self._lock:
                self._addresses[key] = addresses
        return addresses

    # --- on the Gate's threads ---------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._open.add(sock)
        if self._closed.is_set():
            sock.close()
            raise OSError("the gate is closed")
        return sock

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            self._track(client)
            client.settimeout(self.timeout)
            head, rest = _read_head(client)
            if head is None:
                return
            line, _, fields = head.partition(b"\r\n")
            method, target, version = line.decode("latin-1").split(" ", 2)
            if method == "CONNECT":
                parts = urlsplit(f"//{target}")
                host, port, label = parts.hostname or "", parts.port or 443, target
            else:
                parts = urlsplit(target)
                if parts.scheme not in ("http", "ws"):
                    raise ValueError(f"not a proxy request: {target[:100]!r}")
                host, port, label = parts.hostname or "", parts.port or 80, target
            try:
                upstream = self._track(self._connect(host, port))
            except Refused as refused:
                self._refuse(host, port, label, refused)
                status = "403 Forbidden" if refused.kind == failures.BLOCKED else "502 Bad Gateway"
                client.sendall(
                    f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length:"
                    f" {len(str(refused))}\r\nConnection: close\r\n\r\n{refused}".encode()
                )
                return
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                kept = [
                    field
                    for field in fields.split(b"\r\n")
                    if field
                    and field.split(b":", 1)[0].strip().lower()
                    not in (
                        b"proxy-connection",
                        b"proxy-authorization",
                        b"connection",
                        b"keep-alive",
                    )
                ]
                # One request per connection: the next may be for another host.
                connection = b"Connection: upgrade" if _upgrading(fields) else b"Connection: close"
                head = b"\r\n".join(
                    [f"{method} {path} {version}".encode("latin-1"), *kept, connection]
                )
                upstream.sendall(head + b"\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            _pump(client, upstream, self.timeout, self._closed)
        except (OSError, ValueError, UnicodeError) as exc:
            log.debug("browser gate: %s", exc)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._open.discard(sock)
                    sock.close()

    def _connect(self, host: str, port: int) -> socket.socket:
        addresses = self.judge(host, port)
        problem: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((address, port), timeout=self.timeout)
            except OSError as exc:
                problem = exc
        kind = "timeout" if isinstance(problem, TimeoutError) else "connection"
        raise Refused(kind, f"could not connect to {host}:{port}: {problem}")

    def _refuse(self, host: str, port: int, label: str, refused: Refused) -> None:
        if self.deny_all:
            log.debug("Chromium's own request to %s was not let out", label)
            return
        with self._lock:
            self._failures[f"{host.strip('[]').lower()}:{port}"] = refused
            if refused.kind == failures.BLOCKED:
                self.refused.append(label)
        if refused.kind == failures.BLOCKED:
            log.info("the browser may not reach %s: %s", label, refused)


def _read_head(sock: socket.socket, limit: int = 64 * 1024) -> tuple[bytes | None, bytes]:
    """A request's head (up to the blank line) and whatever came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > limit:
            raise ValueError("request head too large")
        chunk = sock.recv(16384)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _upgrading(fields: bytes) -> bool:
    """A WebSocket handshake keeps its connection (the Gate judged where it goes)."""
    return any(field.lower().startswith(b"upgrade:") for field in fields.split(b"\r\n") if field)


def _pump(a: socket.socket, b: socket.socket, idle: float, closed: threading.Event) -> None:
    """Copy bytes both ways until the far side is done, nothing moves for `idle` s, or close."""
    peers = {a: b, b: a}
    peers_by_fd = {a.fileno(): a, b.fileno(): b}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        quiet = 0.0
        while not closed.is_set():
            events = selector.select(timeout=0.5)
            if not events:
                quiet += 0.5
                if quiet >= idle:
                    return
                continue
            quiet = 0.0
            for key, _ in events:
                sock = peers_by_fd[key.fd]
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    if sock is b:  # the server is done: so is the exchange
                        return
                    selector.unregister(sock)
                    b.shutdown(socket.SHUT_WR)
                    continue
                peers[sock].setblocking(True)
                peers[sock].settimeout(idle)
                peers[sock].sendall(data)
                peers[sock].setblocking(False)
