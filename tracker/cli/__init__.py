"""The `tos-tracker` command: parses options, calls the library, reports.

Exit codes, for cron: 0 all documents fetched (changed or not), 1 at least one
document failed (the others are still recorded) or a file could not be written or
read (a full disk: one line, no traceback), 2 usage or configuration error, 3
another run holds the store's lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from tracker import __version__
from tracker.app.outcomes import DocumentOutcome
from tracker.app.pipeline import Tracker
from tracker.config.settings import CONFIG_NAME, Config, default_config_text, load_config
from tracker.core.errors import ArgumentError, TrackerError, os_error_line
from tracker.core.times import iso

log = logging.getLogger("tracker.cli")

STATUS_STYLE = {"new": "cyan", "changed": "yellow", "unchanged": None, "failed": "red"}


class Context:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def tracker(self) -> Tracker:
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


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing tracker.toml.")
def init(force: bool) -> None:
    """Write the default configuration to ./tracker.toml to edit."""
    target = Path(CONFIG_NAME)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    target.write_text(default_config_text(), encoding="utf-8")
    click.echo(f"Wrote {target}")


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


@cli.command()
@click.option("--only", "only", multiple=True, metavar="DOC", help="Fetch only this document.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option(
    "--quiet/--no-quiet",
    "-q/-Q",
    default=None,
    help="Print only failures (default when stdout is not a terminal, as under cron).",
)
@wait_option
@pass_context
def run(
    obj: Context, only: tuple[str, ...], as_json: bool, quiet: bool | None, wait: float
) -> None:
    """Fetch every configured document once and record what changed.

    Prints one line per document (new, changed, unchanged or failed) and a count;
    under cron (stdout not a terminal) only failures, unless --no-quiet. Exits 1
    when any document failed (the others are recorded all the same), and 3 when
    another run is using the same store.
    """
    from tracker.app.pipeline import run as run_pipeline
    from tracker.app.pipeline import run_record, select_sources

    terminal = sys.stdout.isatty()
    quiet = (not terminal) if quiet is None else quiet
    lines: list[DocumentOutcome] = []
    started = time.perf_counter()
    if obj.config.path is None and not quiet and not as_json:
        click.echo(
            f"No {CONFIG_NAME} here: using the built-in configuration"
            " (`tos-tracker init` writes it out to edit).",
            err=True,
        )
    chosen = [s.id for s in select_sources(obj.config, only or None)]
    total = len(chosen)
    bar = None
    if terminal and not quiet and not as_json:
        bar = click.progressbar(length=total, label="Checking", file=sys.stderr)
        bar.__enter__()

    in_order = InOrder(chosen)

    def show(outcome: DocumentOutcome) -> None:
        if bar is not None:
            bar.update(1)
            lines.append(outcome)
        elif not as_json:
            for done in in_order.add(outcome):
                echo(done)

    def echo(outcome: DocumentOutcome) -> None:
        if not quiet:
            click.echo(outcome_line(outcome))
        elif outcome.status == "failed":
            click.echo(outcome_line(outcome), err=True)

    built = None
    try:
        with obj.tracker() as tracker:
            summary = run_pipeline(tracker, only=only or None, progress=show, wait=wait)
            if obj.config.site.build_after_run:
                from tracker.publish.site import build_site

                built = build_site(tracker)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        # Held back behind a document that never finished (a stopped or failed run).
        for outcome in in_order.rest():
            echo(outcome)
    for outcome in sorted(lines, key=lambda o: in_order.position[o.document]):
        click.echo(outcome_line(outcome))
    if as_json:
        click.echo(json.dumps(run_record(summary), indent=2))
    elif not quiet:
        counts = ", ".join(
            f"{summary.count(s)} {s}" for s in ("new", "changed", "unchanged", "failed")
        )
        elapsed = time.perf_counter() - started
        click.echo(f"{len(summary.outcomes)} documents: {counts} ({elapsed:.1f} s)")
        if built is not None:
            click.echo(built.line())
    if summary.failed:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print runs and documents as JSON.")
@click.option(
    "--max-failing",
    metavar="DURATION",
    help="Alert when a document has failed for longer than this (default: [status] max_failing).",
)
@click.option(
    "--max-stale",
    metavar="DURATION",
    help="Alert when a configured document has not been checked for longer than this"
    " (default: [status] max_stale, 2d).",
)
@click.option("--runs", "run_count", default=5, show_default=True, help="How many runs to show.")
@pass_context
def status(
    obj: Context, as_json: bool, max_failing: str | None, max_stale: str | None, run_count: int
) -> None:
    """Show the last runs and every failing document since when, like a monitoring page.

    Exits 1 when a document has been failing for longer than max_failing (24h by
    default), or has not been checked for longer than max_stale (2d: the cron job
    stopped?), so cron or a monitor can alert; 0 otherwise.
    """
    from datetime import UTC, datetime

    from tracker.app.status import health
    from tracker.core.times import parse_duration

    limit = parse_duration(max_failing, "--max-failing") if max_failing else obj.config.max_failing
    stale = parse_duration(max_stale, "--max-stale") if max_stale else obj.config.max_stale
    now = datetime.now(UTC)
    with obj.tracker() as tracker:
        runs = tracker.index.recent_runs(run_count)
        documents = health(tracker, now, limit, stale)
    alerting = [d for d in documents if d.alert]
    if as_json:
        payload = {
            "checked_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_failing_seconds": int(limit.total_seconds()),
            "max_stale_seconds": int(stale.total_seconds()),
            "alert": bool(alerting),
            "runs": runs,
            "documents": [d.to_json() for d in documents],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo("Last runs:" if runs else "No runs recorded yet.")
        for r in runs:
            if r["ended_at"] is None:
                click.echo(f"  {r['started_at']}  not finished: still running, or killed")
                continue
            click.echo(
                f"  {r['started_at']}  {r['documents']} documents: {r['new']} new,"
                f" {r['changed']} changed, {r['unchanged']} unchanged, {r['failed']} failed"
            )
        click.echo("Documents:")
        for d in documents:
            if d.failing_since:
                state = click.style("FAILING", fg="red") if d.alert else "failing"
                kind = (d.last_error or {}).get("kind")
                message = (d.last_error or {}).get("message")
                detail = f"{state} since {d.failing_since} ({kind}: {message})"
            elif d.stale:
                state = click.style("STALE", fg="red")
                detail = f"{state}: not checked since {d.last_checked} (longer than {stale})"
            elif d.last_ok:
                detail = f"ok, last checked {d.last_checked}"
            else:
                detail = "never checked"
            click.echo(f"  {d.id:<36} {detail}")
        failing = [d.id for d in alerting if not d.stale]
        if failing:
            click.echo(
                f"{len(failing)} document(s) failing for longer than {limit}: "
                + ", ".join(failing),
                err=True,
            )
        late = [d.id for d in alerting if d.stale]
        if late:
            click.echo(
                f"{len(late)} document(s) not checked for longer than {stale}"
                " (is the cron job or scheduler still running?): " + ", ".join(late),
                err=True,
            )
    if alerting:
        sys.exit(1)


@cli.command()
@pass_context
def schedule(obj: Context) -> None:
    """Run the checks on a schedule until stopped (SIGTERM or Ctrl-C).

    Cron expressions come from [schedule] in tracker.toml (default: a run every 6
    hours). Missed runs are coalesced, a job never overlaps itself, and a stop
    request ends the current run after its current document.
    """
    import threading

    from tracker.app.pipeline import run as run_pipeline
    from tracker.config.cron import serve
    from tracker.publish.report import write_report
    from tracker.publish.site import build_site

    config = obj.config
    logging.getLogger("tracker").setLevel(logging.INFO)
    log = logging.getLogger("tracker.schedule")

    def run_job(stop: threading.Event) -> None:
        try:
            with Tracker.open(config) as tracker:
                summary = run_pipeline(tracker, stop=stop, wait=60)
        except TrackerError as exc:
            log.error("run skipped: %s", exc)
            return
        counts = ", ".join(
            f"{summary.count(s)} {s}" for s in ("new", "changed", "unchanged", "failed")
        )
        log.info("run %s: %d documents: %s", summary.id, len(summary.outcomes), counts)
        if config.site.build_after_run:
            site_job(stop)

    def digest_job(digest_id: str) -> Any:
        def send_digest(stop: threading.Event) -> None:
            from tracker.publish.digest import run_digests

            try:
                with Tracker.open(config) as tracker:
                    # A run may hold the store for a while; a digest can wait for it.
                    (outcome,) = run_digests(tracker, [digest_id], wait=600)
            except TrackerError as exc:
                log.error("digest %s skipped: %s", digest_id, exc)
                return
            if outcome.status == "failed":
                log.error("digest %s not sent (retried next time): %s", digest_id, outcome.error)
            else:
                count = len(outcome.changes)
                log.info("digest %s: %s, %d changes", digest_id, outcome.status, count)

        return send_digest

    def site_job(stop: threading.Event) -> None:
        try:
            with Tracker.open(config) as tracker:
                log.info("%s", build_site(tracker).line())
        except (TrackerError, OSError) as exc:
            log.error("site build failed: %s", exc)

    def report_job(stop: threading.Event) -> None:
        base = config.path.parent if config.path else Path.cwd()
        with Tracker.open(config) as tracker:
            index, pages = write_report(tracker, base / config.schedule.report_out)
        log.info("report: %d change pages in %s", len(pages), index.parent)

    jobs: dict[str, tuple[str, Any]] = {}
    if config.schedule.run.strip():
        jobs["run"] = (config.schedule.run, run_job)
    if config.schedule.report.strip():
        jobs["report"] = (config.schedule.report, report_job)
    if config.schedule.site.strip():
        jobs["site"] = (config.schedule.site, site_job)
    if config.digests and config.smtp is None:
        log.warning("digests are configured but [smtp] is not: no digest will be sent")
    elif config.digests:
        for settings in config.digests:
            jobs[f"digest:{settings.id}"] = (settings.cron, digest_job(settings.id))
    if not jobs:
        raise click.UsageError("nothing to schedule: [schedule] has no 'run', 'report' or 'site'")

    def ready(scheduler: Any) -> None:
        for job in scheduler.get_jobs():
            log.info("scheduled %s: %s", job.name, job.trigger)

    serve(jobs, config.schedule.timezone, on_ready=ready)


def outcome_line(outcome: DocumentOutcome) -> str:
    status = click.style(f"{outcome.status:<9}", fg=STATUS_STYLE.get(outcome.status))
    detail = ""
    if outcome.status == "failed":
        detail = f"{outcome.error_kind}: {outcome.error}"
    elif outcome.change is not None:
        detail = outcome.change.summary
    elif outcome.status == "new" and outcome.version is not None:
        detail = f"first version, {outcome.version.bytes} bytes of text"
    elif outcome.http_status == 304:
        detail = "not modified (304)"
    elif outcome.note:
        detail = outcome.note
    return f"{status} {outcome.document}" + (f"  {detail}" if detail else "")


@cli.command()
@click.argument("document")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON list.")
@pass_context
def history(obj: Context, document: str, as_json: bool) -> None:
    """List a document's versions, oldest first, with what each change did."""
    from tracker.app.history import version_json, versions

    with obj.tracker() as tracker:
        found = versions(tracker, document)
        changes = {c["to_captured_at"]: c for c in tracker.index.changes(document)}
    rows = [version_json(v, found[i - 1] if i else None) for i, v in enumerate(found)]
    if as_json:
        for row in rows:
            change = changes.get(row["captured_at"])
            row["added_words"] = change["added_words"] if change else None
            row["removed_words"] = change["removed_words"] if change else None
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{document}: no versions yet")
        return
    for number, row in enumerate(rows, start=1):
        change = changes.get(row["captured_at"])
        what = change["summary"] if change else "first version"
        click.echo(f"{number:>3}  {row['captured_at']}  {row['sha256'][:12]}  {what}")


@cli.command()
@click.argument("document")
@click.option(
    "--at", "at", metavar="DATE", help="The version current at DATE (YYYY-MM-DD or ISO time)."
)
@click.option("--version", "ref", metavar="REF", help="A version by sha256 prefix, number or time.")
@pass_context
def show(obj: Context, document: str, at: str | None, ref: str | None) -> None:
    """Print a document's extracted text as stored (default: the current version)."""
    from tracker.app.history import find_version

    with obj.tracker() as tracker:
        version = find_version(tracker, document, ref, at=at)
        click.echo(tracker.store.read_text(version), nl=False)


@cli.command()
@click.argument("document")
@click.option(
    "--from", "before", metavar="REF", help="Older version (sha256 prefix, number or time)."
)
@click.option("--to", "after", metavar="REF", help="Newer version (default: the latest).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the change as a JSON object (null if none)."
)
@click.option(
    "--color/--no-color", default=None, help="Colour the terminal diff (default: on a terminal)."
)
@pass_context
def diff(
    obj: Context,
    document: str,
    before: str | None,
    after: str | None,
    as_json: bool,
    color: bool | None,
) -> None:
    """Show the latest change of a document (or between two versions)."""
    from tracker.app.history import change_for, change_json
    from tracker.publish.report import terminal_diff

    with obj.tracker() as tracker:
        change = change_for(tracker, document, before=before, after=after)
        source = tracker.config.source(document)
    if as_json:
        payload = change_json(change, source.url if source else None) if change else None
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if change is None:
        click.echo(f"{document}: no change recorded yet")
        return
    use_color = sys.stdout.isatty() if color is None else color
    click.echo(terminal_diff(change, color=use_color), nl=False, color=use_color)


@cli.command()
@click.argument("document")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print the events as a JSON list.")
@pass_context
def blame(obj: Context, document: str, text: str, as_json: bool) -> None:
    """When a clause containing TEXT appeared, changed and disappeared.

    Matching ignores case, whitespace and emphasis. Each line gives the version's
    UTC time and the stored raw snapshot that proves it.
    """
    from tracker.app.history import blame as find_events

    with obj.tracker() as tracker:
        events = find_events(tracker, document, text)
        root = tracker.store.root
    if as_json:
        click.echo(json.dumps(events, indent=2, ensure_ascii=False))
        return
    if not events:
        click.echo(f"{document}: no stored version has a clause containing {text!r}")
        return
    for event in events:
        when, what = event["captured_at"], event["event"]
        if what == "disappeared":
            click.echo(f"{when}  disappeared (last present {event['last_present']})")
        else:
            if event["first_version"]:
                what = "present in the first stored version (it may be older)"
            click.echo(f"{when}  {what}")
        for clause in event["clauses"]:
            click.echo(f"    {'was' if what == 'disappeared' else 'now'}: {clause}")
        click.echo(f"    snapshot: {root / event['snapshot']}")


@cli.command(name="import")
@click.argument("document")
@click.argument(
    "path", required=False, type=click.Path(path_type=Path, exists=True, file_okay=False)
)
@click.option(
    "--git",
    "repo",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="A git repository whose commits of --path are the history.",
)
@click.option("--path", "git_path", metavar="FILE", help="The file inside the --git repository.")
@click.option(
    "--wayback",
    is_flag=True,
    help="Import captures of the document's URL from the Internet Archive.",
)
@click.option("--from", "since", metavar="YYYY[MMDD]", help="Wayback: captures from this date.")
@click.option("--to", "until", metavar="YYYY[MMDD]", help="Wayback: captures up to this date.")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Wayback: at most this many captures this time."
)
@click.option(
    "--delay",
    type=Seconds(),
    default=2.0,
    show_default=True,
    help="Wayback: seconds between requests.",
)
@click.option(
    "--wayback-url",
    default="https://web.archive.org",
    show_default=True,
    help="Wayback: the archive's base URL.",
)
@click.option(
    "-v",
    "--verbose",
    "each",
    is_flag=True,
    help="Print what became of every capture, not only the captures skipped.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_context
def import_(
    obj: Context,
    document: str,
    path: Path | None,
    repo: Path | None,
    git_path: str | None,
    wayback: bool,
    since: str | None,
    until: str | None,
    limit: int | None,
    delay: float,
    wayback_url: str,
    each: bool,
    as_json: bool,
) -> None:
    """Backfill a document's history from dated files, git commits or the Wayback Machine.

    PATH is a folder of files named by date (2024-05-02.html, 2024-05-02T12-00-00Z.md,
    20240502T120000Z.txt, also gzipped: .html.gz); a manifest.json beside them may give
    exact capture times. Each capture is judged as a live run at its date would judge it
    (walls, failed extraction, too short, shrunk, flips) and marked as imported; one that
    is not the document is skipped and reported by kind, and the import exits 1. Running
    an import again adds nothing.
    """
    from tracker.app.importer import (
        ImportItem,
        document_id_problem,
        folder_items,
        git_items,
        import_items,
        wayback_items,
    )

    if problem := document_id_problem(document):
        raise click.BadParameter(problem, param_hint="'DOCUMENT'")
    chosen = sum(bool(x) for x in (path, repo, wayback))
    if chosen != 1:
        raise click.UsageError("give exactly one of PATH, --git REPO --path FILE, or --wayback")
    if repo and not git_path:
        raise click.UsageError("--git needs --path FILE (the file inside the repository)")

    def progress(item: ImportItem, outcome: str) -> None:
        if each or outcome.startswith("failed"):
            click.echo(f"  {iso(item.captured_at)}  {outcome}", err=True)

    with obj.tracker() as tracker, _stop_on_sigterm():
        if path is not None:
            links: list[str] = []
            items, ignored = folder_items(path, links)
            for name in links:
                click.echo(
                    f"skipped {name}: a symbolic link (import never follows links)", err=True
                )
            for name in ignored:
                click.echo(
                    f"skipped {name}: not a dated .html, .md or .txt file (or .gz of one)",
                    err=True,
                )
            report = import_items(tracker, document, items, progress=progress)
        elif repo is not None:
            assert git_path is not None
            report = import_items(tracker, document, git_items(repo, git_path), progress=progress)
        else:
            stream = wayback_items(
                tracker,
                document,
                base=wayback_url,
                since=since,
                until=until,
                limit=limit,
                delay=delay,
            )
            each = True  # slow, remote: every capture is news
            report = import_items(tracker, document, stream, progress=progress)
    click.echo(json.dumps(report.to_json(), indent=1) if as_json else report.line())
    if report.failed:
        sys.exit(1)


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


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("report"),
    show_default=True,
)
@click.option("--document", "documents", multiple=True, metavar="DOC", help="Only this document.")
@pass_context
def report(obj: Context, out_dir: Path, documents: tuple[str, ...]) -> None:
    """Write an HTML change report per change, plus an index page."""
    from tracker.publish.report import write_report

    with obj.tracker() as tracker, _writing_into(out_dir):
        for document in documents:
            tracker.require_document(document)
        index, pages = write_report(tracker, out_dir, list(documents) or None)
    click.echo(f"Wrote {len(pages)} change pages; open {index.resolve().as_uri()}")


@cli.group(cls=TrackerGroup)
def site() -> None:
    """The static report site: pages, Atom feeds, changes.json and documents.json."""


@site.command(name="build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to build into (default: [site] out, else 'site' beside the store).",
)
@click.option("--full", is_flag=True, help="Rebuild every page, ignoring what is up to date.")
@click.option("--json", "as_json", is_flag=True, help="Print what the build did as JSON.")
@click.option(
    "--force",
    is_flag=True,
    help="Build into a non-empty folder that holds no previous build (its files may be"
    " overwritten).",
)
@pass_context
def site_build(obj: Context, out_dir: Path | None, full: bool, as_json: bool, force: bool) -> None:
    """Build the site, rewriting only what changed since the last build.

    A document whose stored files are damaged is left out (named on stderr, exit 1;
    `verify` says which files) and the others are built.
    """
    from tracker.publish.site import build_site, default_out

    with obj.tracker() as tracker, _writing_into(out_dir or default_out(obj.config)):
        stats = build_site(tracker, out_dir, full=full, force=force)
    for skipped in stats.skipped:
        click.echo(f"skipped {skipped}", err=True)
    if as_json:
        click.echo(json.dumps({**stats.__dict__, "out": str(stats.out)}, indent=2))
    else:
        click.echo(stats.line())
    if stats.skipped:
        sys.exit(1)


@site.command(name="serve")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The built site (default: [site] out, else 'site' beside the store).",
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free port).",
)
@click.option("--no-build", is_flag=True, help="Serve as it is, without bringing it up to date.")
@pass_context
def site_serve(obj: Context, out_dir: Path | None, bind: str, port: int, no_build: bool) -> None:
    """Preview the site over HTTP (by default on 127.0.0.1 only); Ctrl-C stops."""
    from tracker.publish.site import build_site, default_out, serve

    out = Path(out_dir or default_out(obj.config))
    if not no_build:
        with obj.tracker() as tracker:
            click.echo(build_site(tracker, out).line())
    try:
        serve(
            out, bind, port, ready=lambda url: click.echo(f"Serving {out} at {url} (Ctrl-C stops)")
        )
    except OSError as exc:  # the port is taken, the address is not this machine's
        reason = exc.strerror or str(exc)
        raise ArgumentError(
            f"cannot listen on {bind}:{port}: {reason} (choose another --port or --bind;"
            " --port 0 takes any free port)"
        ) from None


@cli.command()
@click.option("--id", "ids", multiple=True, metavar="ID", help="Only this digest (repeatable).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print each digest (recipients, subject, text) instead; marks nothing sent.",
)
@click.option(
    "--outbox",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Write each digest to DIR/<id>-<UTC time>.eml instead; marks nothing sent.",
)
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="Include changes from before the digest's first window (default: not sent yet and"
    " recorded since the digest's first run minus one period).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@wait_option
@pass_context
def digest(
    obj: Context,
    ids: tuple[str, ...],
    dry_run: bool,
    outbox: Path | None,
    include_all: bool,
    as_json: bool,
    wait: float,
) -> None:
    """Email every configured digest that has changes it has not sent yet.

    Each digest ([[digests]] in tracker.toml) goes to its recipients through
    [smtp] (password from TOS_TRACKER_SMTP_PASSWORD), and the changes it carried
    are recorded as sent in snapshots/_digests/<id>.json only after the server
    accepted it; nothing new, no mail. Exits 1 when a server refused or could not
    be reached (nothing is marked, the next run sends it all), 2 on a
    configuration error.
    """
    from tracker.publish.digest import run_digests

    if dry_run and outbox is not None:
        raise click.UsageError("give --dry-run or --outbox, not both")
    mode = "dry-run" if dry_run else "outbox" if outbox is not None else "send"
    with obj.tracker() as tracker, _writing_into(outbox):
        outcomes = run_digests(
            tracker, ids, mode=mode, outbox=outbox, include_all=include_all, wait=wait
        )
    if as_json:
        click.echo(json.dumps([o.to_json() for o in outcomes], indent=2, ensure_ascii=False))
    for o in outcomes:
        count = len(o.changes)
        changes = f"{count} change{'s' if count != 1 else ''}"
        if as_json:
            pass
        elif o.status == "nothing":
            if sys.stdout.isatty():
                click.echo(f"{o.digest}: nothing new to send")
        elif o.status == "dry-run" and o.built is not None:
            click.echo(f"To: {', '.join(o.recipients)}\nSubject: {o.subject}\n")
            click.echo(o.built.text)
            click.echo(f"({o.digest}: dry run, {changes} not marked sent)\n")
        elif o.status == "outbox":
            click.echo(f"{o.digest}: wrote {o.path} ({changes}, not marked sent)")
        elif o.status == "sent":
            click.echo(f"{o.digest}: sent {changes} to {', '.join(o.recipients)}")
        if o.status == "failed":
            click.echo(f"Error: {o.digest}: {o.error}; nothing marked sent", err=True)
    if any(o.status == "failed" or o.skipped for o in outcomes):
        sys.exit(1)


@cli.command()
@pass_context
def reindex(obj: Context) -> None:
    """Rebuild the SQLite index from the files in the store alone."""
    from tracker.storage.index import Index
    from tracker.storage.store import Store

    config = obj.config
    started = time.perf_counter()
    store = Store(config.store_path)
    skipped: list[str] = []
    with store.lock():
        try:
            index = Index(config.index_path, config.topics)
        except sqlite3.DatabaseError as exc:
            # Rebuilt from the files alone, so an index SQLite cannot read is set aside.
            aside = config.index_path.with_name(config.index_path.name + ".damaged")
            for suffix in ("", "-wal", "-shm"):
                damaged = Path(f"{config.index_path}{suffix}")
                if damaged.exists():
                    damaged.replace(Path(f"{aside}{suffix}"))
            click.echo(f"{config.index_path} was unreadable ({exc}); moved to {aside}", err=True)
            index = Index(config.index_path, config.topics)
        try:
            counts = index.rebuild(store, config.sources, skipped)
        finally:
            index.close()
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    listing = ", ".join(f"{n} {table}" for table, n in counts.items())
    click.echo(f"Rebuilt {config.index_path} in {time.perf_counter() - started:.2f} s: {listing}")
    if skipped:
        click.echo(
            f"{len(skipped)} damaged documents left out of the index;"
            " `verify` names the files, `verify --repair` quarantines them",
            err=True,
        )
        sys.exit(1)


@cli.command()
@click.option(
    "--document", "documents", multiple=True, metavar="DOC", help="Only this document (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@wait_option
@pass_context
def reextract(
    obj: Context, documents: tuple[str, ...], dry_run: bool, as_json: bool, wait: float
) -> None:
    """Re-run extraction over every stored raw snapshot, without fetching.

    After a change of select/remove selectors, noise filters or the extractor, this
    rebuilds each document's versions and changes from its raw snapshots (oldest
    first, with the current settings) and prints, per document, versions, changes
    and flagged changes before → after and which versions' text changed. Raw
    snapshots are never modified; text imported as text is kept.
    """
    from tracker.app.reextract import reextract as run_reextract

    with obj.tracker() as tracker:
        reports = run_reextract(tracker, documents, dry_run=dry_run, wait=wait)
    damaged = any(r.error is not None for r in reports)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reports], indent=2, ensure_ascii=False))
        sys.exit(1 if damaged else 0)
    for report in reports:
        click.echo(report.line(), err=report.error is not None)
        for kept in report.kept:
            click.echo(f"  kept as it was: {kept}")
    if dry_run:
        click.echo("Dry run: nothing was written.")
    if damaged:
        sys.exit(1)


@cli.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild the index from the files and remove leftovers of interrupted writes"
    " (never changes a stored capture), then check again.",
)
@click.option(
    "--quarantine",
    is_flag=True,
    help="With --repair: first move each damaged capture (its metadata and files) to"
    " snapshots/_quarantine/<time>/, kept, never deleted, then rebuild the index from the rest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@wait_option
@pass_context
def verify(obj: Context, repair: bool, quarantine: bool, as_json: bool, wait: float) -> None:
    """Check every stored file against its hash, and the index against the files.

    Reports damaged files (document, capture time, path, expected and actual
    hash), leftovers of interrupted writes, and index rows that differ from an
    index rebuilt from the files. An import that was killed left a journal: its
    clean-up is finished first, as the next run or import would. Exits 0 when
    everything is consistent, 1 when a
    problem was found (or remains after --repair), 2 on a configuration error,
    3 when a run holds the store.
    """
    from tracker.storage.verify import verify as check_store

    if quarantine and not repair:
        raise click.UsageError("--quarantine goes with --repair")
    result = check_store(obj.config, repair=repair, wait=wait, quarantine=quarantine)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        for document in result.recovered:
            click.echo(
                f"recovered  {document}: an interrupted import's clean-up finished"
                " (its index rows rebuilt from the files)"
            )
        for action in result.repaired:
            click.echo(f"repaired   {action}")
        for problem in result.problems:
            click.echo(problem.line())
        click.echo(result.summary())
    if not result.ok:
        sys.exit(1)


@cli.command()
@pass_context
def documents(obj: Context) -> None:
    """List the configured documents and what the store holds for each."""
    with obj.tracker() as tracker:
        # One query for every row: a query per document took seconds at 40,000 documents.
        rows = {row["id"]: row for row in tracker.index.db.table("documents").rows}
        for doc_id in tracker.known_documents():
            row = rows.get(doc_id) or {}
            source = tracker.config.source(doc_id)
            label = source.title if source else "(no longer configured)"
            versions = row.get("versions") or 0
            checked = row.get("last_checked") or "never"
            click.echo(f"{doc_id:<36} {versions:>3} versions  last checked {checked}  {label}")


@cli.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("tos-tracker-demo"),
    show_default=True,
    help="Folder for the demo's configuration, store and report (recreated each time).",
)
def demo(workdir: Path) -> None:
    """Run the real pipeline offline over bundled history, served on 127.0.0.1."""
    from tracker.demo import run_demo

    run_demo(workdir, echo=click.echo, line=outcome_line)


def main() -> None:
    cli(prog_name="tos-tracker")
