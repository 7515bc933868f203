"""Benchmark: the reviewer's appeal page with the activity chart, for an account with 50,000 rows in 3 datasets.

Usage: python bench/review_page.py [--tweets 310000] [--rows 50000] [--runs 40] [--keep]

A synthetic corpus (workers.engine.synth, 3 datasets, no media) is generated and imported with the
dataset engine; one account is given about --rows rows (authored + referring) across the 3 datasets by
giving the busiest fitting account of each dataset the same user id before import. The appeal page
(GET /review/appeals/<id>, through the Flask test client: routing, login session, services, engine,
templates) is timed for that account and, in the same run and interleaved with it, for a peer: the same
page for an account with a few dozen rows. A bare engine lookup (Engine.footprint) is timed too.
The first (cold) view of each account is reported on its own; p50/p95/max are over the warm runs.

Then a new release of every dataset is published (`workers.imports.rederive`, as `appeals datasets rederive`
does), which enqueues the activity warm-up (issue 15); the warm-up jobs are run by RQ's SimpleWorker in this
process (their time reported apart), and the first view of each account after the new release is timed:
the row "first view after a new release, warmed by the job", next to the cold one.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import date, timedelta  # noqa: E402

from bench.review_queue import machine  # noqa: E402  (one description of the machine for both benches)

PASSWORD = "benchmark password"
NAMES = ["bench_alpha", "bench_beta", "bench_gamma"]


def tweet_files(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("*_tweets_csv_unhashed*.csv"))


def authored_counts(d: Path) -> Counter:
    counts = Counter()
    for path in tweet_files(d):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                counts[row["userid"]] += 1
    return counts


def make_corpus(src: Path, tweets: int, rows: int) -> tuple[str, str]:
    """Generate the 3 datasets; give one account about `rows` authored rows over all three. Returns
    (the big account's user id, a small account's user id)."""
    from workers.engine import synth

    synth.generate(src, NAMES, tweets, seed=15, users_per_dataset=20, tweets_per_file=40_000, media=False)
    chosen, small = [], None
    for i, name in enumerate(NAMES):
        counts = authored_counts(src / name)
        share = rows / len(NAMES)
        uid = min(counts, key=lambda u: (abs(counts[u] - share), u))
        chosen.append(uid)
        if small is None:
            small = min((u for u in counts if counts[u] >= 20), key=lambda u: (counts[u], u))
    big = chosen[0]
    # The same person in the three datasets: the other two accounts take the first one's id (whole numbers only).
    for name, uid in zip(NAMES[1:], chosen[1:]):
        pattern = re.compile(rb"(?<![0-9])" + uid.encode() + rb"(?![0-9])")
        for path in (src / name).glob("*.csv"):
            path.write_bytes(pattern.sub(big.encode(), path.read_bytes()))
    return big, small


def measure_interleaved(calls: dict, runs: int) -> dict:
    """Each call once per round, `runs` rounds: wall time and this process's CPU time (the test client,
    the app and SQLite all run in it, so CPU time is the server's work, whatever else loads the machine)."""
    wall = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
    out = {}
    for name in calls:
        w, c = sorted(wall[name]), sorted(cpu[name])
        p95 = max(0, int(len(w) * 0.95) - 1)
        out[name] = {"p50": statistics.median(w), "p95": w[p95], "max": w[-1],
                     "cpu50": statistics.median(c), "cpu95": c[p95]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=310_000, help="tweets in the 3 datasets together")
    parser.add_argument("--rows", type=int, default=50_000, help="authored rows of the big account")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-review-page-"))
    try:
        t0 = time.perf_counter()
        big, small = make_corpus(scratch / "src", args.tweets, args.rows)
        print(f"generated in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        from config import Settings
        from appeals import create_app, db, runtime, schema
        from appeals.models import Account, Appeal, AppealDataset, Staff
        from appeals.services import footprint, staff as staff_service
        from appeals.services.audit import Actor
        from appeals.db import utcnow

        url = f"sqlite:///{scratch / 'appeals.db'}"
        schema.upgrade(url)
        settings = Settings.from_env({"APPEALS_MODE": "test", "APPEALS_HOME": str(scratch / "home"),
                                      "APPEALS_DATA_DIR": str(scratch / "data"), "APPEALS_DATABASE_URL": url,
                                      "APPEALS_LOGIN_RATE_LIMIT": "1000 per minute"})
        app = create_app(settings)
        engine = runtime.engine()
        t0 = time.perf_counter()
        for name in NAMES:
            engine.import_dataset(scratch / "src" / name, name)
        print(f"imported in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        me = staff_service.create_staff("bench@review.example", "reviewer", PASSWORD, Actor("operator", None, "bench"))
        appeal_ids = {}
        for label, uid in (("big", big), ("small", small)):
            entries = footprint.entries_for_user_id(uid)
            account = Account(user_id=uid, screen_name=f"acct_{label}", screen_name_lower=f"acct_{label}",
                              password_hash="!", followers=10)
            db.session.add(account)
            db.session.flush()
            now = utcnow()
            appeal = Appeal(account_id=account.id, status="filed", reason="compromised",
                            statement="My account was taken over.", contact_email=f"{label}@example.org",
                            created_at=now, updated_at=now, due_at=now + timedelta(days=14),
                            footprint_size=sum(e["authored_tweets"] + e["referring_rows"] for e in entries),
                            compromised_from=date(2016, 3, 1), compromised_until=date(2016, 9, 30),
                            datasets=[AppealDataset(dataset=e["dataset"], version=e["version"],
                                                    authored_tweets=e["authored_tweets"],
                                                    referring_rows=e["referring_rows"]) for e in entries])
            db.session.add(appeal)
            db.session.commit()
            appeal_ids[label] = appeal.id
            print(f"{label}: user {uid}, {appeal.footprint_size} rows in "
                  f"{', '.join(e['dataset'] for e in entries)}", file=sys.stderr)
        sizes = {label: db.session.get(Appeal, appeal_ids[label]).footprint_size for label in appeal_ids}

        client = app.test_client()

        def csrf(path):
            return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)

        client.post("/review/login", data={"csrf_token": csrf("/review/login"), "email": me.email, "password": PASSWORD})
        code = staff_service.next_code(db.session.get(Staff, me.id))
        assert client.post("/review/login/code", data={"csrf_token": csrf("/review/login/code"),
                                                       "code": code}).status_code == 303

        def page(label, query=""):
            def call():
                response = client.get(f"/review/appeals/{appeal_ids[label]}{query}")
                assert response.status_code == 200, response.status_code
                assert b"activity-chart" in response.data
            return call

        def lookup():
            with app.app_context():
                footprint.entries_for_user_id(big)

        def timed(fn) -> tuple[float, float]:
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000

        load_start = os.getloadavg()
        cold = {label: timed(page(label)) for label in ("big", "small")}

        # A new release of every dataset, warmed by the job before anyone looks (issue 15).
        from rq import SimpleWorker

        from workers import dispatch as senders, imports, queues

        t0 = time.perf_counter()
        for name in NAMES:
            imports.rederive(name)
        print(f"re-derived in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        activity_queue = senders.activity_queue(queues.connect())
        assert activity_queue.count == len(NAMES), activity_queue.job_ids  # one per publication

        def work():
            SimpleWorker([activity_queue], connection=activity_queue.connection).work(burst=True,
                                                                                       logging_level="WARNING")

        job_time = timed(work)
        db.session.remove()
        warmed = {label: timed(page(label)) for label in ("big", "small")}
        calls = {
            "peer: bare engine lookup (footprint of the big account)": lookup,
            f"peer: appeal page, small account ({sizes['small']} rows)": page("small"),
            f"appeal page, big account ({sizes['big']} rows)": page("big"),
            "appeal page, big account, rows inside the window, page 20": page("big", "?where=inside&page=20"),
            "appeal page, big account, referring rows of one dataset": page("big", f"?kind=referring&dataset={NAMES[1]}"),
        }
        for fn in calls.values():  # warm-up
            fn()
        results = measure_interleaved(calls, args.runs)
        load = os.getloadavg()
        print(f"Load average at the start of the runs: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
        print(f"Machine: {machine()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; "
              f"{args.tweets} tweets in 3 datasets; {args.runs} interleaved runs after 1 warm-up.\n")
        print("| first view | big account ms | big CPU ms | small account ms | small CPU ms |")
        print("|---|---:|---:|---:|---:|")
        for name, found in (("first view, cold (reads the releases, writes the summary)", cold),
                            ("first view after a new release, warmed by the job", warmed)):
            print(f"| {name} | {found['big'][0]:.0f} | {found['big'][1]:.0f} | {found['small'][0]:.0f} | "
                  f"{found['small'][1]:.0f} |")
        print(f"\nThe warm-up jobs themselves (3 publication jobs, then one per appeal), run before the views: "
              f"{job_time[0]:.0f} ms ({job_time[1]:.0f} ms CPU).\n")
        peer = results[f"peer: appeal page, small account ({sizes['small']} rows)"]
        print("| scenario | p50 ms | p95 ms | max ms | p95 / peer p95 | CPU p50 ms | CPU p95 ms | CPU p95 / peer |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in results.items():
            print(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | {r['p95'] / peer['p95']:.2f}× | "
                  f"{r['cpu50']:.1f} | {r['cpu95']:.1f} | {r['cpu95'] / peer['cpu95']:.2f}× |")
    finally:
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
