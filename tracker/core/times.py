"""Time formats, declared once: ISO 8601 in UTC with a Z (printed and stored), file stems
(20240502T120000Z), and durations ('90m', '24h', '2d') as written in tracker.toml."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tracker.core.bounds import DAY, MAX_DURATION_DAYS
from tracker.core.errors import ConfigError

STEM_FORMAT = "%Y%m%dT%H%M%SZ"
STEM_LENGTH = len("20240502T120000Z")


def stem_for(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STEM_FORMAT)


def parse_stem(stem: str) -> datetime:
    return datetime.strptime(stem, STEM_FORMAT).replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second: the one time format we print and store."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float, where: str = "duration") -> timedelta:
    """'90m', '24h', '2d', '1w' or a number of seconds."""
    if isinstance(text, bool):
        raise ConfigError(f"{where} must be a duration such as '24h', got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ConfigError(
                f"{where} must be a duration such as '90m', '24h' or '2d', got {text!r}"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    # inf, nan and '99999999999999999d' made timedelta raise OverflowError: a traceback.
    if not 0 <= seconds <= MAX_DURATION_DAYS * DAY:
        raise ConfigError(
            f"{where} must be a duration from 0 to {MAX_DURATION_DAYS}d, got {text!r}"
        )
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """A duration as `parse_duration` reads it back: '2d', '24h', '1d 6h', '90s'; what a
    user wrote in tracker.toml, not timedelta's '2 days, 0:00:00'."""
    seconds = round(span.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)
