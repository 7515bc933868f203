"""Benchmark: review queue page and API latency with 100,000 appeals in PostgreSQL.

Usage: python bench/review_queue.py [--url postgresql://postgres@127.0.0.1:5432/appeals_bench] [--appeals 100000]

The database at --url is emptied and migrated. Each scenario is measured through the
Flask test client (real routing, login session, templates, SQL) and compared, in the
same run, with a peer: a bare indexed page query and a bare count through SQLAlchemy.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# standard library's `queue` (which psycopg and redis import): put the project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import timedelta

from sqlalchemy import insert, select, text  # noqa: E402

from appeals import db, schema  # noqa: E402
from appeals.db import utcnow  # noqa: E402
from config import Settings  # noqa: E402

PASSWORD = "benchmark password"
STATUSES = (["filed"] * 30 + ["in_review"] * 10 + ["info_requested"] * 5 + ["escalated"] * 3 + ["approved"] * 2
            + ["denied"] * 30 + ["corrected"] * 15 + ["withdrawn"] * 5)
DATASETS = [f"country_{year}{month:02d}_{n}" for year in (2018, 2019, 2020) for month in (1, 6) for n in (1, 2)]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        ram = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except OSError:
        ram = 0
    return f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, Python {platform.python_version()}"


def populate(n: int, staff_ids: list[int]) -> None:
    """n appeals over n/5 accounts, one or two datasets each; some claimed, some overdue."""
    rng = random.Random(7)
    now = utcnow()
    session = db.session
    accounts = n // 5
    for start in range(0, accounts, 10000):
        session.execute(insert(db.Base.metadata.tables["accounts"]), [
            {"user_id": str(9_000_000 + i), "screen_name": f"acct{i}", "screen_name_lower": f"acct{i}",
             "password_hash": "!", "followers": i % 5000, "suspended": False, "created_at": now}
            for i in range(start, min(accounts, start + 10000))])
    session.commit()
    first_account = session.scalar(text("SELECT min(id) FROM accounts"))
    for start in range(0, n, 10000):
        rows = []
        for i in range(start, min(n, start + 10000)):
            created = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 120))
            status = rng.choice(STATUSES)
            claimed = status in ("in_review", "escalated") and rng.random() < 0.5
            rows.append({
                "account_id": first_account + i % accounts, "status": status,
                "reason": rng.choice(("included_in_error", "compromised", "other")),
                "statement": "Benchmark statement " * 5, "contact_email": f"owner{i}@example.org",
                "created_at": created, "updated_at": created, "due_at": created + timedelta(days=14),
                "footprint_size": rng.randrange(0, 5000), "version": 1,
                "assigned_to_id": rng.choice(staff_ids) if claimed else None,
                "claimed_at": now if claimed else None, "claim_touched_at": now if claimed else None,
                "decided_at": created + timedelta(days=rng.randrange(1, 20)) if status in (
                    "denied", "corrected", "approved") else None,
            })
        session.execute(insert(db.Base.metadata.tables["appeals"]), rows)
        session.commit()
    ids = session.scalars(text("SELECT id FROM appeals ORDER BY id")).all()
    links = []
    for appeal_id in ids:
        for name in rng.sample(DATASETS, rng.choice((1, 1, 2))):
            links.append({"appeal_id": appeal_id, "dataset": name, "version": 1, "authored_tweets": 3,
                          "referring_rows": 1, "hashed_publicly": True})
    for start in range(0, len(links), 20000):
        session.execute(insert(db.Base.metadata.tables["appeal_datasets"]), links[start:start + 20000])
    session.commit()
    session.commit()
    # A live database is vacuumed by autovacuum; VACUUM here gives the steady state (visibility map, statistics).
    with db.session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def measure(fn, runs: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(len(times) * 0.95) - 1], "max": times[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/appeals_bench")
    parser.add_argument("--appeals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    engine = db.make_engine(args.url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    schema.upgrade(args.url)

    from appeals import create_app
    from appeals.models import Staff
    from appeals.services import staff as staff_service
    from appeals.services.audit import Actor

    settings = Settings.from_env({"APPEALS_MODE": "test", "APPEALS_HOME": str(home),
                                  "APPEALS_DATABASE_URL": args.url, "APPEALS_LOGIN_RATE_LIMIT": "1000 per minute"})
    app = create_app(settings)
    operator = Actor("operator", None, "bench")
    me = staff_service.create_staff("bench@review.example", "reviewer", PASSWORD, operator)
    others = [staff_service.create_staff(f"r{i}@review.example", "reviewer", PASSWORD, operator).id for i in range(5)]
    t0 = time.perf_counter()
    populate(args.appeals, others)
    print(f"populated {args.appeals} appeals in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    client = app.test_client()
    import re

    def csrf(path):
        return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)

    client.post("/review/login", data={"csrf_token": csrf("/review/login"), "email": me.email, "password": PASSWORD})
    code = staff_service.next_code(db.session.get(Staff, me.id))
    assert client.post("/review/login/code", data={"csrf_token": csrf("/review/login/code"),
                                                   "code": code}).status_code == 303
    code = staff_service.next_code(db.session.get(Staff, me.id, populate_existing=True))
    token = client.post("/api/v1/tokens", json={"username": me.email, "password": PASSWORD,
                                                "otp": code}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def get(path, **kw):
        def call():
            response = client.get(path, **kw)
            assert response.status_code == 200, (path, response.status_code)
        return call

    def peer_page():
        with app.app_context():
            db.session.execute(select(text("id")).select_from(text("appeals"))
                               .where(text("status IN ('filed','in_review','info_requested','escalated','approved')"))
                               .order_by(text("created_at")).limit(25)).all()
            db.session.remove()

    def peer_count():
        with app.app_context():
            db.session.execute(text("SELECT count(*) FROM appeals")).scalar()
            db.session.remove()

    scenarios = [
        ("peer: bare indexed page query (SQLAlchemy)", peer_page),
        ("peer: bare SELECT count(*) (SQLAlchemy)", peer_count),
        ("page /review/ (waiting, oldest first)", get("/review/")),
        ("page /review/?sort=footprint", get("/review/?sort=footprint")),
        ("page /review/?dataset=…&sort=due", get(f"/review/?dataset={DATASETS[3]}&sort=due")),
        ("page /review/?overdue=1&assigned=unassigned", get("/review/?overdue=1&assigned=unassigned")),
        ("page /review/?status=all&page=200", get("/review/?status=all&page=200")),
        ("API GET /api/v1/queue", get("/api/v1/queue", headers=headers)),
        ("API GET /api/v1/queue?per_page=100&sort=due", get("/api/v1/queue?per_page=100&sort=due", headers=headers)),
    ]
    print(f"Machine: {machine()}; PostgreSQL {db.session.execute(text('SHOW server_version')).scalar()}; "
          f"{args.appeals} appeals; {args.runs} runs per scenario after 5 warm-up runs.\n")
    print("| scenario | p50 ms | p95 ms | max ms | p95 / peer page p95 |")
    print("|---|---:|---:|---:|---:|")
    peer = None
    for name, fn in scenarios:
        result = measure(fn, args.runs)
        peer = peer or result["p95"]
        print(f"| {name} | {result['p50']:.1f} | {result['p95']:.1f} | {result['max']:.1f} | "
              f"{result['p95'] / peer:.1f}× |")


if __name__ == "__main__":
    main()
