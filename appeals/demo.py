"""Demo data: synthetic datasets, owner accounts that really appear in them, and staff. Idempotent."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from appeals import db, runtime
from appeals.models import Account, Staff
from appeals.services.audit import Actor

log = logging.getLogger("appeals.demo")

# Printed on start: the demo is local and its data synthetic; never used outside demo mode.
DEMO_PASSWORD = "demo-password-please"
STAFF = (
    ("reviewer@demo.test", "reviewer"),
    ("senior@demo.test", "senior"),
    ("senior2@demo.test", "senior"),
    ("admin@demo.test", "admin"),
)
DATASETS = 3
TWEETS = 3000
SEED = 2019


@dataclass
class DemoLogins:
    """What the demo prints: owner screen names (with a note each) and staff emails."""

    owners: list[tuple[str, str]] = field(default_factory=list)
    staff: list[tuple[str, str]] = field(default_factory=list)
    password: str = DEMO_PASSWORD


def seed() -> DemoLogins:
    """Publish the synthetic datasets and create the demo accounts, unless already done."""
    settings = runtime.settings()
    if settings.mode != "demo":
        raise RuntimeError("demo data is only seeded in APPEALS_MODE=demo")
    actor = Actor("operator", None, "demo seed")
    engine = runtime.engine()
    source = settings.home / "demo-source"
    from workers.engine import synth

    published = {d.name for d in engine.list_datasets()}
    missing = [name for name in synth.dataset_names(DATASETS) if name not in published]
    if missing or not source.is_dir():
        # Deterministic for a seed: regenerating after an interrupted seed gives the same files.
        log.info("generating %d synthetic datasets (%d tweets) under %s", DATASETS, TWEETS, source)
        for dataset in synth.generate(source, datasets=DATASETS, tweets=TWEETS, seed=SEED, media=True):
            if dataset.name in missing:
                engine.import_dataset(dataset.dir, dataset.name)
    _seed_reference()
    _seed_staff(actor)
    owners = _seed_owners(actor, source)
    logins = DemoLogins(owners=owners, staff=[(email, role) for email, role in STAFF])
    db.session.remove()
    return logins


def _seed_reference() -> None:
    from appeals.services.reference import seed_defaults

    seed_defaults()


def _seed_staff(actor: Actor) -> None:
    from appeals.services.staff import create_staff

    for email, role in STAFF:
        if db.session.scalar(select(Staff.id).where(Staff.email == email)) is None:
            create_staff(email, role, DEMO_PASSWORD, actor)


def _seed_owners(actor: Actor, source) -> list[tuple[str, str]]:
    """Three owners: one in two datasets, one in a single dataset, one suspended."""
    existing = db.session.scalars(
        select(Account).where(Account.email.like("%@demo.test")).order_by(Account.id)
    ).all()
    if existing:
        return [(a.screen_name, _describe(a)) for a in existing]
    from appeals.services.accounts import create_account

    engine = runtime.engine()
    first = sorted(p for p in source.iterdir() if p.is_dir())[0]
    users = _read_users(first / f"{first.name}_users_csv_unhashed.csv")
    by_reach = sorted(users, key=lambda u: -int(u["follower_count"] or 0))
    wide = next((u for u in by_reach if len(engine.footprint(u["userid"])) >= 2), by_reach[0])
    single = [u for u in reversed(by_reach) if u is not wide and len(engine.footprint(u["userid"])) == 1][:2]
    chosen = [(wide, False), *((u, i == 1) for i, u in enumerate(single))]
    owners = []
    for row, suspended in chosen:
        account = create_account(
            actor, user_id=row["userid"], screen_name=row["user_screen_name"], password=DEMO_PASSWORD,
            email=f"{row['user_screen_name'].lower()}@demo.test", followers=int(row["follower_count"] or 0),
            suspended=suspended,
        )
        owners.append((account.screen_name, _describe(account)))
    return owners


def _describe(account: Account) -> str:
    datasets = [entry.dataset for entry in runtime.engine().footprint(account.user_id)]
    where = ", ".join(datasets) if datasets else "no current release"
    return f"appears in {where}" + ("; suspended on the platform" if account.suspended else "")


def _read_users(path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
