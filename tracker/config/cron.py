"""`tos-tracker schedule`: a long-running APScheduler 3 process with cron expressions.

Missed runs after downtime are coalesced into one, a job never overlaps itself,
and SIGTERM or Ctrl-C stops the process after the current document.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracker.core.errors import ConfigError

log = logging.getLogger("tracker.schedule")  # the name log lines have always shown

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class ScheduleSettings:
    """Cron expressions (5 fields, or 6 with seconds first); empty disables a job."""

    run: str = "0 */6 * * *"
    report: str = ""
    report_out: str = "report"
    site: str = ""  # rebuild the static site on its own schedule
    timezone: str = "UTC"


def cron_day_of_week(field: str) -> str:
    """A cron day-of-week field as APScheduler 3 reads it, with cron's meaning kept.

    Cron counts 0 (and 7) as Sunday; APScheduler counts 0 as Monday. Numbers, ranges,
    lists and steps are expanded to day names, which both agree on.
    """
    field = field.strip().lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if rng == "*":
            start, end = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _day(a), _day(b, top=True)
        else:
            start = _day(rng)
            end = 6 if step_text else start
        if end < start:  # a range such as fri-mon wraps over the week's end
            span = list(range(start, 7)) + list(range(0, end + 1))
        else:
            span = list(range(start, end + 1))
        days.update(d % 7 for d in span[::step])
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _day(text: str, top: bool = False) -> int:
    """A weekday number (0 Sunday … 6 Saturday); 7 is Sunday, and 7 at a range's top."""
    text = text.strip().lower()
    if text.isdigit() and 0 <= int(text) <= 7:
        return 7 if (int(text) == 7 and top) else int(text) % 7
    if text[:3] in DAY_NAMES:
        return DAY_NAMES.index(text[:3])
    raise ValueError(f"not a day of the week: {text!r}")


def parse_cron(expression: str, timezone: str = "UTC", where: str = "cron expression") -> Any:
    """A CronTrigger from a crontab line (5 fields, or 6 with seconds first)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ConfigError(
            f"{where}: {expression!r} must have 5 fields (minute hour day month weekday)"
            " or 6 (with seconds first)"
        )
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    if day not in ("*", "?") and weekday not in ("*", "?"):
        # cron fires when either matches; APScheduler only when both do. Refuse rather
        # than silently run far less often than the user expects.
        raise ConfigError(
            f"{where}: {expression!r} restricts both day of month and day of week, which"
            " cron reads as either; use two schedules or leave one of them '*'"
        )
    try:
        trigger = CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=cron_day_of_week(weekday),
            timezone=timezone,
        )
    except (ValueError, LookupError) as exc:
        raise ConfigError(
            f"{where}: {expression!r} is not a valid cron expression: {exc}"
        ) from None
    # '0 0 31 2 *' (31 February) is valid field by field and never fires: the job would
    # silently never run. APScheduler answers None when no time up to year 9999 matches.
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise ConfigError(
            f"{where}: {expression!r} never fires (no date matches its day and month);"
            " check the day of the month against the months"
        )
    return trigger


def serve(
    jobs: dict[str, tuple[str, Callable[[threading.Event], None]]],
    timezone: str,
    *,
    on_ready: Callable[[Any], None] | None = None,
) -> None:
    """Run `jobs` (name -> (cron, function)) until SIGTERM or Ctrl-C.

    Each function receives a stop event, set when the process is asked to stop; the
    pipeline checks it between documents, so a run ends after its current document.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    stop = threading.Event()
    scheduler = BlockingScheduler(
        timezone=timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
    )
    for name, (cron, function) in jobs.items():
        trigger = parse_cron(cron, timezone, where=f"[schedule] key '{name}'")
        scheduler.add_job(function, trigger, args=[stop], id=name, name=name)

    def request_stop(signum: int, frame: object) -> None:
        log.warning("received %s; stopping after the current document", signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if on_ready:
        on_ready(scheduler)
    scheduler.start()  # returns once shut down
    # Let a job that is still running finish its current document and record the run.
    executor = scheduler._lookup_executor("default")
    pool = getattr(executor, "_pool", None)
    if pool is not None:
        pool.shutdown(wait=True)
    log.info("scheduler stopped")
