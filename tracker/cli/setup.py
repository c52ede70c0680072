"""`init`, `documents` and `demo`: getting started."""

from __future__ import annotations

from pathlib import Path

import click

from tracker.cli.base import (
    Context,
    cli,
    outcome_line,
    pass_context,
)
from tracker.config import CONFIG_NAME


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing tracker.toml.")
def init(force: bool) -> None:
    """Write the default configuration to ./tracker.toml to edit."""
    from tracker.config.settings import default_config_text

    target = Path(CONFIG_NAME)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    target.write_text(default_config_text(), encoding="utf-8")
    click.echo(f"Wrote {target}")


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
    from tracker.ops.demo import run_demo

    run_demo(workdir, echo=click.echo, line=outcome_line)
