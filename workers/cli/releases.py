"""`releases` click group: export a release variant (plain click; no app context needed)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import clean_errors, engine


@click.group("releases")
def releases():
    """Published releases of the datasets."""


@releases.command("export")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Release version (default: current).")
@click.option("--variant", type=click.Choice(["hashed", "unhashed"]), required=True)
@click.option("--to", "to_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@clean_errors
def export_cmd(name: str, version: int | None, variant: str, to_dir: Path):
    """Write a release's files (archive names) and manifest.json into a directory."""
    paths = engine().export(name, variant, to_dir, version)
    for p in paths:
        click.echo(str(p))
