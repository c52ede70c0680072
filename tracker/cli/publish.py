"""`report`, `site build`, `site serve` and `digest`: publishing the changes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tracker.cli.base import (
    Context,
    TrackerGroup,
    _writing_into,
    cli,
    pass_context,
    wait_option,
)
from tracker.core.errors import ArgumentError
from tracker.core.statuses import DRY_RUN, FAILED, NOTHING, OUTBOX, SENT


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
        elif o.status == NOTHING:
            if sys.stdout.isatty():
                click.echo(f"{o.digest}: nothing new to send")
        elif o.status == DRY_RUN and o.built is not None:
            click.echo(f"To: {', '.join(o.recipients)}\nSubject: {o.subject}\n")
            click.echo(o.built.text)
            click.echo(f"({o.digest}: dry run, {changes} not marked sent)\n")
        elif o.status == OUTBOX:
            click.echo(f"{o.digest}: wrote {o.path} ({changes}, not marked sent)")
        elif o.status == SENT:
            click.echo(f"{o.digest}: sent {changes} to {', '.join(o.recipients)}")
        if o.status == FAILED:
            click.echo(f"Error: {o.digest}: {o.error}; nothing marked sent", err=True)
    if any(o.status == FAILED or o.skipped for o in outcomes):
        sys.exit(1)
