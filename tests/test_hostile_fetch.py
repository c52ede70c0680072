"""Hostile servers, round two (issue 15): what a framework would never send, over raw sockets.

Each server here is a real TCP server on a loopback address writing bytes by hand: a
gzip bomb behind a 302, an endless chunked 302, headers dripped a byte a second, a reason
phrase carrying terminal escapes, redirects to addresses the fetch must never reach.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import document_entry, invoke, write_config

from tracker.config.settings import FetchSettings
from tracker.core.errors import FetchError, printable
from tracker.core.models import Source
from tracker.fetch import transport
from tracker.fetch.http import Fetcher
from tracker.fetch.transport import address_kind

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"host_delay": 0, "robots": False}
PAGE = b"<html><body><main><h1>Terms</h1><p>" + b"We keep logs for thirty days. " * 8
PAGE += b"</p></main></body></html>"

Handler = Callable[[socket.socket, str], None]


class RawServer:
    """A TCP server whose handler writes the answer's bytes itself, one thread a connection."""

    def __init__(
        self, handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> None:
        self.handler, self.tls = handler, tls
        self.listener = socket.create_server((host, 0))
        self.host, self.port = host, self.listener.getsockname()[1]
        self.paths: list[str] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                return
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode()
            self.paths.append(path)
            with contextlib.suppress(OSError):  # the client hung up, as it should
                self.handler(conn, path)

    def drip(self, conn: socket.socket, data: bytes, every: float = 1.0, limit: float = 30) -> None:
        """Send `data` one byte at a time, then one more byte a second until `limit`."""
        ends = time.monotonic() + limit
        for index in range(len(data)):
            conn.sendall(data[index : index + 1])
            time.sleep(every)
        while time.monotonic() < ends and not self.stopped.is_set():
            conn.sendall(b"x")
            time.sleep(every)

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(
        handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> RawServer:
        servers.append(RawServer(handler, host, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def page(conn: socket.socket, body: bytes = PAGE, extra: str = "") -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
    conn.sendall((head + extra + "Connection: close\r\n\r\n").encode() + body)


def source(url: str, **extra: object) -> Source:
    return Source(id="hostile/doc", service="Test", title="Doc", url=url, **extra)  # type: ignore[arg-type]


def fetch_error(settings: FetchSettings, src: Source, **kwargs: object) -> tuple[FetchError, float]:
    started = time.monotonic()
    result = Fetcher(settings, **kwargs).fetch_one(src)  # type: ignore[arg-type]
    assert isinstance(result, FetchError), result
    return result, time.monotonic() - started


def gzip_bomb(gigabytes: int = 4) -> bytes:
    """A body of a few KB that inflates to `gigabytes` GB through `gzip, gzip`.

    The inner layer is one 64 MB gzip member of zeros repeated (a gzip stream may hold
    many members), so it is built in a fraction of a second, not compressed for 20.
    """
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    inner_member = b"".join(member.compress(zero) for _ in range(64)) + member.flush()
    return gzip.compress(inner_member * (16 * gigabytes), 9, mtime=0)


# --- 1. every response of every hop is bounded ----------------------------------------------

MEASURE = """
import json, resource, sys, time
sys.setrecursionlimit(10000)
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # old code: MemoryError, not OOM
from tracker.config.settings import FetchSettings
from tracker.core.errors import FetchError
from tracker.fetch.http import Fetcher
from tracker.core.models import Source
out = {}
for name, url in json.loads(sys.argv[1]).items():
    fetcher = Fetcher(FetchSettings(timeout=10, retries=0, max_bytes=5 << 20, host_delay=0,
                                    robots=name == "robots"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = fetcher.fetch_one(Source(id="d", service="s", title="t", url=url))
    out[name] = {
        "kind": result.kind if isinstance(result, FetchError) else "ok",
        "message": str(result)[:200] if isinstance(result, FetchError) else "",
        "redirects": [] if isinstance(result, FetchError) else list(result.redirects),
        "seconds": round(time.monotonic() - started, 2),
        "grew_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024,
    }
print(json.dumps(out))
"""


def test_a_gzip_bomb_is_never_inflated_behind_a_302_nor_past_the_cap(
    serve: Callable[..., RawServer],
) -> None:
    """A 7 KB body that inflates to 4 GB: before, a 302 carrying it took the fetch to
    MemoryError (GBs of RSS); its body is now never read, as a page it stops at the cap,
    and as a robots.txt at 512 KiB."""
    bomb = gzip_bomb()
    assert len(bomb) < 16 * 1024

    def handler(conn: socket.socket, path: str) -> None:
        if path in ("/doc", "/page"):
            page(conn)
            return
        status = "302 Found\r\nLocation: /doc" if path == "/moved" else "200 OK"
        conn.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Encoding: gzip, gzip\r\n"
            f"Content-Length: {len(bomb)}\r\nConnection: close\r\n\r\n".encode()
            + bomb
        )

    server = serve(handler)
    urls = {
        "redirect": server.url("/moved"),
        "page": server.url("/bomb"),
        "robots": server.url("/page"),  # its robots.txt is the bomb, read to 512 KiB
    }
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(urls)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["redirect"]["kind"] == "ok", out
    assert out["redirect"]["redirects"] == [urls["redirect"]]
    assert out["page"]["kind"] == "too_large", out
    assert out["robots"]["kind"] == "ok" and "/robots.txt" in server.paths, out
    for name in urls:
        assert out[name]["seconds"] < 5, out
        assert out[name]["grew_mb"] < 100, out


def test_an_endless_chunked_302_is_not_read(serve: Callable[..., RawServer]) -> None:
    """Before, requests read a redirect's body to its end before the next hop: for ever."""

    def handler(conn: socket.socket, path: str) -> None:
        if path == "/doc":
            page(conn)
            return
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /doc\r\nTransfer-Encoding: chunked\r\n\r\n")
        ends = time.monotonic() + 20
        while time.monotonic() < ends:
            conn.sendall(b"10000\r\n" + b"a" * 0x10000 + b"\r\n")

    server = serve(handler)
    started = time.monotonic()
    result = Fetcher(FetchSettings(timeout=5, retries=0, **QUIET)).fetch(source(server.url("/")))
    assert time.monotonic() - started < 2
    assert result.body == PAGE and result.redirects == (server.url("/"),)


# --- 2. each redirect is judged before it is requested --------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),  # 6to4 carrying 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("240.0.0.1", "reserved"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    import ipaddress

    assert address_kind(ipaddress.ip_address(address)) == kind


def test_a_redirect_to_another_address_kind_is_refused_before_any_connection(
    serve: Callable[..., RawServer],
) -> None:
    """A document on loopback may not be sent to 0.0.0.0 (which reaches this machine's
    servers), the cloud metadata address or the intranet, even with allow_hosts saying so:
    and the target is never connected to."""
    secret = serve(lambda conn, path: page(conn, b"secret"), host="0.0.0.0")
    targets = [
        f"http://0.0.0.0:{secret.port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::ffff:0.0.0.0]:{secret.port}/secret",
        "http://intranet.test/",  # resolved below to a private address and a public one
    ]

    def handler(conn: socket.socket, path: str) -> None:
        target = targets[int(path.strip("/"))]
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\n\r\n".encode())

    def resolve(host: str, port: int) -> list[tuple[object, ...]]:
        if host == "intranet.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
            ]
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)

    server = serve(handler)
    hosts = ("0.0.0.0", "169.254.169.254", "::ffff:0.0.0.0", "intranet.test")
    settings = FetchSettings(timeout=5, retries=1, backoff=0.01, **QUIET)
    for number, target in enumerate(targets):
        error, seconds = fetch_error(
            settings, source(server.url(f"/{number}"), allow_hosts=hosts), resolve=resolve
        )
        assert error.kind == "blocked_destination", (target, error)
        assert "address, and the document's own host is not one" in str(error)
        assert seconds < 1
    assert secret.paths == []


def test_a_redirect_within_the_documents_own_kind_is_followed(
    serve: Callable[..., RawServer],
) -> None:
    """The rule is the document's own: loopback may lead to loopback, when allowed."""
    other = serve(lambda conn, path: page(conn), host="127.0.0.2")
    server = serve(
        lambda conn, path: conn.sendall(
            f"HTTP/1.1 301 Moved\r\nLocation: {other.url('/doc')}\r\n\r\n".encode()
        )
    )
    settings = FetchSettings(timeout=5, retries=0, **QUIET)
    result = Fetcher(settings).fetch(source(server.url("/"), allow_hosts=("127.0.0.2",)))
    assert result.final_url == other.url("/doc") and result.body == PAGE
    # ...and without allow_hosts, another site is refused before it is asked.
    other.paths.clear()
    error, _ = fetch_error(settings, source(server.url("/")))
    assert error.kind == "offsite_redirect" and "not requested" in str(error)
    assert other.paths == []


def test_a_redirect_to_another_scheme_is_refused(serve: Callable[..., RawServer]) -> None:
    server = serve(
        lambda conn, path: conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\n\r\n"
        )
    )
    error, _ = fetch_error(FetchSettings(timeout=5, retries=0, **QUIET), source(server.url("/")))
    assert error.kind == "blocked_destination" and "file" in str(error)


def test_robots_txt_redirects_are_judged_too(serve: Callable[..., RawServer]) -> None:
    def handler(conn: socket.socket, path: str) -> None:
        if path == "/robots.txt":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n\r\n")
        else:
            page(conn)

    server = serve(handler)
    settings = FetchSettings(timeout=5, retries=0, host_delay=0, robots=True)
    error, seconds = fetch_error(settings, source(server.url("/doc")))
    assert error.kind == "blocked_destination" and seconds < 1
    assert server.paths == ["/robots.txt"]


# --- 3. the timeout bounds the whole answer, headers included -------------------------------


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\nX-Slow: ",  # then a header byte a second
        b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 3,
        b"",  # the status line itself, a byte a second
    ],
    ids=["one-header", "many-headers", "status-line"],
)
def test_dripped_headers_time_out_at_the_timeout(
    serve: Callable[..., RawServer], sent: bytes
) -> None:
    """Before: 60 s with timeout = 3 (each byte came within the per-read timeout)."""
    server = serve(lambda conn, path: server.drip(conn, sent, every=0.2 if sent else 0.5))
    settings = FetchSettings(timeout=2, retries=0, **QUIET)
    error, seconds = fetch_error(settings, source(server.url("/")))
    assert error.kind == "timeout", error
    assert 1.8 < seconds < 3.5, seconds


def test_a_dripping_body_times_out_at_the_timeout_from_the_request(
    serve: Callable[..., RawServer],
) -> None:
    """Headers that take most of the timeout leave the body only the rest of it."""

    def handler(conn: socket.socket, path: str) -> None:
        time.sleep(1.5)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        server.drip(conn, b"", every=0.2)

    server = serve(handler)
    error, seconds = fetch_error(
        FetchSettings(timeout=2, retries=0, **QUIET), source(server.url("/"))
    )
    assert error.kind == "timeout" and seconds < 3, (error, seconds)


def test_a_dripping_robots_txt_times_out_at_the_timeout(serve: Callable[..., RawServer]) -> None:
    """Before: 47 s with timeout = 3, the store lock held meanwhile."""

    def handler(conn: socket.socket, path: str) -> None:
        if path == "/robots.txt":
            server.drip(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", every=0.2)
        else:
            page(conn)

    server = serve(handler)
    settings = FetchSettings(timeout=2, retries=0, host_delay=0, robots=True)
    error, seconds = fetch_error(settings, source(server.url("/doc")))
    assert error.kind == "timeout" and "robots.txt" in str(error), error
    assert seconds < 3.5


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1, as a PEM file holding key and certificate."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("tls") / "cert.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_over_tls_pages_are_fetched_and_dripped_headers_time_out(
    serve: Callable[..., RawServer], certificate: Path
) -> None:
    """The guarded connection under TLS: verified as usual, and the watchdog's shutdown
    ends a read blocked inside the TLS layer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)

    def handler(conn: socket.socket, path: str) -> None:
        if path == "/doc":
            page(conn)
        else:
            server.drip(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ", every=0.2)

    server = serve(handler, tls=context)
    fetcher = Fetcher(FetchSettings(timeout=2, retries=0, **QUIET))
    fetcher.session.verify = str(certificate)
    assert fetcher.fetch(source(server.url("/doc"))).body == PAGE
    started = time.monotonic()
    error = fetcher.fetch_one(source(server.url("/drip")))
    assert isinstance(error, FetchError) and error.kind == "timeout", error
    assert time.monotonic() - started < 3.5


def test_a_name_is_resolved_once_and_its_judged_address_is_the_one_connected(
    serve: Callable[..., RawServer],
) -> None:
    """No second lookup between the check and the connection (DNS rebinding): a name only
    the fetcher's resolver knows reaches the address that resolver gave, once."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[tuple[object, ...]]:
        asked.append(host)
        if host == "alias.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)

    server = serve(lambda conn, path: page(conn))
    url = f"http://alias.test:{server.port}/doc"
    result = Fetcher(FetchSettings(timeout=5, retries=0, **QUIET), resolve=resolve).fetch(
        source(url)
    )
    assert result.body == PAGE and asked == ["alias.test"]


# --- the reason phrase is a server's words: printed escaped ---------------------------------

HOSTILE_REASON = b"Not Found \x1b]0;pwned\x07\r\x1b[2K\x9bnew terms " + b"A" * 500


def test_a_reason_phrase_never_brings_control_characters_to_any_output(
    serve: Callable[..., RawServer], workdir: Path
) -> None:
    def handler(conn: socket.socket, path: str) -> None:
        conn.sendall(b"HTTP/1.1 404 " + HOSTILE_REASON + b"\r\nContent-Length: 0\r\n\r\n")

    server = serve(handler)
    error, _ = fetch_error(FetchSettings(timeout=5, retries=0, **QUIET), source(server.url("/")))
    assert error.status == 404
    assert "\\x1b]0;pwned\\x07\\r\\x1b[2K\\x9bnew terms" in str(error)
    assert len(str(error)) < 200  # the reason is cut short
    write_config(workdir, [document_entry("hostile", server.url("/"), browser_fallback=False)])
    for args in (("run", "--no-quiet"), ("run", "--json"), ("status",), ("status", "--json")):
        output = invoke(*args).output
        assert "404" in output, (args, output)
        assert not any(ch in output for ch in "\x1b\x07\r\x9b"), (args, output)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("bell\x07", "bell\\x07"),
        ("csi\x9b", "csi\\x9b"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("plain words", "plain words"),
    ],
)
def test_printable_escapes_what_a_terminal_would_obey(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable("x" * 1000, 50) == "x" * 47 + "..."


def test_the_measurement_script_runs_the_code_under_test() -> None:
    """The subprocess above must import this worktree's tracker, not an installed one."""
    done = subprocess.run(
        [sys.executable, "-c", "import tracker, sys; print(tracker.__file__)"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert done.stdout.strip().startswith(str(ROOT)), textwrap.shorten(done.stdout, 200)


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open for the next request

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


def test_a_kept_alive_connection_is_judged_again_for_another_document() -> None:
    """A connection opened for a loopback document and kept in the pool is not reused by
    a fetch whose own host is public: its peer address is judged before each request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/doc"
        fetcher = Fetcher(FetchSettings(timeout=5, retries=0, **QUIET))
        assert fetcher.fetch(source(url)).body == PAGE  # the connection stays in the pool

        def public(host: str, port: int) -> list[tuple[object, ...]]:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

        with (
            transport.attempt("http://public.test/", 5, public),
            pytest.raises(FetchError, match="loopback address") as refused,
        ):
            fetcher.session.get(url, timeout=5, allow_redirects=False)
        assert refused.value.kind == "blocked_destination"
    finally:
        server.shutdown()
        server.server_close()
