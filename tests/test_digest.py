"""Email digests over a real SMTP server on 127.0.0.1 (aiosmtpd): content, exactly once, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import ipaddress
import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import Clock, document_entry, invoke, toml_value, write_config
from pytest_httpserver import HTTPServer

from tracker.app.importer import import_items
from tracker.app.pipeline import Tracker, run
from tracker.cli import cli
from tracker.config.settings import DigestSettings, load_config
from tracker.ops.demo import DEMO_DOCUMENTS, _import_item, bundled_captures
from tracker.publish.digest import Ledger, new_ledger, pending, run_digests

POLICE = "by or for a police department in the United States"
AZURE = document_entry(
    "azure-openai/code-of-conduct",
    "http://placeholder/",
    select=["main .content"],
    remove=["nav", "form", "button", ".feedback"],
)
AZURE_PAGE = (
    "https://terms.example.org/documents/azure-openai/code-of-conduct/changes/20240518T120000Z.html"
)
PASSWORD = "correct horse battery staple"


# --- a real SMTP server ----------------------------------------------------------------------


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts, or refuses with a set reply."""

    received: list[Any] = field(default_factory=list)
    refuse_rcpt: str | None = None
    refuse_data: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse_data:
            return self.refuse_data
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.content, policy=email.policy.default) for e in self.received
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start aiosmtpd on 127.0.0.1 with the given options; stopped after the test."""
    started: list[Controller] = []

    def start(inbox: Inbox, **options: Any) -> int:
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


def password_check(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"tracker",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


# --- a store with the Azure reconstruction ----------------------------------------------------


def track(httpserver: HTTPServer, folder: Path, clock: Clock, pages: dict[str, list[bytes]]):
    """Serve each document's bodies in turn, one pipeline run per step, 17 days apart."""
    documents = []
    for doc_id in pages:
        path = "/" + doc_id
        entry = AZURE if doc_id == AZURE["id"] else document_entry(doc_id, "http://placeholder/")
        documents.append({**entry, "url": httpserver.url_for(path)})
    config_path = write_config(folder, documents)
    steps = max(len(b) for b in pages.values())
    with Tracker.open(load_config(config_path)) as tracker:
        for step in range(steps):
            only = [d for d, bodies in pages.items() if step < len(bodies)]
            for doc_id in only:
                httpserver.expect_oneshot_request("/" + doc_id).respond_with_data(
                    pages[doc_id][step], content_type="text/html; charset=utf-8"
                )
            summary = run(tracker, only=only, clock=clock)
            assert summary.failed == 0, summary.outcomes
            clock.advance(days=17)
    return config_path


def configure(folder: Path, *, smtp: dict[str, Any] | None = None, site: bool = True, **digest):
    """Append [site], [smtp] and one [[digests]] table to the tracker.toml in `folder`."""
    lines = [""]
    if site:
        lines += ["[site]", 'site_url = "https://terms.example.org"', ""]
    if smtp is not None:
        smtp = {
            "host": "127.0.0.1",
            "security": "none",
            "sender": "tos-tracker <tracker@example.org>",
            **smtp,
        }
        smtp.setdefault("timeout", 5)
        lines += ["[smtp]"] + [f"{k} = {toml_value(v)}" for k, v in smtp.items()] + [""]
    digest = {"id": "daily", "to": ["reader@example.org"], **digest}
    lines += ["[[digests]]"] + [f"{k} = {toml_value(v)}" for k, v in digest.items()]
    path = folder / "tracker.toml"
    path.write_text(path.read_text() + "\n".join(lines) + "\n")


@pytest.fixture
def azure(httpserver: HTTPServer, workdir: Path, clock: Clock, bundled) -> Path:
    """A working directory whose store holds the May 2024 Azure change (1 May → 18 May)."""
    track(httpserver, workdir, clock, {AZURE["id"]: bundled[AZURE["id"]]})
    return workdir


def ledger(folder: Path, digest_id: str = "daily") -> dict[str, Any] | None:
    path = folder / "snapshots" / "_digests" / f"{digest_id}.json"
    return json.loads(path.read_text()) if path.exists() else None


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def words(html: str) -> str:
    return " ".join(BeautifulSoup(html, "lxml").get_text(" ").split())


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TOS_TRACKER_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the digest of the Azure change, sent and received ----------------------------------------


def test_azure_digest_arrives_with_both_parts_and_the_police_clause(
    azure: Path, smtp_server
) -> None:
    inbox = Inbox()
    port = smtp_server(inbox)
    configure(azure, smtp={"port": port}, topics=["law-enforcement"])
    result = invoke("digest", "--all")
    assert result.exit_code == 0, result.output
    assert result.output == "daily: sent 1 change to reader@example.org\n"

    (envelope,) = inbox.received
    assert envelope.mail_from == "tracker@example.org"
    assert envelope.rcpt_tos == ["reader@example.org"]
    (message,) = inbox.messages()
    assert message["Subject"] == (
        "tos-tracker daily digest: 1 policy change, 1 flagged:"
        " law enforcement, facial recognition and biometric identification"
    )
    assert message["From"] == "tos-tracker <tracker@example.org>"
    assert message["To"] == "reader@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[^@>]+@example\.org>", message["Message-ID"])
    text, html = parts(message)

    # Plain text: the flag, the clause with its words, both dates, the link, the source.
    assert "FLAGGED: law enforcement, facial recognition and biometric identification" in text
    assert POLICE in " ".join(text.split())
    assert "[-, including, for example, use by state or local police in the United States-]" in (
        " ".join(text.split())
    )
    assert "From 2024-05-01T12:00:00Z (1 May 2024, 12:00 UTC)" in text
    assert "to   2024-05-18T12:00:00Z (18 May 2024, 12:00 UTC)" in text
    assert f"Read the change: {AZURE_PAGE}" in text
    assert "&" not in text.replace("& ", "")  # not HTML-escaped

    # HTML: the same, inline styles only, nothing that runs or loads.
    soup = BeautifulSoup(html, "lxml")
    assert POLICE in words(html)
    assert [a["href"] for a in soup.find_all("a") if a.get_text() == "Read the change"] == [
        AZURE_PAGE
    ]
    deleted = " ".join(d.get_text() for d in soup.find_all("del"))
    assert "use by state or local police in the United States" in deleted
    assert all(d.get_text().startswith("−") for d in soup.find_all("del"))
    assert [t["datetime"] for t in soup.find_all("time")] == [
        "2024-05-01T12:00:00Z",
        "2024-05-18T12:00:00Z",
    ]
    assert not soup.find_all(["script", "style", "img", "link", "iframe"])

    # The ledger records the change, when and in which message.
    (entry,) = ledger(azure)["sent"]
    assert entry["document"] == "azure-openai/code-of-conduct"
    assert entry["to_captured_at"] == "2024-05-18T12:00:00Z"
    assert entry["message_id"] == message["Message-ID"]


def test_digest_of_the_demo_history_reads_well_and_is_kept_as_samples(
    workdir: Path, smtp_server, tmp_path: Path
) -> None:
    """The Azure police clause and OpenAI's "Military and warfare", at their real dates.

    Writes digest-sample.txt, .html and .eml (as received) to $TOS_TRACKER_ARTIFACTS
    (default: a temporary folder); docs/samples/ holds a copy made this way.
    """
    wanted = {"azure-openai/code-of-conduct": 2, "openai/usage-policies": 2}
    captures = [c for c in bundled_captures() if c.document in wanted]
    captures = [
        c
        for c in captures
        if sum(1 for o in captures if o.document == c.document and o.captured_at <= c.captured_at)
        <= wanted[c.document]
    ]
    documents = []
    for doc_id, spec in DEMO_DOCUMENTS.items():
        url = next(c.origin["original_url"] for c in captures if c.document == doc_id)
        documents.append({"id": doc_id, **spec, "url": url})
    write_config(workdir, documents)
    inbox = Inbox()
    configure(workdir, smtp={"port": smtp_server(inbox)})
    with Tracker.open(load_config(workdir / "tracker.toml")) as tracker:
        for doc_id in wanted:
            items = [_import_item(c) for c in captures if c.document == doc_id]
            assert import_items(tracker, doc_id, items).added == 2
    assert invoke("digest", "--all").exit_code == 0
    (envelope,) = inbox.received
    (message,) = inbox.messages()
    assert message["Subject"] == (
        "tos-tracker daily digest: 2 policy changes, 2 flagged: law enforcement,"
        " facial recognition and biometric identification, children and minors, …"
    )
    text, html = parts(message)
    flat = " ".join(text.split())
    # Newest first: Azure (May 2024), then OpenAI (January 2024).
    assert (
        flat.index(POLICE)
        < flat.index("military and weapons: removed")
        < flat.index("Military and warfare")
    )
    assert "From 2024-01-10T12:30:38Z" in text and "to   2024-01-10T18:30:37Z" in text
    assert "Military and warfare" in words(html) and POLICE in words(html)
    assert "… and 16 more flagged clauses on the change page." in text

    out = artifacts(tmp_path)
    (out / "digest-sample.txt").write_text(text)
    (out / "digest-sample.html").write_text(html)
    (out / "digest-sample.eml").write_bytes(envelope.content)


def test_a_second_run_sends_nothing(azure: Path, smtp_server) -> None:
    inbox = Inbox()
    configure(azure, smtp={"port": smtp_server(inbox)})
    assert invoke("digest", "--all").exit_code == 0
    assert len(inbox.received) == 1
    before = ledger(azure)
    result = invoke("digest")
    assert result.exit_code == 0 and result.output == ""  # quiet when not on a terminal
    assert invoke("digest", "--all").exit_code == 0
    assert len(inbox.received) == 1
    assert ledger(azure) == before


@pytest.mark.parametrize(
    ("stage", "reply", "message"),
    [
        ("refuse_data", "550 5.7.1 Message rejected as spam", "refused the message: 550 5.7.1"),
        ("refuse_rcpt", "550 5.1.1 No such user", "refused every recipient"),
    ],
)
def test_a_refusing_server_marks_nothing_and_the_next_run_sends_it_all(
    azure: Path, smtp_server, stage: str, reply: str, message: str
) -> None:
    inbox = Inbox(**{stage: reply})
    port = smtp_server(inbox)
    configure(azure, smtp={"port": port})
    result = CliRunner().invoke(cli, ["digest", "--all"])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.output and message in result.output
    assert reply.split(" ", 1)[1] in result.output
    assert "nothing marked sent" in result.output
    assert inbox.received == [] and ledger(azure)["sent"] == []

    setattr(inbox, stage, None)  # the server accepts mail again
    result = invoke("digest")  # the same change, without --all: the first run fixed the window
    assert result.exit_code == 0, result.output
    (received,) = inbox.messages()
    assert POLICE in " ".join(parts(received)[0].split())
    assert len(ledger(azure)["sent"]) == 1


def test_a_server_that_is_down_is_a_clear_error(azure: Path) -> None:
    port = free_port()  # nothing listens here
    configure(azure, smtp={"port": port})
    result = CliRunner().invoke(cli, ["digest", "--all"])
    assert result.exit_code == 1
    assert f"Error: daily: cannot reach mail server 127.0.0.1:{port}" in result.output
    assert ledger(azure)["sent"] == []


def test_login_uses_the_password_from_the_environment_only(
    azure: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox()
    port = smtp_server(inbox, authenticator=password_check, auth_require_tls=False)
    # A plain connection to 127.0.0.1: the password may cross it only because this says so.
    configure(azure, smtp={"port": port, "username": "tracker", "allow_plaintext_password": True})

    monkeypatch.delenv("TOS_TRACKER_SMTP_PASSWORD", raising=False)
    result = CliRunner().invoke(cli, ["digest", "--all"])
    assert result.exit_code == 2
    assert "TOS_TRACKER_SMTP_PASSWORD is not set" in result.output

    monkeypatch.setenv("TOS_TRACKER_SMTP_PASSWORD", "wrong")
    result = CliRunner().invoke(cli, ["digest", "--all"])
    assert result.exit_code == 1
    assert f"mail server 127.0.0.1:{port} refused the login as 'tracker': 535" in result.output
    assert inbox.received == [] and ledger(azure)["sent"] == []

    monkeypatch.setenv("TOS_TRACKER_SMTP_PASSWORD", PASSWORD)
    assert invoke("digest", "--all").exit_code == 0
    assert len(inbox.received) == 1


def make_certificates(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A test CA and a server certificate for 127.0.0.1 it signed; the server's context."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("tos-tracker test CA"))
        .issuer_name(name("tos-tracker test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = folder / "test-ca.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return ca_file, context


def test_starttls_verifies_the_server_against_the_configured_ca(
    azure: Path, smtp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, context = make_certificates(tmp_path)
    inbox = Inbox()
    port = smtp_server(
        inbox,
        tls_context=context,
        require_starttls=True,
        authenticator=password_check,
        auth_require_tls=True,  # AUTH is only offered after STARTTLS
    )
    monkeypatch.setenv("TOS_TRACKER_SMTP_PASSWORD", PASSWORD)
    text = (azure / "tracker.toml").read_text()

    # Without the CA, the self-signed server is not trusted: nothing sent, nothing marked.
    configure(azure, smtp={"port": port, "security": "starttls", "username": "tracker"})
    result = CliRunner().invoke(cli, ["digest", "--all"])
    assert result.exit_code == 1
    assert f"TLS with mail server 127.0.0.1:{port} failed" in result.output
    assert "CERTIFICATE_VERIFY_FAILED" in result.output
    assert inbox.received == []

    (azure / "tracker.toml").write_text(text)
    smtp = {"port": port, "security": "starttls", "username": "tracker", "ca_file": str(ca_file)}
    configure(azure, smtp=smtp)
    result = invoke("digest")
    assert result.exit_code == 0, result.output
    (message,) = inbox.messages()
    assert POLICE in " ".join(parts(message)[0].split())


# --- which changes go into a digest -------------------------------------------------------------

BASE = "<main><h2>Rules</h2><p>Be kind to others.</p>{}<p>Updated: {}</p></main>"


def page(extra: str, updated: str = "1 May 2024") -> bytes:
    return BASE.format(extra, updated).encode()


@pytest.fixture
def three(httpserver: HTTPServer, workdir: Path, clock: Clock) -> Path:
    """acme/police: a flagged change; acme/kind: an unflagged one; acme/date: cosmetic only."""
    track(
        httpserver,
        workdir,
        clock,
        {
            "acme/police": [page(""), page("<p>Never sell it to the police.</p>")],
            "acme/kind": [page(""), page("<p>Report abuse to us.</p>")],
            "acme/date": [page(""), page("", updated="18 May 2024")],
        },
    )
    return workdir


def chosen(folder: Path, **settings: Any) -> list[str]:
    digest = DigestSettings("d", ("r@example.org",), **settings)
    with Tracker.open(load_config(folder / "tracker.toml")) as tracker:
        ledger = new_ledger(digest, dt.datetime.now(dt.UTC), include_all=True)
        return [c.document for c in pending(tracker, digest, ledger)]


def test_filters_by_topic_document_and_cosmetic(three: Path) -> None:
    assert chosen(three) == ["acme/police", "acme/kind"]  # flagged first; no cosmetic
    assert chosen(three, cosmetic=True) == ["acme/police", "acme/kind", "acme/date"]
    assert chosen(three, topics=("law-enforcement",)) == ["acme/police"]
    assert chosen(three, topics=("military",)) == []
    assert chosen(three, documents=("acme/kind", "acme/date")) == ["acme/kind"]


def test_first_run_covers_one_period_and_fixes_it_in_the_ledger(three: Path) -> None:
    # The changes were recorded on 18 May 2024 at 12:00.
    config = load_config(three / "tracker.toml")
    sent: list[EmailMessage] = []
    later = dt.datetime(2024, 5, 21, 7, tzinfo=dt.UTC)
    for period, expected in (("daily", 0), ("weekly", 2)):
        digest = DigestSettings(period, ("r@example.org",), period)
        with Tracker.open(config) as tracker:
            tracker.config = dataclasses.replace(config, digests=(digest,))
            (outcome,) = run_digests(tracker, now=later, send=sent.append)
        assert (outcome.status, len(outcome.changes)) == (
            ("nothing", 0) if expected == 0 else ("sent", expected)
        )
        window = {"daily": "2024-05-20T07:00:00Z", "weekly": "2024-05-14T07:00:00Z"}[period]
        assert ledger(three, period)["window_start"] == window
    assert [m["Subject"] for m in sent] == [
        "tos-tracker weekly digest: 2 policy changes, 1 flagged: law enforcement"
    ]
    text = sent[0].get_body(("plain",)).get_content()
    assert "First weekly digest: 2 changes recorded since 14 May 2024, 07:00 UTC." in text


def test_a_crash_between_sending_and_recording_sends_a_duplicate_not_nothing(
    three: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracker.publish.digest as digest_module

    config = load_config(three / "tracker.toml")
    digest = DigestSettings("d", ("r@example.org",), "daily")
    config = dataclasses.replace(config, digests=(digest,))
    sent: list[EmailMessage] = []
    real_save = digest_module.save_ledger

    def crash_after_send(tracker: Tracker, ledger: Ledger) -> None:
        if ledger.sent:
            raise KeyboardInterrupt  # the process dies after the server took the message
        real_save(tracker, ledger)

    monkeypatch.setattr(digest_module, "save_ledger", crash_after_send)
    with Tracker.open(config) as tracker, pytest.raises(KeyboardInterrupt):
        run_digests(tracker, include_all=True, send=sent.append)
    monkeypatch.setattr(digest_module, "save_ledger", real_save)
    with Tracker.open(config) as tracker:
        (outcome,) = run_digests(tracker, send=sent.append)
        assert outcome.status == "sent"
        (again,) = run_digests(tracker, send=sent.append)
        assert again.status == "nothing"
    assert len(sent) == 2 and sent[0]["Subject"] == sent[1]["Subject"]


# --- untrusted text -----------------------------------------------------------------------------


def test_page_text_is_escaped_in_html_and_verbatim_in_text(
    httpserver: HTTPServer, workdir: Path, clock: Clock
) -> None:
    hostile = (
        "<p>Police may not use &lt;script&gt;alert(1)&lt;/script&gt; or"
        ' &lt;img src=x onerror="alert(2)"&gt; here.</p>'
    )
    track(httpserver, workdir, clock, {"evil/page": [page(""), page(hostile)]})
    configure(workdir)
    result = invoke("digest", "--all", "--outbox", "mail")
    assert result.exit_code == 0, result.output
    (eml,) = (workdir / "mail").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text, html = parts(message)
    assert '<script>alert(1)</script> or <img src=x onerror="alert(2)">' in " ".join(text.split())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"<\s*(script|img)", html, re.IGNORECASE)
    assert "onerror=" not in html.replace("onerror=&#34;", "")  # only as escaped text
    soup = BeautifulSoup(html, "lxml")
    assert not soup.find_all(["script", "img"])
    assert '<img src=x onerror="alert(2)">' in soup.get_text()


# --- not sending: --outbox and --dry-run ---------------------------------------------------------


def test_outbox_writes_eml_files_and_marks_nothing(azure: Path) -> None:
    configure(azure)  # no [smtp]: files and the terminal need none
    result = invoke("digest", "--all", "--outbox", "mail")
    assert result.exit_code == 0, result.output
    (eml,) = (azure / "mail").glob("daily-*.eml")
    assert re.fullmatch(r"daily-\d{8}T\d{6}Z\.eml", eml.name)
    assert f"daily: wrote {Path('mail', eml.name)} (1 change, not marked sent)" in result.output
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text, html = parts(message)
    assert POLICE in " ".join(text.split()) and POLICE in words(html)
    assert ledger(azure) is None
    # Not marked: the next call files it again.
    assert invoke("digest", "--all", "--outbox", "mail").exit_code == 0
    assert len(list((azure / "mail").glob("daily-*.eml"))) == 2


def test_dry_run_prints_recipients_and_text_and_marks_nothing(azure: Path) -> None:
    configure(azure, to=["reader@example.org", "desk@example.org"])
    result = invoke("digest", "--all", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "To: reader@example.org, desk@example.org\nSubject: tos-tracker daily digest: 1 policy"
    )
    assert POLICE in " ".join(result.output.split())
    assert "(daily: dry run, 1 change not marked sent)" in result.output
    assert ledger(azure) is None
    as_json = json.loads(invoke("digest", "--all", "--dry-run", "--json").output)
    assert [(d["digest"], d["status"], len(d["changes"])) for d in as_json] == [
        ("daily", "dry-run", 1)
    ]


def test_links_fall_back_to_store_paths_without_a_site_url(azure: Path) -> None:
    configure(azure, site=False)
    output = invoke("digest", "--all", "--dry-run").output
    assert "https://" not in output.split("Source:")[0]
    assert f"{azure / 'snapshots' / 'azure-openai' / 'code-of-conduct'}" in output


# --- configuration errors -------------------------------------------------------------------------


def test_sending_without_smtp_is_a_configuration_error(azure: Path) -> None:
    configure(azure)
    result = CliRunner().invoke(cli, ["digest"])
    assert result.exit_code == 2
    assert "no [smtp] table" in result.output and "--dry-run or --outbox" in result.output
    assert ledger(azure) is None


@pytest.mark.parametrize(
    ("args", "edit", "message"),
    [
        (["digest", "--id", "weekly"], {}, "unknown digest 'weekly'; configured: daily"),
        (["digest", "--dry-run"], {"topics": ["police"]}, "key 'topics': unknown topic 'police'"),
        (["digest", "--dry-run"], {"smtp": {"security": "ssl"}}, "key 'security' must be one of"),
        (["digest", "--dry-run", "--outbox", "x"], {}, "give --dry-run or --outbox, not both"),
    ],
)
def test_configuration_and_usage_errors_exit_2(
    azure: Path, args: list[str], edit: dict[str, Any], message: str
) -> None:
    configure(azure, **edit)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_no_digests_configured_says_how_to_add_one(azure: Path) -> None:
    result = CliRunner().invoke(cli, ["digest", "--dry-run"])
    assert result.exit_code == 2
    assert "no digests configured: add a [[digests]] table" in result.output
