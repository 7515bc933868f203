"""`appeals datasets synth`: write synthetic unhashed master datasets (plain click, no Flask)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from workers.engine.synth import dataset_names, generate

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


def _parse_datasets(value: str) -> list[str]:
    """Turn `--datasets` (a count or a comma list of names) into dataset names."""
    value = value.strip()
    if re.fullmatch(r"[+-]?\d+", value):
        n = int(value)
        if n < 1:
            raise click.BadParameter(f"must be a positive number, got {n}", param_hint="--datasets")
        if n > 1000:
            raise click.BadParameter(f"at most 1000 datasets, got {n}", param_hint="--datasets")
        return dataset_names(n)
    names = [x.strip() for x in value.split(",")]
    bad = [x for x in names if not _NAME_RE.match(x)]
    if bad:
        raise click.BadParameter(
            f"invalid dataset name(s) {', '.join(repr(b) for b in bad)}: "
            "use a number or a comma list of names made of lowercase letters, digits and _",
            param_hint="--datasets")
    if len(set(names)) != len(names):
        raise click.BadParameter("dataset names must be unique", param_hint="--datasets")
    return names


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--datasets", "datasets", default="3", show_default=True,
              help="Number of datasets (named synth_a, synth_b, ...) or a comma list of names.")
@click.option("--tweets", type=int, required=True, help="Total tweets across all datasets.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed gives byte-identical output.")
@click.option("--tweets-per-file", type=int, default=None,
              help="Split a dataset's tweets into NAME_tweets_csv_unhashed_K.csv parts of this many rows.")
@click.option("--users-per-dataset", type=int, default=None,
              help="Accounts per dataset (default: about one per 150 tweets, 24 to 5000).")
@click.option("--no-media", is_flag=True, help="Do not write media zip files.")
def synth(out: Path, datasets: str, tweets: int, seed: int, tweets_per_file: int | None,
          users_per_dataset: int | None, no_media: bool) -> None:
    """Write synthetic UNHASHED master datasets under OUT/NAME/ (OUT must be absent or empty)."""
    names = _parse_datasets(datasets)
    if tweets < 1:
        raise click.BadParameter(f"must be a positive number, got {tweets}", param_hint="--tweets")
    if tweets < len(names):
        raise click.BadParameter(
            f"need at least one tweet per dataset ({len(names)} datasets), got {tweets}",
            param_hint="--tweets")
    if tweets_per_file is not None and tweets_per_file < 1:
        raise click.BadParameter(f"must be a positive number, got {tweets_per_file}",
                                 param_hint="--tweets-per-file")
    if users_per_dataset is not None and users_per_dataset < 2:
        raise click.BadParameter(f"must be at least 2, got {users_per_dataset}",
                                 param_hint="--users-per-dataset")
    if out.exists():
        if not out.is_dir():
            raise click.UsageError(f"OUT {out} exists and is not a directory")
        if any(out.iterdir()):
            raise click.UsageError(f"OUT {out} is not empty; choose a new or empty directory")
    try:
        result = generate(out, names, tweets, seed, progress=sys.stderr.isatty(),
                          users_per_dataset=users_per_dataset,
                          tweets_per_file=tweets_per_file, media=not no_media)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    total = 0
    for ds in result:
        size = sum(p.stat().st_size for p in ds.files)
        total += size
        click.echo(f"{ds.name}: {ds.users} users, {ds.tweets} tweets, "
                   f"{len(ds.files)} files, {_human(size)} in {ds.dir}")
        for p in ds.files:
            click.echo(f"  {p.name}")
    click.echo(f"wrote {len(result)} datasets, {sum(d.tweets for d in result)} tweets, "
               f"{_human(total)} (seed {seed})")
