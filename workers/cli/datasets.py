"""`datasets` click group: import, list, show, reindex, verify (plain click; no app context needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ._common import clean_errors, engine, progress
from .synth import synth


@click.group("datasets")
def datasets():
    """Published information-operations datasets."""


def _version_json(v) -> dict:
    return {"version": v.version, "status": v.status, "created_at": v.created_at,
            "parent_version": v.parent_version, "batch_id": v.batch_id, "accounts": v.accounts,
            "tweets": v.tweets, **v.summary}


def _dataset_json(d) -> dict:
    return {"name": d.name, "current_version": d.current_version, "versions": [_version_json(v) for v in d.versions]}


def _bootstrap() -> None:
    """Bind this process to the configured database and Redis: imports read the ledger and take the lock."""
    from appeals import runtime
    from config import Settings

    runtime.bootstrap(Settings.from_env())


@datasets.command("import")
@click.argument("src_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Dataset name, e.g. russia_201901_1.")
@clean_errors
def import_cmd(src_dir: Path, name: str):
    """Import an unhashed dataset directory as release 1, with every standing decision applied."""
    from workers import imports

    _bootstrap()
    v = imports.import_dataset(src_dir, name, progress=progress())
    s = v.summary
    click.echo(f"imported {v.dataset} version {v.version}: {v.accounts} accounts, {v.tweets} tweets")
    click.echo(f"standing decisions applied: {s.get('standing_decisions_applied', 0)} "
               f"(accounts removed {s['accounts_removed']}, re-hashed {s['accounts_rehashed']}; "
               f"rows removed {s['rows_removed']}, rewritten {s['rows_rewritten']})")


@datasets.command("rederive")
@click.argument("name")
@clean_errors
def rederive_cmd(name: str):
    """Publish a new release of NAME derived under the current rules and ledger; the old one is withdrawn
    and its downloaders are told."""
    from workers import imports

    _bootstrap()
    v = imports.rederive(name, progress=progress())
    click.echo(f"published {v.dataset} version {v.version} (version {v.parent_version} withdrawn)")


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@clean_errors
def list_cmd(as_json: bool):
    """List datasets and their current versions."""
    ds = engine().list_datasets()
    if as_json:
        click.echo(json.dumps([_dataset_json(d) for d in ds], indent=1))
        return
    for d in ds:
        cur = next(v for v in d.versions if v.version == d.current_version)
        click.echo(f"{d.name}\tversion {d.current_version}\t{cur.accounts} accounts\t{cur.tweets} tweets\t{cur.created_at}")


@datasets.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@clean_errors
def show_cmd(name: str, as_json: bool):
    """Show a dataset's releases."""
    d = engine().get_dataset(name)
    if as_json:
        click.echo(json.dumps(_dataset_json(d), indent=1))
        return
    click.echo(f"{d.name} (current version {d.current_version})")
    for v in d.versions:
        s = v.summary
        click.echo(f"  v{v.version} {v.status:9} {v.created_at} accounts={v.accounts} tweets={v.tweets} "
                   f"removed={s['accounts_removed']} rehashed={s['accounts_rehashed']} "
                   f"rows_removed={s['rows_removed']} rows_rewritten={s['rows_rewritten']} files_changed={s['files_changed']}")
        for f in v.files:
            click.echo(f"      {f.variant:8} {f.path} {f.rows} rows {f.bytes} bytes sha256:{f.sha256[:12]}")


@datasets.command("reindex")
@clean_errors
def reindex_cmd():
    """Rebuild the account index from the current releases."""
    engine().reindex(progress=progress())
    click.echo("index rebuilt")


@datasets.command("verify")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Release to check (default: current).")
@clean_errors
def verify_cmd(name: str, version: int | None):
    """Full scan of a release: checksums, sizes, parseability, row counts."""
    r = engine().verify(name, version, progress=progress())
    for p in r.problems:
        click.echo(f"problem: {p}", err=True)
    click.echo(f"{'ok' if r.ok else 'FAILED'}: {r.files_checked} files, {r.bytes_checked} bytes checked")
    if not r.ok:
        sys.exit(1)


datasets.add_command(synth)


@datasets.command("migrate-store")
@click.option("--to", "to_url", required=True, help="Destination bucket, s3://bucket/prefix.")
@clean_errors
def migrate_store_cmd(to_url: str):
    """Copy the local release store into an S3-compatible bucket (idempotent, resumable)."""
    from config import Settings
    from workers.engine.migrate import migrate_store
    from workers.engine.s3store import S3Store, parse_url
    from workers.engine.store import Store

    s = Settings.from_env()
    parse_url(to_url)  # a clear error before any work
    if not (s.data_dir / "HEAD.json").exists():
        raise click.ClickException(f"no local release store in {s.data_dir} (APPEALS_DATA_DIR)")
    dst = S3Store(s.home / "migrate-work", to_url, s.s3_endpoint_url)
    r = migrate_store(Store(s.data_dir), dst, progress=progress())
    click.echo(f"{r.blobs} blobs reachable, {r.copied} copied ({r.bytes_copied} bytes); HEAD {r.head}")
    click.echo(f"set APPEALS_STORE_URL={to_url} on every web process and worker")
