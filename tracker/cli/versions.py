"""`history`, `show`, `diff` and `blame`: reading what the store holds."""

from __future__ import annotations

import json
import sys

import click

from tracker.cli.base import (
    Context,
    cli,
    pass_context,
)


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
