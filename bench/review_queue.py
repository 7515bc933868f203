"""Benchmark: the review queue API under load, with 100,000 appeals in PostgreSQL.

Usage: python bench/review_queue.py [--url postgresql://postgres@127.0.0.1:5432/appeals_bench] [--appeals 100000]
                                    [--clients 8] [--seconds 20]

The database at --url is emptied and migrated, then filled (bulk inserts, then VACUUM ANALYZE and the
queue's counts rebuilt). --clients processes, each with its own application, database pool and Flask test
client, request the queue API in a closed loop for --seconds: the default page and every filter, in turn.
In the same run, before each API phase, the same number of processes run each peer in turn: the peer, a
bare index-friendly 50-row SELECT through SQLAlchemy Core (one status, ordered on its (status, created_at)
index: what a single round trip costs here), and the slow peer, a bare 50-row SELECT of every waiting
status ordered by created_at (no one index gives that order: PostgreSQL sorts). Ratios are against the
peer. Then a burst of claim expiries (--burst live claims lapse and the
expiry sweep frees them: thousands of updated rows, below the autovacuum threshold, no VACUUM) and both
phases again.
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
import shutil
import statistics
import tempfile
import time
from datetime import timedelta

from sqlalchemy import insert, text  # noqa: E402

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
    links = []
    for appeal_id, status, created_at, due_at, footprint in session.execute(
            text("SELECT id, status, created_at, due_at, footprint_size FROM appeals ORDER BY id")):
        for name in rng.sample(DATASETS, rng.choice((1, 1, 2))):
            links.append({"appeal_id": appeal_id, "dataset": name, "version": 1, "authored_tweets": 3,
                          "referring_rows": 1, "hashed_publicly": True, "appeal_status": status,
                          "appeal_created_at": created_at, "appeal_due_at": due_at, "appeal_footprint": footprint})
    for start in range(0, len(links), 20000):
        session.execute(insert(db.Base.metadata.tables["appeal_datasets"]), links[start:start + 20000])
    session.commit()
    session.commit()
    # A live database is vacuumed by autovacuum; VACUUM here gives the steady state (visibility map, statistics).
    with db.session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


SCENARIOS = [
    ("default (waiting, oldest first)", ""),
    ("status=all", "?status=all"),
    ("status=open&sort=newest", "?status=open&sort=newest"),
    ("reason=compromised", "?reason=compromised"),
    ("dataset=…&sort=due", f"?dataset={DATASETS[3]}&sort=due"),
    ("assigned=unassigned", "?assigned=unassigned"),
    ("assigned=me", "?assigned=me"),
    ("min_age_days=30", "?min_age_days=30"),
    ("overdue=1", "?overdue=1"),
    ("overdue=1&assigned=unassigned", "?overdue=1&assigned=unassigned"),
    ("sort=footprint", "?sort=footprint"),
    ("per_page=100&sort=due", "?per_page=100&sort=due"),
    ("status=all&page=200", "?status=all&page=200"),
]
PEER = "peer: bare indexed 50-row SELECT (SQLAlchemy Core)"
SLOW_PEER = "slow peer: bare 50-row SELECT of every waiting status (SQLAlchemy Core)"
# One status ordered on its index (ix_appeals_status_created): a single index walk of 50 entries.
PEER_SQL = text("SELECT id, status, created_at FROM appeals WHERE status = 'filed' ORDER BY created_at, id LIMIT 50")
# The waiting statuses ordered together: every waiting appeal is read and sorted (the earlier peer).
SLOW_PEER_SQL = text("SELECT id, status, created_at FROM appeals WHERE status IN "
                     "('filed', 'in_review', 'escalated', 'approved') ORDER BY created_at LIMIT 50")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, min(len(values) - 1, int(round(q * len(values))) - 1))]


def _worker(kind: str, index: int, env: dict, token: str, seconds: float, start_at: float, out) -> None:
    """One client process: its own app and pool; requests in a closed loop until the phase ends."""
    from appeals import create_app

    app = create_app(Settings.from_env(env))
    client = app.test_client()
    engine = db.make_engine(env["APPEALS_DATABASE_URL"]) if kind != "api" else None  # the peers' own pool
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    k = index
    # The PostgreSQL backend serving this process (one thread: its pool holds one connection).
    if kind == "api":
        with app.app_context():
            backend = db.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            db.session.remove()
    else:
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    cpu0, backend0 = time.process_time(), backend_cpu(backend)
    while time.time() < end:
        t0 = time.perf_counter()
        if kind in ("peer", "slow_peer"):
            with engine.connect() as conn:
                conn.execute(PEER_SQL if kind == "peer" else SLOW_PEER_SQL).all()
            name = PEER if kind == "peer" else SLOW_PEER
        else:
            name, query = SCENARIOS[k % len(SCENARIOS)]
            response = client.get("/api/v1/queue" + query, headers=headers)
            assert response.status_code == 200, (query, response.status_code, response.get_data(as_text=True)[:200])
            k += 1
        samples.append((name, (time.perf_counter() - t0) * 1000))
    out.put((samples, time.process_time() - cpu0, backend_cpu(backend) - backend0))
    if engine is not None:
        engine.dispose()


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a local process has used so far; 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_phase(kind: str, clients: int, env: dict, token: str, seconds: float) -> tuple:
    """Run `clients` processes for `seconds`; returns ({scenario: [ms, ...]}, requests per second,
    CPU ms per request of the client processes, CPU ms per request of their PostgreSQL backends)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 3  # every process has built its app by then
    procs = [ctx.Process(target=_worker, args=(kind, i, env, token, seconds, start_at, out)) for i in range(clients)]
    for proc in procs:
        proc.start()
    samples, cpu, backend = [], 0.0, 0.0
    for _ in procs:
        got, used, served = out.get()
        samples, cpu, backend = samples + got, cpu + used, backend + served
    for proc in procs:
        proc.join()
    by_name: dict = {}
    for name, ms in samples:
        by_name.setdefault(name, []).append(ms)
    n = max(1, len(samples))
    return by_name, len(samples) / seconds, cpu * 1000 / n, backend * 1000 / n


def report(title: str, peer: tuple, slow_peer: tuple, api: tuple) -> None:
    peer_p95 = percentile(peer[0][PEER], 0.95)
    all_api = [ms for values in api[0].values() for ms in values]
    print(f"\n{title}\n")
    print(f"Peer {peer[1]:.0f} req/s, p95 {peer_p95:.1f} ms; slow peer {slow_peer[1]:.0f} req/s, p95 "
          f"{percentile(slow_peer[0][SLOW_PEER], 0.95):.1f} ms; queue API {api[1]:.1f} req/s, "
          f"p95 {percentile(all_api, 0.95):.1f} ms over every scenario.\nCPU per request: queue API "
          f"{api[2]:.2f} ms in the client process (Flask test client, app, SQLAlchemy) + {api[3]:.2f} ms in "
          f"its PostgreSQL backend; peer {peer[2]:.2f} + {peer[3]:.2f} ms; slow peer {slow_peer[2]:.2f} + "
          f"{slow_peer[3]:.2f} ms.\n")
    print("| scenario | requests | p50 ms | p95 ms | max ms | p95 / peer p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [(PEER, peer[0][PEER]), (SLOW_PEER, slow_peer[0][SLOW_PEER])] + \
        [(f"GET /api/v1/queue{q} ({n})", api[0].get(n, [])) for n, q in SCENARIOS]
    for name, values in rows:
        if not values:
            continue
        p95 = percentile(values, 0.95)
        print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} | {max(values):.1f} | "
              f"{p95 / peer_p95:.1f}× |")


def dead_rows() -> str:
    row = db.session.execute(text("SELECT n_live_tup, n_dead_tup, last_autovacuum, last_vacuum FROM pg_stat_user_tables "
                                  "WHERE relname = 'appeals'")).one()
    return f"appeals: {row[0]} live rows, {row[1]} dead rows, last autovacuum {row[2]}, last vacuum {row[3]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/appeals_bench")
    parser.add_argument("--appeals", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--burst", type=int, default=2000, help="claims that lapse and are freed by the sweep")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    engine = db.make_engine(args.url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    schema.upgrade(args.url)

    from appeals import create_app
    from appeals.services import queue_counts, review
    from appeals.services import staff as staff_service
    from appeals.services.audit import Actor

    env = {"APPEALS_MODE": "test", "APPEALS_HOME": str(home), "APPEALS_DATABASE_URL": args.url,
           "APPEALS_LOGIN_RATE_LIMIT": "1000 per minute", "APPEALS_REDIS_URL": os.environ.get("APPEALS_REDIS_URL", "")}
    env = {k: v for k, v in env.items() if v}
    app = create_app(Settings.from_env(env))
    operator = Actor("operator", None, "bench")
    me = staff_service.create_staff("bench@review.example", "reviewer", PASSWORD, operator)
    others = [staff_service.create_staff(f"r{i}@review.example", "reviewer", PASSWORD, operator).id for i in range(5)]
    t0 = time.perf_counter()
    populate(args.appeals, others + [me.id])
    queue_counts.recount()  # the bulk insert went around the ORM, which keeps the counts
    db.session.commit()
    print(f"populated {args.appeals} appeals in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    from appeals.models import Staff

    client = app.test_client()
    code = staff_service.next_code(db.session.get(Staff, me.id))
    token = client.post("/api/v1/tokens", json={"username": me.email, "password": PASSWORD,
                                                "otp": code}).get_json()["token"]
    version = db.session.execute(text("SHOW server_version")).scalar()
    load = os.getloadavg()
    print(f"Machine: {machine()}; PostgreSQL {version}; {args.appeals} appeals; {args.clients} concurrent "
          f"client processes, {args.seconds:.0f} s per phase; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"at the start.")
    print(dead_rows())
    db.session.remove()
    db.session.get_bind().dispose()
    before = [load_phase(kind, args.clients, env, token, args.seconds) for kind in ("peer", "slow_peer", "api")]
    report("After loading (VACUUM ANALYZE once, after the bulk load)", *before)

    # The burst: --burst live claims lapse; the sweep frees them (each a transition and an audit entry).
    with app.app_context():
        lapsed = db.session.execute(text(
            "UPDATE appeals SET claim_touched_at = claim_touched_at - interval '2 hours' WHERE id IN "
            "(SELECT id FROM appeals WHERE assigned_to_id IS NOT NULL ORDER BY id LIMIT :n)"), {"n": args.burst}).rowcount
        db.session.commit()
        freed = 0
        t0 = time.perf_counter()
        while True:
            counts = review.expire_stale()
            if not counts["claims"] and not counts["info_requests"]:
                break
            freed += counts["claims"] + counts["info_requests"]
        print(f"\nBurst: {lapsed} claims lapsed, {freed} freed by the expiry sweep in "
              f"{time.perf_counter() - t0:.1f}s; {dead_rows()}")
        db.session.remove()
        db.session.get_bind().dispose()
    after = [load_phase(kind, args.clients, env, token, args.seconds) for kind in ("peer", "slow_peer", "api")]
    report("After the burst of claim expiries (no VACUUM)", *after)
    with app.app_context():
        print(f"\n{dead_rows()}")
    load = os.getloadavg()
    print(f"\nLoad average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
