"""Errors the library raises; the CLI turns them into messages and exit codes."""

from __future__ import annotations

import errno
import re
from collections.abc import Collection, Mapping

from tracker.core import failures

# C0 and C1 controls (ESC, CR, BEL, CSI…), DEL, and the bidirectional overrides: what a
# server's words (a reason phrase, a header, an address) must never bring to a terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class TrackerError(Exception):
    """Base class: something the user can act on, with a message that says what."""

    exit_code = 1


class ConfigError(TrackerError):
    """The configuration file is missing, malformed or inconsistent."""

    exit_code = 2


class UnknownDocumentError(TrackerError):
    """A command named a document id that is not configured and has no history."""

    exit_code = 2


class VersionNotFoundError(TrackerError):
    """A date or hash given on the command line matches no stored version."""

    exit_code = 2


class FetchError(TrackerError):
    """A document could not be fetched; `kind` says which way it failed."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        """`kind` is one of `tracker.core.failures.KINDS`."""
        # Messages quote what servers said; they reach terminals, JSON, logs and HTML.
        super().__init__(printable(message, 4000))
        self.kind = kind
        self.status = status


class LockedError(TrackerError):
    """Another process is working on the same store."""

    exit_code = 3


class StoreError(TrackerError):
    """The snapshot store is unreadable, inconsistent or could not be written."""


def check_keys(table: Mapping[str, object], allowed: Collection[str], where: str) -> None:
    """Refuse keys a table does not know, naming the first and listing the allowed ones."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
        )


def connection_kind(exc: Exception) -> str:
    """`dns` when a host name did not resolve (by requests' and the resolver's words),
    else `connection`: the two ways "no network" reads for a fetch or a robots.txt."""
    text = str(exc)
    signs = ("NameResolutionError", "Name or service not known", "getaddrinfo")
    return failures.DNS if any(sign in text for sign in signs) else failures.CONNECTION


def short_error(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


def printable(text: str, limit: int = 300) -> str:
    """`text` safe to print: control characters shown escaped (`\\x1b`), at most
    `limit` characters. For words that come from a server, such as a reason phrase."""
    text = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What to do about an OS error a command cannot work around, by errno.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run again",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
    errno.EROFS: "choose a folder on a writable file system",
    errno.EACCES: "check the permissions of the file and its folder",
    errno.EPERM: "check the permissions of the file and its folder",
    errno.EFBIG: "the file is larger than this system allows",
    errno.ENAMETOOLONG: "the path is too long for this file system",
}
_WRITING = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def os_error_line(exc: OSError) -> str:
    """One line for an OS error that ends a command: the file when known, the system's
    reason, and what to do (a full disk says so, rather than ending in a traceback)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(exc.errno or 0)
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    where = " -> ".join(files)
    if where and exc.errno in _WRITING:  # a copy's source is fine: name the target
        text = f"could not write {files[-1]}: {reason}"
    elif where:
        text = f"{where}: {reason}"
    else:
        text = reason
    return f"{text} ({hint})" if hint else text


class ArgumentError(TrackerError):
    """A command-line value that cannot be used as given (a port already in use); said in
    one line with exit code 2, as click says an invalid option."""

    exit_code = 2
