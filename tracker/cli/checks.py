"""`run`, `status` and `schedule`: checking the documents, once or unattended."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from tracker.cli.base import (
    Context,
    InOrder,
    cli,
    outcome_line,
    pass_context,
    wait_option,
)
from tracker.config import CONFIG_NAME
from tracker.core.statuses import FAILED, OUTCOMES

if TYPE_CHECKING:
    from tracker.app.outcomes import DocumentOutcome


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
        elif outcome.status == FAILED:
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
        counts = ", ".join(f"{summary.count(s)} {s}" for s in OUTCOMES)
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

    from tracker.app.status import status_report
    from tracker.core.times import parse_duration

    limit = parse_duration(max_failing, "--max-failing") if max_failing else obj.config.max_failing
    stale = parse_duration(max_stale, "--max-stale") if max_stale else obj.config.max_stale
    with obj.tracker() as tracker:
        report = status_report(tracker, datetime.now(UTC), limit, stale, run_count)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines(alarm=lambda word: click.style(word, fg="red")):
            click.echo(line)
        for line in report.warnings():
            click.echo(line, err=True)
    if report.alerting:
        sys.exit(1)


@cli.command()
@pass_context
def schedule(obj: Context) -> None:
    """Run the checks on a schedule until stopped (SIGTERM or Ctrl-C).

    Cron expressions come from [schedule] in tracker.toml (default: a run every 6
    hours). Missed runs are coalesced, a job never overlaps itself, and a stop
    request ends the current run after its current document.
    """
    from tracker.config.cron import serve
    from tracker.ops.schedule import build_jobs

    logging.getLogger("tracker").setLevel(logging.INFO)
    log = logging.getLogger("tracker.schedule")
    jobs = build_jobs(obj.config)
    if not jobs:
        raise click.UsageError("nothing to schedule: [schedule] has no 'run', 'report' or 'site'")

    def ready(scheduler: Any) -> None:
        for job in scheduler.get_jobs():
            log.info("scheduled %s: %s", job.name, job.trigger)

    serve(jobs, obj.config.schedule.timezone, on_ready=ready)
