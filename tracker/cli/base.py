"""What every command shares: the context (configuration loaded on first use), the group
that turns library errors into one line and an exit code, and small option types."""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tracker import __version__
from tracker.config import CONFIG_NAME
from tracker.core.errors import TrackerError, os_error_line
from tracker.core.statuses import CHANGED, FAILED, NEW, UNCHANGED

if TYPE_CHECKING:
    from tracker.app.outcomes import DocumentOutcome
    from tracker.app.pipeline import Tracker
    from tracker.config.settings import Config


log = logging.getLogger("tracker.cli")


STATUS_STYLE = {NEW: "cyan", CHANGED: "yellow", UNCHANGED: None, FAILED: "red"}


class Context:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from tracker.config.settings import load_config

            self._config = load_config(self.config_path)
        return self._config

    def tracker(self) -> Tracker:
        from tracker.app.pipeline import Tracker

        return Tracker.open(self.config)


pass_context = click.make_pass_decorator(Context)


class Seconds(click.FloatRange):
    """Seconds from 0 to a day: click's FloatRange lets `nan` and `inf` through (every
    comparison with nan is false), and `--wait nan` or `--delay inf` would never end."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, max=86_400)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds (0 to 86400)", param, ctx)
        return number


# Every command that takes the store's lock: wait for a run holding it, or exit 3.
wait_option = click.option(
    "--wait",
    type=Seconds(),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="If another run holds the store, wait this long for it before giving up (exit 3).",
)


class TrackerGroup(click.Group):
    """Turns library errors into one-line messages with the right exit code.

    OS errors too: a full or read-only disk under `site build`, `report` or `digest
    --outbox` ended in a traceback that cron mailed to someone who needed one line
    (`-vv` still logs the traceback). A damaged or full SQLite index likewise.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrackerError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # `documents | head`: the reader left; click exits 1 without a word
            log.debug("%s failed", self._doing(ctx), exc_info=True)
            click.echo(f"Error: {self._doing(ctx)}: {os_error_line(exc)}", err=True)
            ctx.exit(1)
        except sqlite3.DatabaseError as exc:
            log.debug("%s failed", self._doing(ctx), exc_info=True)
            text = str(exc)
            if "full" in text or "I/O" in text:
                hint = "is the disk full or failing? free some space and run again"
            elif "readonly" in text or "read-only" in text:
                hint = "its folder is read-only for this user"
            elif "locked" in text:
                hint = "another process holds it: run again"
            else:
                hint = "`tos-tracker reindex` rebuilds it from the store, setting it aside"
            click.echo(f"Error: {self._doing(ctx)}: the index: {text} ({hint})", err=True)
            ctx.exit(1)

    @staticmethod
    def _doing(ctx: click.Context) -> str:
        """The command that failed, such as `tos-tracker site build`."""
        return f"{ctx.command_path} {ctx.invoked_subcommand or ''}".strip()


@click.group(cls=TrackerGroup)
@click.version_option(__version__, prog_name="tos-tracker")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Configuration file (default: ./{CONFIG_NAME}, else the built-in default).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """Watch AI providers' terms and policies, and say what changed."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path)


class InOrder:
    """Outcomes arrive as documents finish; print them in the configuration's order,
    each as soon as every document before it is done (a few are in flight at once)."""

    def __init__(self, documents: list[str]) -> None:
        self.position = {doc: n for n, doc in enumerate(documents)}
        self.waiting: dict[int, DocumentOutcome] = {}
        self.next = 0

    def add(self, outcome: DocumentOutcome) -> list[DocumentOutcome]:
        self.waiting[self.position[outcome.document]] = outcome
        ready = []
        while self.next in self.waiting:
            ready.append(self.waiting.pop(self.next))
            self.next += 1
        return ready

    def rest(self) -> list[DocumentOutcome]:
        return [self.waiting.pop(n) for n in sorted(self.waiting)]


def outcome_line(outcome: DocumentOutcome) -> str:
    status = click.style(f"{outcome.status:<9}", fg=STATUS_STYLE.get(outcome.status))
    detail = ""
    if outcome.status == FAILED:
        detail = f"{outcome.error_kind}: {outcome.error}"
    elif outcome.change is not None:
        detail = outcome.change.summary
    elif outcome.status == NEW and outcome.version is not None:
        detail = f"first version, {outcome.version.bytes} bytes of text"
    elif outcome.http_status == 304:
        detail = "not modified (304)"
    elif outcome.note:
        detail = outcome.note
    return f"{status} {outcome.document}" + (f"  {detail}" if detail else "")


@contextlib.contextmanager
def _writing_into(folder: Path | None) -> Iterator[None]:
    """Name `folder` in an OS error that names no file: a write that fails for a full
    disk says only "No space left on device", and the reader needs to know where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and folder is not None:
            exc.filename = str(folder)
        raise


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does, so its `finally` blocks leave the index
    in line with the files (a service manager stopping an import mid-way)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding program): leave it be
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
