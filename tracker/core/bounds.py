"""The range every number in `tracker.toml` must fall in, in one table.

TOML has `inf` and `nan`, and a typo can add three zeros: `timeout = inf` made a
run wait forever, `host_delay = nan` disabled the spacing between requests, and
`workers = 100000000` tried to start a hundred million threads. Each number is
checked against its row here (the README's Configuration section lists the same
rows), so a value outside it is a configuration error naming the key, not a hang.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tracker.core.errors import ConfigError

DAY = 86_400.0
# Durations ([status] max_failing, max_stale, and the same options of `status`): ten
# years is longer than any sensible alert, and far inside what a timedelta can hold.
MAX_DURATION_DAYS = 3650


@dataclass(frozen=True)
class Bound:
    """The values one numeric key accepts: finite, from `low` to `high`, maybe whole."""

    low: float
    high: float
    integer: bool = False
    above: bool = False  # strictly more than `low` (a timeout of 0 would never wait)
    unit: str = ""

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low = f"> {_plain(self.low)}" if self.above else f">= {_plain(self.low)}"
        unit = f" ({self.unit})" if self.unit else ""
        return f"{kind} {low} and <= {_plain(self.high)}{unit}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value) or value > self.high:
            return False
        return value > self.low if self.above else value >= self.low


# section.key -> its range. `document.*` are a [[documents]] entry's own keys. Durations
# are bounded by MAX_DURATION_DAYS in `times.parse_duration`, which the CLI shares.
BOUNDS: dict[str, Bound] = {
    "fetch.timeout": Bound(0, 3600, above=True, unit="seconds"),
    "fetch.retries": Bound(0, 20, integer=True),
    "fetch.backoff": Bound(0, 600, unit="seconds"),
    "fetch.max_retry_after": Bound(0, DAY, unit="seconds"),
    "fetch.workers": Bound(1, 256, integer=True),
    "fetch.per_host": Bound(1, 64, integer=True),
    "fetch.max_bytes": Bound(1, 1024**3, integer=True, unit="bytes"),
    "fetch.host_delay": Bound(0, 3600, unit="seconds"),
    "fetch.min_chars": Bound(0, 10_000_000, integer=True),
    "fetch.max_shrink": Bound(0, 1, unit="a share: 0.5 is half"),
    "fetch.confirm_shrink": Bound(1, 100, integer=True),
    "document.min_chars": Bound(0, 10_000_000, integer=True),
    "document.max_shrink": Bound(0, 1, unit="a share: 0.5 is half"),
    "noise.flip_window": Bound(0, 1000, integer=True, unit="0 or 1: no flip detection"),
    "smtp.port": Bound(1, 65535, integer=True),
    "smtp.timeout": Bound(1, 3600, unit="seconds"),
}


def check_number(value: Any, key: str, where: str) -> Any:
    """`value` if it is within `key`'s row of BOUNDS (as a float unless whole), else a
    ConfigError naming `where` (the file and key), the range and the value."""
    bound = BOUNDS[key]
    if not bound.accepts(value):
        raise ConfigError(f"{where} must be {bound.describe()}, got {value!r}")
    return value if bound.integer else float(value)


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
