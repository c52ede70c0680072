"""SMTP transport: hand a finished message to the configured server, or say why not.

Kept apart from building the digest (as urlwatch keeps `mailer.py` apart from its
reporters), so the message can also go to a file or the terminal. The password is
read from the environment only, never from `tracker.toml`, which tends to be
committed next to the snapshots.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from email.message import EmailMessage

from tracker.config.settings import SmtpSettings
from tracker.core.errors import ConfigError, TrackerError

log = logging.getLogger("tracker.mail")  # the name log lines have always shown

PASSWORD_VARIABLE = "TOS_TRACKER_SMTP_PASSWORD"


class SendError(TrackerError):
    """The mail server could not be reached, or refused the message; nothing was sent."""


def password(settings: SmtpSettings) -> str | None:
    """The password for `settings.username`, from the environment; None without a username."""
    if not settings.username:
        return None
    value = os.environ.get(PASSWORD_VARIABLE)
    if not value:
        raise ConfigError(
            f"[smtp] username is {settings.username!r} but {PASSWORD_VARIABLE} is not set;"
            " export the password in that variable (it is never read from tracker.toml)"
        )
    return value


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verify the server's certificate and name, against `ca_file` when one is configured."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def send(message: EmailMessage, settings: SmtpSettings) -> dict[str, tuple[int, bytes]]:
    """Send `message`; return the recipients the server refused (when it accepted others).

    Raises `SendError` naming the server and its reply when nothing was accepted:
    connection refused or timed out, TLS or login failed, sender or every recipient
    refused, or the message itself refused after DATA.
    """
    secret = password(settings)
    where = f"{settings.host}:{settings.port}"
    if secret is not None and settings.security == "none" and not settings.allow_plaintext_password:
        # The configuration refuses this already; settings built in code are held to it too.
        raise ConfigError(
            f'[smtp] security = "none" would send the password to {where} unencrypted;'
            " use starttls or tls, or set allow_plaintext_password = true"
        )
    try:
        context = tls_context(settings) if settings.security != "none" else None
        smtp: smtplib.SMTP
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            if settings.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username and secret is not None:
                smtp.login(settings.username, secret)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        replies = "; ".join(f"{r}: {_reply(c, m)}" for r, (c, m) in exc.recipients.items())
        raise SendError(f"mail server {where} refused every recipient ({replies})") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"mail server {where} refused the login as {settings.username!r}:"
            f" {_reply(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(f"mail server {where} does not support that: {exc}") from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(
            f"mail server {where} refused the message: {_reply(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPException as exc:
        raise SendError(f"mail server {where} failed: {exc}") from None
    except ssl.SSLError as exc:
        raise SendError(f"TLS with mail server {where} failed: {exc}") from None
    except OSError as exc:  # refused, unreachable, timed out, name not found
        raise SendError(f"cannot reach mail server {where}: {exc}") from None
    for recipient, (code, text) in refused.items():
        log.warning("mail server %s refused %s: %s", where, recipient, _reply(code, text))
    return refused


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()
