"""`import`, `reextract`, `reindex` and `verify`: filling and looking after the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tracker.cli.base import (
    Context,
    Seconds,
    _stop_on_sigterm,
    cli,
    pass_context,
    wait_option,
)
from tracker.core.statuses import FAILED
from tracker.core.times import iso


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
        if each or outcome.startswith(FAILED):
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


@cli.command()
@pass_context
def reindex(obj: Context) -> None:
    """Rebuild the SQLite index from the files in the store alone."""
    from tracker.storage.reindex import reindex as rebuild_index

    config = obj.config
    done = rebuild_index(config, on_set_aside=lambda line: click.echo(line, err=True))
    skipped, counts = done.skipped, done.counts
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    listing = ", ".join(f"{n} {table}" for table, n in counts.items())
    click.echo(f"Rebuilt {config.index_path} in {done.seconds:.2f} s: {listing}")
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
